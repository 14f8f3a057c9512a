"""Offers: merchant time zone to UTC, validation, issuing to a tier, overlay refresh."""

from __future__ import annotations

from datetime import UTC, datetime

import factories
from sqlalchemy import select
from test_admin_support import make_shop, post, sign_in

from walletpass.jobs.models import Job
from walletpass.loyalty.models import Program
from walletpass.offers.models import Coupon, Offer
from walletpass.passes.models import Pass

TIERS = {
    "amount_per_point": "1",
    "levels": [{"name": "Member", "min_spend": "0"}, {"name": "Gold", "min_spend": "100"}],
}

FORM = {
    "title": "Spring sale",
    "slug": "spring-sale",
    "description": "20% off all pastries",
    "terms": "One per visit.",
    "discount_type": "percent",
    "discount_value": "20",
    # Paris is UTC+2 in summer: 09:00 local is 07:00 UTC.
    "valid_from": "2025-06-01T09:00",
    "valid_until": "2025-06-30T21:30",
    "uses_per_coupon": "1",
    "total_cap": "500",
    "active": "on",
}


def test_offer_times_are_read_in_the_merchants_zone_and_stored_utc(client, runtime):  # type: ignore[no-untyped-def]
    shop = make_shop(runtime)
    sign_in(client, shop.emails["marketer"])
    r = post(client, "/admin/offers/new", FORM)
    assert r.status_code == 302
    with runtime.transaction(shop.merchant_id) as s:
        offer = s.scalars(select(Offer)).one()
        assert offer.valid_from == datetime(2025, 6, 1, 7, 0, tzinfo=UTC)
        assert offer.valid_until == datetime(2025, 6, 30, 19, 30, tzinfo=UTC)
        assert offer.discount == {"type": "percent", "value": 20}
        assert (offer.total_cap, offer.uses_per_coupon, offer.overlay) == (500, 1, False)
        offer_id = offer.id
    # And shown back in local time on the edit form.
    page = client.get(f"/admin/offers/{offer_id}").get_data(as_text=True)
    assert 'value="2025-06-01T09:00"' in page
    assert 'value="2025-06-30T21:30"' in page
    assert 'href="/offers/spring-sale/flyer"' in page


def test_offer_validation(client, runtime):  # type: ignore[no-untyped-def]
    shop = make_shop(runtime)
    sign_in(client, shop.emails["marketer"])
    bad = {
        **FORM,
        "discount_value": "120",
        "valid_until": "2025-05-01T00:00",
        "total_cap": "-3",
        "overlay": "on",
    }
    r = post(client, "/admin/offers/new", bad)
    body = r.get_data(as_text=True)
    assert r.status_code == 422
    for field in ("discount_value", "valid_until", "total_cap", "overlay"):
        assert f'data-field="{field}"' in body, field
    with runtime.transaction(shop.merchant_id) as s:
        assert s.scalars(select(Offer)).all() == []


def test_offer_limits_are_the_apis(client, runtime):  # type: ignore[no-untyped-def]
    # A cap past the 32-bit column was a 500 on PostgreSQL; the API refuses the same values.
    shop = make_shop(runtime)
    sign_in(client, shop.emails["marketer"])
    bad = {**FORM, "discount_value": "12.345", "uses_per_coupon": "1001", "total_cap": "3000000000"}
    r = post(client, "/admin/offers/new", bad)
    body = r.get_data(as_text=True)
    assert r.status_code == 422
    assert "Use at most two decimals." in body
    assert "Enter a whole number from 1 to 1,000." in body
    assert "Enter a whole number from 1 to 1,000,000,000." in body
    with runtime.transaction(shop.merchant_id) as s:
        assert s.scalars(select(Offer)).all() == []
    at_limits = {
        **FORM,
        "discount_value": "12.34",
        "uses_per_coupon": "1000",
        "total_cap": "1000000000",
    }
    assert post(client, "/admin/offers/new", at_limits).status_code == 302
    with runtime.transaction(shop.merchant_id) as s:
        offer = s.scalars(select(Offer)).one()
        assert (offer.uses_per_coupon, offer.total_cap) == (1000, 1_000_000_000)
        assert offer.discount == {"type": "percent", "value": "12.34"}


def test_issue_to_a_tier_creates_coupons_with_passes(client, runtime, settings):  # type: ignore[no-untyped-def]
    shop = make_shop(runtime, "tiers", rules=TIERS)
    with runtime.transaction(shop.merchant_id) as s:
        program = s.get(Program, shop.program_id)
        gold = [factories.member(s, program, tier="Gold") for _ in range(2)]
        factories.member(s, program, tier="Member")
        gold_ids = sorted(m.id for m in gold)
    sign_in(client, shop.emails["marketer"])
    running = {**FORM, "valid_until": "2099-06-30T21:30", "program_id": str(shop.program_id)}
    post(client, "/admin/offers/new", running)
    with runtime.transaction(shop.merchant_id) as s:
        offer_id = s.scalars(select(Offer.id)).one()
    r = post(
        client,
        f"/admin/offers/{offer_id}/issue",
        {"program_id": str(shop.program_id), "tier": "Gold"},
    )
    assert r.status_code == 302
    assert "Issued 2 coupons to tier Gold" in client.get(r.headers["Location"]).get_data(
        as_text=True
    )
    # Issuing again skips members who already hold one.
    post(
        client,
        f"/admin/offers/{offer_id}/issue",
        {"program_id": str(shop.program_id), "tier": "Gold"},
    )
    with runtime.transaction(shop.merchant_id) as s:
        coupons = list(s.scalars(select(Coupon).where(Coupon.offer_id == offer_id)))
        assert sorted(c.member_id for c in coupons) == gold_ids
        for coupon in coupons:
            pass_row = s.scalars(select(Pass).where(Pass.coupon_id == coupon.id)).one()
            assert pass_row.member_id == coupon.member_id
            assert pass_row.template == "coupon"
            assert pass_row.status == "active"
    # Everyone in the program, then: only the one without a coupon gets one.
    post(client, f"/admin/offers/{offer_id}/issue", {"program_id": str(shop.program_id)})
    with runtime.transaction(shop.merchant_id) as s:
        assert len(s.scalars(select(Coupon)).all()) == 3


def test_overlay_offer_refreshes_the_programs_cards(client, runtime, settings):  # type: ignore[no-untyped-def]
    shop = make_shop(runtime, "points")
    with runtime.transaction(shop.merchant_id) as s:
        program = s.get(Program, shop.program_id)
        pass_id = factories.member_pass(s, settings, factories.member(s, program)).id
    sign_in(client, shop.emails["marketer"])
    post(client, "/admin/offers/new", {**FORM, "program_id": str(shop.program_id), "overlay": "on"})
    with runtime.transaction(shop.merchant_id) as s:
        assert s.get(Pass, pass_id).version == 2
        assert s.scalars(select(Offer)).one().overlay is True


def test_an_ended_or_inactive_offer_issues_no_coupons(client, runtime):  # type: ignore[no-untyped-def]
    # Its coupons would look valid in the wallet and be refused at every scan.
    shop = make_shop(runtime, "points")
    with runtime.transaction(shop.merchant_id) as s:
        program = s.get(Program, shop.program_id)
        factories.member(s, program)
    sign_in(client, shop.emails["marketer"])
    post(client, "/admin/offers/new", {**FORM, "program_id": str(shop.program_id)})  # ended
    with runtime.transaction(shop.merchant_id) as s:
        offer = s.scalars(select(Offer)).one()
        offer_id = offer.id
    issue = {"program_id": str(shop.program_id)}
    r = post(client, f"/admin/offers/{offer_id}/issue", issue, follow_redirects=True)
    assert "No coupons issued: the offer has ended." in r.get_data(as_text=True)
    with runtime.transaction(shop.merchant_id) as s:
        s.get(Offer, offer_id).valid_until = None
        s.get(Offer, offer_id).active = False
    r = post(client, f"/admin/offers/{offer_id}/issue", issue, follow_redirects=True)
    assert "No coupons issued: the offer is switched off." in r.get_data(as_text=True)
    with runtime.transaction(shop.merchant_id) as s:
        assert s.scalars(select(Coupon)).all() == []
        assert s.scalars(select(Pass).where(Pass.coupon_id.is_not(None))).all() == []


def test_unticking_active_deactivates_the_offer(client, runtime):  # type: ignore[no-untyped-def]
    # A browser sends no field for an unticked checkbox: the form must read that as "off",
    # or an offer can never be withdrawn from the admin.
    shop = make_shop(runtime, "points")
    sign_in(client, shop.emails["marketer"])
    running = {**FORM, "valid_until": "2099-06-30T21:30", "program_id": str(shop.program_id)}
    assert post(client, "/admin/offers/new", running).status_code == 302
    with runtime.transaction(shop.merchant_id) as s:
        offer_id = s.scalars(select(Offer.id)).one()
    unticked = {k: v for k, v in running.items() if k != "active"}
    r = post(client, f"/admin/offers/{offer_id}", unticked)
    assert r.status_code == 302
    with runtime.transaction(shop.merchant_id) as s:
        assert s.get(Offer, offer_id).active is False
    page = client.get(f"/admin/offers/{offer_id}").get_data(as_text=True)
    assert '<input type="checkbox" name="active">' in page
    assert '<span class="wpa-badge">off</span>' in client.get("/admin/offers").get_data(
        as_text=True
    )
    # Ticking it again puts the offer back.
    assert post(client, f"/admin/offers/{offer_id}", running).status_code == 302
    with runtime.transaction(shop.merchant_id) as s:
        assert s.get(Offer, offer_id).active is True
    page = client.get(f"/admin/offers/{offer_id}").get_data(as_text=True)
    assert '<input type="checkbox" name="active" checked>' in page


def test_saving_an_offer_queues_jobs_at_its_start_and_end(client, runtime):  # type: ignore[no-untyped-def]
    # The wallets are told when the offer starts and ends (walletpass.offers.lifecycle);
    # a second save of the same dates queues nothing more.
    shop = make_shop(runtime)
    sign_in(client, shop.emails["marketer"])
    later = {**FORM, "valid_from": "2099-06-01T09:00", "valid_until": "2099-06-30T21:30"}
    assert post(client, "/admin/offers/new", later).status_code == 302
    with runtime.transaction(shop.merchant_id) as s:
        offer_id = s.scalars(select(Offer.id)).one()
    assert post(client, f"/admin/offers/{offer_id}", later).status_code == 302
    with runtime.transaction(shop.merchant_id) as s:
        jobs = s.scalars(select(Job).where(Job.kind == "offer.window").order_by(Job.run_at)).all()
        assert [(j.run_at, j.payload["offer_id"]) for j in jobs] == [
            (datetime(2099, 6, 1, 7, 0, tzinfo=UTC), offer_id),
            (datetime(2099, 6, 30, 19, 30, tzinfo=UTC), offer_id),
        ]
