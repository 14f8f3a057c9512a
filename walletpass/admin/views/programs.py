"""Programs and their pass designs: list, create, edit, images, live preview."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from flask import abort, flash, redirect, render_template, request, send_file, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import func, select

from walletpass.admin import designs, forms, preview, rules_forms
from walletpass.admin.views.common import bp, field_errors, owned, settings, tx, user
from walletpass.cards.design import APPLE_KEYS, design_problems
from walletpass.loyalty.models import Member, Program
from walletpass.loyalty.rewards import sync_card_rewards
from walletpass.loyalty.rules import RulesError, amount_problems, validate_rules
from walletpass.passes import templates
from walletpass.passes.changes import mark_changed
from walletpass.passes.refresh import move_to_template, program_passes
from walletpass.tenancy.models import Merchant
from walletpass.web.i18n import current_language


def rule_examples() -> dict[str, dict[str, Any]]:
    """What a new program of each kind starts from; its names in the page's language (the
    merchant edits them, and they are stored as written)."""
    return {
        "points": {"amount_per_point": "1.00", "bonuses": {"welcome": 10}},
        "stamps": {"goal": 10, "reward_name": _("Free coffee")},
        "tiers": {
            "amount_per_point": "1.00",
            "levels": [
                {"name": _("Member"), "min_spend": "0"},
                {"name": _("Silver"), "min_spend": "500", "discount_percent": "5"},
                {"name": _("Gold"), "min_spend": "1500", "discount_percent": "10"},
            ],
        },
        "membership": {"paid": False, "validity_months": 12},
        "offers": {},
    }


def _template_names() -> list[str]:
    return templates.list_templates(settings().templates_dir)


def _program(session: Any, program_id: int) -> Program:
    return owned(session, Program, program_id)


def _slug_taken(session: Any, slug: str, program_id: int | None) -> bool:
    # Slugs are unique across merchants (/join/<slug> carries no merchant).
    query = select(Program.id).where(Program.slug == slug).execution_options(all_merchants=True)
    found = session.scalar(query)
    return found is not None and found != program_id


def _image_urls(program: Program | None) -> dict[str, str]:
    if program is None:
        return {}
    images = (program.design or {}).get("images") or {}
    version = (program.design or {}).get("images_version", "")
    out = {}
    for kind in designs.KINDS:
        if f"{kind}@2x.png" in images:
            out[kind] = url_for(
                "admin.program_image", program_id=program.id, name=f"{kind}@2x.png", v=version
            )
    return out


def _form_defaults(program: Program | None) -> dict[str, str]:
    if program is None:
        kind = "points"
        template = "points_tiers"
        colours = preview.template_defaults(settings().templates_dir, template)
        return {
            "name": "",
            "slug": "",
            "kind": kind,
            "template": template,
            **rules_forms.to_form(kind, rule_examples()[kind]),
            **colours,
            "logo_text": "",
            "poster_style": "",
            "barcode_format": "qr",
        }
    design = program.design or {}
    colours = preview.template_defaults(settings().templates_dir, program.template)
    return {
        "name": program.name,
        "slug": program.slug,
        "kind": program.kind,
        "template": program.template,
        **rules_forms.to_form(program.kind, program.rules),
        **{k: design.get(k, colours[k]) for k in forms.COLOUR_FIELDS},
        "logo_text": design.get("logo_text", ""),
        "poster_style": "on" if design.get("poster_style") else "",
        "barcode_format": design.get("barcode_format", "qr"),
    }


def _render_form(
    session: Any,
    program: Program | None,
    values: dict[str, str],
    errors: list[dict[str, str]],
    members: int = 0,
    status: int = 200,
) -> Any:
    # Takes the caller's session: on SQLite every transaction holds the write lock, so a
    # second one opened inside the first would wait for it forever.
    merchant = session.get(Merchant, user().merchant_id)
    organization = merchant.name if merchant else ""
    kind = str(values.get("kind") or "")
    rule_fields = rules_forms.field_names(kind, values)
    errors = [
        {**e, "message": _rule_message(e["message"])} if e["field"] in rule_fields else e
        for e in errors
    ]
    return (
        render_template(
            "admin/program_form.html",
            program=program,
            values=values,
            errors=field_errors(errors),
            error_list=errors,
            kinds=forms.KINDS,
            template_names=_template_names(),
            rules_kind=kind,
            rows=rules_forms.row_indices(kind, values),
            rule_fields=rule_fields,
            # Errors at rules no field shows (a promotion's, the JSON's own) are listed
            # under the advanced JSON.
            advanced_errors=[
                e
                for e in errors
                if e["field"].split(".")[0] == "rules" and e["field"] not in rule_fields
            ],
            currency=merchant.currency if merchant else "",
            public_url=settings().public_url.rstrip("/"),
            members=members,
            preview=_build_preview(values, program, organization),
            images=_image_urls(program),
        ),
        status,
    )


def _build_preview(
    values: dict[str, Any], program: Program | None, organization: str
) -> preview.Preview:
    design = {k: values.get(k) for k in forms.COLOUR_FIELDS}
    design = {k: v for k, v in design.items() if v and forms.parse_colour(str(v))}
    design = {k: forms.parse_colour(str(v)) for k, v in design.items()}
    if values.get("logo_text"):
        design["logo_text"] = str(values["logo_text"])
    template_name = str(values.get("template") or "")
    if template_name not in _template_names():
        template_name = "points_tiers"
    variables = preview.sample_variables(
        name=str(values.get("name") or ""),
        kind=str(values.get("kind") or ""),
        design=design,
        organization=organization or _("Your business"),
    )
    images = _image_urls(program)
    return preview.build(
        settings().templates_dir,
        template_name,
        variables,
        logo_src=images.get("logo", ""),
        strip_src=images.get("strip", ""),
        template_asset_url=f"/assets/templates/{template_name}/",
    )


@bp.get("/programs")
def programs() -> Any:
    with tx() as session:
        rows = list(session.scalars(select(Program).order_by(Program.name)))
        members = {
            program_id: count
            for program_id, count in session.execute(
                select(Member.program_id, func.count(Member.id)).group_by(Member.program_id)
            )
        }
    return render_template(
        "admin/programs.html",
        programs=rows,
        members=members,
        public_url=settings().public_url.rstrip("/"),
    )


def _amounts_held(session: Any, parsed: dict[str, Any]) -> list[dict[str, str]]:
    """The rules' amounts the shop's currency cannot hold (a TWD threshold of 999.5),
    under their fields, in the page's language; none when the rules did not parse."""
    if "rules" not in parsed:
        return []
    merchant = session.get(Merchant, user().merchant_id)
    problems = amount_problems(
        validate_rules(parsed["kind"], parsed["rules"]), merchant.currency, current_language()
    )
    return [{"field": f"rules.{p['field']}", "message": p["message"]} for p in problems]


@bp.route("/programs/new", methods=["GET", "POST"])
def program_new() -> Any:
    if request.method == "GET":
        values = _form_defaults(None)
        kind = request.args.get("kind")
        examples = rule_examples()
        if kind in examples:
            values = {k: v for k, v in values.items() if not k.startswith("rules")}
            values.update(kind=kind, **rules_forms.to_form(kind, examples[kind]))
        with tx() as session:
            return _render_form(session, None, values, [])
    with tx() as session:
        parsed, errors = _parse_form(session)
        if not errors and _slug_taken(session, parsed["slug"], None):
            errors.append({"field": "slug", "message": _("This slug is taken; pick another.")})
        if errors:
            session.rollback()
            return _render_form(session, None, request.form.to_dict(), errors, status=422)
        else:
            program = Program(
                merchant_id=user().merchant_id,
                slug=parsed["slug"],
                name=parsed["name"],
                kind=parsed["kind"],
                template=parsed["template"],
                rules=parsed["rules"],
                design=parsed["design"],
            )
            session.add(program)
            session.flush()
            sync_card_rewards(session, program)
            program_id = program.id
    flash(
        _("Program “%(name)s” created. Add a logo and a strip image below.", name=parsed["name"]),
        "ok",
    )
    return redirect(url_for("admin.program_edit", program_id=program_id))


@bp.route("/programs/<int:program_id>", methods=["GET", "POST"])
def program_edit(program_id: int) -> Any:
    with tx() as session:
        program = _program(session, program_id)
        members = (
            session.scalar(select(func.count(Member.id)).where(Member.program_id == program.id))
            or 0
        )
        if request.method == "GET":
            return _render_form(session, program, _form_defaults(program), [], members)
        parsed, errors = _parse_form(session, program.id)
        if not errors and _slug_taken(session, parsed["slug"], program.id):
            errors.append({"field": "slug", "message": _("This slug is taken; pick another.")})
        if members and parsed["kind"] != program.kind:
            # Their balances are in the old kind's unit (stamps are not points); the API
            # never changes a kind either.
            errors.append({"field": "kind", "message": _("A program with members keeps its kind.")})
        if members and parsed["slug"] != program.slug:
            # Members joined through /join/<slug>: printed QR codes and links point there.
            errors.append(
                {"field": "slug", "message": _("A program with members keeps its join link.")}
            )
        if errors:
            session.rollback()
            values = request.form.to_dict()
            return _render_form(session, program, values, errors, members, status=422)
        # Uploaded images are kept when the colours change: they are not form fields.
        design = {
            **{
                k: v
                for k, v in (program.design or {}).items()
                if k not in ("logo_text", *APPLE_KEYS)
            },
            **parsed["design"],
        }
        changed = (
            design != (program.design or {})
            or parsed["rules"] != _normalised_rules(program)
            or parsed["template"] != program.template
            or parsed["name"] != program.name
            or parsed["kind"] != program.kind
        )
        program.name = parsed["name"]
        program.slug = parsed["slug"]
        program.kind = parsed["kind"]
        program.rules = parsed["rules"]
        program.design = design
        sync_card_rewards(session, program)
        if parsed["template"] != program.template:
            old_template, program.template = program.template, parsed["template"]
            move_to_template(session, program.id, old_template, program.template)
        refreshed = (
            len(mark_changed(session, settings(), passes=program_passes(program.id), notify=False))
            if changed
            else 0
        )
    if refreshed:
        flash(
            ngettext(
                "Saved. %(num)d pass will update on its phone.",
                "Saved. %(num)d passes will update on their phones.",
                refreshed,
            ),
            "ok",
        )
    else:
        flash(_("Saved."), "ok")
    return redirect(url_for("admin.program_edit", program_id=program_id))


def _parse_form(
    session: Any, program_id: int | None = None
) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """The program form: its rules fields and advanced JSON merged into the rules JSON that
    forms.parse_program validates, each error moved back to the field it came from."""
    posted = rules_forms.from_form(str(request.form.get("kind") or ""), request.form)
    form = {**request.form.to_dict(), rules_forms.ADVANCED: posted.text}
    parsed, errors = forms.parse_program(form, _template_names())
    errors += _amounts_held(session, parsed)
    if not errors:
        errors += _apple_problems(session, parsed, program_id)
    return parsed, [{**err, "field": posted.field(err["field"])} for err in errors]


def _apple_problems(
    session: Any, parsed: dict[str, Any], program_id: int | None
) -> list[dict[str, str]]:
    """The design's poster style and barcode format, as walletpass.cards.design finds them,
    in the page's language (the card numbers that do not fit are quoted as checked)."""
    found = design_problems(
        session, settings().templates_dir, parsed["design"], parsed["template"], program_id
    )
    out = []
    for problem in found:
        if problem["field"] == "poster_style":
            message = _(
                "This pass template has no poster layout: turn the poster style off or "
                "pick another template."
            )
        else:
            message = _(
                "Some members' card numbers do not fit this barcode format (%(details)s).",
                details=problem["message"],
            )
        out.append({"field": problem["field"], "message": message})
    return out


# The rules validation (walletpass.loyalty.rules) speaks English, to the API too; next to
# a field of this form its messages are said in the page's language, in the form's words
# (a tier, not a level). Under the advanced JSON they stay the API's, as does a message
# not listed here.
_NUM = r"(?P<num>-?[0-9][0-9.,]*)"
_RULE_MESSAGES: tuple[tuple[re.Pattern[str], Callable[[dict[str, str]], str]], ...] = tuple(
    (re.compile(pattern), say)
    for pattern, say in (
        (r"This field is required\.", lambda m: _("This field is required.")),
        (r"Must be a whole number\.", lambda m: _("Enter a whole number.")),
        (
            r'Must be a number, (e\.g\. "1\.00"|not true or false)\.',
            lambda m: _("Enter a number, e.g. 1.00."),
        ),
        (r"Must be '.*", lambda m: _("Pick one of the choices.")),
        (
            rf"Must be greater than the previous level's min_spend \({_NUM}\); .*",
            lambda m: _(
                "Must be more than the previous tier's spend (%(num)s): list tiers from the "
                "lowest to the highest.",
                num=m["num"],
            ),
        ),
        (
            r"Duplicate level name '(?P<name>.*)'\.",
            lambda m: _("Another tier is already named %(name)s.", name=m["name"]),
        ),
        (
            rf"Must be greater than the previous reward's \({_NUM}\)\.",
            lambda m: _("Must be more than the previous reward's (%(num)s).", num=m["num"]),
        ),
        (
            rf"Must be less than the goal \({_NUM}\)\.",
            lambda m: _("Must be less than the stamps to fill the card (%(num)s).", num=m["num"]),
        ),
        (
            rf"Must not exceed the goal \({_NUM}\)\.",
            lambda m: _(
                "Must not be more than the stamps to fill the card (%(num)s).", num=m["num"]
            ),
        ),
        (
            rf"Must be shorter than the expiry period of {_NUM} month\(s\)\.",
            lambda m: _("Must be shorter than the expiry period (%(num)s months).", num=m["num"]),
        ),
        (r"Required for a paid membership\.", lambda m: _("A paid membership needs a price.")),
        (
            r"Only a paid membership has a price: .*",
            lambda m: _("Only a paid membership has a price: tick it or clear the price."),
        ),
        (
            r"Only applies when points_to_currency is set\.",
            lambda m: _("Only applies when a point has a value."),
        ),
        (
            rf"Must be greater than {_NUM}\.",
            lambda m: _("Must be greater than %(num)s.", num=m["num"]),
        ),
        (rf"Must be at least {_NUM}\.", lambda m: _("Must be at least %(num)s.", num=m["num"])),
        (rf"Must be less than {_NUM}\.", lambda m: _("Must be less than %(num)s.", num=m["num"])),
        (rf"Must be at most {_NUM}\.", lambda m: _("Must be at most %(num)s.", num=m["num"])),
        (
            rf"Must have at most {_NUM} decimal places\.",
            lambda m: _("At most %(num)s decimals.", num=m["num"]),
        ),
        (
            rf"Must be at most {_NUM} characters long\.",
            lambda m: _("At most %(num)s characters.", num=m["num"]),
        ),
        (r"Must have at least 1 item\(s\)\.", lambda m: _("Fill in at least one row.")),
    )
)


def _rule_message(message: str) -> str:
    for pattern, say in _RULE_MESSAGES:
        if found := pattern.fullmatch(message):
            return say(found.groupdict())
    return message


def _normalised_rules(program: Program) -> dict[str, Any]:
    # Stored rules may predate normalisation (defaults filled in); compare like with like
    # so that saving an unchanged form does not refresh every pass.
    try:
        return validate_rules(program.kind, program.rules).model_dump(mode="json")
    except RulesError:
        return dict(program.rules or {})


@bp.post("/programs/<int:program_id>/images")
def program_images(program_id: int) -> Any:
    uploads = {
        kind: upload
        for kind in designs.KINDS
        if (upload := request.files.get(kind)) and upload.filename
    }
    if not uploads:
        flash(_("Choose a logo or a strip image to upload."), "error")
        return redirect(url_for("admin.program_edit", program_id=program_id))
    home = settings().home
    with tx() as session:
        program = _program(session, program_id)
        stored: dict[str, str] = {}
        for kind, upload in uploads.items():
            # Read one byte past the limit: enough to tell "too big" without reading more.
            data = upload.stream.read(designs.MAX_BYTES + 1)
            try:
                stored.update(designs.store(home, program.id, kind, data))
            except designs.DesignImageError as exc:
                session.rollback()
                message = _("%(image)s: %(problem)s", image=_image_name(kind), problem=str(exc))
                errors = [{"field": kind, "message": message}]
                return _render_form(session, program, _form_defaults(program), errors, status=422)
        design = dict(program.design or {})
        design["images"] = {**(design.get("images") or {}), **stored}
        design["images_version"] = str(int(time.time()))
        program.design = design
        refreshed = len(
            mark_changed(session, settings(), passes=program_passes(program.id), notify=False)
        )
    if len(uploads) == 2:
        message = _("Logo and strip saved at Wallet's sizes.")
    else:
        message = _("%(image)s saved at Wallet's sizes.", image=_image_name(next(iter(uploads))))
    if refreshed:
        message += " " + ngettext(
            "%(num)d pass will update.", "%(num)d passes will update.", refreshed
        )
    flash(message, "ok")
    return redirect(url_for("admin.program_edit", program_id=program_id))


def _image_name(kind: str) -> str:
    return _("Logo") if kind == "logo" else _("Strip")


@bp.get("/programs/<int:program_id>/images/<name>")
def program_image(program_id: int, name: str) -> Any:
    with tx() as session:
        _program(session, program_id)
    path = designs.image_path(settings().home, program_id, name)
    if path is None:
        abort(404)
    return send_file(path, mimetype="image/png", max_age=3600)


@bp.get("/programs/preview")
def program_preview() -> Any:
    """The preview fragment for the form's current values (the page's script asks for it
    as the marketer types)."""
    program = None
    program_id = request.args.get("program_id", type=int)
    with tx() as session:
        if program_id:
            program = _program(session, program_id)
        merchant = session.get(Merchant, user().merchant_id)
        organization = merchant.name if merchant else ""
    built = _build_preview(dict(request.args), program, organization)
    return render_template("admin/_preview.html", preview=built)
