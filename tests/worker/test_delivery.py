"""Delivering one message: retries, fallback to the next channel, flagging, and never twice.

Each channel gets 1 + RETRIES tries (RQ re-queues failed deliver jobs at once in these tests);
then the next channel of the recipient is tried; when none is left the need is flagged.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from service import jobs
from service.config import Settings
from service.models import Topic
from service.privacy import mask_channel
from tests.worker.conftest import DISPATCH_SECRET, RETRIES, Api, Receiver
from worker import notifications

TRIES = 1 + RETRIES


def deliveries(api: Api, need_id: str, topic: str) -> list[dict[str, Any]]:
    return [n for n in api.notifications(need_id) if n["topic"] == topic]


def notification_events(api: Api, need_id: str, topic: str) -> list[dict[str, Any]]:
    return [e for e in api.events(need_id) if e["type"] == "notification" and e["detail"]["topic"] == topic]


# ---- retries ---------------------------------------------------------------------------------------


def test_a_receiver_failing_its_first_two_tries_is_retried_and_the_message_arrives_once(
    volunteer: Any, make_need: Any, work: Any, api: Api, receiver: Receiver
) -> None:
    receiver.fail_first(2, "/vol")
    volunteer()
    need = make_need()

    work()

    assert [r.status for r in receiver.attempts("/vol")] == [500, 500, 200]
    assert len(receiver.delivered("/vol")) == 1
    [offer] = deliveries(api, need["id"], "offer")
    assert offer["status"] == "sent"
    assert [a["ok"] for a in offer["attempts"]] == [False, False, True]
    assert all(a["error"] for a in offer["attempts"][:2]) and offer["attempts"][2]["error"] == ""
    assert {a["channel"] for a in offer["attempts"]} == {mask_channel(receiver.url("/vol"))}
    assert [a["at"] for a in offer["attempts"]] == sorted(a["at"] for a in offer["attempts"])


def test_a_refused_attempt_is_one_line_of_the_log_not_a_traceback(
    volunteer: Any, make_need: Any, work: Any, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.fail_first(2, "/vol")
    volunteer()
    make_need()

    with caplog.at_level(logging.WARNING):
        work()

    retried = [r for r in caplog.records if r.getMessage() == "job failed, tried again later"]
    assert len(retried) == 2
    assert all(getattr(r, "error", "").startswith("DeliveryFailed: ") and r.exc_info is None for r in retried)
    assert not any("Traceback" in r.getMessage() for r in caplog.records)


def test_every_attempt_is_on_the_needs_timeline(
    settings: Settings, volunteer: Any, make_need: Any, work: Any, api: Api, receiver: Receiver
) -> None:
    receiver.fail_first(2, "/vol")
    volunteer()
    need = make_need()
    phone = need["requester"]["phone"]

    work()

    events = notification_events(api, need["id"], "offer")
    assert [e["detail"]["outcome"] for e in events] == ["failed", "failed", "sent"]
    assert {e["detail"]["recipient"] for e in events} == {"volunteer"}
    assert {e["actor"] for e in events} == {"system"}
    assert all(e["detail"]["error"] for e in events[:2]) and "error" not in events[2]["detail"]
    [received] = notification_events(api, need["id"], "received")
    assert received["detail"] == {
        "topic": "received",
        "recipient": "requester",
        "channel": mask_channel(settings.sms_url_template.format(phone=phone, phone_digits=phone[1:])),
        "outcome": "sent",
    }


# ---- fallback and flagging -------------------------------------------------------------------------


def test_a_dead_channel_falls_back_to_the_volunteers_next_channel(
    make_volunteer: Any, make_need: Any, work: Any, api: Api, receiver: Receiver, dead_url: Any
) -> None:
    dead = dead_url("/phone-app")
    make_volunteer(on_duty=True, channels=[dead, receiver.url("/backup")])
    need = make_need()

    work()

    assert len(receiver.delivered("/backup")) == 1
    assert "YES" in receiver.messages("/backup")[0]
    [offer] = deliveries(api, need["id"], "offer")
    assert offer["status"] == "sent"
    assert offer["channel"] == mask_channel(receiver.url("/backup"))
    channels = [(a["channel"], a["ok"]) for a in offer["attempts"]]
    assert channels == [(mask_channel(dead), False)] * TRIES + [(mask_channel(receiver.url("/backup")), True)]
    assert api.need(need["id"])["flagged"] is False


def test_when_every_channel_is_dead_the_need_is_flagged_and_dispatchers_are_told(
    make_volunteer: Any, make_need: Any, work: Any, api: Api, receiver: Receiver, dead_url: Any
) -> None:
    make_volunteer(on_duty=True, channels=[dead_url("/a"), dead_url("/b")])
    need = make_need()

    work()

    assert api.need(need["id"])["flagged"] is True
    [offer] = deliveries(api, need["id"], "offer")
    assert offer["status"] == "failed"
    assert len(offer["attempts"]) == 2 * TRIES and not any(a["ok"] for a in offer["attempts"])
    undeliverable = [e for e in api.events(need["id"]) if e["type"] == "notification_undeliverable"]
    assert [e["detail"] for e in undeliverable] == [{"topic": "offer", "recipient": "volunteer"}]
    [alert] = receiver.messages("/dispatch")
    assert alert == (
        f"【Aidline】通知未能送达：送水求助的offer to volunteer。请电话联系。http://aid.test/api/v1/needs/{need['id']}"
    )
    assert [d["status"] for d in deliveries(api, need["id"], "delivery_failed")] == ["sent"]


def test_a_need_is_not_flagged_while_a_later_channel_still_works(
    make_volunteer: Any, make_need: Any, work: Any, api: Api, receiver: Receiver, dead_url: Any
) -> None:
    make_volunteer(on_duty=True, channels=[dead_url(), dead_url(), receiver.url("/third")])
    need = make_need()

    work()

    assert len(receiver.delivered("/third")) == 1
    assert api.need(need["id"])["flagged"] is False
    assert receiver.delivered("/dispatch") == []


def test_an_undeliverable_dispatcher_alert_flags_the_need_without_alerting_about_itself(
    make_need: Any, work: Any, api: Api, receiver: Receiver
) -> None:
    need = make_need(grid="grid-dark")  # nobody is available: escalated to a dead channel

    work()

    got = api.need(need["id"])
    assert got["status"] == "escalated" and got["flagged"] is True
    [escalation] = deliveries(api, need["id"], "escalated")
    assert escalation["status"] == "failed" and len(escalation["attempts"]) == TRIES
    assert deliveries(api, need["id"], "delivery_failed") == []
    assert receiver.delivered("/dispatch") == []


# ---- never twice -----------------------------------------------------------------------------------


def test_planning_the_same_event_twice_makes_one_delivery_and_sends_once(
    deps: Any, make_need: Any, work: Any, api: Api, receiver: Receiver
) -> None:
    need = make_need()  # its 'received' announcement waits in the outbox
    [item] = deps.store.backlog.peek_outbox(10)
    assert (item["topic"], item["need_id"]) == ("received", need["id"])

    def plan() -> list[str]:
        return notifications.plan_deliveries(deps=deps, **{**item, "topic": Topic(item["topic"])})

    first, second = plan(), plan()
    work()  # the drain plans it a third time, as after a crash between planning and trimming

    assert first == second and len(first) == 1
    assert len(deliveries(api, need["id"], "received")) == 1
    assert len(receiver.messages("/sms")) == 1


def test_an_offer_planned_twice_reaches_the_volunteer_once(
    deps: Any, volunteer: Any, make_need: Any, work: Any, api: Api, receiver: Receiver
) -> None:
    v = volunteer()
    need = make_need()
    work()
    offer = api.pending_offer(v["id"])

    again = notifications.plan_deliveries(
        deps=deps, topic=Topic.OFFER, need_id=need["id"], volunteer_id=v["id"], offer_id=offer["id"]
    )
    work()

    [delivery] = deliveries(api, need["id"], "offer")
    assert again == [delivery["id"]]
    assert len(receiver.delivered("/vol")) == 1


def test_a_delivered_message_is_not_sent_again_when_its_job_runs_again(
    deps: Any, make_need: Any, work: Any, api: Api, receiver: Receiver
) -> None:
    need = make_need()
    work()
    [delivery] = deliveries(api, need["id"], "received")
    assert delivery["status"] == "sent"

    deps.jobs.enqueue(jobs.DELIVER, queue=jobs.NOTIFY, delivery_id=delivery["id"])
    deps.jobs.enqueue(jobs.DELIVER, queue=jobs.NOTIFY, delivery_id=delivery["id"])
    work()

    assert notifications.deliver(deps=deps, delivery_id=delivery["id"]) == "already sent"
    assert len(receiver.messages("/sms")) == 1
    [after] = deliveries(api, need["id"], "received")
    assert after["attempts"] == delivery["attempts"]


def test_a_failed_delivery_is_not_retried_again_by_a_stray_job(
    deps: Any, make_volunteer: Any, make_need: Any, work: Any, api: Api, receiver: Receiver, dead_url: Any
) -> None:
    make_volunteer(on_duty=True, channels=[dead_url()])
    need = make_need()
    work()
    [delivery] = deliveries(api, need["id"], "offer")

    deps.jobs.enqueue(jobs.DELIVER, queue=jobs.NOTIFY, delivery_id=delivery["id"])
    work()

    [after] = deliveries(api, need["id"], "offer")
    assert after["status"] == "failed" and len(after["attempts"]) == TRIES
    assert len(receiver.messages("/dispatch")) == 1


# ---- secrets in channel URLs -----------------------------------------------------------------------


@pytest.mark.parametrize("fail_first", [0, 2], ids=["first-try", "after-retries"])
def test_secrets_in_channel_urls_never_appear_in_api_answers_or_logs(
    fail_first: int,
    make_volunteer: Any,
    make_need: Any,
    work: Any,
    api: Api,
    tokens: Any,
    receiver: Receiver,
    dead_url: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    live = receiver.url("/vol", user="alice", password="live-s3cret")
    dead = dead_url("/x", user="alice", password="dead-s3cret")
    receiver.fail_first(fail_first, "/vol")
    registered = make_volunteer(on_duty=True, channels=[dead, live])
    need = make_need()
    unmatched = make_need(kind="mediation", grid="grid-secret")  # escalated to a channel with a password
    work()
    api.accept(api.pending_offer(registered["id"]))
    work()

    assert len(receiver.delivered("/vol")) == 1, "the secret channel was used"
    assert receiver.delivered("/vol")[0].headers["Authorization"].startswith("Basic ")
    assert len(receiver.delivered("/ops")) == 1
    vid, nid = registered["id"], need["id"]
    answers = [
        registered,
        api.client.get(f"/api/v1/volunteers/{vid}", headers=tokens.dispatcher).get_json(),
        api.client.get(f"/api/v1/volunteers/{vid}", headers=tokens.volunteer(vid)).get_json(),
        api.client.get("/api/v1/volunteers", headers=tokens.dispatcher).get_json(),
        api.client.get(f"/api/v1/volunteers/{vid}/offers", headers=tokens.volunteer(vid)).get_json(),
        api.need(nid),
        api.notifications(nid),
        api.events(nid),
        api.notifications(unmatched["id"]),
        api.events(unmatched["id"]),
    ]
    assert "notification attempt" in caplog.text
    shown = repr(answers) + caplog.text
    for secret in ("live-s3cret", "dead-s3cret", DISPATCH_SECRET):
        assert secret not in shown
    assert "****@127.0.0.1" in repr(api.notifications(nid)), "user and password hidden, the channel recognisable"
    assert "alice" not in shown


def test_only_those_who_handle_the_need_see_where_its_notifications_went(
    volunteer: Any, make_need: Any, work: Any, api: Api, tokens: Any
) -> None:
    offered = volunteer()
    need = make_need()
    work()
    phone = need["requester"]["phone"].removeprefix("+")

    def channels(answer: Any) -> set[str]:
        found = {e["detail"]["channel"] for e in answer if e.get("type") == "notification"}
        return (
            found
            | {d["channel"] for d in answer if "attempts" in d}
            | {a["channel"] for d in answer if "attempts" in d for a in d["attempts"]}
        )

    def events(headers: dict[str, str]) -> Any:
        response = api.client.get(f"/api/v1/needs/{need['id']}/events", headers=headers)
        assert response.status_code == 200
        return response.get_json()["items"]

    as_dispatcher = events(tokens.dispatcher)
    as_volunteer = events(tokens.volunteer(offered["id"]))
    as_ops = events(tokens.ops)
    ops_notifications = api.client.get(f"/api/v1/needs/{need['id']}/notifications", headers=tokens.ops).get_json()

    assert any(phone in c for c in channels(as_dispatcher)), "the dispatcher sees where the requester was told"
    for seen in (as_volunteer, as_ops, ops_notifications["items"]):
        assert channels(seen) and all(c.endswith("://…") for c in channels(seen)), channels(seen)
        assert phone not in repr(seen) and "/vol" not in repr(seen)


# ---- messages about an offer that ended ---------------------------------------------------------------


def test_an_offer_withdrawn_while_its_message_was_failing_is_not_sent_afterwards(
    deps: Any, volunteer: Any, make_need: Any, work: Any, api: Api, receiver: Receiver, tokens: Any
) -> None:
    receiver.fail_first(1, "/vol")
    v = volunteer(channels=[receiver.url("/vol"), receiver.url("/vol2")])
    need = make_need()
    work((jobs.URGENT, jobs.DEFAULT, jobs.LOW))  # matched: the offer waits in the outbox
    work((jobs.NOTIFY,), max_jobs=1)  # planned: its delivery waits to be sent
    [planned] = deliveries(api, need["id"], "offer")
    assert notifications.deliver(deps=deps, delivery_id=planned["id"]) == "falling back"  # /vol refused it

    off = api.client.put(
        f"/api/v1/volunteers/{v['id']}/availability", json={"on_duty": False}, headers=tokens.dispatcher
    )
    assert off.status_code == 200, off.get_json()
    work()

    assert receiver.delivered("/vol2") == [] and len(receiver.attempts("/vol")) == 1
    [offer] = deliveries(api, need["id"], "offer")
    assert offer["status"] == "skipped"
    assert offer["reason"] == "the offer is no longer pending: withdrawn"
    assert [a["ok"] for a in offer["attempts"]] == [False]
    events = notification_events(api, need["id"], "offer")
    assert [e["detail"]["outcome"] for e in events] == ["failed", "skipped"]
    assert events[-1]["detail"]["reason"] == "the offer is no longer pending: withdrawn"


def test_a_reminder_of_an_offer_withdrawn_before_it_went_out_is_not_sent(
    deps: Any, volunteer: Any, make_need: Any, work: Any, api: Api, receiver: Receiver, tokens: Any
) -> None:
    v = volunteer()
    need = make_need()
    work()
    offer = api.pending_offer(v["id"])
    assert notifications.remind_offer(deps=deps, offer_id=offer["id"]) is True
    work((jobs.NOTIFY,), max_jobs=1)  # planned: the reminder waits to be sent
    assert [d["status"] for d in deliveries(api, need["id"], "offer_reminder")] == ["pending"]

    off = api.client.put(
        f"/api/v1/volunteers/{v['id']}/availability", json={"on_duty": False}, headers=tokens.dispatcher
    )
    assert off.status_code == 200, off.get_json()
    work()

    assert len(receiver.delivered("/vol")) == 1  # the offer itself, before it ended
    [reminder] = deliveries(api, need["id"], "offer_reminder")
    assert reminder["status"] == "skipped" and reminder["attempts"] == []
    assert reminder["reason"] == "the offer is no longer pending: withdrawn"
