"""Wallet problems: Apple's log messages and APNs errors, per merchant and pattern

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06

apple_logs gains the merchant a message is about (resolved from the serial it names;
NULL for a message naming no pass of ours), where it came from ("wallet" for POST
/v1/log, "apns" for pushes APNs refused), its pattern (a known problem's key or the
message with its variable parts taken out) and a count (an APNs row stands for that many
refused pushes). Rows logged before keep merchant and pattern NULL: the admin's page
groups what is logged from now on.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("apple_logs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "merchant_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
            )
        )
        batch_op.add_column(
            sa.Column("source", sa.String(length=16), server_default="wallet", nullable=False)
        )
        batch_op.add_column(sa.Column("pattern", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("count", sa.Integer(), server_default="1", nullable=False))
        batch_op.create_foreign_key(
            batch_op.f("fk_apple_logs_merchant_id_merchants"),
            "merchants",
            ["merchant_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch_op.create_index(
            "ix_apple_logs_merchant_pattern", ["merchant_id", "pattern"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("apple_logs", schema=None) as batch_op:
        batch_op.drop_index("ix_apple_logs_merchant_pattern")
        batch_op.drop_constraint(
            batch_op.f("fk_apple_logs_merchant_id_merchants"), type_="foreignkey"
        )
        batch_op.drop_column("count")
        batch_op.drop_column("pattern")
        batch_op.drop_column("source")
        batch_op.drop_column("merchant_id")
