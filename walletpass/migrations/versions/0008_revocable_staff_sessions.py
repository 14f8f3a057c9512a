"""staff sessions can be revoked: a per-user session generation

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06

A staff session is a signed cookie; one copied before sign-out kept working until it
expired (12 hours). Users gain ``session_generation``: a cookie carries the generation it
was signed in under, and signing out (or a password change) moves it on, so every earlier
cookie of that user is refused. Existing users start at 0, as do the sessions they hold
(a cookie without a generation reads as 0), so nobody is signed out by the upgrade.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("session_generation", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("session_generation")
