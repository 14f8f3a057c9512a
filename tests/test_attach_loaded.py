"""A row the till read itself becomes a persistent object, as if the ORM had loaded it:
the actions then read, lock and change it as they would a loaded member."""

from __future__ import annotations

import factories
import pytest
from sqlalchemy import bindparam, event, inspect, select, update

from walletpass.db import attach_loaded
from walletpass.directsql import Direct
from walletpass.loyalty.models import Member

_MEMBERS = Member.__table__
_COLUMNS = [(prop.key, prop.columns[0]) for prop in Member.__mapper__.column_attrs]
_ONE = Direct(select(*(col for _, col in _COLUMNS)).where(_MEMBERS.c.id == bindparam("member_id")))


def _read(session, member_id: int) -> dict[str, object]:  # type: ignore[no-untyped-def]
    row = _ONE.one_or_none(session.connection(), {"member_id": member_id})
    return {name: row[i] for i, (name, _) in enumerate(_COLUMNS)}


@pytest.fixture
def member_id(runtime) -> int:  # type: ignore[no-untyped-def]
    with runtime.transaction() as s:
        m = factories.merchant(s)
        member = factories.member(s, factories.program(s, m), points_balance=40)
        return member.id


@pytest.fixture
def statements(runtime):  # type: ignore[no-untyped-def]
    sent: list[str] = []

    def note(_conn, _cursor, statement, *_args):  # type: ignore[no-untyped-def]
        sent.append(statement)

    event.listen(runtime.engine, "before_cursor_execute", note)
    yield sent
    event.remove(runtime.engine, "before_cursor_execute", note)


def test_the_object_is_persistent_with_nothing_to_flush(runtime, member_id, statements):  # type: ignore[no-untyped-def]
    with runtime.transaction() as s:
        member = attach_loaded(s, Member, _read(s, member_id))
        assert inspect(member).persistent
        assert member.points_balance == 40
        # The session knows it by its identity: no second read.
        assert s.get(Member, member_id) is member
        s.flush()
        assert not s.dirty and not s.new
    assert not [sql for sql in statements if sql.lstrip().upper().startswith("UPDATE")]


def test_a_change_to_it_is_saved_like_any_loaded_object(runtime, member_id):  # type: ignore[no-untyped-def]
    with runtime.transaction() as s:
        member = attach_loaded(s, Member, _read(s, member_id))
        member.tier = "gold"
    with runtime.transaction() as s:
        saved = s.get(Member, member_id)
        assert saved is not None
        assert (saved.tier, saved.points_balance) == ("gold", 40)


def test_an_object_already_held_is_refreshed_not_doubled(runtime, member_id):  # type: ignore[no-untyped-def]
    with runtime.transaction() as s:
        held = s.get(Member, member_id)
        assert held is not None and held.points_balance == 40
        # Another writer's change, which the held object has not seen.
        s.connection().execute(
            update(_MEMBERS).where(_MEMBERS.c.id == member_id).values(points_balance=77)
        )
        got = attach_loaded(s, Member, _read(s, member_id))
        assert got is held
        assert held.points_balance == 77
        assert not s.dirty
