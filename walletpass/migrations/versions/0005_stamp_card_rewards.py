"""a stamp card's own rewards are catalogue rows

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06

A stamp card's goal reward and its intermediate rewards were named in the program's rules
only: the till was told a reward was reached but could not redeem it. They become rows of
the program's reward catalogue (``rewards.card_stamps``: the stamp count they are reached
at), unique per program and count, so that the till, the API and the card list and redeem
them as any other reward. The rows of the stamp programs that exist are written here;
walletpass.loyalty.rewards.sync_card_rewards keeps them in step with later rules.
"""

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

import walletpass.db

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_programs = sa.table(
    "programs",
    sa.column("id", sa.BigInteger),
    sa.column("merchant_id", sa.BigInteger),
    sa.column("kind", sa.String),
    sa.column("rules", walletpass.db.JsonType),
)
_rewards = sa.table(
    "rewards",
    sa.column("merchant_id", sa.BigInteger),
    sa.column("program_id", sa.BigInteger),
    sa.column("name", sa.String),
    sa.column("kind", sa.String),
    sa.column("cost_points", sa.Integer),
    sa.column("card_stamps", sa.Integer),
    sa.column("active", sa.Boolean),
    sa.column("description", sa.Text),
    sa.column("created_at", walletpass.db.UTCDateTime()),
)


def _card_rewards(rules: Any) -> list[tuple[int, str, int]]:
    """(stamps, name, cost) for the rules' goal and intermediate rewards, as
    walletpass.loyalty.rewards.card_rewards gives them (the stored rules are valid)."""
    goal = int(rules["goal"])
    found = [(goal, str(rules["reward_name"]), goal)]
    found += [(int(r["at"]), str(r["name"]), 0) for r in rules.get("intermediate_rewards") or []]
    return found


def upgrade() -> None:
    with op.batch_alter_table("rewards", schema=None) as batch_op:
        batch_op.add_column(sa.Column("card_stamps", sa.Integer(), nullable=True))
        batch_op.create_unique_constraint(
            "uq_rewards_program_id_card_stamps", ["program_id", "card_stamps"]
        )
    conn = op.get_bind()
    now = datetime.now(UTC)
    for program in conn.execute(
        sa.select(_programs.c.id, _programs.c.merchant_id, _programs.c.rules).where(
            _programs.c.kind == "stamps"
        )
    ):
        for stamps, name, cost in _card_rewards(program.rules):
            conn.execute(
                _rewards.insert().values(
                    merchant_id=program.merchant_id,
                    program_id=program.id,
                    name=name[:200],
                    kind="item",
                    cost_points=cost,
                    card_stamps=stamps,
                    active=True,
                    description="",
                    created_at=now,
                )
            )


def downgrade() -> None:
    # The goal's rows stay as ordinary rewards costing the goal's stamps, as a merchant
    # would have added them; an intermediate one, costing nothing, would be free to anyone.
    op.execute(
        sa.update(_rewards)
        .where(_rewards.c.card_stamps.is_not(None), _rewards.c.cost_points == 0)
        .values(active=False)
    )
    with op.batch_alter_table("rewards", schema=None) as batch_op:
        batch_op.drop_constraint("uq_rewards_program_id_card_stamps", type_="unique")
        batch_op.drop_column("card_stamps")
