"""The console's pages and actions. Each action calls the domain function the API's endpoint calls, with the
same role rules, and shows the domain's refusal (the message the API answers with its 409 or 422)."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_wtf.csrf import CSRFError, CSRFProtect

from service import access, board, clock, dispatch, incidents, needs, offers, volunteers
from service.api.schemas import AssignSchema, NeedCreateSchema, OptionalReasonSchema, ReasonSchema
from service.catalog import KINDS
from service.console import auth, present
from service.console.auth import LANG_COOKIE, LANGUAGES, principal, signed_in
from service.console.wording import field_message, refusal
from service.exceptions import AidlineError
from service.models import IncidentStatus, NeedKind, NeedStatus, Priority, Role, Skill, Vulnerability

blp = Blueprint("console", __name__, template_folder="templates", static_folder="static")
present.register(blp)

LATEST = 20
"""Newest needs the board lists under the queue."""

ACTIONS = ("assign", "rematch", "defer", "cancel", "reopen")


@blp.context_processor
def page_context() -> dict[str, Any]:
    """Who is signed in and the language, for every page."""
    who = auth.session_principal()
    return {
        "signed_in": who is not None,
        "role_name": present.role_name(who.role) if who else "",
        "current_lang": present.lang(),
    }


@blp.before_request
def csrf_check() -> Any:
    """Every POST of the console carries the session's CSRF token (a form field or the X-CSRFToken header):
    Flask-WTF's CSRFProtect, applied to the console's blueprint only (the JSON API uses bearer tokens)."""
    if request.method in ("POST", "PUT", "PATCH", "DELETE"):
        csrf: CSRFProtect = current_app.extensions["csrf"]
        try:
            csrf.protect()
        except CSRFError as error:
            return render_template("console/refused.html", message=error.description), 400
    return None


def is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


# ---- signing in, languages ------------------------------------------------------------------------


@blp.get("/login")
def login() -> Any:
    """The sign-in page: a token, once."""
    if auth.session_principal() is not None:
        return redirect(url_for("console.home"))
    return render_template("console/login.html", error=None)


@blp.post("/login")
def login_post() -> Any:
    """Check the token and start a session; an unknown token is refused (401), so are volunteer, intake and captain
    tokens (403)."""
    try:
        auth.sign_in(request.form.get("token", ""))
    except auth.SignInRefused as refused:
        return render_template("console/login.html", error=str(refused)), refused.status
    return redirect(url_for("console.home"), code=303)


@blp.post("/logout")
def logout() -> Any:
    """End the session."""
    auth.sign_out()
    return redirect(url_for("console.login"), code=303)


@blp.post("/lang")
def language() -> Any:
    """Switch the console's language; remembered in a cookie for a year."""
    lang = request.form.get("lang", "")
    if lang not in LANGUAGES:
        abort(400)
    back = request.form.get("next", "")
    target = back if back.startswith("/console") and "//" not in back else url_for("console.home")
    response = redirect(target, code=303)
    response.set_cookie(
        LANG_COOKIE,
        lang,
        max_age=365 * 24 * 3600,
        path="/console",
        httponly=True,
        samesite="Strict",
        secure=request.is_secure,
    )
    return response


# ---- the board --------------------------------------------------------------------------------------


def board_context() -> dict[str, Any]:
    deps, who = auth.deps(), principal()
    rows = board.needs_a_human(deps=deps, principal=who)
    latest, _ = needs.list_needs(deps=deps, principal=who, limit=LATEST)
    moment = deps.clock.now()
    return {
        "latest": [(n, max((moment - clock.parse(n.created_at)).total_seconds(), 0.0)) for n in latest],
        "counts": board.counts(deps=deps, principal=who),
        "rows": rows,
        "statuses": list(NeedStatus),
        "updated_at": clock.iso(deps.clock.now()),
    }


@blp.get("")
@blp.get("/")
@signed_in
def home() -> Any:
    """The board: counts by status and the needs that need a human first."""
    return render_template("console/board.html", **board_context())


@blp.get("/board")
@signed_in
def board_live() -> Any:
    """The board's live part, polled every few seconds by the board page."""
    return render_template("console/_board_live.html", **board_context())


# ---- the need panel ---------------------------------------------------------------------------------


def panel_context(need_id: str, result: dict[str, Any] | None = None) -> dict[str, Any]:
    deps, who = auth.deps(), principal()
    need, need_offers = needs.read_need(deps=deps, need_id=need_id, principal=who)
    private = access.sees_private_details(who, accepted=set())
    events = needs.events_as_seen(deps=deps, need=need, principal=who)
    deliveries = needs.deliveries_as_seen(deps=deps, need=need, principal=who)
    volunteer_names = {
        v.id: v.name for v in deps.store.volunteers.get_many(sorted({o.volunteer_id for o in need_offers})) if v
    }
    picks = []
    if who.role is Role.DISPATCHER:
        picks = board.nearest_candidates(deps=deps, need_id=need_id, principal=who)
    return {
        "need": need,
        "offers": need_offers,
        "names": volunteer_names,
        "private": private,
        "events": events,
        "deliveries": deliveries,
        "picks": picks,
        "result": result or {},
        "can_act": who.role is Role.DISPATCHER,
        "priorities": list(Priority),
    }


def render_panel(need_id: str, result: dict[str, Any] | None = None, status: int = 200) -> Any:
    context = panel_context(need_id, result)
    if is_htmx():
        return render_template("console/_need_panel.html", **context), 200
    return render_template("console/need.html", **context), status


@blp.get("/needs/<string:need_id>")
@signed_in
def need_panel(need_id: str) -> Any:
    """A need's panel: details, timeline, offers, notifications and the actions."""
    try:
        return render_panel(need_id)
    except AidlineError as error:
        return render_template("console/refused.html", message=error.message), error.status


def field_messages(error: ma.ValidationError) -> str:
    messages: Any = error.messages
    parts = []
    for name, texts in messages.items() if isinstance(messages, dict) else []:
        parts.append(f"{name}: {' '.join(str(t) for t in texts) if isinstance(texts, list) else texts}")
    return "; ".join(parts) or str(messages)


@blp.post("/needs/<string:need_id>/<string:action>")
@signed_in
def need_action(need_id: str, action: str) -> Any:
    """Assign, rematch, defer, cancel, reopen or change priority, as the API's endpoint of the same name does."""
    if action not in (*ACTIONS, "priority"):
        abort(404)
    deps, who = auth.deps(), principal()
    form = request.form
    try:
        access.require_role(who, Role.DISPATCHER)
        if action == "assign":
            body = AssignSchema().load({"volunteer_id": form.get("volunteer_id", "")})
            offers.assign_volunteer(deps=deps, need_id=need_id, volunteer_id=body["volunteer_id"], principal=who)
            done = gettext("Assigned to %(volunteer)s.", volunteer=body["volunteer_id"])
        elif action == "rematch":
            dispatch.rematch_need(deps=deps, need_id=need_id, principal=who)
            done = gettext("Searching again for volunteers.")
        elif action == "defer":
            reason = ReasonSchema().load({"reason": form.get("reason", "")})["reason"]
            needs.defer_need(deps=deps, need_id=need_id, reason=reason, principal=who)
            done = gettext("Deferred: the requester sees the reason.")
        elif action == "cancel":
            reason = ReasonSchema().load({"reason": form.get("reason", "")})["reason"]
            needs.cancel_need(deps=deps, need_id=need_id, reason=reason, principal=who)
            done = gettext("Cancelled; its volunteers are released.")
        elif action == "reopen":
            reason = OptionalReasonSchema().load({"reason": form.get("reason") or None}).get("reason")
            needs.reopen_need(deps=deps, need_id=need_id, reason=reason, actor=who.actor)
            done = gettext("Reopened: back in the queue.")
        else:
            priority = Priority(form.get("priority", "")) if form.get("priority") in set(Priority) else None
            if priority is None:
                raise ma.ValidationError({"priority": ["Must be one of: critical, high, normal, low."]})
            needs.change_priority(deps=deps, need_id=need_id, priority=priority, principal=who)
            done = gettext("Priority changed.")
    except ma.ValidationError as error:
        return action_refused(need_id, action, gettext("Invalid input: %(fields)s", fields=field_messages(error)), 422)
    except AidlineError as error:
        if error.status == 404:
            return render_template("console/refused.html", message=error.message), 404
        return action_refused(need_id, action, refusal(error), error.status)
    return render_panel(need_id, {"action": action, "ok": True, "message": done})


def action_refused(need_id: str, action: str, message: str, status: int) -> Any:
    return render_panel(need_id, {"action": action, "ok": False, "message": message}, status)


# ---- a new need ------------------------------------------------------------------------------------


def need_from_form(form: Any) -> dict[str, Any]:
    """The form as the JSON body POST /api/v1/needs takes: empty fields left out, numbers as numbers."""

    def number(text: str) -> Any:
        try:
            return float(text)
        except ValueError:
            return text

    body: dict[str, Any] = {"kind": form.get("kind", "")}
    if form.getlist("skills"):
        body["skills"] = form.getlist("skills")
    lat, lon = form.get("lat", "").strip(), form.get("lon", "").strip()
    if lat or lon:
        body["location"] = {"lat": number(lat), "lon": number(lon)}
    for name in ("address", "description", "grid"):
        if form.get(name, "").strip():
            body[name] = form[name].strip()
    body["priority"] = form.get("priority") or "normal"
    body["vulnerability"] = form.getlist("vulnerability")
    if form.get("volunteers_needed", "").strip():
        text = form["volunteers_needed"].strip()
        body["volunteers_needed"] = int(text) if text.isdigit() else text
    requester = {k: form.get(f"requester_{k}", "").strip() for k in ("name", "phone")}
    if any(requester.values()):
        body["requester"] = {k: v for k, v in requester.items() if v}
    return body


def flatten(errors: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """{'location': {'lat': [...]}} as {'location.lat': '...'}, each message in the console's language."""
    flat: dict[str, str] = {}
    for key, value in errors.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            flat.update(flatten(value, name))
        else:
            flat[name] = " ".join(map(field_message, value)) if isinstance(value, list) else field_message(value)
    return flat


def new_need_context(values: dict[str, Any], errors: dict[str, str], message: str | None) -> dict[str, Any]:
    return {
        "kinds": list(NeedKind),
        "skills": list(Skill),
        "priorities": list(Priority),
        "vulnerabilities": list(Vulnerability),
        "kind_skills": {k.value: [s.value for s in spec.skills] for k, spec in KINDS.items()},
        "values": values,
        "errors": errors,
        "message": message,
        "can_act": principal().role is Role.DISPATCHER,
        "tiles": auth.deps().settings.map_tiles_url,
    }


@blp.get("/needs/new")
@signed_in
def new_need() -> Any:
    """The hotline operator's form."""
    return render_template("console/new_need.html", **new_need_context({"priority": "normal"}, {}, None))


@blp.post("/needs/new")
@signed_in
def new_need_post() -> Any:
    """Submit the form through the schema and the function POST /api/v1/needs uses; field errors inline."""
    deps, who = auth.deps(), principal()
    values = {k: (request.form.getlist(k) if k in ("skills", "vulnerability") else v) for k, v in request.form.items()}
    try:
        access.require_role(who, Role.DISPATCHER, Role.INTAKE)
        need_in = NeedCreateSchema().load(need_from_form(request.form))
        need = needs.submit_need(deps=deps, need_in=need_in, principal=who)
    except ma.ValidationError as error:
        errors = flatten(error.messages if isinstance(error.messages, dict) else {"_schema": error.messages})
        message = gettext("Invalid input: %(fields)s", fields=", ".join(sorted(errors)))
        page = render_template("console/new_need.html", **new_need_context(values, errors, message))
        return page, 200 if is_htmx() else 422  # htmx swaps only successful answers in
    except AidlineError as error:
        errors = flatten((error.errors or {}).get("json", {}))
        page = render_template("console/new_need.html", **new_need_context(values, errors, error.message))
        return page, 200 if is_htmx() else error.status
    target = url_for("console.need_panel", need_id=need.id)
    if is_htmx():
        return "", 200, {"HX-Redirect": target}
    return redirect(target, code=303)


# ---- volunteers ---------------------------------------------------------------------------------------


@blp.get("/volunteers")
@signed_in
def volunteer_list() -> Any:
    """Volunteers with filters (skill, on duty, grid), in pages."""
    args = request.args
    skill = Skill(args["skill"]) if args.get("skill") in set(Skill) else None
    on_duty = {"yes": True, "no": False}.get(args.get("on_duty", ""))
    grid = args.get("grid", "").strip() or None
    items, next_cursor = volunteers.list_volunteers(
        deps=auth.deps(), skill=skill, on_duty=on_duty, grid=grid, limit=50, cursor=args.get("cursor") or None
    )
    return render_template(
        "console/volunteers.html",
        items=items,
        next_cursor=next_cursor,
        skills=list(Skill),
        filters={"skill": skill.value if skill else "", "on_duty": args.get("on_duty", ""), "grid": grid or ""},
        can_act=principal().role is Role.DISPATCHER,
        result=None,
    )


@blp.post("/volunteers/<string:volunteer_id>/duty")
@signed_in
def volunteer_duty(volunteer_id: str) -> Any:
    """Put a volunteer on or off duty (off duty withdraws their pending offers), as the API's availability."""
    deps, who = auth.deps(), principal()
    on_duty = request.form.get("on_duty") == "true"
    try:
        access.require_self_or_dispatcher(who, volunteer_id)
        volunteer = volunteers.set_availability(deps=deps, volunteer_id=volunteer_id, on_duty=on_duty)
        result = {
            "ok": True,
            "message": gettext(
                "%(name)s is now %(duty)s.",
                name=volunteer.name,
                duty=gettext("on duty") if on_duty else gettext("off duty"),
            ),
        }
        status = 200
    except AidlineError as error:
        volunteer = None
        result, status = {"ok": False, "message": error.message}, error.status
    if is_htmx() and volunteer is not None:
        return render_template("console/_volunteer_row.html", v=volunteer, can_act=True, result=result)
    return render_template(
        "console/refused.html" if volunteer is None else "console/done.html", message=result["message"]
    ), status


# ---- the map ----------------------------------------------------------------------------------------


@blp.get("/map")
@signed_in
def map_page() -> Any:
    """Needs by priority and status, on-duty volunteers with their load, incidents as areas, grids."""
    return render_template("console/map.html", tiles=auth.deps().settings.map_tiles_url)


@blp.get("/map/data")
@signed_in
def map_data() -> Any:
    """The map's GeoJSON FeatureCollection: open needs, available volunteers, open incidents, grids."""
    return present.map_features(deps=auth.deps(), principal=principal())


# ---- incidents ----------------------------------------------------------------------------------------


@blp.get("/incidents")
@signed_in
def incident_list() -> Any:
    """Incidents, newest first (open ones unless all are asked for)."""
    status = None if request.args.get("status") == "all" else IncidentStatus.OPEN
    items, next_cursor = incidents.list_incidents(
        deps=auth.deps(), principal=principal(), status=status, limit=50, cursor=request.args.get("cursor") or None
    )
    reports = {i.id: incidents.report(deps=auth.deps(), incident=i) for i in items}
    return render_template(
        "console/incidents.html", items=items, reports=reports, next_cursor=next_cursor, all=status is None
    )


@blp.get("/incidents/<string:incident_id>")
@signed_in
def incident_detail(incident_id: str) -> Any:
    """One incident and its needs."""
    deps = auth.deps()
    try:
        incident = incidents.read_incident(deps=deps, incident_id=incident_id, principal=principal())
    except AidlineError as error:
        return render_template("console/refused.html", message=error.message), error.status
    members = [n for n in deps.store.needs.get_many(incident.need_ids) if n is not None]
    return render_template(
        "console/incident.html",
        incident=incident,
        report=incidents.report(deps=deps, incident=incident),
        members=members,
    )
