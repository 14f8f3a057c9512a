"""Member CSV import as an outbox job, in chunks, with progress the admin can poll. Flask-free.

The upload is queued as job ``admin.import_members`` whose payload carries the CSV text
and the running totals. Each run imports one chunk of rows in the job's transaction,
writes the totals into the first job's payload in that same transaction, and queues the
next chunk. A chunk is therefore all-or-nothing: a crash or a retry repeats it, and a
row is an upsert (same email or external id = same member, updated in place), so
nobody is enrolled twice. Progress is visible after every chunk, on SQLite as on PostgreSQL, from
any worker machine, because it lives in the database.

Columns, row checks and the upsert of a row are ``walletpass.crm.bulk``'s (the same as
``walletpass import members``): a file ``walletpass export members`` or the admin's
download wrote imports as it is.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from walletpass import errors
from walletpass.crm import bulk
from walletpass.i18n.catalogues import N_
from walletpass.jobs.models import Job
from walletpass.jobs.queue import enqueue
from walletpass.jobs.registry import JobContext, PermanentFailure, handler
from walletpass.loyalty.ledger import Actor
from walletpass.loyalty.models import Program

KIND = "admin.import_members"
COLUMNS = bulk.IMPORT_COLUMNS
CHUNK = 200
# The CSV rides in the job payload; bigger files belong to the JSON API or the CRM sync.
MAX_BYTES = 2 * 1024 * 1024
MAX_ROWS = 20_000
# Every rejected row is counted; the first ones are kept with their reason for display.
MAX_REASONS = 200


class CsvImportError(errors.ValidationFailed):
    """The file cannot be imported at all (shown to the marketer).

    ``detail`` is the English message; ``text`` and ``params`` the same message for the
    page to show in its reader's language (``gettext(text, **params)``).
    """

    def __init__(self, text: str, **params: object) -> None:
        super().__init__(text % params if params else text)
        self.text = text
        self.params = params


def dedupe_key(import_id: str, offset: int) -> str:
    return f"{KIND}:{import_id}:{offset}"


def read_rows(text: str) -> list[tuple[int, dict[str, str]]]:
    """The data rows with their line numbers (``bulk.read_rows``).

    :raise CsvImportError: no header, unknown columns, no key column, too many rows.
    """
    try:
        rows = bulk.read_text(text)
    except bulk.BulkError as exc:
        # The CRM import's words about the columns, in English (crm/bulk.py).
        raise CsvImportError(
            N_("The file cannot be imported: %(reason)s"), reason=str(exc)
        ) from None
    if len(rows) > MAX_ROWS:
        raise CsvImportError(N_("At most %(max)s rows per file; split it."), max=MAX_ROWS)
    return rows


def start_import(
    session: Session, *, merchant_id: int, program_id: int, data: bytes, import_id: str
) -> int:
    """Check and queue an uploaded CSV. Returns the number of rows.

    :raise CsvImportError: too big, not UTF-8 text, or unusable columns.
    """
    if len(data) > MAX_BYTES:
        raise CsvImportError(N_("The file is over %(mb)s MB."), mb=MAX_BYTES // 1024 // 1024)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CsvImportError(N_("The file is not UTF-8 text; export it as CSV UTF-8.")) from None
    if "\0" in text:
        # The file waits in a job's JSON payload, which PostgreSQL cannot hold a NUL in;
        # `walletpass import` rejects the row instead (crm/bulk.py).
        line = text.count("\n", 0, text.index("\0")) + 1
        raise CsvImportError(
            N_("Line %(line)s holds a NUL character; remove it and upload again."), line=line
        )
    rows = read_rows(text)
    enqueue(
        session,
        KIND,
        {
            "import_id": import_id,
            "program_id": program_id,
            "csv": text,
            "offset": 0,
            "progress": new_progress(len(rows)),
        },
        merchant_id=merchant_id,
        dedupe_key=dedupe_key(import_id, 0),
    )
    return len(rows)


def new_progress(total: int) -> dict[str, Any]:
    return {
        "state": "queued",
        "total": total,
        "done": 0,
        "created": 0,
        "existing": 0,
        "rejected": 0,
        "reasons": [],
    }


@handler(KIND)
def run_import_chunk(ctx: JobContext, job: Job) -> None:
    """Enroll the next CHUNK rows, record the totals, queue the following chunk."""
    payload = job.payload or {}
    import_id = str(payload["import_id"])
    offset = int(payload.get("offset", 0))
    first = (
        job
        if offset == 0
        else ctx.session.scalars(
            select(Job).where(
                Job.dedupe_key == dedupe_key(import_id, 0), Job.merchant_id == job.merchant_id
            )
        ).one_or_none()
    )
    if first is None:
        raise PermanentFailure(f"import {import_id}: its first job is gone")
    source = first.payload or {}
    program = ctx.session.get(Program, int(source["program_id"]))
    if program is None:
        raise PermanentFailure(f"import {import_id}: program {source['program_id']} is gone")
    rows = read_rows(str(source["csv"]))
    progress = dict(source.get("progress") or new_progress(len(rows)))
    reasons = list(progress.get("reasons") or [])
    actor = Actor("system", f"import:{import_id}")
    # Every row is parsed (cheap, no database) so a duplicate is found across chunks.
    chunk = bulk.parse_rows(rows)[offset : offset + CHUNK]
    for row in chunk:
        outcome = (
            row
            if isinstance(row, bulk.Rejected)
            else bulk.import_row(ctx.session, ctx.settings, program, row, actor=actor)
        )
        if isinstance(outcome, bulk.Rejected):
            progress["rejected"] += 1
            if len(reasons) < MAX_REASONS:
                reasons.append({"line": outcome.line, "reason": outcome.reason})
        elif outcome == "created":
            progress["created"] += 1
        else:
            progress["existing"] += 1
    progress["done"] = min(offset + len(chunk), len(rows))
    progress["reasons"] = reasons
    next_offset = offset + CHUNK
    progress["state"] = "running" if next_offset < len(rows) else "done"
    # The first job row is finished already (or is this one); its payload is the status
    # record, written in this transaction so it moves exactly with the enrolled rows.
    ctx.session.execute(
        update(Job)
        .where(Job.id == first.id)
        .values(payload={**source, "progress": progress})
        .execution_options(synchronize_session=False)
    )
    if next_offset < len(rows):
        enqueue(
            ctx.session,
            KIND,
            {"import_id": import_id, "offset": next_offset},
            merchant_id=job.merchant_id,
            dedupe_key=dedupe_key(import_id, next_offset),
        )


def status(session: Session, merchant_id: int, import_id: str) -> dict[str, Any] | None:
    """The progress of an import as the status page shows it, or None if unknown.

    Jobs are not tenant rows, so the merchant is checked here explicitly.
    """
    jobs = list(
        session.scalars(
            select(Job).where(
                Job.merchant_id == merchant_id, Job.dedupe_key.like(f"{KIND}:{import_id}:%")
            )
        )
    )
    first = next((j for j in jobs if j.dedupe_key == dedupe_key(import_id, 0)), None)
    if first is None:
        return None
    progress = dict((first.payload or {}).get("progress") or {})
    dead = [j for j in jobs if j.status == "dead"]
    if dead:
        progress["state"] = "failed"
        progress["error"] = dead[0].last_error or "the import stopped"
    elif progress.get("state") != "done" and any(j.status == "running" for j in jobs):
        progress["state"] = "running"
    total = progress.get("total") or 0
    progress["percent"] = 100 if not total else round(100 * progress.get("done", 0) / total)
    progress["import_id"] = import_id
    return progress
