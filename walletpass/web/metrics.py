"""Prometheus text exposition, computed from the database at scrape time.

The outbox lives in the database, so queue depth and outcomes are the same whichever
process (web or `walletpass worker`) is scraped.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from walletpass.apple.models import Registration
from walletpass.health.expiry import CertificateDate
from walletpass.jobs.models import Job, JobStatus
from walletpass.passes.models import Pass


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render(
    session: Session,
    services: dict[str, object],
    certificates: list[CertificateDate] | None = None,
    now: float | None = None,
) -> str:
    lines: list[str] = []

    def metric(
        name: str, kind: str, help_text: str, samples: list[tuple[dict[str, str], float]]
    ) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            label_text = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
            lines.append(f"{name}{{{label_text}}} {value:g}" if label_text else f"{name} {value:g}")

    all_merchants = {"all_merchants": True}
    by_status = session.execute(
        select(Job.kind, Job.status, func.count())
        .group_by(Job.kind, Job.status)
        .execution_options(**all_merchants)
    ).all()
    metric(
        "walletpass_jobs",
        "gauge",
        "Outbox jobs by kind and status (pending+running = queue depth; done/dead = outcomes).",
        [({"kind": k, "status": s}, n) for k, s, n in by_status],
    )
    oldest = session.scalar(select(func.min(Job.run_at)).where(Job.status == JobStatus.PENDING))
    metric(
        "walletpass_jobs_oldest_pending_age_seconds",
        "gauge",
        "Age of the oldest due pending job.",
        [({}, max(time.time() - oldest.timestamp(), 0.0) if oldest else 0.0)],
    )
    metric(
        "walletpass_passes",
        "gauge",
        "Passes by status.",
        [
            ({"status": s}, n)
            for s, n in session.execute(
                select(Pass.status, func.count()).group_by(Pass.status)
            ).all()
        ],
    )
    metric(
        "walletpass_apple_registrations",
        "gauge",
        "Apple device registrations.",
        [({}, session.scalar(select(func.count()).select_from(Registration)) or 0)],
    )
    cert_error = services.get("apns_certificate_error")
    metric(
        "walletpass_apns_certificate_error",
        "gauge",
        "1 when APNs refused the pass certificate (403) in this process; pushes are paused.",
        [({}, 1.0 if cert_error else 0.0)],
    )
    if certificates is not None:
        _certificate_gauges(metric, certificates, time.time() if now is None else now)
    return "\n".join(lines) + "\n"


def _certificate_gauges(
    metric: Callable[[str, str, str, list[tuple[dict[str, str], float]]], None],
    certificates: list[CertificateDate],
    now: float,
) -> None:
    # Read from a per-process cache (walletpass.health.expiry): /metrics is scraped every
    # few seconds, the certificates change when one is imported.
    when = datetime.fromtimestamp(now, UTC)
    samples = [
        ({"kind": c.kind, "pass_type_id": c.pass_type_id}, c.not_after.timestamp() - now)
        for c in certificates
    ]
    metric(
        "walletpass_certificate_expiry_seconds",
        "gauge",
        "Seconds until the certificate's notAfter (negative: expired); kind pass signs "
        "passes, apns authenticates pushes, wwdr is the intermediate.",
        samples,
    )
    metric(
        "walletpass_certificate_expiring",
        "gauge",
        "1 when the certificate expires within 30 days (or has expired).",
        [
            ({"kind": c.kind, "pass_type_id": c.pass_type_id}, 1.0 if c.expiring(when) else 0.0)
            for c in certificates
        ],
    )
