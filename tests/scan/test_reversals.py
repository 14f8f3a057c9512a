"""A receipt is reversed at most once, whichever way: a refund at the till or through the
API, the undo of its scan, the undo of a refund. An undone receipt is free to be posted
again as a new purchase. A manual adjustment cannot take a balance below zero."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from scan_helpers import Till, join, reward, shop

from walletpass.loyalty.ledger import ledger_balance
from walletpass.loyalty.models import Member
from walletpass.tenancy.apikeys import create_api_key

POINTS = {"amount_per_point": "1", "points_to_currency": "0.10"}


def _undo(client, key: str, scan_id: int, expect: int = 200):  # type: ignore[no-untyped-def]
    r = client.post(f"/api/v1/scans/{scan_id}/undo", headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == expect, r.get_data(as_text=True)
    return r.json


def _member(runtime, member_id: int) -> tuple[int, Decimal]:  # type: ignore[no-untyped-def]
    """The card's points and lifetime spend, checked against the ledger."""
    with runtime.transaction() as s:
        member = s.get(Member, member_id)
        assert (member.points_balance, member.stamps_balance) == ledger_balance(s, member_id)
        return member.points_balance, member.lifetime_spend


@pytest.fixture
def cafe(runtime, settings):  # type: ignore[no-untyped-def]
    return shop(runtime, settings, "points", POINTS)


@pytest.fixture
def card(runtime, settings, cafe):  # type: ignore[no-untyped-def]
    return join(runtime, settings, cafe)


def test_a_refunded_purchase_undone_is_reversed_once(client, runtime, cafe, card):  # type: ignore[no-untyped-def]
    till = Till(client, cafe["key"])
    bought = till.scan(code=card["code"], action="purchase", amount="100", receipt_id="R1")
    refunded = till.scan(code=card["code"], action="refund", amount="100", receipt_id="R1")
    assert refunded["balance"]["points"] == 0
    # The purchase's scan undone after its refund: nothing is left to take back.
    assert _undo(client, cafe["key"], bought["scan_id"])["balance"]["points"] == 0
    assert _member(runtime, card["member_id"]) == (0, Decimal(0))


def test_an_undone_purchase_cannot_be_refunded(client, runtime, cafe, card):  # type: ignore[no-untyped-def]
    till = Till(client, cafe["key"])
    bought = till.scan(code=card["code"], action="purchase", amount="100", receipt_id="R1")
    _undo(client, cafe["key"], bought["scan_id"])
    problem = till.scan(404, code=card["code"], action="refund", amount="100", receipt_id="R1")
    assert problem["type"] == "/problems/unknown-receipt"
    assert _member(runtime, card["member_id"]) == (0, Decimal(0))


def test_undoing_a_partly_refunded_purchase_reverses_the_rest(client, runtime, cafe, card):  # type: ignore[no-untyped-def]
    till = Till(client, cafe["key"])
    bought = till.scan(code=card["code"], action="purchase", amount="100", receipt_id="R1")
    till.scan(code=card["code"], action="refund", amount="30", receipt_id="R1", refund_id="a")
    assert _undo(client, cafe["key"], bought["scan_id"])["balance"]["points"] == 0
    assert _member(runtime, card["member_id"]) == (0, Decimal(0))
    problem = till.scan(
        404, code=card["code"], action="refund", amount="10", receipt_id="R1", refund_id="b"
    )
    assert problem["type"] == "/problems/unknown-receipt"
    assert _member(runtime, card["member_id"]) == (0, Decimal(0))


def test_an_undone_refund_gives_back_spend_and_may_be_refunded_again(client, runtime, cafe, card):  # type: ignore[no-untyped-def]
    till = Till(client, cafe["key"])
    till.scan(code=card["code"], action="purchase", amount="100", receipt_id="R1")
    body = {"code": card["code"], "action": "refund", "amount": "30", "receipt_id": "R1"}
    refunded = till.scan(**body, refund_id="a")
    assert _undo(client, cafe["key"], refunded["scan_id"])["balance"]["points"] == 100
    assert _member(runtime, card["member_id"]) == (100, Decimal(100))
    # The same refund sent again is a new refund, not the replay of the undone one.
    again = till.scan(**body, refund_id="a")
    assert (again["replayed"], again["points_delta"], again["balance"]["points"]) == (
        False,
        -30,
        70,
    )
    # And the refunds still cannot add up to more than the purchase.
    till.scan(**{**body, "amount": "70"}, refund_id="b")
    problem = till.scan(422, **{**body, "amount": "1"}, refund_id="c")
    assert problem["type"] == "/problems/validation-error"
    assert _member(runtime, card["member_id"]) == (0, Decimal(0))


def test_a_refund_of_an_undone_purchase_cannot_be_undone(client, runtime, cafe, card):  # type: ignore[no-untyped-def]
    till = Till(client, cafe["key"])
    bought = till.scan(code=card["code"], action="purchase", amount="100", receipt_id="R1")
    refunded = till.scan(code=card["code"], action="refund", amount="30", receipt_id="R1")
    _undo(client, cafe["key"], bought["scan_id"])
    # Undoing the refund would give back 30 of a purchase that no longer exists.
    problem = _undo(client, cafe["key"], refunded["scan_id"], expect=409)
    assert problem["type"] == "/problems/undo-expired"
    assert _member(runtime, card["member_id"]) == (0, Decimal(0))


def test_an_undone_receipt_is_posted_again_as_new(client, runtime, settings, cafe, card):  # type: ignore[no-untyped-def]
    till = Till(client, cafe["key"])
    body = {"action": "purchase", "amount": "42", "receipt_id": "R1"}
    # Scanned on the wrong card, undone, then scanned on the right one.
    other = join(runtime, settings, cafe, name="Bob")
    wrong = till.scan(code=other["code"], **body)
    _undo(client, cafe["key"], wrong["scan_id"])
    first = till.scan(code=card["code"], **body)
    assert (first["replayed"], first["points_delta"], first["balance"]["points"]) == (False, 42, 42)
    # Undone again and posted again: each time a fresh purchase.
    _undo(client, cafe["key"], first["scan_id"])
    second = till.scan(code=card["code"], **body)
    assert (second["replayed"], second["points_delta"], second["balance"]["points"]) == (
        False,
        42,
        42,
    )
    # A retry of it is still one purchase.
    retry = till.scan(code=card["code"], **body)
    assert (retry["replayed"], retry["points_delta"], retry["balance"]["points"]) == (True, 42, 42)
    assert _member(runtime, card["member_id"]) == (42, Decimal(42))
    assert _member(runtime, other["member_id"]) == (0, Decimal(0))
    # The fresh purchase is the one a refund finds.
    out = till.scan(code=card["code"], action="refund", amount="42", receipt_id="R1")
    assert out["balance"]["points"] == 0
    assert _member(runtime, card["member_id"]) == (0, Decimal(0))


def test_an_undone_purchase_paid_with_points_is_posted_again(client, runtime, cafe, card):  # type: ignore[no-untyped-def]
    till = Till(client, cafe["key"])
    till.scan(code=card["code"], action="purchase", amount="50", receipt_id="load")
    body = {"action": "purchase", "amount": "20", "receipt_id": "R1", "redeem_points": 10}
    first = till.scan(code=card["code"], **body)
    assert (first["discount"], first["balance"]["points"]) == ("1.00", 59)
    assert _undo(client, cafe["key"], first["scan_id"])["balance"]["points"] == 50
    again = till.scan(code=card["code"], **body)
    assert (again["replayed"], again["discount"], again["balance"]["points"]) == (False, "1.00", 59)
    retry = till.scan(code=card["code"], **body)
    assert (retry["replayed"], retry["points_delta"], retry["balance"]["points"]) == (True, 9, 59)
    assert _member(runtime, card["member_id"]) == (59, Decimal(70))


def test_undoing_a_spent_purchase_is_what_its_refund_does(client, runtime, settings, cafe):  # type: ignore[no-untyped-def]
    """Points already spent stay spent: the refund and the undo both take the earned
    points back, and the balance goes below zero rather than a redemption being lost."""
    mug = reward(runtime, cafe, "Mug", 100)
    till = Till(client, cafe["key"])
    outcomes = []
    for name, reverse in (("Ada", "refund"), ("Bob", "undo")):
        card = join(runtime, settings, cafe, name=name)
        bought = till.scan(code=card["code"], action="purchase", amount="100", receipt_id=name)
        till.scan(code=card["code"], action="redeem_reward", reward_id=mug, receipt_id=f"{name}-m")
        if reverse == "refund":
            till.scan(code=card["code"], action="refund", amount="100", receipt_id=name)
        else:
            _undo(client, cafe["key"], bought["scan_id"])
        outcomes.append(_member(runtime, card["member_id"]))
    assert outcomes == [(-100, Decimal(0)), (-100, Decimal(0))]


def test_an_adjustment_cannot_take_the_balance_below_zero(client, runtime, cafe, card):  # type: ignore[no-untyped-def]
    with runtime.transaction(cafe["merchant_id"]) as s:
        _, crm_key = create_api_key(s, merchant_id=cafe["merchant_id"], scope="crm")
    Till(client, cafe["key"]).scan(
        code=card["code"], action="purchase", amount="30", receipt_id="r1"
    )

    def adjust(points: int, key: str) -> object:
        return client.post(
            f"/api/v1/members/{card['member_id']}/transactions",
            json={"type": "adjust", "points": points, "reason": "correction"},
            headers={"Authorization": f"Bearer {crm_key}", "Idempotency-Key": key},
        )

    refused = adjust(-31, "adj-1")
    assert (refused.status_code, refused.mimetype) == (422, "application/problem+json")
    assert refused.json["type"] == "/problems/validation-error"
    assert "below zero" in refused.json["detail"]
    assert _member(runtime, card["member_id"]) == (30, Decimal(30))
    taken = adjust(-30, "adj-2")
    assert (taken.status_code, taken.json["balance"]["points"]) == (201, 0)


def _parallel(calls):  # type: ignore[no-untyped-def]
    """Run the calls at the same moment, each in its own thread."""
    start = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)

    def run(i: int) -> None:
        start.wait()
        results[i] = calls[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


@pytest.mark.postgres
def test_a_refund_and_an_undo_at_once_reverse_once(app, runtime, settings, cafe):  # type: ignore[no-untyped-def]
    for i in range(6):
        card = join(runtime, settings, cafe, name=f"P{i}")
        till = Till(app.test_client(), cafe["key"])
        receipt = f"R{i}"
        bought = till.scan(code=card["code"], action="purchase", amount="100", receipt_id=receipt)
        amount = "100" if i % 2 else "40"

        def refund(code=card["code"], receipt=receipt, amount=amount):  # type: ignore[no-untyped-def]
            r = app.test_client().post(
                "/api/v1/scans",
                json={"code": code, "action": "refund", "amount": amount, "receipt_id": receipt},
                headers={"Authorization": f"Bearer {cafe['key']}"},
            )
            return r.status_code

        def undo(scan_id=bought["scan_id"]):  # type: ignore[no-untyped-def]
            r = app.test_client().post(
                f"/api/v1/scans/{scan_id}/undo", headers={"Authorization": f"Bearer {cafe['key']}"}
            )
            return r.status_code

        statuses = _parallel([refund, undo])
        assert statuses[1] == 200
        assert statuses[0] in (200, 404)
        assert _member(runtime, card["member_id"]) == (0, Decimal(0))
