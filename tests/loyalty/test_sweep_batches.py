"""A merchant's sweep through the real worker goes batch by batch, each batch a
transaction of its own, so the member rows it locks are not all held until its end."""

from __future__ import annotations

from datetime import date

import factories
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from walletpass.db import utcnow
from walletpass.jobs.models import Job, JobStatus
from walletpass.loyalty import sweeps
from walletpass.loyalty.models import LedgerEntry, Member


def test_sweep_runs_in_batches_of_members_each_committed(runtime, worker, monkeypatch):
    monkeypatch.setattr(sweeps, "SWEEP_BATCH", 2, raising=False)
    today = utcnow().date()
    with runtime.transaction() as s:
        m = factories.merchant(s)
        p = factories.program(
            s, m, "points", rules={"amount_per_point": "1", "bonuses": {"birthday": 50}}
        )
        ids = [factories.member(s, p, birthday=date(1990, today.month, 1)).id for _ in range(5)]
        merchant_id = m.id
    transactions: dict[int, object] = {}
    sweep_member = sweeps.sweep_member

    def watched(session: Session, settings, member, program, parsed, now):  # type: ignore[no-untyped-def]
        transactions[member.id] = session.get_transaction()
        return sweep_member(session, settings, member, program, parsed, now)

    monkeypatch.setattr(sweeps, "sweep_member", watched)
    with runtime.transaction() as s:
        sweeps.schedule(s)
    worker.run_until_idle()
    # Every member swept once: one birthday bonus each.
    with runtime.transaction(merchant_id) as s:
        assert [s.get(Member, i).points_balance for i in ids] == [50] * 5
        assert s.scalar(select(func.count()).select_from(LedgerEntry)) == 5
    assert sorted(transactions) == ids
    # Five members in batches of two: three transactions (one held every member before).
    distinct = {id(t) for t in transactions.values()}
    assert len(distinct) == 3
    with runtime.transaction() as s:
        merchant_sweeps = s.scalars(
            select(Job.status).where(Job.kind == "loyalty.sweep", Job.merchant_id == merchant_id)
        ).all()
    assert merchant_sweeps == [JobStatus.DONE] * 3
