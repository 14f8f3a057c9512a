"""CSV import (good and bad rows, dry run, report, progress) and export round trips."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import factories
import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from walletpass.cli import main
from walletpass.crm import bulk
from walletpass.jobs.models import Job
from walletpass.loyalty import ledger
from walletpass.loyalty.models import LedgerEntry, Member
from walletpass.passes.models import Pass

RULES = {"amount_per_point": "1", "bonuses": {"welcome": 10}}

GOOD_AND_BAD = (
    "external_id,email,name,phone,birthday,language,marketing_consent,tags,points_balance\n"
    "c1,ana@example.test,Ana,+351 1,1990-04-12,en,yes,vip;segment=regulars,120\n"  # 2
    "c2,bo@example.test,Bo,,,,,,\n"  # 3
    ",,Nobody,,,,,,\n"  # 4
    "c3,not-an-email,Cy,,,,,,\n"  # 5
    "c4,dee@example.test,Dee,,1990-13-01,,,,\n"  # 6
    "c5,eve@example.test,Eve,,,fr,,,\n"  # 7
    "c1,other@example.test,Dup,,,,,,\n"  # 8
    'c6,fay@example.test,"Fay\nMulti",,,,maybe,,\n'  # 9-10
    "c7,gus@example.test,Gus,,,,,,12x\n"  # 11
    "c8,hal@example.test,Hal,,,,,{bad json,\n"  # 12
    "c9,ana@example.test,Ana again,,,,,,\n"  # 13
)
EXPECTED_REJECTED = {
    4: "external_id or email is required",
    5: "invalid email",
    6: "birthday",
    7: "language must be one of",
    8: "duplicate of line 2 (same external_id)",
    9: "marketing_consent must be true or false",
    11: "points_balance must be a whole number",
    12: "tags must be",
    13: "duplicate of line 2 (same email)",
}


def cli_env(settings) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {
        "WALLETPASS_HOME": str(settings.home),
        "WALLETPASS_DATABASE_URL": settings.database_url,
        "WALLETPASS_SECRET_KEY": settings.secret_key,
        "WALLETPASS_PUBLIC_URL": settings.public_url,
    }


def run(settings, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, list(args), env=cli_env(settings))


@pytest.fixture
def program_slug(runtime) -> str:  # type: ignore[no-untyped-def]
    with runtime.transaction() as session:
        merchant = factories.merchant(session)
        return factories.program(session, merchant, "points", rules=RULES).slug


def counts(runtime) -> dict[str, int]:  # type: ignore[no-untyped-def]
    with runtime.transaction() as session:
        return {
            model.__name__: session.scalar(select(func.count()).select_from(model))
            for model in (Member, LedgerEntry, Pass, Job)
        }


def read_csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))


def write(tmp_path: Path, text: str, name: str = "members.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8", newline="")
    return path


def test_dry_run_reports_and_writes_nothing(runtime, settings, program_slug, tmp_path):
    before = counts(runtime)
    report = tmp_path / "rejected.csv"
    result = run(
        settings,
        "import",
        "members",
        str(write(tmp_path, GOOD_AND_BAD)),
        "--program",
        program_slug,
        "--dry-run",
        "--report",
        str(report),
    )
    assert result.exit_code == 0, result.output
    assert "checking 11 rows" in result.output  # the progress bar's label
    assert "dry run: nothing was written" in result.output
    assert "11 rows: 2 would be created, 0 updated, 0 unchanged, 9 rejected" in result.output
    assert counts(runtime) == before
    rows = read_csv(report)
    assert [int(r["line"]) for r in rows] == sorted(EXPECTED_REJECTED)


def test_import_good_and_bad_rows(runtime, settings, program_slug, tmp_path):
    report = tmp_path / "rejected.csv"
    path = write(tmp_path, GOOD_AND_BAD)
    result = run(
        settings,
        "import",
        "members",
        str(path),
        "--program",
        program_slug,
        "--report",
        str(report),
        "--batch-size",
        "3",
    )
    assert result.exit_code == 0, result.output
    assert "importing 11 rows" in result.output
    assert "11 rows: 2 were created, 0 updated, 0 unchanged, 9 rejected" in result.output
    assert "line 4: external_id or email is required" in result.output
    rows = read_csv(report)
    assert len(rows) == len(EXPECTED_REJECTED)
    for row in rows:
        assert EXPECTED_REJECTED[int(row["line"])] in row["reason"], row
    # The report carries the row's cells, so it can be fixed and re-imported.
    assert next(r for r in rows if r["line"] == "9")["name"] == "Fay\nMulti"
    with runtime.transaction() as session:
        ana = session.scalars(select(Member).where(Member.external_id == "c1")).one()
        assert ana.points_balance == 120  # welcome bonus 10 + opening adjustment 110
        assert ledger.ledger_balance(session, ana.id) == (120, 0)
        assert (ana.marketing_consent, str(ana.birthday), ana.tags) == (
            True,
            "1990-04-12",
            {"vip": True, "segment": "regulars"},
        )
        bo = session.scalars(select(Member).where(Member.external_id == "c2")).one()
        assert bo.points_balance == 10
        assert session.scalar(select(func.count()).select_from(Member)) == 2
        assert session.scalar(select(func.count()).select_from(Pass)) == 2
    # Running the same file again changes nothing (and adds no points).
    again = run(settings, "import", "members", str(path), "--program", program_slug)
    assert "2 unchanged, 9 rejected" in again.output
    assert counts(runtime)["LedgerEntry"] == 3


def test_import_updates_existing_members(runtime, settings, program_slug, tmp_path):
    run(
        settings, "import", "members", str(write(tmp_path, GOOD_AND_BAD)), "--program", program_slug
    )
    update = write(
        tmp_path, "email,name,points_balance\nANA@example.test,Ana Lima,999\n", "update.csv"
    )
    result = run(settings, "import", "members", str(update), "--program", program_slug)
    assert "1 were created" not in result.output
    assert "1 updated" in result.output
    with runtime.transaction() as session:
        ana = session.scalars(select(Member).where(Member.external_id == "c1")).one()
        # points_balance only seeds new members: an existing balance is never overwritten.
        assert (ana.name, ana.points_balance) == ("Ana Lima", 120)
    # Refused by the domain (not by the row check): that email is another external id's.
    clash = write(
        tmp_path, "external_id,email\nc9,ana@example.test\nc10,new@example.test\n", "c.csv"
    )
    result = run(settings, "import", "members", str(clash), "--program", program_slug)
    assert "line 2: 'ana@example.test' belongs to the member with external_id 'c1'" in result.output
    assert "1 were created" in result.output


def test_file_level_errors(runtime, settings, program_slug, tmp_path):
    bad_header = write(tmp_path, "external_id,emial\nc1,a@b.test\n")
    result = run(settings, "import", "members", str(bad_header), "--program", program_slug)
    assert result.exit_code == 1
    assert "unknown column(s) emial" in result.output
    good = write(tmp_path, "email\na@b.test\n", "ok.csv")
    result = run(settings, "import", "members", str(good), "--program", "no-such-program")
    assert result.exit_code == 1
    assert "no program 'no-such-program'" in result.output
    assert counts(runtime)["Member"] == 0


def test_export_round_trip(runtime, settings, program_slug, tmp_path):
    run(
        settings, "import", "members", str(write(tmp_path, GOOD_AND_BAD)), "--program", program_slug
    )
    exported = tmp_path / "export.csv"
    result = run(settings, "export", "members", "--program", program_slug, "-o", str(exported))
    assert result.exit_code == 0, result.output
    first = read_csv(exported)
    assert [r["external_id"] for r in first] == ["c1", "c2"]
    assert all(r["pass_serial"] for r in first)
    # Into another merchant's program: the export imports as it is and gives the same
    # members, balances included.
    with runtime.transaction() as session:
        other = factories.program(session, factories.merchant(session), "points", rules=RULES)
        other_slug = other.slug
    result = run(settings, "import", "members", str(exported), "--program", other_slug)
    assert "2 were created" in result.output, result.output
    assert "0 rejected" in result.output, result.output
    buffer = io.StringIO()
    assert bulk.export_members(runtime, other_slug, buffer) == 2
    second = list(csv.DictReader(io.StringIO(buffer.getvalue())))
    volatile = {"id", "program_id", "pass_serial", "created_at", "last_activity_at"}

    def stable(rows: list[dict[str, str]]) -> list[dict[str, str]]:
        return [{k: v for k, v in r.items() if k not in volatile} for r in rows]

    assert stable(second) == stable(first)


def test_export_ledger(runtime, settings, program_slug, tmp_path):
    run(
        settings, "import", "members", str(write(tmp_path, GOOD_AND_BAD)), "--program", program_slug
    )
    out = tmp_path / "ledger.csv"
    result = run(settings, "export", "ledger", "--program", program_slug, "-o", str(out))
    assert result.exit_code == 0, result.output
    rows = read_csv(out)
    assert list(rows[0]) == list(bulk.LEDGER_COLUMNS)
    assert [(r["external_id"], r["kind"], r["points"]) for r in rows] == [
        ("c1", "bonus", "10"),
        ("c1", "adjust", "110"),
        ("c2", "bonus", "10"),
    ]
    later = run(settings, "export", "ledger", "--program", program_slug, "--since", "2999-01-01")
    assert later.exit_code == 0
    # The CSV goes to stdout; the count to stderr, so a pipe gets only the CSV.
    assert later.stdout.splitlines() == [",".join(bulk.LEDGER_COLUMNS)]
    assert "0 ledger entries exported" in later.stderr


FORMULAS = ('=HYPERLINK("http://x")', "+cmd", "@SUM(1)", "-2+3")


def csv_text(header: list[str], rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerows([header, *rows])
    return buffer.getvalue()


def test_export_escapes_formulas_and_the_import_restores_them(
    runtime, settings, program_slug, tmp_path
):
    people = csv_text(
        ["external_id", "email", "name", "phone", "tags", "points_balance"],
        [[f"f{i}", f"f{i}@example.test", name, "", "", ""] for i, name in enumerate(FORMULAS)]
        + [["p1", "p1@example.test", "Pat", "+351 912 345 678", "@evil", "-5"]],
    )
    result = run(
        settings, "import", "members", str(write(tmp_path, people)), "--program", program_slug
    )
    assert "5 were created" in result.output, result.output
    assert "0 rejected" in result.output, result.output
    exported = tmp_path / "export.csv"
    result = run(settings, "export", "members", "--program", program_slug, "-o", str(exported))
    assert result.exit_code == 0, result.output
    rows = {r["external_id"]: r for r in read_csv(exported)}
    # A spreadsheet shows these instead of running them.
    assert [rows[f"f{i}"]["name"] for i in range(len(FORMULAS))] == [f"'{n}" for n in FORMULAS]
    assert rows["p1"]["tags"] == "'@evil"
    # A phone number (stored normalised) and a signed number are data, not formulas.
    assert (rows["p1"]["phone"], rows["p1"]["points_balance"]) == ("+351912345678", "-5")
    # Into another merchant's program: the cells come back as they were, without the '.
    with runtime.transaction() as session:
        other = factories.program(session, factories.merchant(session), "points", rules=RULES)
        other_id, other_slug = other.id, other.slug
    result = run(settings, "import", "members", str(exported), "--program", other_slug)
    assert "5 were created" in result.output, result.output
    assert "0 rejected" in result.output, result.output
    with runtime.transaction() as session:
        imported = session.scalars(
            select(Member).where(Member.program_id == other_id).order_by(Member.id)
        ).all()
        assert [(m.name, m.tags, m.points_balance) for m in imported] == [
            *((name, {}, 10) for name in FORMULAS),
            ("Pat", {"@evil": True}, -5),
        ]


def test_ledger_export_escapes_formulas(runtime, settings, program_slug, tmp_path):
    one = write(tmp_path, "external_id\nc1\n")
    assert run(settings, "import", "members", str(one), "--program", program_slug).exit_code == 0
    with runtime.transaction() as session:
        member = session.scalars(select(Member).where(Member.external_id == "c1")).one()
        ledger.adjust(
            session, settings, member, points=-3, reason="@SUM(A1)", key="k", actor=ledger.SYSTEM
        )
    out = tmp_path / "ledger.csv"
    assert (
        run(settings, "export", "ledger", "--program", program_slug, "-o", str(out)).exit_code == 0
    )
    assert [(r["points"], r["reason"]) for r in read_csv(out)][-1] == ("-3", "'@SUM(A1)")


def test_one_parser_reads_an_upload_and_an_export_alike():
    # As the admin's page describes a file (case-blind header, yes/no, "a;b" tags), and as
    # the export writes one: the same functions read both, with the same result.
    upload = "Name,EMAIL,Marketing_Consent,tags\nAda,ada@example.test,yes,vip;early\n"
    exported = dict.fromkeys(bulk.MEMBER_COLUMNS, "") | {
        "id": "7",
        "email": "ada@example.test",
        "name": "Ada",
        "marketing_consent": bulk.cell(True),
        "tags": bulk.cell({"vip": True, "early": True}),
        "pass_serial": "S1",
    }
    export = csv_text(list(exported), [list(exported.values())])
    (first,), (second,) = (bulk.parse_rows(bulk.read_text(t)) for t in (upload, export))
    assert first.fields == second.fields
    assert (first.fields.marketing_consent, first.fields.tags) == (
        True,
        {"vip": True, "early": True},
    )
