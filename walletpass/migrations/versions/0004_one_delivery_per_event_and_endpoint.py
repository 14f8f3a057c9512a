"""one webhook delivery per event and endpoint

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05

Deliveries are written by the ``event.publish`` job after the change commits, and a job
may run again after a crash: the unique (endpoint_id, event_id) makes the second run
insert nothing. Its index starts with endpoint_id, so the single-column index on
endpoint_id, which served the delivery log, goes.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_deliveries_endpoint_id")
        batch_op.create_unique_constraint(
            "uq_webhook_deliveries_endpoint_id_event_id", ["endpoint_id", "event_id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.drop_constraint("uq_webhook_deliveries_endpoint_id_event_id", type_="unique")
        batch_op.create_index("ix_webhook_deliveries_endpoint_id", ["endpoint_id"], unique=False)
