"""No English left on a card: every text we write on a pass or a Google object goes
through a catalogue. A member whose language is the pseudo-language ``en-XA`` gets every
such text marked (``⟦Ǿƒƒḗř⟧``); a plain English word left in what the card shows was
written without one.

What the test itself put there (the shop's, the member's, the rewards' and the offers'
names) is allowed, and so are the pass.json texts Wallet translates itself, by the phone's
language, through the templates' ``.lproj/pass.strings`` (labels, change messages, the
"how to use" text): those are keys of the English table, tested in
tests/passes/test_templates.py.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import factories
import pytest
from babel.dates import get_month_names
from pseudo_support import english_left

from walletpass.cards.variables import pass_variables
from walletpass.db import utcnow
from walletpass.google.objects import build_pass_resources
from walletpass.i18n.languages import PSEUDO
from walletpass.loyalty.expiry import add_months
from walletpass.loyalty.ledger import SYSTEM
from walletpass.loyalty.models import Reward
from walletpass.loyalty.purchases import record_purchase
from walletpass.loyalty.sweeps import sweep_merchant
from walletpass.offers.models import Offer
from walletpass.offers.services import issue_coupon
from walletpass.passes.models import Pass
from walletpass.resources import package_path
from walletpass.tenancy.models import Store

ISSUER = "3388000000012345678"
# Every name the test gives: the shop's words, shown as written in any language.
NAMES = (
    "Corner Shop",
    "Corner",
    "Shop",
    "Club",
    "Ada",
    "Espresso",
    "Baklava",
    "Silver",
    "Gold",
    "Member",
    "Autumn",
    "Ten",
    "Cake",
    "Harbour",
)
# Dates are written by Babel (CLDR) in the reader's language; the pseudo-language reads
# as English there, so its month names are English by design, not left untranslated.
MONTHS = tuple(
    name
    for width in ("abbreviated", "wide")
    for name in get_month_names(width, locale="en").values()
)
TIERS = {
    "amount_per_point": "1",
    "levels": [
        {"name": "Member", "min_spend": "0"},
        {"name": "Silver", "min_spend": "100", "discount_percent": "10"},
        {"name": "Gold", "min_spend": "5000", "discount_percent": "20"},
    ],
}


def _strings_keys() -> set[str]:
    keys: set[str] = set()
    line = re.compile(r'^"(.*)" = "(.*)";$')
    for table in Path(package_path("pass_templates")).glob("*/en.lproj/pass.strings"):
        for text in table.read_text(encoding="utf-8").splitlines():
            found = line.match(text)
            if found:
                keys.add(found.group(1))
    return keys


@pytest.fixture
def cards(runtime, settings) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """A card of each kind, with each text we write on it showing, for an en-XA member."""
    now = utcnow()
    with runtime.transaction() as s:
        shop = factories.merchant(s, name="Corner Shop", currency="EUR")
        s.add(Store(merchant_id=shop.id, code="h", name="Harbour", latitude=37.9, longitude=23.6))
        tiers = factories.program(s, shop, "tiers", rules=TIERS, name="Club")
        stamps = factories.program(
            s,
            shop,
            "stamps",
            name="Club",
            rules={
                "goal": 5,
                "reward_name": "Espresso",
                "intermediate_rewards": [{"at": 2, "name": "Cake"}],
            },
        )
        club = factories.program(
            s, shop, "membership", name="Club", rules={"paid": True, "price": "30"}
        )
        lapsing = factories.program(
            s,
            shop,
            "membership",
            name="Club",
            rules={"paid": True, "price": "30", "reminder_days": 30},
        )
        out: dict[str, int] = {"merchant_id": shop.id}

        tier_member = factories.member(s, tiers, name="Ada", language=PSEUDO)
        tier_member.tier, tier_member.lifetime_spend = "Silver", Decimal(400)
        tier_member.points_balance = 500
        s.add(Reward(merchant_id=shop.id, program_id=tiers.id, name="Baklava", cost_points=50))
        s.add(
            Offer(
                merchant_id=shop.id,
                program_id=tiers.id,
                slug="autumn",
                title="Autumn",
                overlay=True,
                discount={"type": "amount", "value": "5.00"},
                valid_from=now - timedelta(days=1),
            )
        )
        out["tiers"] = factories.member_pass(s, settings, tier_member).id

        expiring = factories.program(
            s,
            shop,
            "points",
            name="Club",
            rules={
                "amount_per_point": "1",
                "expiry": {"mode": "lots", "months": 12, "warn_days": 30},
            },
        )
        saver = factories.member(s, expiring, name="Ada", language=PSEUDO)
        out["points_expiring"] = factories.member_pass(s, settings, saver).id
        # A purchase a year ago, less ten days: its points expire in ten days, and the
        # sweep below warns the member on the card.
        record_purchase(
            s,
            settings,
            saver,
            amount=Decimal(120),
            receipt_id="old",
            actor=SYSTEM,
            at=add_months(now, -12) + timedelta(days=10),
        )

        stamp_member = factories.member(s, stamps, name="Ada", language=PSEUDO)
        stamp_member.stamps_balance = 3
        out["stamps"] = factories.member_pass(s, settings, stamp_member).id

        pending = factories.member(s, club, name="Ada", language=PSEUDO)
        out["membership"] = factories.member_pass(s, settings, pending).id
        ending = factories.member(s, lapsing, name="Ada", language=PSEUDO)
        ending.membership_valid_until = now + timedelta(days=10)
        out["membership_ending"] = factories.member_pass(s, settings, ending).id
        lapsed = factories.member(s, lapsing, name="Ada", language=PSEUDO)
        lapsed.membership_valid_until = now - timedelta(days=10)
        out["membership_lapsed"] = factories.member_pass(s, settings, lapsed).id

        for slug, discount in (
            ("ten", {"type": "percent", "value": "10"}),
            ("five", {"type": "amount", "value": "5.00"}),
        ):
            offer = Offer(
                merchant_id=shop.id, slug=slug, title="Ten", discount=discount, uses_per_coupon=3
            )
            s.add(offer)
            s.flush()
            _, coupon = issue_coupon(s, settings, offer, member_id=tier_member.id)
            out[f"coupon_{slug}"] = coupon.id
    with runtime.transaction(out["merchant_id"]) as s:
        sweep_merchant(s, settings)
    return out


def _pkpass(client, runtime, merchant_id: int, pass_id: int) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    with runtime.transaction(merchant_id) as s:
        p = s.get(Pass, pass_id)
        assert p is not None
        path, token = f"/apple/v1/passes/{p.pass_type_id}/{p.serial}", p.auth_token
    r = client.get(path, headers={"Authorization": f"ApplePass {token}"})
    assert r.status_code == 200, r.get_data(as_text=True)
    with zipfile.ZipFile(io.BytesIO(r.data)) as z:
        return json.loads(z.read("pass.json"))


def _shown_on_the_pass(pass_json: dict[str, Any], localised_by_wallet: set[str]) -> list[str]:
    """The texts a pass shows that Wallet does not look up in its .strings."""
    style = pass_json.get("storeCard") or pass_json["coupon"]
    texts = [pass_json.get("logoText", ""), pass_json["description"]]
    texts += [b.get("altText", "") for b in pass_json.get("barcodes", [])]
    texts += [loc["relevantText"] for loc in pass_json.get("locations", [])]
    for group in style.values():
        for field in group:
            for attr in ("label", "value", "changeMessage"):
                value = field.get(attr)
                if isinstance(value, str) and value not in localised_by_wallet:
                    texts.append(value)
    return texts


_VISIBLE_KEYS = {"header", "body", "label", "description", "string", "alternateText"}


def _shown_on_the_object(node: Any) -> list[str]:
    """Every text a Google object shows its holder (not ids, states, URIs)."""
    if isinstance(node, dict):
        texts = []
        for key, value in node.items():
            if key in _VISIBLE_KEYS and isinstance(value, str):
                texts.append(value)
            else:
                texts += _shown_on_the_object(value)
        return texts
    if isinstance(node, list):
        return [text for item in node for text in _shown_on_the_object(item)]
    return []


KINDS = (
    "tiers",
    "points_expiring",
    "stamps",
    "membership",
    "membership_ending",
    "membership_lapsed",
    "coupon_ten",
    "coupon_five",
)


def test_no_english_is_left_on_a_pass_or_a_google_object(client, runtime, settings, cards):
    localised_by_wallet = _strings_keys()
    google = settings.override(google_issuer_id=ISSUER, google_service_account_file="/dev/null")
    left: dict[str, list[str]] = {}
    on_passes: dict[str, str] = {}
    seen_marked = 0
    for kind in KINDS:
        pass_json = _pkpass(client, runtime, cards["merchant_id"], cards[kind])
        # The member number (the barcode's text) and the shop's website are data too.
        data = (*NAMES, *MONTHS, pass_json["barcodes"][0]["message"], settings.public_url)
        shown = " | ".join(_shown_on_the_pass(pass_json, localised_by_wallet))
        on_passes[kind] = shown
        seen_marked += shown.count("\u27e6")
        if words := english_left(shown, data, html=False):
            left[f"{kind} pass: {shown}"] = words
        with runtime.transaction(cards["merchant_id"]) as s:
            p = s.get(Pass, cards[kind])
            assert p is not None
            body = build_pass_resources(s, google, p, pass_variables(s, p, google)).object_body
        shown = " | ".join(_shown_on_the_object(body))
        seen_marked += shown.count("\u27e6")
        if words := english_left(shown, data, html=False):
            left[f"{kind} Google object: {shown}"] = words
    assert left == {}
    # Each kind of text was there to be checked: the points' expiry notice, the tier's
    # progress, the membership's notices, the discounts, the store's lock-screen text.
    assert "\u27e6120 ƥǿīƞŧş ḗẋƥīřḗ ǿƞ" in on_passes["points_expiring"]
    assert "ŧǿ Gold\u27e7" in on_passes["tiers"]
    assert "\u27e6Ƥȧẏḿḗƞŧ ḓŭḗ (€30.00)" in on_passes["membership"]
    assert "\u27e6Ŀȧƥşḗḓ ǿƞ" in on_passes["membership_lapsed"]
    assert "\u27e6Ẏǿŭř ḿḗḿƀḗřşħīƥ ḗƞḓş ǿƞ" in on_passes["membership_ending"]
    assert "\u27e610% ǿƒƒ\u27e7" in on_passes["coupon_ten"]
    assert "\u27e6Harbour īş ƞḗȧřƀẏ\u27e7" in on_passes["tiers"]
    # The cards did show our texts (marked), not only names: the test sees what it means to.
    assert seen_marked >= 20
