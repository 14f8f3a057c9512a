"""A pass's kept signature says which files it goes with and until when it holds

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06

A fetch of an unchanged pass used to render pass.json again to learn whether the kept
signature still matched it. ``signed_files`` names the bundle's other files (a digest of
their names and hashes, with the configuration they were rendered under) and
``signed_until`` the first moment the clock alone could change what the card shows (an
offer's or a campaign's end, a membership's lapse); before it, a fetch of the signed
version answers from the kept parts with no rendering. Passes signed before this revision
have neither, and are rendered once more on their next fetch.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import walletpass.db

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("passes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("signed_files", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("signed_until", walletpass.db.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("passes", schema=None) as batch_op:
        batch_op.drop_column("signed_until")
        batch_op.drop_column("signed_files")
