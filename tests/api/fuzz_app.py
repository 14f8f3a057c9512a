"""The app and data set the schemathesis runs fuzz (tests/api/test_schemathesis*.py).

One app for a whole module: fuzzing ~50 operations with a fresh database each would spend
most of the 90 second budget on set-up.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from api_helpers import POINTS, STAMPS, Shop, make_shop, new_member, new_program
from conftest import _empty_all_tables, make_settings

from walletpass.app import create_app
from walletpass.runtime import Runtime


@contextmanager
def fuzzed_app(
    database_url: str, certs_dir: Path, home: Path
) -> Iterator[tuple[Any, Shop, Runtime]]:
    """(the Flask app, a shop with one key per scope and a little data, its runtime);
    the tables are emptied after."""
    settings = make_settings(home, database_url, certs_dir)
    runtime = Runtime.create(settings)
    app = create_app(runtime=runtime, start_worker=False)
    app.config["TESTING"] = True
    # Hundreds of requests in seconds would otherwise meet the (documented) 429.
    app.config["WALLETPASS_API_RATE_LIMIT"] = "1000000/second"
    shop = make_shop(runtime, app.test_client())
    # A little data, so that generated ids sometimes hit real rows (1, 2, 3...).
    points = new_program(shop, "points", POINTS)
    stamps = new_program(shop, "stamps", STAMPS)
    for program in (points, stamps):
        member = new_member(shop, program["id"])
        shop.admin.post("/rewards", {"program_id": program["id"], "name": "R", "cost_points": 1})
        shop.crm.post(
            f"/members/{member['id']}/transactions",
            {"type": "purchase", "amount": "12.50", "receipt_id": f"seed-{program['id']}"},
        )
    offer = shop.admin.post(
        "/offers",
        {"slug": "st-offer", "title": "O", "discount": {"type": "percent", "value": 10}},
    )
    shop.crm.post("/coupons", {"offer_id": offer["id"]})
    shop.crm.post("/webhook-endpoints", {"url": "https://a.test/", "events": ["member.created"]})
    shop.crm.post("/campaigns", {"name": "C", "message": "M"})
    try:
        yield app, shop, runtime
    finally:
        _empty_all_tables(runtime)
        runtime.close()
