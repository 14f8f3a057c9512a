"""The words the admin's pages show for the values the service stores (a pass's status, a
ledger entry's kind, a campaign's audience), in the page's language.

The stored values stay English identifiers (the API, the CSV exports and the database
speak them); a page shows ``label("pass_status", p.status)``. A value with no label here
(one added later) is shown as it is stored rather than hidden.
"""

from __future__ import annotations

from datetime import datetime, tzinfo

from babel.numbers import format_percent
from flask_babel import gettext

from walletpass.i18n import formats
from walletpass.i18n.catalogues import N_
from walletpass.i18n.languages import babel_locale
from walletpass.web.i18n import current_language

LABELS: dict[str, dict[str, str]] = {
    "pass_status": {
        "active": N_("active"),
        "voided": N_("voided"),
        "expired": N_("expired"),
    },
    "ledger_kind": {
        "earn": N_("earned"),
        "redeem": N_("redeemed"),
        "adjust": N_("adjusted"),
        "expire": N_("expired"),
        "refund": N_("refund"),
        "bonus": N_("bonus"),
        "renewal": N_("renewal"),
        "undo": N_("undone"),
    },
    "actor": {
        "staff": N_("staff"),
        "api_key": N_("API key"),
        "crm": N_("CRM"),
        "system": N_("automatic"),
    },
    "scan_action": {
        "lookup": N_("look-up"),
        "purchase": N_("purchase"),
        "stamp": N_("stamp added"),
        "redeem_reward": N_("reward redeemed"),
        "redeem_coupon": N_("coupon redeemed"),
        "refund": N_("refund"),
    },
    "card_email_reason": {
        "welcome": N_("welcome"),
        "resend": N_("sent again"),
    },
    "card_email_status": {
        "pending": N_("waiting"),
        "sent": N_("sent"),
        "failed": N_("failed"),
    },
    "scan_result": {
        "ok": N_("ok"),
        "error": N_("refused"),
    },
    "scope": {
        "till": N_("till"),
        "crm": N_("CRM"),
        "admin": N_("admin"),
        "read": N_("read only"),
    },
    "campaign_status": {
        "draft": N_("draft"),
        "scheduled": N_("scheduled"),
        "sending": N_("sending"),
        "finished": N_("finished"),
        "cancelled": N_("cancelled"),
    },
    "audience": {
        "all": N_("every member"),
        "tier": N_("a tier"),
        "lapsed": N_("lapsed for N days"),
        "birthday_month": N_("birthday in a month"),
        "tag": N_("a CRM tag"),
        "rfm": N_("an RFM segment"),
    },
    "audience_key": {
        "tier": N_("tier"),
        "days": N_("days"),
        "month": N_("month"),
        "tag": N_("tag"),
        "segment": N_("segment"),
    },
    "rfm_segment": {
        "champions": N_("champions"),
        "loyal": N_("loyal"),
        "promising": N_("promising"),
        "at_risk": N_("at risk"),
        "hibernating": N_("hibernating"),
        "needs_attention": N_("needs attention"),
        "inactive": N_("inactive"),
    },
    "import_state": {
        "queued": N_("queued"),
        "running": N_("running"),
        "done": N_("done"),
        "failed": N_("failed"),
    },
}


def label(kind: str, value: object) -> str:
    """``value``'s word in the page's language, or ``value`` itself if it has none."""
    text = LABELS.get(kind, {}).get(str(value))
    return gettext(text) if text else str(value if value is not None else "")


def when(value: datetime | None, tz: tzinfo) -> str:
    """A date and time in the merchant's zone, as the page's language writes it."""
    if value is None:
        return ""
    return formats.moment(value.astimezone(tz), current_language())


def on(value: datetime | None, tz: tzinfo) -> str:
    """The date of a moment in the merchant's zone, as the page's language writes it."""
    if value is None:
        return ""
    return formats.day(value.astimezone(tz).date(), current_language())


def percent(share: float | None, digits: int = 0) -> str:
    """``0.42`` as ``42%`` (en, el, zh), a dash for no figure."""
    if share is None:
        return "\u2013"  # an en dash: no figure
    pattern = "#,##0" + ("." + "0" * digits if digits else "") + "%"
    return format_percent(share, format=pattern, locale=babel_locale(current_language()))


def template_context() -> dict[str, object]:
    """For a blueprint's context processor: these helpers in its templates."""
    return {"label": label, "when": when, "on": on, "percent": percent}
