"""Who hears what, and when: offers to volunteers, progress to requesters, escalations to dispatchers.

Every message goes through apprise to a real local HTTP receiver (json://) and is sent by a job
on the notify queue, run by a real in-process RQ worker.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rq import Queue
from rq.job import Job
from rq.registry import ScheduledJobRegistry

from service import jobs
from tests.worker.conftest import Api, Receiver
from worker import notifications

REQUESTER_PHONE = "+8613900000002"


# ---- volunteers hear about offers ----------------------------------------------------------------


def test_a_matched_volunteer_gets_an_offer_with_kind_distance_accept_by_and_reply_code(
    volunteer: Any, make_need: Any, work: Any, api: Api, receiver: Receiver
) -> None:
    v = volunteer(locale="en")
    need = make_need()

    work()

    offer = api.pending_offer(v["id"])
    [message] = receiver.delivered("/vol")
    assert message.title == "Aidline dispatch"
    text = message.message
    assert "water delivery" in text
    assert f"{offer['distance_km']:.1f} km away" in text
    assert f"Answer by {offer['expires_at'][11:16]} UTC" in text
    assert f"YES {offer['code']}" in text and f"NO {offer['code']}" in text
    assert f"http://aid.test/api/v1/offers/{offer['id']}" in text
    assert offer["need_id"] == need["id"]


def test_an_offer_to_a_chinese_speaking_volunteer_is_in_chinese(
    volunteer: Any, make_need: Any, work: Any, api: Api, receiver: Receiver
) -> None:
    v = volunteer(locale="zh")
    make_need(priority="critical")

    work()

    offer = api.pending_offer(v["id"])
    [message] = receiver.delivered("/vol")
    assert message.title == "Aidline 志愿调度"
    assert message.message.startswith("【Aidline】紧急：送水")
    assert f"距您{offer['distance_km']:.1f}公里" in message.message
    assert f"{offer['expires_at'][11:16]} UTC前回复" in message.message
    assert f"回YES {offer['code']}接受，NO {offer['code']}拒绝" in message.message


def test_a_volunteer_without_channels_is_offered_but_nothing_is_sent(
    make_volunteer: Any, make_need: Any, work: Any, api: Api, receiver: Receiver
) -> None:
    v = make_volunteer(on_duty=True, channels=[])
    need = make_need()

    work()

    assert api.pending_offer(v["id"])
    assert [n["topic"] for n in api.notifications(need["id"])] == ["received"]
    assert receiver.delivered("/vol") == []


def test_an_offer_schedules_one_reminder_halfway_through_its_window(
    deps: Any, volunteer: Any, make_need: Any, work: Any, api: Api
) -> None:
    v = volunteer()
    make_need(priority="normal", vulnerability=[])  # 15 minutes to answer

    work()
    offer = api.pending_offer(v["id"])
    notifications.schedule_reminder(deps, offer["id"])  # a retried notify job schedules nothing more

    registry = ScheduledJobRegistry(queue=Queue(jobs.NOTIFY, connection=deps.redis))
    scheduled = [Job.fetch(job_id, connection=deps.redis) for job_id in registry.get_job_ids()]
    reminders = [job for job in scheduled if job.func_name == jobs.REMIND_OFFER]
    assert [job.kwargs for job in reminders] == [{"offer_id": offer["id"]}]
    at = registry.get_scheduled_time(reminders[0])
    created, expires = (datetime.fromisoformat(offer[k].replace("Z", "+00:00")) for k in ("created_at", "expires_at"))
    assert abs((at - (created + (expires - created) / 2)).total_seconds()) <= 1


def test_a_volunteer_is_reminded_of_a_pending_offer_once(
    deps: Any, volunteer: Any, make_need: Any, work: Any, api: Api, receiver: Receiver
) -> None:
    v = volunteer(locale="en")
    make_need()
    work()
    offer = api.pending_offer(v["id"])

    assert notifications.remind_offer(deps=deps, offer_id=offer["id"]) is True
    assert notifications.remind_offer(deps=deps, offer_id=offer["id"]) is True  # a retried reminder job
    work()

    _offer_text, reminder = receiver.messages("/vol")
    assert reminder.startswith("Aidline reminder: water delivery still waits for your answer until ")
    assert f"Reply YES {offer['code']} or NO {offer['code']}" in reminder


def test_no_reminder_for_an_offer_already_answered(
    deps: Any, volunteer: Any, make_need: Any, work: Any, api: Api, receiver: Receiver
) -> None:
    v = volunteer()
    make_need()
    work()
    offer = api.pending_offer(v["id"])
    api.accept(offer)

    assert notifications.remind_offer(deps=deps, offer_id=offer["id"]) is False
    work()

    assert len(receiver.messages("/vol")) == 1


def test_cancelling_a_need_tells_the_offered_volunteer_why(
    volunteer: Any, make_need: Any, work: Any, api: Api, receiver: Receiver
) -> None:
    volunteer()
    need = make_need()
    work()

    response = api.post(f"/api/v1/needs/{need['id']}/cancel", {"reason": "the neighbour brought water"})
    assert response.status_code == 200, response.get_json()
    work()

    assert receiver.messages("/vol")[-1] == "【Aidline】送水求助已取消，无需前往。原因：the neighbour brought water"


def test_a_dispatchers_direct_assignment_tells_the_volunteer_and_the_requester(
    volunteer: Any, make_need: Any, work: Any, api: Api, receiver: Receiver
) -> None:
    need = make_need()
    work()  # nobody on duty yet: escalated
    v = volunteer(name="Mei Chen")

    response = api.post(f"/api/v1/needs/{need['id']}/assign", {"volunteer_id": v["id"]})
    assert response.status_code == 200, response.get_json()
    work()

    [told] = [m for m in receiver.messages("/vol") if "调度员已将" in m]
    assert told.startswith("【Aidline】调度员已将送水求助分派给您，距您")
    assert "志愿者Mei已接单" in receiver.messages("/sms")[-1]


# ---- requesters hear about their need --------------------------------------------------------------


def test_the_requester_is_told_the_need_was_received_with_the_tracking_link(
    make_need: Any, work: Any, receiver: Receiver
) -> None:
    need = make_need(requester={"name": "Zhang", "phone": REQUESTER_PHONE})

    work()

    [sms] = receiver.delivered("/sms")
    assert sms.query == {"phone": REQUESTER_PHONE}
    assert sms.message.startswith("【Aidline】已收到您的送水求助")
    assert f"http://aid.test/t/{need['tracking_code']}" in sms.message


def test_the_requester_follows_the_need_from_received_to_done_in_their_language(
    volunteer: Any, make_need: Any, work: Any, api: Api, receiver: Receiver
) -> None:
    v = volunteer(name="Mei Chen")
    need = make_need(requester={"name": "Zhang", "phone": REQUESTER_PHONE, "locale": "en"})
    track = f"http://aid.test/t/{need['tracking_code']}"
    work()
    offer = api.pending_offer(v["id"])

    api.accept(offer)
    work()
    api.progress(need["id"], "en_route", v["id"])
    work()
    api.progress(need["id"], "on_site", v["id"])
    work()
    api.progress(need["id"], "done", v["id"])
    work()

    received, assigned, en_route, done = receiver.messages("/sms")
    assert received == (
        f"Aidline: we received your water delivery request and are finding a volunteer. Track it: {track}"
    )
    assert assigned == (
        f"Aidline: volunteer Mei took your request, about {offer['distance_km']:.1f} km away. Track: {track}"
    )
    assert "Chen" not in assigned, "only the volunteer's first name is shared"
    assert en_route == f"Aidline: volunteer Mei is on the way. Track: {track}"
    assert done == f"Aidline: your water delivery request is done. Please rate it 1-5: {track}"
    assert {r.query["phone"] for r in receiver.delivered("/sms")} == {REQUESTER_PHONE}


def test_a_deferred_need_tells_the_requester_why(make_need: Any, work: Any, api: Api, receiver: Receiver) -> None:
    need = make_need()
    work()  # nobody is available: escalated

    response = api.post(f"/api/v1/needs/{need['id']}/defer", {"reason": "the road is closed by snow"})
    assert response.status_code == 200, response.get_json()
    work()

    deferred = receiver.messages("/sms")[-1]
    assert deferred.startswith("【Aidline】您的送水求助暂缓处理，原因：the road is closed by snow。")
    assert f"http://aid.test/t/{need['tracking_code']}" in deferred


def test_a_need_deferred_a_second_time_tells_the_requester_again(
    make_need: Any, work: Any, api: Api, receiver: Receiver
) -> None:
    need = make_need()
    work()
    assert api.post(f"/api/v1/needs/{need['id']}/defer", {"reason": "the road is closed by snow"}).status_code == 200
    work()
    assert api.post(f"/api/v1/needs/{need['id']}/reopen", {"reason": "road open"}).status_code == 200
    work()

    assert api.post(f"/api/v1/needs/{need['id']}/defer", {"reason": "the pump part is on order"}).status_code == 200
    work()

    deferrals = [m for m in receiver.messages("/sms") if "暂缓处理" in m]
    assert len(deferrals) == 2, receiver.messages("/sms")
    assert "the pump part is on order" in deferrals[1]


def test_a_need_without_a_requester_phone_sends_the_requester_nothing(
    make_need: Any, work: Any, api: Api, receiver: Receiver
) -> None:
    need = make_need(requester={"name": "Zhang"})

    work()

    assert receiver.delivered("/sms") == []
    assert "received" not in [n["topic"] for n in api.notifications(need["id"])]


# ---- dispatchers hear about escalations ------------------------------------------------------------


def test_an_escalated_need_is_sent_to_the_dispatcher_channels(
    make_need: Any, work: Any, api: Api, receiver: Receiver
) -> None:
    need = make_need()  # no grid, and nobody is available

    work()

    assert api.need(need["id"])["status"] == "escalated"
    [escalation] = receiver.messages("/dispatch")
    assert escalation.startswith("【Aidline】需人工调度：送水（高），25公里内没有空闲的驾驶志愿者。")
    assert f"http://aid.test/api/v1/needs/{need['id']}" in escalation
    assert receiver.delivered("/grid-2") == []


def test_an_escalated_need_in_a_grid_with_its_own_channel_goes_to_that_channel_only(
    make_need: Any, work: Any, receiver: Receiver
) -> None:
    need = make_need(grid="grid-2")

    work()

    [escalation] = receiver.messages("/grid-2")
    assert "需人工调度" in escalation and need["id"] in escalation
    assert receiver.delivered("/dispatch") == []


def test_a_need_escalated_again_after_a_reopen_alerts_the_dispatchers_again(
    make_need: Any, work: Any, api: Api, receiver: Receiver
) -> None:
    need = make_need()
    work()
    assert len(receiver.messages("/dispatch")) == 1

    response = api.post(f"/api/v1/needs/{need['id']}/reopen", {"reason": "try once more"})
    assert response.status_code == 200, response.get_json()
    work()

    assert api.need(need["id"])["status"] == "escalated"
    assert len(receiver.messages("/dispatch")) == 2, "every escalation is news to the dispatchers"


# ---- sent by the notify drain, never inline --------------------------------------------------------


def announcements(deps: Any) -> list[tuple[str, str]]:
    """(topic, need id) of every announcement waiting in the outbox, oldest first."""
    return [(item["topic"], item["need_id"]) for item in deps.store.backlog.peek_outbox(100)]


def notify_jobs(connection: Any) -> list[str | None]:
    """The functions of the jobs waiting on the notify queue."""
    return [job.func_name for job in Queue(jobs.NOTIFY, connection=connection).get_jobs()]


def test_submitting_a_need_announces_it_and_sends_nothing_until_a_worker_runs(
    deps: Any, make_need: Any, work: Any, connection: Any, receiver: Receiver
) -> None:
    need = make_need()

    assert announcements(deps) == [("received", need["id"])]
    assert notify_jobs(connection) == [jobs.DRAIN_NOTIFICATIONS]
    assert receiver.requests == []

    work(queues=(jobs.NOTIFY,))

    assert len(receiver.messages("/sms")) == 1
    assert announcements(deps) == []


def test_many_announcements_arm_one_drain_job(deps: Any, make_need: Any, connection: Any) -> None:
    # 5 km apart, so that they do not form an incident (which is announced too)
    needs = [make_need(location={"lat": 46.34 + 0.05 * i, "lon": 132.25}) for i in range(5)]

    assert announcements(deps) == [("received", n["id"]) for n in needs]
    assert notify_jobs(connection) == [jobs.DRAIN_NOTIFICATIONS]


def test_an_announcement_after_a_drain_ended_arms_a_new_one(
    deps: Any, make_need: Any, work: Any, connection: Any, receiver: Receiver
) -> None:
    make_need()
    work(queues=(jobs.NOTIFY,))
    make_need()  # the drain disarmed as it ended: this arms a new one

    assert notify_jobs(connection) == [jobs.DRAIN_NOTIFICATIONS]
    work(queues=(jobs.NOTIFY,))
    assert announcements(deps) == []
    assert len(receiver.messages("/sms")) == 2


def test_accepting_an_offer_sends_nothing_inline(
    volunteer: Any, make_need: Any, work: Any, api: Api, deps: Any, receiver: Receiver
) -> None:
    v = volunteer()
    need = make_need()
    work()
    before = len(receiver.requests)

    api.accept(api.pending_offer(v["id"]))

    assert len(receiver.requests) == before
    assert announcements(deps) == [("assigned", need["id"])]
    work(queues=(jobs.NOTIFY,))
    assert len(receiver.requests) == before + 1
