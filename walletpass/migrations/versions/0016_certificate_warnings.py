"""Certificate warnings: the expiry emails sent, one per certificate, threshold and owner

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-08

A daily job (walletpass.health.warnings) emails the merchants' owners when a signing
certificate or its intermediate is within 30, 7 or 1 days of its end. A row per email
remembers it, its unique key (certificate fingerprint, threshold, user) being the
idempotency key: a job run twice or retried sends nothing more.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import walletpass.db

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "certificate_warnings",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("pass_type_id", sa.String(length=128), nullable=False),
        sa.Column("threshold_days", sa.Integer(), nullable=False),
        sa.Column("not_after", walletpass.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("user_id", _ID, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("recipient", sa.String(length=320), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", walletpass.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", walletpass.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("merchant_id", _ID, nullable=False),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["merchants.id"],
            name=op.f("fk_certificate_warnings_merchant_id_merchants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_certificate_warnings_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_certificate_warnings")),
        sa.UniqueConstraint(
            "fingerprint",
            "threshold_days",
            "user_id",
            name=op.f("uq_certificate_warnings_fingerprint_threshold_days_user_id"),
        ),
    )
    with op.batch_alter_table("certificate_warnings", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_certificate_warnings_merchant_id"), ["merchant_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_certificate_warnings_user_id"), ["user_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("certificate_warnings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_certificate_warnings_user_id"))
        batch_op.drop_index(batch_op.f("ix_certificate_warnings_merchant_id"))
    op.drop_table("certificate_warnings")
