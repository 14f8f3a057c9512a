"""Card emails: each email with a member's card link, from its request to the SMTP accept

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06

The join page, the till, the admin and the API ask for an email with the member's card
page link (walletpass.mail); the outbox job sends it. A row per email holds its
Message-ID (fixed at the request, so a retry sends the same message), the request's key
(a double submit is one email), and whether the SMTP server accepted it: a job run again
after that sends nothing.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import walletpass.db

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "card_emails",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "member_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("request_key", sa.String(length=200), nullable=True),
        sa.Column("message_id", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("recipient", sa.String(length=320), nullable=True),
        sa.Column("language", sa.String(length=16), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("sending_until", walletpass.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", walletpass.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", walletpass.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "merchant_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_card_emails_member_id_members"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["merchants.id"],
            name=op.f("fk_card_emails_merchant_id_merchants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_card_emails")),
        sa.UniqueConstraint(
            "merchant_id", "request_key", name=op.f("uq_card_emails_merchant_id_request_key")
        ),
        sa.UniqueConstraint("message_id", name=op.f("uq_card_emails_message_id")),
    )
    with op.batch_alter_table("card_emails", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_card_emails_member_id"), ["member_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("card_emails", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_card_emails_member_id"))

    op.drop_table("card_emails")
