"""A campaign to 100,000 passes (generated data) completes through the worker.

Prints the launch and fan-out durations; the holdout must be within 1 point of the share.
2 % of the passes are on an iPhone, so about 1,800 pushes (their passes signed before
they leave) go to the APNs stand-in too.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import func, insert, select
from standins.apns_server import ApnsStandIn
from standins.tls import make_test_pki

import walletpass.campaigns.jobs  # noqa: F401 - registers the campaign job kinds
from walletpass.apple.models import Device, Registration
from walletpass.campaigns import services
from walletpass.campaigns.models import Campaign, CampaignRecipient
from walletpass.db import utcnow
from walletpass.jobs.models import Job, JobStatus
from walletpass.jobs.worker import Worker
from walletpass.loyalty.models import Member, Program
from walletpass.passes.models import Pass
from walletpass.tenancy.models import Merchant

N = 100_000
# Each pass on an iPhone is signed by the worker before its push (5-8 ms of CPU): 2,000
# of them keep the test to the fan-out's scale without making it a signing benchmark.
ON_IPHONE_EVERY = 50
HOLDOUT = 0.1


@pytest.fixture
def apns(tmp_path, certs_dir):  # type: ignore[no-untyped-def]
    from conftest import PASS_TYPE_ID

    pki = make_test_pki(tmp_path / "apns-pki", pass_type_id=PASS_TYPE_ID)
    client_cas = pki.directory / "client-cas.pem"
    client_cas.write_bytes(pki.ca_cert.read_bytes() + (certs_dir / "ca.pem").read_bytes())
    standin = ApnsStandIn(
        client_cas, pki.server_cert, pki.server_key, topic=PASS_TYPE_ID, keep_requests=False
    )
    standin.start()
    standin.pki = pki  # type: ignore[attr-defined]
    yield standin
    standin.stop()


@pytest.fixture
def fast_cleanup(runtime):  # type: ignore[no-untyped-def]
    """Empty the tables before the shared teardown does. On SQLite, deleting 100,000
    members row by row checks the self-referencing ``referred_by_id`` (not indexed) for
    each one: quadratic. With foreign-key checks off for the wipe it takes a second."""
    yield
    if not runtime.is_sqlite:
        return  # the shared teardown TRUNCATEs
    from walletpass.db import Base

    raw = runtime.engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("PRAGMA foreign_keys=OFF")
        for table in reversed(Base.metadata.sorted_tables):
            if table.name != "change_counter":
                cur.execute(f"DELETE FROM {table.name}")  # noqa: S608 - our table names
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()
    finally:
        raw.close()


def _generate(runtime, settings) -> int:  # type: ignore[no-untyped-def]
    now = utcnow().replace(microsecond=0) - timedelta(days=1)
    with runtime.transaction() as s:
        m = Merchant(slug="big", name="Big Bakery")
        s.add(m)
        s.flush()
        p = Program(
            merchant_id=m.id,
            slug="big-card",
            name="Card",
            kind="points",
            template="points_tiers",
            rules={"amount_per_point": "1"},
        )
        s.add(p)
        s.flush()
        mid, pid = m.id, p.id
    step = 20_000
    for start in range(0, N, step):
        with runtime.transaction() as s:
            first = s.scalar(select(func.coalesce(func.max(Member.id), 0)))
            s.execute(
                insert(Member.__table__),
                [
                    {
                        "merchant_id": mid,
                        "program_id": pid,
                        "name": f"Member {i}",
                        "referral_code": f"R{i:07d}",
                        "marketing_consent": True,
                        "created_at": now,
                    }
                    for i in range(start, start + step)
                ],
            )
            ids = s.scalars(select(Member.id).where(Member.id > first).order_by(Member.id)).all()
            s.execute(
                insert(Pass.__table__),
                [
                    {
                        "merchant_id": mid,
                        "serial": f"s{member_id}",
                        "barcode": f"b{member_id}",
                        "pass_type_id": settings.pass_type_id,
                        "auth_token": "t" * 32,
                        "template": "points_tiers",
                        "program_id": pid,
                        "member_id": member_id,
                        "status": "active",
                        "version": 1,
                        "change_stamp": 0,
                        "modified_at": now,
                        "created_at": now,
                    }
                    for member_id in ids
                ],
            )
            pass_ids = s.scalars(
                select(Pass.id).where(Pass.member_id.in_(ids[::ON_IPHONE_EVERY]))
            ).all()
            s.execute(
                insert(Device.__table__),
                [
                    {
                        "merchant_id": mid,
                        "library_id": f"lib{pid_}",
                        "pass_type_id": settings.pass_type_id,
                        "push_token": f"{pid_:064x}",
                        "updated_at": now,
                    }
                    for pid_ in pass_ids
                ],
            )
            devices = s.execute(
                select(Device.id, Device.library_id).where(
                    Device.library_id.in_([f"lib{x}" for x in pass_ids])
                )
            )
            s.execute(
                insert(Registration.__table__),
                [
                    {"merchant_id": mid, "device_id": dev_id, "pass_id": int(lib[3:])}
                    for dev_id, lib in devices
                ],
            )
    return mid


@pytest.mark.slow
def test_campaign_to_100k_passes(runtime, settings, apns, monkeypatch, fast_cleanup):
    monkeypatch.setattr(services, "BATCH_SPACING", timedelta(0))
    # Unpaced: this measures the fan-out and the worker, not WALLETPASS_PUSH_RATE (whose
    # 1,800 paced pushes would take 3.6 s of slots; tests/campaigns/test_campaign_pacing.py).
    settings = settings.override(apns_url=apns.url, apns_ca_file=str(apns.pki.ca_cert), push_rate=0)
    runtime.settings = settings
    t_gen = time.perf_counter()
    mid = _generate(runtime, settings)
    gen_s = time.perf_counter() - t_gen
    t0 = time.perf_counter()
    with runtime.transaction(mid) as s:
        c = services.create_campaign(
            s,
            settings,
            merchant_id=mid,
            name="Everyone",
            message="20% off this weekend",
            audience={"kind": "all"},
            holdout_share=HOLDOUT,
            seed=2024,
        )
        recipients = services.launch(s, settings, c)
        cid = c.id
    launch_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    handled = Worker(runtime, name="scale", claim_size=1000).run_until_idle(max_rounds=10_000)
    fanout_s = time.perf_counter() - t1
    total_s = time.perf_counter() - t0
    with runtime.transaction(mid) as s:
        campaign = s.get(Campaign, cid)
        held = s.scalar(
            select(func.count())
            .select_from(CampaignRecipient)
            .where(CampaignRecipient.campaign_id == cid, CampaignRecipient.holdout.is_(True))
        )
        # Everything but the later jobs: measuring (in an hour) and reverting the cards when
        # the message ends (next week).
        not_done = s.scalar(
            select(func.count())
            .select_from(Job)
            .where(
                Job.status != JobStatus.DONE,
                Job.kind.not_in(("campaign.expire", "campaign.measure")),
            )
        )
        bumped = s.scalar(select(func.count()).select_from(Pass).where(Pass.version == 2))
    print(
        f"\ncampaign to {N:,} passes on {runtime.engine.dialect.name}: data {gen_s:.1f}s, "
        f"launch {launch_s:.1f}s, worker {fanout_s:.1f}s ({handled:,} jobs, "
        f"{apns.count:,} pushes), launch+fan-out {total_s:.1f}s; holdout {held:,} "
        f"= {held / recipients:.4f} (asked {HOLDOUT})",
        flush=True,
    )
    assert recipients == N
    assert abs(held / recipients - HOLDOUT) <= 0.01
    assert campaign.status == "finished"
    assert campaign.sent == N - held == bumped
    assert not_done == 0
    # One push per treated pass on an iPhone (each has its own device token).
    assert 0.85 * N / ON_IPHONE_EVERY <= apns.count <= 0.95 * N / ON_IPHONE_EVERY
