"""Request and response schemas of the /api/v1 resources (programs to stats).

Declared once: pydantic validates requests with them and the OpenAPI document is generated
from them. The till's scan schemas live in the scan domain (``walletpass.scan.requests``),
shared with the till page.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    Field,
    HttpUrl,
    RootModel,
    model_validator,
)

from walletpass.events import EVENT_TYPES
from walletpass.i18n.languages import PSEUDO, languages, normalise
from walletpass.i18n.merchant_texts import by_language
from walletpass.offers.models import MAX_TOTAL_CAP, MAX_USES_PER_COUPON
from walletpass.scan.requests import BalanceOut, LineIn, MembershipOut, Money, Strict

T = TypeVar("T")


def _utc(value: datetime) -> datetime:
    # The database stores UTC; an extreme offset near year 1 or 9999 cannot be converted.
    try:
        value = value.astimezone(UTC)
    except OverflowError:
        raise ValueError("date out of range") from None
    if not 1970 <= value.year <= 9998:
        raise ValueError("date out of range (1970 to 9998)")
    return value


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_utc)]
Id = Annotated[int, Field(ge=1, le=2**63 - 1)]
Slug = Annotated[str, Field(pattern=r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Email = Annotated[str, Field(max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
HexColour = Annotated[str, Field(pattern=r"^#(?:[0-9a-fA-F]{3}){1,2}$")]
Text = Annotated[str, Field(max_length=5000)]


def _language(tag: str) -> str:
    found = normalise(tag)
    if found is None or found == PSEUDO:
        raise ValueError(f"{tag!r} is not one of {', '.join(languages())} (or a regional tag)")
    return found


# A member's language: ours (en, zh-Hant, zh-Hans, el) or a regional tag read as one of
# them (zh-TW → zh-Hant, zh-CN → zh-Hans, el-GR → el).
Language = Annotated[
    str,
    Field(min_length=2, max_length=16, examples=["zh-Hant"]),
    AfterValidator(_language),
]


# --- a merchant's texts in other languages -----------------------------------------------

_TRANSLATIONS_DOC = (
    "The texts in the merchant's other languages, keyed by language (en, el, zh-Hans, "
    "zh-Hant; a regional tag such as zh-TW is read as its language): a member reading a "
    "language without its own text reads the default field."
)
_PATCH_DOC = (
    " Each language given replaces that language's texts; null or {} removes them (back to "
    "the default); languages left out are unchanged."
)


def _texts_by_language(value: dict[str, Any]) -> dict[str, Any]:
    # After the values validated: zh-TW becomes zh-Hant, an unknown language is refused.
    return by_language(value)


class ProgramTexts(Strict):
    name: Name | None = None


class RewardTexts(Strict):
    name: Name | None = None


class OfferTexts(Strict):
    title: Name | None = None
    description: Text | None = None
    terms: Text | None = None


ProgramTranslations = Annotated[
    dict[str, ProgramTexts],
    AfterValidator(_texts_by_language),
    Field(description=_TRANSLATIONS_DOC, examples=[{"el": {"name": "Κάρτα καφέ"}}]),
]
ProgramTranslationsPatch = Annotated[
    dict[str, ProgramTexts | None],
    AfterValidator(_texts_by_language),
    Field(description=_TRANSLATIONS_DOC + _PATCH_DOC),
]
RewardTranslations = Annotated[
    dict[str, RewardTexts],
    AfterValidator(_texts_by_language),
    Field(description=_TRANSLATIONS_DOC, examples=[{"zh-Hant": {"name": "免費咖啡"}}]),
]
RewardTranslationsPatch = Annotated[
    dict[str, RewardTexts | None],
    AfterValidator(_texts_by_language),
    Field(description=_TRANSLATIONS_DOC + _PATCH_DOC),
]
OfferTranslations = Annotated[
    dict[str, OfferTexts],
    AfterValidator(_texts_by_language),
    Field(description=_TRANSLATIONS_DOC, examples=[{"el": {"title": "Δεύτερος καφές -50%"}}]),
]
OfferTranslationsPatch = Annotated[
    dict[str, OfferTexts | None],
    AfterValidator(_texts_by_language),
    Field(description=_TRANSLATIONS_DOC + _PATCH_DOC),
]
TranslationsOut = Annotated[dict[str, dict[str, str]], Field(description=_TRANSLATIONS_DOC)]


def stored_texts(value: dict[str, Any] | None) -> dict[str, dict[str, str]]:
    """A request's translations as stored: ``{lang: {field: text}}``, texts trimmed, empty
    ones dropped (an empty language removes that language's texts)."""
    out: dict[str, dict[str, str]] = {}
    for lang, texts in (value or {}).items():
        fields = texts.model_dump(exclude_none=True) if texts is not None else {}
        out[lang] = {k: v.strip() for k, v in fields.items() if v.strip()}
    return out


# --- pagination ------------------------------------------------------------------------


class PageQuery(BaseModel):
    limit: int = Field(50, ge=1, le=200, description="Items per page (1 to 200).")
    cursor: str | None = Field(
        None, max_length=200, description="The next_cursor of the previous page."
    )


class Page(BaseModel, Generic[T]):
    data: list[T]
    next_cursor: str | None = Field(
        description="Pass as ?cursor= for the next page; null at the end."
    )


# --- programs and stores -----------------------------------------------------------------

ProgramKindName = Literal["points", "stamps", "tiers", "membership", "offers"]


class Design(Strict):
    """How the pass looks: colours as #rrggbb, texts shown on the back."""

    background: HexColour | None = None
    foreground: HexColour | None = None
    label: HexColour | None = None
    logo_text: str | None = Field(None, max_length=100)
    terms: str | None = Field(None, max_length=2000)
    website_url: HttpUrl | None = None
    poster_style: bool | None = Field(
        None,
        description="iOS 27's poster style (posterGeneric, with the generic style for older "
        "iOS); off by default, so that existing cards do not change.",
    )
    barcode_format: Literal["qr", "ean13", "code39", "codabar", "itf"] | None = Field(
        None,
        description="The first barcode on Apple (iOS 27) and the Google barcode: the member's "
        "card number (external_id) in this format, the QR code after it for older iOS. Every "
        "member's card number must fit it.",
    )


class ProgramIn(Strict):
    slug: Slug = Field(description="Public: the join page is /join/<slug>. Unique.")
    name: Name
    kind: ProgramKindName
    template: str | None = Field(
        None,
        pattern=r"^[a-z0-9_]{1,64}$",
        description="Pass template; defaults to the kind's (stamp_card, points_tiers, ...).",
    )
    rules: dict[str, Any] = Field(
        default_factory=dict, description="Earning and redemption rules for the kind."
    )
    design: Design = Field(default_factory=Design)
    active: bool = True
    translations: ProgramTranslations = Field(default_factory=dict)


class ProgramPatch(Strict):
    """Fields left out (or null) are unchanged. New rules or design refresh every pass;
    new texts in a language refresh the passes of the members reading it."""

    name: Name | None = None
    translations: ProgramTranslationsPatch | None = None
    template: str | None = Field(None, pattern=r"^[a-z0-9_]{1,64}$")
    rules: dict[str, Any] | None = None
    design: Design | None = None
    active: bool | None = None


class ProgramOut(BaseModel):
    id: int
    slug: str
    name: str
    kind: str
    template: str
    rules: dict[str, Any]
    design: dict[str, Any]
    active: bool
    translations: TranslationsOut
    join_url: str
    created_at: datetime


class ProgramQuery(PageQuery):
    kind: ProgramKindName | None = None
    active: bool | None = None


class ProgramPage(Page[ProgramOut]):
    pass


class StoreIn(Strict):
    code: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    name: Name
    address: str | None = Field(None, max_length=500)
    latitude: float | None = Field(None, ge=-90, le=90)
    longitude: float | None = Field(None, ge=-180, le=180)


class StorePatch(Strict):
    name: Name | None = None
    address: str | None = Field(None, max_length=500)
    latitude: float | None = Field(None, ge=-90, le=90)
    longitude: float | None = Field(None, ge=-180, le=180)


class StoreOut(BaseModel):
    id: int
    code: str
    name: str
    address: str | None
    latitude: float | None
    longitude: float | None
    created_at: datetime


class StorePage(Page[StoreOut]):
    pass


# --- members -----------------------------------------------------------------------------

Tags = Annotated[
    dict[
        Annotated[str, Field(min_length=1, max_length=64)],
        Annotated[str, Field(max_length=200)] | int | bool,
    ],
    Field(max_length=50),
]


class MemberIn(Strict):
    """Enrol a customer. The same external_id or email returns the existing member."""

    program_id: Id | None = Field(None, description="The program (or give its slug).")
    program: Slug | None = Field(None, description="The program's slug.")
    name: str = Field("", max_length=200)
    email: Email | None = None
    phone: str | None = Field(None, max_length=32)
    birthday: date | None = None
    language: Language = "en"
    marketing_consent: bool = False
    external_id: str | None = Field(
        None, min_length=1, max_length=128, description="The CRM's id for this customer."
    )
    referral_code: str | None = Field(None, max_length=32)
    source: str | None = Field(None, max_length=200)

    @model_validator(mode="after")
    def _one_program(self) -> MemberIn:
        if (self.program_id is None) == (self.program is None):
            raise ValueError("give exactly one of program_id and program")
        return self


class MemberPatch(Strict):
    """Fields left out (or null) are unchanged."""

    name: str | None = Field(None, max_length=200)
    email: Email | None = None
    phone: str | None = Field(None, max_length=32)
    birthday: date | None = None
    language: Language | None = None
    marketing_consent: bool | None = None
    external_id: str | None = Field(None, min_length=1, max_length=128)
    tags: Tags | None = None


class PassLinks(BaseModel):
    serial: str
    status: str
    landing_url: str = Field(description="The page with both wallet buttons.")
    apple_pkpass_url: str
    google_save_url: str | None = Field(description="Null when Google Wallet is not set up.")


class MemberDetail(BaseModel):
    id: int
    program_id: int
    program: str
    program_kind: str
    external_id: str | None
    name: str
    email: str | None
    phone: str | None
    birthday: date | None
    language: str
    marketing_consent: bool
    referral_code: str
    tags: dict[str, Any]
    tier: str | None
    points: int | None
    stamps: int | None
    lifetime_spend: Decimal
    membership_valid_until: datetime | None
    membership: MembershipOut | None = Field(
        None, description="A membership card's standing (null for other programs)."
    )
    last_activity_at: datetime | None
    created_at: datetime
    passes: list[PassLinks]


class MemberCreated(MemberDetail):
    created: bool = Field(description="False when an existing member was returned.")


class CardEmailOut(BaseModel):
    """An email with the member's card link, queued (sent by the outbox, retried)."""

    id: int
    member_id: int
    reason: str = Field(description="welcome (after joining) or resend.")
    status: str = Field(
        description="pending (queued or being retried), sent (the SMTP server accepted "
        "it), failed (refused for good; last_error says why)."
    )
    message_id: str = Field(description="The email's Message-ID, the same on every retry.")
    created_at: datetime
    sent_at: datetime | None
    last_error: str | None


class MemberQuery(PageQuery):
    program_id: Id | None = None
    email: str | None = Field(None, max_length=320)
    external_id: str | None = Field(None, max_length=128)
    tier: str | None = Field(None, max_length=64)


class MemberPage(Page[MemberDetail]):
    pass


# --- transactions ------------------------------------------------------------------------

ReceiptId = Annotated[str, Field(min_length=1, max_length=128)]
StoreCode = Annotated[str | None, Field(None, max_length=64, description="Store code.")]


WHOLE_UNITS = (
    "In the shop's currency; whole units in a currency without a minor unit (TWD, JPY): "
    '"12.5" is refused (422 on this field).'
)


class PurchaseTx(Strict):
    """Earn by receipt: a retried receipt id counts once."""

    type: Literal["purchase"]
    amount: Money = Field(
        ge=0,
        max_digits=12,
        decimal_places=2,
        description=WHOLE_UNITS,
    )
    receipt_id: ReceiptId
    currency: str | None = Field(None, pattern=r"^[A-Z]{3}$")
    redeem_points: int = Field(0, ge=0, le=10_000_000)
    lines: list[LineIn] | None = Field(None, max_length=500)
    store: StoreCode = None


class RefundTx(Strict):
    """Reverse what a receipt earned, pro rata for a partial refund."""

    type: Literal["refund"]
    receipt_id: ReceiptId
    amount: Money = Field(gt=0, max_digits=12, decimal_places=2, description=WHOLE_UNITS)
    refund_id: str | None = Field(None, min_length=1, max_length=128)
    store: StoreCode = None


class AdjustTx(Strict):
    """A manual correction with its reason (send an Idempotency-Key to retry safely)."""

    type: Literal["adjust"]
    points: int = Field(ge=-10_000_000, le=10_000_000, description="Non-zero.")
    reason: str = Field(min_length=1, max_length=500)


class StampTx(Strict):
    """Stamps given by hand (a stamp card)."""

    type: Literal["stamp"]
    stamps: int = Field(1, ge=1, le=50)
    receipt_id: ReceiptId | None = None
    store: StoreCode = None


class RedeemRewardTx(Strict):
    """Spend points or stamps on a catalogue reward."""

    type: Literal["redeem_reward"]
    reward_id: Id
    receipt_id: ReceiptId | None = Field(
        None, description="Makes a retry count once (like a scan's receipt id)."
    )
    store: StoreCode = None


class MembershipPaymentTx(Strict):
    """A membership paid at the counter or through the CRM: activates a pending card, or
    renews one for the program's validity_months, from its current end if that is still
    ahead, else from now (a lapsed card). Send a receipt_id or an Idempotency-Key: a
    retried payment renews once. A free membership renews without an amount."""

    type: Literal["membership_payment"]
    amount: Money | None = Field(
        None,
        ge=0,
        max_digits=12,
        decimal_places=2,
        description="What was paid: the program's price for a paid membership (any other "
        "amount is refused, 422); left out for a free one.",
    )
    currency: str | None = Field(
        None, pattern=r"^[A-Z]{3}$", description="The merchant's currency, if given."
    )
    receipt_id: ReceiptId | None = Field(
        None, description="The payment's receipt: the same id renews once, on any channel."
    )
    store: StoreCode = None


class TransactionIn(
    RootModel[
        Annotated[
            PurchaseTx | RefundTx | AdjustTx | StampTx | RedeemRewardTx | MembershipPaymentTx,
            Field(discriminator="type"),
        ]
    ]
):
    pass


class LedgerEntryOut(BaseModel):
    id: int
    kind: str = Field(
        description="earn, redeem, adjust, expire, refund, bonus, undo or renewal (a "
        "membership's payment or renewal, with the amount paid)."
    )
    points: int
    stamps: int
    amount: Decimal | None
    currency: str | None
    reason: str
    receipt_id: str | None
    store_id: int | None
    reverses_id: int | None
    actor_type: str
    expires_at: datetime | None
    created_at: datetime


class LedgerPage(Page[LedgerEntryOut]):
    pass


class TransactionOut(BaseModel):
    member_id: int
    type: str
    points_delta: int
    stamps_delta: int
    balance: BalanceOut
    tier: str | None
    entries: list[LedgerEntryOut]
    replayed: bool = Field(description="True when this receipt or key was already recorded.")
    discount: Decimal | None = None
    redemption_code: str | None = None
    rewards_reached: list[str] = []


# --- catalogue ---------------------------------------------------------------------------


class RewardIn(Strict):
    program_id: Id
    name: Name
    kind: Literal["item", "discount", "donation"] = "item"
    cost_points: int = Field(ge=1, le=10_000_000, description="Points (stamps on a stamp card).")
    min_tier: str | None = Field(None, min_length=1, max_length=64)
    stock: int | None = Field(None, ge=0, le=1_000_000_000)
    cause: str | None = Field(None, max_length=200, description="For a donation.")
    valid_from: UtcDatetime | None = None
    valid_until: UtcDatetime | None = None
    active: bool = True
    description: Text = ""
    translations: RewardTranslations = Field(default_factory=dict)

    @model_validator(mode="after")
    def _dates(self) -> RewardIn:
        if self.valid_from and self.valid_until and self.valid_until <= self.valid_from:
            raise ValueError("valid_until must be after valid_from")
        return self


class RewardPatch(Strict):
    name: Name | None = None
    cost_points: int | None = Field(None, ge=1, le=10_000_000)
    min_tier: str | None = Field(None, min_length=1, max_length=64)
    stock: int | None = Field(None, ge=0, le=1_000_000_000)
    cause: str | None = Field(None, max_length=200)
    valid_from: UtcDatetime | None = None
    valid_until: UtcDatetime | None = None
    active: bool | None = None
    description: Text | None = None
    translations: RewardTranslationsPatch | None = None


class RewardDetail(BaseModel):
    id: int
    program_id: int
    name: str
    kind: str
    cost_points: int
    min_tier: str | None
    stock: int | None
    cause: str | None
    valid_from: datetime | None
    valid_until: datetime | None
    active: bool
    description: str
    translations: TranslationsOut
    created_at: datetime


class RewardQuery(PageQuery):
    program_id: Id | None = None
    active: bool | None = None


class RewardPage(Page[RewardDetail]):
    pass


class PercentDiscount(Strict):
    type: Literal["percent"]
    value: Decimal = Field(gt=0, le=100, decimal_places=2)


class AmountDiscount(Strict):
    type: Literal["amount"]
    value: Money = Field(gt=0, max_digits=12, decimal_places=2)


class TextDiscount(Strict):
    type: Literal["text"]
    text: str = Field(min_length=1, max_length=200)


Discount = Annotated[PercentDiscount | AmountDiscount | TextDiscount, Field(discriminator="type")]


class OfferIn(Strict):
    slug: Slug = Field(description="Unique.")
    title: Name
    description: Text = ""
    terms: Text = ""
    discount: Discount
    valid_from: UtcDatetime | None = None
    valid_until: UtcDatetime | None = None
    uses_per_coupon: int = Field(1, ge=1, le=MAX_USES_PER_COUPON)
    total_cap: int | None = Field(None, ge=1, le=MAX_TOTAL_CAP)
    overlay: bool = Field(False, description="Shown on the program's cards while valid.")
    active: bool = True
    program_id: Id | None = None
    translations: OfferTranslations = Field(default_factory=dict)

    @model_validator(mode="after")
    def _dates(self) -> OfferIn:
        if self.valid_from and self.valid_until and self.valid_until <= self.valid_from:
            raise ValueError("valid_until must be after valid_from")
        return self


class OfferPatch(Strict):
    title: Name | None = None
    description: Text | None = None
    terms: Text | None = None
    discount: Discount | None = None
    valid_from: UtcDatetime | None = None
    valid_until: UtcDatetime | None = None
    uses_per_coupon: int | None = Field(None, ge=1, le=MAX_USES_PER_COUPON)
    total_cap: int | None = Field(None, ge=1, le=MAX_TOTAL_CAP)
    overlay: bool | None = None
    active: bool | None = None
    translations: OfferTranslationsPatch | None = None


class OfferOut(BaseModel):
    id: int
    slug: str
    program_id: int | None
    title: str
    description: str
    terms: str
    discount: dict[str, Any]
    valid_from: datetime | None
    valid_until: datetime | None
    uses_per_coupon: int
    total_cap: int | None
    redeemed_count: int
    overlay: bool
    active: bool
    translations: TranslationsOut
    created_at: datetime


class OfferQuery(PageQuery):
    program_id: Id | None = None
    active: bool | None = None


class OfferPage(Page[OfferOut]):
    pass


class CouponIn(Strict):
    offer_id: Id
    member_id: Id | None = Field(None, description="Null for an anonymous flyer coupon.")


class CouponDetail(BaseModel):
    id: int
    offer_id: int
    member_id: int | None
    status: str = Field(description="active, used or void.")
    uses: int
    uses_left: int
    usable_now: bool
    created_at: datetime
    last_used_at: datetime | None
    passes: list[PassLinks]


class CouponRedeemed(BaseModel):
    coupon: CouponDetail
    rolled_over_to_coupon: int | None = Field(
        description="The coupon the pass moved on to (offers programs), if any."
    )


class CouponQuery(PageQuery):
    offer_id: Id | None = None
    member_id: Id | None = None
    status: Literal["active", "used", "void"] | None = None


class CouponPage(Page[CouponDetail]):
    pass


# --- webhook endpoints ---------------------------------------------------------------------

EventType = Literal[EVENT_TYPES]  # type: ignore[valid-type]
Events = Annotated[list[EventType], Field(min_length=1, max_length=len(EVENT_TYPES))]


class WebhookEndpointIn(Strict):
    url: HttpUrl = Field(description="Receives POSTs signed with the endpoint's secret.")
    events: Events
    active: bool = True


class WebhookEndpointPatch(Strict):
    url: HttpUrl | None = None
    events: Events | None = None
    active: bool | None = None


class WebhookEndpointOut(BaseModel):
    id: int
    url: str
    events: list[str]
    active: bool
    created_at: datetime


class WebhookEndpointCreated(WebhookEndpointOut):
    secret: str = Field(description="Shown once: verify Walletpass-Signature with it.")


class WebhookEndpointPage(Page[WebhookEndpointOut]):
    pass


class WebhookDeliveryOut(BaseModel):
    id: int
    endpoint_id: int
    event_id: str
    event_type: str
    payload: dict[str, Any]
    status: str = Field(description="pending, delivered or dead.")
    attempts: int
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


class WebhookDeliveryPage(Page[WebhookDeliveryOut]):
    pass


# --- campaigns -------------------------------------------------------------------------------


class Variant(Strict):
    name: str = Field(min_length=1, max_length=32)
    message: str = Field(min_length=1, max_length=500)
    title: str = Field("", max_length=60)
    share: float = Field(gt=0, le=1, description="The variants' shares add up to 1.")


class CampaignIn(Strict):
    """A message shown on members' cards (and sent to Google Wallet), optionally with an
    offer, A/B variants and a holdout group."""

    name: Name
    message: str = Field(
        "", max_length=500, description="Shown on the card; defaults to the offer's text."
    )
    title: str = Field("", max_length=60)
    audience: dict[str, Any] = Field(
        default_factory=lambda: {"kind": "all"},
        description='Who receives it: {"kind": "all"}, {"kind": "tier", "tier": "Gold"}, '
        '{"kind": "lapsed", "days": 60}, {"kind": "birthday_month", "month": 5}, '
        '{"kind": "tag", "tag": "vip"}, {"kind": "rfm", "segment": "..."}.',
    )
    program_id: Id | None = None
    offer_id: Id | None = None
    variants: list[Variant] | None = Field(None, max_length=5)
    holdout_share: float = Field(0.0, ge=0, le=0.5)
    scheduled_at: UtcDatetime | None = Field(None, description="Launch then instead of now.")
    ends_at: UtcDatetime | None = Field(None, description="When the message leaves the cards.")
    window_days: int = Field(14, ge=1, le=90, description="Results count this many days.")


class AudiencePreviewIn(Strict):
    audience: dict[str, Any]
    program_id: Id | None = None


class AudiencePreviewOut(BaseModel):
    counts: dict[str, int]


class CampaignOut(BaseModel):
    id: int
    name: str
    title: str
    message: str
    audience: dict[str, Any]
    program_id: int | None
    offer_id: int | None
    variants: list[dict[str, Any]]
    holdout_share: float
    scheduled_at: datetime | None
    ends_at: datetime | None
    window_days: int
    status: str = Field(description="draft, scheduled, sending, finished or cancelled.")
    total: int
    sent: int
    holdout_count: int
    push_rate: int | None = Field(
        description="Apple pushes a second this campaign's pushes were paced at "
        "(WALLETPASS_PUSH_RATE; each push makes a phone fetch its pass); null when they "
        "went out at once (a small campaign, or pacing off)."
    )
    pushes_paced: int = Field(description="Apple pushes queued on paced slots so far.")
    pushes_due_at: datetime | None = Field(
        description="When the last paced push queued so far is due."
    )
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class CampaignProgress(CampaignOut):
    progress: dict[str, Any] = Field(
        description="Recipients total, sent, skipped, skipped_budget, pending, failed, "
        "holdout, excluded_no_consent, excluded_no_pass, done, percent; scheduled_at, "
        "started_at, finished_at; and pushes: null when the Apple pushes go out at once, "
        'else {"rate": pushes a second, "pushes": how many, "last_due_at": when the last '
        'is due, "due_in_seconds": from now (0 once past), "estimated": true while batches '
        "remain, each pending recipient counted as one push after the slots taken}."
    )


class CampaignResults(BaseModel):
    campaign_id: int
    results: dict[str, Any]


class CampaignQuery(PageQuery):
    status: Literal["draft", "scheduled", "sending", "finished", "cancelled"] | None = None


class CampaignPage(Page[CampaignOut]):
    pass


# --- stats -----------------------------------------------------------------------------------


class StatsQuery(BaseModel):
    days: int = Field(30, ge=1, le=366, description="The period: the last N days.")


class PerPlatform(BaseModel):
    apple: int
    google: int


class DayCount(BaseModel):
    day: date
    count: int


class StatsOut(BaseModel):
    """Counts over the last ``days`` merchant-local days (today included)."""

    days: int
    since: datetime
    until: datetime
    members_total: int
    new_members: int
    active_passes: int
    installs: PerPlatform
    removals: PerPlatform
    scans_total: int = Field(
        description="Till actions that stand: purchases, stamps, redemptions and refunds; "
        "look-ups, refused and undone scans are not counted."
    )
    scans_per_day: list[DayCount] = Field(description="Merchant-local days, oldest first.")
    repeat_visit_rate: float | None = Field(
        description="Members with 2+ visits over members with 1+, in the period."
    )
    average_spend: Decimal | None
    outstanding_points: int = Field(description="Points held by members now.")
    outstanding_value: Decimal = Field(
        description="Their cash value, where the program sets points_to_currency."
    )
    points_earned: int
    points_redeemed: int
