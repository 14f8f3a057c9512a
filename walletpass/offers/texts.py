"""An offer's title, description and terms in the merchant's other languages.

Only the cards that show the offer to a reader of a changed language are marked changed:
its coupons, and the program's loyalty cards while the offer is their overlay.
Flask-free; the caller's transaction commits.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from walletpass.config import Settings
from walletpass.i18n.merchant_texts import changed_languages, replaced
from walletpass.loyalty.texts import mark_read_in
from walletpass.offers.models import Coupon, Offer
from walletpass.passes.models import Pass


def _showing(offer: Offer) -> ColumnElement[bool]:
    shown: ColumnElement[bool] = Pass.coupon_id.in_(
        select(Coupon.id).where(Coupon.offer_id == offer.id)
    )
    if offer.overlay and offer.program_id is not None:
        # An overlay shows on the program's members' cards, not on its coupons.
        shown = shown | ((Pass.program_id == offer.program_id) & Pass.coupon_id.is_(None))
    return shown


def set_offer_texts(
    session: Session, settings: Settings, offer: Offer, changes: Mapping[str, Mapping[str, str]]
) -> set[str]:
    """Replace the offer's texts in each language of ``changes`` (an empty one: back to
    the default texts); returns the languages that changed, whose readers' cards showing
    the offer are marked changed."""
    before = offer.translations or {}
    offer.translations = replaced(before, changes)
    langs = changed_languages(before, offer.translations)
    if langs:
        session.flush()
        mark_read_in(session, settings, _showing(offer), offer.merchant_id, langs)
    return langs
