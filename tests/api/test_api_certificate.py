"""/api/v1/merchant/certificate: a merchant uploads its own Pass Type ID .p12 (issue 22)."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
from api_helpers import make_shop
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    pkcs12,
)
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "certs"))
from test_certs import PASSWORD, _key, make_ca, make_pass_cert

from walletpass.certs.models import MerchantCertificate

TYPE = "pass.com.golf.loyalty"


@pytest.fixture
def shop(runtime, client):  # type: ignore[no-untyped-def]
    return make_shop(runtime, client)


@pytest.fixture
def p12s(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    from walletpass.certs import p12 as p12_module

    ca = make_ca(_key(0))
    # The WWDR stand-in is found where the bundled Apple certificates are.
    folder = tmp_path / "wwdr"
    folder.mkdir()
    (folder / "wwdr.pem").write_bytes(ca.public_bytes(Encoding.PEM))
    monkeypatch.setattr(p12_module, "BUNDLED_CERTS_DIR", folder)
    enc = BestAvailableEncryption(PASSWORD)
    good = make_pass_cert(_key(0), ca, _key(1), uid=TYPE)
    no_uid = make_pass_cert(_key(0), ca, _key(1), uid=None)
    return {
        "good": pkcs12.serialize_key_and_certificates(b"p", _key(1), good, None, enc),
        "no-uid": pkcs12.serialize_key_and_certificates(b"p", _key(1), no_uid, None, enc),
    }


def _upload(shop, data: bytes, password: str, key: str = "admin"):  # type: ignore[no-untyped-def]
    return shop.client.post(
        "/api/v1/merchant/certificate",
        data={"p12": (io.BytesIO(data), "PassType.p12"), "password": password},
        content_type="multipart/form-data",
        headers={"Authorization": f"Bearer {shop.keys[key]}"},
    )


def _count(runtime) -> int:  # type: ignore[no-untyped-def]
    with runtime.transaction() as s:
        return s.scalar(select(func.count()).select_from(MerchantCertificate)) or 0


def test_upload_show_and_delete(shop, p12s, runtime):
    shop.admin.get("/merchant/certificate", expect=404)
    r = _upload(shop, p12s["good"], PASSWORD.decode())
    assert r.status_code == 201, r.get_data(as_text=True)
    body = r.json
    assert body["pass_type_id"] == TYPE
    assert body["team_id"] == "TEAMTEST01"
    assert "UID=pass.com.golf.loyalty" in body["subject"]
    assert "PRIVATE" not in r.get_data(as_text=True)
    shown = shop.read.get("/merchant/certificate")
    assert shown == body
    shop.admin.delete("/merchant/certificate")
    shop.admin.get("/merchant/certificate", expect=404)
    shop.admin("DELETE", "/merchant/certificate", 404)


@pytest.mark.parametrize(
    ("which", "password", "reason"),
    [
        ("good", "not the password", "wrong password"),
        ("no-uid", PASSWORD.decode(), "not a Pass Type ID certificate"),
        ("junk", "x", "is not a PKCS#12"),
    ],
)
def test_a_refused_upload_is_a_422_naming_the_reason_and_changes_nothing(
    shop, p12s, runtime, which, password, reason
):
    data = p12s.get(which, b"not a p12 at all")
    r = _upload(shop, data, password)
    assert r.status_code == 422
    assert r.mimetype == "application/problem+json"
    assert r.json["type"].endswith("/problems/certificate-refused")
    assert reason in r.json["detail"]
    assert _count(runtime) == 0


def test_only_an_admin_key_uploads(shop, p12s, runtime):
    assert _upload(shop, p12s["good"], PASSWORD.decode(), key="crm").status_code == 403
    assert _count(runtime) == 0


def test_a_missing_file_is_a_validation_problem(shop):
    r = shop.client.post(
        "/api/v1/merchant/certificate",
        data={"password": "x"},
        content_type="multipart/form-data",
        headers={"Authorization": f"Bearer {shop.keys['admin']}"},
    )
    assert r.status_code == 422
    assert r.json["errors"] == [{"field": "body.p12", "message": "missing"}]
