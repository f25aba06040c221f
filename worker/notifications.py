"""Working out who hears about an event, and delivering each message through apprise.

One delivery per (event, recipient): its id is derived from both, so a retried planning job
creates nothing new and a delivery already sent is never sent again. A delivery walks its
recipient's channels in order; each channel gets RQ's retries before the next is tried.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any
from zoneinfo import ZoneInfo

from rq import get_current_job

from service import captains, clock, incidents, jobs, ladder, lifecycle
from service.backlog import DRAIN_SECONDS, NOTIFY, announce, enqueue_drain
from service.deps import Deps
from service.messages import render
from service.models import Event, EventType, Need, OfferStatus, Topic
from service.privacy import first_name, mask_channel

log = logging.getLogger("aidline.notify")
logging.getLogger("apprise").setLevel(logging.WARNING)

VOLUNTEER_TOPICS = frozenset(
    {
        Topic.OFFER,
        Topic.OFFER_REMINDER,
        Topic.ASSIGNED_BY_DISPATCHER,
        Topic.CANCELLED,
        Topic.OFFER_TAKEN,
        Topic.OFFER_PREEMPTED,
        Topic.OFFER_MOVED,
        Topic.ESCALATED_CAPTAIN,
    }
)
REQUESTER_TOPICS = frozenset({Topic.RECEIVED, Topic.ASSIGNED, Topic.EN_ROUTE, Topic.DONE, Topic.DEFERRED})
DISPATCHER_TOPICS = frozenset({Topic.ESCALATED, Topic.OVERDUE, Topic.DELIVERY_FAILED})
OFFER_TOPICS = frozenset({Topic.OFFER, Topic.OFFER_REMINDER})
"""Messages asking a volunteer to answer an offer: worth sending only while the offer is pending (deliver)."""
CAPTAIN_TOPICS = frozenset({Topic.VISIT_OVERDUE})
"""What a grid's captain must hear about a need of their grid (grid_captain_recipients)."""
INCIDENT_TOPICS = frozenset({Topic.INCIDENT_OPENED, Topic.INCIDENT_MILESTONE})
"""About an incident, not one need: told to the dispatchers and to the grids of its needs."""
SMS_SCHEMES = {
    "twilio",
    "sns",
    "clicksend",
    "d7sms",
    "kavenegar",
    "msg91",
    "nexmo",
    "vonage",
    "sinch",
    "bulksms",
    "smseagle",
    "plivo",
    "messagebird",
    "signal",
    "textbelt",
    "seven",
    "bulkvs",
    "smsmgr",
    "sms",
}


class DeliveryFailed(Exception):
    """A channel did not accept the message; RQ retries the job (raised only while tries are left)."""

    retried = True
    """The worker logs it in one line, not with a traceback: an expected failure (worker.context)."""


def delivery_id(topic: Topic, need_id: str, recipient: str, extra: str) -> str:
    digest = hashlib.sha256(f"{topic.value}|{need_id}|{recipient}|{extra}".encode()).hexdigest()[:20]
    return f"dlv_{digest}"


def is_sms(url: str) -> bool:
    return url.split("://", 1)[0].lower() in SMS_SCHEMES


def links(deps: Deps, need: Need, offer_id: str = "") -> dict[str, str]:
    base = deps.settings.public_url.rstrip("/")
    values = {"track": f"{base}/t/{need.tracking_code}", "link": f"{base}/api/v1/needs/{need.id}"}
    if offer_id:
        values["link"] = f"{base}/api/v1/offers/{offer_id}"
    return values


def recipients(
    deps: Deps, topic: Topic, need: Need, volunteer_id: str, tier_name: str = ""
) -> list[tuple[str, str, list[str]]]:
    """(recipient, locale, channels in order) for one event; `tier_name`: the ladder's tier told (ESCALATED_TIER)."""
    if topic in VOLUNTEER_TOPICS:
        volunteer = deps.store.volunteers.get(volunteer_id) if volunteer_id else None
        if volunteer is None or not volunteer.channels:
            return []
        return [(f"volunteer:{volunteer.id}", volunteer.locale.value, list(volunteer.channels))]
    if topic in REQUESTER_TOPICS:
        template = deps.settings.sms_url_template
        if not template or not need.requester.phone:
            return []
        phone = need.requester.phone
        return [
            (
                "requester",
                need.requester_locale.value if need.requester_locale else "zh",
                [template.format(phone=phone, phone_digits=phone[1:])],
            )
        ]
    if topic in CAPTAIN_TOPICS:
        return grid_captain_recipients(deps, need.grid)
    if topic in DISPATCHER_TOPICS:
        channels = list(captains.dispatcher_channels(deps, need.grid))
        return [(f"dispatchers:{need.grid or 'default'}", "zh", channels)] if channels else []
    if topic is Topic.ESCALATED_TIER:
        tier = ladder.tier_named(deps.settings, need.grid, tier_name)
        return [(f"tier:{tier.name}", "zh", list(tier.channels))] if tier is not None and tier.channels else []
    raise ValueError(f"no audience for notification topic {topic.value}")


def grid_captain_recipients(deps: Deps, grid: str | None) -> list[tuple[str, str, list[str]]]:
    """Who hears what a grid's captain must: the captain on call for the grid now (its rota), through their own
    channels in their language, and the grid's channels (AIDLINE_GRID_CHANNELS) beside them. Nobody on call (or
    the one on call has no channels): the grid's channels, else the dispatchers'."""
    grid_channels = list(deps.settings.grid_channels.get(grid or "", ()))
    on_call = captains.on_call(deps=deps, grid=grid).volunteer_id if grid else None
    captain = deps.store.volunteers.get(on_call) if on_call else None
    if captain is not None and captain.channels:
        told = [(f"volunteer:{captain.id}", captain.locale.value, list(captain.channels))]
        return told + ([(f"dispatchers:{grid}", "zh", grid_channels)] if grid_channels else [])
    channels = list(captains.dispatcher_channels(deps, grid))
    return [(f"dispatchers:{grid or 'default'}", "zh", channels)] if channels else []


def local_time(deps: Deps, stamp: str, *, with_date: bool = False) -> str:
    """A stored UTC time as people read it: in AIDLINE_TIMEZONE (default UTC), named when UTC."""
    zone = deps.settings.timezone
    moment = clock.parse(stamp).astimezone(ZoneInfo(zone))
    text = moment.strftime("%m-%d %H:%M" if with_date else "%H:%M")
    return f"{text} UTC" if zone == "UTC" else text


def message_values(
    deps: Deps, topic: Topic, need: Need, volunteer_id: str, offer_id: str, reason: str
) -> dict[str, Any]:
    values: dict[str, Any] = {
        "kind": need.kind.value,
        "priority": need.priority.value,
        "deadline": local_time(deps, need.committed_deadline or need.deadline, with_date=True),
        "reason": reason or need.status_reason or "",
        **links(deps, need, offer_id),
    }
    offer = deps.store.offers.get(offer_id) if offer_id else None
    if offer is not None:
        values.update(
            code=offer.code, distance=f"{offer.distance_km:.1f}", accept_by=local_time(deps, offer.expires_at)
        )
    accepted = [o for o in deps.store.offers.of_need(need.id) if o.status is OfferStatus.ACCEPTED]
    if volunteer_id and not offer:
        mine = [o for o in accepted if o.volunteer_id == volunteer_id]
        if mine:
            values["distance"] = f"{mine[0].distance_km:.1f}"
    if accepted and topic in REQUESTER_TOPICS:
        volunteer = deps.store.volunteers.get(accepted[0].volunteer_id)
        values["volunteer"] = first_name(volunteer.name) if volunteer else ""
        values["distance"] = f"{accepted[0].distance_km:.1f}"
    return values


def plan_deliveries(
    *,
    deps: Deps,
    topic: Topic,
    need_id: str,
    volunteer_id: str = "",
    offer_id: str = "",
    reason: str = "",
    event_id: str = "",
    incident_id: str = "",
) -> list[str]:
    """Create one delivery per recipient and queue it; a second run finds them made and adds nothing."""
    if topic in INCIDENT_TOPICS:
        return plan_incident_deliveries(deps=deps, topic=topic, incident_id=incident_id, milestone=reason)
    need = deps.store.needs.get(need_id)
    if need is None:
        return []
    if topic is Topic.OFFER and offer_id:
        schedule_reminder(deps, offer_id)
    planned = []
    tier_name = reason if topic is Topic.ESCALATED_TIER else ""
    if tier_name:
        reason = ""  # the message gives the need's own reason for escalating
    for recipient, locale, channels in recipients(deps, topic, need, volunteer_id, tier_name):
        values = message_values(deps, topic, need, volunteer_id, offer_id, reason)
        if topic in (Topic.ESCALATED_CAPTAIN, Topic.ESCALATED_TIER):
            values.update(code=captains.ack_code(deps=deps, need_id=need_id), tier=tier_name)
        title, body = render(topic.value, locale, values)
        sms_body = render(topic.value, locale, {**values, "link": ""})[1]
        did = delivery_id(topic, need_id, recipient, f"{offer_id}|{reason or tier_name}|{event_id}")
        about_offer = offer_id if topic in OFFER_TOPICS else ""
        record_delivery(
            deps, did, topic, recipient, channels, (title, body, sms_body), need_id=need_id, offer_id=about_offer
        )
        planned.append(did)
    return planned


def record_delivery(
    deps: Deps,
    did: str,
    topic: Topic,
    recipient: str,
    channels: list[str],
    texts: tuple[str, str, str],
    *,
    need_id: str = "",
    incident_id: str = "",
    offer_id: str = "",
) -> None:
    """Record one planned delivery (title, body, SMS body) about a need or an incident, and queue its sending
    unless it was recorded before. A delivery asking to answer an offer names it (``offer_id``): it is sent
    only while the offer is pending."""
    title, body, sms_body = texts
    owner = {"incident_id": incident_id} if incident_id else {"need_id": need_id}
    created = deps.store.deliveries.create(
        did,
        need_id=need_id,
        incident_id=incident_id,
        fields={
            "id": did,
            **owner,
            **({"offer_id": offer_id} if offer_id else {}),
            "topic": topic.value,
            "recipient": recipient,
            "title": title,
            "body": body,
            "sms_body": sms_body,
            "channels": channels,
            "channel_index": 0,
            "status": "pending",
            "created_at": clock.iso(deps.clock.now()),
        },
    )
    if created:
        deps.jobs.enqueue(jobs.DELIVER, queue=jobs.NOTIFY, delivery_id=did)


def incident_recipients(deps: Deps, grids: list[str]) -> list[tuple[str, str, list[str]]]:
    """The dispatchers (AIDLINE_DISPATCHER_CHANNELS) and each grid of the incident's needs with channels."""
    out = []
    if deps.settings.dispatcher_channels:
        out.append(("dispatchers:default", "zh", list(deps.settings.dispatcher_channels)))
    for grid in grids:
        channels = list(deps.settings.grid_channels.get(grid, ()))
        if channels:
            out.append((f"dispatchers:{grid}", "zh", channels))
    return out


def plan_incident_deliveries(*, deps: Deps, topic: Topic, incident_id: str, milestone: str) -> list[str]:
    """One delivery per recipient of an incident's opening or milestone; planning twice adds nothing."""
    incident = deps.store.incidents.get(incident_id)
    if incident is None:
        return []
    summary = incidents.report(deps=deps, incident=incident)
    values = {
        "family": incident.family.value,
        "size": len(incident.need_ids),
        "vulnerable": summary.vulnerable,
        "radius": f"{incident.radius_km:.1f}",
        "resolved": sum(n for status, n in summary.counts.items() if status in lifecycle.RESOLVED),
        "link": f"{deps.settings.public_url.rstrip('/')}/api/v1/incidents/{incident_id}",
    }
    template = topic.value if topic is Topic.INCIDENT_OPENED else f"incident_{milestone}"
    planned = []
    for recipient, locale, channels in incident_recipients(deps, summary.grids):
        title, body = render(template, locale, values)
        did = delivery_id(topic, incident_id, recipient, milestone)
        sms_body = render(template, locale, {**values, "link": ""})[1]
        record_delivery(deps, did, topic, recipient, channels, (title, body, sms_body), incident_id=incident_id)
        planned.append(did)
    return planned


NOTIFY_BATCH = 50
"""Announcements planned per round trip of the notify drain."""


def drain_notifications(*, deps: Deps, owner: str) -> int:
    """Plan the announcements waiting in the outbox, oldest first; returns how many.

    One drain at a time holds the outbox (a lock renewed per batch), so reading a batch and then
    trimming it is safe; a drain that dies leaves its batch in the outbox for the next one, and
    planning twice delivers once. The flag is cleared before the last look, so an announcement
    added meanwhile re-arms a drain.
    """
    planned = 0
    backlog = deps.store.backlog
    started = deps.clock.now()
    while backlog.lock(NOTIFY, owner=owner, ttl_seconds=60):
        batch = backlog.peek_outbox(NOTIFY_BATCH)
        if not batch:
            backlog.disarm(NOTIFY)
            if backlog.outbox_count() == 0:
                break
            continue
        for item in batch:
            plan_deliveries(
                deps=deps,
                topic=Topic(item["topic"]),
                need_id=item["need_id"],
                volunteer_id=item.get("volunteer_id", ""),
                offer_id=item.get("offer_id", ""),
                reason=item.get("reason", ""),
                event_id=item.get("event_id", ""),
                incident_id=item.get("incident_id", ""),
            )
        backlog.trim_outbox(len(batch))
        planned += len(batch)
        if (deps.clock.now() - started).total_seconds() >= DRAIN_SECONDS:
            break
    backlog.unlock(NOTIFY, owner=owner)
    if backlog.outbox_count() and backlog.arm(NOTIFY):
        enqueue_drain(deps, NOTIFY)
    return planned


def send(url: str, title: str, body: str) -> bool:
    """One attempt on one channel; True when apprise reports success."""
    import apprise

    sender = apprise.Apprise()
    if not sender.add(url):
        return False
    return bool(sender.notify(title=title, body=body))


def deliver(*, deps: Deps, delivery_id: str) -> str:
    """Send a planned delivery on its current channel; retry, then fall back, then flag the need."""
    delivery = deps.store.deliveries.get(delivery_id)
    if delivery is None:
        return "unknown delivery"
    if delivery["status"] != "pending":
        return f"already {delivery['status']}"
    obsolete = obsolete_because(deps, delivery)
    if obsolete:
        return skip(deps, delivery, obsolete)
    channels: list[str] = delivery["channels"]
    index = int(delivery["channel_index"])
    url = channels[index]
    shown = mask_channel(url)
    body = delivery["sms_body"] if is_sms(url) else delivery["body"]
    try:
        ok = send(url, delivery["title"], body)
        error = "" if ok else "channel refused or unreachable"
    except Exception as exc:  # noqa: BLE001 - a plugin failure is a failed attempt, never a lost job
        ok, error = False, type(exc).__name__
    attempt: dict[str, Any] = {"at": clock.iso(deps.clock.now()), "channel": shown, "ok": ok, "error": error}
    deps.store.deliveries.record_attempt(delivery_id, attempt, sent=ok)
    need_id = delivery.get("need_id", "")
    log.info(
        "notification attempt",
        extra={
            "need_id": need_id,
            "incident_id": delivery.get("incident_id", ""),
            "delivery_id": delivery_id,
            "topic": delivery["topic"],
            "channel": shown,
            "ok": ok,
        },
    )
    if need_id:  # an incident's notifications belong to no need's timeline
        deps.store.needs.add_event(
            need_id,
            Event(
                at=attempt["at"],
                type=EventType.NOTIFICATION,
                actor="system",
                detail={
                    "topic": delivery["topic"],
                    "recipient": delivery["recipient"].split(":")[0],
                    "channel": shown,
                    "outcome": "sent" if ok else "failed",
                    **({"error": error} if error else {}),
                },
            ),
        )
    if ok:
        return "sent"
    job = get_current_job()
    if job is not None and (job.retries_left or 0) > 0:
        raise DeliveryFailed(f"{shown}: {error}")
    if index + 1 < len(channels):
        deps.store.deliveries.next_channel(delivery_id, index + 1)
        deps.jobs.enqueue(jobs.DELIVER, queue=jobs.NOTIFY, delivery_id=delivery_id)
        return "falling back"
    deps.store.deliveries.fail(delivery_id)
    if not need_id:
        return "failed"
    deps.store.needs.flag(need_id, at_epoch=clock.epoch(deps.clock.now()))
    deps.store.needs.add_event(
        need_id,
        Event(
            at=clock.iso(deps.clock.now()),
            type=EventType.NOTIFICATION_UNDELIVERABLE,
            actor="system",
            detail={"topic": delivery["topic"], "recipient": delivery["recipient"].split(":")[0]},
        ),
    )
    if Topic(delivery["topic"]) not in DISPATCHER_TOPICS:
        reason = f"{delivery['topic']} to {delivery['recipient'].split(':')[0]}"
        announce(deps, Topic.DELIVERY_FAILED, need_id, reason=reason)
    return "failed"


def obsolete_because(deps: Deps, delivery: dict[str, Any]) -> str:
    """Why a planned delivery is no longer worth sending ("" when it is): a message asking to answer an offer
    that is no longer pending (answered, expired, withdrawn)."""
    offer_id = delivery.get("offer_id", "")
    if not offer_id:
        return ""
    offer = deps.store.offers.get(offer_id)
    if offer is None:
        return "the offer no longer exists"
    if offer.status is not OfferStatus.PENDING:
        return f"the offer is no longer pending: {offer.status.value}"
    return ""


def skip(deps: Deps, delivery: dict[str, Any], reason: str) -> str:
    """Leave a delivery unsent for good, saying why, on the need's timeline too."""
    at = clock.iso(deps.clock.now())
    deps.store.deliveries.skip(delivery["id"], reason=reason, at=at)
    need_id = delivery.get("need_id", "")
    log.info(
        "notification skipped",
        extra={"need_id": need_id, "delivery_id": delivery["id"], "topic": delivery["topic"], "reason": reason},
    )
    if need_id:
        deps.store.needs.add_event(
            need_id,
            Event(
                at=at,
                type=EventType.NOTIFICATION,
                actor="system",
                detail={
                    "topic": delivery["topic"],
                    "recipient": delivery["recipient"].split(":")[0],
                    "outcome": "skipped",
                    "reason": reason,
                },
            ),
        )
    return "skipped"


REMINDER_MIN_WINDOW = 120
"""Offers with an accept window shorter than this (seconds) get no reminder."""


def schedule_reminder(deps: Deps, offer_id: str) -> None:
    """Queue the reminder for an offer, part way through its accept window (once per offer)."""
    offer = deps.store.offers.get(offer_id)
    if offer is None:
        return
    created, expires = clock.parse(offer.created_at), clock.parse(offer.expires_at)
    window = (expires - created).total_seconds()
    if window < REMINDER_MIN_WINDOW or not deps.store.stats.set_once(f"reminder:{offer_id}", "1", ttl_seconds=86400):
        return
    at = created + (expires - created) * deps.settings.offer_reminder_ratio
    deps.jobs.enqueue(jobs.REMIND_OFFER, queue=jobs.NOTIFY, at=at, offer_id=offer_id)


def remind_offer(*, deps: Deps, offer_id: str) -> bool:
    """Remind the volunteer of a still-pending offer, once."""
    offer = deps.store.offers.get(offer_id)
    if offer is None or offer.status is not OfferStatus.PENDING:
        return False
    announce(deps, Topic.OFFER_REMINDER, offer.need_id, volunteer_id=offer.volunteer_id, offer_id=offer_id)
    return True
