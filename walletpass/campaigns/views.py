"""Campaign pages in the admin: list, create (audience, message, variants, holdout,
schedule), and a detail page with a polled progress view and the results."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_time, format_timedelta
from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from walletpass import errors
from walletpass.admin import labels
from walletpass.campaigns import audience as audiences
from walletpass.campaigns import budget, services
from walletpass.campaigns.models import Campaign, CampaignStatus
from walletpass.campaigns.results import campaign_results
from walletpass.db import utcnow
from walletpass.i18n import formats
from walletpass.i18n.catalogues import N_
from walletpass.i18n.languages import babel_locale
from walletpass.loyalty.models import Member, Program
from walletpass.offers.models import Offer
from walletpass.tenancy.models import Merchant
from walletpass.web import auth
from walletpass.web.context import current_runtime
from walletpass.web.i18n import current_language

bp = Blueprint(
    "campaigns",
    __name__,
    url_prefix="/admin/campaigns",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static/campaigns",
)
# ``label(kind, value)`` in the templates: stored values in the page's language.
bp.context_processor(labels.template_context)


@bp.before_request
def _guard() -> Any:
    # Every campaign page: owners and marketers only, and CSRF on every state change.
    denied = auth.require_role(*auth.ADMIN_ROLES, login_endpoint="admin.login")(lambda: None)()
    if denied is not None:
        return denied
    # The admin's pages fall back to the shop's language (walletpass.web.i18n).
    with current_runtime().transaction(_merchant_id()) as session:
        g.merchant_language = session.scalar(
            select(Merchant.language).where(Merchant.id == _merchant_id())
        )
    return auth.check_csrf()


def _merchant_id() -> int:
    user = auth.current_user()
    assert user is not None  # the guard has run
    return user.merchant_id


def _zone(session: Session) -> ZoneInfo:
    merchant = session.get(Merchant, _merchant_id())
    return budget.merchant_zone(merchant) if merchant else ZoneInfo("UTC")


def _campaign(session: Session, campaign_id: int) -> Campaign:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None or campaign.merchant_id != _merchant_id():
        abort(404)
    return campaign


@bp.get("/")
def index() -> str:
    with current_runtime().transaction(_merchant_id()) as session:
        campaigns = session.scalars(select(Campaign).order_by(Campaign.id.desc()).limit(200)).all()
        return render_template(
            "campaigns/list.html", campaigns=campaigns, tz=_zone(session), now=utcnow()
        )


def _choices(session: Session) -> dict[str, Any]:
    programs = session.scalars(select(Program).order_by(Program.name)).all()
    offers = session.scalars(
        select(Offer).where(Offer.active.is_(True)).order_by(Offer.id.desc())
    ).all()
    tiers = sorted(
        t
        for t in session.scalars(select(Member.tier).where(Member.tier.is_not(None)).distinct())
        if t is not None  # for the type: the query already leaves NULL out
    )
    now = utcnow()
    return {
        "programs": programs,
        "offers": [o for o in offers if not o.valid_until or o.valid_until > now],
        "tiers": tiers,
        "rfm_segments": audiences.RFM_ALL,
        "kinds": audiences.KINDS,
    }


DEFAULTS = {
    "name": "",
    "title": "",
    "message": "",
    "variant_b": "",
    "audience_kind": "all",
    "tier": "",
    "lapsed_days": "60",
    "birthday_month": "",
    "tag": "",
    "rfm_segment": "champions",
    "program_id": "",
    "offer_id": "",
    "holdout_percent": "10",
    "when": "now",
    "scheduled_at": "",
    "ends_at": "",
}


@bp.route("/new", methods=["GET", "POST"])
def new() -> Any:
    runtime = current_runtime()
    values = dict(DEFAULTS)
    error_list: list[dict[str, str]] = []
    if request.method == "POST":
        values.update({k: request.form.get(k, "").strip() for k in DEFAULTS})
        try:
            with runtime.transaction(_merchant_id()) as session:
                campaign = _create_from_form(session, runtime.settings, values)
                campaign_id = campaign.id
        except errors.ValidationFailed as exc:
            error_list = _in_words(exc.errors or [{"field": "form", "message": exc.detail}])
        else:
            flash(_("Campaign created."), "ok")
            return redirect(url_for("campaigns.detail", campaign_id=campaign_id))
    with runtime.transaction(_merchant_id()) as session:
        grouped: dict[str, list[str]] = {}
        for err in error_list:
            grouped.setdefault(err["field"], []).append(err["message"])
        zone = _zone(session)
        return render_template(
            "campaigns/form.html",
            values=values,
            errors=grouped,
            error_list=error_list,
            timezone=zone.key,
            tz=zone,
            **_choices(session),
        ), (422 if error_list else 200)


# The form's words for each field's problem, in the page's language. The campaign service
# (shared with the API, whose readers get its English) names the field and the rule; the
# form says, for each field, what it takes.
FIELD_RULES = {
    "name": N_("Give the campaign a name (at most 200 characters)."),
    "title": N_("Keep the title to %(title_max)s characters at most."),
    "message": N_(
        "Write the message to show (at most %(message_max)s characters), or pick an offer "
        "with a description."
    ),
    "program_id": N_("Pick one of your programs."),
    "offer_id": N_("Pick an offer that is active and has not ended."),
    "holdout_share": N_("Hold back between 0 and %(holdout_max)s%% of the audience."),
    "scheduled_at": N_("Pick a date and time."),
    "ends_at": N_("Pick a date and time in the future."),
    "variants": N_("Keep variant B to %(message_max)s characters at most."),
    "audience.kind": N_("Pick who receives it."),
    "audience.tier": N_("Name the tier."),
    "audience.days": N_("Give a number of days between 1 and 3650."),
    "audience.month": N_("Give a month between 1 and 12."),
    "audience.tag": N_("Name the CRM tag (at most 100 characters)."),
    "audience.segment": N_("Pick one of the segments."),
}


def _in_words(problems: list[dict[str, str]]) -> list[dict[str, str]]:
    """The service's problems, each with the form's words for its field (one a field)."""
    limits = {
        "title_max": services.TITLE_MAX,
        "message_max": services.MESSAGE_MAX,
        "holdout_max": round(services.MAX_HOLDOUT * 100),
    }
    worded: dict[str, dict[str, str]] = {}
    for problem in problems:
        field = problem["field"]
        if field.startswith("variants"):
            field = "variants"
        rule = FIELD_RULES.get(field)
        if field in worded:
            continue
        if rule is None:
            worded[field] = {"field": field, "message": _("Check this field.")}
        else:
            worded[field] = {"field": field, "message": _(rule, **limits)}
    return list(worded.values())


def _local(value: str, zone: ZoneInfo, field: str) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise errors.ValidationFailed(
            f"{field}: not a date and time",
            errors=[{"field": field, "message": _("not a date and time")}],
        ) from exc
    return moment.replace(tzinfo=zone) if moment.tzinfo is None else moment


def _create_from_form(session: Session, settings: Any, values: dict[str, str]) -> Campaign:
    zone = _zone(session)
    kind = values["audience_kind"]
    audience: dict[str, Any] = {"kind": kind}
    if kind == "tier":
        audience["tier"] = values["tier"]
    elif kind == "lapsed":
        audience["days"] = values["lapsed_days"]
    elif kind == "birthday_month":
        audience["month"] = values["birthday_month"]
    elif kind == "tag":
        audience["tag"] = values["tag"]
    elif kind == "rfm":
        audience["segment"] = values["rfm_segment"]
    variants = None
    if values["variant_b"]:
        variants = [
            {"name": "A", "message": values["message"], "share": 0.5},
            {"name": "B", "message": values["variant_b"], "share": 0.5},
        ]
    try:
        holdout = float(values["holdout_percent"] or 0) / 100.0
    except ValueError:
        holdout = -1.0
    if values["when"] == "later":
        scheduled = _local(values["scheduled_at"], zone, "scheduled_at")
        if scheduled is None:
            raise errors.ValidationFailed(
                "scheduled_at: pick a date and time",
                errors=[{"field": "scheduled_at", "message": _("pick a date and time")}],
            )
    else:
        scheduled = utcnow()
    return services.create_campaign(
        session,
        settings,
        merchant_id=_merchant_id(),
        name=values["name"],
        title=values["title"],
        message=values["message"],
        audience=audience,
        program_id=int(values["program_id"]) if values["program_id"].isdigit() else None,
        offer_id=int(values["offer_id"]) if values["offer_id"].isdigit() else None,
        variants=variants,
        holdout_share=holdout,
        scheduled_at=scheduled,
        ends_at=_local(values["ends_at"], zone, "ends_at"),
    )


@bp.get("/audience.json")
def audience_count() -> ResponseReturnValue:
    """How many members an audience reaches (the create page shows it as you pick)."""
    args = request.args
    kind = args.get("kind", "all")
    audience = {
        "kind": kind,
        "tier": args.get("tier"),
        "days": args.get("days"),
        "month": args.get("month"),
        "tag": args.get("tag"),
        "segment": args.get("segment"),
    }
    program = args.get("program_id", "")
    with current_runtime().transaction(_merchant_id()) as session:
        try:
            counts = services.preview_audience(
                session, _merchant_id(), audience, int(program) if program.isdigit() else None
            )
        except errors.ValidationFailed as exc:
            return jsonify({"error": exc.detail}), 422
    return jsonify(counts)


def _progress(session: Session, campaign_id: int) -> dict[str, Any]:
    """The progress, with its pushes' pace in words in the merchant's time zone."""
    progress = services.progress(session, campaign_id)
    progress["pace"] = _pace_in_words(progress, _zone(session), utcnow())
    return progress


def _pace_in_words(progress: dict[str, Any], zone: ZoneInfo, now: datetime) -> str:
    """pace.describe's sentence in the page's language ("pushes paced at 500/s: all
    100,000 wallets notified by 10:42 (in 3 minutes)"); the API keeps pace.describe's."""
    paced = progress["pushes"]
    if paced is None:
        done = progress["status"] in (CampaignStatus.FINISHED, CampaignStatus.CANCELLED)
        return _("pushed at once") if done and progress["sent"] else "—"
    lang = current_language()
    locale = babel_locale(lang)
    due = datetime.fromisoformat(paced["last_due_at"]).astimezone(zone)
    if due.date() == now.astimezone(zone).date():
        clock = format_time(due, format="short", locale=locale)
    else:
        clock = formats.moment(due, lang)
    words = {
        "rate": formats.number(paced["rate"], lang),
        "count": formats.number(paced["pushes"], lang),
        "clock": clock,
    }
    if paced["estimated"]:
        text = _(
            "pushes paced at %(rate)s/s: about %(count)s wallets notified by about %(clock)s",
            **words,
        )
    else:
        text = _("pushes paced at %(rate)s/s: all %(count)s wallets notified by %(clock)s", **words)
    if paced["due_in_seconds"] > 0:
        left = format_timedelta(timedelta(seconds=paced["due_in_seconds"]), locale=locale)
        text = _("%(pace)s (in %(duration)s)", pace=text, duration=left)
    return str(text)


@bp.get("/<int:campaign_id>")
def detail(campaign_id: int) -> str:
    with current_runtime().transaction(_merchant_id()) as session:
        campaign = _campaign(session, campaign_id)
        offer = session.get(Offer, campaign.offer_id) if campaign.offer_id else None
        return render_template(
            "campaigns/detail.html",
            campaign=campaign,
            offer=offer,
            progress=_progress(session, campaign_id),
            results=campaign_results(session, campaign_id),
            tz=_zone(session),
            can_launch=campaign.status in (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED),
            can_cancel=campaign.status != CampaignStatus.CANCELLED
            and (campaign.ends_at is None or campaign.ends_at > utcnow()),
        )


@bp.get("/<int:campaign_id>/progress.json")
def progress_json(campaign_id: int) -> Response:
    with current_runtime().transaction(_merchant_id()) as session:
        _campaign(session, campaign_id)
        return jsonify(_progress(session, campaign_id))


@bp.get("/<int:campaign_id>/results.json")
def results_json(campaign_id: int) -> Response:
    with current_runtime().transaction(_merchant_id()) as session:
        _campaign(session, campaign_id)
        return jsonify(campaign_results(session, campaign_id))


@bp.post("/<int:campaign_id>/launch")
def launch(campaign_id: int) -> ResponseReturnValue:
    """Send now: the launch job is queued for now (the worker picks the audience)."""
    runtime = current_runtime()
    try:
        with runtime.transaction(_merchant_id()) as session:
            services.schedule(session, _campaign(session, campaign_id), utcnow())
    except errors.WalletpassError as exc:
        flash(exc.detail, "error")
    else:
        flash(_("Campaign queued to send now."), "ok")
    return redirect(url_for("campaigns.detail", campaign_id=campaign_id))


@bp.post("/<int:campaign_id>/cancel")
def cancel(campaign_id: int) -> ResponseReturnValue:
    runtime = current_runtime()
    try:
        with runtime.transaction(_merchant_id()) as session:
            services.cancel(session, _campaign(session, campaign_id))
    except errors.WalletpassError as exc:
        flash(exc.detail, "error")
    else:
        flash(_("Campaign cancelled."), "ok")
    return redirect(url_for("campaigns.detail", campaign_id=campaign_id))
