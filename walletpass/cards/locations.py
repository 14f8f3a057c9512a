"""Where a card comes up on the lock screen: the merchant's stores with coordinates.

Wallet shows a pass's ``relevantText`` when the phone is near one of its ``locations``
(at most ten, which is why a merchant may give coordinates to ten stores at most:
walletpass.tenancy.stores). A store's coordinates added, moved or removed changes what
every card of the merchant carries, so the wallets are told to fetch them again.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from walletpass.config import Settings
from walletpass.i18n.catalogues import text
from walletpass.i18n.languages import DEFAULT
from walletpass.passes.changes import mark_changed
from walletpass.passes.models import Pass, PassStatus
from walletpass.passes.render import MAX_LOCATIONS
from walletpass.tenancy.models import Store


def store_locations(
    session: Session, merchant_id: int, lang: str = DEFAULT
) -> list[dict[str, Any]]:
    """The pass's ``locations``: the merchant's stores with both coordinates, oldest first,
    each with its lock-screen text in the card's language (``lang``)."""
    t = text(lang)
    rows = session.execute(
        select(Store.name, Store.latitude, Store.longitude)
        .where(
            Store.merchant_id == merchant_id,
            Store.latitude.is_not(None),
            Store.longitude.is_not(None),
        )
        .order_by(Store.id)
        .limit(MAX_LOCATIONS)
    ).all()
    return [
        {
            "latitude": lat,
            "longitude": lon,
            "relevantText": t.gettext("%(store)s is nearby", store=name),
        }
        for name, lat, lon in rows
    ]


def locations_changed(session: Session, settings: Settings, merchant_id: int) -> None:
    """A store with coordinates was added, moved, renamed or removed: every active card of
    the merchant carries the stores, so each is marked changed (a push; on Google the
    stores are the classes' merchantLocations, sent again with the next sync; no holder is
    notified of housekeeping)."""
    mark_changed(
        session,
        settings,
        passes=(Pass.merchant_id == merchant_id) & (Pass.status == PassStatus.ACTIVE.value),
        notify=False,
    )


Located = tuple[str, float, float] | None


def located_as(store: Store | None) -> Located:
    """What of ``store`` a card carries (None: nothing, it has no coordinates): compare
    before and after a change with :func:`store_changed`."""
    if store is None or store.latitude is None or store.longitude is None:
        return None
    return (store.name, store.latitude, store.longitude)


def store_changed(
    session: Session, settings: Settings, merchant_id: int, before: Located, after: Located
) -> None:
    """After a store is created, changed or deleted: the cards are told if what they carry
    of it changed (a store without coordinates, the till's only, changes no card)."""
    if before != after:
        locations_changed(session, settings, merchant_id)
