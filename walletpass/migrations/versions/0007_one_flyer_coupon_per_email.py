"""one flyer coupon per offer per customer email

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06

A flyer's claim link minted a coupon for every browser that opened it and remembered it
only in that browser's cookie, so a "one per customer" offer was unlimited. A claim now
names the customer by email: coupons gain ``claim_email`` (trimmed, lower-cased), unique
per offer. Existing coupons were claimed by nobody and keep NULL, which never collides.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("coupons", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claim_email", sa.String(length=320), nullable=True))
        batch_op.create_index(
            "uq_coupons_claim_email_offer_id", ["claim_email", "offer_id"], unique=True
        )


def downgrade() -> None:
    with op.batch_alter_table("coupons", schema=None) as batch_op:
        batch_op.drop_index("uq_coupons_claim_email_offer_id")
        batch_op.drop_column("claim_email")
