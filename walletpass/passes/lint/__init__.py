"""The pass linter: why a .pkpass, or a pass template, would not open or not update.

:func:`lint_pkpass` reads a finished .pkpass (the ZIP); :func:`lint_template` renders a
template folder with sample values and checks what it would produce. Each returns a list
of :class:`Finding`; docs/pass-lint.md explains every code. Everything runs in-process
(no openssl), so the tests can lint every pass the service builds.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cryptography import x509

from walletpass.passes.lint.assets import check_images, check_strings
from walletpass.passes.lint.findings import Finding, Report, Severity, errors
from walletpass.passes.lint.passjson import STYLES, check_pass_json
from walletpass.passes.lint.signature import check_signature

__all__ = ["Finding", "Severity", "errors", "lint_files", "lint_pkpass", "lint_template"]

_PASS = "pass.json"  # noqa: S105 (a file name, not a password)
_MANIFEST = "manifest.json"
_SIGNATURE = "signature"


def lint_pkpass(data: bytes, trust: Sequence[x509.Certificate] = ()) -> list[Finding]:
    """Every problem of the .pkpass ``data``.

    :param trust: certificates accepted as a chain's root besides Apple's root (a
        development CA); an unknown chain is a warning, never an error.
    """
    report = Report()
    files = _unzip(report, data)
    if files is None:
        return report.findings
    pass_json = _pass_json(report, files.get(_PASS))
    _check_manifest(report, files)
    if _SIGNATURE not in files:
        report.error(
            "signature-missing",
            _SIGNATURE,
            "The bundle has no signature file; Wallet opens only signed passes.",
        )
    elif _MANIFEST in files:
        check_signature(report, files[_SIGNATURE], files[_MANIFEST], pass_json, trust)
    others = {n: b for n, b in files.items() if n not in (_PASS, _MANIFEST, _SIGNATURE)}
    _check_content(report, pass_json, others)
    return report.findings


def lint_files(pass_json: Mapping[str, Any], files: Mapping[str, bytes]) -> list[Finding]:
    """Problems of an unsigned pass: pass.json (parsed) and the bundle's other files."""
    report = Report()
    _check_content(report, pass_json, files)
    return report.findings


def lint_template(path: str | Path, variables: Mapping[str, Any] | None = None) -> list[Finding]:
    """Problems of a template folder, rendered with ``variables`` (default: a sample for
    every variable, so that every optional field is filled and checked)."""
    from walletpass.passes import render, templates

    try:
        template = templates.load_template(path)
        values = dict(variables if variables is not None else templates.SAMPLE_VARIABLES)
        pass_json = render.render_pass_json(template, values)
        files, _ = render.bundle_files(template, values)
    except (ValueError, KeyError, OSError) as exc:  # TemplateError is a ValueError
        report = Report()
        report.error(
            "template-invalid",
            str(path),
            f"The template cannot be rendered: {exc}. Fix the template's files.",
        )
        return report.findings
    return lint_files(pass_json, files)


def _check_content(
    report: Report, pass_json: Mapping[str, Any] | None, files: Mapping[str, bytes]
) -> None:
    style = None
    if pass_json is not None:
        check_pass_json(report, pass_json)
        style = next((s for s in STYLES if s in pass_json), None)
    check_images(report, files, style)
    check_strings(report, files)


def _unzip(report: Report, data: bytes) -> dict[str, bytes] | None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = [i.filename for i in archive.infolist() if not i.is_dir()]
            files = {name: archive.read(name) for name in names}
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError) as exc:
        report.error(
            "zip-invalid",
            "/",
            f"The file is not a readable ZIP archive ({exc}); a .pkpass is a ZIP of the "
            "pass's files.",
        )
        return None
    if _PASS not in files:
        nested = next((n for n in files if n.endswith("/" + _PASS)), None)
        where = f" (found {nested}: the files sit in a folder)" if nested else ""
        report.error(
            "pass-json-missing",
            _PASS,
            f"No pass.json at the root of the archive{where}. Zip the files themselves, "
            "not the folder that holds them.",
        )
    return files


def _pass_json(report: Report, raw: bytes | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        parsed = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        report.error(
            "pass-json-invalid",
            _PASS,
            f"pass.json is not valid UTF-8 JSON ({exc}); Wallet cannot read the pass.",
        )
        return None
    if not isinstance(parsed, dict):
        report.error("pass-json-invalid", _PASS, "pass.json must hold a JSON object.")
        return None
    return parsed


def _check_manifest(report: Report, files: Mapping[str, bytes]) -> None:
    raw = files.get(_MANIFEST)
    if raw is None:
        report.error(
            "manifest-missing",
            _MANIFEST,
            "The bundle has no manifest.json; Wallet needs the SHA-1 of every file in it.",
        )
        return
    try:
        manifest = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        manifest = None
    if not isinstance(manifest, dict):
        report.error(
            "manifest-invalid",
            _MANIFEST,
            "manifest.json is not a JSON object of file names to SHA-1 hex digests.",
        )
        return
    covered = {n for n in files if n not in (_MANIFEST, _SIGNATURE)}
    for name in sorted(covered - set(manifest)):
        report.error(
            "manifest-missing-entry",
            name,
            f'{name} is in the archive but not in manifest.json; Wallet says "No entry in '
            'manifest for file" and refuses the pass. Rebuild the manifest (and re-sign).',
        )
    for name in sorted(set(manifest) - covered):
        report.error(
            "manifest-extra-entry",
            name,
            f"manifest.json lists {name}, which is not in the archive. Rebuild the manifest.",
        )
    for name in sorted(covered & set(manifest)):
        digest = hashlib.sha1(files[name], usedforsecurity=False).hexdigest()
        if str(manifest[name]).lower() != digest:
            report.error(
                "manifest-hash-mismatch",
                name,
                f"The SHA-1 of {name} in manifest.json is not the file's; the file changed "
                "after the manifest was made. Rebuild the manifest and re-sign.",
            )
