"""/till: staff sign in, scan a pass (camera, USB scanner or typed code), act on it.

The page is static HTML plus till.js; it talks to the JSON endpoints below with the
session cookie and the CSRF token in ``X-CSRF-Token``. The endpoints take, log and
answer a scan as ``POST /api/v1/scans`` does (:mod:`walletpass.scan.requests`), as the
signed-in staff user, in a transaction scoped to the user's merchant. Their times are
the shop's (``Merchant.timezone``), and a scan's answer adds when it was made and until
when it can be undone, for the page's undo bar, and a card's recent purchases, for its
refund control. A refund and a purchase paid partly with points are scans like any other
(``refund`` with ``receipt_id`` and ``amount``; ``purchase`` with ``redeem_points``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Response,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException

from walletpass import errors
from walletpass.loyalty.ledger import Actor
from walletpass.loyalty.models import Member
from walletpass.mail import services as mail
from walletpass.offers.models import Coupon
from walletpass.passes.models import Pass
from walletpass.scan import history
from walletpass.scan import services as scan_services
from walletpass.scan.requests import (
    MembershipPaymentIn,
    ScanIn,
    pay_membership,
    record_refused,
    scan_out,
    scan_request,
    undo,
)
from walletpass.tenancy.models import Merchant, Store, User
from walletpass.web import auth
from walletpass.web.context import current_runtime

bp = Blueprint(
    "till",
    __name__,
    url_prefix="/till",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static/till",
)
bp.before_request(auth.check_csrf)
_Body = TypeVar("_Body", bound=BaseModel)
_Model = TypeVar("_Model", bound=BaseModel)


def _is_api() -> bool:
    return request.path.startswith("/till/api/")


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> Any:
    # The page's fetch() calls get JSON they can show; browsers get the normal page.
    if not _is_api():
        return exc
    code = {400: "bad-request", 401: "unauthenticated", 403: "forbidden", 404: "not-found"}
    return _json_error(code.get(exc.code or 500, "error"), exc.description or "", exc.code or 500)


def _json_error(code: str, detail: str, status: int) -> Response:
    response = jsonify({"error": code, "detail": detail})
    response.status_code = status
    return response


# ---------------------------------------------------------------- sign in / out


def _safe_next(target: str | None) -> str:
    return auth.safe_next(target, "/till", url_for("till.index"))


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    error = None
    email = (request.form.get("email") or "").strip()
    if request.method == "POST":
        user, error = auth.sign_in_from_form(auth.TILL_ROLES, "This account may not use the till.")
        if user is not None:
            return redirect(_safe_next(request.args.get("next")), code=303)
    html = render_template("till/login.html", error=error, email=email)
    return html


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    auth.logout_user()
    return redirect(url_for("till.login"), code=303)


@bp.get("/")
@auth.require_role(*auth.TILL_ROLES, login_endpoint="till.login")
def index() -> str:
    user = auth.current_user()
    assert user is not None
    with current_runtime().transaction(user.merchant_id) as db:
        merchant = db.get(Merchant, user.merchant_id)
        store = db.get(Store, user.store_id) if user.store_id else None
        names = (merchant.name if merchant else "", store.name if store else "")
        currency = merchant.currency if merchant else "EUR"
    return render_template(
        "till/index.html",
        user=user,
        merchant_name=names[0],
        store_name=names[1],
        currency=currency,
        card_emails=mail.off_reason(current_runtime().settings) is None,
    )


# ---------------------------------------------------------------- JSON endpoints


def _api_user(view: Callable[..., Any]) -> Callable[..., Any]:
    """Signed-in till staff only; a JSON 401/403 instead of the sign-in redirect."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        user = auth.current_user()
        if user is None:
            return _json_error("unauthenticated", "Your session has ended; sign in again.", 401)
        if user.role not in auth.TILL_ROLES:
            return _json_error("forbidden", "This account may not use the till.", 403)
        return view(user, *args, **kwargs)

    return wrapped


def _validated(model: type[_Body], body: dict[str, Any]) -> _Body | Response:
    """The request body as ``model``, or the JSON error naming its first bad field."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        return _json_error("validation-error", f"{field}: {first['msg']}", 422)


def _actor(user: User) -> Actor:
    return Actor("staff", str(user.id), user.store_id)


def _shop_zone(db: Session, user: User) -> ZoneInfo:
    merchant = db.get(Merchant, user.merchant_id)
    return ZoneInfo(merchant.timezone if merchant else "UTC")


def _in_zone(model: _Model, tz: ZoneInfo) -> _Model:
    """``model`` with every date-time in it, nested models and lists included, given in
    the shop's time zone: the same instants as the API's answer, whose UTC the page would
    otherwise show, so its dates and times are the counter's (a card valid until 02:00 UTC
    on 1 July is valid until 30 June in New York)."""
    return model.model_copy(
        update={name: _zoned(getattr(model, name), tz) for name in type(model).model_fields}
    )


def _zoned(value: Any, tz: ZoneInfo) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(tz)
    if isinstance(value, BaseModel):
        return _in_zone(value, tz)
    if isinstance(value, list):
        return [_zoned(item, tz) for item in value]
    return value


@bp.post("/api/scan")
@_api_user
def api_scan(user: User) -> Response:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return _json_error("bad-request", "Send a JSON object.", 400)
    body = dict(body)
    # The store is the signed-in user's, never the page's to choose.
    body.pop("store", None)
    coupon_id = body.pop("coupon_id", None)
    scan_in = _validated(ScanIn, body)
    if isinstance(scan_in, Response):
        return scan_in
    runtime = current_runtime()
    try:
        with runtime.transaction(user.merchant_id) as db:
            code = scan_in.code
            if scan_in.action == "redeem_coupon" and coupon_id is not None:
                # A member's coupon has its own pass: redeem through that pass's code.
                code = _coupon_code(db, scan_in.code, coupon_id)
            outcome = scan_services.apply_scan(
                db, runtime.settings, scan_request(scan_in, code), _actor(user), user_id=user.id
            )
            tz = _shop_zone(db, user)
            payload = _in_zone(scan_out(db, outcome), tz).model_dump(mode="json")
            # When, in the shop's time, for the page's undo bar.
            scanned_at = outcome.scan.created_at.astimezone(tz)
            payload["scanned_at"] = scanned_at.isoformat()
            payload["undo_until"] = (scanned_at + scan_services.UNDO_WINDOW).isoformat()
            if outcome.member is not None:
                # For the refund control: the receipts the customer may bring back.
                payload["recent_purchases"] = [
                    {
                        "receipt_id": p.receipt_id,
                        "amount": str(p.amount),
                        "at": p.at.astimezone(tz).isoformat(),
                    }
                    for p in history.recent_purchases(db, outcome.member.id)
                ]
    except errors.WalletpassError as exc:
        _record_failure(user, scan_in, exc)
        return _json_error(exc.code, exc.detail, exc.status)
    return jsonify(payload)


@bp.post("/api/membership-payment")
@_api_user
def api_membership_payment(user: User) -> Response:
    """A membership paid at the counter: activates a pending card or renews it."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return _json_error("bad-request", "Send a JSON object.", 400)
    pay_in = _validated(MembershipPaymentIn, body)
    if isinstance(pay_in, Response):
        return pay_in
    runtime = current_runtime()
    try:
        with runtime.transaction(user.merchant_id) as db:
            out = pay_membership(db, runtime.settings, pay_in, _actor(user))
            payload = _in_zone(out, _shop_zone(db, user)).model_dump(mode="json")
    except errors.WalletpassError as exc:
        return _json_error(exc.code, exc.detail, exc.status)
    return jsonify(payload)


@bp.post("/api/card-email")
@_api_user
def api_card_email(user: User) -> Response:
    """ "Send my card again": the scanned card's link by email (walletpass.mail)."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("code"), str):
        return _json_error("bad-request", "Send the card's code.", 400)
    key = body.get("request_key")
    runtime = current_runtime()
    try:
        with runtime.transaction(user.merchant_id) as db:
            card = scan_services.resolve(db, body["code"])
            member = db.get(Member, card.member_id) if card.member_id else None
            if member is None:
                raise errors.ActionNotAllowed("this code is not a member's card")
            row = mail.request_card_email(
                db,
                runtime.settings,
                member,
                source=f"staff:{user.id}",
                # The page's key for this tap: a retry after a lost answer is one email.
                request_key=f"till:{key[:100]}" if isinstance(key, str) and key else None,
            )
            payload = {"id": row.id, "status": row.status}
    except errors.WalletpassError as exc:
        return _json_error(exc.code, exc.detail, exc.status)
    return jsonify(payload)


def _coupon_code(db: Any, member_code: str, coupon_id: Any) -> str:
    try:
        coupon_id = int(coupon_id)
    except (TypeError, ValueError):
        raise errors.ValidationFailed("coupon_id must be a number") from None
    member_pass = scan_services.resolve(db, member_code)
    coupon = db.get(Coupon, coupon_id)
    if coupon is None or member_pass.member_id is None or coupon.member_id != member_pass.member_id:
        raise errors.NotFound("this coupon does not belong to the scanned card")
    code = db.scalars(select(Pass.barcode).where(Pass.coupon_id == coupon.id)).first()
    if code is None:
        raise errors.NotFound("this coupon has no pass to redeem")
    return str(code)


def _record_failure(user: User, scan_in: ScanIn, exc: errors.WalletpassError) -> None:
    # The failed scan's own transaction rolled back; log it in a fresh one, as the API
    # does, so staff anomaly reports see refused scans from the till page too.
    try:
        with current_runtime().transaction(user.merchant_id) as db:
            record_refused(
                db, scan_in, exc, _actor(user), merchant_id=user.merchant_id, user_id=user.id
            )
    except Exception:  # the staff member still needs to see the real error
        current_app.logger.exception("could not record a failed till scan")


@bp.post("/api/scans/<int:scan_id>/undo")
@_api_user
def api_undo(user: User, scan_id: int) -> Response:
    runtime = current_runtime()
    try:
        with runtime.transaction(user.merchant_id) as db:
            out = undo(db, runtime.settings, scan_id, _actor(user))
            undone_at = out.undone_at.astimezone(_shop_zone(db, user))
    except errors.WalletpassError as exc:
        return _json_error(exc.code, exc.detail, exc.status)
    # undone_at as isoformat() ("+00:00" in UTC), as the page has always had it (pydantic
    # says "Z"), in the shop's time zone.
    balance = out.balance.model_dump(mode="json")
    return jsonify({"scan_id": scan_id, "undone_at": undone_at.isoformat(), "balance": balance})
