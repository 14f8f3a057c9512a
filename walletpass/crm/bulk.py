"""Member CSV import and member/ledger CSV export: one format for the admin and the CLI.

Flask-free. The admin's download views stream :func:`members_csv` / :func:`ledger_csv`
(text chunks, one per batch); ``walletpass export`` writes the same chunks to a file
(:func:`export_members`, :func:`export_ledger`). Rows are read by keyset pagination, so
a large export never holds a whole table in memory, and every text cell goes through
:func:`cell`, which neutralises spreadsheet formulas.

Import: :func:`read_rows` checks the header and :func:`parse_rows` checks every row
(without the database) for both the admin's chunked job (``admin/imports.py``) and
``walletpass import members`` (:func:`import_members`: dry run, progress, report); each
accepted row goes in through :func:`import_row`, an upsert through the same path as the
``member.upsert`` webhook (``walletpass.crm.members``), so re-running a file changes
nothing the second time. Each row runs in a savepoint: a bad row is reported with its
line number and reason and the rest go in. The CLI commits rows in batches, so a huge
file does not hold one long transaction (on SQLite, the write lock); a dry run uses one
transaction that is always rolled back, so it checks everything the real run would and
writes nothing.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import IO, Any, Literal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from walletpass import errors
from walletpass.config import Settings
from walletpass.crm.members import MemberFields, upsert_member
from walletpass.i18n.languages import PSEUDO, languages, normalise
from walletpass.loyalty import ledger
from walletpass.loyalty.models import LedgerEntry, Member, Program, ProgramKind
from walletpass.passes.models import Pass, PassStatus
from walletpass.runtime import Runtime

# What the import reads. ``points_balance`` is the starting balance of a member the
# import creates (ignored for members that exist already).
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
# What the export writes: every import column, then informational ones (ids, balances
# the ledger owns, the pass, dates). The import accepts and ignores these, so an export
# imports as it is, into this program or another one.
INFORMATIONAL_COLUMNS = (
    "id",
    "program_id",
    "tier",
    "stamps_balance",
    "lifetime_spend",
    "pass_serial",
    "created_at",
    "last_activity_at",
)
# The export's columns: the member's id first, then what the import reads, then the rest.
MEMBER_COLUMNS = (INFORMATIONAL_COLUMNS[0], *IMPORT_COLUMNS, *INFORMATIONAL_COLUMNS[1:])
# The ledger is export-only (it changes through scans, adjustments and the API).
LEDGER_COLUMNS = (
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
    "store_id",
    "reason",
    "actor_type",
    "actor_id",
    "idempotency_key",
    "reverses_id",
    "expires_at",
)
BATCH = 1000
IMPORT_ACTOR = ledger.Actor("crm", "csv-import")
IMPORT_SOURCE = "csv-import"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^[0-9+()\-. ]{3,32}$")
_TRUE = {"1", "true", "yes", "y", "on", "x"}
_FALSE = {"0", "false", "no", "n", "off"}
_LIMITS = {"external_id": 128, "email": 320, "name": 200, "phone": 32}
# A cell starting with one of these runs as a formula when the file is opened in a
# spreadsheet (a member could name themselves "=HYPERLINK(...)").
_FORMULA = ("=", "+", "-", "@", "\t", "\r")
# Phone numbers and signed numbers are data, not formulas, and stay as they are.
_NUMBERISH = re.compile(r"^[+-]?[0-9][0-9 ().-]*$")
_TAG_SEPARATORS = re.compile(r"[;|,]")


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
class Row:
    """A row that passed :func:`parse_rows`: ready for :func:`import_row`."""

    line: int
    raw: dict[str, str]
    fields: MemberFields
    points_balance: int | None


Outcome = Literal["created", "updated", "unchanged"]


# --- reading ----------------------------------------------------------------------------


def read_rows(stream: IO[str]) -> list[tuple[int, dict[str, str]]]:
    """Every data row with the line it starts on (the header is line 1).

    Header names are case-blind; the informational columns of an export are accepted
    and ignored.

    :raise BulkError: no header, unknown columns, or neither external_id nor email.
    """
    reader = csv.DictReader(stream)
    header = [(name or "").strip().lstrip("\ufeff").lower() for name in reader.fieldnames or []]
    if not any(header):
        raise BulkError("The file is empty: the first line must name the columns.")
    reader.fieldnames = header
    unknown = [c for c in header if c not in IMPORT_COLUMNS and c not in INFORMATIONAL_COLUMNS]
    if unknown:
        raise BulkError(
            f"The first line must name the columns: unknown column(s) {', '.join(unknown)}; "
            f"known: {', '.join(IMPORT_COLUMNS)} (an export's "
            f"{', '.join(INFORMATIONAL_COLUMNS)} are accepted and ignored)."
        )
    if "external_id" not in header and "email" not in header:
        raise BulkError(
            "The first line must name the columns: an external_id or an email column is "
            "required (a member is found again by one of them)."
        )
    rows = []
    start = reader.line_num + 1
    for record in reader:
        # A quoted cell may span lines; the row starts where the previous one ended.
        cells = {k: (v or "") for k, v in record.items() if k is not None}
        for name in INFORMATIONAL_COLUMNS:
            cells.pop(name, None)
        if None in record:
            cells["\0extra"] = "1"
        rows.append((start, cells))
        start = reader.line_num + 1
    return rows


def read_text(text: str) -> list[tuple[int, dict[str, str]]]:
    """:func:`read_rows` of a whole file's text (a leading byte-order mark is dropped)."""
    return read_rows(io.StringIO(text.removeprefix("\ufeff"), newline=""))


def parse_rows(rows: Iterable[tuple[int, dict[str, str]]]) -> list[Row | Rejected]:
    """:func:`parse_row` for every row, and a row naming the same member as an earlier
    one (same external_id or email) is rejected: a file says one thing per member."""
    first_line: dict[tuple[str, str], int] = {}
    parsed: list[Row | Rejected] = []
    for line, raw in rows:
        row = parse_row(line, raw)
        if isinstance(row, Row):
            duplicate = _duplicate_of(row, first_line)
            if duplicate is not None:
                row = Rejected(line, duplicate, row.raw)
        parsed.append(row)
    return parsed


def _unescape(value: str) -> str:
    # What cell() escaped comes back as it was: an export re-imports unchanged.
    return value[1:] if value[:1] == "'" and value[1:2] in _FORMULA else value


def parse_row(line: int, raw: dict[str, str]) -> Row | Rejected:
    """Check one row without the database; a Rejected says why, in words."""
    shown = {k: v for k, v in raw.items() if not k.startswith("\0")}
    if "\0extra" in raw:
        return Rejected(line, "more cells than columns in the header", shown)
    cells = {k: _unescape(v.strip()) for k, v in shown.items()}
    external_id = cells.get("external_id") or None
    email = cells.get("email") or None
    try:
        if not external_id and not email:
            raise _BadCell("external_id or email is required")
        # PostgreSQL cannot store a NUL (psycopg raises) and SQLite would: no backend may.
        for name, cell in cells.items():
            if "\0" in cell:
                raise _BadCell(f"{name} contains a NUL character")
        for name, limit in _LIMITS.items():
            if len(cells.get(name, "")) > limit:
                raise _BadCell(f"{name} is longer than {limit} characters")
        if email and not _EMAIL.match(email):
            raise _BadCell(f"invalid email {email!r}")
        fields = MemberFields(external_id=external_id, email=email)
        # In column order, so the first bad cell of a row is the one reported.
        for name, parse in _OPTIONAL_CELLS.items():
            if cells.get(name):
                setattr(fields, name, parse(cells[name]))
        balance = cells.get("points_balance")
        points_balance = _whole_number(balance) if balance else None
    except _BadCell as exc:
        return Rejected(line, str(exc), shown)
    return Row(line, shown, fields, points_balance)


class _BadCell(ValueError):
    """A cell that cannot be imported; its message is the row's rejection reason."""


def _phone(cell: str) -> str:
    if not _PHONE.match(cell):
        raise _BadCell(f"invalid phone number {cell!r}")
    return cell


def _birthday(cell: str) -> date:
    try:
        return date.fromisoformat(cell)
    except ValueError:
        raise _BadCell(f"birthday {cell!r} is not a date (YYYY-MM-DD)") from None


def _language(cell: str) -> str:
    # A CRM's regional tag (zh-TW, el-GR) is the language its readers read.
    found = normalise(cell)
    if found is None or found == PSEUDO:
        raise _BadCell(f"language must be one of {', '.join(languages())} (or a regional tag)")
    return found


def _consent(cell: str) -> bool:
    consent = cell.lower()
    if consent not in _TRUE | _FALSE:
        raise _BadCell("marketing_consent must be true or false (yes/no, 1/0)")
    return consent in _TRUE


def _tags(cell: str) -> dict[str, Any]:
    tags = parse_tags(cell)
    if tags is None:
        raise _BadCell('tags must be a JSON object or a list like "vip;segment=regulars"')
    return tags


def _whole_number(cell: str) -> int:
    try:
        return int(cell)
    except ValueError:
        raise _BadCell("points_balance must be a whole number") from None


# The optional member columns, each read into MemberFields' attribute of the same name.
_OPTIONAL_CELLS: dict[str, Callable[[str], Any]] = {
    "name": str,
    "phone": _phone,
    "birthday": _birthday,
    "language": _language,
    "marketing_consent": _consent,
    "tags": _tags,
}


def parse_tags(cell: str) -> dict[str, Any] | None:
    """``{"vip": true}`` or ``vip;segment=regulars`` (``|`` and ``,`` separate too);
    None if the JSON is not an object."""
    if cell.startswith("{"):
        try:
            value = json.loads(cell)
        except json.JSONDecodeError:
            return None
        return value if isinstance(value, dict) else None
    tags: dict[str, Any] = {}
    for part in _TAG_SEPARATORS.split(cell):
        name, sep, value = part.strip().partition("=")
        if name.strip():
            tags[name.strip()[:64]] = value.strip() if sep else True
    return tags


def _duplicate_of(row: Row, first_line: dict[tuple[str, str], int]) -> str | None:
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
    """Upsert every row into the program (the CLI's driver); see the module docstring.

    :param progress: called with the number of rows handled since the last call.
    :raise BulkError: unknown program.
    """
    program_id, merchant_id = _program(runtime, program_slug)
    report = ImportReport(dry_run=dry_run, total=len(rows))
    parsed: list[Row] = []
    for row in parse_rows(rows):
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
                    outcome = import_row(
                        session, runtime.settings, program, row, actor=IMPORT_ACTOR
                    )
                    if isinstance(outcome, Rejected):
                        report.rejected.append(outcome)
                    else:
                        setattr(report, outcome, getattr(report, outcome) + 1)
                    if progress is not None:
                        progress(1)
                if dry_run:
                    raise _DryRunRollback
    except _DryRunRollback:
        pass
    report.rejected.sort(key=lambda r: r.line)
    return report


def _chunks(rows: list[Row], size: int) -> Iterator[list[Row]]:
    for start in range(0, len(rows), max(size, 1)):
        yield rows[start : start + size]


def import_row(
    session: Session,
    settings: Settings,
    program: Program,
    row: Row,
    *,
    actor: ledger.Actor,
    source: str = IMPORT_SOURCE,
) -> Outcome | Rejected:
    """Upsert one parsed row into ``program``, in a savepoint: a refused row undoes only
    itself and comes back as a Rejected.

    ``points_balance`` sets the balance a member *created by this row* starts with (an
    adjustment of the difference, so a welcome bonus is not added on top); it is ignored
    for members that already exist, so a re-run never adds points twice.
    """
    try:
        with session.begin_nested():
            result = upsert_member(
                session,
                settings,
                row.fields,
                program=program,
                actor=actor,
                source=source,
                where="row",
            )
            if result.created and row.points_balance is not None:
                _opening_balance(
                    session, settings, program, result.member, row.points_balance, actor
                )
            session.flush()
    except errors.WalletpassError as exc:
        return Rejected(row.line, exc.detail, row.raw)
    except IntegrityError as exc:
        return Rejected(row.line, f"conflicts with existing data: {exc.orig}"[:300], row.raw)
    if result.created:
        return "created"
    return "updated" if result.changed else "unchanged"


def _opening_balance(
    session: Session,
    settings: Settings,
    program: Program,
    member: Member,
    target: int,
    actor: ledger.Actor,
) -> None:
    difference = target - member.points_balance
    if difference == 0:
        return
    if program.kind not in (ProgramKind.POINTS, ProgramKind.TIERS):
        raise errors.ValidationFailed(f"points_balance does not apply to a {program.kind} program")
    ledger.adjust(
        session,
        settings,
        member,
        points=difference,
        reason="opening balance (import)",
        key=f"import:opening:{member.id}",
        actor=actor,
        opening_balance=True,
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
            [rejected.line, rejected.reason, *(cell(rejected.row.get(c, "")) for c in columns)]
        )


# --- export ------------------------------------------------------------------------------


def cell(value: Any) -> str:
    """One CSV cell as the export writes it (and the import reads it back).

    Text starting with = + - @ (or a tab or carriage return) gets a leading ``'`` so a
    spreadsheet shows it instead of running it; phone and signed numbers stay as they are.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return _tags_cell(value)
    text = str(value)
    if isinstance(value, str) and text[:1] in _FORMULA and not _NUMBERISH.match(text):
        return "'" + text
    return text


def _tags_cell(tags: dict[str, Any]) -> str:
    # "vip;level=gold" when that reads back the same (see parse_tags), JSON otherwise.
    def plain(text: Any) -> bool:
        return isinstance(text, str) and not re.search(r"[;|,=]", text) and text == text.strip()

    if all(plain(k) and k and len(k) <= 64 and (v is True or plain(v)) for k, v in tags.items()):
        short = ";".join(k if v is True else f"{k}={v}" for k, v in tags.items())
        if not short.startswith("{"):
            return cell(short)
    return json.dumps(tags, ensure_ascii=False, sort_keys=True) if tags else ""


def _lines(rows: Iterable[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerows([cell(v) for v in values] for values in rows)
    return buffer.getvalue()


def _keyset(session: Session, query: Any, key: Any) -> Iterator[list[Any]]:
    """The query's rows in batches of BATCH by ascending ``key`` (a keyset, not OFFSET)."""
    last = 0
    while True:
        rows = list(session.execute(query.where(key > last).order_by(key).limit(BATCH)))
        if not rows:
            return
        yield rows
        last = rows[-1][0].id
        session.expunge_all()


def _member_batches(session: Session, program_id: int | None) -> Iterator[tuple[int, str]]:
    query = select(Member)
    if program_id is not None:
        query = query.where(Member.program_id == program_id)
    for batch in _keyset(session, query, Member.id):
        members = [m for (m,) in batch]
        serials = {
            member_id: serial
            for member_id, serial in session.execute(
                select(Pass.member_id, Pass.serial).where(
                    Pass.member_id.in_([m.id for m in members]),
                    Pass.coupon_id.is_(None),
                    Pass.status == PassStatus.ACTIVE,
                )
            )
        }
        values = []
        for member in members:
            row = {c: getattr(member, c, None) for c in MEMBER_COLUMNS}
            row["pass_serial"] = serials.get(member.id)
            values.append([row[c] for c in MEMBER_COLUMNS])
        yield len(values), _lines(values)


def _ledger_batches(
    session: Session,
    program_id: int | None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Iterator[tuple[int, str]]:
    query = select(LedgerEntry, Member.external_id).join(Member, Member.id == LedgerEntry.member_id)
    if program_id is not None:
        query = query.where(Member.program_id == program_id)
    if since is not None:
        query = query.where(LedgerEntry.created_at >= since)
    if until is not None:
        query = query.where(LedgerEntry.created_at < until)
    for batch in _keyset(session, query, LedgerEntry.id):
        values = []
        for entry, external_id in batch:
            row = {c: getattr(entry, c, None) for c in LEDGER_COLUMNS}
            row["external_id"] = external_id
            values.append([row[c] for c in LEDGER_COLUMNS])
        yield len(values), _lines(values)


def members_csv(session: Session, *, program_id: int | None = None) -> Iterator[str]:
    """The members (of the session's merchant, or of one program) as CSV text chunks:
    the header, then one chunk per batch. The session must stay open while it runs."""
    yield _lines([MEMBER_COLUMNS])
    for _, text in _member_batches(session, program_id):
        yield text


def ledger_csv(
    session: Session,
    *,
    program_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Iterator[str]:
    """The ledger entries, oldest first, as CSV text chunks (see :func:`members_csv`)."""
    yield _lines([LEDGER_COLUMNS])
    for _, text in _ledger_batches(session, program_id, since, until):
        yield text


def _write(stream: IO[str], columns: Sequence[str], batches: Iterator[tuple[int, str]]) -> int:
    stream.write(_lines([columns]))
    count = 0
    for size, text in batches:
        stream.write(text)
        count += size
    return count


def export_members(runtime: Runtime, program_slug: str, stream: IO[str]) -> int:
    """Write the program's members as CSV (re-importable); returns how many."""
    program_id, merchant_id = _program(runtime, program_slug)
    with runtime.transaction(merchant_id) as session:
        return _write(stream, MEMBER_COLUMNS, _member_batches(session, program_id))


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
    with runtime.transaction(merchant_id) as session:
        return _write(stream, LEDGER_COLUMNS, _ledger_batches(session, program_id, since, until))
