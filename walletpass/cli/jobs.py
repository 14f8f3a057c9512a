"""`walletpass jobs`: see and retry outbox jobs."""

from __future__ import annotations

import click
from sqlalchemy import select, update

from walletpass.cli.common import open_runtime
from walletpass.config import Settings
from walletpass.db import rowcount, utcnow
from walletpass.jobs.models import Job, JobStatus


@click.command()
@click.option(
    "--status",
    type=click.Choice([s.value for s in JobStatus]),
    default=None,
    help="Only jobs in this status (default: pending, running and dead).",
)
@click.option("--retry", "retry_ids", multiple=True, type=int, help="Queue this dead job again.")
@click.option("--retry-dead", is_flag=True, help="Queue every dead job again.")
@click.option("--limit", default=50, show_default=True)
@click.pass_obj
def jobs(
    settings: Settings,
    status: str | None,
    retry_ids: tuple[int, ...],
    retry_dead: bool,
    limit: int,
) -> None:
    """List pending and failed outbox jobs; retry dead ones."""
    with open_runtime(settings) as runtime, runtime.transaction() as session:
        if retry_ids or retry_dead:
            cond = Job.status == JobStatus.DEAD
            if retry_ids:
                cond = cond & Job.id.in_(retry_ids)
            count = rowcount(
                session.execute(
                    update(Job)
                    .where(cond)
                    .values(
                        status=JobStatus.PENDING,
                        run_at=utcnow(),
                        attempts=0,
                        finished_at=None,
                    )
                )
            )
            click.echo(f"{count} job(s) queued again")
            return
        statuses = [status] if status else [JobStatus.PENDING, JobStatus.RUNNING, JobStatus.DEAD]
        rows = session.scalars(
            select(Job).where(Job.status.in_(statuses)).order_by(Job.id.desc()).limit(limit)
        ).all()
        if not rows:
            click.echo("no jobs")
        for job in rows:
            err = f"  {job.last_error}" if job.last_error else ""
            click.echo(
                f"{job.id:>8} {job.status:<8} {job.kind:<16} attempts={job.attempts}"
                f" run_at={job.run_at:%Y-%m-%d %H:%M:%S}{err}"
            )
