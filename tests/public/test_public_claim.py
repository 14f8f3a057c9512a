"""A flyer's coupon is one per customer: the claim page asks for an email, and the same
email gets the same coupon back from any browser, also when claims run at once."""

from __future__ import annotations

import re
import threading
from datetime import timedelta
from typing import Any

import factories
import pytest
from sqlalchemy import func, select

from walletpass.db import utcnow
from walletpass.offers import services as offers
from walletpass.offers.models import Coupon, Offer
from walletpass.passes.models import Pass

_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def shop(runtime) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    with runtime.transaction() as s:
        merchant = factories.merchant(s, name="Bean There")
        program = factories.program(s, merchant, "offers", slug="beans", name="Bean Offers")
        member = factories.member(s, program, name="Ada Lovelace", email="ada@example.test")
        offers_ = []
        for slug, title in (("spring", "Free croissant"), ("summer", "Iced coffee")):
            offer = Offer(
                merchant_id=merchant.id,
                program_id=program.id,
                slug=slug,
                title=title,
                description="With any coffee.",
                terms="One per customer.",
                valid_until=utcnow() + timedelta(days=30),
            )
            s.add(offer)
            s.flush()
            offers_.append(offer.id)
        return {
            "merchant_id": merchant.id,
            "program_id": program.id,
            "member_id": member.id,
            "spring": offers_[0],
            "summer": offers_[1],
        }


def _form(client, slug: str = "spring") -> tuple[str, str]:  # type: ignore[no-untyped-def]
    r = client.get(f"/offers/{slug}/claim?src=flyer")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    token = _TOKEN.search(html)
    assert token is not None
    return html, token.group(1)


def _claim(client, email: str, slug: str = "spring") -> Any:  # type: ignore[no-untyped-def]
    _, token = _form(client, slug)
    return client.post(f"/offers/{slug}/claim", data={"email": email, "csrf_token": token})


def _coupons(runtime) -> list[Coupon]:  # type: ignore[no-untyped-def]
    with runtime.transaction() as s:
        return list(s.scalars(select(Coupon).order_by(Coupon.id)))


def _pass_count(runtime) -> int:  # type: ignore[no-untyped-def]
    with runtime.transaction() as s:
        return s.scalar(select(func.count()).select_from(Pass))


def test_the_claim_page_shows_the_offer_and_asks_for_an_email(app, runtime, shop):
    client = app.test_client()
    html, _ = _form(client)
    assert "Free croissant" in html
    assert "With any coffee." in html
    assert "One per customer." in html
    assert 'name="email"' in html
    # Opening the page, or a link preview's HEAD, mints nothing.
    assert app.test_client().head("/offers/spring/claim").status_code == 200
    assert _coupons(runtime) == []
    assert _pass_count(runtime) == 0


def test_one_coupon_per_email_whichever_browser_claims_it(app, runtime, shop):
    phone, laptop = app.test_client(), app.test_client()  # separate cookie jars
    first = _claim(phone, "bo@example.test")
    assert first.status_code == 303
    serial = first.headers["Location"].removeprefix("/p/")
    [coupon] = _coupons(runtime)
    assert coupon.claim_email == "bo@example.test"
    assert coupon.member_id is None
    assert coupon.offer_id == shop["spring"]
    page = phone.get(f"/p/{serial}").get_data(as_text=True)
    assert "Free croissant" in page
    assert "bo@example.test" not in page

    # Another browser (a private window, cleared cookies), the address typed another way:
    # the customer's existing coupon, not a second one.
    again = _claim(laptop, "  Bo@Example.TEST ")
    assert again.status_code == 303
    assert again.headers["Location"] == f"/p/{serial}"
    assert len(_coupons(runtime)) == 1
    assert _pass_count(runtime) == 1
    # The browser that claimed it is offered it again on the form (its own cookie only).
    html, _ = _form(laptop)
    assert f"/p/{serial}" in html
    assert f"/p/{serial}" not in _form(app.test_client())[0]

    # Another customer gets a coupon of their own; another offer is another allowance.
    other = _claim(laptop, "cy@example.test")
    assert other.status_code == 303
    assert other.headers["Location"] != f"/p/{serial}"
    assert _claim(phone, "bo@example.test", "summer").headers["Location"] != f"/p/{serial}"
    assert len(_coupons(runtime)) == 3


@pytest.mark.parametrize(
    ("email", "message"),
    [
        ("", "Please give your email address."),
        ("bo@example", "This does not look like an email address."),
        ("bo example.test", "This does not look like an email address."),
        ("b" * 320 + "@example.test", "This does not look like an email address."),
    ],
)
def test_a_bad_email_gets_the_form_again_and_nothing_is_made(app, runtime, shop, email, message):
    client = app.test_client()
    r = _claim(client, email)
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    assert message in html
    assert 'data-testid="claim-form"' in html
    assert _coupons(runtime) == []
    assert _pass_count(runtime) == 0


def test_a_claim_without_the_pages_token_makes_nothing(app, runtime, shop):
    client = app.test_client()
    _form(client)
    r = client.post("/offers/spring/claim", data={"email": "bo@example.test"})
    assert r.status_code == 400
    assert "This page had expired" in r.get_data(as_text=True)
    # A forged cross-site post carries no token either: nothing is issued.
    forged = app.test_client().post(
        "/offers/spring/claim", data={"email": "bo@example.test", "csrf_token": "x"}
    )
    assert forged.status_code == 400
    assert _coupons(runtime) == []


def test_the_rate_limit_counts_only_claims_that_mint(app, runtime, shop):
    app.config["WALLETPASS_PUBLIC_POSTS_PER_MINUTE"] = 2
    client = app.test_client()
    assert _claim(client, "a@example.test").status_code == 303
    # A customer's coupon given back again and again costs nothing, nor does a typo.
    for _ in range(3):
        assert _claim(app.test_client(), "a@example.test").status_code == 303
    assert _claim(client, "nope").status_code == 422
    assert _claim(client, "b@example.test").status_code == 303
    limited = _claim(client, "c@example.test")
    assert limited.status_code == 429
    assert len(_coupons(runtime)) == 2


def test_a_members_email_claims_an_unlinked_coupon(app, runtime, shop):
    """Whoever types a member's address gets a coupon, but not the member's name or
    balance on its page: the address is not confirmed (README)."""
    r = _claim(app.test_client(), "ADA@example.test")
    assert r.status_code == 303
    [coupon] = _coupons(runtime)
    assert coupon.member_id is None
    page = app.test_client().get(r.headers["Location"]).get_data(as_text=True)
    assert "Ada" not in page


def test_an_ended_offer_is_not_claimable(app, runtime, shop):
    with runtime.transaction() as s:
        s.get(Offer, shop["spring"]).valid_until = utcnow() - timedelta(minutes=1)
    client = app.test_client()
    assert client.get("/offers/spring/claim").status_code == 410
    r = client.post("/offers/spring/claim", data={"email": "bo@example.test"})
    assert r.status_code == 410
    assert _coupons(runtime) == []


def test_a_used_coupon_rolls_over_with_its_customer(app, runtime, settings, shop):
    """In an offers program the flyer pass moves on to the next offer when its coupon is
    used up: that coupon is the same customer's, so claiming that offer's flyer with the
    email opens the same pass, and claiming the used one makes no new coupon."""
    client = app.test_client()
    serial = _claim(client, "bo@example.test").headers["Location"].removeprefix("/p/")
    with runtime.transaction(shop["merchant_id"]) as s:
        [coupon] = s.scalars(select(Coupon))
        _, _, rolled = offers.redeem_coupon(s, settings, coupon.id)
        assert rolled is not None
        assert (rolled.offer_id, rolled.claim_email) == (shop["summer"], "bo@example.test")
    summer = _claim(app.test_client(), "bo@example.test", "summer")
    assert summer.headers["Location"] == f"/p/{serial}"
    spring = _claim(app.test_client(), "bo@example.test")
    assert spring.status_code == 200
    assert "already used" in spring.get_data(as_text=True)
    assert len(_coupons(runtime)) == 2


def test_a_rollover_skips_an_offer_its_customer_claimed(app, runtime, settings, shop):
    client = app.test_client()
    _claim(client, "bo@example.test")
    summer = _claim(client, "bo@example.test", "summer").headers["Location"]
    with runtime.transaction(shop["merchant_id"]) as s:
        spring = s.scalars(select(Coupon).where(Coupon.offer_id == shop["spring"])).one()
        # Nothing left that this customer does not hold: the pass stays on the used one.
        assert offers.redeem_coupon(s, settings, spring.id)[2] is None
    assert _claim(app.test_client(), "bo@example.test", "summer").headers["Location"] == summer
    assert len(_coupons(runtime)) == 2


def test_the_loser_of_a_race_gets_the_winners_coupon(runtime, settings, shop, monkeypatch):
    """The winner committed between the loser's lookup and its insert (as on PostgreSQL):
    the unique index refuses the insert, the savepoint undoes only it, the rest of the
    unit of work stays, and the answer is the winner's coupon."""
    with runtime.transaction(shop["merchant_id"]) as s:
        won = offers.claim_coupon(s, settings, s.get(Offer, shop["spring"]), "bo@example.test")
        assert won.created
        assert won.pass_row is not None
        winner = won.pass_row.serial
    real, missed = offers.find_claim, []

    def lookup(session, offer, email):  # type: ignore[no-untyped-def]
        if email == "bo@example.test" and not missed:
            missed.append(email)
            return None  # the first lookup did not see the winner's commit yet
        return real(session, offer, email)

    monkeypatch.setattr(offers, "find_claim", lookup)
    with runtime.transaction(shop["merchant_id"]) as s:
        other = offers.claim_coupon(s, settings, s.get(Offer, shop["spring"]), "cy@example.test")
        lost = offers.claim_coupon(s, settings, s.get(Offer, shop["spring"]), "bo@example.test")
        assert not lost.created
        assert lost.pass_row is not None
        assert lost.pass_row.serial == winner
    assert missed
    emails = [c.claim_email for c in _coupons(runtime)]
    assert emails == ["bo@example.test", "cy@example.test"]
    assert other.created


@pytest.mark.postgres
def test_claims_at_once_with_one_email_make_one_coupon(app, runtime, shop):
    app.config["WALLETPASS_PUBLIC_POSTS_PER_MINUTE"] = 1000  # all from one test address
    n = 12
    clients = [app.test_client() for _ in range(n)]
    tokens = [_form(c)[1] for c in clients]
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def claim(i: int) -> None:
        barrier.wait(timeout=60)
        r = clients[i].post(
            "/offers/spring/claim",
            data={
                "email": "Bo@example.test" if i % 2 else "bo@example.test",
                "csrf_token": tokens[i],
            },
        )
        results[i] = (r.status_code, r.headers.get("Location"))

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    [coupon] = _coupons(runtime)
    with runtime.transaction() as s:
        [serial] = s.scalars(select(Pass.serial).where(Pass.coupon_id == coupon.id))
    assert set(results) == {(303, f"/p/{serial}")}
    assert _pass_count(runtime) == 1
