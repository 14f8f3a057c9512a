"""Build Google Wallet class and object payloads (walletobjects v1) from pass variables.

Builders are pure functions over the template variable mapping of
``walletpass.cards.variables.pass_variables``; only :func:`build_pass_resources` (with
:func:`merchant_locations` and the linked offers of walletpass.google.links) touches the
database (the class's program or offer, the shop's stores, the member's live coupons).
Field names and enums follow the
discovery document exactly, canonical UPPER_CASE forms only (specs/google-wallet.md §4).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from walletpass.cards.locations import store_locations
from walletpass.db import utcnow
from walletpass.google.links import live_coupon_passes
from walletpass.i18n import formats
from walletpass.i18n.catalogues import Text, text
from walletpass.i18n.languages import DEFAULT
from walletpass.loyalty.models import Program
from walletpass.offers.models import Coupon, Offer
from walletpass.passes import barcodes
from walletpass.passes.render import render_google_class
from walletpass.passes.templates import load_template
from walletpass.tenancy.models import Merchant

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from walletpass.config import Settings
    from walletpass.passes.models import Pass

_UNSAFE_ID = re.compile(r"[^A-Za-z0-9._-]")
_HEX = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")

ACTIVE, INACTIVE, EXPIRED, COMPLETED = "ACTIVE", "INACTIVE", "EXPIRED", "COMPLETED"
_STATE_BY_STATUS = {"active": ACTIVE, "voided": INACTIVE, "expired": EXPIRED}

# Google's cap on merchantLocations, per class and per object ("any additional
# MerchantLocations added beyond the 10 will be rejected").
MAX_MERCHANT_LOCATIONS = 10
# appLinkData.displayText is cut at 30 characters by Google.
MAX_APP_LINK_TEXT = 30

# Resource names as they appear in REST paths, and their save-JWT payload keys.
PAYLOAD_KEYS = {
    "loyaltyClass": "loyaltyClasses",
    "loyaltyObject": "loyaltyObjects",
    "offerClass": "offerClasses",
    "offerObject": "offerObjects",
}


# -- ids ------------------------------------------------------------------------------


def sanitize_suffix(suffix: str) -> str:
    """Google accepts only letters, digits, '.', '_' and '-' after the issuer id (§2)."""
    return _UNSAFE_ID.sub("_", suffix)


def resource_id(issuer_id: str, suffix: str) -> str:
    return f"{issuer_id}.{sanitize_suffix(suffix)}"


def program_class_id(issuer_id: str, program_slug: str, version: int = 0) -> str:
    """Deterministic, so a retried insert hits 409 and becomes a PATCH instead of a twin."""
    return resource_id(issuer_id, f"program-{program_slug}-v{version}")


def offer_class_id(issuer_id: str, offer_slug: str) -> str:
    return resource_id(issuer_id, f"offer-{offer_slug}")


def pass_object_id(issuer_id: str, serial: str) -> str:
    return resource_id(issuer_id, f"pass-{serial}")


def object_state(status: str) -> str:
    """Pass status → object state. INACTIVE and EXPIRED both move the card to "Expired
    passes"; a voided pass is INACTIVE so it reads as withdrawn, not as run out."""
    return _STATE_BY_STATUS.get(str(status), ACTIVE)


# -- small field helpers --------------------------------------------------------------


def iso_with_offset(value: Any) -> str | None:
    """An ISO 8601 date-time carrying an offset (absolute, §4 validTimeInterval).

    Naive values are taken as UTC: every datetime in this service is stored in UTC.
    """
    if value in (None, ""):
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.isoformat()


def _image(uri: Any, description: str | None = None) -> dict[str, Any] | None:
    if not uri:
        return None
    image: dict[str, Any] = {"sourceUri": {"uri": str(uri)}}
    if description:
        image["contentDescription"] = _localized(description, None)
    return image


def _localized(value: str, language: Any) -> dict[str, Any]:
    return {"defaultValue": {"language": str(language or DEFAULT), "value": value}}


def _texts(variables: Mapping[str, Any]) -> Text:
    """The texts of the object's holder: an object is one member's (a class is shared, and
    carries its fixed texts in every language as ``translatedValues``)."""
    return text(str(variables.get("language") or DEFAULT))


def _module(module_id: str, header: str, body: Any) -> dict[str, Any] | None:
    if body in (None, ""):
        return None
    return {"id": module_id, "header": header, "body": str(body)}


def _date_text(value: Any, lang: str) -> str:
    """An ISO date or date-time as the reader writes the day (Google shows module bodies
    as given, unlike Wallet's dateStyle)."""
    shown = str(value or "")
    if len(shown) >= 10 and shown[4] == "-":
        try:
            return formats.day(date.fromisoformat(shown[:10]), lang)
        except ValueError:
            return shown[:10]
    return shown


def barcode(variables: Mapping[str, Any]) -> dict[str, Any]:
    """The same payload as the Apple pass, so one scanner path serves both wallets: the
    member's card number in the design's format (EAN_13, CODE_39, CODABAR, ITF_14) when
    it fits, else the pass's own code as a QR code (walletpass.passes.barcodes)."""
    fmt = str(variables.get("barcode_format") or "qr")
    number = str(variables.get("card_number") or "")
    if fmt != "qr" and barcodes.fits(fmt, number):
        return barcodes.google_barcode(fmt, number, str(variables["barcode_message"]))
    result: dict[str, Any] = {"type": "QR_CODE", "value": str(variables["barcode_message"])}
    alt = variables.get("barcode_alt_text")
    if alt:
        result["alternateText"] = str(alt)
    return result


def _links(variables: Mapping[str, Any]) -> dict[str, Any]:
    uris = []
    website = variables.get("website_url")
    if website and str(website).startswith(("https:", "http:")):
        uris.append(
            {
                "id": "website",
                "uri": str(website),
                "description": _texts(variables).gettext("Website"),
            }
        )
    # Always sent, even empty: PATCH replaces arrays whole, so an empty list clears a stale one.
    return {"uris": uris}


def app_link(variables: Mapping[str, Any]) -> dict[str, Any] | None:
    """The button at the foot of the pass that opens the holder's card page (/p/<serial>,
    with both wallets' buttons, the barcode and the shop's news): Google's appLinkData
    with a web target only (we ship no Android app; iOS targets are deprecated).

    None when the card page is not on https: Google opens links from a pass on the web,
    and a dev server's http://localhost is of no use to a phone.
    """
    url = str(variables.get("card_url") or "")
    if not url.startswith("https://"):
        return None
    t = _texts(variables)
    label = t.gettext("View your card")[:MAX_APP_LINK_TEXT]
    return {
        "webAppLinkInfo": {"appTarget": {"targetUri": {"uri": url, "description": label}}},
        "displayText": _localized(label, t.lang),
    }


def _when(value: Any, variables: Mapping[str, Any], lang: str) -> str:
    """An offer's start or end as the reader writes a date and time, in the shop's zone."""
    moment = datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return formats.moment(moment, lang, str(variables.get("merchant_timezone") or "UTC"))


def offer_window_module(variables: Mapping[str, Any]) -> dict[str, Any] | None:
    """A value added module saying when a time-windowed offer runs, shown by Google only
    inside that window (its viewConstraints.displayInterval is the offer's own start and
    end), so the card never advertises an offer that has not begun or is over.

    None for an offer with neither start nor end, or without an https card page: the
    module's ``uri`` is required, and it leads to the card page.
    """
    start_value = variables.get("offer_valid_from")
    end_value = variables.get("offer_valid_until") or variables.get("coupon_valid_until")
    url = str(variables.get("card_url") or "")
    if not (start_value or end_value) or not url.startswith("https://"):
        return None
    t = _texts(variables)
    lang = t.lang
    if start_value and end_value:
        body = t.gettext(
            "Valid %(start)s to %(end)s",
            start=_when(start_value, variables, lang),
            end=_when(end_value, variables, lang),
        )
    elif end_value:
        body = t.gettext("Valid until %(day)s", day=_when(end_value, variables, lang))
    else:
        body = t.gettext("Valid from %(day)s", day=_when(start_value, variables, lang))
    interval: dict[str, Any] = {}
    start, end = iso_with_offset(start_value), iso_with_offset(end_value)
    if start:
        interval["start"] = {"date": start}
    if end:
        interval["end"] = {"date": end}
    title = str(variables.get("coupon_title") or t.gettext("Offer"))
    return {
        "header": _localized(title, lang),
        "body": _localized(body, lang),
        "uri": url,
        "viewConstraints": {"displayInterval": interval},
        "sortIndex": 0,
    }


# -- objects --------------------------------------------------------------------------


def loyalty_object(
    variables: Mapping[str, Any],
    *,
    object_id: str,
    class_id: str,
    state: str,
    linked_offer_ids: list[str] | None = None,
) -> dict[str, Any]:
    """A LoyaltyObject for a member card. Every array is whole, never a delta.

    :param linked_offer_ids: the offer objects of the member's live coupons, shown on the
        card (walletpass.google.links). Sent whole on every write, an empty list too: a
        PATCH replaces the array, so an ended coupon's offer drops off the card with the
        next write, whatever the write was for.
    """
    kind = str(variables.get("program_kind") or "points")
    t = _texts(variables)
    lang = t.lang
    body: dict[str, Any] = {
        "id": object_id,
        "classId": class_id,
        "state": state,
        "barcode": barcode(variables),
    }
    if variables.get("member_number"):
        body["accountId"] = str(variables["member_number"])
    if variables.get("member_name"):
        body["accountName"] = str(variables["member_name"])

    points = variables.get("points")
    stamps = variables.get("stamps")
    if kind in ("points", "tiers") and points is not None:
        body["loyaltyPoints"] = {
            "label": str(variables.get("points_label") or t.gettext("Points")),
            "balance": {"int": int(points)},
        }
        if variables.get("tier"):
            # LoyaltyObject has no per-holder tier field (rewardsTier is on the class), so
            # the member's tier goes in the secondary balance, shown beside the points.
            body["secondaryLoyaltyPoints"] = {
                "label": str(variables.get("tier_label") or t.gettext("Tier")),
                "balance": {"string": str(variables["tier"])},
            }
    elif kind == "stamps" and stamps is not None:
        goal = variables.get("stamps_goal")
        # The card's own wording ("10/10 +2" past the goal) when the card layer gives it.
        shown = str(variables.get("stamps_text") or "") or (
            f"{int(stamps)}/{int(goal)}" if goal else str(int(stamps))
        )
        body["loyaltyPoints"] = {
            "label": str(variables.get("stamps_label") or t.gettext("Stamps")),
            "balance": {"string": shown},
        }
    # membership and offers-only cards carry no balance at all.

    modules = [
        _module(
            "offer",
            str(variables.get("offer_title") or t.gettext("Offer")),
            variables.get("offer_text"),
        ),
        _module("expiry", t.gettext("Notice"), variables.get("expiry_warning")),
        _module(
            "rewards",
            t.gettext("Member benefits") if kind == "membership" else t.gettext("Rewards"),
            variables.get("rewards_text"),
        ),
        _module("tier", t.gettext("Tier benefits"), variables.get("tier_discount")),
        _module(
            "membership",
            t.gettext("Valid until"),
            _date_text(variables.get("membership_valid_until"), lang) or None,
        ),
        _module("terms", t.gettext("Terms"), variables.get("terms")),
    ]
    body["textModulesData"] = [m for m in modules if m]
    body["linksModuleData"] = _links(variables)
    if linked_offer_ids is not None:
        body["linkedOfferIds"] = list(linked_offer_ids)
    link = app_link(variables)
    if link:
        body["appLinkData"] = link
    return body


def notifying_fields(body: Mapping[str, Any]) -> tuple[str, ...]:
    """What of a LoyaltyObject its holder is told of when it changes: the balance, the
    tier (our secondary balance) and the rewards module, whose text changes when a reward
    is unlocked. Compared between what Google holds and what we would send, so that a
    write that changes none of them (a no-op, or the retry of a write that already landed)
    never spends the holder's 3-a-day notifications. Google itself pushes only for
    allowlisted fields; the balance and the tier are named in its guide."""

    def balance(points: Any) -> str:
        value = (points or {}).get("balance") if isinstance(points, Mapping) else None
        if not isinstance(value, Mapping):
            return ""
        for kind in ("int", "string", "double"):
            if kind in value:
                return f"{kind}:{value[kind]}"
        money = value.get("money") or {}
        return f"money:{money.get('currencyCode', '')}:{money.get('micros', '')}"

    rewards = next(
        (
            str(m.get("body") or "")
            for m in body.get("textModulesData") or []
            if isinstance(m, Mapping) and m.get("id") == "rewards"
        ),
        "",
    )
    return (
        balance(body.get("loyaltyPoints")),
        balance(body.get("secondaryLoyaltyPoints")),
        rewards,
    )


def offer_object(
    variables: Mapping[str, Any], *, object_id: str, class_id: str, state: str
) -> dict[str, Any]:
    """An OfferObject for a coupon; Google expires it by itself after validTimeInterval.end."""
    body: dict[str, Any] = {
        "id": object_id,
        "classId": class_id,
        "state": state,
        "barcode": barcode(variables),
    }
    start = iso_with_offset(variables.get("offer_valid_from"))
    end = iso_with_offset(variables.get("offer_valid_until") or variables.get("coupon_valid_until"))
    interval: dict[str, Any] = {}
    if start:
        interval["start"] = {"date": start}
    if end:
        interval["end"] = {"date": end}
    if interval:
        body["validTimeInterval"] = interval
    if end:
        # Google tells the holder about 48 h before validTimeInterval.end (if the offer was
        # saved more than 12 h before that); false is Google's default, sent so the
        # choice is ours and visible, not an accident of leaving the field out.
        body["disableExpirationNotification"] = False
    uses_left = variables.get("coupon_uses_left")
    t = _texts(variables)
    modules = [
        _module("discount", t.gettext("Discount"), variables.get("coupon_discount")),
        _module(
            "uses_left",
            t.gettext("Uses left"),
            formats.number(int(uses_left), t.lang)
            if uses_left is not None and int(uses_left) != 1
            else None,
        ),
        _module("expiry", t.gettext("Notice"), variables.get("expiry_warning")),
        _module("terms", t.gettext("Terms"), variables.get("coupon_terms")),
    ]
    body["textModulesData"] = [m for m in modules if m]
    body["linksModuleData"] = _links(variables)
    window = offer_window_module(variables)
    # Always sent, even empty: an offer whose dates were removed must lose its module.
    body["valueAddedModuleData"] = [window] if window else []
    link = app_link(variables)
    if link:
        body["appLinkData"] = link
    return body


# -- classes --------------------------------------------------------------------------


def default_loyalty_class(variables: Mapping[str, Any]) -> dict[str, Any]:
    """Used when the pass template ships no google_class.json."""
    body: dict[str, Any] = {
        "issuerName": str(variables.get("organization_name") or ""),
        "programName": str(variables.get("program_name") or ""),
    }
    logo = _image(variables.get("logo_url"), str(variables.get("organization_name") or "Logo"))
    if logo:
        body["programLogo"] = logo
    if _HEX.match(str(variables.get("background_hex") or "")):
        body["hexBackgroundColor"] = str(variables["background_hex"])
    return body


def default_offer_class(variables: Mapping[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "issuerName": str(variables.get("organization_name") or ""),
        "provider": str(variables.get("organization_name") or ""),
        "title": str(
            variables.get("coupon_title")
            or variables.get("offer_title")
            or _texts(variables).gettext("Offer")
        ),
        "redemptionChannel": "INSTORE",
    }
    if variables.get("coupon_terms"):
        body["finePrint"] = str(variables["coupon_terms"])
    logo = _image(variables.get("logo_url"), str(variables.get("organization_name") or "Logo"))
    if logo:
        body["titleImage"] = logo
    if _HEX.match(str(variables.get("background_hex") or "")):
        body["hexBackgroundColor"] = str(variables["background_hex"])
    return body


def finish_class(
    resource: str,
    rendered: Mapping[str, Any] | None,
    variables: Mapping[str, Any],
    *,
    class_id: str,
    callback_url: str | None,
    merchant_locations: list[dict[str, float]] | None = None,
) -> dict[str, Any]:
    """The class body to send: the rendered template (or a default) with our id,
    reviewStatus UNDER_REVIEW (DRAFT classes cannot hold objects), the callback URL and
    the shop's stores as merchantLocations.

    :param merchant_locations: ``{latitude, longitude}`` of the shop's stores, at most
        :data:`MAX_MERCHANT_LOCATIONS`. On the class, not each object: the stores are the
        shop's, the same for every holder, and one class write moves them for all.
    """
    if rendered is None:
        rendered = (
            default_offer_class(variables)
            if resource == "offerClass"
            else default_loyalty_class(variables)
        )
    body = dict(rendered)
    body.update(_class_names(resource, variables))
    body["id"] = class_id
    body["reviewStatus"] = "UNDER_REVIEW"
    # Google only calls HTTPS endpoints; a dev public_url on http would be refused.
    if callback_url and callback_url.startswith("https://"):
        body["callbackOptions"] = {"url": callback_url}
    # Google's geofenced notice near a store; ``locations`` is deprecated and never sent
    # (a template that carried it would have it dropped here). Always sent, even empty, so
    # a shop that removed its last store's coordinates loses them on Google too.
    body.pop("locations", None)
    body["merchantLocations"] = list(merchant_locations or [])[:MAX_MERCHANT_LOCATIONS]
    return body


def merchant_locations(session: Session, merchant_id: int) -> list[dict[str, float]]:
    """The shop's stores with coordinates, oldest first, as Google's MerchantLocation."""
    return [
        {"latitude": float(loc["latitude"]), "longitude": float(loc["longitude"])}
        for loc in store_locations(session, merchant_id)[:MAX_MERCHANT_LOCATIONS]
    ]


def _class_names(resource: str, variables: Mapping[str, Any]) -> dict[str, Any]:
    """The class's name in the merchant's language and each language it was given in:
    one class serves every holder, and Google shows each phone its language's."""
    if resource == "loyaltyClass":
        field, localized_field, prefix = "programName", "localizedProgramName", "program_name"
    else:
        field, localized_field, prefix = "title", "localizedTitle", "coupon_title"
    default = str(variables.get(prefix) or "")
    if not default:
        return {}
    language = str(variables.get("merchant_language") or "en")
    translated = [
        {"language": lang, "value": str(value)}
        for lang, value in sorted(dict(variables.get(f"{prefix}_translations") or {}).items())
        if lang != language and value
    ]
    localized = _localized(default, language)
    if translated:
        localized["translatedValues"] = translated
    return {field: default, localized_field: localized}


def callback_url(settings: Settings) -> str:
    return settings.public_url.rstrip("/") + "/google/callbacks"


def card_url(settings: Settings, serial: str) -> str:
    """The holder's card page (walletpass.public: GET /p/<serial>)."""
    return settings.public_url.rstrip("/") + "/p/" + quote(serial, safe="")


# -- a pass's resources -----------------------------------------------------------------


@dataclass(frozen=True)
class PassResources:
    class_resource: str
    class_body: dict[str, Any]
    object_resource: str
    object_body: dict[str, Any]

    @property
    def class_id(self) -> str:
        return str(self.class_body["id"])

    @property
    def object_id(self) -> str:
        return str(self.object_body["id"])


def render_template_class(
    settings: Settings, template_name: str, variables: Mapping[str, Any]
) -> dict[str, Any] | None:
    """The pass template's google_class.json rendered, or None if it has none."""
    template = load_template(Path(settings.templates_dir) / template_name)
    if template.google_class is None:
        return None
    return render_google_class(template, dict(variables))


def build_pass_resources(
    session: Session, settings: Settings, pass_row: Pass, variables: Mapping[str, Any]
) -> PassResources:
    """Class and object bodies for ``pass_row``: an offer class/object for a coupon pass,
    a loyalty class/object otherwise.

    :raise ValueError: Google is not configured, or the pass has neither program nor coupon.
    """
    issuer = settings.google_issuer_id
    if not issuer:
        raise ValueError("WALLETPASS_GOOGLE_ISSUER_ID is not set")
    object_id = pass_row.google_object_id or pass_object_id(issuer, pass_row.serial)
    # The status the card shows now (walletpass.cards): a coupon whose offer ended is
    # EXPIRED on Google before any sweep has written the pass's own status.
    state = object_state(str(variables.get("status") or pass_row.status))
    linked: list[str] | None = None
    if pass_row.coupon_id is not None:
        coupon = session.get(Coupon, pass_row.coupon_id)
        offer = session.get(Offer, coupon.offer_id) if coupon else None
        if coupon is None or offer is None:
            raise ValueError(f"pass {pass_row.serial}: coupon or offer gone")
        class_resource, object_resource = "offerClass", "offerObject"
        class_id = offer_class_id(issuer, offer.slug)
        used_up = coupon.status == "used" or coupon.uses >= offer.uses_per_coupon
        if used_up and coupon.status != "void" and state in (ACTIVE, INACTIVE):
            # Used up: done, not withdrawn nor run out (Apple's copy is voided for it,
            # walletpass.cards.variables). It leaves the holder's active passes, and the
            # loyalty card it was linked to (walletpass.google.links).
            state = COMPLETED
    else:
        program = session.get(Program, pass_row.program_id) if pass_row.program_id else None
        if program is None:
            raise ValueError(f"pass {pass_row.serial}: neither program nor coupon")
        class_resource, object_resource = "loyaltyClass", "loyaltyObject"
        class_id = program_class_id(issuer, program.slug, program.google_class_version)
        if pass_row.member_id is not None:
            # Only offers already on Google: linking one that is not fails the whole
            # write. walletpass.google.sync inserts the others before it builds this.
            linked = [
                str(p.google_object_id)
                for p in live_coupon_passes(session, pass_row.member_id, utcnow())
                if p.google_object_id
            ]
    merchant = session.get(Merchant, pass_row.merchant_id)
    variables = {
        **variables,
        "google_class_id": class_id,
        "card_url": card_url(settings, pass_row.serial),
        "merchant_timezone": merchant.timezone if merchant is not None else "UTC",
    }
    # One class for every holder: written with the merchant's own texts, not the reader's
    # (walletpass.cards.variables' class_texts), the names in each language beside them.
    class_variables = {**variables, **dict(variables.get("class_texts") or {})}
    rendered = render_template_class(settings, pass_row.template, class_variables)
    class_body = finish_class(
        class_resource,
        rendered,
        class_variables,
        class_id=class_id,
        callback_url=callback_url(settings),
        merchant_locations=merchant_locations(session, pass_row.merchant_id),
    )
    if object_resource == "offerObject":
        object_body = offer_object(variables, object_id=object_id, class_id=class_id, state=state)
    else:
        object_body = loyalty_object(
            variables,
            object_id=object_id,
            class_id=class_id,
            state=state,
            linked_offer_ids=linked,
        )
    return PassResources(class_resource, class_body, object_resource, object_body)
