"""/programs and /stores: what a merchant runs and where."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from walletpass import errors
from walletpass.api.framework import Context, Routes, paginate
from walletpass.api.resources_schemas import (
    Design,
    PageQuery,
    ProgramIn,
    ProgramOut,
    ProgramPage,
    ProgramPatch,
    ProgramQuery,
    StoreIn,
    StoreOut,
    StorePage,
    StorePatch,
    stored_texts,
)
from walletpass.cards.design import design_problems
from walletpass.cards.locations import located_as, store_changed
from walletpass.config import Settings
from walletpass.i18n.merchant_texts import replaced
from walletpass.loyalty.models import Member, Program
from walletpass.loyalty.rewards import sync_card_rewards
from walletpass.loyalty.rules import RulesError, validate_rules
from walletpass.loyalty.texts import set_program_texts, stored
from walletpass.passes import templates
from walletpass.passes.changes import mark_changed
from walletpass.passes.refresh import move_to_template, program_passes
from walletpass.tenancy import stores as store_rules
from walletpass.tenancy.models import Merchant, Store

TEMPLATE_FOR_KIND = {
    "stamps": "stamp_card",
    "points": "points_tiers",
    "tiers": "points_tiers",
    "membership": "membership",
    "offers": "coupon",
}

READERS = ("till", "crm")
routes = Routes()


def program_out(settings: Settings, program: Program) -> ProgramOut:
    return ProgramOut(
        id=program.id,
        slug=program.slug,
        name=program.name,
        kind=program.kind,
        template=program.template,
        rules=program.rules or {},
        design=program.design or {},
        active=program.active,
        translations=stored(program.translations),
        join_url=f"{settings.public_url.rstrip('/')}/join/{program.slug}",
        created_at=program.created_at,
    )


def get_program(session: Session, program_id: int) -> Program:
    program = session.get(Program, program_id)
    if program is None:
        raise errors.NotFound(f"no program {program_id}")
    return program


def checked_rules(kind: str, raw: dict[str, Any], currency: str | None = None) -> dict[str, Any]:
    try:
        return validate_rules(kind, raw, currency).model_dump(mode="json")
    except RulesError as exc:
        raise errors.ValidationFailed(
            "the program rules are not valid",
            errors=[
                {
                    "field": "body.rules" + (f".{e['field']}" if e["field"] else ""),
                    "message": e["message"],
                }
                for e in exc.errors
            ],
        ) from None


def _currency(ctx: Context) -> str:
    # The rules' amounts are in the shop's currency: TWD and JPY hold no decimals.
    merchant = ctx.session.get(Merchant, ctx.merchant_id)
    assert merchant is not None
    return merchant.currency


def checked_template(settings: Settings, name: str) -> str:
    try:
        templates.template_dir(settings.templates_dir, name)
    except templates.TemplateError as exc:
        raise errors.ValidationFailed(
            str(exc), errors=[{"field": "body.template", "message": "unknown pass template"}]
        ) from None
    return name


def _slug_taken(session: Session, slug: str) -> bool:
    # Slugs are unique across merchants (the join URL has no merchant in it).
    found = session.scalar(
        select(Program.id).where(Program.slug == slug).execution_options(all_merchants=True)
    )
    return found is not None


def _design(raw: Any) -> dict[str, Any]:
    return raw.model_dump(mode="json", exclude_none=True)


def checked_design(
    session: Session,
    settings: Settings,
    design: dict[str, Any],
    template: str,
    program_id: int | None,
) -> dict[str, Any]:
    """``design`` if Apple Wallet can honour it (walletpass.cards.design).

    :raise errors.ValidationFailed: saying which setting and what to fix; nothing changes.
    """
    problems = design_problems(session, settings.templates_dir, design, template, program_id)
    if problems:
        raise errors.ValidationFailed(
            "the design cannot be used",
            errors=[
                {"field": f"body.design.{p['field']}", "message": p["message"]} for p in problems
            ],
        )
    return design


@routes.operation(
    "GET", "/programs", scopes=READERS, query=ProgramQuery, response=ProgramPage, tag="programs"
)
def list_programs(ctx: Context) -> ProgramPage:
    """List programs."""
    q: ProgramQuery = ctx.query
    stmt = select(Program)
    if q.kind is not None:
        stmt = stmt.where(Program.kind == q.kind)
    if q.active is not None:
        stmt = stmt.where(Program.active.is_(q.active))
    rows, cursor = paginate(ctx.session, stmt, Program.id, limit=q.limit, cursor=q.cursor)
    return ProgramPage(data=[program_out(ctx.settings, p) for p in rows], next_cursor=cursor)


@routes.operation(
    "POST",
    "/programs",
    scopes=(),
    body=ProgramIn,
    response=ProgramOut,
    status=201,
    tag="programs",
    problems=(errors.Conflict,),
)
def create_program(ctx: Context) -> ProgramOut:
    """Create a program (admin)."""
    body: ProgramIn = ctx.body
    rules = checked_rules(body.kind, body.rules, _currency(ctx))
    template = checked_template(ctx.settings, body.template or TEMPLATE_FOR_KIND[body.kind])
    if _slug_taken(ctx.session, body.slug):
        raise errors.Conflict(f"the slug {body.slug!r} is taken")
    program = Program(
        merchant_id=ctx.merchant_id,
        slug=body.slug,
        name=body.name,
        kind=body.kind,
        template=template,
        rules=rules,
        design=checked_design(ctx.session, ctx.settings, _design(body.design), template, None),
        active=body.active,
        translations=replaced({}, stored_texts(body.translations)),
    )
    try:
        with ctx.session.begin_nested():
            ctx.session.add(program)
            ctx.session.flush()
    except IntegrityError:
        raise errors.Conflict(f"the slug {body.slug!r} is taken") from None
    sync_card_rewards(ctx.session, program)
    return program_out(ctx.settings, program)


@routes.operation(
    "GET",
    "/programs/<int:program_id>",
    scopes=READERS,
    response=ProgramOut,
    tag="programs",
)
def get_program_op(ctx: Context) -> ProgramOut:
    """Get a program."""
    return program_out(ctx.settings, get_program(ctx.session, ctx.path["program_id"]))


@routes.operation(
    "PATCH",
    "/programs/<int:program_id>",
    scopes=(),
    body=ProgramPatch,
    response=ProgramOut,
    tag="programs",
)
def update_program(ctx: Context) -> ProgramOut:
    """Change a program (admin); new rules, design or template refresh every pass."""
    body: ProgramPatch = ctx.body
    program = get_program(ctx.session, ctx.path["program_id"])
    shown_changed = False
    if body.rules is not None:
        rules = checked_rules(program.kind, body.rules, _currency(ctx))
        shown_changed |= rules != program.rules
        program.rules = rules
        sync_card_rewards(ctx.session, program)
    if body.design is not None:
        # The API's design is the colours and texts; the images uploaded in the admin
        # (design["images"], not in the schema) stay with the program.
        kept = {k: v for k, v in (program.design or {}).items() if k not in Design.model_fields}
        design = checked_design(
            ctx.session,
            ctx.settings,
            {**kept, **_design(body.design)},
            body.template or program.template,
            program.id,
        )
        shown_changed |= design != program.design
        program.design = design
    if body.template is not None:
        template = checked_template(ctx.settings, body.template)
        if template != program.template:
            shown_changed = True
            old_template, program.template = program.template, template
            move_to_template(ctx.session, program.id, old_template, program.template)
    if body.name is not None:
        shown_changed |= body.name != program.name
        program.name = body.name
    if body.active is not None:
        program.active = body.active
    if body.translations is not None:
        texts = stored_texts(body.translations)
        if shown_changed:  # every pass is marked changed below
            program.translations = replaced(program.translations, texts)
        else:
            set_program_texts(ctx.session, ctx.settings, program, texts)
    if shown_changed:
        mark_changed(ctx.session, ctx.settings, passes=program_passes(program.id), notify=False)
    return program_out(ctx.settings, program)


@routes.operation(
    "DELETE",
    "/programs/<int:program_id>",
    scopes=(),
    status=204,
    tag="programs",
    problems=(errors.Conflict,),
)
def delete_program(ctx: Context) -> None:
    """Delete a program without members (admin); archive one with members instead."""
    program = get_program(ctx.session, ctx.path["program_id"])
    members = ctx.session.scalar(
        select(func.count()).select_from(Member).where(Member.program_id == program.id)
    )
    if members:
        raise errors.Conflict(
            f"program {program.id} has {members} member(s): archive it with "
            '{"active": false} instead'
        )
    ctx.session.delete(program)
    return None


# --- stores ------------------------------------------------------------------------


def get_store(session: Session, store_id: int) -> Store:
    store = session.get(Store, store_id)
    if store is None:
        raise errors.NotFound(f"no store {store_id}")
    return store


@routes.operation(
    "GET", "/stores", scopes=READERS, query=PageQuery, response=StorePage, tag="stores"
)
def list_stores(ctx: Context) -> StorePage:
    """List stores."""
    rows, cursor = paginate(
        ctx.session, select(Store), Store.id, limit=ctx.query.limit, cursor=ctx.query.cursor
    )
    return StorePage(
        data=[StoreOut.model_validate(s, from_attributes=True) for s in rows],
        next_cursor=cursor,
    )


@routes.operation(
    "POST",
    "/stores",
    scopes=(),
    body=StoreIn,
    response=StoreOut,
    status=201,
    tag="stores",
    problems=(errors.Conflict, errors.ValidationFailed),
)
def create_store(ctx: Context) -> StoreOut:
    """Create a store (admin); its code is what tills send. At most ten stores have
    coordinates (they are the pass's locations)."""
    body: StoreIn = ctx.body
    if ctx.session.scalar(select(Store.id).where(Store.code == body.code)) is not None:
        raise errors.Conflict(f"a store with code {body.code!r} exists")
    store_rules.check_location_limit(
        ctx.session,
        store_id=None,
        has_location=body.latitude is not None and body.longitude is not None,
        field="body.latitude",
    )
    store = Store(merchant_id=ctx.merchant_id, **body.model_dump())
    try:
        with ctx.session.begin_nested():
            ctx.session.add(store)
            ctx.session.flush()
    except IntegrityError:
        raise errors.Conflict(f"a store with code {body.code!r} exists") from None
    store_changed(ctx.session, ctx.settings, store.merchant_id, None, located_as(store))
    return StoreOut.model_validate(store, from_attributes=True)


@routes.operation("GET", "/stores/<int:store_id>", scopes=READERS, response=StoreOut, tag="stores")
def get_store_op(ctx: Context) -> StoreOut:
    """Get a store."""
    return StoreOut.model_validate(
        get_store(ctx.session, ctx.path["store_id"]), from_attributes=True
    )


@routes.operation(
    "PATCH",
    "/stores/<int:store_id>",
    scopes=(),
    body=StorePatch,
    response=StoreOut,
    tag="stores",
    problems=(errors.ValidationFailed,),
)
def update_store(ctx: Context) -> StoreOut:
    """Change a store (admin). A field left out is unchanged; a null clears it."""
    store = get_store(ctx.session, ctx.path["store_id"])
    before = located_as(store)
    for name, value in ctx.body.model_dump(exclude_unset=True).items():
        if value is not None or name != "name":
            setattr(store, name, value)
    store_rules.check_location_limit(
        ctx.session,
        store_id=store.id,
        has_location=store.latitude is not None and store.longitude is not None,
        field="body.latitude",
    )
    ctx.session.flush()
    store_changed(ctx.session, ctx.settings, store.merchant_id, before, located_as(store))
    return StoreOut.model_validate(store, from_attributes=True)


@routes.operation(
    "DELETE",
    "/stores/<int:store_id>",
    scopes=(),
    status=204,
    tag="stores",
    problems=(errors.Conflict,),
)
def delete_store(ctx: Context) -> None:
    """Delete a store (admin); its history keeps working without it."""
    store = get_store(ctx.session, ctx.path["store_id"])
    before = located_as(store)
    store_rules.delete_store(ctx.session, store)
    store_changed(ctx.session, ctx.settings, store.merchant_id, before, None)
    return None
