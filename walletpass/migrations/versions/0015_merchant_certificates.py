"""merchant certificates: a merchant's own Pass Type ID certificate (issue 22, white label)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06

iOS 27 shows the signing certificate in a pass's details, so a merchant may bring its own
Pass Type ID certificate. One row per imported certificate: the PEMs, the private key
sealed with WALLETPASS_SECRET_KEY, and whether it signs the merchant's new passes
(``active``, at most one per merchant). Replaced and removed certificates stay, inactive,
to keep signing the passes already issued under their pass type.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import walletpass.db

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "merchant_certificates",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("pass_type_id", sa.String(length=128), nullable=False),
        sa.Column("team_id", sa.String(length=64), nullable=True),
        sa.Column("subject", sa.String(length=1000), nullable=False),
        sa.Column("cert_pem", sa.Text(), nullable=False),
        sa.Column("intermediate_pem", sa.Text(), nullable=False),
        sa.Column("sealed_key", sa.LargeBinary(), nullable=False),
        sa.Column("not_after", walletpass.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", walletpass.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("removed_at", walletpass.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("merchant_id", _ID, nullable=False),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["merchants.id"],
            name=op.f("fk_merchant_certificates_merchant_id_merchants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_merchant_certificates")),
    )
    op.create_index(
        "ix_merchant_certificates_pass_type_id",
        "merchant_certificates",
        ["pass_type_id"],
        unique=False,
    )
    op.create_index(
        "uq_merchant_certificates_active",
        "merchant_certificates",
        ["merchant_id"],
        unique=True,
        sqlite_where=sa.text("active"),
        postgresql_where=sa.text("active"),
    )


def downgrade() -> None:
    op.drop_index("uq_merchant_certificates_active", table_name="merchant_certificates")
    op.drop_index("ix_merchant_certificates_pass_type_id", table_name="merchant_certificates")
    op.drop_table("merchant_certificates")
