"""What the till's script writes on the page, translated on the server for the page's language.

till.js builds its messages (a purchase recorded, a refund, the undo bar, an error) from
the answers of the JSON endpoints; the page carries these texts as a JSON block, already
in the staff's language, and the script fills in their ``%(name)s`` placeholders. A text
that depends on a count is given in the forms a plural takes in the page's language,
keyed by the CLDR category (``one``, ``other``) that ``Intl.PluralRules`` names in the
browser: the languages we speak (en, el, zh) have no plural rule gettext and CLDR split
differently.

The errors the endpoints answer carry a ``message`` in the page's language too, chosen by
the problem's stable code (the English ``detail`` stays, for logs and support): what went
wrong, in words a cashier can act on.
"""

from __future__ import annotations

from flask_babel import get_translations
from flask_babel import gettext as _

from walletpass.i18n.catalogues import N_


def script_texts() -> dict[str, object]:
    """Every text till.js shows, keyed by the name the script uses."""
    # The catalogue's plural forms as they are (Flask-Babel's ngettext would fill in
    # %(num)s here): for n = 1 and n = 2, CLDR's "one" and "other" in en, el and zh.
    t = get_translations()
    return {
        "member": _("Member"),
        "tier_discount": _("%(tier)s (%(percent)s%% off)"),
        "valid_until": _("valid until %(date)s"),
        "uses_left": _forms(
            t.ungettext("%(num)s use left", "%(num)s uses left", 1),
            t.ungettext("%(num)s use left", "%(num)s uses left", 2),
        ),
        "not_usable": _("Not usable now (%(status)s)"),
        "coupon_until": _("until %(date)s"),
        "points": _forms(
            t.ungettext("%(num)s point", "%(num)s points", 1),
            t.ungettext("%(num)s point", "%(num)s points", 2),
        ),
        "stamps": _forms(
            t.ungettext("%(num)s stamp", "%(num)s stamps", 1),
            t.ungettext("%(num)s stamp", "%(num)s stamps", 2),
        ),
        "points_label": _forms(
            t.ungettext("point", "points", 1),
            t.ungettext("point", "points", 2),
        ),
        "stamps_label": _forms(
            t.ungettext("stamp", "stamps", 1),
            t.ungettext("stamp", "stamps", 2),
        ),
        "reached": _("reached: %(rewards)s"),
        "reward_cost_points": _("%(name)s (%(cost)s pts)"),
        "reward_cost_stamps": _("%(name)s (%(cost)s stamps)"),
        "redeem": _("Redeem"),
        "refund": _("Refund"),
        "error_status": _("Error %(status)s"),
        "no_connection": _("No connection. Try again: it will not be counted twice."),
        "no_connection_undo": _("No connection. Try undo again."),
        "enter_amount": _("Enter an amount like %(example)s"),
        "enter_points": _("Enter the points to pay with as a whole number"),
        "enter_receipt": _("Enter the receipt number of the purchase to refund"),
        "purchase_done": _("Purchase of %(amount)s recorded."),
        "refund_done": _("Refund of %(amount)s on receipt %(receipt)s recorded."),
        "already_counted": _("Already counted: nothing changed."),
        "points_paid": _("Points paid %(amount)s of it."),
        "changes": _("Change: %(changes)s."),
        "balance": _("Balance: %(balance)s."),
        "stamp_done": _("Stamp added. Now %(balance)s."),
        "reward_done": _("Reward redeemed: %(name)s."),
        "reward_code": _("Redemption code: %(code)s."),
        "coupon_done": _("Coupon redeemed: %(title)s."),
        "membership_pending": _(
            "Membership unpaid: no member benefits until it is paid (%(price)s)."
        ),
        "membership_lapsed": _(
            "Membership lapsed on %(date)s: no member benefits until it is renewed."
        ),
        "membership_active": _("Membership valid until %(date)s."),
        "membership_ends_soon": _("Membership valid until %(date)s (ends soon)."),
        "benefits": _("Benefits: %(benefits)s"),
        "record_payment": _("Record payment of %(price)s"),
        "renew": _("Renew membership"),
        "payment_done": _("Payment of %(amount)s recorded: valid until %(date)s."),
        "renewed": _("Renewed: valid until %(date)s."),
        "already_recorded": _("Already recorded: nothing changed."),
        "undo_purchase": _("purchase of %(amount)s"),
        "undo_refund": _("refund of %(amount)s"),
        "undo_stamp": _("stamp added"),
        "undo_reward": _("reward redeemed"),
        "undo_coupon": _("coupon redeemed"),
        "undo_bar": _("Last scan at %(time)s: %(what)s (undo until %(until)s)"),
        "undone": _("Undone at %(time)s."),
        "camera_unavailable": _(
            "Camera not available (%(reason)s). Type the code or use the scanner."
        ),
    }


def _forms(one: str, other: str) -> dict[str, str]:
    return {"one": one, "other": other}


# The till's own words for each problem a scan can meet, by the problem's code. The
# domain's English detail names fields and ids for the API's readers; a cashier needs
# what happened and what to do.
PROBLEMS = {
    "unknown-code": N_("No card or coupon has this code. Check it and scan again."),
    "pass-inactive": N_("This card or coupon is no longer valid."),
    "insufficient-points": N_("Not enough points."),
    "reward-unavailable": N_("This reward cannot be redeemed now."),
    "unknown-reward": N_("This reward is not in the card's program."),
    "coupon-expired": N_("This coupon is not valid now."),
    "coupon-used": N_("This coupon has been used."),
    "offer-cap-reached": N_("This offer has been fully redeemed."),
    "action-not-allowed": N_("This cannot be done with this card."),
    "duplicate-receipt": N_("This receipt number was already recorded with other content."),
    "unknown-receipt": N_("No purchase was recorded with this receipt number."),
    "undo-expired": N_("This scan can no longer be undone."),
    "membership-inactive": N_("The membership is not paid up: record its payment first."),
    "validation-error": N_("Check what was entered: %(detail)s"),
    "not-found": N_("Not found."),
    "conflict": N_("This was already recorded."),
    "rate-limited": N_("Too many requests: wait a moment and try again."),
    "unauthenticated": N_("Your session has ended; sign in again."),
    "forbidden": N_("This account may not use the till."),
    "bad-request": N_("The request was not understood: reload the page."),
}


def problem_message(code: str, detail: str) -> str:
    """The staff's words for a problem, in the page's language."""
    text = PROBLEMS.get(code)
    if text is None:
        return _("Something went wrong (%(code)s).", code=code)
    return _(text, detail=detail) if "%(detail)s" in text else _(text)
