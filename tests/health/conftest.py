"""Fixtures of the health tests: settings with a dev chain of a chosen age and pass type,
and the CLI."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from healthkit import PASS_TYPE_ID, TEAM_ID, make_chain

from walletpass.cli import main
from walletpass.config import Settings
from walletpass.health.expiry import forget_cached
from walletpass.passes.signing import clear_identity_cache
from walletpass.runtime import Runtime


@pytest.fixture(autouse=True)
def _fresh_caches() -> Any:
    # The identities and dates are cached per process; each test makes its own chains.
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
