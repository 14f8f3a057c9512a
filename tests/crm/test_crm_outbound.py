"""Outbound webhooks against real HTTP receivers on 127.0.0.1: events published once per
endpoint after their change commits, signature, retries with backoff, the dead letter,
redelivery, and every payload sent against its schema."""

from __future__ import annotations

import itertools
import json
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import factories
import pytest
from click.testing import CliRunner
from jsonschema import Draft202012Validator
from sqlalchemy import func, select, update

from walletpass.apple import services as apple
from walletpass.crm import outbound, schemas
from walletpass.crm.models import WebhookDelivery, WebhookEndpoint
from walletpass.db import utcnow
from walletpass.events import EVENT_TYPES, PUBLISH_KIND, emit
from walletpass.jobs.models import Job, JobStatus
from walletpass.jobs.registry import JobContext
from walletpass.jobs.worker import Worker
from walletpass.loyalty import enrolment, ledger
from walletpass.loyalty.models import Program
from walletpass.passes.services import record_event
from walletpass.scan.services import ScanRequest, apply_scan
from walletpass.tenancy.models import Merchant


def readme_verifier() -> Callable[..., bool]:
    """The verification function exactly as docs/webhooks.md gives it to integrators."""
    readme = (Path(__file__).resolve().parents[2] / "docs" / "webhooks.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    code = next(b for b in blocks if "def verify_signature" in b)
    namespace: dict[str, Any] = {}
    exec(compile(code, "docs/webhooks.md", "exec"), namespace)  # noqa: S102 - our own README
    return namespace["verify_signature"]


verify_signature = readme_verifier()


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    status: int | None
    signature_ok: bool

    @property
    def event(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A webhook receiver that answers with ``plan`` in turn (its last entry repeats).

    ``"hang"`` never answers (until the test ends), to exercise the sender's timeout.
    """

    plan: list[int | str]
    secret: str = ""
    received: list[Received] = field(default_factory=list)
    on_request: Callable[[], None] | None = None
    release: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                ok = verify_signature(
                    receiver.secret, self.headers.get("Walletpass-Signature", ""), body
                )
                index = len(receiver.received)
                answer = receiver.plan[min(index, len(receiver.plan) - 1)]
                receiver.received.append(
                    Received(
                        dict(self.headers), body, answer if isinstance(answer, int) else None, ok
                    )
                )
                if receiver.on_request is not None:
                    receiver.on_request()
                if answer == "hang":
                    receiver.release.wait(timeout=10)
                    return
                assert isinstance(answer, int)
                self.send_response(answer)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"no" if answer >= 300 else b"ok")

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def receivers() -> Iterator[Callable[..., Receiver]]:
    started: list[Receiver] = []

    def start(plan: list[int | str], **kw: Any) -> Receiver:
        receiver = Receiver(plan, **kw)
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.close()


@dataclass
class Shop:
    merchant_id: int
    program_id: int
    endpoint_id: int


def make_shop(runtime, settings, receiver: Receiver, events=("*",)) -> Shop:  # type: ignore[no-untyped-def]
    with runtime.transaction() as session:
        merchant = factories.merchant(session)
        session.info["merchant_id"] = merchant.id
        program = factories.program(session, merchant, "points")
        endpoint, secret = outbound.create_endpoint(
            session, settings, merchant_id=merchant.id, url=receiver.url, events=list(events)
        )
        receiver.secret = secret
        return Shop(merchant.id, program.id, endpoint.id)


def enroll(runtime, settings, shop: Shop, email="ana@example.test"):  # type: ignore[no-untyped-def]
    with runtime.transaction(shop.merchant_id) as session:
        program = session.get(Program, shop.program_id)
        member, pass_row, _ = enrolment.enroll(session, settings, program, name="Ana", email=email)
        return member, pass_row


@pytest.fixture
def webhook_worker(runtime) -> Worker:  # type: ignore[no-untyped-def]
    # Only event and webhook jobs: pushes queued by the same changes have no APNs to talk
    # to here.
    return Worker(runtime, name="webhook-worker", kinds=[PUBLISH_KIND, outbound.JOB_KIND])


def publish(runtime) -> int:  # type: ignore[no-untyped-def]
    """Run the events' publish jobs, which write the deliveries; returns how many ran."""
    return Worker(runtime, name="publisher", kinds=[PUBLISH_KIND]).run_until_idle()


def drive(runtime, worker: Worker, rounds: int = 30) -> int:  # type: ignore[no-untyped-def]
    """Run due jobs; instead of sleeping through the backoff, make retries due now."""
    handled = 0
    for _ in range(rounds):
        handled += worker.run_once()
        with runtime.transaction() as session:
            pending = session.execute(
                update(Job)
                .where(Job.kind == outbound.JOB_KIND, Job.status == JobStatus.PENDING)
                .values(run_at=utcnow() - timedelta(seconds=1))
            ).rowcount
        if not pending:
            break
    return handled


def deliveries(runtime) -> list[WebhookDelivery]:  # type: ignore[no-untyped-def]
    with runtime.transaction() as session:
        return list(session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))


def validate_sent(received: list[Received]) -> None:
    for item in received:
        event = item.event
        Draft202012Validator(
            json.loads(
                (schemas.SCHEMA_DIR / "outbound" / f"{event['type']}.schema.json").read_text()
            ),
            format_checker=Draft202012Validator.FORMAT_CHECKER,
        ).validate(event)
        assert item.headers["Walletpass-Event-Id"] == event["id"]
        assert item.headers["Walletpass-Event-Type"] == event["type"]
        assert item.headers["Content-Type"] == "application/json"


# --- delivery -----------------------------------------------------------------------------


def test_fails_three_times_then_delivered_once(runtime, settings, receivers, webhook_worker):
    receiver = receivers([500, 503, 404, 200])
    shop = make_shop(runtime, settings, receiver, events=["member.created"])
    _, pass_row = enroll(runtime, settings, shop)
    assert drive(runtime, webhook_worker) == 1 + 4  # the event's publish job, 4 attempts
    assert [r.status for r in receiver.received] == [500, 503, 404, 200]
    assert all(r.signature_ok for r in receiver.received)
    assert len({r.event["id"] for r in receiver.received}) == 1
    assert receiver.received[-1].event["data"]["pass_serial"] == pass_row.serial
    validate_sent(receiver.received)
    [delivery] = deliveries(runtime)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 4, 200)
    assert delivery.last_error is None
    assert delivery.delivered_at is not None
    with runtime.transaction() as session:
        job = session.scalars(select(Job).where(Job.kind == outbound.JOB_KIND)).one()
        assert (job.status, job.attempts) == (JobStatus.DONE, 4)
    # Nothing is left to send.
    assert drive(runtime, webhook_worker) == 0
    assert len(receiver.received) == 4


def test_retry_backoff_is_exponential_and_spans_about_three_days():
    delays = [outbound.retry_delay(n) for n in range(1, outbound.MAX_ATTEMPTS)]
    assert all(b >= a * 0.8 for a, b in itertools.pairwise(delays))
    total = timedelta(seconds=sum(delays))
    assert timedelta(days=2) < total <= timedelta(days=3)
    assert outbound.retry_delay(1) <= 60


def test_backoff_is_applied_to_the_job(runtime, settings, receivers, webhook_worker):
    receiver = receivers([500])
    shop = make_shop(runtime, settings, receiver)
    enroll(runtime, settings, shop)
    assert publish(runtime) == 1
    webhook_worker.run_once()
    with runtime.transaction() as session:
        job = session.scalars(select(Job).where(Job.kind == outbound.JOB_KIND)).one()
    assert job.status == JobStatus.PENDING
    wait = (job.run_at - utcnow()).total_seconds()
    assert 40 <= wait <= 61
    assert webhook_worker.run_once() == 0  # not due yet
    [delivery] = deliveries(runtime)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 1, 500)
    assert delivery.last_error.startswith("HTTP 500")


def test_always_failing_receiver_is_dead_lettered_then_redelivered(
    runtime, settings, receivers, webhook_worker, monkeypatch
):
    monkeypatch.setattr(outbound, "MAX_ATTEMPTS", 3)
    receiver = receivers([500])
    shop = make_shop(runtime, settings, receiver)
    enroll(runtime, settings, shop)
    drive(runtime, webhook_worker)
    assert len(receiver.received) == 3
    [delivery] = deliveries(runtime)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("dead", 3, 500)
    assert "HTTP 500" in delivery.last_error
    with runtime.transaction() as session:
        job = session.scalars(select(Job).where(Job.kind == outbound.JOB_KIND)).one()
        assert job.status == JobStatus.DEAD
        assert "gave up after 3 attempts" in job.last_error
    # The receiver is fixed; an operator resends the dead delivery.
    receiver.plan = [200]
    with runtime.transaction(shop.merchant_id) as session:
        outbound.redeliver(session, delivery.id)
        # A second redelivery while the first is queued does not send it twice.
        outbound.redeliver(session, delivery.id)
    drive(runtime, webhook_worker)
    assert [r.status for r in receiver.received] == [500, 500, 500, 200]
    assert receiver.received[-1].event == receiver.received[0].event
    assert receiver.received[-1].signature_ok
    [delivery] = deliveries(runtime)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 4, 200)


def test_receiver_that_never_answers_times_out_and_dies(
    runtime, settings, receivers, webhook_worker, monkeypatch
):
    monkeypatch.setattr(outbound, "MAX_ATTEMPTS", 2)
    monkeypatch.setattr(outbound, "TIMEOUT_S", 0.3)
    receiver = receivers(["hang"])
    shop = make_shop(runtime, settings, receiver)
    enroll(runtime, settings, shop)
    drive(runtime, webhook_worker)
    assert len(receiver.received) == 2
    [delivery] = deliveries(runtime)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("dead", 2, None)
    assert "Timeout" in delivery.last_error


def test_no_transaction_is_held_while_the_receiver_works(
    runtime, settings, receivers, webhook_worker
):
    # A receiver that calls back into walletpass (as a CRM calling the API would). If the
    # worker held a write transaction during the POST, SQLite would block this write.
    receiver = receivers([200])
    shop = make_shop(runtime, settings, receiver)

    def write_back() -> None:
        with runtime.transaction() as session:
            session.execute(
                update(Merchant).where(Merchant.id == shop.merchant_id).values(name="touched")
            )

    receiver.on_request = write_back
    enroll(runtime, settings, shop)
    drive(runtime, webhook_worker)
    assert [d.status for d in deliveries(runtime)] == ["delivered"]


# --- what is queued ----------------------------------------------------------------------


def test_only_subscribed_active_endpoints_of_the_merchant_get_events(
    runtime, settings, receivers, webhook_worker
):
    wanted = receivers([200])
    shop = make_shop(runtime, settings, wanted, events=["points.changed"])
    other = receivers([200])
    other_shop = make_shop(runtime, settings, other, events=["*"])
    with runtime.transaction(shop.merchant_id) as session:
        outbound.create_endpoint(
            session,
            settings,
            merchant_id=shop.merchant_id,
            url=other.url,
            events=["*"],
            active=False,
        )
    member, _ = enroll(runtime, settings, shop)
    with runtime.transaction(shop.merchant_id) as session:
        ledger.adjust(
            session, settings, member, points=5, reason="x", key="k1", actor=ledger.SYSTEM
        )

    # A change that rolls back sends nothing.
    def adjust_then_fail() -> None:
        with runtime.transaction(shop.merchant_id) as session:
            ledger.adjust(
                session, settings, member, points=7, reason="y", key="k2", actor=ledger.SYSTEM
            )
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError, match="rolled back"):
        adjust_then_fail()
    drive(runtime, webhook_worker)
    assert [r.event["type"] for r in wanted.received] == ["points.changed"]
    assert wanted.received[0].event["data"]["points_balance"] == 5
    assert other.received == []
    assert other_shop.endpoint_id != shop.endpoint_id


def test_a_publish_job_run_twice_writes_one_delivery_per_endpoint(
    runtime, settings, receivers, webhook_worker
):
    first, second = receivers([200]), receivers([200])
    shop = make_shop(runtime, settings, first, events=["member.created"])
    with runtime.transaction(shop.merchant_id) as session:
        endpoint, second.secret = outbound.create_endpoint(
            session, settings, merchant_id=shop.merchant_id, url=second.url, events=["*"]
        )
        second_id = endpoint.id
    enroll(runtime, settings, shop)
    # Worker A claims the event, then stalls past its lease: worker B takes the job over
    # and publishes it; A wakes up and commits the same writes (its completion matches
    # nothing, the job is B's now). The same as A's writes committing before a crash.
    stalled = Worker(runtime, name="stalled", kinds=[PUBLISH_KIND])
    [job] = stalled.claim()
    with runtime.transaction() as session:
        session.execute(update(Job).where(Job.id == job.id).values(locked_until=utcnow()))
    assert publish(runtime) == 1
    with runtime.transaction(shop.merchant_id) as session:
        assert outbound.publish(JobContext(settings, session, runtime.services), [job]) == {
            job.id: None
        }
    drive(runtime, webhook_worker)
    assert [(d.endpoint_id, d.status) for d in deliveries(runtime)] == [
        (shop.endpoint_id, "delivered"),
        (second_id, "delivered"),
    ]
    with runtime.transaction() as session:
        assert (
            session.scalar(
                select(func.count()).select_from(Job).where(Job.kind == outbound.JOB_KIND)
            )
            == 2
        )
    # Each receiver got the event once, with the id and time fixed when it was emitted.
    for receiver in (first, second):
        [received] = receiver.received
        assert received.signature_ok
        assert (received.event["id"], received.event["created"]) == (
            job.payload["id"],
            job.payload["created"],
        )


def test_an_event_emitted_in_a_rolled_back_transaction_is_never_delivered(
    runtime, settings, receivers, webhook_worker
):
    receiver = receivers([200])
    shop = make_shop(runtime, settings, receiver, events=["campaign.finished"])
    finished = {
        "campaign_id": 1,
        "name": "Spring",
        "recipients": 1,
        "sent": 1,
        "holdout": 0,
        "skipped_budget": 0,
        "excluded_no_consent": 0,
        "started_at": None,
        "finished_at": utcnow().isoformat(),
    }

    def emit_then_fail() -> None:
        with runtime.transaction(shop.merchant_id) as session:
            emit(session, shop.merchant_id, "campaign.finished", {**finished, "name": "Lost"})
            raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError, match="the change failed"):
        emit_then_fail()
    with runtime.transaction(shop.merchant_id) as session:
        emit(session, shop.merchant_id, "campaign.finished", finished)
    drive(runtime, webhook_worker)
    assert [r.event["data"]["name"] for r in receiver.received] == ["Spring"]
    assert [d.payload["data"]["name"] for d in deliveries(runtime)] == ["Spring"]


def test_only_events_an_active_endpoint_subscribes_to_are_queued(runtime, settings):
    def till_scan(merchant_id: int, pass_row, receipt_id: str) -> None:  # type: ignore[no-untyped-def]
        with runtime.transaction(merchant_id) as session:
            apply_scan(
                session,
                settings,
                ScanRequest(
                    code=pass_row.barcode,
                    action="purchase",
                    amount=Decimal("5"),
                    receipt_id=receipt_id,
                ),
                ledger.Actor("staff", "1"),
            )

    with runtime.transaction() as session:
        merchant = factories.merchant(session)
        session.info["merchant_id"] = merchant.id
        program = factories.program(session, merchant, "points")
        for events, active in ((["points.changed"], True), (["*"], False)):
            outbound.create_endpoint(
                session,
                settings,
                merchant_id=merchant.id,
                url="https://crm.example.test/hook",
                events=events,
                active=active,
            )
        _, pass_row, _ = enrolment.enroll(session, settings, program, name="Ana")
        bare = factories.merchant(session)
        session.info["merchant_id"] = bare.id
        bare_program = factories.program(session, bare, "points")
        _, bare_pass, _ = enrolment.enroll(session, settings, bare_program, name="Bo")
    till_scan(merchant.id, pass_row, "R1")
    till_scan(bare.id, bare_pass, "R2")
    with runtime.transaction() as session:
        queued = session.execute(
            select(Job.merchant_id, Job.payload).where(Job.kind == PUBLISH_KIND)
        ).all()
    # Not member.created nor scan.recorded, and nothing of the merchant without endpoints.
    assert [(merchant_id, event["type"]) for merchant_id, event in queued] == [
        (merchant.id, "points.changed")
    ]


def test_every_event_type_sent_matches_its_schema(runtime, settings, receivers, webhook_worker):
    receiver = receivers([200])
    shop = make_shop(runtime, settings, receiver)
    member, pass_row = enroll(runtime, settings, shop)
    with runtime.transaction(shop.merchant_id) as session:
        merchant = session.get(Merchant, shop.merchant_id)
        apple.register(session, pass_row, "device-1", "push-token-1")
        staff = ledger.Actor("staff", "1")
        apply_scan(
            session,
            settings,
            ScanRequest(
                code=pass_row.barcode, action="purchase", amount=Decimal("12.50"), receipt_id="S1"
            ),
            staff,
        )
        coupon_pass = factories.coupon_pass(session, settings, merchant)
        apply_scan(
            session, settings, ScanRequest(code=coupon_pass.barcode, action="redeem_coupon"), staff
        )
        apple.unregister(session, pass_row, "device-1")
        # Not emitted by the domain yet (rewards) or only after a whole campaign run: the
        # data their call sites send.
        record_event(session, pass_row, "google", "installed")  # the Google save callback
        emit(
            session,
            shop.merchant_id,
            "reward.redeemed",
            {
                "member_id": member.id,
                "external_id": None,
                "reward_id": 1,
                "reward": "Free coffee",
                "points": -10,
                "stamps": 0,
                "redemption_code": "ABCDEF1234",
                "entry_id": 1,
            },
        )
        emit(
            session,
            shop.merchant_id,
            "campaign.finished",
            {
                "campaign_id": 1,
                "name": "Spring",
                "recipients": 10,
                "sent": 8,
                "holdout": 1,
                "skipped_budget": 0,
                "excluded_no_consent": 1,
                "started_at": None,
                "finished_at": utcnow().isoformat(),
            },
        )
        # A membership's (this shop's card is a points card): the data its renewal sends.
        emit(
            session,
            shop.merchant_id,
            "membership.renewed",
            {
                "member_id": member.id,
                "external_id": None,
                "valid_from": utcnow(),
                "valid_until": utcnow() + timedelta(days=365),
                "amount": Decimal("30.00"),
                "currency": "EUR",
                "receipt_id": "M1",
                "entry_id": 2,
            },
        )
    drive(runtime, webhook_worker)
    validate_sent(receiver.received)
    assert {r.event["type"] for r in receiver.received} == set(EVENT_TYPES)
    assert all(r.signature_ok for r in receiver.received)
    assert all(d.status == "delivered" for d in deliveries(runtime))


def test_endpoint_validation(runtime, settings):
    from walletpass import errors

    with runtime.transaction() as session:
        merchant = factories.merchant(session)
        with pytest.raises(errors.ValidationFailed):
            outbound.create_endpoint(
                session, settings, merchant_id=merchant.id, url="ftp://x", events=["*"]
            )
        with pytest.raises(errors.ValidationFailed):
            outbound.create_endpoint(
                session, settings, merchant_id=merchant.id, url="https://x.test", events=["nope"]
            )


# --- CLI -----------------------------------------------------------------------------------


def cli_env(settings) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {
        "WALLETPASS_HOME": str(settings.home),
        "WALLETPASS_DATABASE_URL": settings.database_url,
        "WALLETPASS_SECRET_KEY": settings.secret_key,
        "WALLETPASS_PUBLIC_URL": settings.public_url,
    }


def test_cli_delivery_log_and_redeliver(runtime, settings, receivers, webhook_worker, monkeypatch):
    from walletpass.cli import main

    monkeypatch.setattr(outbound, "MAX_ATTEMPTS", 1)
    receiver = receivers([500])
    shop = make_shop(runtime, settings, receiver)
    enroll(runtime, settings, shop)
    drive(runtime, webhook_worker)
    [delivery] = deliveries(runtime)
    cli = CliRunner()
    log = cli.invoke(
        main, ["webhooks", "deliveries", "--endpoint", str(shop.endpoint_id)], env=cli_env(settings)
    )
    assert log.exit_code == 0, log.output
    assert "member.created" in log.output
    assert "dead" in log.output
    assert "last=500" in log.output
    as_json = cli.invoke(
        main,
        ["webhooks", "deliveries", "--endpoint", str(shop.endpoint_id), "--json"],
        env=cli_env(settings),
    )
    row = json.loads(as_json.output.splitlines()[0])
    assert (row["id"], row["status"], row["attempts"]) == (delivery.id, "dead", 1)
    receiver.plan = [204]
    result = cli.invoke(main, ["webhooks", "redeliver", str(delivery.id)], env=cli_env(settings))
    assert result.exit_code == 0, result.output
    drive(runtime, webhook_worker)
    assert deliveries(runtime)[0].status == "delivered"
    missing = cli.invoke(main, ["webhooks", "redeliver", "999999"], env=cli_env(settings))
    assert missing.exit_code == 1
    assert "no webhook delivery" in missing.output


def test_cli_endpoints_and_sources(runtime, settings):
    from walletpass.cli import main
    from walletpass.crm.models import InboundSource

    with runtime.transaction() as session:
        merchant = factories.merchant(session)
        slug = merchant.slug
    cli = CliRunner()
    created = cli.invoke(
        main,
        [
            *("webhooks", "endpoints", "create", "--merchant", slug, "--url", "https://crm.test/h"),
            *("--event", "member.created", "--event", "points.changed"),
        ],
        env=cli_env(settings),
    )
    assert created.exit_code == 0, created.output
    assert re.search(r"secret:\s+whsec_\S{20,}", created.output)
    listed = cli.invoke(main, ["webhooks", "endpoints", "list"], env=cli_env(settings))
    assert "https://crm.test/h" in listed.output
    assert "whsec_" not in listed.output
    bad = cli.invoke(
        main,
        ["webhooks", "endpoints", "create", "--merchant", slug, "--url", "nope", "--event", "*"],
        env=cli_env(settings),
    )
    assert bad.exit_code == 1
    assert "not an http(s) URL" in bad.output

    source = cli.invoke(
        main,
        ["webhooks", "sources", "create", "--merchant", slug, "--name", "crm-a"],
        env=cli_env(settings),
    )
    assert source.exit_code == 0, source.output
    assert "/webhooks/crm/crm-a" in source.output
    first_secret = re.search(r"secret: (\S+)", source.output).group(1)
    taken = cli.invoke(
        main,
        ["webhooks", "sources", "create", "--merchant", slug, "--name", "crm-a"],
        env=cli_env(settings),
    )
    assert taken.exit_code == 1
    assert "taken" in taken.output
    rotated = cli.invoke(
        main,
        ["webhooks", "sources", "rotate", "--name", "crm-a", "--grace-hours", "2"],
        env=cli_env(settings),
    )
    assert rotated.exit_code == 0, rotated.output
    assert re.search(r"secret: (\S+)", rotated.output).group(1) != first_secret
    assert "previous secret works until" in rotated.output
    with runtime.transaction() as session:
        row = session.scalars(select(InboundSource)).one()
        assert row.previous_secret_sealed is not None
        assert session.scalar(select(func.count()).select_from(WebhookEndpoint)) == 1
