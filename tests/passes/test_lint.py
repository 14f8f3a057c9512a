"""The pass linter (walletpass.passes.lint): each check catches the fault it names, in a
pass that is otherwise sound, and the passes the service ships pass it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import ExtendedKeyUsageOID
from lint_support import Bundle, make_chain, sign

from walletpass.passes.lint import Severity, lint_pkpass, lint_template
from walletpass.resources import PASS_TEMPLATES_DIR

REPO = Path(__file__).resolve().parents[2]
CHAIN = make_chain()
PNG_HEAD = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"


def _png(width: int, height: int) -> bytes:
    return PNG_HEAD + width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes(20)


def _lint(data: bytes) -> dict[str, Severity]:
    return {f.code: f.severity for f in lint_pkpass(data, trust=[CHAIN.ca])}


def test_a_sound_pass_has_no_findings() -> None:
    assert lint_pkpass(Bundle(CHAIN).zip(), trust=[CHAIN.ca]) == []


def test_a_development_chain_is_a_warning_unless_trusted() -> None:
    findings = lint_pkpass(Bundle(CHAIN).zip())
    assert [(f.code, f.severity) for f in findings] == [("chain-untrusted", Severity.WARNING)]


@pytest.mark.parametrize("template", sorted(p.name for p in PASS_TEMPLATES_DIR.iterdir()))
def test_every_shipped_template_lints_clean(template: str) -> None:
    assert lint_template(PASS_TEMPLATES_DIR / template) == []


def _pass(**changes: Any) -> bytes:
    bundle = Bundle(CHAIN)
    for key, value in changes.items():
        if value is None:
            bundle.pass_json.pop(key, None)
        else:
            bundle.pass_json[key] = value
    return bundle.zip()


def _field(**field: Any) -> bytes:
    bundle = Bundle(CHAIN)
    bundle.pass_json["storeCard"]["auxiliaryFields"] = [{"key": "x", "label": "X", **field}]
    return bundle.zip()


def _files(**changes: bytes | None) -> bytes:
    bundle = Bundle(CHAIN)
    for name, data in changes.items():
        name = name.replace("_at2", "@2x").replace("_at3", "@3x").replace("_", ".")
        if data is None:
            bundle.files.pop(name, None)
        else:
            bundle.files[name] = data
    return bundle.zip()


def _signed_with(chain: Any = None, **kwargs: Any) -> bytes:
    bundle = Bundle(chain or CHAIN)
    manifest = json.dumps(bundle.manifest()).encode()
    return bundle.zip(manifest=manifest, signature=sign(chain or CHAIN, manifest, **kwargs))


def _poster(fallback: bool) -> bytes:
    bundle = Bundle(CHAIN)
    fields = bundle.pass_json.pop("storeCard")
    bundle.pass_json["posterGeneric"] = fields
    if fallback:
        bundle.pass_json["generic"] = fields
    return bundle.zip()


def _duplicate_key() -> bytes:
    bundle = Bundle(CHAIN)
    card = bundle.pass_json["storeCard"]
    card["backFields"] = [*card.get("backFields", []), dict(card["primaryFields"][0])]
    return bundle.zip()


def _barcodes(*entries: dict[str, Any]) -> bytes:
    return _pass(barcodes=list(entries))


QR = {"format": "PKBarcodeFormatQR", "message": "M-1", "messageEncoding": "iso-8859-1"}
EAN = {"format": "PKBarcodeFormatEAN13", "message": "4006381333931", "messageEncoding": "utf-8"}
LOC = {"latitude": 52.5, "longitude": 13.4}

# (code, severity, a pass with exactly that fault)
CASES: list[tuple[str, Severity, Any]] = [
    ("zip-invalid", Severity.ERROR, lambda: b"PK\x03\x04 not really"),
    ("pass-json-missing", Severity.ERROR, lambda: Bundle(CHAIN).zip(prefix="Card.pass/")),
    ("pass-json-invalid", Severity.ERROR, lambda: Bundle(CHAIN).zip(extra={"pass.json": b"{"})),
    ("manifest-missing", Severity.ERROR, lambda: Bundle(CHAIN).zip(drop=("manifest.json",))),
    ("manifest-invalid", Severity.ERROR, lambda: Bundle(CHAIN).zip(manifest=b"[1]")),
    (
        "manifest-missing-entry",
        Severity.ERROR,
        lambda: Bundle(CHAIN).zip(extra={".DS_Store": b"junk"}),
    ),
    ("manifest-extra-entry", Severity.ERROR, lambda: Bundle(CHAIN).zip(drop=("logo.png",))),
    (
        "manifest-hash-mismatch",
        Severity.ERROR,
        lambda: Bundle(CHAIN).zip(extra={"logo.png": _png(160, 50)}),
    ),
    ("signature-missing", Severity.ERROR, lambda: Bundle(CHAIN).zip(drop=("signature",))),
    ("signature-unreadable", Severity.ERROR, lambda: Bundle(CHAIN).zip(signature=b"\x30\x03ab")),
    (
        "signature-not-detached",
        Severity.ERROR,
        lambda: _signed_with(options=(pkcs7.PKCS7Options.Binary,)),
    ),
    (
        "signature-no-signer",
        Severity.ERROR,
        lambda: _signed_with(
            options=(
                pkcs7.PKCS7Options.DetachedSignature,
                pkcs7.PKCS7Options.Binary,
                pkcs7.PKCS7Options.NoCerts,
            )
        ),
    ),
    (
        "signature-invalid",
        Severity.ERROR,
        lambda: Bundle(CHAIN).zip(signature=sign(CHAIN, b"another manifest")),
    ),
    (
        "signature-no-signing-time",
        Severity.ERROR,
        lambda: _signed_with(
            options=(
                pkcs7.PKCS7Options.DetachedSignature,
                pkcs7.PKCS7Options.Binary,
                pkcs7.PKCS7Options.NoAttributes,
            )
        ),
    ),
    ("signature-algorithm", Severity.ERROR, lambda: _signed_with(digest=hashes.SHA224())),
    ("cert-not-pass-type-id", Severity.ERROR, lambda: _signed_with(make_chain(uid=None))),
    ("cert-pass-type-mismatch", Severity.ERROR, lambda: _pass(passTypeIdentifier="pass.other")),
    ("cert-team-mismatch", Severity.ERROR, lambda: _pass(teamIdentifier="OTHERTEAM1")),
    ("cert-key-usage", Severity.ERROR, lambda: _signed_with(make_chain(digital_signature=False))),
    (
        "cert-purpose",
        Severity.WARNING,
        lambda: _signed_with(make_chain(purposes=(ExtendedKeyUsageOID.CODE_SIGNING,))),
    ),
    ("cert-expired", Severity.ERROR, lambda: _signed_with(make_chain(cert_days=(-400, -30)))),
    (
        "cert-wrong-intermediate",
        Severity.ERROR,
        lambda: _signed_with(extra=(make_chain(ca_name="Another WWDR CA").ca,)),
    ),
    (
        "intermediate-expired",
        Severity.ERROR,
        lambda: _signed_with(make_chain(ca_days=(-900, -10))),
    ),
    ("format-version", Severity.ERROR, lambda: _pass(formatVersion="1")),
    ("key-missing", Severity.ERROR, lambda: _pass(organizationName=None)),
    ("key-type", Severity.ERROR, lambda: _pass(description=42)),
    ("style-missing", Severity.ERROR, lambda: _pass(storeCard=None)),
    ("style-multiple", Severity.ERROR, lambda: _pass(coupon={})),
    ("poster-without-generic", Severity.WARNING, lambda: _poster(fallback=False)),
    ("field-key-missing", Severity.ERROR, lambda: _field(key=None, value="v")),
    ("field-key-duplicate", Severity.ERROR, _duplicate_key),
    ("field-value-missing", Severity.ERROR, lambda: _field(label="only a label")),
    ("field-value-type", Severity.ERROR, lambda: _field(value=["a", "list"])),
    ("field-style-unknown", Severity.ERROR, lambda: _field(value="x", dateStyle="Medium")),
    (
        "field-date-style",
        Severity.ERROR,
        lambda: _field(value="31 May", dateStyle="PKDateStyleMedium"),
    ),
    ("field-number-style", Severity.ERROR, lambda: _field(value="12", currencyCode="EUR")),
    (
        "change-message-placeholder",
        Severity.WARNING,
        lambda: _field(value=1, changeMessage="Your points changed"),
    ),
    ("web-service-without-token", Severity.ERROR, lambda: _pass(authenticationToken=None)),
    ("token-without-web-service", Severity.ERROR, lambda: _pass(webServiceURL=None)),
    ("web-service-not-https", Severity.ERROR, lambda: _pass(webServiceURL="http://x.test/a")),
    ("token-too-short", Severity.ERROR, lambda: _pass(authenticationToken="short")),
    ("barcode-deprecated", Severity.WARNING, lambda: _pass(barcode=QR)),
    ("barcode-format-unknown", Severity.ERROR, lambda: _barcodes({**QR, "format": "QR"})),
    ("barcode-message-type", Severity.ERROR, lambda: _barcodes({**QR, "message": 123})),
    (
        "barcode-encoding-missing",
        Severity.ERROR,
        lambda: _barcodes({k: v for k, v in QR.items() if k != "messageEncoding"}),
    ),
    ("barcode-no-fallback", Severity.WARNING, lambda: _barcodes(EAN)),
    ("locations-too-many", Severity.WARNING, lambda: _pass(locations=[LOC] * 11)),
    ("location-invalid", Severity.ERROR, lambda: _pass(locations=[{**LOC, "latitude": 91}])),
    ("beacons-too-many", Severity.WARNING, lambda: _pass(beacons=[{"proximityUUID": "u"}] * 11)),
    ("beacon-invalid", Severity.ERROR, lambda: _pass(beacons=[{"major": 1}])),
    ("date-format", Severity.ERROR, lambda: _pass(expirationDate="2026-05-01T10:00:00")),
    ("relevant-date-deprecated", Severity.NOTE, lambda: _pass(relevantDate="2026-05-01T10:00Z")),
    ("color-format", Severity.WARNING, lambda: _pass(backgroundColor="#3b2418")),
    (
        "featured-actions-too-many",
        Severity.WARNING,
        lambda: _pass(featuredActions=[{"identifier": str(i)} for i in range(3)]),
    ),
    ("image-invalid", Severity.ERROR, lambda: _files(logo_png=b"GIF89a")),
    ("image-too-large", Severity.WARNING, lambda: _files(logo_png=_png(320, 100))),
    ("image-scale-mismatch", Severity.WARNING, lambda: _files(logo_at2_png=_png(300, 100))),
    (
        "icon-missing",
        Severity.ERROR,
        lambda: _files(icon_png=None, icon_at2_png=None, icon_at3_png=None),
    ),
    ("icon-scale-missing", Severity.WARNING, lambda: _files(icon_at3_png=None)),
    (
        "strings-encoding",
        Severity.ERROR,
        lambda: Bundle(CHAIN).zip(extra={"fr.lproj/pass.strings": b'"a" = "\xe9";'}),
    ),
    (
        "strings-syntax",
        Severity.ERROR,
        lambda: Bundle(CHAIN).zip(extra={"fr.lproj/pass.strings": b'"a" = "b"\n"c" = "d";'}),
    ),
]


@pytest.mark.parametrize(("code", "severity", "build"), CASES, ids=[c[0] for c in CASES])
def test_each_check_catches_its_fault(code: str, severity: Severity, build: Any) -> None:
    found = _lint(build())
    assert found.get(code) == severity, found


def test_strings_fault_is_caught_only_where_it_is() -> None:
    # The broken .strings entry is reported with its manifest problem, nothing else.
    data = Bundle(CHAIN)
    data.files["fr.lproj/pass.strings"] = '"Points" = "Points";'.encode("utf-16")
    assert lint_pkpass(data.zip(), trust=[CHAIN.ca]) == []


def test_poster_with_its_generic_fallback_and_new_barcodes_with_qr_are_sound() -> None:
    # The iOS 27 keys as Apple recommends them: posterGeneric beside generic (one field
    # key in both), EAN-13 first with a QR after it, two featured actions.
    bundle = Bundle(CHAIN)
    fields = bundle.pass_json.pop("storeCard")
    for name in ("strip.png", "strip@2x.png", "strip@3x.png"):  # no strip on these styles
        del bundle.files[name]
    bundle.pass_json.update(
        posterGeneric=fields,
        generic=fields,
        barcodes=[EAN, QR],
        featuredActions=[{"identifier": "a"}, {"identifier": "b"}],
        relevantDates=[{"startDate": "2026-05-01T09:00:00+02:00"}],
    )
    bundle.files["background@3x.png"] = _png(1125, 1500)  # the poster's artwork
    assert lint_pkpass(bundle.zip(), trust=[CHAIN.ca]) == []


def test_a_broken_template_is_reported_not_raised(tmp_path: Path) -> None:
    (tmp_path / "pass.json").write_text("{ not json")
    (tmp_path / "template.json").write_text('{"style": "storeCard"}')
    assert [f.code for f in lint_template(tmp_path)] == ["template-invalid"]


def test_every_code_is_documented_and_every_documented_code_exists() -> None:
    source = "".join(p.read_text() for p in (REPO / "walletpass/passes/lint").glob("*.py"))
    emitted = set(re.findall(r'\.(?:error|warning|note)\(\s*"([a-z0-9-]+)"', source))
    docs = (REPO / "docs/pass-lint.md").read_text()
    documented = set(re.findall(r"^#### `([a-z0-9-]+)`", docs, re.M))
    assert emitted == documented
    tested = {code for code, _, _ in CASES} | {"chain-untrusted", "template-invalid"}
    assert emitted == tested


@pytest.mark.broken_pass  # the point: the hook must see it, and this marker lets it pass
def test_the_conftest_hook_sees_every_pass_the_service_builds(certs_dir: Path) -> None:
    import conftest

    from walletpass.passes import pkpass, render, templates
    from walletpass.passes.signing import SigningIdentity

    identity = SigningIdentity.from_dir(certs_dir, None)
    template = templates.load_template(PASS_TEMPLATES_DIR / "coupon")
    variables = {
        **templates.SAMPLE_VARIABLES,
        "pass_type_id": identity.pass_type_id,
        "team_id": identity.team_id,
        "auth_token": "too-short",
    }
    pass_json = render.dumps_pass_json(render.render_pass_json(template, variables))
    files, hashes = render.bundle_files(template, variables)
    parts = pkpass.build_pkpass(pass_json, files, hashes, identity)
    pkpass.assemble_pkpass(parts.pass_json, parts.manifest, parts.signature, files)
    assert any("token-too-short" in failure for failure in conftest._LINT_FAILURES)
