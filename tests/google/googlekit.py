"""Fixtures and row builders shared by the tests/google test modules.

Each module imports the ``*_fixture`` functions it uses (``from googlekit import
google_fixture``); pytest knows them by their short names (``google``). A conftest here
would not be ours to own. The stand-in runs over real HTTPS with a throwaway CA, trusted
through REQUESTS_CA_BUNDLE, so the client code under test is exactly the production code.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy.orm import Session, sessionmaker
from standins.google_server import GoogleStandIn, ServiceAccount, make_service_account
from standins.tls import make_test_pki

import walletpass.models  # noqa: F401 - registers every table on Base.metadata
from walletpass.config import Settings
from walletpass.db import Base, make_engine, make_sessionmaker, transaction, utcnow
from walletpass.google import objects
from walletpass.google.client import GoogleWalletClient
from walletpass.loyalty.models import Member, Program
from walletpass.offers.models import Coupon, Offer
from walletpass.passes.models import Pass
from walletpass.tenancy.models import Merchant

ISSUER = "3388000000012345678"
PUBLIC_URL = "https://wallet.example.test"
_seq = itertools.count(1)
# Minimal valid rules per program kind (walletpass.loyalty.rules validates them).
RULES: dict[str, dict[str, Any]] = {
    "points": {"amount_per_point": "1.00"},
    "tiers": {
        "amount_per_point": "1.00",
        "levels": [
            {"name": "Silver", "min_spend": "0"},
            {"name": "Gold", "min_spend": "500", "discount_percent": "5"},
        ],
    },
    "stamps": {"goal": 10, "reward_name": "Free coffee"},
    "membership": {},
    "offers": {},
}


@pytest.fixture(scope="session", name="google_pki")
def google_pki_fixture(tmp_path_factory):
    return make_test_pki(tmp_path_factory.mktemp("google-pki"))


@pytest.fixture(name="google")
def google_fixture(google_pki, monkeypatch) -> Iterator[GoogleStandIn]:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(google_pki.ca_cert))
    standin = GoogleStandIn(tls_cert=google_pki.server_cert, tls_key=google_pki.server_key)
    with standin:
        yield standin
    # Every body the code sent must be valid against Google's discovery schema.
    assert standin.violations == []


@pytest.fixture(name="service_account")
def service_account_fixture(tmp_path, google) -> ServiceAccount:
    return make_service_account(tmp_path, google.token_uri)


@pytest.fixture(name="settings")
def settings_fixture(tmp_path, google, service_account) -> Settings:
    return Settings(
        home=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'walletpass.sqlite3'}",
        public_url=PUBLIC_URL,
        google_issuer_id=ISSUER,
        google_service_account_file=str(service_account.path),
        google_api_url=google.api_url,
        google_keys_url=google.keys_url,
    )


@pytest.fixture(name="client")
def client_fixture(settings) -> Iterator[GoogleWalletClient]:
    with GoogleWalletClient(settings, timeout=(2.0, 5.0)) as c:
        yield c


@pytest.fixture(name="db")
def db_fixture(settings) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(settings.resolved_database_url)
    Base.metadata.create_all(engine)
    try:
        yield make_sessionmaker(engine)
    finally:
        engine.dispose()


@pytest.fixture(name="default_classes")
def default_classes_fixture(monkeypatch):
    """Classes from objects.default_*_class instead of pass_templates/ (not ours to own)."""
    monkeypatch.setattr(objects, "render_template_class", lambda *a, **k: None)


# -- rows -------------------------------------------------------------------------------


@dataclass
class World:
    merchant_id: int
    pass_id: int
    member_id: int | None = None
    program_id: int | None = None
    coupon_id: int | None = None


def _merchant(session: Session) -> Merchant:
    n = next(_seq)
    merchant = Merchant(slug=f"shop-{n}", name="Corner Café")
    session.add(merchant)
    session.flush()
    return merchant


def _pass(session: Session, merchant: Merchant, **fields: Any) -> Pass:
    token = secrets.token_hex(8)
    row = Pass(
        merchant_id=merchant.id,
        serial=f"S{next(_seq)}-{token}",
        pass_type_id="pass.dev.walletpass.test",
        auth_token=secrets.token_hex(16),
        barcode=f"wp1-{token}",
        modified_at=utcnow().replace(microsecond=0),
        **fields,
    )
    session.add(row)
    session.flush()
    return row


def member_pass(
    factory: sessionmaker[Session], *, kind: str = "points", points: int = 40, stamps: int = 3
) -> World:
    with transaction(factory) as session:
        merchant = _merchant(session)
        program = Program(
            merchant_id=merchant.id,
            slug=f"coffee-{next(_seq)}",
            name="Coffee Club",
            kind=kind,
            template="points_tiers" if kind in ("points", "tiers") else "stamp_card",
            rules=RULES[kind],
            design={"background": "#1f3b4d"},
        )
        session.add(program)
        session.flush()
        member = Member(
            merchant_id=merchant.id,
            program_id=program.id,
            name="Ada Lovelace",
            referral_code=secrets.token_hex(6),
            points_balance=points,
            stamps_balance=stamps,
            tier="Gold" if kind == "tiers" else None,
            membership_valid_until=(
                datetime(2031, 1, 1, tzinfo=UTC) if kind == "membership" else None
            ),
        )
        session.add(member)
        session.flush()
        row = _pass(
            session, merchant, template=program.template, program_id=program.id, member_id=member.id
        )
        return World(merchant.id, row.id, member_id=member.id, program_id=program.id)


def coupon_pass(factory: sessionmaker[Session]) -> World:
    with transaction(factory) as session:
        merchant = _merchant(session)
        start = datetime(2030, 5, 1, 8, 0, tzinfo=UTC)
        offer = Offer(
            merchant_id=merchant.id,
            slug=f"spring-{next(_seq)}",
            title="20% off all pastries",
            terms="One per visit.",
            discount={"type": "percent", "value": 20},
            valid_from=start,
            valid_until=start + timedelta(days=14),
        )
        session.add(offer)
        session.flush()
        coupon = Coupon(merchant_id=merchant.id, offer_id=offer.id)
        session.add(coupon)
        session.flush()
        row = _pass(session, merchant, template="coupon", coupon_id=coupon.id)
        return World(merchant.id, row.id, coupon_id=coupon.id)


# -- a Flask app shaped like the lead's, for the callback view ---------------------------


class WalletpassExtension:
    """What ``app.extensions["walletpass"]`` offers the views: settings and a transaction."""

    def __init__(self, settings: Settings, factory: sessionmaker[Session]) -> None:
        self.settings = settings
        self.factory = factory

    def transaction(self, merchant_id: int | None = None):
        return transaction(self.factory, merchant_id)


def make_app(settings: Settings, factory: sessionmaker[Session]) -> Flask:
    from walletpass.google.views import bp

    app = Flask("walletpass-google-tests")
    app.config["TESTING"] = True
    app.extensions["walletpass"] = WalletpassExtension(settings, factory)
    app.register_blueprint(bp)
    return app
