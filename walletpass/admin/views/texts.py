"""Texts in other languages: a program's name, tier names and reward names, an offer's
title, description and terms, one column per language beside the default for reference.

An empty box means "as the default"; a save changes the cards of the members who read a
changed language, nobody else's (walletpass.loyalty.texts, walletpass.offers.texts).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict

from walletpass.admin.views.common import bp, owned, settings, tx, user
from walletpass.i18n.languages import languages, native_name
from walletpass.i18n.merchant_texts import (
    OFFER_FIELDS,
    PROGRAM_FIELDS,
    REWARD_FIELDS,
    TIER_NAME_LENGTH,
)
from walletpass.loyalty.models import Program, Reward
from walletpass.loyalty.texts import set_program_texts, stored, tier_names
from walletpass.offers.models import Offer
from walletpass.offers.texts import set_offer_texts
from walletpass.tenancy.models import Merchant


@dataclass(frozen=True)
class Row:
    """One text of the page: its default and a box per other language."""

    key: str  # the form fields' prefix: "name", "tier.2", "reward.17"
    label: str
    default: str
    limit: int
    values: dict[str, str]  # language -> the text given in it ("" for none)
    multiline: bool = False


def _other_languages(session: Session) -> list[str]:
    # The default fields are in the merchant's language: no column of its own.
    merchant = session.get(Merchant, user().merchant_id)
    default = merchant.language if merchant is not None else "en"
    return [lang for lang in languages() if lang != default]


def _given(form: MultiDict[str, str], key: str, langs: list[str]) -> dict[str, str]:
    return {lang: (form.get(f"{key}.{lang}") or "").strip() for lang in langs}


def _too_long(rows: list[Row], form: MultiDict[str, str], langs: list[str]) -> list[dict[str, str]]:
    problems = []
    for row in rows:
        for lang, value in _given(form, row.key, langs).items():
            if len(value) > row.limit:
                problems.append(
                    {
                        "field": f"{row.key}.{lang}",
                        "message": _(
                            "%(text)s in %(language)s: at most %(num)d characters.",
                            text=row.label,
                            language=native_name(lang),
                            num=row.limit,
                        ),
                    }
                )
    return problems


def _with_form(rows: list[Row], form: MultiDict[str, str], langs: list[str]) -> list[Row]:
    """The rows showing what was typed, for a form sent back with its errors."""
    return [
        Row(r.key, r.label, r.default, r.limit, _given(form, r.key, langs), r.multiline)
        for r in rows
    ]


def _by_language(values: Mapping[str, str], field: str) -> dict[str, dict[str, str]]:
    """``{lang: {field: text}}`` for each language, ``{}`` where none was typed."""
    return {lang: ({field: text} if text else {}) for lang, text in values.items()}


def _merged(parts: list[dict[str, dict[str, str]]]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for part in parts:
        for lang, texts in part.items():
            out.setdefault(lang, {}).update(texts)
    return out


def _render(
    title: str,
    back: str,
    rows: list[Row],
    langs: list[str],
    errors: list[dict[str, str]],
    status: int = 200,
) -> Any:
    html = render_template(
        "admin/texts.html",
        title=title,
        back=back,
        rows=rows,
        langs=[(lang, native_name(lang)) for lang in langs],
        error_list=errors,
        errors={e["field"] for e in errors},
    )
    return html, status


def _saved(langs: set[str]) -> None:
    if langs:
        names = ", ".join(native_name(lang) for lang in sorted(langs))
        flash(
            _(
                "Saved. The cards of members reading %(languages)s will update on their phones.",
                languages=names,
            ),
            "ok",
        )
    else:
        flash(_("Saved. Nothing changed."), "ok")


# --- a program: its name, its tiers' names, its rewards' names ----------------------------


def _program_rows(session: Session, program: Program, langs: list[str]) -> list[Row]:
    own = stored(program.translations)
    rows = [
        Row(
            "name",
            _("Program name"),
            program.name,
            PROGRAM_FIELDS["name"],
            {lang: own.get(lang, {}).get("name", "") for lang in langs},
        )
    ]
    for i, (level, names) in enumerate(tier_names(program).items()):
        rows.append(
            Row(
                f"tier.{i}",
                _("Tier: %(name)s", name=level),
                level,
                TIER_NAME_LENGTH,
                {lang: names.get(lang, "") for lang in langs},
            )
        )
    rewards = session.scalars(
        select(Reward)
        .where(Reward.program_id == program.id, Reward.active.is_(True))
        .order_by(Reward.cost_points, Reward.id)
    )
    for reward in rewards:
        texts = stored(reward.translations)
        rows.append(
            Row(
                f"reward.{reward.id}",
                _("Reward: %(name)s", name=reward.name),
                reward.name,
                REWARD_FIELDS["name"],
                {lang: texts.get(lang, {}).get("name", "") for lang in langs},
            )
        )
    return rows


@bp.route("/programs/<int:program_id>/texts", methods=["GET", "POST"])
def program_texts(program_id: int) -> Any:
    with tx() as session:
        program = owned(session, Program, program_id)
        langs = _other_languages(session)
        rows = _program_rows(session, program, langs)
        title = _("%(name)s: texts in other languages", name=program.name)
        back = url_for("admin.program_edit", program_id=program.id)
        if request.method == "GET":
            return _render(title, back, rows, langs, [])
        problems = _too_long(rows, request.form, langs)
        if problems:
            session.rollback()
            return _render(title, back, _with_form(rows, request.form, langs), langs, problems, 422)
        tiers: dict[str, dict[str, str]] = {}
        rewards: dict[int, dict[str, dict[str, str]]] = {}
        for row in rows:
            given = _given(request.form, row.key, langs)
            if row.key.startswith("tier."):
                tiers[row.default] = {lang: name for lang, name in given.items() if name}
            elif row.key.startswith("reward."):
                rewards[int(row.key.split(".", 1)[1])] = _by_language(given, "name")
        changed = set_program_texts(
            session,
            settings(),
            program,
            _by_language(_given(request.form, "name", langs), "name"),
            tier_names=tiers,
            reward_changes=rewards,
        )
    _saved(changed)
    return redirect(url_for("admin.program_texts", program_id=program_id))


# --- an offer: its title, description and terms -------------------------------------------


def _offer_rows(offer: Offer, langs: list[str]) -> list[Row]:
    own = stored(offer.translations)
    labels = {"title": _("Title"), "description": _("Description"), "terms": _("Terms")}
    return [
        Row(
            field,
            labels[field],
            getattr(offer, field) or "",
            limit,
            {lang: own.get(lang, {}).get(field, "") for lang in langs},
            multiline=field != "title",
        )
        for field, limit in OFFER_FIELDS.items()
    ]


@bp.route("/offers/<int:offer_id>/texts", methods=["GET", "POST"])
def offer_texts(offer_id: int) -> Any:
    with tx() as session:
        offer = owned(session, Offer, offer_id)
        langs = _other_languages(session)
        rows = _offer_rows(offer, langs)
        title = _("%(name)s: texts in other languages", name=offer.title)
        back = url_for("admin.offer_edit", offer_id=offer.id)
        if request.method == "GET":
            return _render(title, back, rows, langs, [])
        problems = _too_long(rows, request.form, langs)
        if problems:
            session.rollback()
            return _render(title, back, _with_form(rows, request.form, langs), langs, problems, 422)
        changes = _merged(
            [_by_language(_given(request.form, row.key, langs), row.key) for row in rows]
        )
        changed = set_offer_texts(session, settings(), offer, changes)
    _saved(changed)
    return redirect(url_for("admin.offer_texts", offer_id=offer_id))
