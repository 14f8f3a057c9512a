"""Club cards: a paid one pending until paid, a lapsed one kept in the wallet, renewal."""

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


def test_paid_membership_is_pending_until_paid_then_lapses_and_renews(runtime, settings):
    club = shop(
        runtime, settings, "membership", {"paid": True, "price": "29.00", "validity_months": 12}
    )
    card = join(runtime, settings, club)
    with runtime.transaction(club["merchant_id"]) as s:
        member = s.get(Member, card["member_id"])
        # Joining a paid membership grants nothing: the card waits for its payment.
        assert member.membership_valid_until is None
        with pytest.raises(errors.ValidationFailed):
            renew_membership(s, settings, member, key="membership:R-0", actor=STAFF)
    with runtime.transaction(club["merchant_id"]) as s:
        member = s.get(Member, card["member_id"])
        renew_membership(s, settings, member, key="R-0", actor=STAFF, amount=Decimal("29"))
        joined_until = member.membership_valid_until
        assert joined_until is not None
        assert timedelta(days=360) < joined_until - utcnow() < timedelta(days=370)
        # A year goes by.
        member.membership_valid_until = utcnow() - timedelta(days=1)
    with runtime.transaction(club["merchant_id"]) as s:
        sweep_merchant(s, settings)
        # Lapsed, not expired: the card stays in the wallet, saying so, to be renewed.
        assert _pass(s, card["member_id"]).status == PassStatus.ACTIVE
    with runtime.transaction(club["merchant_id"]) as s:
        member = s.get(Member, card["member_id"])
        renew_membership(s, settings, member, key="renew-1", actor=STAFF, amount=Decimal("29"))
        # A retried renewal does not extend twice.
        renew_membership(s, settings, member, key="renew-1", actor=STAFF, amount=Decimal("29"))
        assert member.membership_valid_until > utcnow() + timedelta(days=360)
        assert member.membership_valid_until < utcnow() + timedelta(days=370)
        assert _pass(s, member.id).status == PassStatus.ACTIVE


def test_a_card_once_filed_as_expired_comes_back_as_lapsed(runtime, settings):
    club = shop(runtime, settings, "membership", {"paid": True, "price": "29.00"})
    card = join(runtime, settings, club)
    with runtime.transaction(club["merchant_id"]) as s:
        member = s.get(Member, card["member_id"])
        member.membership_valid_until = utcnow() - timedelta(days=3)
        pass_row = _pass(s, member.id)
        pass_row.status = PassStatus.EXPIRED  # what the sweep did before
        version = pass_row.version
    with runtime.transaction(club["merchant_id"]) as s:
        for _ in range(2):  # once: the second sweep finds nothing to bring back
            sweep_merchant(s, settings)
        pass_row = _pass(s, card["member_id"])
        assert pass_row.status == PassStatus.ACTIVE
        assert pass_row.version == version + 1


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
