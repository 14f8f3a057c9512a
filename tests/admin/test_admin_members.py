"""Members: search, ledger, adjustments, passes, CSV export and the import job."""

from __future__ import annotations

import csv
import io
import re
from decimal import Decimal

import factories
import pytest
from click.testing import CliRunner
from sqlalchemy import select
from test_admin_support import make_shop, post, sign_in

from walletpass.admin import imports
from walletpass.cli import main
from walletpass.crm import bulk
from walletpass.jobs.models import Job
from walletpass.loyalty.ledger import ledger_balance
from walletpass.loyalty.models import LedgerEntry, Member, Program
from walletpass.passes.models import Pass


def seed(runtime, settings, shop, n: int = 3):  # type: ignore[no-untyped-def]
    with runtime.transaction(shop.merchant_id) as s:
        program = s.get(Program, shop.program_id)
        people = [
            factories.member(
                s,
                program,
                name="Ada Lovelace",
                email="ada@example.test",
                phone="+33 6 12 34 56 78",
                external_id="CRM-1",
            ),
            factories.member(s, program, name="Grace Hopper", email="grace@example.test"),
        ] + [factories.member(s, program, name=f"Person {i}") for i in range(n)]
        for m in people:
            factories.member_pass(s, settings, m)
        return [m.id for m in people]


def test_search_by_name_email_phone_external_id_and_pages(client, runtime, settings):  # type: ignore[no-untyped-def]
    shop = make_shop(runtime)
    seed(runtime, settings, shop, n=30)
    sign_in(client, shop.emails["marketer"])
    for q in ("lovelace", "ADA@EXAMPLE", "12 34", "crm-1"):
        body = client.get("/admin/members", query_string={"q": q}).get_data(as_text=True)
        assert "Ada Lovelace" in body, q
        assert "Grace Hopper" not in body, q
        assert "1 member matching" in body
    first = client.get("/admin/members").get_data(as_text=True)
    assert "32 members" in first
    assert "Page 1 of 2" in first
    second = client.get("/admin/members", query_string={"page": 2}).get_data(as_text=True)
    assert len(re.findall(r'href="/admin/members/\d+"', second)) == 7


def test_member_page_shows_ledger_and_scans(client, runtime, settings):  # type: ignore[no-untyped-def]
    from walletpass.loyalty.ledger import SYSTEM
    from walletpass.loyalty.ledger import post as post_entry
    from walletpass.scan.models import Scan

    shop = make_shop(runtime)
    ada = seed(runtime, settings, shop, n=0)[0]
    with runtime.transaction(shop.merchant_id) as s:
        member = s.get(Member, ada)
        post_entry(
            s,
            member,
            kind="earn",
            key="r-77",
            actor=SYSTEM,
            points=12,
            amount=Decimal("12.00"),
            currency="EUR",
            receipt_id="R-77",
            reason="purchase",
        )
        s.add(
            Scan(
                merchant_id=shop.merchant_id,
                member_id=ada,
                action="purchase",
                code="x",
                amount=Decimal("12.00"),
                result="ok",
                receipt_id="R-77",
            )
        )
    sign_in(client, shop.emails["marketer"])
    body = client.get(f"/admin/members/{ada}").get_data(as_text=True)
    ledger = body.split('id="ledger"')[1].split("</table>")[0]
    scans = body.split('id="scans"')[1].split("</table>")[0]
    assert "+12" in ledger
    assert "R-77" in ledger
    assert "purchase" in ledger
    assert "R-77" in scans
    assert "12.00" in scans


def test_adjustment_double_submit_is_one_entry(client, runtime, settings):  # type: ignore[no-untyped-def]
    shop = make_shop(runtime)
    ada = seed(runtime, settings, shop, n=0)[0]
    sign_in(client, shop.emails["marketer"])
    page = client.get(f"/admin/members/{ada}").get_data(as_text=True)
    key = re.search(r'name="key" value="([^"]+)"', page).group(1)
    form = {"points": "50", "reason": "goodwill: late order", "key": key}
    first = post(client, f"/admin/members/{ada}/adjust", form)
    second = post(client, f"/admin/members/{ada}/adjust", form)
    assert first.status_code == second.status_code == 302
    with runtime.transaction(shop.merchant_id) as s:
        entries = list(s.scalars(select(LedgerEntry).where(LedgerEntry.member_id == ada)))
        assert [(e.kind, e.points, e.reason, e.actor_type) for e in entries] == [
            ("adjust", 50, "goodwill: late order", "staff")
        ]
        assert s.get(Member, ada).points_balance == 50 == ledger_balance(s, ada)[0]
        # The member's pass shows the new balance: it was refreshed.
        assert s.scalars(select(Pass).where(Pass.member_id == ada)).one().version == 2
    # No reason: refused, nothing recorded.
    r = post(
        client,
        f"/admin/members/{ada}/adjust",
        {"points": "5", "reason": "", "key": "7d0f1c8e-4a4c-4f87-9d41-0d6b6bb0c0a1"},
    )
    assert "Give a reason for the adjustment." in client.get(r.headers["Location"]).get_data(
        as_text=True
    )


def test_void_and_reissue(client, runtime, settings):  # type: ignore[no-untyped-def]
    shop = make_shop(runtime)
    ada = seed(runtime, settings, shop, n=0)[0]
    with runtime.transaction(shop.merchant_id) as s:
        old = s.scalars(select(Pass).where(Pass.member_id == ada)).one()
        old_id, old_serial = old.id, old.serial
    sign_in(client, shop.emails["marketer"])
    assert post(client, f"/admin/members/{ada}/passes/{old_id}/reissue").status_code == 302
    with runtime.transaction(shop.merchant_id) as s:
        passes = list(s.scalars(select(Pass).where(Pass.member_id == ada).order_by(Pass.id)))
        assert [p.status for p in passes] == ["voided", "active"]
        assert passes[1].serial != old_serial
        assert passes[1].program_id == shop.program_id
        new_id = passes[1].id
    post(client, f"/admin/members/{ada}/passes/{new_id}/void")
    with runtime.transaction(shop.merchant_id) as s:
        assert s.get(Pass, new_id).status == "voided"


def test_a_coupon_pass_voided_here_voids_its_coupon_and_a_reissued_one_does_not(  # type: ignore[no-untyped-def]
    client, runtime, settings
):
    from walletpass.errors import CouponExpired
    from walletpass.offers.models import Coupon, Offer
    from walletpass.offers.services import issue_coupon, redeem_coupon

    shop = make_shop(runtime)
    ada = seed(runtime, settings, shop, n=0)[0]
    with runtime.transaction(shop.merchant_id) as s:
        offer = Offer(
            merchant_id=shop.merchant_id,
            slug=f"o{shop.merchant_id}",
            title="Coffee",
            discount={"type": "amount", "value": "2.00"},
            uses_per_coupon=5,
        )
        s.add(offer)
        s.flush()
        coupon, old = issue_coupon(s, settings, offer, member_id=ada)
        coupon_id, old_id = coupon.id, old.id
    sign_in(client, shop.emails["marketer"])
    # Re-issued (a lost phone): the coupon lives on in the new pass.
    assert post(client, f"/admin/members/{ada}/passes/{old_id}/reissue").status_code == 302
    with runtime.transaction(shop.merchant_id) as s:
        assert s.get(Coupon, coupon_id).status == "active"
        new_id = s.scalars(
            select(Pass.id).where(Pass.coupon_id == coupon_id, Pass.status == "active")
        ).one()
        redeem_coupon(s, settings, coupon_id)  # still usable
    # Voided: the coupon cannot be used by its id either (the POS's /coupons/{id}/redeem).
    post(client, f"/admin/members/{ada}/passes/{new_id}/void")
    with runtime.transaction(shop.merchant_id) as s:
        assert s.get(Pass, new_id).status == "voided"
        assert s.get(Coupon, coupon_id).status == "void"
    with pytest.raises(CouponExpired), runtime.transaction(shop.merchant_id) as s:
        redeem_coupon(s, settings, coupon_id)


def test_csv_export(client, runtime, settings):  # type: ignore[no-untyped-def]
    from walletpass.loyalty.ledger import SYSTEM
    from walletpass.loyalty.ledger import post as post_entry

    shop = make_shop(runtime)
    ids = seed(runtime, settings, shop, n=1)
    with runtime.transaction(shop.merchant_id) as s:
        ada = s.get(Member, ids[0])
        ada.tags = {"vip": True, "level": "gold"}
        s.get(Member, ids[1]).name = "=cmd()"
        post_entry(s, ada, kind="bonus", key="k1", actor=SYSTEM, points=25, reason="welcome")
    sign_in(client, shop.emails["marketer"])
    r = client.get("/admin/members/export.csv")
    assert r.status_code == 200
    assert r.mimetype == "text/csv"
    assert r.is_streamed
    rows = list(csv.DictReader(io.StringIO(r.get_data(as_text=True))))
    assert [row["id"] for row in rows] == [str(i) for i in ids]
    first = rows[0]
    assert (first["name"], first["email"], first["external_id"]) == (
        "Ada Lovelace",
        "ada@example.test",
        "CRM-1",
    )
    assert first["phone"] == "+33612345678"  # a phone number (stored normalised) is no formula
    assert first["points_balance"] == "25"
    assert first["tags"] == "vip;level=gold"
    assert rows[1]["name"] == "'=cmd()"  # a formula is neutralised for spreadsheets
    ledger = list(
        csv.DictReader(io.StringIO(client.get("/admin/members/ledger.csv").get_data(as_text=True)))
    )
    assert [(e["member_id"], e["points"], e["reason"]) for e in ledger] == [
        (str(ids[0]), "25", "welcome")
    ]


CSV = (
    "name,email,phone,birthday,external_id,marketing_consent,tags\n"
    "Ada Lovelace,ada@example.test,+44 20 7946 0000,1815-12-10,CRM-1,yes,vip;early\n"
    "Grace Hopper,grace@example.test,,1906-12-09,,no,\n"
    "Bad Mail,not-an-email,,,,,\n"
    "Bad Date,date@example.test,,10/12/1990,,,\n"
    "Ada Again,ADA@example.test,,,,yes,\n"
    ",,,,,,\n"
)


def test_csv_import_runs_as_a_job_and_reports_rejected_rows(client, runtime, settings, worker):  # type: ignore[no-untyped-def]
    shop = make_shop(runtime)
    sign_in(client, shop.emails["marketer"])
    r = post(
        client,
        "/admin/members/import",
        {"program_id": str(shop.program_id), "file": (io.BytesIO(CSV.encode()), "m.csv")},
        content_type="multipart/form-data",
    )
    assert r.status_code == 302
    progress_url = r.headers["Location"]
    import_id = progress_url.rsplit("/", 1)[1]
    status = client.get(f"/admin/members/import/{import_id}/status").json
    assert status["state"] == "queued"
    assert status["total"] == 6
    assert status["done"] == 0
    page = client.get(progress_url).get_data(as_text=True)
    assert 'id="imp-bar"' in page

    worker.run_until_idle()

    status = client.get(f"/admin/members/import/{import_id}/status").json
    assert status["state"] == "done"
    assert status["percent"] == 100
    assert (status["done"], status["created"], status["existing"], status["rejected"]) == (
        6,
        2,
        0,
        4,
    )
    # The same checks and words as `walletpass import members` (crm/bulk.py).
    assert status["reasons"] == [
        {"line": 4, "reason": "invalid email 'not-an-email'"},
        {"line": 5, "reason": "birthday '10/12/1990' is not a date (YYYY-MM-DD)"},
        {"line": 6, "reason": "duplicate of line 2 (same email)"},
        {"line": 7, "reason": "external_id or email is required"},
    ]
    with runtime.transaction(shop.merchant_id) as s:
        members = {m.email: m for m in s.scalars(select(Member))}
        assert set(members) == {"ada@example.test", "grace@example.test"}
        ada = members["ada@example.test"]
        assert ada.external_id == "CRM-1"
        assert ada.marketing_consent is True
        assert ada.tags == {"vip": True, "early": True}
        assert str(ada.birthday) == "1815-12-10"
        # Each imported member has a pass to add to a wallet.
        assert len(s.scalars(select(Pass).where(Pass.member_id == ada.id)).all()) == 1


def test_big_import_runs_in_chunks_with_progress(client, runtime, settings, worker, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(imports, "CHUNK", 4)
    shop = make_shop(runtime)
    lines = ["name,email"] + [f"P{i},p{i}@example.test" for i in range(10)]
    with runtime.transaction(shop.merchant_id) as s:
        imports.start_import(
            s,
            merchant_id=shop.merchant_id,
            program_id=shop.program_id,
            data="\n".join(lines).encode(),
            import_id="abc",
        )
    seen = []
    while worker.run_once():
        with runtime.transaction(shop.merchant_id) as s:
            state = imports.status(s, shop.merchant_id, "abc")
            seen.append((state["state"], state["done"]))
    assert seen == [("running", 4), ("running", 8), ("done", 10)]
    with runtime.transaction(shop.merchant_id) as s:
        assert len(s.scalars(select(Member)).all()) == 10
        assert {j.status for j in s.scalars(select(Job).where(Job.kind == imports.KIND))} == {
            "done"
        }
        # Another merchant cannot read this import's status.
        assert imports.status(s, shop.merchant_id + 999, "abc") is None


def _upload(client, program_id: int, data: bytes):  # type: ignore[no-untyped-def]
    return post(
        client,
        "/admin/members/import",
        {"program_id": str(program_id), "file": (io.BytesIO(data), "m.csv")},
        content_type="multipart/form-data",
    )


def test_unusable_csv_is_refused_up_front(client, runtime):  # type: ignore[no-untyped-def]
    shop = make_shop(runtime)
    sign_in(client, shop.emails["marketer"])
    r = _upload(client, shop.program_id, b"foo,bar\n1,2\n")
    assert r.status_code == 422
    assert "The first line must name the columns" in r.get_data(as_text=True)
    with runtime.transaction(shop.merchant_id) as s:
        assert s.scalars(select(Job)).all() == []


def test_an_archived_program_takes_no_import(client, runtime):  # type: ignore[no-untyped-def]
    shop = make_shop(runtime)
    with runtime.transaction(shop.merchant_id) as s:
        program = s.get(Program, shop.program_id)
        program.active = False  # archived through the API
        name = program.name
    sign_in(client, shop.emails["marketer"])
    assert name not in client.get("/admin/members/import").get_data(as_text=True)
    r = _upload(client, shop.program_id, b"name\nAda\n")
    assert r.status_code == 422
    assert "Pick the program the members join." in r.get_data(as_text=True)
    with runtime.transaction(shop.merchant_id) as s:
        assert s.scalars(select(Job)).all() == []


def _cli(settings, *args: str) -> str:  # type: ignore[no-untyped-def]
    env = {
        "WALLETPASS_HOME": str(settings.home),
        "WALLETPASS_DATABASE_URL": settings.database_url,
        "WALLETPASS_SECRET_KEY": settings.secret_key,
        "WALLETPASS_PUBLIC_URL": settings.public_url,
    }
    result = CliRunner().invoke(main, list(args), env=env)
    assert result.exit_code == 0, result.output
    return result.output


def test_the_admin_and_the_cli_write_and_read_one_file(client, runtime, settings, worker, tmp_path):  # type: ignore[no-untyped-def]
    a, b, c = make_shop(runtime), make_shop(runtime), make_shop(runtime)
    ids = seed(runtime, settings, a, n=1)
    with runtime.transaction() as s:
        ada = s.get(Member, ids[0])
        ada.name, ada.tags, ada.marketing_consent = '=HYPERLINK("http://x")', {"vip": True}, True
        slugs = [s.get(Program, shop.program_id).slug for shop in (a, b, c)]
    sign_in(client, a.emails["marketer"])
    downloaded = client.get("/admin/members/export.csv").get_data(as_text=True)
    exported = tmp_path / "members.csv"
    _cli(settings, "export", "members", "--program", slugs[0], "-o", str(exported))
    # One program: the CLI's file is the admin's download, byte for byte.
    assert exported.read_bytes().decode() == downloaded
    assert downloaded.splitlines()[0] == ",".join(bulk.MEMBER_COLUMNS)
    assert "'=HYPERLINK" in downloaded
    ledger_out = tmp_path / "ledger.csv"
    _cli(settings, "export", "ledger", "--program", slugs[0], "-o", str(ledger_out))
    ledger_csv = client.get("/admin/members/ledger.csv").get_data(as_text=True)
    assert ledger_out.read_text(encoding="utf-8").splitlines()[0] == ",".join(bulk.LEDGER_COLUMNS)
    assert ledger_csv.splitlines()[0] == ",".join(bulk.LEDGER_COLUMNS)

    # The CLI's export goes in through the admin's upload ...
    sign_in(client, b.emails["marketer"])
    r = _upload(client, b.program_id, exported.read_bytes())
    assert r.status_code == 302, r.get_data(as_text=True)
    worker.run_until_idle()
    status = client.get(r.headers["Location"] + "/status").json
    assert (status["created"], status["rejected"], status["reasons"]) == (3, 0, [])
    # ... and the admin's download of that program through the CLI.
    again = client.get("/admin/members/export.csv").get_data(as_text=True)
    path = tmp_path / "again.csv"
    path.write_text(again, encoding="utf-8", newline="")
    output = _cli(settings, "import", "members", str(path), "--program", slugs[2])
    assert "3 rows: 3 were created, 0 updated, 0 unchanged, 0 rejected" in output

    def people(shop):  # type: ignore[no-untyped-def]
        with runtime.transaction(shop.merchant_id) as s:
            return [
                (m.external_id, m.email, m.name, m.phone, m.tags, m.marketing_consent)
                for m in s.scalars(select(Member).order_by(Member.id))
            ]

    assert people(a) == people(b) == people(c)
    assert people(c)[0][2:5] == ('=HYPERLINK("http://x")', "+33612345678", {"vip": True})


def test_adjustment_below_zero_is_refused_with_a_flash(client, runtime, settings):  # type: ignore[no-untyped-def]
    shop = make_shop(runtime)
    ada = seed(runtime, settings, shop, n=0)[0]
    sign_in(client, shop.emails["marketer"])
    form = {"points": "20", "reason": "goodwill", "key": "0b6f4c52-5f43-4f0e-9a55-3d2f3c1e0a01"}
    post(client, f"/admin/members/{ada}/adjust", form)
    r = post(
        client,
        f"/admin/members/{ada}/adjust",
        {"points": "-25", "reason": "typo", "key": "0b6f4c52-5f43-4f0e-9a55-3d2f3c1e0a02"},
    )
    page = client.get(r.headers["Location"]).get_data(as_text=True)
    assert "would take it below zero" in page
    with runtime.transaction(shop.merchant_id) as s:
        assert s.get(Member, ada).points_balance == 20 == ledger_balance(s, ada)[0]
