"""Small builders for the rows tests need. They flush, never commit."""

from __future__ import annotations

import itertools
from typing import Any

from sqlalchemy.orm import Session

from walletpass.apple.models import Device, Registration
from walletpass.config import Settings
from walletpass.loyalty.models import Member, Program
from walletpass.loyalty.rewards import sync_card_rewards
from walletpass.offers.models import Coupon, Offer
from walletpass.passes import codes
from walletpass.passes.models import Pass
from walletpass.passes.services import issue_pass
from walletpass.tenancy.models import Merchant

_seq = itertools.count(1)

DEFAULT_RULES: dict[str, dict[str, Any]] = {
    "points": {"amount_per_point": "1"},
    "stamps": {"goal": 10, "reward_name": "Free coffee"},
    "tiers": {"amount_per_point": "1", "levels": [{"name": "Member", "min_spend": "0"}]},
    "membership": {"paid": False, "validity_months": 12},
    "offers": {},
}

TEMPLATE_FOR_KIND = {
    "stamps": "stamp_card",
    "points": "points_tiers",
    "tiers": "points_tiers",
    "membership": "membership",
    "offers": "coupon",
}


def merchant(session: Session, **kw: Any) -> Merchant:
    n = next(_seq)
    row = Merchant(slug=kw.pop("slug", f"m{n}"), name=kw.pop("name", f"Café {n}"), **kw)
    session.add(row)
    session.flush()
    return row


def program(session: Session, merchant_row: Merchant, kind: str = "points", **kw: Any) -> Program:
    n = next(_seq)
    row = Program(
        merchant_id=merchant_row.id,
        slug=kw.pop("slug", f"p{n}"),
        name=kw.pop("name", f"Program {n}"),
        kind=kind,
        template=kw.pop("template", TEMPLATE_FOR_KIND[kind]),
        rules=kw.pop("rules", DEFAULT_RULES[kind]),
        **kw,
    )
    session.add(row)
    session.flush()
    # As the admin, the API and the demo save a program: a stamp card's rewards are rows.
    sync_card_rewards(session, row)
    return row


def member(session: Session, program_row: Program, **kw: Any) -> Member:
    n = next(_seq)
    row = Member(
        merchant_id=program_row.merchant_id,
        program_id=program_row.id,
        name=kw.pop("name", f"Member {n}"),
        email=kw.pop("email", f"member{n}@example.test"),
        referral_code=codes.new_referral_code(),
        **kw,
    )
    session.add(row)
    session.flush()
    return row


def member_pass(session: Session, settings: Settings, member_row: Member) -> Pass:
    program_row = session.get(Program, member_row.program_id)
    assert program_row is not None
    return issue_pass(
        session,
        settings,
        merchant_id=member_row.merchant_id,
        template=program_row.template,
        program_id=program_row.id,
        member_id=member_row.id,
    )


def coupon_pass(
    session: Session, settings: Settings, merchant_row: Merchant, **offer_kw: Any
) -> Pass:
    n = next(_seq)
    offer = Offer(
        merchant_id=merchant_row.id,
        slug=offer_kw.pop("slug", f"o{n}"),
        title=offer_kw.pop("title", "20% off"),
        discount=offer_kw.pop("discount", {"type": "percent", "value": 20}),
        **offer_kw,
    )
    session.add(offer)
    session.flush()
    coupon = Coupon(merchant_id=merchant_row.id, offer_id=offer.id)
    session.add(coupon)
    session.flush()
    return issue_pass(
        session, settings, merchant_id=merchant_row.id, template="coupon", coupon_id=coupon.id
    )


def on_phone(session: Session, pass_row: Pass, token: str) -> Device:
    """``pass_row`` registered on a phone of its own whose push token is ``token``."""
    device = Device(
        merchant_id=pass_row.merchant_id,
        library_id=f"lib-{token}",
        pass_type_id=pass_row.pass_type_id,
        push_token=token,
    )
    session.add(device)
    session.flush()
    session.add(
        Registration(merchant_id=pass_row.merchant_id, device_id=device.id, pass_id=pass_row.id)
    )
    session.flush()
    return device
