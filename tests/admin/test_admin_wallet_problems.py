"""The "Wallet problems" page: Wallet's log messages and APNs refusals, matched to the
merchant whose pass they are about, grouped by pattern, explained; each merchant sees
only its own."""

from __future__ import annotations

import time

import factories
import pytest
from sqlalchemy import select
from test_admin_support import make_shop, sign_in

from walletpass.apple.models import AppleLog
from walletpass.loyalty.models import Member
from walletpass.passes.changes import mark_changed

TOKEN = "0123456789abcdef" * 4


def _pass_of(runtime, settings, merchant_id, program_id):  # type: ignore[no-untyped-def]
    with runtime.transaction() as s:
        program = s.get(factories.Program, program_id)
        member = factories.member(s, program)
        row = factories.member_pass(s, settings, member)
        return {
            "serial": row.serial,
            "type": row.pass_type_id,
            "id": row.id,
            "token": row.auth_token,
            "member_id": member.id,
            "merchant_id": merchant_id,
        }


def _log(client, *messages: str) -> None:  # type: ignore[no-untyped-def]
    assert client.post("/apple/v1/log", json={"logs": list(messages)}).status_code == 200


def _trust(card) -> str:  # type: ignore[no-untyped-def]
    return (
        f"[2026-12-06 10:00:0{card['id']} +0100] Passbook: Invalid data error reading pass "
        f"{card['type']}/{card['serial']}. The passTypeIdentifier or teamIdentifier provided "
        "may not match your certificate, or the certificate trust chain could not be verified."
    )


def _get_pass(card, code: int = 401) -> str:  # type: ignore[no-untyped-def]
    return (
        f"[2026-12-06 10:00:00 +0100] Get pass task (pass type {card['type']}, serial number "
        f"{card['serial']}, if-modified-since (null); with web service url "
        f"https://wallet.example.test/apple) encountered error: Unexpected response code {code}"
    )


@pytest.fixture
def settings(settings, apns):  # type: ignore[no-untyped-def]
    # The push tests' APNs: a real HTTP/2 + TLS stand-in.
    return settings.override(apns_url=apns.url, apns_ca_file=str(apns.pki.ca_cert))


@pytest.fixture
def shops(runtime, settings):  # type: ignore[no-untyped-def]
    mine, theirs = make_shop(runtime), make_shop(runtime)
    cards = [_pass_of(runtime, settings, mine.merchant_id, mine.program_id) for _ in range(4)]
    other = _pass_of(runtime, settings, theirs.merchant_id, theirs.program_id)
    return mine, theirs, cards, other


def test_log_messages_are_stored_with_their_merchant_and_pattern(client, runtime, shops):  # type: ignore[no-untyped-def]
    mine, theirs, cards, other = shops
    _log(client, _trust(cards[0]), _get_pass(other), "Something new happened at 10:00:00")
    with runtime.transaction() as s:
        rows = s.execute(
            select(
                AppleLog.serial, AppleLog.merchant_id, AppleLog.pattern, AppleLog.source
            ).order_by(AppleLog.id)
        ).all()
    assert [tuple(r) for r in rows] == [
        (cards[0]["serial"], mine.merchant_id, "trust-chain", "wallet"),
        (other["serial"], theirs.merchant_id, "unauthorized", "wallet"),
        (None, None, "Something new happened at <n>:<n>:<n>", "wallet"),
    ]


def test_the_page_groups_a_merchants_problems_and_says_what_they_mean(client, runtime, shops):  # type: ignore[no-untyped-def]
    mine, _, cards, other = shops
    _log(client, *(_trust(c) for c in cards), _get_pass(cards[0]), _trust(other))
    sign_in(client, mine.emails["owner"])
    page = client.get("/admin/wallet-problems")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    # One group of four (the most frequent first), with three example serials.
    first, second = html.index("signature or certificate was refused"), html.index("(401)")
    assert first < second
    group = html[first:second]
    assert "<td>4</td>" in group
    assert sum(c["serial"] in group for c in cards) == 3
    assert "walletpass pass lint" in group
    assert "<td>1</td>" in html[second:]
    # The other merchant's pass is not on this page, nor on its Wallet logs page.
    assert other["serial"] not in html
    assert other["serial"] not in client.get("/admin/wallet-logs").get_data(as_text=True)


def test_the_other_merchant_sees_only_its_own(client, shops):  # type: ignore[no-untyped-def]
    _, theirs, cards, other = shops
    _log(client, _trust(cards[0]), _get_pass(other, 500))
    sign_in(client, theirs.emails["owner"])
    html = client.get("/admin/wallet-problems").get_data(as_text=True)
    assert "answered with an error (5xx)" in html
    assert other["serial"] in html
    assert cards[0]["serial"] not in html
    assert "signature or certificate was refused" not in html


def test_unknown_messages_group_by_their_wording(client, shops):  # type: ignore[no-untyped-def]
    mine, _, cards, _ = shops
    _log(
        client,
        *(
            f"[2026-12-0{i} 10:00:00 +0100] Pass {c['type']}/{c['serial']} made Wallet sad"
            for i, c in enumerate(cards[:2], 1)
        ),
    )
    sign_in(client, mine.emails["owner"])
    html = client.get("/admin/wallet-problems").get_data(as_text=True)
    assert html.count("A message walletpass does not know") == 1
    assert "<td>2</td>" in html


def test_nothing_reported_says_so(client, shops):  # type: ignore[no-untyped-def]
    mine, *_ = shops
    sign_in(client, mine.emails["owner"])
    html = client.get("/admin/wallet-problems").get_data(as_text=True)
    assert "No problems reported." in html


@pytest.mark.parametrize(
    ("status", "reason", "title"),
    [
        (410, "Unregistered", "no longer has the pass (APNs 410)"),
        (400, "BadDeviceToken", "rejected a push token (400 BadDeviceToken)"),
        (400, "TopicDisallowed", "refused the pass type as push topic"),
        (403, "BadCertificate", "refused the push certificate (403)"),
    ],
)
def test_apns_refusals_are_counted_per_merchant(  # type: ignore[no-untyped-def]
    client, runtime, settings, worker, apns, shops, status, reason, title
):
    mine, theirs, cards, _ = shops
    for i, card in enumerate(cards[:2]):
        token = f"{i:02d}" * 32
        registered = client.post(
            f"/apple/v1/devices/device-{i}/registrations/{card['type']}/{card['serial']}",
            json={"pushToken": token},
            headers={"Authorization": f"ApplePass {card['token']}"},
        )
        assert registered.status_code == 201
        apns.respond(token, status, reason, timestamp=int(time.time() * 1000) + 5000)
    with runtime.transaction(mine.merchant_id) as s:
        for card in cards[:2]:
            s.get(Member, card["member_id"]).points_balance = 7
        mark_changed(s, settings, passes=[c["id"] for c in cards[:2]])
    worker.run_until_idle()
    with runtime.transaction() as s:
        rows = s.execute(select(AppleLog.merchant_id, AppleLog.source, AppleLog.count)).all()
    assert [tuple(r) for r in rows] == [(mine.merchant_id, "apns", 2)]
    sign_in(client, mine.emails["owner"])
    html = client.get("/admin/wallet-problems").get_data(as_text=True)
    assert title in html
    assert "<td>2</td>" in html
    sign_in(client, theirs.emails["owner"])
    assert title not in client.get("/admin/wallet-problems").get_data(as_text=True)


def test_a_batchs_refusals_are_one_row_however_many(client, runtime, settings, worker, apns, shops):  # type: ignore[no-untyped-def]
    # More pushes than one signed chunk (walletpass.apple.push.SIGNED_CHUNK): still one row.
    mine, _, cards, _ = shops
    card = cards[0]
    for i in range(25):
        token = f"{i:02d}" * 32
        client.post(
            f"/apple/v1/devices/device-{i}/registrations/{card['type']}/{card['serial']}",
            json={"pushToken": token},
            headers={"Authorization": f"ApplePass {card['token']}"},
        )
        apns.respond(token, 410, "Unregistered", timestamp=int(time.time() * 1000) + 5000)
    with runtime.transaction(mine.merchant_id) as s:
        s.get(Member, card["member_id"]).points_balance = 7
        mark_changed(s, settings, passes=[card["id"]])
    worker.run_until_idle()
    with runtime.transaction() as s:
        rows = s.execute(select(AppleLog.pattern, AppleLog.count)).all()
    assert [tuple(r) for r in rows] == [("apns-unregistered", 25)]


def test_a_message_naming_only_a_merchants_own_pass_type_is_that_merchants(
    client, runtime, settings
):  # type: ignore[no-untyped-def]
    from walletpass.certs.merchant import install_dev_chain

    with runtime.transaction() as s:
        rosa = factories.merchant(s, slug="rosa")
        install_dev_chain(s, settings, rosa.id, "pass.example.rosa", "ROSATEAM01", "Rosa")
        rosa_id = rosa.id
    _log(
        client,
        "[2026-12-06 10:00:00 +0100] Register task (pass type pass.example.rosa, serial "
        "number unknown) encountered error: Unexpected response code 401",
        "[2026-12-06 10:00:00 +0100] Register task (pass type pass.example.nobody) failed.",
    )
    with runtime.transaction() as s:
        owners = s.scalars(select(AppleLog.merchant_id).order_by(AppleLog.id)).all()
    assert owners == [rosa_id, None]


def test_wallet_logs_older_than_their_retention_are_pruned_daily(runtime, settings, worker):  # type: ignore[no-untyped-def]
    from datetime import timedelta

    from walletpass.db import utcnow
    from walletpass.jobs.models import Job, JobStatus

    now = utcnow()
    with runtime.transaction() as s:
        for message, age in (("old", 91), ("recent", 89)):
            s.add(AppleLog(message=message, pattern=message, created_at=now - timedelta(days=age)))
    assert settings.wallet_log_days == 90
    worker.schedule_periodic()
    worker.run_until_idle()
    with runtime.transaction() as s:
        left = s.scalars(select(AppleLog.message)).all()
        again = s.scalars(
            select(Job.run_at).where(
                Job.kind == "apple.logs.prune", Job.status == JobStatus.PENDING
            )
        ).one()
    assert left == ["recent"]
    assert again > now + timedelta(hours=23)  # the next round a day later
