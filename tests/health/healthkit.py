"""Helpers of the health tests: dev chains of a chosen age and pass type, a runtime with
other settings."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

from walletpass.certs.dev import PASS_VALIDITY, DevChain, create_dev_chain
from walletpass.config import Settings
from walletpass.db import utcnow
from walletpass.runtime import Runtime

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
