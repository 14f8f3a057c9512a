"""/members: enrolment with pass links, profile changes, and the ledger (transactions)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from walletpass import errors
from walletpass.api.framework import Context, Routes, paginate
from walletpass.api.resources_schemas import (
    AdjustTx,
    CardEmailOut,
    LedgerEntryOut,
    LedgerPage,
    MemberCreated,
    MemberDetail,
    MemberIn,
    MemberPage,
    MemberPatch,
    MemberQuery,
    MembershipPaymentTx,
    PageQuery,
    PassLinks,
    PurchaseTx,
    RedeemRewardTx,
    RefundTx,
    StampTx,
    TransactionIn,
    TransactionOut,
)
from walletpass.api.scans import actor_for
from walletpass.config import Settings
from walletpass.loyalty import earning, enrolment, ledger, memberships, purchases, rewards
from walletpass.loyalty.models import LedgerEntry, Member, Program, ProgramKind
from walletpass.mail import services as mail
from walletpass.passes.changes import mark_changed
from walletpass.passes.models import Pass, PassStatus
from walletpass.passes.services import set_status
from walletpass.scan.requests import balance_of, membership_out

READERS = ("till", "crm")
routes = Routes()
TX_PROBLEMS = (
    errors.InsufficientPoints,
    errors.RewardUnavailable,
    errors.UnknownReward,
    errors.ActionNotAllowed,
    errors.DuplicateReceipt,
    errors.UnknownReceipt,
    errors.Conflict,
    errors.MembershipInactive,
)


def pass_links(settings: Settings, pass_row: Pass) -> PassLinks:
    base = settings.public_url.rstrip("/")
    return PassLinks(
        serial=pass_row.serial,
        status=pass_row.status,
        landing_url=f"{base}/p/{pass_row.serial}",
        apple_pkpass_url=f"{base}/p/{pass_row.serial}.pkpass",
        google_save_url=f"{base}/p/{pass_row.serial}/google" if settings.google_enabled else None,
    )


def member_details(
    session: Session, settings: Settings, members: Iterable[Member]
) -> list[MemberDetail]:
    """Members with their program and card links, in three queries for a whole page."""
    members = list(members)
    if not members:
        return []
    programs = {
        p.id: p
        for p in session.scalars(
            select(Program).where(Program.id.in_({m.program_id for m in members}))
        )
    }
    passes: dict[int, list[Pass]] = {}
    for pass_row in session.scalars(
        select(Pass)
        .where(Pass.member_id.in_([m.id for m in members]), Pass.coupon_id.is_(None))
        .order_by(Pass.id)
    ):
        assert pass_row.member_id is not None
        passes.setdefault(pass_row.member_id, []).append(pass_row)
    out = []
    for member in members:
        program = programs[member.program_id]
        has_points = program.kind in (ProgramKind.POINTS, ProgramKind.TIERS)
        out.append(
            MemberDetail(
                id=member.id,
                program_id=program.id,
                program=program.slug,
                program_kind=program.kind,
                external_id=member.external_id,
                name=member.name,
                email=member.email,
                phone=member.phone,
                birthday=member.birthday,
                language=member.language,
                marketing_consent=member.marketing_consent,
                referral_code=member.referral_code,
                tags=member.tags or {},
                tier=member.tier,
                points=member.points_balance if has_points else None,
                stamps=member.stamps_balance if program.kind == ProgramKind.STAMPS else None,
                lifetime_spend=member.lifetime_spend,
                membership_valid_until=member.membership_valid_until,
                membership=membership_out(session, member, program)
                if program.kind == ProgramKind.MEMBERSHIP
                else None,
                last_activity_at=member.last_activity_at,
                created_at=member.created_at,
                passes=[pass_links(settings, p) for p in passes.get(member.id, [])],
            )
        )
    return out


def member_detail(session: Session, settings: Settings, member: Member) -> MemberDetail:
    return member_details(session, settings, [member])[0]


def get_member(session: Session, member_id: int) -> Member:
    member = session.get(Member, member_id)
    if member is None:
        raise errors.NotFound(f"no member {member_id}")
    return member


def _program_for(session: Session, body: MemberIn) -> Program:
    if body.program_id is not None:
        program = session.get(Program, body.program_id)
        field = "body.program_id"
    else:
        program = session.scalars(select(Program).where(Program.slug == body.program)).first()
        field = "body.program"
    if program is None:
        raise errors.ValidationFailed(
            "no such program", errors=[{"field": field, "message": "unknown program"}]
        )
    if not program.active:
        raise errors.ValidationFailed(
            "this program is archived", errors=[{"field": field, "message": "archived"}]
        )
    return program


def _entries(session: Session, ids: list[int]) -> list[LedgerEntryOut]:
    if not ids:
        return []
    rows = session.scalars(
        select(LedgerEntry).where(LedgerEntry.id.in_(ids)).order_by(LedgerEntry.id)
    )
    return [LedgerEntryOut.model_validate(e, from_attributes=True) for e in rows]


def _key(ctx: Context, kind: str, receipt_id: str | None) -> str:
    """The ledger's idempotency key: the receipt (as a scan would), else the request's
    Idempotency-Key (scoped to the API key), else a fresh one."""
    if receipt_id:
        return f"{kind}:{receipt_id}"
    if ctx.idempotency_key:
        return f"{kind}:api{ctx.api_key.id}:{ctx.idempotency_key}"
    return f"{kind}:{uuid.uuid4().hex}"


@routes.operation(
    "GET", "/members", scopes=READERS, query=MemberQuery, response=MemberPage, tag="members"
)
def list_members(ctx: Context) -> MemberPage:
    """List members (filter by program, email, external id or tier)."""
    q: MemberQuery = ctx.query
    stmt = select(Member)
    if q.program_id is not None:
        stmt = stmt.where(Member.program_id == q.program_id)
    if q.email is not None:
        stmt = stmt.where(Member.email == q.email.strip().lower())
    if q.external_id is not None:
        stmt = stmt.where(Member.external_id == q.external_id)
    if q.tier is not None:
        stmt = stmt.where(Member.tier == q.tier)
    rows, cursor = paginate(ctx.session, stmt, Member.id, limit=q.limit, cursor=q.cursor)
    return MemberPage(data=member_details(ctx.session, ctx.settings, rows), next_cursor=cursor)


@routes.operation(
    "POST",
    "/members",
    scopes=READERS,
    body=MemberIn,
    response=MemberCreated,
    status=201,
    tag="members",
    problems=(errors.Conflict,),
)
def create_member(ctx: Context) -> MemberCreated:
    """Enrol a customer and get the links to add the card to Apple or Google Wallet.

    The same external_id, or the same email or phone number in the program, returns the
    existing member with ``created: false``, also when both requests arrive at once. A
    phone number of another member (one with another email) is a conflict.
    """
    body: MemberIn = ctx.body
    program = _program_for(ctx.session, body)
    actor = ledger.Actor("api_key", str(ctx.api_key.id), ctx.api_key.store_id)
    member, _pass, created = enrolment.enroll(
        ctx.session,
        ctx.settings,
        program,
        name=body.name,
        email=body.email,
        phone=body.phone,
        birthday=body.birthday,
        language=body.language,
        marketing_consent=body.marketing_consent,
        external_id=body.external_id,
        referral_code=body.referral_code,
        source=body.source or f"api:{ctx.api_key.name or ctx.api_key.id}",
        actor=actor,
    )
    if member.program_id != program.id:
        raise errors.Conflict(
            f"external_id {body.external_id!r} belongs to member {member.id} of another program"
        )
    if created:
        # The card link by email, for a member with an address, when SMTP is configured.
        mail.welcome(ctx.session, ctx.settings, member)
    detail = member_detail(ctx.session, ctx.settings, member)
    return MemberCreated(**detail.model_dump(), created=created)


@routes.operation(
    "GET", "/members/<int:member_id>", scopes=READERS, response=MemberDetail, tag="members"
)
def get_member_op(ctx: Context) -> MemberDetail:
    """Get a member with balance, tier and card links."""
    return member_detail(ctx.session, ctx.settings, get_member(ctx.session, ctx.path["member_id"]))


@routes.operation(
    "PATCH",
    "/members/<int:member_id>",
    scopes=("crm",),
    body=MemberPatch,
    response=MemberDetail,
    tag="members",
    problems=(errors.Conflict,),
)
def update_member(ctx: Context) -> MemberDetail:
    """Change a member's profile (fields left out or null are unchanged)."""
    member = get_member(ctx.session, ctx.path["member_id"])
    changes = {k: v for k, v in ctx.body.model_dump().items() if v is not None}
    if "email" in changes:
        changes["email"] = changes["email"].strip().lower()
    shown = ("name", "language")
    refresh = any(changes.get(k, getattr(member, k)) != getattr(member, k) for k in shown)
    external_id = changes.get("external_id")
    if external_id is not None and external_id != member.external_id:
        taken = select(Member.id).where(Member.external_id == external_id)
        if ctx.session.scalar(taken) is not None:
            raise errors.Conflict(f"another member has external_id {external_id!r}")
    try:
        # Changed inside the savepoint: begin_nested() flushes what is pending first.
        with ctx.session.begin_nested():
            for name, value in changes.items():
                setattr(member, name, value)
            ctx.session.flush()
    except IntegrityError:
        # The unique keys: the merchant's external ids, the program's emails and phones.
        keys = [f"{k} {changes[k]!r}" for k in ("external_id", "email", "phone") if k in changes]
        raise errors.Conflict(f"another member has {' or '.join(keys)}") from None
    if refresh:
        mark_changed(ctx.session, ctx.settings, member_id=member.id, notify=False)
    return member_detail(ctx.session, ctx.settings, member)


@routes.operation(
    "POST",
    "/members/<int:member_id>/card-email",
    scopes=READERS,
    response=CardEmailOut,
    status=202,
    tag="members",
    problems=(mail.NoEmailAddress, mail.MailNotConfigured),
)
def send_card_email(ctx: Context) -> CardEmailOut:
    """Email the member the link to their card and its QR code ("send my card again").

    In the member's language, through the outbox: queued now, sent and retried in the
    background (``status`` tells). One email per Idempotency-Key; a request while an
    email to the member is still waiting returns that email rather than a second one.
    A member without an email address is a 409 ``no-email-address``; an installation
    without an SMTP server (WALLETPASS_SMTP_URL) a 409 ``mail-not-configured``.
    """
    member = get_member(ctx.session, ctx.path["member_id"])
    key = None
    if ctx.idempotency_key:
        # Hashed: the header may be 200 characters, and the email's key is no longer.
        digest = hashlib.sha256(ctx.idempotency_key.encode()).hexdigest()
        key = f"api{ctx.api_key.id}:{digest}"
    row = mail.request_card_email(
        ctx.session,
        ctx.settings,
        member,
        source=f"api:{ctx.api_key.id}",
        request_key=key,
    )
    return CardEmailOut.model_validate(row, from_attributes=True)


@routes.operation("DELETE", "/members/<int:member_id>", scopes=("crm",), status=204, tag="members")
def delete_member(ctx: Context) -> None:
    """Erase a member's personal data and void their cards (the ledger is kept)."""
    member = get_member(ctx.session, ctx.path["member_id"])
    for pass_row in ctx.session.scalars(select(Pass).where(Pass.member_id == member.id)):
        set_status(ctx.session, pass_row, PassStatus.VOIDED, ctx.settings)
    member.name = ""
    member.email = None
    mail.forget_member(ctx.session, member.id)
    member.phone = None
    member.birthday = None
    member.external_id = None
    member.marketing_consent = False
    member.tags = {}
    return None


@routes.operation(
    "GET",
    "/members/<int:member_id>/transactions",
    scopes=READERS,
    query=PageQuery,
    response=LedgerPage,
    tag="transactions",
)
def list_transactions(ctx: Context) -> LedgerPage:
    """A member's ledger entries, oldest first."""
    member = get_member(ctx.session, ctx.path["member_id"])
    rows, cursor = paginate(
        ctx.session,
        select(LedgerEntry).where(LedgerEntry.member_id == member.id),
        LedgerEntry.id,
        limit=ctx.query.limit,
        cursor=ctx.query.cursor,
    )
    return LedgerPage(
        data=[LedgerEntryOut.model_validate(e, from_attributes=True) for e in rows],
        next_cursor=cursor,
    )


@routes.operation(
    "POST",
    "/members/<int:member_id>/transactions",
    scopes=READERS,
    body=TransactionIn,
    response=TransactionOut,
    status=201,
    tag="transactions",
    problems=TX_PROBLEMS,
)
def create_transaction(ctx: Context) -> TransactionOut:
    """Record a purchase by receipt, a refund, an adjustment, stamps, a reward or a
    membership payment.

    A purchase or refund retried with the same receipt (and refund) id counts once, and so
    does a membership payment with the same receipt id or Idempotency-Key. A paid
    membership is pending from joining until its first payment is recorded here (or at
    the till, or by the CRM's ``membership.payment`` event): the payment must be the
    program's price, and activates the card for validity_months from now; a payment
    before the end extends it from the end, one after it lapsed starts from the payment.
    A pending or lapsed member's rewards are refused (``membership-inactive``).
    """
    tx = ctx.body.root
    member = get_member(ctx.session, ctx.path["member_id"])
    store = getattr(tx, "store", None)
    actor = actor_for(ctx.session, ctx.api_key, store)
    s, settings = ctx.session, ctx.settings
    if isinstance(tx, PurchaseTx):
        change = purchases.record_purchase(
            s,
            settings,
            member,
            amount=tx.amount,
            receipt_id=tx.receipt_id,
            actor=actor,
            currency=tx.currency,
            lines=[earning.Line(line.amount, line.category) for line in tx.lines]
            if tx.lines
            else None,
            redeem_points=tx.redeem_points,
        )
    elif isinstance(tx, RefundTx):
        change = ledger.refund(
            s,
            settings,
            member,
            receipt_id=tx.receipt_id,
            amount=tx.amount,
            refund_id=tx.refund_id,
            actor=actor,
        )
    elif isinstance(tx, AdjustTx):
        if ctx.api_key.scope == "till":
            raise errors.Forbidden("a till key cannot adjust balances; use a crm key")
        change = ledger.adjust(
            s,
            settings,
            member,
            points=tx.points,
            reason=tx.reason,
            key=_key(ctx, "adjust", None),
            actor=actor,
        )
    elif isinstance(tx, StampTx):
        change = purchases.add_stamps(
            s,
            settings,
            member,
            count=tx.stamps,
            key=_key(ctx, "stamp", tx.receipt_id),
            actor=actor,
        )
    elif isinstance(tx, MembershipPaymentTx):
        if not tx.receipt_id and not ctx.idempotency_key:
            raise errors.ValidationFailed(
                "a membership payment needs a receipt_id or an Idempotency-Key, so that a "
                "retry renews once",
                errors=[{"field": "body.receipt_id", "message": "or send an Idempotency-Key"}],
            )
        change = memberships.renew_membership(
            s,
            settings,
            member,
            key=_key(ctx, "membership", tx.receipt_id),
            actor=actor,
            amount=tx.amount,
            currency=tx.currency,
            receipt_id=tx.receipt_id,
        )
    else:
        assert isinstance(tx, RedeemRewardTx)
        base = _key(ctx, "reward", tx.receipt_id)
        change = rewards.redeem_reward(
            s, settings, member, reward_id=tx.reward_id, key=f"{base}:{tx.reward_id}",
            actor=actor,
        )  # fmt: skip
    program = s.get(Program, member.program_id)
    return TransactionOut(
        member_id=member.id,
        type=tx.type,
        points_delta=change.points,
        stamps_delta=change.stamps,
        balance=balance_of(member, program),
        tier=member.tier,
        entries=_entries(s, change.entries),
        replayed=change.replayed,
        discount=change.discount,
        redemption_code=change.redemption_code,
        rewards_reached=change.rewards_reached,
    )
