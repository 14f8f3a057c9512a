"""Two imports of a certificate for one merchant at the same moment (PostgreSQL, where
writers run side by side): the second waits for the first and replaces it."""

from __future__ import annotations

import threading

import factories
import pytest
from sqlalchemy import select

from walletpass.certs import merchant as merchant_certs
from walletpass.certs.models import MerchantCertificate

pytestmark = pytest.mark.postgres


def test_two_imports_at_once_leave_one_active_certificate_the_later(runtime, settings):
    with runtime.transaction() as s:
        merchant_id = factories.merchant(s, slug="twotabs").id
    first_flushed, release_first = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def first() -> None:
        try:
            with runtime.transaction(merchant_id) as s:
                merchant_certs.install_dev_chain(
                    s, settings, merchant_id, "pass.example.tab1", "TABTEAM001", "Tab 1"
                )
                first_flushed.set()
                release_first.wait(10)
        except BaseException as exc:
            errors.append(exc)
            first_flushed.set()

    def second() -> None:
        try:
            with runtime.transaction(merchant_id) as s:
                merchant_certs.install_dev_chain(
                    s, settings, merchant_id, "pass.example.tab2", "TABTEAM002", "Tab 2"
                )
        except BaseException as exc:
            errors.append(exc)

    one = threading.Thread(target=first)
    one.start()
    assert first_flushed.wait(10)
    two = threading.Thread(target=second)
    two.start()
    two.join(0.5)
    assert two.is_alive()  # waiting for the first import to end
    release_first.set()
    one.join(10)
    two.join(10)

    assert errors == []
    with runtime.transaction() as s:
        rows = s.execute(
            select(MerchantCertificate.pass_type_id, MerchantCertificate.active)
            .where(MerchantCertificate.merchant_id == merchant_id)
            .order_by(MerchantCertificate.id)
            .execution_options(all_merchants=True)
        ).all()
    assert [tuple(r) for r in rows] == [("pass.example.tab1", False), ("pass.example.tab2", True)]
