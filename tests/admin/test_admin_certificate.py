"""The admin's signing certificate page: the shop uploads its own Pass Type ID .p12, sees
what is in use and until when, and can go back to the platform's (issue 22)."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    pkcs12,
)
from sqlalchemy import func, select
from test_admin_support import make_shop, post, sign_in

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "certs"))
from test_certs import PASSWORD, _key, make_ca, make_pass_cert

from walletpass.certs import p12 as p12_module
from walletpass.certs.models import MerchantCertificate

TYPE = "pass.com.hotel.loyalty"


@pytest.fixture
def p12(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    ca = make_ca(_key(0))
    folder = tmp_path / "wwdr"
    folder.mkdir()
    (folder / "wwdr.pem").write_bytes(ca.public_bytes(Encoding.PEM))
    monkeypatch.setattr(p12_module, "BUNDLED_CERTS_DIR", folder)
    cert = make_pass_cert(_key(0), ca, _key(1), uid=TYPE)
    return pkcs12.serialize_key_and_certificates(
        b"p", _key(1), cert, None, BestAvailableEncryption(PASSWORD)
    )


def _upload(client, data: bytes, password: str):  # type: ignore[no-untyped-def]
    return post(
        client,
        "/admin/certificate",
        {"p12": (io.BytesIO(data), "PassType.p12"), "password": password},
        content_type="multipart/form-data",
        follow_redirects=True,
    )


def _count(runtime) -> int:  # type: ignore[no-untyped-def]
    with runtime.transaction() as s:
        return s.scalar(select(func.count()).select_from(MerchantCertificate)) or 0


def test_an_owner_uploads_sees_and_removes_the_certificate(client, runtime, settings, p12):
    shop = make_shop(runtime)
    sign_in(client, shop.emails["owner"])
    page = client.get("/admin/certificate").get_data(as_text=True)
    assert settings.pass_type_id in page
    r = _upload(client, p12, PASSWORD.decode())
    assert r.status_code == 200
    page = r.get_data(as_text=True)
    assert f"Your new passes are now signed with {TYPE}." in page
    assert "TEAMTEST01" in page
    assert "UID=pass.com.hotel.loyalty" in page
    assert _count(runtime) == 1
    r = post(client, "/admin/certificate/remove", follow_redirects=True)
    assert "signed with the platform&#39;s certificate again" in r.get_data(as_text=True)
    with runtime.transaction() as s:
        assert s.scalars(select(MerchantCertificate.active)).all() == [False]


def test_a_refused_upload_says_why_and_changes_nothing(client, runtime, p12):
    shop = make_shop(runtime)
    sign_in(client, shop.emails["owner"])
    r = _upload(client, p12, "wrong")
    assert r.status_code == 422
    assert "The certificate was not imported: wrong password" in r.get_data(as_text=True)
    r = _upload(client, b"", "x")
    assert r.status_code == 422
    assert "Choose the .p12 file to upload." in r.get_data(as_text=True)
    assert _count(runtime) == 0


def test_the_page_speaks_greek(client, runtime):
    shop = make_shop(runtime)
    sign_in(client, shop.emails["owner"])
    page = client.get("/admin/certificate", headers={"Accept-Language": "el"})
    assert "Πιστοποιητικό υπογραφής" in page.get_data(as_text=True)
