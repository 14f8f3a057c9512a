"""A campaign's Google deliveries are kept on its recipient rows

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06

The results counted a recipient's Google delivery from its done ``google.message`` job;
done jobs are now pruned after WALLETPASS_JOB_RETENTION_DAYS, so the moment is stamped
on ``campaign_recipients.google_delivered_at`` when the job is done. Deliveries made
before this revision are copied from the jobs still there.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import walletpass.db

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("campaign_recipients", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "google_delivered_at", walletpass.db.UTCDateTime(timezone=True), nullable=True
            )
        )
    # The message job's key is campaign:<campaign id>:google:<pass id> (campaigns.fanout).
    op.execute(
        "UPDATE campaign_recipients SET google_delivered_at = ("
        " SELECT COALESCE(jobs.finished_at, jobs.created_at) FROM jobs"
        " WHERE jobs.kind = 'google.message' AND jobs.status = 'done'"
        " AND jobs.dedupe_key = 'campaign:' || CAST(campaign_recipients.campaign_id AS TEXT)"
        " || ':google:' || CAST(campaign_recipients.pass_id AS TEXT)"
        " ORDER BY jobs.id LIMIT 1)"
        " WHERE campaign_recipients.via_google AND campaign_recipients.pass_id IS NOT NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table("campaign_recipients", schema=None) as batch_op:
        batch_op.drop_column("google_delivered_at")
