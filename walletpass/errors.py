"""Domain errors. Each carries an HTTP status and a stable problem code.

The domain raises these; the API renders them as RFC 9457 problem+json with
``type = /problems/<code>`` (stable, documented in the OpenAPI document), the admin and
till pages show ``detail``. No Flask here.
"""

from __future__ import annotations

from typing import Any


class WalletpassError(Exception):
    status = 400
    code = "bad-request"
    title = "Bad request"

    def __init__(
        self, detail: str | None = None, *, errors: list[dict[str, Any]] | None = None, **extra: Any
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.errors = errors or []
        self.extra = extra


def _error(name: str, status: int, code: str, title: str) -> type[WalletpassError]:
    return type(name, (WalletpassError,), {"status": status, "code": code, "title": title})


ValidationFailed = _error("ValidationFailed", 422, "validation-error", "The request is not valid")
NotFound = _error("NotFound", 404, "not-found", "No such resource")
Unauthenticated = _error("Unauthenticated", 401, "unauthenticated", "A valid API key is required")
Forbidden = _error("Forbidden", 403, "insufficient-scope", "This API key may not do that")
Conflict = _error("Conflict", 409, "conflict", "The resource already exists")
IdempotencyKeyReused = _error(
    "IdempotencyKeyReused",
    422,
    "idempotency-key-reused",
    "This Idempotency-Key was used with a different request",
)
RateLimited = _error("RateLimited", 429, "rate-limited", "Too many requests")
UnknownCode = _error("UnknownCode", 404, "unknown-code", "No pass or coupon has this code")
PassInactive = _error("PassInactive", 409, "pass-inactive", "This pass is voided or expired")
InsufficientPoints = _error("InsufficientPoints", 409, "insufficient-points", "Not enough points")
RewardUnavailable = _error(
    "RewardUnavailable", 409, "reward-unavailable", "This reward cannot be redeemed now"
)
UnknownReward = _error("UnknownReward", 404, "unknown-reward", "No such reward in this program")
CouponExpired = _error("CouponExpired", 409, "coupon-expired", "This coupon is not valid now")
CouponUsedUp = _error("CouponUsedUp", 409, "coupon-used", "This coupon has been used")
OfferCapReached = _error(
    "OfferCapReached", 409, "offer-cap-reached", "This offer has been fully redeemed"
)
ActionNotAllowed = _error(
    "ActionNotAllowed", 422, "action-not-allowed", "This action does not apply to this pass"
)
DuplicateReceipt = _error(
    "DuplicateReceipt",
    409,
    "duplicate-receipt",
    "This receipt was already recorded with different content",
)
UnknownReceipt = _error(
    "UnknownReceipt", 404, "unknown-receipt", "No purchase was recorded with this receipt id"
)
UndoExpired = _error("UndoExpired", 409, "undo-expired", "This scan can no longer be undone")


def all_problem_types() -> list[type[WalletpassError]]:
    """Every problem type, for the OpenAPI document and the /problems pages."""
    return [WalletpassError, *WalletpassError.__subclasses__()]
