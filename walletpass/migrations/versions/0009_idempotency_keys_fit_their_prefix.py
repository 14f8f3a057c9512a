"""Idempotency-Keys of the documented 200 characters fit with their prefixes

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06

The API promises an Idempotency-Key of 1 to 200 characters, but stores it behind the API
key's id (``idempotency_records.key``: ``<key id>:<Idempotency-Key>``) and, for an
adjustment, a reward or a membership payment without a receipt, in the ledger's key
(``ledger_entries.idempotency_key``: ``reward#2:api<key id>:<Idempotency-Key>:<reward
id>``), both varchar(200): a key near the limit was a 500 on PostgreSQL on every write.
Both columns widen to 400, which holds the longest prefix and suffix (under 60
characters) with room to spare. Widening a varchar rewrites no row on PostgreSQL.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = (("idempotency_records", "key"), ("ledger_entries", "idempotency_key"))


def upgrade() -> None:
    for table, column in _COLUMNS:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(
                column, existing_type=sa.String(length=200), type_=sa.String(length=400)
            )


def downgrade() -> None:
    # Refused by PostgreSQL while a stored key is longer than 200 characters.
    for table, column in _COLUMNS:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(
                column, existing_type=sa.String(length=400), type_=sa.String(length=200)
            )
