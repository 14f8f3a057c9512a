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


# Classes, not type() calls, so that a checker sees them as types (an except clause, a
# subclass, an annotation); their order here is the order of all_problem_types().
class ValidationFailed(WalletpassError):
    status = 422
    code = "validation-error"
    title = "The request is not valid"


class NotFound(WalletpassError):
    status = 404
    code = "not-found"
    title = "No such resource"


class Unauthenticated(WalletpassError):
    status = 401
    code = "unauthenticated"
    title = "A valid API key is required"


class Forbidden(WalletpassError):
    status = 403
    code = "insufficient-scope"
    title = "This API key may not do that"


class Conflict(WalletpassError):
    status = 409
    code = "conflict"
    title = "The resource already exists"


class IdempotencyKeyReused(WalletpassError):
    status = 422
    code = "idempotency-key-reused"
    title = "This Idempotency-Key was used with a different request"


class RateLimited(WalletpassError):
    status = 429
    code = "rate-limited"
    title = "Too many requests"


class UnknownCode(WalletpassError):
    status = 404
    code = "unknown-code"
    title = "No pass or coupon has this code"


class PassInactive(WalletpassError):
    status = 409
    code = "pass-inactive"
    title = "This pass is voided or expired"


class InsufficientPoints(WalletpassError):
    status = 409
    code = "insufficient-points"
    title = "Not enough points"


class RewardUnavailable(WalletpassError):
    status = 409
    code = "reward-unavailable"
    title = "This reward cannot be redeemed now"


class UnknownReward(WalletpassError):
    status = 404
    code = "unknown-reward"
    title = "No such reward in this program"


class CouponExpired(WalletpassError):
    status = 409
    code = "coupon-expired"
    title = "This coupon is not valid now"


class CouponUsedUp(WalletpassError):
    status = 409
    code = "coupon-used"
    title = "This coupon has been used"


class OfferCapReached(WalletpassError):
    status = 409
    code = "offer-cap-reached"
    title = "This offer has been fully redeemed"


class ActionNotAllowed(WalletpassError):
    status = 422
    code = "action-not-allowed"
    title = "This action does not apply to this pass"


class DuplicateReceipt(WalletpassError):
    status = 409
    code = "duplicate-receipt"
    title = "This receipt was already recorded with different content"


class UnknownReceipt(WalletpassError):
    status = 404
    code = "unknown-receipt"
    title = "No purchase was recorded with this receipt id"


class UndoExpired(WalletpassError):
    status = 409
    code = "undo-expired"
    title = "This scan can no longer be undone"


class MembershipInactive(WalletpassError):
    status = 409
    code = "membership-inactive"
    title = "This membership is not paid up: record its payment first"


class CertificateRefused(WalletpassError):
    status = 422
    code = "certificate-refused"
    title = "The certificate cannot sign passes"


def all_problem_types() -> list[type[WalletpassError]]:
    """Every problem type, for the OpenAPI document and the /problems pages."""
    return [WalletpassError, *WalletpassError.__subclasses__()]
