"""Offers and time-limited coupons: create, edit, issue to members or as a flyer."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from walletpass.admin import forms, services
from walletpass.admin.views.common import bp, field_errors, merchant_tz, owned, settings, tx, user
from walletpass.db import utcnow
from walletpass.errors import CouponExpired, OfferCapReached
from walletpass.loyalty.models import Program
from walletpass.offers.lifecycle import OfferShown, discount_problem, offer_saved
from walletpass.offers.models import Coupon, Offer
from walletpass.tenancy.models import Merchant
from walletpass.web.i18n import current_language

OFFER_FIELDS = (
    "title",
    "slug",
    "description",
    "terms",
    "discount",
    "valid_from",
    "valid_until",
    "uses_per_coupon",
    "total_cap",
    "overlay",
    "active",
    "program_id",
)


def _offer(session: Session, offer_id: int) -> Offer:
    return owned(session, Offer, offer_id)


def _form_values(offer: Offer | None, session: Session) -> dict[str, Any]:
    tz = merchant_tz(session)
    if offer is None:
        return {"discount_type": "percent", "uses_per_coupon": "1", "active": True}
    discount = offer.discount or {}
    return {
        "title": offer.title,
        "slug": offer.slug,
        "description": offer.description,
        "terms": offer.terms,
        "discount_type": discount.get("type", "percent"),
        "discount_value": discount.get("value", ""),
        "valid_from": forms.local_input_value(offer.valid_from, tz),
        "valid_until": forms.local_input_value(offer.valid_until, tz),
        "uses_per_coupon": offer.uses_per_coupon,
        "total_cap": offer.total_cap or "",
        "overlay": offer.overlay,
        "active": offer.active,
        "program_id": offer.program_id or "",
    }


def _render(
    session: Session,
    offer: Offer | None,
    values: dict[str, Any],
    errors: list[dict[str, str]],
    status: int = 200,
) -> Any:
    merchant = session.get(Merchant, user().merchant_id)
    programs = list(session.scalars(select(Program).order_by(Program.name)))
    stats = None
    if offer is not None:
        stats = {
            "coupons": session.scalar(
                select(func.count(Coupon.id)).where(Coupon.offer_id == offer.id)
            ),
            "member_coupons": session.scalar(
                select(func.count(Coupon.id)).where(
                    Coupon.offer_id == offer.id, Coupon.member_id.is_not(None)
                )
            ),
        }
    return (
        render_template(
            "admin/offer_form.html",
            offer=offer,
            values=values,
            errors=field_errors(errors),
            error_list=errors,
            programs=programs,
            tiers={p.id: services.tiers_of(p) for p in programs},
            timezone=merchant.timezone if merchant else "UTC",
            stats=stats,
        ),
        status,
    )


def _problem(exc: CouponExpired | OfferCapReached, offer: Offer) -> str:
    """Why no coupon could be issued (offers.services.check_issuable), in the page's
    language."""
    if isinstance(exc, OfferCapReached):
        return _("the offer has been fully redeemed")
    if not offer.active:
        return _("the offer is switched off")
    return _("the offer has ended")


@bp.get("/offers")
def offers() -> Any:
    with tx() as session:
        rows = list(session.scalars(select(Offer).order_by(Offer.created_at.desc())))
        issued = {
            offer_id: count
            for offer_id, count in session.execute(
                select(Coupon.offer_id, func.count(Coupon.id)).group_by(Coupon.offer_id)
            )
        }
        tz = merchant_tz(session)
        merchant = session.get(Merchant, user().merchant_id)
        currency = merchant.currency if merchant else "EUR"
    return render_template(
        "admin/offers.html", offers=rows, issued=issued, tz=tz, now=utcnow(), currency=currency
    )


def _slug_taken(session: Session, slug: str, offer_id: int | None) -> bool:
    found = session.scalar(
        select(Offer.id).where(Offer.slug == slug).execution_options(all_merchants=True)
    )
    return found is not None and found != offer_id


def _parse(session: Session, offer_id: int | None) -> tuple[dict[str, Any], list[dict[str, str]]]:
    values, errors = forms.parse_offer(request.form, merchant_tz(session), current_language())
    if not errors and _slug_taken(session, values["slug"], offer_id):
        errors.append({"field": "slug", "message": _("This slug is taken; pick another.")})
    if values.get("program_id") is not None:
        program = session.get(Program, values["program_id"])
        if program is None or program.merchant_id != user().merchant_id:
            errors.append({"field": "program_id", "message": _("Pick one of your programs.")})
    if values["overlay"] and values.get("program_id") is None:
        errors.append(
            {"field": "overlay", "message": _("An overlay shows on a program's cards: pick one.")}
        )
    # An amount off the shop's currency cannot hold (TWD 50.5), said in the page's language.
    problem = discount_problem(
        session, user().merchant_id, values.get("discount"), current_language()
    )
    if problem is not None:
        errors.append({"field": "discount_value", "message": problem})
    return values, errors


@bp.route("/offers/new", methods=["GET", "POST"])
def offer_new() -> Any:
    with tx() as session:
        if request.method == "GET":
            return _render(session, None, _form_values(None, session), [])
        values, errors = _parse(session, None)
        if errors:
            session.rollback()
            return _render(session, None, dict(request.form), errors, status=422)
        offer = Offer(merchant_id=user().merchant_id, **{k: values[k] for k in OFFER_FIELDS})
        session.add(offer)
        session.flush()
        offer_id = offer.id
        offer_saved(session, settings(), offer)
    flash(_("Offer created. Issue it to members or print its flyer below."), "ok")
    return redirect(url_for("admin.offer_edit", offer_id=offer_id))


@bp.route("/offers/<int:offer_id>", methods=["GET", "POST"])
def offer_edit(offer_id: int) -> Any:
    with tx() as session:
        offer = _offer(session, offer_id)
        if request.method == "GET":
            return _render(session, offer, _form_values(offer, session), [])
        values, errors = _parse(session, offer.id)
        if errors:
            session.rollback()
            return _render(session, offer, dict(request.form), errors, status=422)
        before = OfferShown.of(offer)
        for key in OFFER_FIELDS:
            setattr(offer, key, values[key])
        # Coupon passes show the offer's title, discount and dates; loyalty cards show it
        # as an overlay. Both must be re-fetched by the wallets, now and when it ends.
        offer_saved(session, settings(), offer, before)
    flash(_("Offer saved."), "ok")
    return redirect(url_for("admin.offer_edit", offer_id=offer_id))


@bp.post("/offers/<int:offer_id>/issue")
def offer_issue(offer_id: int) -> Any:
    """Give every member of a program (or of one tier) a coupon of this offer."""
    program_id = request.form.get("program_id", type=int)
    tier = (request.form.get("tier") or "").strip() or None
    with tx() as session:
        offer = _offer(session, offer_id)
        program = session.get(Program, program_id) if program_id else None
        if program_id and (program is None or program.merchant_id != user().merchant_id):
            abort(404)
        if tier and (program is None or tier not in services.tiers_of(program)):
            flash(_("Pick a tier of the chosen program."), "error")
            return redirect(url_for("admin.offer_edit", offer_id=offer_id))
        try:
            count = services.issue_offer_to_members(
                session, settings(), offer, program_id=program_id, tier=tier
            )
        except (CouponExpired, OfferCapReached) as exc:
            reason = _problem(exc, offer)
            session.rollback()
            flash(_("No coupons issued: %(reason)s.", reason=reason), "error")
            return redirect(url_for("admin.offer_edit", offer_id=offer_id))
    if tier:
        done = ngettext(
            "Issued %(num)s coupon to tier %(tier)s.",
            "Issued %(num)s coupons to tier %(tier)s.",
            count,
            tier=tier,
        )
    elif program is not None:
        done = ngettext(
            "Issued %(num)s coupon to %(program)s.",
            "Issued %(num)s coupons to %(program)s.",
            count,
            program=program.name,
        )
    else:
        done = ngettext(
            "Issued %(num)s coupon to all members.", "Issued %(num)s coupons to all members.", count
        )
    flash(done, "ok")
    return redirect(url_for("admin.offer_edit", offer_id=offer_id))
