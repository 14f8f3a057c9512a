"""Finding and upserting members by the CRM's keys (external id, email).

Shared by the inbound ``member.upsert`` webhook and the CSV import, so a member created
one way is found the other way. New members go through ``loyalty.enrolment.enroll`` (the
same path as the join page and the API: pass, welcome bonus, ``member.created``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from walletpass import errors
from walletpass.config import Settings
from walletpass.loyalty import enrolment, ledger
from walletpass.loyalty.models import Member, Program, normalize_email, stored_phone
from walletpass.passes.changes import mark_changed
from walletpass.passes.models import Pass

# Sentinel for "not sent": None is a real value (it clears phone and birthday).
UNSET: Any = object()


class UnknownMember(errors.ValidationFailed):
    code = "unknown-member"
    title = "No member matches this reference"


class AmbiguousMember(errors.ValidationFailed):
    code = "ambiguous-member"
    title = "Several members match this reference"


@dataclass
class MemberFields:
    """What a CRM or a CSV row says about a member; UNSET fields are left alone."""

    external_id: str | None = None
    email: str | None = None
    name: Any = UNSET
    phone: Any = UNSET
    birthday: Any = UNSET  # date | None
    language: Any = UNSET
    marketing_consent: Any = UNSET
    # Merged into Member.tags; a None value removes the tag.
    tags: dict[str, Any] = field(default_factory=dict)


@dataclass
class UpsertResult:
    member: Member
    created: bool
    changed: bool
    pass_row: Pass | None = None


def _by_external_id(session: Session, external_id: str) -> Member | None:
    return session.scalars(select(Member).where(Member.external_id == external_id)).one_or_none()


def _by_email(session: Session, email: str, program: Program | None, where: str) -> Member | None:
    query = select(Member).where(Member.email == normalize_email(email))
    if program is not None:
        query = query.where(Member.program_id == program.id)
    found = list(session.scalars(query.order_by(Member.id).limit(2)))
    if len(found) > 1:
        raise AmbiguousMember(
            f"{email!r} belongs to members of several programs; name the program or use "
            "external_id",
            errors=[{"field": where, "message": "ambiguous email"}],
        )
    return found[0] if found else None


def find_member(
    session: Session,
    *,
    member_id: int | None = None,
    external_id: str | None = None,
    email: str | None = None,
    program: Program | None = None,
    where: str = "member",
) -> Member | None:
    """The member for the first key given, in the order id, external id, email.

    The session must be bound to the merchant: every lookup is then tenant-scoped.
    """
    if member_id is not None:
        return session.scalars(select(Member).where(Member.id == member_id)).one_or_none()
    if external_id:
        return _by_external_id(session, external_id)
    if email:
        return _by_email(session, email, program, where)
    return None


def require_member(session: Session, ref: dict[str, Any], where: str = "data.member") -> Member:
    """Resolve a ``{"id"|"external_id"|"email": ...}`` reference or raise a 422."""
    member = find_member(
        session,
        member_id=ref.get("id"),
        external_id=ref.get("external_id"),
        email=ref.get("email"),
        where=where,
    )
    if member is None:
        shown = ", ".join(f"{k}={v!r}" for k, v in ref.items())
        raise UnknownMember(
            f"no member with {shown}", errors=[{"field": where, "message": "no such member"}]
        )
    return member


def merge_tags(current: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    merged = dict(current or {})
    for name, value in changes.items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    return merged


def upsert_member(
    session: Session,
    settings: Settings,
    fields: MemberFields,
    *,
    program: Program | None,
    actor: ledger.Actor,
    source: str | None,
    where: str = "data",
) -> UpsertResult:
    """Update the member the fields identify, or enroll a new one in ``program``.

    :raise errors.ValidationFailed: neither key given, or no program to enroll into.
    :raise errors.Conflict: the email belongs to a member with another external id.
    """
    if not fields.external_id and not fields.email:
        raise errors.ValidationFailed(
            "a member needs an external_id or an email",
            errors=[{"field": f"{where}.external_id", "message": "external_id or email needed"}],
        )
    member = _by_external_id(session, fields.external_id) if fields.external_id else None
    if member is None and fields.email:
        member = _by_email(session, fields.email, program, f"{where}.email")
        _check_external_id(member, fields)
    if member is None:
        if program is None:
            raise errors.ValidationFailed(
                "no program to enroll the new member into",
                errors=[{"field": f"{where}.program", "message": "required to create a member"}],
            )
        member, pass_row, created = enrolment.enroll(
            session,
            settings,
            program,
            name=fields.name if isinstance(fields.name, str) else "",
            email=fields.email,
            phone=fields.phone if fields.phone is not UNSET else None,
            birthday=fields.birthday if isinstance(fields.birthday, date) else None,
            language=fields.language if isinstance(fields.language, str) else "en",
            marketing_consent=bool(fields.marketing_consent)
            if fields.marketing_consent is not UNSET
            else False,
            external_id=fields.external_id,
            source=source,
            actor=actor,
        )
        if created:
            if fields.tags:
                member.tags = merge_tags(member.tags, fields.tags)
            return UpsertResult(member, created=True, changed=True, pass_row=pass_row)
        # Enrolled a moment ago by another event, the API or the join page (or known by
        # its phone number): this event updates that member, as if it had been found.
        _check_external_id(member, fields)
    # Serialise with every other change to this member (scans, other CRM events).
    member = ledger.lock_member(session, member.id)
    try:
        # A savepoint: an email or phone another member of the program has is refused by
        # the unique keys, answered as a conflict, and the event's other work survives.
        with session.begin_nested():
            changed = _apply(member, fields)
            session.flush()
    except IntegrityError:
        raise errors.Conflict(
            "another member already has this member's new external_id, email or phone"
        ) from None
    if changed:
        # The name shows on the pass; a CRM fix is housekeeping, not worth a notification.
        mark_changed(session, settings, member_id=member.id, notify=False)
    return UpsertResult(member, created=False, changed=changed)


def _check_external_id(member: Member | None, fields: MemberFields) -> None:
    """The member found by email must not be the CRM's record of someone else."""
    if (
        member is not None
        and fields.external_id
        and member.external_id
        and member.external_id != fields.external_id
    ):
        raise errors.Conflict(
            f"{fields.email!r} belongs to the member with external_id "
            f"{member.external_id!r}, not {fields.external_id!r}"
        )


def _apply(member: Member, fields: MemberFields) -> bool:
    updates: dict[str, Any] = {}
    if fields.external_id and member.external_id != fields.external_id:
        updates["external_id"] = fields.external_id
    if fields.email and member.email != normalize_email(fields.email):
        updates["email"] = normalize_email(fields.email)
    for name in ("name", "phone", "birthday", "language", "marketing_consent"):
        value = getattr(fields, name)
        if value is UNSET:
            continue
        if name == "name" and value is None:
            value = ""
        if name == "phone":
            value = stored_phone(value)  # as the column stores it, or it always "changes"
        if getattr(member, name) != value:
            updates[name] = value
    if fields.tags:
        tags = merge_tags(member.tags, fields.tags)
        if tags != (member.tags or {}):
            # A new dict: the JSON column only notices reassignment, not in-place edits.
            updates["tags"] = tags
    for name, value in updates.items():
        setattr(member, name, value)
    return bool(updates)
