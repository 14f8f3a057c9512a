"""Rules a store change must keep, whoever makes it (the admin pages, the API).
Flask-free; the caller's transaction commits."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from walletpass import errors
from walletpass.tenancy.models import ApiKey, Store

# Stores with coordinates become the pass's locations, and Wallet uses at most ten.
MAX_LOCATED = 10


def check_location_limit(
    session: Session, *, store_id: int | None, has_location: bool, field: str = "latitude"
) -> None:
    """At most ten stores with coordinates. Stores without them (for the till only) are
    not limited.

    :param store_id: the store being changed (not counted), or None for a new one.
    :raise errors.ValidationFailed: an eleventh store with coordinates.
    """
    if not has_location:
        return
    query = select(func.count(Store.id)).where(
        Store.latitude.is_not(None), Store.longitude.is_not(None)
    )
    if store_id is not None:
        query = query.where(Store.id != store_id)
    if (session.scalar(query) or 0) >= MAX_LOCATED:
        detail = (
            f"At most {MAX_LOCATED} stores can have coordinates: Wallet shows a pass near "
            f"{MAX_LOCATED} locations at most. Clear another store's coordinates first."
        )
        raise errors.ValidationFailed(detail, errors=[{"field": field, "message": detail}])


def delete_store(session: Session, store: Store) -> None:
    """Delete ``store``; scans and staff that named it keep their history without it.

    :raise errors.Conflict: the store still has live API keys. Deleting would set their
        store to NULL (the foreign key's ON DELETE), and a till key without a store acts
        for the whole merchant: they must be revoked first.
    """
    live = session.scalar(
        select(func.count())
        .select_from(ApiKey)
        .where(ApiKey.store_id == store.id, ApiKey.revoked_at.is_(None))
    )
    if live:
        raise errors.Conflict(
            f"store {store.code} still has {live} live API key(s); revoke them first"
        )
    session.delete(store)
