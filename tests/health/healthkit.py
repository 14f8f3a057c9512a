"""Helpers and fixtures of the health tests: dev chains of a chosen age and pass type,
settings and a runtime that use them, the CLI, and the SMTP server of tests/mail.

Import the fixtures by name (a conftest.py here would shadow tests/conftest.py)."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from walletpass.certs.dev import PASS_VALIDITY, DevChain, create_dev_chain
from walletpass.cli import main
from walletpass.config import Settings
from walletpass.db import utcnow
from walletpass.health.expiry import forget_cached
from walletpass.passes.signing import clear_identity_cache
from walletpass.runtime import Runtime

# The card emails' SMTP server (aiosmtpd), shared rather than copied.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "mail"))

PASS_TYPE_ID = "pass.test.walletpass"
TEAM_ID = "TESTTEAM01"


def make_chain(
    directory: Path,
    *,
    days_left: int = 365,
    pass_type_id: str = PASS_TYPE_ID,
    team_id: str = TEAM_ID,
) -> DevChain:
    """A dev chain whose pass certificate ends ``days_left`` days from now: it is made as
    if on the day that leaves it that many days of its year."""
    made = utcnow() - (PASS_VALIDITY - timedelta(days=days_left))
    return create_dev_chain(directory, pass_type_id, team_id, now=made)


def with_settings(runtime: Runtime, settings: Settings) -> Runtime:
    """The test's runtime (its database, emptied after the test) with other settings."""
    return dataclasses.replace(runtime, settings=settings, services={})


@pytest.fixture
def fresh_caches() -> Iterator[None]:
    """Each test reads its own chains: the identities and dates are cached per process."""
    clear_identity_cache()
    forget_cached()
    yield
    clear_identity_cache()
    forget_cached()


@pytest.fixture
def chain_settings(tmp_path: Path, settings: Settings) -> Callable[..., Settings]:
    """Settings whose certificates folder holds a new dev chain: its pass certificate for
    ``cert_pass_type_id`` and ``cert_team_id``, ``days_left`` from its end; other keyword
    arguments override settings."""

    def make(
        *,
        days_left: int = 365,
        cert_pass_type_id: str = PASS_TYPE_ID,
        cert_team_id: str = TEAM_ID,
        **overrides: Any,
    ) -> Settings:
        folder = tmp_path / f"certs-{len(list(tmp_path.glob('certs-*')))}"
        make_chain(
            folder, days_left=days_left, pass_type_id=cert_pass_type_id, team_id=cert_team_id
        )
        return settings.override(certs_dir=folder, **overrides)

    return make


@pytest.fixture
def doctor(runtime: Runtime) -> Callable[..., Result]:
    """Run `walletpass doctor ARGS` with the given settings; ``runtime`` empties the tables
    after the test."""
    runner = CliRunner()

    def run(settings: Settings, *args: str) -> Result:
        return runner.invoke(main, ["doctor", *args], obj=settings, catch_exceptions=False)

    return run
