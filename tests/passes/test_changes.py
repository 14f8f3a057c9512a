"""Marking passes changed (walletpass.passes.changes): what wallets rely on afterwards."""

from __future__ import annotations

import factories
from sqlalchemy import select

from walletpass.apple.models import Device, Registration
from walletpass.jobs.models import Job
from walletpass.passes import changes
from walletpass.passes.changes import mark_changed
from walletpass.passes.models import Pass, PassStatus
from walletpass.passes.refresh import program_passes


def _on_one_phone(session, merchant_id: int, passes: list[Pass]) -> None:  # type: ignore[no-untyped-def]
    device = Device(
        merchant_id=merchant_id,
        library_id="phone",
        pass_type_id=passes[0].pass_type_id,
        push_token="ab" * 32,
    )
    session.add(device)
    session.flush()
    for row in passes:
        session.add(Registration(merchant_id=merchant_id, device_id=device.id, pass_id=row.id))
    session.flush()


def test_each_change_is_a_new_version_with_a_later_last_modified(runtime, settings):  # type: ignore[no-untyped-def]
    with runtime.transaction() as s:
        program = factories.program(s, factories.merchant(s))
        made = [factories.member_pass(s, settings, factories.member(s, program)) for _ in range(2)]
        _on_one_phone(s, program.merchant_id, made)
        ids = [row.id for row in made]
    with runtime.transaction() as s:
        first = s.get(Pass, ids[0])
        before = (first.version, first.modified_at, first.change_stamp)
        # Twice within the same second: an HTTP date has no fractions, so the second
        # version must still be strictly later than the first for If-Modified-Since.
        assert sorted(mark_changed(s, settings, passes=ids)) == ids
        assert mark_changed(s, settings, member_id=first.member_id) == [first.id]
        # The loaded object reads the new state without being refreshed.
        assert first.version == before[0] + 2
        assert first.modified_at > before[1]
        assert first.change_stamp > before[2]
        version, modified_at = first.version, first.modified_at
    with runtime.transaction() as s:
        stored = s.get(Pass, ids[0])
        assert (stored.version, stored.modified_at) == (version, modified_at)
        # Both passes are on one phone: one push tells it to fetch both, however often.
        pushes = s.scalars(select(Job).where(Job.kind == "apple.push")).all()
        assert [job.payload["token"] for job in pushes] == ["ab" * 32]


def test_a_condition_reaches_every_pass_it_selects_and_no_other(runtime, settings, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(changes, "BATCH", 2)  # several batches from five passes
    with runtime.transaction() as s:
        program = factories.program(s, factories.merchant(s))
        other = factories.program(s, factories.merchant(s))
        cards = [factories.member_pass(s, settings, factories.member(s, program)) for _ in range(5)]
        voided = factories.member_pass(s, settings, factories.member(s, program))
        voided.status = PassStatus.VOIDED
        elsewhere = factories.member_pass(s, settings, factories.member(s, other))
        marked = mark_changed(s, settings, passes=program_passes(program.id), notify=False)
        assert sorted(marked) == [row.id for row in cards]
        assert all(row.version == 2 for row in cards)
        assert (voided.version, elsewhere.version) == (1, 1)
