"""no single-column merchant index beside a composite one that starts with merchant_id

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23

Every tenant table had an index on merchant_id alone. On ``ledger_entries``, ``scans`` and
``members`` a composite index already starts with merchant_id and serves any query the
single-column one could, so the single-column one only cost an index entry, and its WAL,
on each row written: on the ledger and the scan log that is every till scan.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DROPPED = (
    ("ledger_entries", "ix_ledger_entries_merchant_id"),
    ("scans", "ix_scans_merchant_id"),
    ("members", "ix_members_merchant_id"),
)


def upgrade() -> None:
    for table, index in _DROPPED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(index)


def downgrade() -> None:
    for table, index in _DROPPED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(index, ["merchant_id"], unique=False)
