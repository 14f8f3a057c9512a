"""The reward catalogue: what members redeem their points or stamps for.

Validated as the API validates it (walletpass.api's RewardIn schema and its tier check),
saved through the same domain function (``reward_saved``: the program's cards list the
change now and at the reward's dates). A stamp card's own rewards are written from its
program's rules (walletpass.loyalty.rewards.sync_card_rewards): they are listed here and
changed on the program's page. Retiring deactivates: past redemptions keep pointing at it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from walletpass import errors as problems
from walletpass.admin import forms, services
from walletpass.admin.views.common import bp, field_errors, merchant_tz, owned, settings, tx, user
from walletpass.api.resources_schemas import RewardIn
from walletpass.crm.models import IdempotencyRecord
from walletpass.i18n import formats
from walletpass.loyalty.models import Program, Reward, RewardKind
from walletpass.loyalty.reward_windows import reward_saved
from walletpass.loyalty.rewards import check_min_tier
from walletpass.web.i18n import current_language

Errors = list[dict[str, str]]
# What the form edits; a stamp card's own reward (card_stamps) is the rules'.
FIELDS = (
    "name",
    "kind",
    "cost_points",
    "min_tier",
    "stock",
    "cause",
    "valid_from",
    "valid_until",
    "active",
    "description",
)


def _reward(session: Session, reward_id: int) -> Reward:
    return owned(session, Reward, reward_id)


def _programs(session: Session) -> list[Program]:
    return list(session.scalars(select(Program).order_by(Program.name)))


def _message(err: Any) -> str:
    # pydantic's error types, in the page's language, with the schema's own limits.
    etype, ctx = err["type"], err.get("ctx") or {}
    if etype in ("missing", "string_too_short"):
        return _("This field is required.")
    if etype == "string_too_long":
        return _("At most %(num)s characters.", num=ctx.get("max_length"))
    if etype in ("int_parsing", "int_type", "int_from_float"):
        return _("Enter a whole number.")
    if etype == "greater_than_equal":
        return _("Must be at least %(num)s.", num=ctx.get("ge"))
    if etype == "less_than_equal":
        return _("Must be at most %(num)s.", num=ctx.get("le"))
    if etype == "literal_error":
        return _("Pick one of the choices.")
    return _("This value is not valid.")


def _parse(
    form: Mapping[str, str], program_id: int | None, tz: ZoneInfo
) -> tuple[RewardIn | None, Errors]:
    """The posted form as the API's RewardIn, or the errors next to their fields."""
    errors: Errors = []
    raw: dict[str, Any] = {"program_id": program_id}
    for name in ("name", "kind", "cost_points", "min_tier", "stock", "cause", "description"):
        value = str(form.get(name) or "").strip()
        if value or name in ("name", "description"):
            raw[name] = value
    raw["active"] = forms.parse_bool(str(form.get("active") or ""))
    for name in ("valid_from", "valid_until"):
        try:
            raw[name] = forms.parse_local_datetime(str(form.get(name) or ""), tz)
        except ValueError:
            errors.append({"field": name, "message": _("Enter a date and time.")})
    if errors:
        return None, errors
    try:
        return RewardIn.model_validate(raw), []
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            field = ".".join(str(p) for p in err["loc"]) or "valid_until"
            if field == "program_id":
                message = _("Pick one of your programs.")
            elif not err["loc"]:  # the schema's own check: the dates' order
                message = _("The reward must end after it starts.")
            else:
                message = _message(err)
            errors.append({"field": field, "message": message})
        return None, errors


def _check(session: Session, body: RewardIn) -> Errors:
    """What the API checks beyond the schema: the program is the merchant's, and a tier
    named is one of its tiers."""
    program = session.get(Program, body.program_id)
    if program is None or program.merchant_id != user().merchant_id:
        return [{"field": "program_id", "message": _("Pick one of your programs.")}]
    try:
        check_min_tier(program, body.min_tier)
    except problems.ValidationFailed:
        tiers = ", ".join(services.tiers_of(program))
        message = (
            _("Pick one of this program's tiers: %(tiers)s.", tiers=tiers)
            if tiers
            else _("This program has no tiers: leave it blank.")
        )
        return [{"field": "min_tier", "message": message}]
    return []


def _first_submit(session: Session, key: str) -> bool:
    """Whether this rendering of the new-reward form is posted for the first time. The
    form carries a fresh key; a double click or a browser's retry sends it again and must
    not add the reward twice. The key is kept beside the API's Idempotency-Keys (scoped
    apart); a concurrent twin waits on the unique index and then finds it taken."""
    try:
        scoped = f"admin:reward:{uuid.UUID(key)}"
    except ValueError:
        return True  # no key (a script): nothing to recognise a retry by
    taken = select(IdempotencyRecord.id).where(IdempotencyRecord.key == scoped)
    if session.scalar(taken) is not None:
        return False
    try:
        with session.begin_nested():
            session.add(
                IdempotencyRecord(
                    merchant_id=user().merchant_id,
                    key=scoped,
                    request_hash="",
                    status_code=303,
                    body=b"",
                )
            )
    except IntegrityError:
        return False
    return True


def _values(reward: Reward | None, tz: ZoneInfo, program_id: int | None) -> dict[str, Any]:
    if reward is None:
        return {
            "program_id": program_id or "",
            "kind": RewardKind.ITEM.value,
            "active": True,
            # A fresh key per rendering: see _first_submit.
            "key": str(uuid.uuid4()),
        }
    values: dict[str, Any] = {name: getattr(reward, name) for name in FIELDS}
    values["program_id"] = reward.program_id
    for name in ("valid_from", "valid_until"):
        values[name] = forms.local_input_value(getattr(reward, name), tz)
    return {k: ("" if v is None else v) for k, v in values.items()}


def _render_form(
    session: Session,
    reward: Reward | None,
    values: Mapping[str, Any],
    errors: Errors,
    status: int = 200,
) -> Any:
    programs = _programs(session)
    return (
        render_template(
            "admin/reward_form.html",
            reward=reward,
            values=values,
            errors=field_errors(errors),
            error_list=errors,
            programs=programs,
            tiers={p.id: services.tiers_of(p) for p in programs},
            timezone=str(merchant_tz(session)),
        ),
        status,
    )


@bp.get("/rewards")
def rewards() -> Any:
    program_id = request.args.get("program_id", type=int)
    show_retired = request.args.get("retired") == "1"
    with tx() as session:
        tz = merchant_tz(session)
        query = select(Reward).order_by(Reward.program_id, Reward.cost_points, Reward.id)
        if program_id:
            query = query.where(Reward.program_id == program_id)
        if not show_retired:
            query = query.where(Reward.active.is_(True))
        rows = list(session.scalars(query))
        programs = _programs(session)
    lang = current_language()
    return render_template(
        "admin/rewards.html",
        rewards=rows,
        programs=programs,
        names={p.id: p.name for p in programs},
        kinds={p.id: p.kind for p in programs},
        program_id=program_id,
        show_retired=show_retired,
        when=lambda moment: formats.moment(moment, lang, str(tz)),
    )


@bp.route("/rewards/new", methods=["GET", "POST"])
def reward_new() -> Any:
    with tx() as session:
        tz = merchant_tz(session)
        if request.method == "GET":
            program_id = request.args.get("program_id", type=int)
            return _render_form(session, None, _values(None, tz, program_id), [])
        program_field = str(request.form.get("program_id") or "")
        program_id = int(program_field) if program_field.isdigit() else 0
        body, errors = _parse(request.form, program_id, tz)
        if body is not None:
            errors = _check(session, body)
        if body is None or errors:
            session.rollback()
            return _render_form(session, None, request.form.to_dict(), errors, status=422)
        if not _first_submit(session, str(request.form.get("key") or "")):
            session.rollback()
            flash(_("This reward was already added."), "ok")
            return redirect(url_for("admin.rewards", program_id=body.program_id))
        reward = Reward(merchant_id=user().merchant_id, **body.model_dump())
        session.add(reward)
        session.flush()
        reward_saved(session, settings(), reward)
        program_id = reward.program_id
    flash(_("Reward “%(name)s” added; the program's cards list it.", name=body.name), "ok")
    return redirect(url_for("admin.rewards", program_id=program_id))


@bp.route("/rewards/<int:reward_id>", methods=["GET", "POST"])
def reward_edit(reward_id: int) -> Any:
    with tx() as session:
        reward = _reward(session, reward_id)
        tz = merchant_tz(session)
        if request.method == "GET":
            return _render_form(session, reward, _values(reward, tz, None), [])
        if reward.card_stamps is not None:
            abort(409, description="A stamp card's reward is changed in its program's rules.")
        # The kind is kept, as the API keeps it.
        form = {**request.form.to_dict(), "kind": reward.kind}
        body, errors = _parse(form, reward.program_id, tz)
        if body is not None:
            errors = _check(session, body)
        if body is None or errors:
            session.rollback()
            return _render_form(session, reward, request.form.to_dict(), errors, status=422)
        changes = {name: getattr(body, name) for name in FIELDS if name != "kind"}
        changed = any(getattr(reward, name) != value for name, value in changes.items())
        for name, value in changes.items():
            setattr(reward, name, value)
        if changed:
            reward_saved(session, settings(), reward)
        program_id = reward.program_id
    flash(_("Reward saved.") if changed else _("Nothing changed."), "ok")
    return redirect(url_for("admin.rewards", program_id=program_id))


@bp.post("/rewards/<int:reward_id>/retire")
def reward_retire(reward_id: int) -> Any:
    """Deactivate: it leaves the cards and the till; past redemptions keep pointing at it.
    Retiring a retired reward changes nothing (a double click, a retry)."""
    with tx() as session:
        reward = _reward(session, reward_id)
        if reward.card_stamps is not None:
            abort(409, description="A stamp card's reward is changed in its program's rules.")
        if reward.active:
            reward.active = False
            reward_saved(session, settings(), reward)
        name, program_id = reward.name, reward.program_id
    flash(_("Reward “%(name)s” retired.", name=name), "ok")
    return redirect(url_for("admin.rewards", program_id=program_id))
