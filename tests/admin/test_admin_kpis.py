"""KPIs from real rows, against hand-computed values."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import factories
from test_admin_support import make_shop, sign_in

from walletpass import analytics
from walletpass.campaigns.models import Campaign, CampaignRecipient
from walletpass.offers.models import Coupon, Offer
from walletpass.passes.models import PassEvent, PassStatus
from walletpass.scan.models import Scan

PARIS = ZoneInfo("Europe/Paris")
# Noon in Paris on 10 June 2025: the 7-day period is 4..10 June, local days.
NOW = datetime(2025, 6, 10, 10, 0, tzinfo=UTC)


def at(day: int, hour: int = 12) -> datetime:
    """A moment on June ``day`` at ``hour`` Paris time."""
    return datetime(2025, 6, day, hour, tzinfo=PARIS).astimezone(UTC)


def build(runtime, settings):  # type: ignore[no-untyped-def]
    shop = make_shop(
        runtime, "points", rules={"amount_per_point": "1", "points_to_currency": "0.05"}
    )
    with runtime.transaction(shop.merchant_id) as s:
        from walletpass.loyalty.models import Program
        from walletpass.tenancy.models import Merchant

        merchant = s.get(Merchant, shop.merchant_id)
        program = s.get(Program, shop.program_id)
        stamps = factories.program(s, merchant, "stamps")
        unvalued = factories.program(s, merchant, "points")  # no points_to_currency
        ann = factories.member(s, program, points_balance=300)
        bob = factories.member(s, program, points_balance=100)
        cid = factories.member(s, program, points_balance=-40)  # owes nothing
        dee = factories.member(s, unvalued, points_balance=70)
        eve = factories.member(s, stamps, points_balance=0, stamps_balance=5)
        fay = factories.member(s, program, points_balance=0)
        passes = [factories.member_pass(s, settings, m) for m in (ann, bob, cid, dee, eve)]
        passes[4].status = PassStatus.VOIDED
        p = passes[0].id

        def event(platform: str, kind: str, moment: datetime) -> None:
            s.add(
                PassEvent(
                    merchant_id=merchant.id,
                    pass_id=p,
                    platform=platform,
                    kind=kind,
                    created_at=moment,
                )
            )

        event("apple", "installed", at(4))
        event("apple", "installed", at(4, 23))  # 23:30 Paris is still the 4th locally
        event("apple", "installed", datetime(2025, 6, 4, 22, 30, tzinfo=UTC))  # 5th in Paris
        event("google", "installed", at(6))
        event("google", "removed", at(9))
        event("apple", "removed", at(10, 8))
        event("apple", "fetched", at(10, 8))  # not an install or a removal
        event("apple", "installed", at(3))  # before the period

        def scan(  # type: ignore[no-untyped-def]
            member, moment, action="purchase", amount=None, result="ok", undone=False, coupon=None
        ):
            s.add(
                Scan(
                    merchant_id=merchant.id,
                    member_id=member.id,
                    coupon_id=coupon,
                    action=action,
                    code="x",
                    amount=Decimal(amount) if amount else None,
                    result=result,
                    created_at=moment,
                    undone_at=moment if undone else None,
                )
            )

        scan(ann, at(5), amount="10.00")
        scan(ann, at(7), amount="20.00")
        scan(bob, at(7), amount="15.50")
        scan(bob, at(8), amount="99.00", undone=True)  # undone: not a visit, not spend
        scan(cid, at(8), action="lookup")  # a lookup is a scan but not a visit
        scan(dee, at(9), result="error")
        scan(eve, at(9), action="stamp")
        scan(eve, at(10, 9), action="stamp")
        scan(ann, at(2), amount="500.00")  # before the period
        s.flush()

        # Spring, about an offer, was sent on 1 June with a 1-day results window: its
        # redemptions are coupons of that offer redeemed at the till by its recipients.
        offer = Offer(merchant_id=merchant.id, slug="spring", title="Spring 20% off")
        other_offer = Offer(merchant_id=merchant.id, slug="other", title="Another offer")
        s.add_all([offer, other_offer])
        s.flush()
        campaign = Campaign(
            merchant_id=merchant.id,
            name="Spring",
            status="finished",
            offer_id=offer.id,
            window_days=1,
        )
        hello = Campaign(merchant_id=merchant.id, name="Hello", status="finished")
        quiet = Campaign(merchant_id=merchant.id, name="Never sent", offer_id=offer.id)
        s.add_all([campaign, hello, quiet])
        s.flush()
        sent = at(1)

        def recipient(campaign_row, member, **kw):  # type: ignore[no-untyped-def]
            s.add(
                CampaignRecipient(
                    merchant_id=merchant.id, campaign_id=campaign_row.id, member_id=member.id, **kw
                )
            )

        for member in (ann, bob, cid, dee, fay):
            # The campaign.measure job, which stamps redeemed_at a day at a time, has not
            # run: the chart must not wait for it.
            recipient(campaign, member, sent_at=sent, redeemed_at=None)
            # A message with no offer: its "redeemed" stamp (the member came back) is not
            # a redemption.
            recipient(hello, member, sent_at=sent, redeemed_at=sent)
        # A holdout member gets nothing and is not in the rate, whatever they redeem.
        recipient(campaign, eve, holdout=True)
        recipient(quiet, ann)

        def redeem(member, offer_row, moment, undone=False):  # type: ignore[no-untyped-def]
            coupon = Coupon(merchant_id=merchant.id, offer_id=offer_row.id, member_id=member.id)
            s.add(coupon)
            s.flush()
            scan(member, moment, action="redeem_coupon", undone=undone, coupon=coupon.id)

        redeem(ann, offer, at(2, 9))  # the one redemption
        redeem(fay, offer, at(3))  # after the results window
        redeem(bob, other_offer, at(2))  # another offer's coupon
        redeem(cid, offer, at(2), undone=True)  # undone at the till
        redeem(dee, offer, datetime(2025, 5, 30, 12, tzinfo=UTC))  # before the send
        redeem(eve, offer, at(2))  # held out
    return shop


def test_period_is_whole_local_days():
    period = analytics.Period.ending(NOW, 7, PARIS)
    assert period.day_list[0] == date(2025, 6, 4)
    assert period.day_list[-1] == date(2025, 6, 10)
    assert period.start == datetime(2025, 6, 3, 22, 0, tzinfo=UTC)
    assert period.end == datetime(2025, 6, 10, 22, 0, tzinfo=UTC)


def test_kpis_match_hand_computed_values(runtime, settings):  # type: ignore[no-untyped-def]
    shop = build(runtime, settings)
    period = analytics.Period.ending(NOW, 7, PARIS)
    with runtime.transaction(shop.merchant_id) as s:
        data = analytics.dashboard(s, period)

    ev = data.pass_events.series
    #                          4  5  6  7  8  9 10 June
    assert ev["apple installed"] == [2, 1, 0, 0, 0, 0, 0]
    assert ev["google installed"] == [0, 0, 1, 0, 0, 0, 0]
    assert ev["google removed"] == [0, 0, 0, 0, 0, 1, 0]
    assert ev["apple removed"] == [0, 0, 0, 0, 0, 0, 1]
    # Scans that stand: cid's lookup, bob's undone purchase and dee's error do not count.
    assert data.scans.series["scans"] == [0, 1, 0, 2, 0, 1, 1]
    assert data.active_passes == 4
    # Visitors: ann (2 purchases), bob (1; his second was undone), eve (2 stamps).
    assert (data.repeat.repeat_members, data.repeat.visiting_members) == (2, 3)
    assert data.repeat.rate == 2 / 3
    # (10.00 + 20.00 + 15.50) / 3
    assert data.average_spend == Decimal("15.17")
    # Offer campaigns only (Hello has nothing to redeem): ann's coupon of the offer.
    assert [(c.name, c.sent, c.redeemed) for c in data.campaigns] == [("Spring", 5, 1)]
    assert data.campaigns[0].rate == 0.2
    # 300 + 100 valued at 0.05; dee's 70 has no cash value; cid's -40 owes nothing.
    assert data.liability.points == 470
    assert data.liability.value == Decimal("20.00")
    assert data.liability.unvalued_points == 70


def test_empty_shop_has_no_rates(runtime, settings):  # type: ignore[no-untyped-def]
    shop = make_shop(runtime)
    with runtime.transaction(shop.merchant_id) as s:
        data = analytics.dashboard(s, analytics.Period.ending(NOW, 30, PARIS))
    assert data.repeat.rate is None
    assert data.average_spend is None
    assert data.campaigns == []
    assert data.liability.value == Decimal("0.00")
    assert len(data.scans.days) == 30


def test_kpis_never_mix_merchants(runtime, settings):  # type: ignore[no-untyped-def]
    build(runtime, settings)
    other = make_shop(runtime)
    with runtime.transaction(other.merchant_id) as s:
        data = analytics.dashboard(s, analytics.Period.ending(NOW, 7, PARIS))
    assert data.pass_events.total("apple installed") == 0
    assert data.scans.total("scans") == 0
    assert data.liability.points == 0


def test_dashboard_page_shows_the_figures_and_charts(client, runtime, settings):  # type: ignore[no-untyped-def]
    shop = build(runtime, settings)
    sign_in(client, shop.emails["marketer"])
    for days in (7, 30, 90):
        r = client.get(f"/admin/?days={days}")
        assert r.status_code == 200
    body = client.get("/admin/?days=90").get_data(as_text=True)
    assert "/admin/static/plotly.js?v=" in body
    assert 'id="chart-installs"' in body
    assert 'id="chart-scans"' in body
    assert 'id="chart-campaigns"' in body  # campaigns with results exist
    assert "20.0%  (1\\u002f5)" in body  # Spring's bar: 1 of 5 (plotly's JSON escapes "/")
    assert "€20.00" in body  # liability, in the merchant's currency as English writes it
    assert "470 points outstanding" in body
