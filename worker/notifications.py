"""Working out who hears about an event, and delivering each message through apprise.

One delivery per (event, recipient): its id is derived from both, so a retried planning job
creates nothing new and a delivery already sent is never sent again. A delivery walks its
recipient's channels in order; each channel gets RQ's retries before the next is tried.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from rq import get_current_job

from service import clock, jobs
from service.bootstrap import Deps
from service.messages import render
from service.models import Event, Need, OfferStatus
from service.notify import announce
from service.privacy import first_name, mask_channel

log = logging.getLogger("aidline.notify")
logging.getLogger("apprise").setLevel(logging.WARNING)

VOLUNTEER_TOPICS = {"offer", "offer_reminder", "assigned_by_dispatcher", "cancelled"}
REQUESTER_TOPICS = {"received", "assigned", "en_route", "done", "deferred"}
DISPATCHER_TOPICS = {"escalated", "overdue", "delivery_failed"}
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
    """A channel did not accept the message; RQ retries the job."""


def delivery_id(topic: str, need_id: str, recipient: str, extra: str) -> str:
    digest = hashlib.sha256(f"{topic}|{need_id}|{recipient}|{extra}".encode()).hexdigest()[:20]
    return f"dlv_{digest}"


def is_sms(url: str) -> bool:
    return url.split("://", 1)[0].lower() in SMS_SCHEMES


def links(deps: Deps, need: Need, offer_id: str = "") -> dict[str, str]:
    base = deps.settings.public_url.rstrip("/")
    values = {"track": f"{base}/t/{need.tracking_code}", "link": f"{base}/api/v1/needs/{need.id}"}
    if offer_id:
        values["link"] = f"{base}/api/v1/offers/{offer_id}"
    return values


def recipients(deps: Deps, topic: str, need: Need, volunteer_id: str) -> list[tuple[str, str, list[str]]]:
    """(recipient, locale, channels in order) for one event."""
    if topic in VOLUNTEER_TOPICS:
        volunteer = deps.store.get_volunteer(volunteer_id) if volunteer_id else None
        if volunteer is None or not volunteer.channels:
            return []
        return [(f"volunteer:{volunteer.id}", volunteer.locale, list(volunteer.channels))]
    if topic in REQUESTER_TOPICS:
        template = deps.settings.sms_url_template
        if not template or not need.requester.phone:
            return []
        phone = need.requester.phone
        return [
            (
                "requester",
                need.requester_locale or "zh",
                [template.format(phone=phone, phone_digits=phone[1:])],
            )
        ]
    if topic in DISPATCHER_TOPICS:
        channels = list(deps.settings.grid_channels.get(need.grid or "", ())) or list(deps.settings.dispatcher_channels)
        return [(f"dispatchers:{need.grid or 'default'}", "zh", channels)] if channels else []
    raise ValueError(f"unknown notification topic {topic}")


def local_time(deps: Deps, stamp: str, *, with_date: bool = False) -> str:
    """A stored UTC time as people read it: in AIDLINE_TIMEZONE (default UTC), named when UTC."""
    from zoneinfo import ZoneInfo

    zone = deps.settings.timezone
    moment = clock.parse(stamp).astimezone(ZoneInfo(zone))
    text = moment.strftime("%m-%d %H:%M" if with_date else "%H:%M")
    return f"{text} UTC" if zone == "UTC" else text


def message_values(deps: Deps, topic: str, need: Need, volunteer_id: str, offer_id: str, reason: str) -> dict[str, Any]:
    values: dict[str, Any] = {
        "kind": need.kind,
        "priority": need.priority,
        "deadline": local_time(deps, need.committed_deadline or need.deadline, with_date=True),
        "reason": reason or need.status_reason or "",
        **links(deps, need, offer_id),
    }
    offer = deps.store.get_offer(offer_id) if offer_id else None
    if offer is not None:
        values.update(
            code=offer.code, distance=f"{offer.distance_km:.1f}", accept_by=local_time(deps, offer.expires_at)
        )
    accepted = [o for o in deps.store.need_offers(need.id) if o.status == OfferStatus.ACCEPTED.value]
    if volunteer_id and not offer:
        mine = [o for o in accepted if o.volunteer_id == volunteer_id]
        if mine:
            values["distance"] = f"{mine[0].distance_km:.1f}"
    if accepted and topic in REQUESTER_TOPICS:
        volunteer = deps.store.get_volunteer(accepted[0].volunteer_id)
        values["volunteer"] = first_name(volunteer.name) if volunteer else ""
        values["distance"] = f"{accepted[0].distance_km:.1f}"
    return values


def plan_deliveries(
    *,
    deps: Deps,
    topic: str,
    need_id: str,
    volunteer_id: str = "",
    offer_id: str = "",
    reason: str = "",
    event_id: str = "",
) -> list[str]:
    """Create one delivery per recipient and queue it; a second run finds them made and adds nothing."""
    need = deps.store.get_need(need_id)
    if need is None:
        return []
    if topic == "offer" and offer_id:
        schedule_reminder(deps, offer_id)
    planned = []
    for recipient, locale, channels in recipients(deps, topic, need, volunteer_id):
        values = message_values(deps, topic, need, volunteer_id, offer_id, reason)
        title, body = render(topic, locale, values)
        sms_body = render(topic, locale, {**values, "link": ""})[1]
        did = delivery_id(topic, need_id, recipient, f"{offer_id}|{reason}|{event_id}")
        created = deps.store.create_delivery(
            did,
            need_id=need_id,
            fields={
                "id": did,
                "need_id": need_id,
                "topic": topic,
                "recipient": recipient,
                "title": title,
                "body": body,
                "sms_body": sms_body,
                "channels": channels,
                "channel_index": 0,
                "status": "pending",
                "created_at": clock.iso(clock.now()),
            },
        )
        if created:
            deps.jobs.enqueue(jobs.DELIVER, did, queue=jobs.NOTIFY)
        planned.append(did)
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
    delivery = deps.store.get_delivery(delivery_id)
    if delivery is None:
        return "unknown delivery"
    if delivery["status"] != "pending":
        return f"already {delivery['status']}"
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
    attempt: dict[str, Any] = {"at": clock.iso(clock.now()), "channel": shown, "ok": ok, "error": error}
    deps.store.record_attempt(delivery_id, attempt, sent=ok)
    need_id = delivery["need_id"]
    log.info(
        "notification attempt",
        extra={"need_id": need_id, "delivery_id": delivery_id, "topic": delivery["topic"], "channel": shown, "ok": ok},
    )
    deps.store.add_event(
        need_id,
        Event(
            at=attempt["at"],
            type="notification",
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
        deps.store.next_channel(delivery_id, index + 1)
        deps.jobs.enqueue(jobs.DELIVER, delivery_id, queue=jobs.NOTIFY)
        return "falling back"
    deps.store.fail_delivery(delivery_id)
    deps.store.set_need_fields(need_id, {"flagged": True})
    deps.store.add_event(
        need_id,
        Event(
            at=clock.iso(clock.now()),
            type="notification_undeliverable",
            actor="system",
            detail={"topic": delivery["topic"], "recipient": delivery["recipient"].split(":")[0]},
        ),
    )
    if delivery["topic"] not in DISPATCHER_TOPICS:
        reason = f"{delivery['topic']} to {delivery['recipient'].split(':')[0]}"
        announce(deps, "delivery_failed", need_id, reason=reason)
    return "failed"


REMINDER_MIN_WINDOW = 120
"""Offers with an accept window shorter than this (seconds) get no reminder."""


def schedule_reminder(deps: Deps, offer_id: str) -> None:
    """Queue the reminder for an offer, part way through its accept window (once per offer)."""
    offer = deps.store.get_offer(offer_id)
    if offer is None:
        return
    created, expires = clock.parse(offer.created_at), clock.parse(offer.expires_at)
    window = (expires - created).total_seconds()
    if window < REMINDER_MIN_WINDOW or not deps.store.set_once(f"reminder:{offer_id}", "1", ttl_seconds=86400):
        return
    at = created + (expires - created) * deps.settings.offer_reminder_ratio
    deps.jobs.enqueue(jobs.REMIND_OFFER, offer_id, queue=jobs.NOTIFY, at=at)


def remind_offer(*, deps: Deps, offer_id: str) -> bool:
    """Remind the volunteer of a still-pending offer, once."""
    offer = deps.store.get_offer(offer_id)
    if offer is None or offer.status != OfferStatus.PENDING.value:
        return False
    announce(deps, "offer_reminder", offer.need_id, volunteer_id=offer.volunteer_id, offer_id=offer_id)
    return True
