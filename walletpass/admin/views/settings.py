"""Stores, API keys, the signing certificate and the Wallet log."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from walletpass import errors
from walletpass.admin import forms
from walletpass.admin.views.common import (
    bp,
    field_errors,
    merchant_tz,
    owned,
    runtime,
    settings,
    tx,
    user,
)
from walletpass.apple.models import AppleLog
from walletpass.apple.problems import WALLET
from walletpass.cards.locations import located_as, store_changed
from walletpass.certs import merchant as merchant_certs
from walletpass.passes.models import Pass
from walletpass.passes.signing import CertificateError
from walletpass.tenancy import stores as store_rules
from walletpass.tenancy.apikeys import create_api_key
from walletpass.tenancy.apikeys import revoke as revoke_api_key
from walletpass.tenancy.models import ApiKey, Role, Scope, Store
from walletpass.web.i18n import current_language

# --- stores -------------------------------------------------------------------------------


def _store(session: Session, store_id: int) -> Store:
    return owned(session, Store, store_id)


def _render_stores(
    session: Session,
    values: dict[str, Any],
    errors: list[dict[str, str]],
    editing: Store | None,
    status: int = 200,
) -> Any:
    rows = list(session.scalars(select(Store).order_by(Store.code)))
    return (
        render_template(
            "admin/stores.html",
            stores=rows,
            values=values,
            errors=field_errors(errors),
            error_list=errors,
            editing=editing,
            max_locations=store_rules.MAX_LOCATED,
            located=sum(1 for s in rows if s.latitude is not None),
        ),
        status,
    )


@bp.get("/stores")
def stores() -> Any:
    with tx() as session:
        editing = None
        edit_id = request.args.get("edit", type=int)
        values: dict[str, Any] = {}
        if edit_id:
            editing = _store(session, edit_id)
            values = {
                "code": editing.code,
                "name": editing.name,
                "address": editing.address or "",
                "latitude": "" if editing.latitude is None else editing.latitude,
                "longitude": "" if editing.longitude is None else editing.longitude,
            }
        return _render_stores(session, values, [], editing)


@bp.post("/stores")
@bp.post("/stores/<int:store_id>")
def store_save(store_id: int | None = None) -> Any:
    values, errs = forms.parse_store(request.form, current_language())
    with tx() as session:
        editing = _store(session, store_id) if store_id else None
        if not errs:
            clash = session.scalar(select(Store.id).where(Store.code == values["code"]))
            if clash is not None and clash != store_id:
                errs.append({"field": "code", "message": _("Another store has this code.")})
        if not errs:
            try:
                store_rules.check_location_limit(
                    session, store_id=store_id, has_location=values["latitude"] is not None
                )
            except errors.ValidationFailed:
                limit = _(
                    "At most %(max)s stores can have coordinates: Wallet shows a pass near "
                    "%(max)s locations at most. Clear another store's coordinates first.",
                    max=store_rules.MAX_LOCATED,
                )
                errs.append({"field": "latitude", "message": limit})
        if errs:
            session.rollback()
            return _render_stores(session, dict(request.form), errs, editing, status=422)
        before = located_as(editing)
        store = editing or Store(merchant_id=user().merchant_id)
        for key, value in values.items():
            setattr(store, key, value)
        session.add(store)
        store_changed(session, settings(), store.merchant_id, before, located_as(store))
    flash(_("Store %(code)s saved.", code=values["code"]), "ok")
    return redirect(url_for("admin.stores"))


@bp.post("/stores/<int:store_id>/delete")
def store_delete(store_id: int) -> Any:
    with tx() as session:
        store = _store(session, store_id)
        code, before = store.code, located_as(store)
        try:
            store_rules.delete_store(session, store)
        except errors.Conflict:
            session.rollback()
            flash(
                _(
                    "Store %(code)s still has live API keys: revoke them first (on the API "
                    "keys page).",
                    code=code,
                ),
                "error",
            )
            return redirect(url_for("admin.stores"))
        store_changed(session, settings(), store.merchant_id, before, None)
    flash(_("Store %(code)s deleted.", code=code), "ok")
    return redirect(url_for("admin.stores"))


# --- API keys -----------------------------------------------------------------------------


def _render_keys(session: Session, *, new_key: str | None = None, error: str | None = None) -> Any:
    keys = list(
        session.scalars(
            select(ApiKey).order_by(ApiKey.revoked_at.is_not(None), ApiKey.created_at.desc())
        )
    )
    stores_by_id = {s.id: s for s in session.scalars(select(Store).order_by(Store.code))}
    response = render_template(
        "admin/api_keys.html",
        keys=keys,
        stores=stores_by_id,
        scopes=[s.value for s in Scope],
        new_key=new_key,
        error=error,
        tz=merchant_tz(session),
    )
    return response


@bp.get("/api-keys")
def api_keys() -> Any:
    with tx() as session:
        return _render_keys(session)


@bp.post("/api-keys")
def api_key_create() -> Any:
    name = (request.form.get("name") or "").strip()[:200]
    scope = request.form.get("scope") or ""
    store_id = request.form.get("store_id", type=int)
    with tx() as session:
        if store_id is not None:
            _store(session, store_id)
        try:
            _key, plaintext = create_api_key(
                session, merchant_id=user().merchant_id, scope=scope, name=name, store_id=store_id
            )
        except ValueError:
            session.rollback()
            return _render_keys(session, error=_("Pick one of the scopes.")), 422
        body = _render_keys(session, new_key=plaintext)
    # The key is in this page only: never cache it, never show it again.
    return body, 201, {"Cache-Control": "no-store"}


@bp.post("/api-keys/<int:key_id>/revoke")
def api_key_revoke(key_id: int) -> Any:
    with tx() as session:
        key = session.get(ApiKey, key_id)
        if key is None or key.merchant_id != user().merchant_id:
            abort(404)
        revoke_api_key(session, key, runtime().api_key_cache)
        name = key.name or key.prefix
    lag = runtime().settings.api_key_cache_seconds
    if lag:
        done = _(
            "Key %(name)s revoked; requests using it are refused within %(seconds)s s.",
            name=name,
            seconds=lag,
        )
    else:
        done = _("Key %(name)s revoked; requests using it are refused from now on.", name=name)
    flash(done, "ok")
    return redirect(url_for("admin.api_keys"))


# --- signing certificate ------------------------------------------------------------------

# A Pass Type ID .p12 is a few kilobytes; anything far larger is not one.
MAX_P12_BYTES = 64 * 1024


def _render_certificate(session: Session, error: str | None = None, status: int = 200) -> Any:
    own = merchant_certs.active_certificate(session, user().merchant_id)
    return (
        render_template(
            "admin/certificate.html",
            own=own,
            installation_type=settings().pass_type_id,
            error=error,
            tz=merchant_tz(session),
        ),
        status,
    )


def _owner_only() -> None:
    # A shop's signing key decides whose name its customers' passes carry: the owner
    # replaces it, a marketer cannot (as on the Health page).
    if user().role != Role.OWNER:
        abort(403)


@bp.get("/certificate")
def certificate() -> Any:
    _owner_only()
    with tx() as session:
        return _render_certificate(session)


@bp.post("/certificate")
def certificate_upload() -> Any:
    _owner_only()
    upload = request.files.get("p12")
    data = upload.stream.read(MAX_P12_BYTES + 1) if upload is not None else b""
    password = request.form.get("password", "")
    with tx() as session:
        if not data:
            return _render_certificate(session, _("Choose the .p12 file to upload."), 422)
        if len(data) > MAX_P12_BYTES:
            return _render_certificate(session, _("That file is too large to be a .p12."), 422)
        try:
            row = merchant_certs.import_p12(
                session,
                settings(),
                user().merchant_id,
                data,
                password.encode("utf-8") or None,
                name=".p12",
            )
        except CertificateError as exc:
            session.rollback()
            # The reason is the import's own (English) text: it names values to check.
            reason = _("The certificate was not imported: %(reason)s", reason=str(exc))
            return _render_certificate(session, reason, 422)
        pass_type = row.pass_type_id
    flash(_("Your new passes are now signed with %(type)s.", type=pass_type), "ok")
    return redirect(url_for("admin.certificate"))


@bp.post("/certificate/remove")
def certificate_remove() -> Any:
    _owner_only()
    with tx() as session:
        removed = merchant_certs.remove(session, user().merchant_id)
    if removed:
        flash(_("Your new passes are signed with the platform's certificate again."), "ok")
    return redirect(url_for("admin.certificate"))


# --- Wallet log ---------------------------------------------------------------------------


@bp.get("/wallet-logs")
def wallet_logs() -> Any:
    """What Apple Wallet reported to /apple/v1/log, newest first.

    The log endpoint is unauthenticated and the rows are not tenant rows, so a merchant
    sees the messages about its own passes plus those naming no pass (service-wide ones).
    """
    with tx() as session:
        own_serials = select(Pass.serial).where(Pass.merchant_id == user().merchant_id)
        rows = list(
            session.scalars(
                select(AppleLog)
                .where(
                    AppleLog.source == WALLET,
                    or_(AppleLog.serial.is_(None), AppleLog.serial.in_(own_serials)),
                )
                .order_by(AppleLog.created_at.desc(), AppleLog.id.desc())
                .limit(300)
            )
        )
        tz = merchant_tz(session)
    return render_template("admin/wallet_logs.html", logs=rows, tz=tz)
