"""CSV import of members and CSV export of members and the ledger. Flask-free.

Import is an upsert per row through the same path as the ``member.upsert`` webhook
(``walletpass.crm.members``), so re-running a file changes nothing the second time.
Each row runs in a savepoint: a bad row is reported with its line number and reason and
the rest go in. Rows are committed in batches, so a huge file does not hold one long
transaction (on SQLite, the write lock); a dry run uses one transaction that is always
rolled back, so it checks everything the real run would and writes nothing.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import IO, Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from walletpass import errors
from walletpass.crm.members import MemberFields, upsert_member
from walletpass.loyalty import services as ledger
from walletpass.loyalty.models import LedgerEntry, Member, Program, ProgramKind
from walletpass.passes.models import Pass, PassStatus
from walletpass.runtime import Runtime

IMPORT_COLUMNS = (
    "external_id",
    "email",
    "name",
    "phone",
    "birthday",
    "language",
    "marketing_consent",
    "tags",
    "points_balance",
)
MEMBER_EXPORT_COLUMNS = (
    "id",
    "external_id",
    "email",
    "name",
    "phone",
    "birthday",
    "language",
    "marketing_consent",
    "tags",
    "tier",
    "points_balance",
    "stamps_balance",
    "lifetime_spend",
    "pass_serial",
    "created_at",
)
# Written by the export and accepted (ignored) by the import, so an export re-imports.
_IGNORED_ON_IMPORT = frozenset(MEMBER_EXPORT_COLUMNS) - frozenset(IMPORT_COLUMNS)
LEDGER_EXPORT_COLUMNS = (
    "id",
    "created_at",
    "member_id",
    "external_id",
    "kind",
    "points",
    "stamps",
    "amount",
    "currency",
    "receipt_id",
    "reason",
    "actor_type",
    "actor_id",
    "idempotency_key",
    "reverses_id",
    "expires_at",
)
IMPORT_ACTOR = ledger.Actor("crm", "csv-import")
IMPORT_SOURCE = "csv-import"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_TRUE = {"1", "true", "yes", "y", "on"}
_FALSE = {"0", "false", "no", "n", "off"}
_LIMITS = {"external_id": 128, "email": 320, "name": 200, "phone": 32}
_LANGUAGES = ("en", "zh-Hant")


class BulkError(ValueError):
    """The file as a whole cannot be used (unknown program, bad header)."""


@dataclass(frozen=True)
class Rejected:
    line: int
    reason: str
    row: dict[str, str]


@dataclass
class ImportReport:
    dry_run: bool
    total: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[Rejected] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return self.created + self.updated + self.unchanged

    def summary(self) -> str:
        verb = "would be" if self.dry_run else "were"
        return (
            f"{self.total} rows: {self.created} {verb} created, {self.updated} updated, "
            f"{self.unchanged} unchanged, {len(self.rejected)} rejected"
        )


@dataclass(frozen=True)
class _Row:
    line: int
    raw: dict[str, str]
    fields: MemberFields
    points_balance: int | None


# --- reading ----------------------------------------------------------------------------


def read_rows(stream: IO[str]) -> list[tuple[int, dict[str, str]]]:
    """Every data row with the line it starts on (the header is line 1).

    :raise BulkError: no header, unknown columns, or neither external_id nor email.
    """
    reader = csv.DictReader(stream)
    header = [name.strip() for name in (reader.fieldnames or [])]
    if not header:
        raise BulkError("the file is empty (a header row is required)")
    reader.fieldnames = header
    unknown = [c for c in header if c not in IMPORT_COLUMNS and c not in _IGNORED_ON_IMPORT]
    if unknown:
        raise BulkError(
            f"unknown column(s) {', '.join(unknown)}; known: {', '.join(IMPORT_COLUMNS)}"
        )
    if "external_id" not in header and "email" not in header:
        raise BulkError("the file needs an external_id or an email column")
    rows = []
    start = reader.line_num + 1
    for record in reader:
        # A quoted cell may span lines; the row starts where the previous one ended.
        if None in record:
            cells = {k: (v or "") for k, v in record.items() if k is not None}
            rows.append((start, {**cells, "\0extra": "1"}))
        else:
            rows.append((start, {k: (v or "") for k, v in record.items()}))
        start = reader.line_num + 1
    return rows


def parse_row(line: int, raw: dict[str, str]) -> _Row | Rejected:
    """Check one row without the database; a Rejected says why, in words."""
    shown = {k: v for k, v in raw.items() if not k.startswith("\0")}
    if "\0extra" in raw:
        return Rejected(line, "more cells than columns in the header", shown)
    cells = {k: v.strip() for k, v in shown.items()}

    def reject(reason: str) -> Rejected:
        return Rejected(line, reason, shown)

    external_id = cells.get("external_id") or None
    email = cells.get("email") or None
    if not external_id and not email:
        return reject("external_id or email is required")
    for name, limit in _LIMITS.items():
        if len(cells.get(name, "")) > limit:
            return reject(f"{name} is longer than {limit} characters")
    if email and not _EMAIL.match(email):
        return reject(f"invalid email {email!r}")
    fields = MemberFields(external_id=external_id, email=email)
    if cells.get("name"):
        fields.name = cells["name"]
    if cells.get("phone"):
        fields.phone = cells["phone"]
    if cells.get("birthday"):
        try:
            fields.birthday = date.fromisoformat(cells["birthday"])
        except ValueError:
            return reject(f"birthday {cells['birthday']!r} is not a date (YYYY-MM-DD)")
    if cells.get("language"):
        if cells["language"] not in _LANGUAGES:
            return reject(f"language must be one of {', '.join(_LANGUAGES)}")
        fields.language = cells["language"]
    consent = cells.get("marketing_consent", "").lower()
    if consent:
        if consent not in _TRUE | _FALSE:
            return reject("marketing_consent must be true or false")
        fields.marketing_consent = consent in _TRUE
    if cells.get("tags"):
        tags = parse_tags(cells["tags"])
        if tags is None:
            return reject('tags must be a JSON object or a list like "vip;segment=regulars"')
        fields.tags = tags
    points_balance = None
    if cells.get("points_balance"):
        try:
            points_balance = int(cells["points_balance"])
        except ValueError:
            return reject("points_balance must be a whole number")
    return _Row(line, shown, fields, points_balance)


def parse_tags(cell: str) -> dict[str, Any] | None:
    """``{"vip": true}`` (what the export writes) or ``vip;segment=regulars``."""
    if cell.startswith("{"):
        try:
            value = json.loads(cell)
        except json.JSONDecodeError:
            return None
        return value if isinstance(value, dict) else None
    tags: dict[str, Any] = {}
    for part in cell.split(";"):
        name, sep, value = part.strip().partition("=")
        if not name.strip():
            continue
        tags[name.strip()] = value.strip() if sep else True
    return tags


# --- import ------------------------------------------------------------------------------


class _DryRunRollback(Exception):
    """Raised to leave a dry run's transaction: ``Runtime.transaction`` rolls it back."""


def _program(runtime: Runtime, slug: str) -> tuple[int, int]:
    with runtime.transaction() as session:
        program = session.scalars(
            select(Program).where(Program.slug == slug).execution_options(all_merchants=True)
        ).one_or_none()
        if program is None:
            raise BulkError(f"no program {slug!r}")
        return program.id, program.merchant_id


def import_members(
    runtime: Runtime,
    program_slug: str,
    rows: list[tuple[int, dict[str, str]]],
    *,
    dry_run: bool = False,
    batch_size: int = 500,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Upsert every row into the program; see the module docstring for the rules.

    ``points_balance`` sets the balance a member *created by this import* starts with
    (an adjustment of the difference, so a welcome bonus is not added on top); it is
    ignored for members that already exist, so a re-run never adds points twice.

    :param progress: called with the number of rows handled since the last call.
    :raise BulkError: unknown program.
    """
    program_id, merchant_id = _program(runtime, program_slug)
    report = ImportReport(dry_run=dry_run, total=len(rows))
    parsed: list[_Row] = []
    first_line: dict[tuple[str, str], int] = {}
    for line, raw in rows:
        row = parse_row(line, raw)
        if isinstance(row, _Row):
            duplicate = _duplicate_of(row, first_line)
            if duplicate is not None:
                row = Rejected(line, duplicate, row.raw)
        if isinstance(row, Rejected):
            report.rejected.append(row)
        else:
            parsed.append(row)
    if progress is not None and report.rejected:
        progress(len(report.rejected))
    batches = [parsed] if dry_run else _chunks(parsed, batch_size)
    try:
        for batch in batches:
            with runtime.transaction(merchant_id) as session:
                program = session.get(Program, program_id)
                assert program is not None
                for row in batch:
                    _import_row(session, runtime, program, row, report)
                    if progress is not None:
                        progress(1)
                if dry_run:
                    raise _DryRunRollback
    except _DryRunRollback:
        pass
    report.rejected.sort(key=lambda r: r.line)
    return report


def _duplicate_of(row: _Row, first_line: dict[tuple[str, str], int]) -> str | None:
    keys = []
    if row.fields.external_id:
        keys.append(("external_id", row.fields.external_id))
    if row.fields.email:
        keys.append(("email", row.fields.email.lower()))
    for key in keys:
        if key in first_line:
            return f"duplicate of line {first_line[key]} (same {key[0]})"
    for key in keys:
        first_line[key] = row.line
    return None


def _chunks(rows: list[_Row], size: int) -> Iterator[list[_Row]]:
    for start in range(0, len(rows), max(size, 1)):
        yield rows[start : start + size]


def _import_row(
    session: Session, runtime: Runtime, program: Program, row: _Row, report: ImportReport
) -> None:
    try:
        # A savepoint per row: a refused row undoes only itself.
        with session.begin_nested():
            result = upsert_member(
                session,
                runtime.settings,
                row.fields,
                program=program,
                actor=IMPORT_ACTOR,
                source=IMPORT_SOURCE,
                where="row",
            )
            if result.created and row.points_balance is not None:
                _opening_balance(session, runtime, program, result.member, row.points_balance)
            session.flush()
    except errors.WalletpassError as exc:
        report.rejected.append(Rejected(row.line, exc.detail, row.raw))
        return
    except IntegrityError as exc:
        report.rejected.append(
            Rejected(row.line, f"conflicts with existing data: {exc.orig}"[:300], row.raw)
        )
        return
    if result.created:
        report.created += 1
    elif result.changed:
        report.updated += 1
    else:
        report.unchanged += 1


def _opening_balance(
    session: Session, runtime: Runtime, program: Program, member: Member, target: int
) -> None:
    difference = target - member.points_balance
    if difference == 0:
        return
    if program.kind not in (ProgramKind.POINTS, ProgramKind.TIERS):
        raise errors.ValidationFailed(f"points_balance does not apply to a {program.kind} program")
    ledger.adjust(
        session,
        runtime.settings,
        member,
        points=difference,
        reason="opening balance (import)",
        key=f"import:opening:{member.id}",
        actor=IMPORT_ACTOR,
    )


def write_rejected(report: ImportReport, stream: IO[str]) -> None:
    """The rejected rows as CSV: line, reason, then the row's own cells (fix and re-import)."""
    columns: list[str] = []
    for rejected in report.rejected:
        columns.extend(c for c in rejected.row if c not in columns)
    writer = csv.writer(stream)
    writer.writerow(["line", "reason", *columns])
    for rejected in report.rejected:
        writer.writerow(
            [rejected.line, rejected.reason, *(rejected.row.get(c, "") for c in columns)]
        )


# --- export ------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True) if value else ""
    return str(value)


def export_members(runtime: Runtime, program_slug: str, stream: IO[str]) -> int:
    """Write the program's members as CSV (re-importable); returns how many."""
    program_id, merchant_id = _program(runtime, program_slug)
    writer = csv.writer(stream)
    writer.writerow(MEMBER_EXPORT_COLUMNS)
    count = 0
    with runtime.transaction(merchant_id) as session:
        serials = dict(
            session.execute(
                select(Pass.member_id, Pass.serial).where(
                    Pass.program_id == program_id,
                    Pass.member_id.is_not(None),
                    Pass.coupon_id.is_(None),
                    Pass.status == PassStatus.ACTIVE,
                )
            ).all()
        )
        members = session.scalars(
            select(Member)
            .where(Member.program_id == program_id)
            .order_by(Member.id)
            .execution_options(yield_per=1000)
        )
        for member in members:
            values = {c: getattr(member, c, None) for c in MEMBER_EXPORT_COLUMNS}
            values["pass_serial"] = serials.get(member.id)
            writer.writerow([_cell(values[c]) for c in MEMBER_EXPORT_COLUMNS])
            count += 1
    return count


def export_ledger(
    runtime: Runtime,
    program_slug: str,
    stream: IO[str],
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> int:
    """Write the program's ledger entries as CSV, oldest first; returns how many."""
    program_id, merchant_id = _program(runtime, program_slug)
    writer = csv.writer(stream)
    writer.writerow(LEDGER_EXPORT_COLUMNS)
    count = 0
    with runtime.transaction(merchant_id) as session:
        query = (
            select(LedgerEntry, Member.external_id)
            .join(Member, Member.id == LedgerEntry.member_id)
            .where(Member.program_id == program_id)
            .order_by(LedgerEntry.id)
            .execution_options(yield_per=1000)
        )
        if since is not None:
            query = query.where(LedgerEntry.created_at >= since)
        if until is not None:
            query = query.where(LedgerEntry.created_at < until)
        for entry, external_id in session.execute(query):
            values = {c: getattr(entry, c, None) for c in LEDGER_EXPORT_COLUMNS}
            values["external_id"] = external_id
            writer.writerow([_cell(values[c]) for c in LEDGER_EXPORT_COLUMNS])
            count += 1
    return count
