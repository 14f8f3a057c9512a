"""The template variables of one pass: what its card shows right now."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from babel.lists import format_list
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from walletpass.campaigns.state import campaign_overlay
from walletpass.cards.memo import shared
from walletpass.config import Settings
from walletpass.db import utcnow
from walletpass.i18n import formats
from walletpass.i18n.catalogues import Text, text
from walletpass.i18n.languages import DEFAULT, babel_locale, normalise
from walletpass.i18n.merchant_texts import localised
from walletpass.loyalty import rules as loyalty_rules
from walletpass.loyalty import tiers
from walletpass.loyalty.models import Member, Program, ProgramKind
from walletpass.loyalty.programs import MembershipState, membership_standing, program_rules
from walletpass.loyalty.rewards import redeemable_rewards
from walletpass.loyalty.sweeps import next_expiry
from walletpass.offers.models import Coupon, Offer
from walletpass.passes.colours import DEFAULT_COLOURS, hex_to_rgb
from walletpass.passes.models import Pass, PassStatus
from walletpass.tenancy.models import Merchant


def discount_text(discount: dict[str, Any], currency: str, lang: str) -> str:
    """An offer's discount in ``lang``: ``10% off``, ``€5.00 off``, or the merchant's own
    words; the pass and the card page word it the same."""
    kind = discount.get("type")
    if kind == "percent":
        percent = _percent(Decimal(str(discount.get("value"))), lang)
        return text(lang).gettext("%(percent)s off", percent=percent)
    if kind == "amount":
        amount = formats.money(Decimal(str(discount.get("value"))), currency, lang)
        return text(lang).gettext("%(amount)s off", amount=amount)
    return str(discount.get("text", ""))


def _percent(value: Decimal, lang: str) -> str:
    # The number as the reader writes it ("12,5" in Greek), the sign as all four do.
    return f"{formats.number(value.normalize(), lang)}%"


def pass_variables(
    session: Session, pass_row: Pass, settings: Settings, *, lang: str | None = None
) -> dict[str, Any]:
    """Every variable a template may use (docs/pass-templates.md), for this pass now.

    :param lang: the language of the card's texts, ours (notices, discounts, money) and
        the merchant's (program, offer, tier and reward names): the member's by default;
        the card page passes the page's.
    """
    merchant = session.get(Merchant, pass_row.merchant_id)
    assert merchant is not None
    program = session.get(Program, pass_row.program_id) if pass_row.program_id else None
    member = session.get(Member, pass_row.member_id) if pass_row.member_id else None
    coupon = session.get(Coupon, pass_row.coupon_id) if pass_row.coupon_id else None
    offer = session.get(Offer, coupon.offer_id) if coupon else None
    now = utcnow()
    design = dict(DEFAULT_COLOURS)
    if program is not None:
        design.update(program.design or {})
    public = settings.public_url.rstrip("/")
    # The member's language for a member's card (the page's on the card page); the
    # shop's for a pass without one (a flyer's coupon). Wallet's own labels follow the
    # phone (docs/pass-templates.md). Read through normalise: a tag stored before the
    # languages were ours ("zh-TW") or one we do not speak falls back to English rather
    # than failing the pass.
    reader = normalise(lang or (member.language if member else merchant.language)) or DEFAULT
    program_name = (
        localised(program.name, program.translations, "name", reader)
        if program
        else (
            localised(offer.title, offer.translations, "title", reader) if offer else merchant.name
        )
    )
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
        "language": reader,
        "member_name": member.name if member else "",
        "member_number": pass_row.barcode,
        "points": None,
        "stamps": None,
        "stamps_goal": None,
        "stamps_left": None,
        "stamps_text": "",
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
        "terms": _terms(design, merchant, reader),
        "website_url": design.get("website_url", public),
        "google_class_id": "",
        # The card page: where the pass's featured actions (iOS 27) lead.
        "card_url": f"{public}/p/{pass_row.serial}",
        # The design's iOS 27 poster style (off: the template's classic style only).
        "poster_style": bool(design.get("poster_style")),
        # The design's barcode format, and the number it carries: the member's card
        # number from the shop's own system (walletpass.passes.barcodes).
        "barcode_format": str(design.get("barcode_format") or "qr"),
        "card_number": (member.external_id or "") if member else "",
        # The window the card is about, for Wallet's relevantDates (ISO, shop's offset).
        "relevant_start": "",
        "relevant_end": "",
        # A Google class is shared by every holder: it is written with the merchant's own
        # texts, and carries the name in each language (walletpass.google.objects), not
        # the reader's; else each holder's sync would rewrite it in their language.
        "merchant_language": merchant.language,
        "class_texts": {"program_name": _default_name(program, offer, merchant)},
        "program_name_translations": _all_languages(program.translations, "name")
        if program
        else {},
        "coupon_title_translations": {},
    }
    if member is not None and program is not None:
        variables.update(_member_variables(session, merchant, program, member, reader))
    if program is not None and pass_row.coupon_id is None:
        program_id = program.id
        overlay = shared(
            session, ("overlay", program_id), lambda: current_overlay(session, program_id, now)
        )
        if overlay is not None:
            variables["offer_title"] = localised(
                overlay.title, overlay.translations, "title", reader
            )
            variables["offer_text"] = localised(
                overlay.description, overlay.translations, "description", reader
            ) or discount_text(overlay.discount or {}, merchant.currency, reader)
            variables.update(_window(overlay, merchant))
    if offer is not None and coupon is not None:
        variables["coupon_title"] = localised(offer.title, offer.translations, "title", reader)
        variables["class_texts"].update(coupon_title=offer.title, coupon_terms=offer.terms or "")
        variables["coupon_title_translations"] = _all_languages(offer.translations, "title")
        variables["coupon_discount"] = discount_text(
            offer.discount or {}, merchant.currency, reader
        )
        variables["coupon_terms"] = localised(
            offer.terms or "", offer.translations, "terms", reader
        )
        variables["coupon_uses_left"] = max(offer.uses_per_coupon - coupon.uses, 0)
        if offer.valid_until:
            variables["coupon_valid_until"] = offer.valid_until.isoformat()
            variables["offer_valid_until"] = offer.valid_until.isoformat()
        if offer.valid_from:
            variables["offer_valid_from"] = offer.valid_from.isoformat()
        variables.update(_window(offer, merchant))
    if pass_row.coupon_id is None:
        # A campaign message aimed at this member is newer and more specific than a
        # program-wide overlay, so it wins the offer field on both wallets.
        shown = campaign_overlay(session, pass_row, now)
        if shown is not None:
            variables["offer_title"], variables["offer_text"] = shown
    # Our texts on the shared Google class are in the shop's language too, so that it does
    # not flip between holders (its fixed texts carry every language as translatedValues).
    shop = normalise(merchant.language) or DEFAULT
    variables["class_texts"].update(
        language=shop,
        terms=_terms(design, merchant, shop) if shop != reader else variables["terms"],
        coupon_discount=(
            discount_text(offer.discount or {}, merchant.currency, shop)
            if offer is not None and coupon is not None and shop != reader
            else variables["coupon_discount"]
        ),
    )
    status = _shown_status(pass_row, coupon, offer, now)
    variables["status"] = status.value
    # Wallet's voided flag: a withdrawn coupon, and one whose offer ended (its pass also
    # carries the end as expirationDate), so that no cached or old copy reads as usable.
    variables["voided"] = status in (PassStatus.VOIDED, PassStatus.EXPIRED)
    return variables


def _window(offer: Offer, merchant: Merchant) -> dict[str, str]:
    """An offer's start and end in the shop's time zone (the instant is the same; the
    offset says which day it is there), for the pass's relevantDates."""
    zone = ZoneInfo(merchant.timezone)
    return {
        "relevant_start": offer.valid_from.astimezone(zone).isoformat(timespec="seconds")
        if offer.valid_from
        else "",
        "relevant_end": offer.valid_until.astimezone(zone).isoformat(timespec="seconds")
        if offer.valid_until
        else "",
    }


def _terms(design: dict[str, Any], merchant: Merchant, lang: str) -> str:
    # The shop's own terms as written (an empty text hides the field); ours otherwise.
    if "terms" in design:
        return str(design["terms"])
    return text(lang).gettext("Issued by %(merchant)s.", merchant=merchant.name)


def _default_name(program: Program | None, offer: Offer | None, merchant: Merchant) -> str:
    if program is not None:
        return program.name
    return offer.title if offer is not None else merchant.name


def _all_languages(translations: dict[str, Any] | None, field: str) -> dict[str, str]:
    """``{lang: text}`` for each language that has its own ``field``."""
    return {
        lang: texts[field]
        for lang, texts in (translations or {}).items()
        if isinstance(texts, dict) and texts.get(field)
    }


def _shown_status(
    pass_row: Pass, coupon: Coupon | None, offer: Offer | None, now: datetime
) -> PassStatus:
    """The pass's status as its card shows it now. A coupon pass follows its offer by
    itself: the offer's end expires it, a deactivated offer or a voided or used-up coupon
    withdraws it, at render time, without waiting for a sweep to write anything."""
    status = PassStatus(pass_row.status)
    if status != PassStatus.ACTIVE or coupon is None or offer is None:
        return status
    # Used up (its last use scanned, no next offer to roll over to) is as dead as
    # withdrawn: Wallet files it under Expired rather than showing a live code.
    if coupon.status in ("void", "used") or not offer.active:
        return PassStatus.VOIDED
    if offer.valid_until is not None and offer.valid_until <= now:
        return PassStatus.EXPIRED
    return status


def stamps_text(stamps: int, goal: int) -> str:
    """The stamp count as the card shows it: "7/10"; a full card waiting for its reward
    stays full and shows the stamps earned since as the next card's, "10/10 +2" (they
    carry over when the reward is redeemed)."""
    if stamps <= goal:
        return f"{stamps}/{goal}"
    return f"{goal}/{goal} +{stamps - goal}"


def current_overlay(session: Session, program_id: int, now: datetime | None = None) -> Offer | None:
    """The offer shown on this program's loyalty cards right now, if any.

    Read from the offer's dates at render time, so an overlay disappears by itself when it
    ends; the sweep only has to refresh the passes (no manual clean-up).
    """
    now = now or utcnow()
    return session.scalars(
        select(Offer)
        .where(
            Offer.program_id == program_id,
            Offer.overlay.is_(True),
            Offer.active.is_(True),
            or_(Offer.valid_from.is_(None), Offer.valid_from <= now),
            or_(Offer.valid_until.is_(None), Offer.valid_until > now),
        )
        .order_by(Offer.valid_from.desc(), Offer.id.desc())
        .limit(1)
    ).first()


def _membership_variables(
    merchant: Merchant, program: Program, member: Member, lang: str
) -> dict[str, Any]:
    """A club card: its end date, its benefits, and in the notice field (whose change
    message is the wallet's lock-screen notice) what the member must do. A lapsed card
    says so and stays a live card (no Apple expirationDate, Google state ACTIVE): the
    member shows its barcode at the counter to renew."""
    standing = membership_standing(program, member)
    assert standing is not None
    t = text(lang)
    out: dict[str, Any] = {"rewards_text": standing.benefits}
    if standing.valid_until is not None:
        # With the shop's offset: the same instant for Wallet, and the shop's calendar day
        # for Google, which shows the date as written (a Taipei card ending at midnight
        # must not read as the day before).
        out["membership_valid_until"] = standing.valid_until.astimezone(
            ZoneInfo(merchant.timezone)
        ).isoformat()
    # Each notice is a whole sentence with and without the price, so that a translator
    # can place the price where their language puts it.
    price = formats.money(standing.price, merchant.currency, lang) if standing.paid else ""
    if standing.state == MembershipState.PENDING:
        out["expiry_warning"] = (
            t.gettext(
                "Payment due (%(price)s): pay at the counter to start your membership.",
                price=price,
            )
            if price
            else t.gettext("Payment due: pay at the counter to start your membership.")
        )
    elif standing.valid_until is not None:
        local = standing.valid_until.astimezone(ZoneInfo(merchant.timezone))
        day = formats.day(local.date(), lang)
        if standing.state == MembershipState.LAPSED:
            out["expiry_warning"] = (
                t.gettext(
                    "Lapsed on %(day)s. Renew at the counter (%(price)s).", day=day, price=price
                )
                if price
                else t.gettext("Lapsed on %(day)s. Renew at the counter.", day=day)
            )
        elif standing.ends_soon:
            out["expiry_warning"] = (
                t.gettext(
                    "Your membership ends on %(day)s. Renew at the counter (%(price)s).",
                    day=day,
                    price=price,
                )
                if price
                else t.gettext("Your membership ends on %(day)s. Renew at the counter.", day=day)
            )
    return out


def _member_variables(
    session: Session, merchant: Merchant, program: Program, member: Member, reader: str
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    t: Text = text(reader)
    parsed = program_rules(program)
    if program.kind in (ProgramKind.POINTS, ProgramKind.TIERS):
        out["points"] = member.points_balance
        out["tier"] = member.tier or ""
        if member.tier and isinstance(parsed, loyalty_rules.TiersRules):
            named = tiers.level_named(parsed, member.tier)
            out["tier"] = named.name_in(reader) if named is not None else member.tier
    elif program.kind == ProgramKind.STAMPS:
        assert isinstance(parsed, loyalty_rules.StampsRules)
        out["stamps"] = member.stamps_balance
        out["stamps_goal"] = parsed.goal
        out["stamps_left"] = max(parsed.goal - member.stamps_balance, 0)
        out["stamps_text"] = stamps_text(member.stamps_balance, parsed.goal)
    elif program.kind == ProgramKind.MEMBERSHIP:
        out.update(_membership_variables(merchant, program, member, reader))
    if isinstance(parsed, loyalty_rules.TiersRules):
        level = tiers.level_named(parsed, member.tier) if member.tier else None
        if level is not None and level.discount_percent:
            out["tier_discount"] = _percent(level.discount_percent, reader)
        upcoming = tiers.next_tier(parsed, member.lifetime_spend or Decimal(0))
        if upcoming is not None:
            target, missing = upcoming
            out["next_tier_text"] = t.gettext(
                "%(amount)s to %(tier)s",
                amount=formats.money(missing, merchant.currency, reader),
                tier=target.name_in(reader),
            )
    if program.kind in (ProgramKind.POINTS, ProgramKind.TIERS, ProgramKind.STAMPS):
        # A stamp card's goal and intermediate rewards are in its catalogue too.
        rewards = redeemable_rewards(session, member)
        if rewards:
            out["rewards_text"] = _listed(
                [localised(r.name, r.translations, "name", reader) for r in rewards[:3]], reader
            )
    if member.expiry_warned_for is not None and member.expiry_warned_for > utcnow():
        upcoming_expiry = next_expiry(session, member, parsed, utcnow())
        if upcoming_expiry is not None and upcoming_expiry[1] == member.expiry_warned_for:
            # The shop's calendar day, whose points next_expiry counts.
            day = upcoming_expiry[1].astimezone(ZoneInfo(merchant.timezone)).date()
            out["expiry_warning"] = t.ngettext(
                "%(points)s point expires on %(day)s",
                "%(points)s points expire on %(day)s",
                upcoming_expiry[0],
                points=formats.number(upcoming_expiry[0], reader),
                day=formats.day(day, reader),
            )
    return out


def _listed(names: list[str], lang: str) -> str:
    """Names in a row as the reader lists them (CLDR): "a, b, and c", "a, b και c", "a、b和c"."""
    return format_list(names, style="standard", locale=babel_locale(lang))
