"""Club cards: validity from joining, expiry into Wallet's expired section, renewal."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from scan_helpers import join, shop

from walletpass import errors
from walletpass.db import utcnow
from walletpass.loyalty.ledger import Actor
from walletpass.loyalty.memberships import renew_membership
from walletpass.loyalty.models import Member
from walletpass.loyalty.sweeps import sweep_merchant
from walletpass.passes.models import Pass, PassStatus

STAFF = Actor("staff", "1")


def _pass(s, member_id):  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    return s.scalars(select(Pass).where(Pass.member_id == member_id)).one()


def test_paid_membership_expires_then_renews(runtime, settings):
    club = shop(
        runtime, settings, "membership", {"paid": True, "price": "29.00", "validity_months": 12}
    )
    card = join(runtime, settings, club)
    with runtime.transaction(club["merchant_id"]) as s:
        member = s.get(Member, card["member_id"])
        joined_until = member.membership_valid_until
        assert joined_until is not None
        assert timedelta(days=360) < joined_until - utcnow() < timedelta(days=370)
        version = _pass(s, member.id).version
        # A year goes by.
        member.membership_valid_until = utcnow() - timedelta(days=1)
    with runtime.transaction(club["merchant_id"]) as s:
        sweep_merchant(s, settings)
        pass_row = _pass(s, card["member_id"])
        assert pass_row.status == PassStatus.EXPIRED
        assert pass_row.version == version + 1
    with runtime.transaction(club["merchant_id"]) as s:
        member = s.get(Member, card["member_id"])
        with pytest.raises(errors.ValidationFailed):
            renew_membership(s, settings, member, key="renew-1", actor=STAFF)
    with runtime.transaction(club["merchant_id"]) as s:
        member = s.get(Member, card["member_id"])
        renew_membership(s, settings, member, key="renew-1", actor=STAFF, amount=Decimal("29"))
        # A retried renewal does not extend twice.
        renew_membership(s, settings, member, key="renew-1", actor=STAFF, amount=Decimal("29"))
        assert member.membership_valid_until > utcnow() + timedelta(days=360)
        assert member.membership_valid_until < utcnow() + timedelta(days=370)
        assert _pass(s, member.id).status == PassStatus.ACTIVE


def test_free_membership_with_auto_renewal_never_lapses(runtime, settings):
    club = shop(runtime, settings, "membership", {"validity_months": 1, "renewal": "auto"})
    card = join(runtime, settings, club)
    with runtime.transaction(club["merchant_id"]) as s:
        until = s.get(Member, card["member_id"]).membership_valid_until
    with runtime.transaction(club["merchant_id"]) as s:
        for _ in range(2):  # idempotent: the second sweep finds nothing lapsed
            sweep_merchant(s, settings, now=until + timedelta(hours=1))
        member = s.get(Member, card["member_id"])
        assert member.membership_valid_until > until
        assert _pass(s, member.id).status == PassStatus.ACTIVE
