"""Audience selection per kind, consent, the holdout draw, variant split, validation."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from decimal import Decimal

import factories
import pytest
from sqlalchemy import select

import walletpass.campaigns.jobs  # noqa: F401 - registers the campaign job kinds
from walletpass import errors
from walletpass.campaigns import services
from walletpass.campaigns.models import Campaign, CampaignRecipient, RecipientStatus
from walletpass.db import utcnow
from walletpass.loyalty.models import LedgerEntry

TIERS = {
    "amount_per_point": "1",
    "levels": [{"name": "Silver", "min_spend": "0"}, {"name": "Gold", "min_spend": "500"}],
}


def _member(s, settings, program, *, card=True, **kw):  # type: ignore[no-untyped-def]
    kw.setdefault("marketing_consent", True)
    row = factories.member(s, program, **kw)
    if card:
        factories.member_pass(s, settings, row)
    return row


@pytest.fixture
def shop(runtime, settings):  # type: ignore[no-untyped-def]
    now = utcnow()
    with runtime.transaction() as s:
        m = factories.merchant(s)
        p = factories.program(s, m, "tiers", rules=TIERS)
        members = {
            "gold": _member(s, settings, p, tier="Gold", last_activity_at=now),
            "gold_no_consent": _member(s, settings, p, tier="Gold", marketing_consent=False),
            "gold_no_card": _member(s, settings, p, tier="Gold", card=False),
            "silver_lapsed": _member(
                s, settings, p, tier="Silver", last_activity_at=now - timedelta(days=90)
            ),
            "never_active_old": _member(s, settings, p, created_at=now - timedelta(days=120)),
            "may_birthday": _member(
                s, settings, p, birthday=date(1990, 5, 17), last_activity_at=now
            ),
            "vip": _member(
                s, settings, p, tags={"vip": True, "newsletter": False}, last_activity_at=now
            ),
            "not_vip": _member(s, settings, p, tags={"vip": False}, last_activity_at=now),
        }
        return {"merchant_id": m.id, "program_id": p.id, **{k: v.id for k, v in members.items()}}


def _chosen(runtime, settings, shop, audience):  # type: ignore[no-untyped-def]
    with runtime.transaction(shop["merchant_id"]) as s:
        c = services.create_campaign(
            s,
            settings,
            merchant_id=shop["merchant_id"],
            name="t",
            message="Hello",
            audience=audience,
            seed=1,
        )
        services.launch(s, settings, c)
        members = set(
            s.scalars(
                select(CampaignRecipient.member_id).where(CampaignRecipient.campaign_id == c.id)
            )
        )
        return members, c.excluded_no_consent, c.excluded_no_pass


def _ids(shop, *names):  # type: ignore[no-untyped-def]
    return {shop[n] for n in names}


@pytest.mark.parametrize(
    ("audience", "expected"),
    [
        (
            {"kind": "all"},
            ("gold", "silver_lapsed", "never_active_old", "may_birthday", "vip", "not_vip"),
        ),
        ({"kind": "tier", "tier": "Gold"}, ("gold",)),
        ({"kind": "lapsed", "days": 60}, ("silver_lapsed", "never_active_old")),
        ({"kind": "birthday_month", "month": 5}, ("may_birthday",)),
        ({"kind": "tag", "tag": "vip"}, ("vip",)),
        ({"kind": "tag", "tag": "newsletter"}, ()),
    ],
    ids=["all", "tier", "lapsed", "birthday", "tag", "tag-false"],
)
def test_audience_kinds(runtime, settings, shop, audience, expected):
    members, _, _ = _chosen(runtime, settings, shop, audience)
    assert members == _ids(shop, *expected)


def test_consent_and_card_exclusions_are_counted(runtime, settings, shop):
    members, no_consent, no_pass = _chosen(
        runtime, settings, shop, {"kind": "tier", "tier": "Gold"}
    )
    assert members == {shop["gold"]}
    assert (no_consent, no_pass) == (1, 1)


def test_rfm_segments(runtime, settings, shop):
    now = utcnow()
    with runtime.transaction() as s:
        # Ten buyers: buyer i bought i+1 times, the last time 10*(10-i) days ago, so
        # the most frequent buyers are also the most recent ones.
        p_id = shop["program_id"]
        from walletpass.loyalty.models import Program

        program = s.get(Program, p_id)
        buyers = []
        for i in range(10):
            mem = _member(s, settings, program)
            buyers.append(mem.id)
            for k in range(i + 1):
                s.add(
                    LedgerEntry(
                        merchant_id=shop["merchant_id"],
                        member_id=mem.id,
                        kind="earn",
                        points=1,
                        amount=Decimal("10.00"),
                        actor_type="system",
                        idempotency_key=f"rfm{i}-{k}",
                        created_at=now - timedelta(days=10 * (10 - i) + k),
                    )
                )
        s.flush()
    champions, _, _ = _chosen(runtime, settings, shop, {"kind": "rfm", "segment": "champions"})
    # Quintiles of 10 buyers: two per score; scores 4-5 on both R and F are the top four.
    assert champions == set(buyers[6:])
    hibernating, _, _ = _chosen(runtime, settings, shop, {"kind": "rfm", "segment": "hibernating"})
    assert hibernating == set(buyers[:4])
    inactive, _, _ = _chosen(runtime, settings, shop, {"kind": "rfm", "segment": "inactive"})
    assert inactive == _ids(
        shop, "gold", "silver_lapsed", "never_active_old", "may_birthday", "vip", "not_vip"
    )


@pytest.mark.parametrize("n", [7, 100, 999, 12345])
@pytest.mark.parametrize("share", [0.0, 0.1, 0.25, 0.5])
def test_holdout_share_is_exact_and_deterministic(n, share):
    holdout, _ = services.assign(n, share, [], seed=42)
    assert sum(holdout) == int(n * share + 0.5)
    assert abs(sum(holdout) / n - share) <= 0.01 or n < 100
    assert services.assign(n, share, [], seed=42)[0] == holdout
    if share > 0 and n >= 100:
        assert services.assign(n, share, [], seed=43)[0] != holdout


def test_variants_split_by_share_among_the_treated():
    variants = [
        {"name": "A", "share": 0.5},
        {"name": "B", "share": 0.3},
        {"name": "C", "share": 0.2},
    ]
    holdout, names = services.assign(1001, 0.1, variants, seed=7)
    treated = [v for h, v in zip(holdout, names, strict=True) if not h]
    assert all(v is None for h, v in zip(holdout, names, strict=True) if h)
    counts = Counter(treated)
    assert sum(counts.values()) == 1001 - 100
    assert counts == {"A": 451, "B": 270, "C": 180}  # 450.5, 270.3, 180.2 → +1 to A


def test_launch_writes_holdout_and_variants(runtime, settings):
    with runtime.transaction() as s:
        m = factories.merchant(s)
        p = factories.program(s, m, "points")
        for _ in range(200):
            _member(s, settings, p)
        mid = m.id
    with runtime.transaction(mid) as s:
        c = services.create_campaign(
            s,
            settings,
            merchant_id=mid,
            name="AB",
            message="base",
            audience={"kind": "all"},
            variants=[
                {"name": "A", "message": "Hello A", "share": 0.5},
                {"name": "B", "message": "Hello B", "share": 0.5},
            ],
            holdout_share=0.1,
            seed=5,
        )
        assert services.launch(s, settings, c) == 200
        rows = s.execute(
            select(
                CampaignRecipient.holdout, CampaignRecipient.variant, CampaignRecipient.status
            ).where(CampaignRecipient.campaign_id == c.id)
        ).all()
        assert sum(1 for h, _, _ in rows if h) == 20
        assert Counter(v for h, v, _ in rows if not h) == {"A": 90, "B": 90}
        assert Counter(st for _, _, st in rows) == {
            RecipientStatus.PENDING: 180,
            RecipientStatus.HOLDOUT: 20,
        }
        assert (c.total, c.holdout_count, c.status) == (180, 20, "sending")
        # Launching again changes nothing.
        assert services.launch(s, settings, c) == 200
        assert s.get(Campaign, c.id).total == 180


def test_validation_errors_name_their_fields(runtime, settings):
    with runtime.transaction() as s:
        m = factories.merchant(s)
        with pytest.raises(errors.ValidationFailed) as info:
            services.create_campaign(
                s,
                settings,
                merchant_id=m.id,
                name="",
                message="",
                audience={"kind": "tier"},
                holdout_share=0.9,
                offer_id=999999,
                variants=[{"name": "A", "share": 0.7}, {"name": "A", "share": 0.7}],
            )
    fields = {e["field"] for e in info.value.errors}
    assert {
        "name",
        "audience.tier",
        "holdout_share",
        "offer_id",
        "variants[1].name",
        "variants",
        "message",
    } <= fields
    assert info.value.status == 422
