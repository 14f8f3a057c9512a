"""Large changes pace their wallet pushes on one shared cursor

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06

Every push makes a phone fetch its pass, so a large change (a campaign, a program-wide
change) spreads its pushes at WALLETPASS_PUSH_RATE. ``push_pace`` is the one row holding
the next free push slot (microseconds since the epoch) that every process reserves from,
so concurrent fan-outs follow one another. A campaign keeps the rate its pushes were
paced at, how many it queued and when the last is due, for its progress view.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import walletpass.db

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "push_pace",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("next_slot_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_push_pace")),
    )
    op.execute("INSERT INTO push_pace (id, next_slot_us) VALUES (1, 0)")
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.add_column(sa.Column("push_rate", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("pushes_paced", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("pushes_due_at", walletpass.db.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_column("pushes_due_at")
        batch_op.drop_column("pushes_paced")
        batch_op.drop_column("push_rate")
    op.drop_table("push_pace")
