"""A NUL character (U+0000) anywhere a client can put one is a clean 4xx, nothing stored
and nothing logged as an error: PostgreSQL refuses NUL in text (psycopg raises), so each
of these was a 500 with a traceback there, and SQLite stored it."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from pathlib import Path

import factories
import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from walletpass.admin import imports
from walletpass.apple.models import Device, Registration
from walletpass.cli import main
from walletpass.crm.inbound import create_source
from walletpass.crm.models import InboundEvent
from walletpass.jobs.models import Job
from walletpass.loyalty.models import Member
from walletpass.offers.models import Offer


@pytest.fixture
def served(app):  # type: ignore[no-untyped-def]
    """A client of the app as production runs it: an exception is a logged 500."""
    app.config["TESTING"] = False
    app.config["PROPAGATE_EXCEPTIONS"] = False
    return app.test_client()


@pytest.fixture
def shop(runtime, settings):  # type: ignore[no-untyped-def]
    with runtime.transaction() as s:
        merchant = factories.merchant(s)
        s.info["merchant_id"] = merchant.id
        program = factories.program(s, merchant, "points", slug="beans")
        member = factories.member(s, program)
        card = factories.member_pass(s, settings, member)
        s.add(Offer(merchant_id=merchant.id, slug="spring", title="20% off", discount={}))
        source, secret = create_source(
            s, settings, merchant_id=merchant.id, name="hubspot", program_id=program.id
        )
        return {
            "program_id": program.id,
            "serial": card.serial,
            "token": card.auth_token,
            "type": card.pass_type_id,
            "source": source.name,
            "secret": secret,
        }


def counts(runtime) -> dict[str, int]:  # type: ignore[no-untyped-def]
    with runtime.transaction() as s:
        return {
            m.__name__: s.scalar(select(func.count()).select_from(m))
            for m in (Member, Device, Registration, InboundEvent)
        }


def no_errors_logged(caplog: pytest.LogCaptureFixture) -> None:
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


PATHS = [
    ("GET", "/p/a%00"),
    ("GET", "/p/a%00/google"),
    ("GET", "/join/a%00"),
    ("POST", "/join/a%00"),
    ("GET", "/join/a%00/qr.svg"),
    ("GET", "/join/a%00/qr.png"),
    ("GET", "/join/a%00/flyer"),
    ("GET", "/offers/a%00/flyer"),
    ("GET", "/offers/a%00/claim"),
    ("GET", "/apple/v1/passes/{type}/a%00"),
    ("POST", "/apple/v1/devices/d1/registrations/{type}/a%00"),
    ("DELETE", "/apple/v1/devices/d1/registrations/{type}/a%00"),
    ("GET", "/apple/v1/devices/d%00/registrations/{type}"),
    ("POST", "/webhooks/crm/a%00"),
]


@pytest.mark.parametrize(("method", "path"), PATHS)
def test_a_nul_in_a_public_path_is_a_404(served, shop, runtime, caplog, method, path):
    before = counts(runtime)
    r = served.open(
        path.format(type=shop["type"]),
        method=method,
        headers={"Authorization": f"ApplePass {shop['token']}"},
        json={"pushToken": "ab" * 32} if method == "POST" else None,
    )
    assert r.status_code == 404, r.get_data(as_text=True)
    if path.startswith("/apple/"):
        assert r.get_data() == b""  # Apple's web service answers bare status codes
    if path.startswith("/webhooks/"):
        assert r.mimetype == "application/problem+json"
    assert counts(runtime) == before
    no_errors_logged(caplog)


def test_a_nul_in_a_query_is_a_400(served, shop, caplog):
    assert served.get("/join/beans?src=qr%00").status_code == 400
    r = served.get(f"/apple/v1/devices/d1/registrations/{shop['type']}?passesUpdatedSince=1%00")
    assert (r.status_code, r.get_data()) == (400, b"")
    no_errors_logged(caplog)


def test_apple_register_with_a_nul_push_token_is_a_400(served, shop, runtime, caplog):
    before = counts(runtime)
    r = served.post(
        f"/apple/v1/devices/d1/registrations/{shop['type']}/{shop['serial']}",
        json={"pushToken": "ab\x00cd"},
        headers={"Authorization": f"ApplePass {shop['token']}"},
    )
    assert (r.status_code, r.get_data()) == (400, b"")
    assert counts(runtime) == before
    # A backslash before u0000 is text, not a NUL: that token registers.
    r = served.post(
        f"/apple/v1/devices/d1/registrations/{shop['type']}/{shop['serial']}",
        json={"pushToken": "ab\\u0000cd"},
        headers={"Authorization": f"ApplePass {shop['token']}"},
    )
    assert r.status_code == 201
    no_errors_logged(caplog)


@pytest.mark.parametrize("field", ["name", "email", "phone", "referral_code", "src"])
def test_a_nul_in_a_join_form_field_is_a_400(served, shop, runtime, caplog, field):
    before = counts(runtime)
    form = {"name": "Ada", "email": "ada@example.test", field: "ada\x00"}
    r = served.post("/join/beans", data=form)
    assert r.status_code == 400
    assert "NUL character" in r.get_data(as_text=True)
    assert counts(runtime) == before
    no_errors_logged(caplog)


def _signed(secret: str, body: bytes) -> str:
    t = int(time.time())
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


@pytest.mark.parametrize(
    "data",
    [
        {"external_id": "crm-1", "email": "ana@example.test", "name": "Ana\u0000"},
        {"external_id": "crm\u00001", "email": "ana@example.test"},
    ],
)
def test_a_signed_crm_event_with_a_nul_is_a_400(served, shop, runtime, caplog, data):
    before = counts(runtime)
    doc = {"id": "evt-1", "type": "member.upsert", "created": int(time.time()), "data": data}
    body = json.dumps(doc).encode()  # NUL written as the JSON escape \u0000
    r = served.post(
        f"/webhooks/crm/{shop['source']}",
        data=body,
        headers={
            "Walletpass-Signature": _signed(shop["secret"], body),
            "Content-Type": "application/json",
        },
    )
    assert r.status_code == 400, r.get_data(as_text=True)
    assert r.mimetype == "application/problem+json"
    assert r.get_json()["type"] == "/problems/bad-request"
    assert counts(runtime) == before
    no_errors_logged(caplog)


def test_a_csv_import_rejects_the_row_with_a_nul(runtime, settings, shop, tmp_path: Path):
    path = tmp_path / "members.csv"
    path.write_text(
        "external_id,email,name\n"
        "c1,ana@example.test,Ana\n"
        "c2,bo@example.test,Bo\x00\n"
        "c3,cy@example.test,Cy\n",
        encoding="utf-8",
    )
    report = tmp_path / "rejected.csv"
    env = {
        "WALLETPASS_HOME": str(settings.home),
        "WALLETPASS_DATABASE_URL": settings.database_url,
        "WALLETPASS_SECRET_KEY": settings.secret_key,
        "WALLETPASS_PUBLIC_URL": settings.public_url,
    }
    args = ["import", "members", str(path), "--program", "beans", "--report", str(report)]
    result = CliRunner().invoke(main, args, env=env)
    assert result.exit_code == 0, result.output
    assert "3 rows: 2 were created, 0 updated, 0 unchanged, 1 rejected" in result.output
    assert "line 3: name contains a NUL character" in result.output
    with runtime.transaction() as s:
        emails = set(s.scalars(select(Member.email).where(Member.email.is_not(None))))
    assert {"ana@example.test", "cy@example.test"} <= emails
    assert "bo@example.test" not in emails


def test_an_admin_upload_with_a_nul_is_refused_with_its_line(runtime, shop):  # type: ignore[no-untyped-def]
    data = b"name,email\nAna,ana@example.test\nBo\x00,bo@example.test\n"
    with runtime.transaction() as s:
        merchant_id = s.scalar(select(Member.merchant_id))
        with pytest.raises(imports.CsvImportError, match="Line 3 holds a NUL character"):
            imports.start_import(
                s,
                merchant_id=merchant_id,
                program_id=shop["program_id"],
                data=data,
                import_id="nul",
            )
    with runtime.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Job)) == 0
