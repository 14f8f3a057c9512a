"""one member per program per email and per phone

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06

Enrolments at the same moment (the API, a CRM, the join page) each looked for the member
and, finding none, each created one. The members of a program now have unique emails and
unique phone numbers (NULLs do not collide), stored normalised as the model's validators
store them: emails trimmed and lower-cased, phone numbers as digits with an optional +.

A database may already hold duplicates. The oldest member keeps the email or number; on
each newer one it is cleared and kept in its tags (``duplicate_of``: the member that kept
it, ``duplicate_email`` / ``duplicate_phone``: the value), and a warning names both.
Nothing else changes: the newer member keeps its card, balance and history, for the shop
to merge by hand (README, "One member per email or phone").
"""

import logging
import re
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

import walletpass.db

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("walletpass.migrations")

_members = sa.table(
    "members",
    sa.column("id", sa.BigInteger),
    sa.column("program_id", sa.BigInteger),
    sa.column("email", sa.String),
    sa.column("phone", sa.String),
    sa.column("tags", walletpass.db.JsonType),
    sa.column("created_at", walletpass.db.UTCDateTime()),
)

# A copy of walletpass.loyalty.models' normalisers as they are at this revision: a
# migration must keep doing what it did when the code it ships with changes.
_PHONE_CHARS = re.compile(r"^\+?[0-9 ().\-/]+$")


def _email(raw: str | None) -> str | None:
    return (raw or "").strip().lower() or None


def _phone(raw: str | None) -> str | None:
    text = (raw or "").strip()
    if not text:
        return None
    digits = re.sub(r"\D", "", text)
    if _PHONE_CHARS.match(text) and 6 <= len(digits) <= 15:
        return ("+" if text.startswith("+") else "") + digits
    return text


def _deduplicated(rows: Sequence[Any]) -> dict[int, dict[str, Any]]:
    """The changes to make, by member id: normalised keys, and on a newer duplicate its
    key cleared and recorded in its tags. ``rows`` come oldest first."""
    holders: dict[tuple[str, int, str], int] = {}
    changes: dict[int, dict[str, Any]] = {}
    for row in rows:
        values = {"email": _email(row.email), "phone": _phone(row.phone)}
        tags = dict(row.tags or {})
        for key, value in values.items():
            if value is None:
                continue
            holder = holders.setdefault((key, row.program_id, value), row.id)
            if holder != row.id:
                values[key] = None
                tags.update({"duplicate_of": holder, f"duplicate_{key}": value})
                log.warning(
                    "members %s and %s of program %s have the %s %r: kept on %s (the "
                    "older), cleared on %s and kept in its tags",
                    holder, row.id, row.program_id, key, value, holder, row.id,
                )  # fmt: skip
        normalised = (values["email"], values["phone"]) == (row.email, row.phone)
        if not normalised or tags != (row.tags or {}):
            changes[row.id] = {**values, "tags": tags}
    return changes


def upgrade() -> None:
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(
            _members.c.id,
            _members.c.program_id,
            _members.c.email,
            _members.c.phone,
            _members.c.tags,
        ).order_by(_members.c.created_at, _members.c.id)
    ).all()
    changes = _deduplicated(rows)
    # The constraints are made once the rows are unique.
    for member_id, values in changes.items():
        conn.execute(sa.update(_members).where(_members.c.id == member_id).values(**values))
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.create_unique_constraint("uq_members_program_id_email", ["program_id", "email"])
        batch_op.create_unique_constraint("uq_members_program_id_phone", ["program_id", "phone"])


def downgrade() -> None:
    # The cleared duplicates stay cleared: which of two spellings was typed is not kept.
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.drop_constraint("uq_members_program_id_phone", type_="unique")
        batch_op.drop_constraint("uq_members_program_id_email", type_="unique")
