"""What the card page (/p/<serial>) says about a card, in the page's language.

The page is read by whoever opened the link, in the language of the page (the switcher,
the browser, the shop's); the pass itself speaks the member's stored language. So the
page writes its own labels and formats the card's numbers, dates and money itself, from
the values the card layer computed (walletpass.cards.variables), rather than showing the
pass's texts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from babel.numbers import format_percent
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy.orm import Session

from walletpass.cards.variables import discount_text
from walletpass.i18n import formats
from walletpass.i18n.languages import babel_locale
from walletpass.loyalty import tiers
from walletpass.loyalty.models import Member, Program, ProgramKind
from walletpass.loyalty.programs import program_rules
from walletpass.loyalty.rules import TiersRules
from walletpass.offers.models import Coupon, Offer
from walletpass.passes.models import Pass
from walletpass.tenancy.models import Merchant
from walletpass.web.i18n import current_language

# A row of dots, not a wall of them: a goal of 50 stamps shows its count in words only.
MAX_STAMP_DOTS = 20


@dataclass(frozen=True)
class WalletChoices:
    """How the page offers the card: wallet buttons, or the card file and the barcode.

    ``buttons`` in the order the visitor most likely wants them; ``pkpass_file`` is the
    plain download offered instead of a lone Apple button to an Android phone when Google
    Wallet is not configured (recent Android wallet apps import a .pkpass);
    ``barcode_first`` puts the barcode at the top, for whom the page itself is the card.
    """

    buttons: tuple[str, ...]
    pkpass_file: bool
    barcode_first: bool


def wallet_choices(platform: str, *, google_enabled: bool) -> WalletChoices:
    if google_enabled:
        order = ("google", "apple") if platform == "google" else ("apple", "google")
        return WalletChoices(order, pkpass_file=False, barcode_first=False)
    if platform == "google":
        return WalletChoices((), pkpass_file=True, barcode_first=True)
    return WalletChoices(("apple",), pkpass_file=False, barcode_first=False)


def shop_day(value: str | date | datetime, timezone: str) -> str:
    """A moment as the shop's calendar day, written as the page's reader writes dates."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(ZoneInfo(timezone))
        value = value.date()
    return formats.day(value, current_language())


def validity_text(start: datetime | None, end: datetime | None, timezone: str) -> str:
    if start and end:
        return _(
            "Valid %(start)s to %(end)s.",
            start=shop_day(start, timezone),
            end=shop_day(end, timezone),
        )
    if end:
        return _("Valid until %(day)s.", day=shop_day(end, timezone))
    if start:
        return _("Valid from %(day)s.", day=shop_day(start, timezone))
    return ""


def card_rows(
    session: Session,
    pass_row: Pass,
    v: dict[str, Any],
    merchant: Merchant,
    program: Program | None,
) -> list[tuple[str, str]]:
    """The card's state as label/value rows, from its pass variables ``v``."""
    lang = current_language()
    rows: list[tuple[str, str]] = []
    if v.get("member_name"):
        rows.append((_("Member"), v["member_name"]))
    if v.get("points") is not None:
        rows.append((_("Points"), formats.number(int(v["points"]), lang)))
    if v.get("stamps") is not None:
        # A full card waiting for its reward stays full; the stamps since are the next
        # card's (as the pass's stamps_text shows them).
        stamps, goal = int(v["stamps"]), int(v["stamps_goal"])
        shown = _(
            "%(stamps)s of %(goal)s",
            stamps=formats.number(min(stamps, goal), lang),
            goal=formats.number(goal, lang),
        )
        if stamps > goal:
            shown += f" +{formats.number(stamps - goal, lang)}"
        rows.append((_("Stamps"), shown))
    rules = program_rules(program) if program is not None else None
    member = session.get(Member, pass_row.member_id) if pass_row.member_id else None
    if isinstance(rules, TiersRules) and member is not None:
        rows += _level_rows(rules, member, v, merchant.currency)
    if v.get("membership_valid_until"):
        rows.append((_("Valid until"), shop_day(v["membership_valid_until"], merchant.timezone)))
    coupon = session.get(Coupon, pass_row.coupon_id) if pass_row.coupon_id else None
    if coupon is not None:
        offer = session.get(Offer, coupon.offer_id)
        assert offer is not None
        rows += _coupon_rows(offer, v, merchant)
    if v.get("rewards_text"):
        is_membership = v.get("program_kind") == ProgramKind.MEMBERSHIP
        label = _("Member benefits") if is_membership else _("Ready to redeem")
        rows.append((label, v["rewards_text"]))
    return rows


def _level_rows(
    rules: TiersRules, member: Member, v: dict[str, Any], currency: str
) -> list[tuple[str, str]]:
    lang = current_language()
    rows: list[tuple[str, str]] = []
    if v.get("tier"):
        # The level is found by the name the member row holds; the name shown is the
        # card's (which may be the level's name in the member's language).
        level = tiers.level_named(rules, member.tier) if member.tier else None
        name = v["tier"]
        if level is not None and level.discount_percent:
            percent = format_percent(level.discount_percent / 100, locale=babel_locale(lang))
            name = _("%(tier)s (%(discount)s off)", tier=name, discount=percent)
        rows.append((_("Level"), name))
    upcoming = tiers.next_tier(rules, member.lifetime_spend or Decimal(0))
    if upcoming is not None:
        target, missing = upcoming
        amount = formats.money(missing, currency, lang)
        tier = target.name_in(lang)
        rows.append((_("Next level"), _("%(amount)s to %(tier)s", amount=amount, tier=tier)))
    return rows


def _coupon_rows(offer: Offer, v: dict[str, Any], merchant: Merchant) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    discount = discount_text(offer.discount or {}, merchant.currency, current_language())
    if discount:
        rows.append((_("Discount"), discount))
    if v.get("coupon_uses_left") is not None:
        uses = formats.number(int(v["coupon_uses_left"]), current_language())
        rows.append((_("Uses left"), uses))
    validity = validity_text(offer.valid_from, offer.valid_until, merchant.timezone)
    if validity:
        rows.append((_("Valid"), validity))
    return rows


def stamps_to_go(v: dict[str, Any]) -> str:
    left = v.get("stamps_left")
    if not left:
        return ""
    return ngettext("One more stamp to go.", "%(num)s more stamps to go.", int(left))


def stamp_slots(v: dict[str, Any]) -> list[bool]:
    if v.get("stamps") is None or not v.get("stamps_goal"):
        return []
    goal = min(int(v["stamps_goal"]), MAX_STAMP_DOTS)
    return [i < int(v["stamps"]) for i in range(goal)]
