"""`walletpass pass build` signs a static .pkpass from a template, with no server behind it;
`walletpass pass lint` explains why a .pkpass or a template would not open."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import click

from walletpass.config import Settings
from walletpass.passes import render, templates
from walletpass.passes.pkpass import build_pkpass, check_pass_json_matches
from walletpass.passes.signing import CertificateError, SigningIdentity
from walletpass.security import random_token

# Sample values for every variable the templates use (docs/pass-templates.md), so that a
# template renders with no --set at all. A static pass has no web service: the
# web_service_url/auth_token stay empty and their pass.json keys are dropped.
DEFAULT_VARIABLES: dict[str, Any] = {
    "status": "active",
    "description": "Loyalty card",
    "web_service_url": "",
    "auth_token": "",
    "program_name": "Loyalty card",
    "program_kind": "points",
    "background_color": "rgb(31, 59, 77)",
    "foreground_color": "rgb(255, 255, 255)",
    "label_color": "rgb(207, 227, 238)",
    "background_hex": "#1f3b4d",
    "logo_url": "",
    "card_url": "",
    "language": "en",
    "member_name": "Alex Example",
    "points": 120,
    "stamps": 3,
    "stamps_goal": 10,
    "stamps_left": 7,
    "stamps_text": "3/10",
    "tier": "Silver",
    "tier_discount": "5% off",
    "next_tier_text": "380 points to Gold",
    "membership_valid_until": "",
    "offer_title": "",
    "offer_text": "",
    "coupon_title": "Welcome offer",
    "coupon_discount": "10% off",
    "coupon_terms": "One use per customer.",
    "coupon_valid_until": "",
    "offer_valid_from": "",
    "offer_valid_until": "",
    "coupon_uses_left": 1,
    "expiry_warning": "",
    "rewards_text": "Free coffee at 100 points",
    "terms": "",
    "website_url": "",
    "google_class_id": "",
    "voided": False,
}

_INT = re.compile(r"-?[0-9]+")


@click.group("pass")
def pass_group() -> None:
    """Apple Wallet passes."""


def _typed(value: str) -> Any:
    # Ints stay ints (points, stamps); "000123" stays a string, or its zeros would be lost.
    if _INT.fullmatch(value) and str(int(value)) == value:
        return int(value)
    if value in ("true", "false"):
        return value == "true"
    return value


def _parse_sets(items: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{item!r} is not key=value", param_hint="--set")
        out[key.strip()] = _typed(value)
    return out


def static_variables(
    settings: Settings, serial: str, pass_type_id: str, team_id: str | None, sets: dict[str, Any]
) -> dict[str, Any]:
    """Template variables for a standalone pass: defaults, the certificate's ids, ``sets``."""
    org = settings.organization_name
    variables = dict(DEFAULT_VARIABLES)
    variables.update(
        serial=serial,
        pass_type_id=pass_type_id,
        team_id=team_id or settings.team_id,
        organization_name=org,
        description=f"{org} loyalty card",
        logo_text=org,
        barcode_message=serial,
        barcode_alt_text=serial,
        member_number=serial,
        terms=f"Issued by {org}.",
    )
    variables.update(sets)
    if variables.get("web_service_url") and not variables.get("auth_token"):
        # Wallet needs >= 16 characters; a fresh random token per pass, never a shared one.
        variables["auth_token"] = random_token(24)
    return variables


def _drop_web_service(pass_json: dict[str, Any]) -> None:
    for key in ("webServiceURL", "authenticationToken"):
        if not pass_json.get(key):
            pass_json.pop(key, None)
    # One without the other makes Wallet reject the pass.
    if "webServiceURL" not in pass_json or "authenticationToken" not in pass_json:
        pass_json.pop("webServiceURL", None)
        pass_json.pop("authenticationToken", None)


@pass_group.command("build")
@click.argument("template_dir", type=click.Path(path_type=Path))
@click.option("--serial", required=True, help="Serial number of the pass.")
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="KEY=VALUE",
    help="Template variable (repeatable); integers stay integers.",
)
@click.option(
    "--certs",
    "certs_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Certificates folder (default: WALLETPASS_CERTS_DIR).",
)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the .pkpass.",
)
@click.pass_obj
def build(
    settings: Settings,
    template_dir: Path,
    serial: str,
    sets: tuple[str, ...],
    certs_dir: Path | None,
    output: Path,
) -> None:
    """Build and sign a static .pkpass from TEMPLATE_DIR (no web service, no updates).

    TEMPLATE_DIR is a template folder, or the name of one in WALLETPASS_TEMPLATES_DIR
    (coupon, membership, points_tiers, stamp_card ship with walletpass).
    """
    if not (template_dir / "pass.json").is_file():
        named = settings.templates_dir / template_dir.name
        if template_dir.parent != Path() or not (named / "pass.json").is_file():
            shipped = ", ".join(t.name for t in sorted(settings.templates_dir.iterdir()))
            raise click.ClickException(
                f"{template_dir} is not a pass template (no pass.json); the templates in "
                f"{settings.templates_dir} are: {shipped}"
            )
        template_dir = named
    overrides = _parse_sets(sets)
    certs_dir = certs_dir or settings.resolved_certs_dir
    try:
        identity = SigningIdentity.from_dir(certs_dir, settings.secret_key or None)
    except CertificateError as exc:
        raise click.ClickException(str(exc)) from None
    variables = static_variables(
        settings, serial, identity.pass_type_id, identity.team_id, overrides
    )
    try:
        template = templates.load_template(template_dir)
        pass_json = render.render_pass_json(template, variables)
        _drop_web_service(pass_json)
        check_pass_json_matches(identity, pass_json)
        files, hashes = render.bundle_files(template, variables)
        parts = build_pkpass(render.dumps_pass_json(pass_json), files, hashes, identity)
    except (ValueError, KeyError) as exc:  # CertificateError is a ValueError
        raise click.ClickException(f"cannot build a pass from {template_dir}: {exc}") from None
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(parts.zip_bytes)
    click.echo(f"{output} ({len(parts.zip_bytes)} bytes)")


@pass_group.command("lint")
@click.argument("target", type=click.Path(exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the findings as a JSON array.")
@click.option(
    "--ca",
    "ca_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Also trust this root or intermediate certificate (PEM or DER; repeatable), e.g. "
    "a development chain's ca.pem.",
)
def lint(target: Path, as_json: bool, ca_files: tuple[Path, ...]) -> None:
    """Explain why a .pkpass or a pass template would not open or update in Wallet.

    TARGET is a .pkpass file or a template folder. Prints each finding (error, warning
    or note, a code that docs/pass-lint.md explains, where, and the fix); exits 1 when
    any finding is an error.
    """
    from walletpass.passes.lint import errors, lint_pkpass, lint_template
    from walletpass.passes.signing import load_cert_file

    trust = []
    for ca in ca_files:
        try:
            trust.extend(load_cert_file(ca))
        except CertificateError as exc:
            raise click.ClickException(str(exc)) from None
    if target.is_dir():
        findings = lint_template(target)
    else:
        findings = lint_pkpass(target.read_bytes(), trust=trust)
    if as_json:
        click.echo(json.dumps([f.as_dict() for f in findings], indent=2, ensure_ascii=False))
    elif not findings:
        click.echo(f"{target}: no problems found")
    else:
        for finding in findings:
            click.echo(f"{target}: {finding}")
    if errors(findings):
        raise SystemExit(1)
