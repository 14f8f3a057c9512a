"""Fixtures the till's page and browser tests share: import them by name (a conftest.py
here would shadow tests/conftest.py, which some tests import as ``conftest``)."""

from __future__ import annotations

import factories
import pytest

from walletpass.tenancy.users import create_user

PASSWORD = "correct horse battery"


@pytest.fixture
def points_card(runtime, settings):  # type: ignore[no-untyped-def]
    """The code of a points card whose points pay 0.10 each, in a shop on Paris time,
    whose staff@example.test signs in with PASSWORD."""
    with runtime.transaction() as s:
        merchant = factories.merchant(s, name="Bean There", currency="EUR", timezone="Europe/Paris")
        program = factories.program(
            s,
            merchant,
            "points",
            slug="beans",
            rules={"amount_per_point": "1", "points_to_currency": "0.10"},
        )
        member = factories.member(s, program, name="Ada Lovelace")
        code = factories.member_pass(s, settings, member).barcode
        create_user(
            s, merchant_id=merchant.id, email="staff@example.test", password=PASSWORD, role="staff"
        )
        return code
