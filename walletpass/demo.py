"""The demo merchant: a café with a stamp card, a points card with tiers and a coupon offer."""

from __future__ import annotations

import secrets
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from walletpass.db import utcnow
from walletpass.loyalty import purchases
from walletpass.loyalty.enrolment import enroll
from walletpass.loyalty.ledger import SYSTEM
from walletpass.loyalty.models import Member, Program
from walletpass.loyalty.rewards import sync_card_rewards
from walletpass.offers.models import Coupon, Offer
from walletpass.passes.models import Pass
from walletpass.passes.services import issue_pass
from walletpass.runtime import Runtime
from walletpass.tenancy.apikeys import create_api_key
from walletpass.tenancy.models import Merchant, Store, User
from walletpass.tenancy.users import create_user, hash_password

DEMO_SLUG = "demo-cafe"

PROGRAMS: list[dict[str, Any]] = [
    {
        "slug": "demo-stamps",
        "name": "Coffee Stamps",
        "kind": "stamps",
        "template": "stamp_card",
        "rules": {
            "stamps_per_visit": 1,
            "goal": 10,
            "reward_name": "Free coffee",
            "min_spend": "0",
            "intermediate_rewards": [{"at": 5, "name": "Free cookie"}],
        },
        "design": {"background": "#5b3a29", "foreground": "#ffffff", "label": "#f3d9b1"},
        # Seven visits: past the cookie at five, three short of the free coffee.
        "member": {"name": "Ada Lovelace", "visits": 7},
    },
    {
        "slug": "demo-points",
        "name": "Bean Points",
        "kind": "tiers",
        "template": "points_tiers",
        "rules": {
            "amount_per_point": "1.00",
            "rounding": "floor",
            "min_spend": "0",
            "points_to_currency": "0.10",
            "levels": [
                {"name": "Bronze", "min_spend": "0", "discount_percent": 0, "earn_multiplier": "1"},
                {
                    "name": "Silver",
                    "min_spend": "5000",
                    "discount_percent": 10,
                    "earn_multiplier": "1.25",
                },
                {
                    "name": "Gold",
                    "min_spend": "10000",
                    "discount_percent": 20,
                    "earn_multiplier": "1.5",
                },
            ],
            "window": {"mode": "lifetime"},
        },
        "design": {"background": "#1f3b4d", "foreground": "#ffffff", "label": "#cfe3ee"},
        # A regular's purchases over a year: 5,400.00 spent, so Silver (from 5,000).
        "member": {"name": "Grace Hopper", "purchases": ["450.00"] * 12},
    },
    {
        "slug": "demo-offers",
        "name": "Café Offers",
        "kind": "offers",
        "template": "coupon",
        "rules": {"rollover": True},
        "design": {"background": "#b23a48", "foreground": "#ffffff", "label": "#ffd6dc"},
        "member": None,
    },
]


def create_demo(runtime: Runtime) -> dict[str, Any]:
    """Create the demo data once (re-running reuses it); always mints a fresh API key
    and owner password, since neither is stored in plaintext."""
    settings = runtime.settings
    base = settings.public_url.rstrip("/")
    with runtime.transaction() as session:
        merchant = session.scalars(select(Merchant).where(Merchant.slug == DEMO_SLUG)).one_or_none()
        if merchant is None:
            merchant = Merchant(
                slug=DEMO_SLUG,
                name="Demo Café",
                timezone="Europe/Paris",
                currency="EUR",
                language="en",
            )
            session.add(merchant)
            session.flush()
            session.add(
                Store(
                    merchant_id=merchant.id,
                    code="main",
                    name="Demo Café — Main St",
                    address="1 Main Street",
                    latitude=48.8566,
                    longitude=2.3522,
                )
            )
            session.flush()
            _create_programs(session, runtime, merchant)
        session.info["merchant_id"] = merchant.id
        store = session.scalars(select(Store).where(Store.code == "main")).one()
        _, api_key = create_api_key(
            session, merchant_id=merchant.id, scope="admin", name="demo admin key"
        )
        _, till_key = create_api_key(
            session, merchant_id=merchant.id, scope="till", name="demo till key", store_id=store.id
        )
        password = secrets.token_urlsafe(12)
        owner = session.scalars(
            select(User).where(User.email == "owner@demo-cafe.test")
        ).one_or_none()
        if owner is None:
            create_user(
                session,
                merchant_id=merchant.id,
                email="owner@demo-cafe.test",
                password=password,
                role="owner",
                name="Demo Owner",
            )
        else:
            owner.password_hash = hash_password(password)
            owner.session_generation += 1  # the old password's sessions end
        passes = session.execute(
            select(Program.slug, Pass.serial)
            .join(Program, Program.id == Pass.program_id)
            .where(Pass.coupon_id.is_(None))
            .order_by(Program.id)
        ).all()
        coupon_serials = session.scalars(
            select(Pass.serial).where(Pass.coupon_id.is_not(None)).order_by(Pass.id)
        ).all()
    return {
        "merchant": DEMO_SLUG,
        "public_url": base,
        "health": f"{base}/healthz",
        "api_key": api_key,
        "till_api_key": till_key,
        "owner": {"email": "owner@demo-cafe.test", "password": password},
        "programs": [
            {"slug": p["slug"], "kind": p["kind"], "join_url": f"{base}/join/{p['slug']}"}
            for p in PROGRAMS
        ],
        "passes": [
            {
                "program": slug,
                "serial": serial,
                "pkpass_url": f"{base}/p/{serial}.pkpass",
                "page_url": f"{base}/p/{serial}",
            }
            for slug, serial in passes
        ]
        + [
            {
                "program": "demo-offers",
                "serial": serial,
                "pkpass_url": f"{base}/p/{serial}.pkpass",
                "page_url": f"{base}/p/{serial}",
            }
            for serial in coupon_serials
        ],
    }


def _create_programs(session, runtime: Runtime, merchant: Merchant) -> None:  # type: ignore[no-untyped-def]
    settings = runtime.settings
    for spec in PROGRAMS:
        program = Program(
            merchant_id=merchant.id,
            slug=spec["slug"],
            name=spec["name"],
            kind=spec["kind"],
            template=spec["template"],
            rules=spec["rules"],
            design=spec["design"],
        )
        session.add(program)
        session.flush()
        sync_card_rewards(session, program)
        if spec["member"]:
            member, _, _ = enroll(
                session,
                settings,
                program,
                name=spec["member"]["name"],
                email=f"{spec['slug']}@demo-cafe.test",
                marketing_consent=True,
                source="demo",
            )
            _history(session, runtime, member, spec["member"])
        else:
            now = utcnow()
            offer = Offer(
                merchant_id=merchant.id,
                program_id=program.id,
                slug="demo-20-off",
                title="20% off any pastry",
                description="With any hot drink.",
                terms="One use per coupon. Not combinable with other offers.",
                discount={"type": "percent", "value": 20},
                valid_from=now,
                valid_until=now + timedelta(days=30),
                uses_per_coupon=1,
                total_cap=500,
            )
            session.add(offer)
            session.flush()
            coupon = Coupon(merchant_id=merchant.id, offer_id=offer.id)
            session.add(coupon)
            session.flush()
            issue_pass(
                session,
                settings,
                merchant_id=merchant.id,
                template=program.template,
                program_id=program.id,
                coupon_id=coupon.id,
            )


def _history(session, runtime: Runtime, member: Member, spec: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    """The member's balance as the till would have made it: each visit and purchase is a
    ledger entry (the balance is the ledger's sum, as for every member), in the past."""
    start = utcnow() - timedelta(days=360)
    for n in range(spec.get("visits", 0)):
        purchases.add_stamps(
            session, runtime.settings, member, count=1, key=f"demo:visit:{n}", actor=SYSTEM
        )
    for n, amount in enumerate(spec.get("purchases", ())):
        purchases.record_purchase(
            session,
            runtime.settings,
            member,
            amount=Decimal(amount),
            receipt_id=f"demo-{n + 1}",
            actor=SYSTEM,
            at=start + timedelta(days=30 * n),
        )
