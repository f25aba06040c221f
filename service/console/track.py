"""The requester's tracking page at /t/{code}, the short link of every SMS to a requester: their need as a parcel's
steps, its deadline and timeline in local time, and, once the help is done, a form to rate it (once it is closed,
the rating given and, within the reopen window, a form to say it is not fixed after all).

No sign-in and no session: the tracking code (random, 96 bits) is the secret, as it is for GET /api/v1/track/{code}.
So there is no CSRF token either: a cross-site form cannot know the code, and a form post whose Origin (or, without
one, Referer) names another host is refused all the same. The page reads what the JSON answer reads
(service.api.track.tracking_view) and the form calls what the API's feedback calls (needs.give_feedback), through
the API's schema. Pages are Jinja, readable without JavaScript (there is none: the CSP forbids every script), in
Chinese or English from the console's catalogs; every error of this page, a refused rate limit or an unreachable
Redis included, is a page too, never JSON."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import marshmallow as ma
import redis
from flask import Blueprint, Response, redirect, render_template, request, url_for
from flask_babel import force_locale, gettext, lazy_gettext
from werkzeug.exceptions import HTTPException

from service import clock, needs
from service.api.schemas import FeedbackSchema
from service.api.track import tracking_view
from service.console.auth import LANGUAGES, deps
from service.exceptions import AidlineError, FeedbackRefused
from service.models import EventType, Need, NeedStatus

log = logging.getLogger("aidline.api")

blp = Blueprint("tracking_page", __name__, template_folder="templates")
PREFIX = "/t"

REFRESH_SECONDS = 30
"""How often an open need's page reloads itself."""
STILL = (NeedStatus.DONE, NeedStatus.CLOSED, NeedStatus.CANCELLED)
"""Statuses whose page does not reload itself (the feedback form stays as typed)."""

POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
"""No script at all; the stylesheet and the icon from this origin; forms post only here."""

STEPS = (
    ("received", lazy_gettext("Request received")),
    ("searching", lazy_gettext("Looking for a volunteer")),
    ("coming", lazy_gettext("Volunteer coming")),
    ("on_the_way", lazy_gettext("On the way")),
    ("arrived", lazy_gettext("Arrived")),
    ("done", lazy_gettext("Done")),
    ("closed", lazy_gettext("Request closed")),
)
"""A need's way, as a parcel's: each status reaches one of these."""
REACHED = {
    NeedStatus.QUEUED: 1,
    NeedStatus.MATCHING: 1,
    NeedStatus.OFFERED: 1,
    NeedStatus.ESCALATED: 1,
    NeedStatus.ASSIGNED: 2,
    NeedStatus.EN_ROUTE: 3,
    NeedStatus.ON_SITE: 4,
    NeedStatus.DONE: 5,
    NeedStatus.CLOSED: 6,
    NeedStatus.DEFERRED: 0,
    NeedStatus.CANCELLED: 0,
}
HEADLINES = {
    NeedStatus.QUEUED: lazy_gettext("We received your request and are looking for a volunteer near you."),
    NeedStatus.MATCHING: lazy_gettext("We received your request and are looking for a volunteer near you."),
    NeedStatus.OFFERED: lazy_gettext("We have asked a volunteer near you and are waiting for their answer."),
    NeedStatus.ASSIGNED: lazy_gettext("A volunteer has taken your request and will come."),
    NeedStatus.EN_ROUTE: lazy_gettext("Your volunteer is on the way."),
    NeedStatus.ON_SITE: lazy_gettext("Your volunteer has arrived."),
    NeedStatus.DONE: lazy_gettext("The help is done. Please tell us how it went."),
    NeedStatus.CLOSED: lazy_gettext("Your request is closed. Thank you."),
    NeedStatus.ESCALATED: lazy_gettext(
        "No volunteer nearby could take it yet: a dispatcher is now looking after your request in person."
    ),
    NeedStatus.DEFERRED: lazy_gettext("Your request is put off for now; we will contact you again."),
    NeedStatus.CANCELLED: lazy_gettext("Your request was cancelled."),
}
"""What the page says first, for each status."""
PLAIN = (NeedStatus.ESCALATED, NeedStatus.DEFERRED, NeedStatus.CANCELLED)
"""Statuses the page says plainly with their reason, in a box of their own."""

HIDDEN_EVENTS = frozenset(
    {
        EventType.NOTIFICATION,
        EventType.NOTIFICATION_UNDELIVERABLE,
        EventType.ESCALATION_STEP,
        EventType.ESCALATION_ACKNOWLEDGED,
        EventType.ESCALATION_LADDER_ENDED,
    }
)
"""Timeline entries about who was told inside the service, which mean nothing to the requester."""
TOLD_REASONS = frozenset({EventType.DEFERRED, EventType.CANCELLED})
"""Reasons a dispatcher wrote for the requester; the service's own (an escalation's search, a reopening) stay out:
they are in the dispatchers' words, not the requester's language, and the headline already says what happens."""

FIELD_MESSAGES = {
    "rating": lazy_gettext("Choose a rating from 1 to 5."),
    "fixed": lazy_gettext("Say whether it is fixed: yes or no."),
    "comment": lazy_gettext("The comment may be at most 2000 characters long."),
}
"""A refused field of the feedback form, said to the requester."""
FIXED = {"yes": True, "no": False}

NOT_YET = lazy_gettext("Your request is not done yet: you can rate the help once it is done.")
ALREADY_CLOSED = lazy_gettext("Your request is already closed and your feedback was taken. Thank you.")
TOO_LATE = lazy_gettext("This request was closed too long ago to reopen: please make a new request.")
REFUSALS = {"not_done": NOT_YET, "closed": ALREADY_CLOSED, "too_late": TOO_LATE}
"""Why feedback is refused (needs.FeedbackRefused's cause), said to the requester (the service's own wording is for
dispatchers)."""
NOT_FOUND = lazy_gettext("No need with this code")
OTHER_SITE = lazy_gettext("This form can only be sent from its own page.")
FAILURES = {
    404: NOT_FOUND,
    429: lazy_gettext("Too many requests from your connection: please wait a minute, then open the page again."),
    503: lazy_gettext("The service is busy: please open the page again in a few minutes."),
}
"""What an error page says, by status; any other status says SOMETHING_WRONG."""
SOMETHING_WRONG = lazy_gettext("Something went wrong: please open the page again later.")


@dataclass(frozen=True)
class Step:
    name: str
    label: str
    state: str  # done, current or todo
    detail: str = ""


def page_language(need: Need | None = None) -> str:
    """?lang= when given, else the requester's language when the need has one, else the browser's, else Chinese."""
    asked = request.args.get("lang", "")
    if asked in LANGUAGES:
        return asked
    if need is not None and need.requester_locale:
        return str(need.requester_locale.value)
    return request.accept_languages.best_match(["zh", "en"]) or "zh"


def local_time(iso: str | None, zone: ZoneInfo) -> str:
    """'2026-11-29T15:18:02.123Z' as '11-29 23:18' in the service's time zone."""
    if not iso:
        return ""
    return clock.parse(iso).astimezone(zone).strftime("%m-%d %H:%M")


def helpers_text(helpers: list[dict[str, Any]]) -> str:
    """'Li (2.1 km), Wang (3.0 km)': the helpers' first names and how far they were, never their phones."""
    return str(gettext(", ")).join(
        str(gettext("%(name)s (%(km).1f km)", name=h["first_name"], km=h["distance_km"])) for h in helpers
    )


def steps_of(status: NeedStatus, helpers: list[dict[str, Any]]) -> list[Step]:
    reached = REACHED[status]
    shown = []
    for index, (name, label) in enumerate(STEPS):
        state = "done" if index < reached or status is NeedStatus.CLOSED else "current" if index == reached else "todo"
        detail = helpers_text(helpers) if name == "coming" and state != "todo" else ""
        shown.append(Step(name=name, label=str(label), state=state, detail=detail))
    return shown


def page_context(need: Need) -> dict[str, Any]:
    """The page's values, from the same view the JSON answer gives (tracking_view)."""
    built = deps()
    view = tracking_view(deps=built, need=need)
    zone = ZoneInfo(built.settings.timezone)
    status = NeedStatus(view["status"])
    lang = page_language(need)
    incident = view["incident"]
    return {
        "code": need.tracking_code,
        "view": view,
        "status": status,
        "headline": str(HEADLINES[status]),
        "plain": status in PLAIN,
        "reason": view["status_reason"] if status in (NeedStatus.DEFERRED, NeedStatus.CANCELLED) else None,
        "told_reasons": TOLD_REASONS,
        "steps": steps_of(status, view["volunteers"]),
        "due": local_time(view["committed_deadline"] or view["deadline"], zone),
        "show_due": status not in (NeedStatus.CLOSED, NeedStatus.CANCELLED, NeedStatus.DONE),
        "received_at": local_time(view["created_at"], zone),
        "timeline": [
            {**event, "local": local_time(event["at"], zone)}
            for event in view["timeline"]
            if event["type"] not in HIDDEN_EVENTS
        ],
        "timezone": built.settings.timezone,
        "incident_note": incident["message"][lang] if incident else None,
        "feedback_open": status is NeedStatus.DONE,
        "reopen_open": status is NeedStatus.CLOSED and needs.takes_feedback(deps=built, need=need),
        "refresh": REFRESH_SECONDS if status not in STILL else None,
    }


def render(template: str, lang: str, http_status: int = 200, **context: Any) -> Response:
    """A page of this blueprint in one language, with its headers (no caching: the page is the requester's)."""
    with force_locale(lang):
        html = render_template(f"track/{template}", lang=lang, **context)
    response = Response(html, status=http_status, mimetype="text/html")
    response.headers["Content-Security-Policy"] = POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"  # the code never leaves this origin in a Referer
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Robots-Tag"] = "noindex"
    return response


def render_page(need: Need, http_status: int = 200, **extra: Any) -> Response:
    lang = page_language(need)
    with force_locale(lang):
        context = page_context(need)
    return render("page.html", lang, http_status, **context, **extra)


def message_page(status: int, text: Any, need: Need | None = None) -> Response:
    """A page saying one thing (an unknown code, a refused post, an error), in the reader's language."""
    lang = page_language(need)
    with force_locale(lang):
        title = str(text)
    return render("message.html", lang, status, title=title)


@blp.get(f"{PREFIX}/<string:code>")
def page(code: str) -> Response:
    """The tracking page: steps, deadline, timeline, helpers' first names; the feedback form once done (an unknown
    code is the 404 page of page_error)."""
    return render_page(needs.need_for_tracking(deps=deps(), code=code))


@blp.get(f"{PREFIX}/<string:code>/feedback")
def feedback_page(code: str) -> Any:
    """The form's address opened as a page (a reload after sending it): the tracking page."""
    lang = request.args.get("lang", "")
    return redirect(url_for("tracking_page.page", code=code, lang=lang if lang in LANGUAGES else None), code=303)


@blp.post(f"{PREFIX}/<string:code>/feedback")
def feedback(code: str) -> Response:
    """The feedback form: the API's schema and needs.give_feedback; the page again, thanking or saying why not."""
    need = needs.need_for_tracking(deps=deps(), code=code)
    if not same_site():
        return message_page(403, OTHER_SITE, need)
    form = request.form
    values = {"rating": form.get("rating", ""), "fixed": form.get("fixed", ""), "comment": form.get("comment", "")}
    try:
        body = FeedbackSchema().load(feedback_body(form))
        needs.give_feedback(
            deps=deps(), code=code, rating=body["rating"], comment=body.get("comment"), fixed=body["fixed"]
        )
    except ma.ValidationError as error:
        messages: Any = error.messages if isinstance(error.messages, dict) else {"_schema": error.messages}
        refused = {
            name: " ".join(map(str, texts)) if isinstance(texts, list) else str(texts)
            for name, texts in messages.items()
        }
        other = "; ".join(text for name, text in refused.items() if name not in FIELD_MESSAGES) or None
        return render_page(need, 422, errors=refused, field_messages=FIELD_MESSAGES, values=values, refusal=other)
    except FeedbackRefused as error:  # not done yet, already closed, or closed too long ago
        now = deps().store.needs.get(need.id) or need
        refusal = REFUSALS[error.cause]
        with force_locale(page_language(now)):
            text = str(refusal)
        return render_page(now, error.status, refusal=text, values=values)
    changed = needs.need_for_tracking(deps=deps(), code=code)
    thanks = "closed" if changed.status is NeedStatus.CLOSED else "reopened"
    return render_page(changed, thanks=thanks)


def feedback_body(form: Any) -> dict[str, Any]:
    """The form as FeedbackSchema's body: a number as a number, yes/no as a boolean, an empty comment left out."""
    body: dict[str, Any] = {}
    rating = form.get("rating", "").strip()
    if rating:
        body["rating"] = int(rating) if rating.isascii() and rating.isdigit() and len(rating) < 4 else rating
    fixed = form.get("fixed", "")
    if fixed:
        body["fixed"] = FIXED.get(fixed, fixed)
    comment = form.get("comment", "").strip()
    if comment:
        body["comment"] = comment
    return body


def same_site() -> bool:
    """The post comes from a page of this site: its Origin (or, without one, its Referer) names this host or the
    public URL's; a post naming neither (a client that sends neither, e.g. curl) is let through, the code being the
    secret."""
    source = request.headers.get("Origin") or request.headers.get("Referer")
    if not source:
        return True
    host = urlsplit(source).netloc if source != "null" else ""
    return bool(host) and host in {request.host, urlsplit(deps().settings.public_url).netloc}


@blp.errorhandler(Exception)
def page_error(error: Exception) -> Response:
    """Every failure of these pages as a page: a refused rate limit (429), Redis unreachable (503), anything else."""
    if isinstance(error, HTTPException):
        status = error.code or 500
    elif isinstance(error, AidlineError):
        status = error.status
    elif isinstance(error, (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)):
        log.error("redis unavailable: %s", error)
        status = 503
    else:
        log.exception("unhandled error")
        status = 500
    response = message_page(status, FAILURES.get(status, SOMETHING_WRONG))
    if status == 503:
        response.headers["Retry-After"] = "5"
    return response
