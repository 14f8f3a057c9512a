"""a merchant's texts in each language: programs, rewards and offers get translations

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06

The texts a merchant types (a program's name, a reward's, an offer's title, description
and terms) were in one language. ``translations`` holds them in the others beside the
default, ``{"el": {"name": "..."}}`` (walletpass.i18n.merchant_texts); ``{}`` for the rows
that exist, which read as they did. A tier's names live in its program's rules (no column).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import walletpass.db

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("programs", "rewards", "offers")


def upgrade() -> None:
    # Plain ALTER TABLE, not a batch: on SQLite a batch would copy and drop ``programs``,
    # and dropping it deletes its members and rewards (ON DELETE CASCADE).
    for table in TABLES:
        op.add_column(
            table,
            sa.Column(
                "translations",
                walletpass.db.JsonType,
                nullable=False,
                server_default=sa.text("'{}'"),
            ),
        )


def downgrade() -> None:
    for table in TABLES:
        op.drop_column(table, "translations")
