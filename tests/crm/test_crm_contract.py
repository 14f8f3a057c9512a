"""The webhook contract (walletpass/crm/contract/, docs/webhooks.md): schemas, samples,
README recipes, and the signing helpers."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import factories
import pytest
from jsonschema import Draft202012Validator

from walletpass.crm import inbound, schemas, signing
from walletpass.events import EVENT_TYPES
from walletpass.offers.models import Offer

ROOT = schemas.SCHEMA_DIR
README = (Path(__file__).resolve().parents[2] / "docs" / "webhooks.md").read_text()


def schema_files(direction: str) -> dict[str, dict]:
    return {
        path.name.removesuffix(".schema.json"): json.loads(path.read_text())
        for path in sorted((ROOT / direction).glob("*.schema.json"))
    }


def samples(direction: str) -> dict[str, dict]:
    return {
        path.stem: json.loads(path.read_text())
        for path in sorted((ROOT / "samples" / direction).glob("*.json"))
    }


def test_every_event_type_has_a_schema_and_a_sample():
    assert set(schema_files("inbound")) == set(inbound.HANDLERS)
    assert set(schema_files("outbound")) == set(EVENT_TYPES)
    for direction in ("inbound", "outbound"):
        assert set(samples(direction)) == set(schema_files(direction))


@pytest.mark.parametrize("direction", ["inbound", "outbound"])
def test_schemas_are_draft_2020_12_and_samples_validate(direction):
    found = schema_files(direction)
    for event_type, schema in found.items():
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        Draft202012Validator.check_schema(schema)
        assert schema["properties"]["type"] == {"const": event_type}
        sample = samples(direction)[event_type]
        assert sample["type"] == event_type
        Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER).validate(
            sample
        )
        assert schemas.field_errors(direction, event_type, sample) == []


def test_readme_lists_every_event_type():
    for event_type in (*inbound.HANDLERS, *EVENT_TYPES):
        assert f"`{event_type}`" in README, event_type


def test_inbound_samples_are_accepted_end_to_end(client, runtime, settings):
    # The samples name a program "demo-points" (the demo's points card) and an offer "spring-20".
    with runtime.transaction() as session:
        merchant = factories.merchant(session)
        session.info["merchant_id"] = merchant.id
        factories.program(session, merchant, "points", slug="demo-points")
        session.add(Offer(merchant_id=merchant.id, slug="spring-20", title="20% off"))
        source, secret = inbound.create_source(
            session, settings, merchant_id=merchant.id, name="samples"
        )
    order = ["member.upsert", "purchase", "refund", "points.adjust", "member.tag", "offer.assign"]
    docs = samples("inbound")
    for event_type in order:
        body = json.dumps(docs[event_type]).encode()
        response = client.post(
            f"/webhooks/crm/{source.name}",
            data=body,
            headers={"Walletpass-Signature": signing.header_value(secret, body)},
        )
        assert response.status_code == 200, (event_type, response.get_json())
        assert response.get_json()["status"] == "applied"


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_readme_openssl_recipe_matches_the_hmac():
    line = next(x for x in README.splitlines() if x.startswith("SIG=$(printf"))
    secret, t = "whsec_readme-check", str(int(time.time()))
    body = '{"id":"e1","type":"points.adjust","data":{"note":"it\'s \\"quoted\\" & 100%"}}'
    out = subprocess.run(
        ["bash", "-c", f'{line}\nprintf %s "$SIG"'],
        env={"SECRET": secret, "T": t, "BODY": body, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    expected = hmac.new(secret.encode(), f"{t}.{body}".encode(), hashlib.sha256).hexdigest()
    assert out == expected


# --- the signing helpers ----------------------------------------------------------------


def test_sign_and_verify_round_trip():
    body = b'{"a": 1}'
    header = signing.header_value("s1", body, 1_700_000_000)
    assert signing.verify(header, body, ["s1"], now=1_700_000_100) == 1_700_000_000
    assert re.fullmatch(r"t=1700000000,v1=[0-9a-f]{64}", header)


@pytest.mark.parametrize(
    ("header", "secrets", "now", "message"),
    [
        (None, ["s1"], 0, "missing"),
        ("t=100", ["s1"], 100, "no v1"),
        ("v1=00", ["s1"], 100, "no t="),
        (signing.header_value("s1", b"x", 100), ["s1"], 401, "tolerance"),
        (signing.header_value("s1", b"x", 500), ["s1"], 100, "tolerance"),
        (signing.header_value("s1", b"x", 100), ["s2"], 100, "no signature matches"),
        ("t=100,v1=" + "0" * 64 + ",v2=whatever", ["s1"], 100, "no signature matches"),
        ("t=100,v1=" + "0" * 3000, ["s1"], 100, "too long"),
    ],
)
def test_verify_refuses(header, secrets, now, message):
    with pytest.raises(signing.SignatureError, match=message):
        signing.verify(header, b"x", secrets, now=now)


def test_any_of_several_signatures_and_secrets_matches():
    body = b"payload"
    header = signing.header_value(["old", "new"], body, 100) + ",v2=future-scheme"
    assert signing.verify(header, body, ["new"], now=100) == 100
    assert signing.verify(header, body, ["other", "old"], now=100) == 100
