"""Files shipped inside the package and read at run time.

The Alembic migrations, the pass templates, the webhook JSON Schemas and Apple's public
certificates live under ``walletpass/`` so that a wheel install (``pip install .``) runs
from any working directory, with nothing read from a source checkout.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def package_path(*parts: str) -> Path:
    """A folder or file shipped in the package, as a filesystem path.

    Paths rather than ``Traversable``s because Alembic, ``send_file`` and the pass builder
    take paths. A wheel unpacks to files in site-packages; a zipped import (zipapp, a
    frozen binary) has no such paths, which is refused here instead of failing later with
    a missing template.
    """
    target = resources.files("walletpass").joinpath(*parts)
    if not isinstance(target, Path):
        raise RuntimeError(
            f"walletpass/{'/'.join(parts)} is not on the filesystem: install walletpass "
            "as files (pip install), not inside a zip archive"
        )
    return target


MIGRATIONS_DIR = package_path("migrations")
PASS_TEMPLATES_DIR = package_path("pass_templates")
WEBHOOK_CONTRACT_DIR = package_path("crm", "contract")
APPLE_CERTS_DIR = package_path("certs", "apple")
