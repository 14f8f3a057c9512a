"""Customer pages: join form, QR codes, printable flyers, flyer coupons, pass landing page.

Thin views: they parse, rate-limit and render; enrolment, coupons, pass state and Google
save links come from the domain core. Slugs and serials are global (the URL carries no
merchant), so rows are found across merchants first and the session is then scoped to
the row's merchant for everything else it loads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    g,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask import session as cookie
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.exceptions import BadRequest

from walletpass import errors
from walletpass.cards.variables import pass_variables
from walletpass.db import utcnow
from walletpass.google import client as google_client
from walletpass.google import savelink
from walletpass.i18n import formats
from walletpass.i18n.catalogues import N_
from walletpass.i18n.merchant_texts import localised
from walletpass.loyalty.enrolment import enroll, find_enrolled, issue_member_pass, member_passes
from walletpass.loyalty.models import Member, Program, ProgramKind
from walletpass.loyalty.programs import program_rules, today_for
from walletpass.loyalty.rules import MembershipRules
from walletpass.mail import services as mail
from walletpass.offers.models import Offer
from walletpass.offers.services import claim_coupon, claim_email, find_claim
from walletpass.passes.colours import DEFAULT_COLOURS
from walletpass.passes.models import Pass, PassStatus
from walletpass.public import card_page, qr
from walletpass.public.forms import JoinForm, clean_token
from walletpass.tenancy.models import Merchant
from walletpass.web import auth, ratelimit
from walletpass.web.context import current_runtime
from walletpass.web.i18n import current_language

bp = Blueprint(
    "public",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/static/public",
)


@bp.after_request
def _vary_by_language(response: Response) -> Response:
    # Each page is written in the language its visitor's browser or cookie asks for: a
    # shared cache must not hand a Greek page to a Taiwanese phone.
    response.vary.add("Accept-Language")
    response.vary.add("Cookie")
    return response


# A second submit of the same details this soon after the first is a double tap, not
# someone else typing a stranger's email: it gets the card page again.
DOUBLE_SUBMIT_WINDOW = timedelta(minutes=10)
_HEX = re.compile(r"^#(?:[0-9a-fA-F]{3}){1,2}$")


def _rate_limited(rule: ratelimit.Rule) -> Response | None:
    """The 429 page if this address has used up ``rule`` (web/ratelimit.py), else None."""
    seconds = ratelimit.hit(rule)
    if seconds is None:
        return None
    response = _message(
        _("Slow down a little"),
        _(
            "Too many attempts from this network. Please try again in %(seconds)s seconds.",
            seconds=seconds,
        ),
        status=429,
    )
    response.headers["Retry-After"] = str(seconds)
    return response


def _message(title: str, text: str, *, status: int = 200, brand: Brand | None = None) -> Response:
    html = render_template("public/message.html", title=title, text=text, brand=brand)
    return make_response(html, status)


@bp.errorhandler(404)
def _not_found_page(_exc: Exception) -> Response:
    return _message(
        _("Not found"),
        _(
            "This link does not lead to a card or offer. It may have been mistyped, or the "
            "program may have ended."
        ),
        status=404,
    )


class BadLink(BadRequest):
    """A link with a part we refuse (a printed QR code's ``?src=``); the description says
    which, in the page's language."""


@bp.errorhandler(400)
def _bad_request_page(exc: BadRequest) -> Response:
    # Werkzeug's own 400s (a malformed form body) describe themselves in English to
    # developers: a customer gets a plain sentence instead. A refusal that says what was
    # wrong (ours, or web/nulbytes.py's NUL character) shows that.
    text = exc.description if exc.description != BadRequest.description else ""
    return _message(
        _("This link is not right"),
        str(text or _("Please check the link, or scan the code again.")),
        status=400,
    )


# ---------------------------------------------------------------- lookups and branding


@dataclass(frozen=True)
class Brand:
    name: str
    merchant: str
    background: str
    foreground: str
    label: str
    logo_url: str


def _brand(program: Program | None, merchant: Merchant, *, template: str | None = None) -> Brand:
    design = dict(DEFAULT_COLOURS)
    for key, value in ((program.design or {}) if program else {}).items():
        # Colours go into a style attribute: only accept plain hex, fall back otherwise.
        if key in DEFAULT_COLOURS and isinstance(value, str) and _HEX.match(value):
            design[key] = value
    template = template or (program.template if program else "coupon")
    return Brand(
        name=_in_page_language(program, "name", program.name) if program else merchant.name,
        merchant=merchant.name,
        background=design["background"],
        foreground=design["foreground"],
        label=design["label"],
        logo_url=url_for("web.template_asset", name=template, filename="logo@2x.png"),
    )


def _in_page_language(row: Program | Offer, field: str, default: str) -> str:
    """A merchant's text (a program's name, an offer's title...) in the page's language,
    or as the merchant typed it when that language has none."""
    return localised(default, row.translations, field, current_language())


def _active_program(session: Session, slug: str) -> Program:
    program = session.scalars(
        select(Program).where(Program.slug == slug).execution_options(all_merchants=True)
    ).one_or_none()
    if program is None or not program.active:
        abort(404)
    session.info["merchant_id"] = program.merchant_id
    return program


def _active_offer(session: Session, slug: str) -> Offer:
    offer = session.scalars(
        select(Offer).where(Offer.slug == slug).execution_options(all_merchants=True)
    ).one_or_none()
    if offer is None or not offer.active:
        abort(404)
    session.info["merchant_id"] = offer.merchant_id
    return offer


def _pass_or_404(session: Session, serial: str) -> Pass:
    pass_row = session.scalars(
        select(Pass).where(Pass.serial == serial).execution_options(all_merchants=True)
    ).one_or_none()
    if pass_row is None:
        abort(404)
    session.info["merchant_id"] = pass_row.merchant_id
    return pass_row


def _merchant(session: Session, merchant_id: int) -> Merchant:
    merchant = session.get(Merchant, merchant_id)
    assert merchant is not None
    # The page's language falls back to the shop's when neither the switcher nor the
    # browser names one of ours (walletpass/web/i18n.py): read before anything renders.
    g.merchant_language = merchant.language
    return merchant


# ---------------------------------------------------------------- join


@bp.route("/join/<slug>", methods=["GET", "POST"])
def join(slug: str) -> Any:
    runtime = current_runtime()
    if request.method == "POST":
        limited = _rate_limited(ratelimit.JOIN)
        if limited is not None:
            return limited
    with runtime.transaction() as session:
        program = _active_program(session, slug)
        merchant = _merchant(session, program.merchant_id)
        brand = _brand(program, merchant)
        membership = _membership_terms(program, merchant)
        if request.method == "GET":
            form = JoinForm(
                referral_code=clean_token(request.args.get("ref")).upper(),
                source=clean_token(request.args.get("src")),
            )
            outcome: tuple[str, Any] = ("form", 200)
        else:
            form = JoinForm.from_form(request.form)
            outcome = _enroll_from_form(session, runtime.settings, program, form)
    kind, value = outcome
    if kind == "pass":
        return redirect(url_for("public.landing", serial=value), code=303)
    if kind == "already":
        return _message(
            _("You are already a member"),
            _(
                "These details already belong to a %(program)s card. Open it from your "
                "phone's wallet app, or ask us at the counter to send it to you again.",
                program=brand.name,
            ),
            brand=brand,
        )
    html = render_template(
        "public/join.html", brand=brand, program=program, form=form, membership=membership
    )
    return make_response(html, value)


@dataclass(frozen=True)
class MembershipTerms:
    """What the join page says a membership costs and gives."""

    paid: bool
    price: str  # in the merchant's currency, written as the page's reader writes it
    months: int
    benefits: str


def _membership_terms(program: Program, merchant: Merchant) -> MembershipTerms | None:
    parsed = program_rules(program)
    if not isinstance(parsed, MembershipRules):
        return None
    price = formats.money(parsed.price, merchant.currency, current_language())
    return MembershipTerms(parsed.paid, price, parsed.validity_months, parsed.benefits)


def _enroll_from_form(
    session: Session, settings: Any, program: Program, form: JoinForm
) -> tuple[str, Any]:
    """("pass", serial) | ("already", None) | ("form", http status)."""
    if not form.validate(today_for(session, program.merchant_id)):
        return "form", 422
    if form.referral_code:
        referrer = session.scalars(
            select(Member.id).where(Member.referral_code == form.referral_code)
        ).first()
        if referrer is None:
            form.errors["referral_code"] = N_(
                "We do not know this referral code. Check it, or leave it empty."
            )
            return "form", 422
    try:
        existing = find_enrolled(
            session, program, email=form.email or None, phone=form.phone or None
        )
        if existing is None:
            member, pass_row, created = enroll(
                session,
                settings,
                program,
                name=form.name,
                email=form.email or None,
                phone=form.phone or None,
                birthday=form.birthday_date,
                # The language of the page they joined on: their card, its messages and
                # emails speak it from now on.
                language=current_language(),
                marketing_consent=form.marketing_consent,
                referral_code=form.referral_code or None,
                source=form.source or None,
            )
            if created:
                # The card link by email, if an address was given and SMTP is configured.
                mail.welcome(session, settings, member)
                _remember_serial(pass_row.serial)
                return "pass", pass_row.serial
            # A simultaneous tap or API call enrolled these details first (the database's
            # unique keys settled the race): answered as a member found above would be.
            existing = member
    except errors.Conflict:
        # The phone number is another member's: these details belong to a card already.
        return "already", None
    passes = member_passes(session, existing.id)
    if not _is_double_submit(existing, passes, form):
        # Never hand out an existing card to whoever types its email: the page shows
        # the balance and the barcode that redeems rewards at the till.
        return "already", None
    pass_row = passes[0] if passes else issue_member_pass(session, settings, program, existing)
    _remember_serial(pass_row.serial)
    return "pass", pass_row.serial


def _is_double_submit(member: Member, passes: list[Pass], form: JoinForm) -> bool:
    serials = set(cookie.get("joined", []))
    if any(p.serial in serials for p in passes):
        return True
    # The first response may never have reached the browser (a double tap cancels it),
    # so the cookie alone cannot tell: same name within minutes counts as the same person.
    recent = member.created_at > utcnow() - DOUBLE_SUBMIT_WINDOW
    return recent and member.name.strip().casefold() == form.name.casefold()


def _remember_serial(serial: str) -> None:
    # The browser that joined may come back to its card; keep only the last few.
    joined = [s for s in cookie.get("joined", []) if s != serial][-4:]
    cookie["joined"] = [*joined, serial]


# ---------------------------------------------------------------- QR codes and flyers


def _src_param(default: str) -> str:
    raw = request.args.get("src")
    if raw is None:
        return default
    src = clean_token(raw)
    if not src:
        raise BadLink(
            _("The src part of this link must be 1 to 64 letters, digits, '.', '_', ':' or '-'.")
        )
    return src


def _join_link(slug: str, src: str) -> str:
    return qr.public_link(current_runtime().settings.public_url, f"/join/{slug}", src=src)


def _program_brand(slug: str) -> tuple[Program, Brand]:
    with current_runtime().transaction() as session:
        program = _active_program(session, slug)
        return program, _brand(program, _merchant(session, program.merchant_id))


@bp.get("/join/<slug>/qr.svg")
def join_qr_svg(slug: str) -> Response:
    _program_brand(slug)
    data = _join_link(slug, _src_param("qr"))
    return _qr_response(qr.svg_bytes(data), "image/svg+xml", data)


@bp.get("/join/<slug>/qr.png")
def join_qr_png(slug: str) -> Response:
    _program_brand(slug)
    data = _join_link(slug, _src_param("qr"))
    return _qr_response(qr.png_bytes(data), "image/png", data)


def _qr_response(body: bytes, mimetype: str, data: str) -> Response:
    response = Response(body, mimetype=mimetype)
    response.headers["Cache-Control"] = "public, max-age=3600"
    # Lets a designer (and a test) see which link the image carries without decoding it.
    response.headers["X-QR-Data"] = data
    return response


@bp.get("/join/<slug>/flyer")
def join_flyer(slug: str) -> str:
    program, brand = _program_brand(slug)
    link = _join_link(slug, _src_param("flyer"))
    return render_template(
        "public/flyer.html",
        brand=brand,
        headline=_("Join %(program)s", program=_in_page_language(program, "name", program.name)),
        subline=_join_pitch(program),
        terms=(program.design or {}).get("terms") or "",
        link=link,
        qr_svg=qr.inline_svg(link),
        cta=_("Scan with your phone camera to add the card to your wallet"),
    )


def _join_pitch(program: Program) -> str:
    pitches = {
        ProgramKind.STAMPS: _("Collect stamps on your phone, no paper card to lose."),
        ProgramKind.POINTS: _("Earn points on every visit, right in your phone's wallet."),
        ProgramKind.TIERS: _("Earn points and move up the levels, right in your phone's wallet."),
        ProgramKind.MEMBERSHIP: _("Your membership card, always in your phone's wallet."),
        ProgramKind.OFFERS: _("Our offers and coupons, straight to your phone's wallet."),
    }
    return pitches.get(ProgramKind(program.kind), _("Your card, always in your phone's wallet."))


@bp.get("/offers/<slug>/flyer")
def offer_flyer(slug: str) -> str:
    settings = current_runtime().settings
    with current_runtime().transaction() as session:
        offer = _active_offer(session, slug)
        program = session.get(Program, offer.program_id) if offer.program_id else None
        merchant = _merchant(session, offer.merchant_id)
        brand = _brand(program, merchant, template="coupon")
    link = qr.public_link(settings.public_url, f"/offers/{slug}/claim", src=_src_param("flyer"))
    valid = card_page.validity_text(offer.valid_from, offer.valid_until, merchant.timezone)
    return render_template(
        "public/flyer.html",
        brand=brand,
        headline=_in_page_language(offer, "title", offer.title),
        subline=_in_page_language(offer, "description", offer.description),
        terms=" ".join(t for t in (valid, _in_page_language(offer, "terms", offer.terms)) if t),
        link=link,
        qr_svg=qr.inline_svg(link),
        cta=_("Scan with your phone camera to save the coupon to your wallet"),
    )


@bp.route("/offers/<slug>/claim", methods=["GET", "POST"])
def claim_offer(slug: str) -> Any:
    """The flyer's QR code: GET shows the offer and asks for the customer's email (a link
    preview's HEAD or GET mints nothing), POST claims the coupon, one per customer
    (walletpass.offers.services.claim_coupon), and opens its page."""
    runtime = current_runtime()
    claimed: dict[str, str] = dict(cookie.get("claimed", {}))
    with runtime.transaction() as session:
        offer = _active_offer(session, slug)
        merchant = _merchant(session, offer.merchant_id)
        brand = _brand(None, merchant, template="coupon")
        problem = _offer_problem(offer, utcnow(), merchant.timezone)
        if problem is not None:
            title, text, status = problem
            return _message(title, text, status=status, brand=brand)
        earlier = claimed.get(slug)
        if earlier and not _still_active(session, earlier):
            earlier = None
        page = ClaimPage(offer, brand, earlier or "", merchant.timezone)
        if request.method != "POST":  # GET, and HEAD: a link preview must not mint
            return page.render()
        try:
            auth.check_csrf()
        except BadRequest:
            # A page left open past its session, or cookies cleared: the form again, which
            # now carries a good token, rather than an error page.
            return page.render(_("This page had expired. Please send it again."), 400)
        typed = (request.form.get("email") or "").strip()
        try:
            email = claim_email(typed)
        except errors.ValidationFailed:
            # claim_email's two refusals (offers/services.py), in the page's language.
            error = (
                _("This does not look like an email address.")
                if typed
                else _("Please give your email address.")
            )
            return page.render(error, 422, email=typed)
        claim = find_claim(session, offer, email)
        if claim is None:
            # Counted only when a coupon would be minted: a customer's second claim is free.
            limited = _rate_limited(ratelimit.OFFER_CLAIM)
            if limited is not None:
                return limited
            claim = claim_coupon(session, runtime.settings, offer, email)
        if claim.pass_row is None:
            return _message(
                _("Already used"),
                _("This coupon was already used with this email address. Thanks for coming back!"),
                brand=brand,
            )
        serial = claim.pass_row.serial
    claimed[slug] = serial
    # Bounded: a cookie has ~4 KB.
    cookie["claimed"] = dict(list(claimed.items())[-8:])
    return redirect(url_for("public.landing", serial=serial), code=303)


@dataclass(frozen=True)
class ClaimPage:
    """The claim form. The email shown is only ever the one this request typed."""

    offer: Offer
    brand: Brand
    earlier: str  # this browser's own coupon of the offer, from its cookie
    timezone: str  # the merchant's: offer dates are the shop's calendar days

    def render(self, error: str = "", status: int = 200, *, email: str = "") -> Response:
        offer = self.offer
        valid = card_page.validity_text(offer.valid_from, offer.valid_until, self.timezone)
        own_terms = _in_page_language(offer, "terms", offer.terms)
        terms = " ".join(t for t in (valid, own_terms) if t)
        html = render_template(
            "public/claim.html",
            brand=self.brand,
            offer=offer,
            offer_title=_in_page_language(offer, "title", offer.title),
            offer_description=_in_page_language(offer, "description", offer.description),
            terms=terms,
            earlier=self.earlier,
            error=error,
            email=email,
        )
        response = make_response(html, status)
        response.headers["Cache-Control"] = "private, no-store"
        return response


def _still_active(session: Session, serial: str) -> bool:
    row = session.scalars(select(Pass.status).where(Pass.serial == serial)).one_or_none()
    return row == PassStatus.ACTIVE


def _offer_problem(offer: Offer, now: datetime, timezone: str) -> tuple[str, str, int] | None:
    if offer.valid_until is not None and offer.valid_until <= now:
        return (
            _("This offer has ended"),
            _("Thanks for your interest; watch out for the next one."),
            410,
        )
    if offer.total_cap is not None and offer.redeemed_count >= offer.total_cap:
        return (
            _("All gone"),
            _("This offer has been fully redeemed. Thanks for your interest!"),
            410,
        )
    if offer.valid_from is not None and offer.valid_from > now:
        start = card_page.shop_day(offer.valid_from, timezone)
        return (
            _("Not started yet"),
            _("This offer starts on %(day)s. Scan again then!", day=start),
            200,
        )
    return None


# ---------------------------------------------------------------- landing page


def detect_platform(user_agent: str) -> str:
    """apple | google | desktop: which wallet button the visitor most likely wants."""
    ua = user_agent or ""
    if re.search(r"iPhone|iPad|iPod", ua):
        return "apple"
    if "Android" in ua:
        return "google"
    return "desktop"


@bp.get("/p/<serial>")
def landing(serial: str) -> Response:
    runtime = current_runtime()
    settings = runtime.settings
    with runtime.transaction() as session:
        pass_row = _pass_or_404(session, serial)
        merchant = _merchant(session, pass_row.merchant_id)
        variables = pass_variables(session, pass_row, settings, lang=current_language())
        program = session.get(Program, pass_row.program_id) if pass_row.program_id else None
        brand = _brand(program, merchant, template=pass_row.template)
        rows = card_page.card_rows(session, pass_row, variables, merchant, program)
        active = pass_row.status == PassStatus.ACTIVE
        barcode = pass_row.barcode
    platform = detect_platform(request.user_agent.string)
    wallets = card_page.wallet_choices(platform, google_enabled=settings.google_enabled)
    page_link = qr.public_link(settings.public_url, f"/p/{serial}")
    html = render_template(
        "public/landing.html",
        brand=brand,
        v=variables,
        card=rows,
        active=active,
        serial=serial,
        wallets=wallets if active else None,
        platform=platform,
        qr_svg=qr.inline_svg(page_link) if platform == "desktop" and active else None,
        # Shown to everyone whose card is active, whatever their browser: the till scans
        # it from the screen when no wallet app took the card.
        barcode=barcode if active else "",
        barcode_svg=qr.inline_svg(barcode) if active else None,
        stamps=card_page.stamp_slots(variables),
        stamps_to_go=card_page.stamps_to_go(variables),
    )
    response = make_response(html)
    # Balances change and the page holds the pass's barcode: never cache it in between.
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["Vary"] = "User-Agent"
    return response


@bp.get("/p/<serial>/google")
def google_save(serial: str) -> Response:
    runtime = current_runtime()
    settings = runtime.settings
    if not settings.google_enabled:
        abort(404)
    limited = _rate_limited(ratelimit.GOOGLE_SAVE)
    if limited is not None:
        return limited
    try:
        with runtime.transaction() as session:
            pass_row = _pass_or_404(session, serial)
            if pass_row.status != PassStatus.ACTIVE:
                abort(404)
            # Sets pass_row.google_object_id; committed only when the link was made.
            url = savelink.save_url_for_pass(
                session, settings, google_client.shared_client(runtime.services, settings), pass_row
            )
    except savelink.SaveLinkError:
        current_app.logger.exception("no Google save link for pass %s", serial)
        response = _message(
            _("Google Wallet is busy"),
            _("We could not reach Google Wallet just now. Please try again in a minute."),
            status=503,
        )
        response.headers["Retry-After"] = "60"
        return response
    except google_client.GooglePermanent:
        current_app.logger.exception("Google refused the pass %s", serial)
        return _message(
            _("Google Wallet said no"),
            _(
                "Google Wallet did not accept this card. We have been told; please use the "
                "other button or try again later."
            ),
            status=502,
        )
    return redirect(url, code=302)  # type: ignore[return-value]
