"""pass bumps updated in place; Apple devices found by library id

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23

``ix_passes_type_stamp`` indexed a column every pass bump changes, so no bump could be a
heap-only (HOT) update: each added an entry to all seven of the table's indexes. No query
used it (the passesUpdatedSince listing reaches passes through a device's
registrations). That listing, and every Apple web-service call, finds the device by
library id and pass type, which the (merchant, library id, pass type) unique index
cannot serve: it read the whole devices table.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("passes", schema=None) as batch_op:
        batch_op.drop_index("ix_passes_type_stamp")
    with op.batch_alter_table("apple_devices", schema=None) as batch_op:
        batch_op.create_index(
            "ix_apple_devices_library", ["library_id", "pass_type_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("apple_devices", schema=None) as batch_op:
        batch_op.drop_index("ix_apple_devices_library")
    with op.batch_alter_table("passes", schema=None) as batch_op:
        batch_op.create_index(
            "ix_passes_type_stamp", ["pass_type_id", "change_stamp"], unique=False
        )
