"""Results from real rows with hand-computed expectations: delivered proxy (Apple fetch
within 1 h, Google message job done), redemptions, uplift vs the holdout, fatigue."""

from __future__ import annotations

from datetime import timedelta

import factories
import pytest
from sqlalchemy import select, update

import walletpass.campaigns.jobs  # noqa: F401 - registers the campaign job kinds
from walletpass.campaigns import services
from walletpass.campaigns.fanout import google_message_key
from walletpass.campaigns.models import Campaign, CampaignRecipient
from walletpass.campaigns.results import campaign_results
from walletpass.db import utcnow
from walletpass.jobs.models import Job, JobStatus
from walletpass.jobs.worker import Worker
from walletpass.offers.models import Coupon, Offer
from walletpass.passes.models import PassEvent
from walletpass.scan.models import Scan

T0 = utcnow().replace(microsecond=0) - timedelta(days=30)


@pytest.fixture(autouse=True)
def _no_spacing(monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(services, "BATCH_SPACING", timedelta(0))


def _setup(runtime, settings, *, offer=False):  # type: ignore[no-untyped-def]
    """Ten consenting members, 20 % held out, variants A/B; all sent at T0 + 1 min."""
    with runtime.transaction() as s:
        m = factories.merchant(s)
        p = factories.program(s, m, "points")
        for _ in range(10):
            factories.member_pass(s, settings, factories.member(s, p, marketing_consent=True))
        offer_row = other = None
        if offer:
            offer_row = Offer(
                merchant_id=m.id,
                slug=f"o{m.id}",
                title="2 for 1",
                valid_until=utcnow() + timedelta(days=30),
            )
            other = Offer(merchant_id=m.id, slug=f"x{m.id}", title="other")
            s.add_all([offer_row, other])
            s.flush()
        mid = m.id
    with runtime.transaction(mid) as s:
        c = services.create_campaign(
            s,
            settings,
            merchant_id=mid,
            name="r",
            message="Come back",
            seed=11,
            audience={"kind": "all"},
            holdout_share=0.2,
            offer_id=offer_row.id if offer_row else None,
            variants=[{"name": "A", "share": 0.5}, {"name": "B", "share": 0.5}],
        )
        services.launch(s, settings, c, now=T0)
        cid = c.id
    # Only the fan-out: there is no APNs here, and the pushes are not what is measured.
    Worker(runtime, name="fanout-only", kinds=["campaign.fanout"]).run_until_idle()
    with runtime.transaction() as s:
        s.execute(
            update(CampaignRecipient)
            .where(CampaignRecipient.status == "sent")
            .values(sent_at=T0 + timedelta(minutes=1), via_apple=True)
        )
        rows = s.scalars(
            select(CampaignRecipient)
            .where(CampaignRecipient.campaign_id == cid)
            .order_by(CampaignRecipient.id)
        ).all()
    treated = [r for r in rows if not r.holdout]
    held = [r for r in rows if r.holdout]
    assert (len(treated), len(held)) == (8, 2)
    return {
        "merchant_id": mid,
        "campaign_id": cid,
        "t": treated,
        "h": held,
        "offer_id": offer_row.id if offer_row else None,
        "other_offer_id": other.id if other else None,
    }


def _event(s, w, r, kind, after, platform="apple"):  # type: ignore[no-untyped-def]
    s.add(
        PassEvent(
            merchant_id=w["merchant_id"],
            pass_id=r.pass_id,
            platform=platform,
            kind=kind,
            created_at=T0 + after,
        )
    )


def _scan(s, w, r, after, *, action="purchase", result="ok", undone=False, coupon_id=None):  # type: ignore[no-untyped-def]
    s.add(
        Scan(
            merchant_id=w["merchant_id"],
            pass_id=r.pass_id,
            member_id=r.member_id,
            action=action,
            code="x",
            result=result,
            coupon_id=coupon_id,
            created_at=T0 + after,
            undone_at=T0 + after if undone else None,
        )
    )


def test_results_from_events_scans_and_jobs(runtime, settings):
    w = _setup(runtime, settings)
    t, h = w["t"], w["h"]
    with runtime.transaction() as s:
        # Delivery: t0 fetched 10 min after the send (counts), t1 after 2 h (too late),
        # t2 fetched before the send (an earlier visit, not this push).
        _event(s, w, t[0], "fetched", timedelta(minutes=11))
        _event(s, w, t[1], "fetched", timedelta(hours=2))
        _event(s, w, t[2], "fetched", timedelta(seconds=-30))
        # Google: t3's message job was done (stamped on its row); t4's died.
        s.execute(
            update(CampaignRecipient)
            .where(CampaignRecipient.id.in_([t[3].id, t[4].id]))
            .values(via_google=True)
        )
        s.execute(
            update(CampaignRecipient)
            .where(CampaignRecipient.id == t[3].id)
            .values(google_delivered_at=T0 + timedelta(minutes=2))
        )
        s.add(
            Job(
                merchant_id=w["merchant_id"],
                kind="google.message",
                status=JobStatus.DEAD,
                payload={"pass_id": t[4].pass_id},
                dedupe_key=google_message_key(w["campaign_id"], t[4].pass_id),
            )
        )
        # Fatigue: t5 removed after 47 h (counts), t6 after 49 h (not); h0 after 5 h.
        _event(s, w, t[5], "removed", timedelta(hours=47))
        _event(s, w, t[6], "removed", timedelta(hours=49), platform="google")
        _event(s, w, h[0], "removed", timedelta(hours=5))
        # Till scans: t0 twice within 14 days; t1 on day 20 (outside); t5 undone, t6 an
        # error, t7 a lookup (none count); h1 once on day 3.
        _scan(s, w, t[0], timedelta(days=1))
        _scan(s, w, t[0], timedelta(days=2), action="stamp")
        _scan(s, w, t[1], timedelta(days=20))
        _scan(s, w, t[5], timedelta(days=1), undone=True)
        _scan(s, w, t[6], timedelta(days=1), result="error")
        _scan(s, w, t[7], timedelta(days=1), action="lookup")
        _scan(s, w, h[1], timedelta(days=3))
    with runtime.transaction(w["merchant_id"]) as s:
        res = campaign_results(s, w["campaign_id"])
    assert (res["recipients"], res["treated"], res["holdout"], res["sent"]) == (10, 8, 2, 8)
    assert res["holdout_share_actual"] == 0.2
    assert res["platforms"]["apple"] == {"sent": 8, "delivered": 1, "rate": 0.125}
    assert res["platforms"]["google"] == {"sent": 2, "delivered": 1, "rate": 0.5}
    assert (res["delivered"], res["delivery_rate"]) == (2, 0.25)
    # Message-only campaign: "redeemed" = came back to the till within the window.
    assert (res["redeemed"], res["redemption_rate"]) == (1, 0.125)
    assert (res["holdout_redeemed"], res["holdout_redemption_rate"]) == (1, 0.5)
    up = res["uplift"]
    assert up["treated"] == {
        "members": 8,
        "scans": 2,
        "scans_per_member": 0.25,
        "members_with_scan": 1,
        "share_with_scan": 0.125,
    }
    assert up["holdout"] == {
        "members": 2,
        "scans": 1,
        "scans_per_member": 0.5,
        "members_with_scan": 1,
        "share_with_scan": 0.5,
    }
    assert up["scans_per_member_diff"] == -0.25
    assert up["share_with_scan_diff_points"] == -37.5
    assert res["fatigue"] == {
        "removed_48h": 1,
        "rate": 0.125,
        "holdout_removed_48h": 1,
        "holdout_rate": 0.5,
    }
    # Per variant, from the recipients' own variants.
    expected: dict[str, dict[str, int]] = {}
    for i, r in enumerate(t):
        v = expected.setdefault(
            r.variant, {"sent": 0, "delivered": 0, "redeemed": 0, "removed_48h": 0}
        )
        v["sent"] += 1
        v["delivered"] += i in (0, 3)
        v["redeemed"] += i == 0
        v["removed_48h"] += i == 5
    got = {
        k: {f: v[f] for f in ("sent", "delivered", "redeemed", "removed_48h")}
        for k, v in res["variants"].items()
    }
    assert got == expected
    # The measure job stamps the same figures on the recipient rows.
    with runtime.transaction(w["merchant_id"]) as s:
        s.execute(update(Job).where(Job.kind == "campaign.measure").values(run_at=utcnow()))
    Worker(runtime, name="measure", kinds=["campaign.measure"]).run_until_idle()
    with runtime.transaction() as s:
        stamped = {
            r.id: (r.delivered_at, r.redeemed_at)
            for r in s.scalars(
                select(CampaignRecipient).where(CampaignRecipient.campaign_id == w["campaign_id"])
            )
        }
    assert stamped[t[0].id] == (T0 + timedelta(minutes=11), T0 + timedelta(days=1))
    assert stamped[t[3].id][0] is not None
    assert stamped[t[3].id][1] is None
    assert sum(1 for d, _ in stamped.values() if d) == 2
    assert sum(1 for _, r in stamped.values() if r) == 1
    assert sum(v["sent"] for v in expected.values()) == 8


def test_offer_campaign_counts_only_that_offers_coupons(runtime, settings):
    w = _setup(runtime, settings, offer=True)
    t, h = w["t"], w["h"]
    with runtime.transaction() as s:

        def coupon(r, offer_id):  # type: ignore[no-untyped-def]
            row = Coupon(merchant_id=w["merchant_id"], offer_id=offer_id, member_id=r.member_id)
            s.add(row)
            s.flush()
            return row.id

        _scan(
            s,
            w,
            t[0],
            timedelta(days=1),
            action="redeem_coupon",
            coupon_id=coupon(t[0], w["offer_id"]),
        )
        _scan(
            s,
            w,
            t[1],
            timedelta(days=1),
            action="redeem_coupon",
            coupon_id=coupon(t[1], w["other_offer_id"]),
        )
        _scan(s, w, t[2], timedelta(days=1))  # a visit, but no coupon of this offer
        _scan(
            s,
            w,
            h[0],
            timedelta(days=2),
            action="redeem_coupon",
            coupon_id=coupon(h[0], w["offer_id"]),
        )
    with runtime.transaction(w["merchant_id"]) as s:
        res = campaign_results(s, w["campaign_id"])
        assert s.get(Campaign, w["campaign_id"]).title == "2 for 1"
    assert (res["redeemed"], res["redemption_rate"]) == (1, 0.125)
    assert (res["holdout_redeemed"], res["holdout_redemption_rate"]) == (1, 0.5)
    # Till scans of every kind count for the uplift: 3 scans among 8 vs 1 among 2.
    assert res["uplift"]["scans_per_member_diff"] == round(3 / 8 - 1 / 2, 4)


def test_results_of_a_draft_are_empty(runtime, settings):
    with runtime.transaction() as s:
        m = factories.merchant(s)
        c = services.create_campaign(
            s, settings, merchant_id=m.id, name="d", message="m", audience={"kind": "all"}
        )
        res = campaign_results(s, c.id)
    assert (res["sent"], res["delivered"], res["uplift"]) == (0, 0, None)
