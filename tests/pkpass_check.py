"""Open a .pkpass and verify it the way Apple's tooling would: manifest and openssl."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import zipfile
from pathlib import Path
from typing import Any


def verify_pkpass(data: bytes, ca_file: Path, workdir: Path) -> dict[str, Any]:
    """Check the manifest covers exactly the other files with their SHA-1 and that the
    signature verifies with ``openssl cms -verify -binary``; returns pass.json."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        files = {name: z.read(name) for name in z.namelist()}
    manifest = json.loads(files["manifest.json"])
    payload = {k: v for k, v in files.items() if k not in ("manifest.json", "signature")}
    assert set(manifest) == set(payload), set(manifest) ^ set(payload)
    for name, content in payload.items():
        assert manifest[name] == hashlib.sha1(content).hexdigest(), name  # noqa: S324
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "manifest.json").write_bytes(files["manifest.json"])
    (workdir / "signature").write_bytes(files["signature"])
    result = subprocess.run(
        [
            "openssl",
            "cms",
            "-verify",
            "-binary",
            "-inform",
            "DER",
            "-in",
            str(workdir / "signature"),
            "-content",
            str(workdir / "manifest.json"),
            "-CAfile",
            str(ca_file),
            "-purpose",
            "any",
            "-out",
            "/dev/null",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(files["pass.json"])
