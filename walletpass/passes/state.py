"""The template variables of one pass: what its card shows right now."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from walletpass.config import Settings
from walletpass.loyalty.models import Member, Program, ProgramKind
from walletpass.offers.models import Coupon, Offer
from walletpass.passes.models import Pass, PassStatus
from walletpass.tenancy.models import Merchant

DEFAULT_COLOURS = {"background": "#1f3b4d", "foreground": "#ffffff", "label": "#cfe3ee"}


def hex_to_rgb(value: str) -> str:
    value = value.lstrip("#")
    if len(value) == 3:
        value = "".join(ch * 2 for ch in value)
    r, g, b = (int(value[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgb({r}, {g}, {b})"


def _money(amount: Decimal | None, currency: str) -> str:
    if amount is None:
        return ""
    return f"{currency} {amount:,.2f}"


def _discount_text(discount: dict[str, Any], currency: str) -> str:
    kind = discount.get("type")
    if kind == "percent":
        return f"{discount.get('value')}% off"
    if kind == "amount":
        return f"{_money(Decimal(str(discount.get('value'))), currency)} off"
    return str(discount.get("text", ""))


def pass_variables(session: Session, pass_row: Pass, settings: Settings) -> dict[str, Any]:
    """Every variable a template may use (pass_templates/README.md), for this pass now."""
    merchant = session.get(Merchant, pass_row.merchant_id)
    assert merchant is not None
    program = session.get(Program, pass_row.program_id) if pass_row.program_id else None
    member = session.get(Member, pass_row.member_id) if pass_row.member_id else None
    coupon = session.get(Coupon, pass_row.coupon_id) if pass_row.coupon_id else None
    offer = session.get(Offer, coupon.offer_id) if coupon else None
    design = dict(DEFAULT_COLOURS)
    if program is not None:
        design.update(program.design or {})
    public = settings.public_url.rstrip("/")
    program_name = program.name if program else (offer.title if offer else merchant.name)
    variables: dict[str, Any] = {
        "serial": pass_row.serial,
        "status": pass_row.status,
        "pass_type_id": pass_row.pass_type_id,
        "team_id": settings.team_id,
        "organization_name": merchant.name,
        "description": f"{merchant.name} {program_name}",
        "web_service_url": settings.apple_web_service_url,
        "auth_token": pass_row.auth_token,
        "barcode_message": pass_row.barcode,
        "barcode_alt_text": pass_row.barcode,
        "program_name": program_name,
        "program_kind": program.kind if program else ProgramKind.OFFERS.value,
        "logo_text": design.get("logo_text", merchant.name),
        "background_color": hex_to_rgb(design["background"]),
        "foreground_color": hex_to_rgb(design["foreground"]),
        "label_color": hex_to_rgb(design["label"]),
        "background_hex": design["background"],
        "logo_url": f"{public}/assets/templates/{pass_row.template}/logo@3x.png",
        "language": member.language if member else merchant.language,
        "member_name": member.name if member else "",
        "member_number": pass_row.barcode,
        "points": None,
        "stamps": None,
        "stamps_goal": None,
        "stamps_left": None,
        "tier": "",
        "tier_discount": "",
        "next_tier_text": "",
        "membership_valid_until": "",
        "offer_title": "",
        "offer_text": "",
        "coupon_title": "",
        "coupon_discount": "",
        "coupon_terms": "",
        "coupon_valid_until": "",
        "offer_valid_from": "",
        "offer_valid_until": "",
        "coupon_uses_left": None,
        "expiry_warning": "",
        "rewards_text": "",
        "terms": design.get("terms", f"Issued by {merchant.name}."),
        "website_url": design.get("website_url", public),
        "google_class_id": "",
    }
    if member is not None and program is not None:
        rules = program.rules or {}
        if program.kind in (ProgramKind.POINTS, ProgramKind.TIERS):
            variables["points"] = member.points_balance
            variables["tier"] = member.tier or ""
        elif program.kind == ProgramKind.STAMPS:
            goal = int(rules.get("goal", 10))
            variables["stamps"] = member.stamps_balance
            variables["stamps_goal"] = goal
            variables["stamps_left"] = max(goal - member.stamps_balance, 0)
        elif program.kind == ProgramKind.MEMBERSHIP and member.membership_valid_until:
            variables["membership_valid_until"] = member.membership_valid_until.isoformat()
    if offer is not None and coupon is not None:
        variables["coupon_title"] = offer.title
        variables["coupon_discount"] = _discount_text(offer.discount or {}, merchant.currency)
        variables["coupon_terms"] = offer.terms or ""
        variables["coupon_uses_left"] = max(offer.uses_per_coupon - coupon.uses, 0)
        if offer.valid_until:
            variables["coupon_valid_until"] = offer.valid_until.isoformat()
            variables["offer_valid_until"] = offer.valid_until.isoformat()
        if offer.valid_from:
            variables["offer_valid_from"] = offer.valid_from.isoformat()
    variables["voided"] = pass_row.status == PassStatus.VOIDED
    return variables
