"""Build Google Wallet class and object payloads (walletobjects v1) from pass variables.

Builders are pure functions over the template variable mapping of
``walletpass.cards.variables.pass_variables``; only :func:`build_pass_resources` touches the
database (to name the class after the program or offer). Field names and enums follow the
discovery document exactly, canonical UPPER_CASE forms only (specs/google-wallet.md §4).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from walletpass.i18n import formats
from walletpass.i18n.catalogues import Text, text
from walletpass.i18n.languages import DEFAULT
from walletpass.loyalty.models import Program
from walletpass.offers.models import Coupon, Offer
from walletpass.passes import barcodes
from walletpass.passes.render import render_google_class
from walletpass.passes.templates import load_template

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from walletpass.config import Settings
    from walletpass.passes.models import Pass

_UNSAFE_ID = re.compile(r"[^A-Za-z0-9._-]")
_HEX = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")

ACTIVE, INACTIVE, EXPIRED = "ACTIVE", "INACTIVE", "EXPIRED"
_STATE_BY_STATUS = {"active": ACTIVE, "voided": INACTIVE, "expired": EXPIRED}

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


# -- objects --------------------------------------------------------------------------


def loyalty_object(
    variables: Mapping[str, Any], *, object_id: str, class_id: str, state: str
) -> dict[str, Any]:
    """A LoyaltyObject for a member card. Every array is whole, never a delta."""
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
    return body


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
) -> dict[str, Any]:
    """The class body to send: the rendered template (or a default) with our id,
    reviewStatus UNDER_REVIEW (DRAFT classes cannot hold objects) and the callback URL."""
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
    return body


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
    if pass_row.coupon_id is not None:
        coupon = session.get(Coupon, pass_row.coupon_id)
        offer = session.get(Offer, coupon.offer_id) if coupon else None
        if offer is None:
            raise ValueError(f"pass {pass_row.serial}: coupon or offer gone")
        class_resource, object_resource = "offerClass", "offerObject"
        class_id = offer_class_id(issuer, offer.slug)
    else:
        program = session.get(Program, pass_row.program_id) if pass_row.program_id else None
        if program is None:
            raise ValueError(f"pass {pass_row.serial}: neither program nor coupon")
        class_resource, object_resource = "loyaltyClass", "loyaltyObject"
        class_id = program_class_id(issuer, program.slug, program.google_class_version)
    variables = {**variables, "google_class_id": class_id}
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
    )
    builder = offer_object if object_resource == "offerObject" else loyalty_object
    object_body = builder(variables, object_id=object_id, class_id=class_id, state=state)
    return PassResources(class_resource, class_body, object_resource, object_body)
