"""One member per program per email, phone or external id, whoever enrols at the same time:
the API, the CRM's member.upsert and the join page, in parallel (real races on
PostgreSQL; SQLite serialises its writers, so there the same answers come from the lookup).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import factories
import pytest
from sqlalchemy import func, select

from walletpass.crm.inbound import create_source
from walletpass.loyalty import enrolment
from walletpass.loyalty.models import Member, Program
from walletpass.passes.models import Pass
from walletpass.tenancy.apikeys import create_api_key

_events = itertools.count(1)


@pytest.fixture
def shop(runtime, settings) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    with runtime.transaction() as s:
        merchant = factories.merchant(s)
        program = factories.program(s, merchant, "stamps", slug=f"beans{merchant.id}")
        _, key = create_api_key(s, merchant_id=merchant.id, scope="crm", name="crm")
        source, secret = create_source(
            s, settings, merchant_id=merchant.id, name=f"crm-{merchant.id}", program_id=program.id
        )
        return {
            "merchant_id": merchant.id,
            "program_id": program.id,
            "slug": program.slug,
            "key": key,
            "source": source.name,
            "secret": secret,
        }


def _at_once(app, calls: list[Callable[[Any], Any]]) -> list[Any]:  # type: ignore[no-untyped-def]
    """Each call with a test client of its own (its own request, session and connection),
    all released together."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        client = app.test_client()
        barrier.wait(timeout=60)
        results[i] = calls[i](client)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    assert all(r is not None for r in results), "a request never answered"
    return results


def _api_create(shop: dict[str, Any], **body: Any) -> Callable[[Any], Any]:
    def call(client: Any) -> Any:
        r = client.post(
            "/api/v1/members",
            json={"program_id": shop["program_id"], **body},
            headers={"Authorization": f"Bearer {shop['key']}"},
        )
        return r.status_code, r.get_json()

    return call


def _crm_upsert(shop: dict[str, Any], **data: Any) -> Callable[[Any], Any]:
    doc = {
        "id": f"evt-race-{next(_events)}",
        "type": "member.upsert",
        "created": int(time.time()),
        "data": data,
    }
    raw = json.dumps(doc).encode()

    def call(client: Any) -> Any:
        t = int(time.time())
        mac = hmac.new(shop["secret"].encode(), f"{t}.".encode() + raw, hashlib.sha256)
        r = client.post(
            f"/webhooks/crm/{shop['source']}",
            data=raw,
            headers={
                "Walletpass-Signature": f"t={t},v1={mac.hexdigest()}",
                "Content-Type": "application/json",
            },
        )
        return r.status_code, r.get_json()

    return call


def _join(shop: dict[str, Any], **form: str) -> Callable[[Any], Any]:
    def call(client: Any) -> Any:
        r = client.post(f"/join/{shop['slug']}", data=form)
        return r.status_code, r.headers.get("Location")

    return call


def _members(runtime) -> list[Member]:  # type: ignore[no-untyped-def]
    with runtime.transaction() as s:
        return list(s.scalars(select(Member).order_by(Member.id)))


def _cards(runtime) -> list[str]:  # type: ignore[no-untyped-def]
    with runtime.transaction() as s:
        return list(s.scalars(select(Pass.serial)))


def test_50_api_enrolments_with_one_email_make_one_member(app, runtime, shop):
    # The same address as customers type it: case differs, the member is the same.
    emails = ["ana@example.test", "Ana@Example.test", "ANA@EXAMPLE.TEST"]
    results = _at_once(app, [_api_create(shop, name="Ana", email=emails[i % 3]) for i in range(50)])
    assert {status for status, _ in results} == {201}, results
    assert len({body["id"] for _, body in results}) == 1
    assert Counter(body["created"] for _, body in results) == {True: 1, False: 49}
    assert len({body["passes"][0]["serial"] for _, body in results}) == 1
    [member] = _members(runtime)
    assert member.email == "ana@example.test"
    assert len(_cards(runtime)) == 1


def test_parallel_api_enrolments_with_one_phone_or_external_id_make_one_member(app, runtime, shop):
    phones = ["+44 20 7946 0000", "+44 2079460000", "+44 (20) 7946-0000"]
    results = _at_once(
        app,
        [_api_create(shop, name="Cy", phone=phones[i % 3]) for i in range(15)]
        + [_api_create(shop, name="Di", external_id="crm-7") for _ in range(15)],
    )
    assert {status for status, _ in results} == {201}, results
    by_phone = {body["id"] for _, body in results[:15]}
    by_external_id = {body["id"] for _, body in results[15:]}
    assert len(by_phone) == 1
    assert len(by_external_id) == 1
    found = sorted((m.name, m.phone, m.external_id) for m in _members(runtime))
    assert found == [("Cy", "+442079460000", None), ("Di", None, "crm-7")]


def test_50_parallel_crm_upserts_by_email_make_one_member_and_update_it(app, runtime, shop):
    results = _at_once(
        app,
        [_crm_upsert(shop, email="bo@example.test", name="Bo", tags={"n": i}) for i in range(50)],
    )
    assert {status for status, _ in results} == {200}, results
    assert {body["status"] for _, body in results} == {"applied"}
    answers = [body["result"] for _, body in results]
    assert len({a["member_id"] for a in answers}) == 1
    assert Counter(a["created"] for a in answers) == {True: 1, False: 49}
    [member] = _members(runtime)
    # Every event reached the one member: the last one to commit wrote its tag.
    assert member.name == "Bo"
    assert member.tags["n"] in range(50)
    assert len(_cards(runtime)) == 1


def test_api_and_join_page_at_once_make_one_member(app, runtime, shop):
    app.config["WALLETPASS_PUBLIC_POSTS_PER_MINUTE"] = 1000  # all from one test address
    person = {"name": "Ed Example", "email": "ed@example.test"}
    results = _at_once(
        app,
        [_api_create(shop, **person) for _ in range(10)]
        + [_join(shop, **person) for _ in range(10)],
    )
    [member] = _members(runtime)
    [serial] = _cards(runtime)
    api, page = results[:10], results[10:]
    assert {(status, body["id"]) for status, body in api} == {(201, member.id)}
    # The same person twice within minutes: the join page shows the card it already has.
    assert set(page) == {(303, f"/p/{serial}")}


def test_join_page_taps_at_once_by_phone_only_make_one_member(app, runtime, shop):
    app.config["WALLETPASS_PUBLIC_POSTS_PER_MINUTE"] = 1000
    results = _at_once(app, [_join(shop, name="Flo", phone="+1 (555) 010-0000") for _ in range(20)])
    [member] = _members(runtime)
    [serial] = _cards(runtime)
    assert member.phone == "+15550100000"
    assert set(results) == {(303, f"/p/{serial}")}


def test_the_loser_of_a_race_keeps_the_rest_of_its_unit_of_work(
    runtime, settings, shop, monkeypatch
):
    """The winner committed between the loser's lookup and its insert (as on PostgreSQL):
    the unique index refuses the insert, the savepoint undoes only it, and the loser's
    earlier work in the same transaction commits with the winner as the answer."""
    with runtime.transaction(shop["merchant_id"]) as s:
        program = s.get(Program, shop["program_id"])
        winner, winner_card, _ = enrolment.enroll(s, settings, program, email="gus@example.test")
    lookup = enrolment.find_enrolled
    missed: list[str] = []

    def late(*args: Any, **kw: Any) -> Member | None:
        if (kw.get("email") or "").strip().lower() == "gus@example.test" and not missed:
            missed.append("once")
            return None
        return lookup(*args, **kw)

    monkeypatch.setattr(enrolment, "find_enrolled", late)
    with runtime.transaction(shop["merchant_id"]) as s:
        program = s.get(Program, shop["program_id"])
        _, _, created = enrolment.enroll(s, settings, program, email="hal@example.test")
        assert created
        member, card, created = enrolment.enroll(
            s, settings, program, name="Gus", email="GUS@example.test "
        )
        assert missed == ["once"]
        assert (member.id, card.serial, created) == (winner.id, winner_card.serial, False)
    with runtime.transaction() as s:
        emails = s.scalars(select(Member.email).order_by(Member.id)).all()
        assert emails == ["gus@example.test", "hal@example.test"]
        assert s.scalar(select(func.count()).select_from(Pass)) == 2


def test_another_members_phone_number_is_refused_on_every_channel(app, runtime, shop):
    client = app.test_client()
    first = _api_create(shop, name="Ivy", email="ivy@example.test", phone="+44 20 7946 0001")
    assert first(client)[0] == 201
    status, problem = _api_create(shop, email="jo@example.test", phone="+442079460001")(client)
    assert (status, problem["type"]) == (409, "/problems/conflict")
    assert "+442079460001" in problem["detail"]
    status, answer = _crm_upsert(shop, email="jo@example.test", phone="+44 20 7946 0001")(client)
    assert (status, answer["type"]) == (409, "/problems/conflict")
    status, _ = _join(shop, name="Jo", email="jo@example.test", phone="+44 20 7946-0001")(client)
    assert status == 200
    assert [m.email for m in _members(runtime)] == ["ivy@example.test"]
    # The same number with no email, or with hers, is her: one card.
    status, answer = _api_create(shop, phone="+44 (20) 7946 0001")(client)
    assert (status, answer["created"], answer["email"]) == (201, False, "ivy@example.test")
