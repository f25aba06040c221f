"""The texts people receive, in Chinese and English; the SMS form of an offer fits one SMS."""

from __future__ import annotations

from typing import Any

import pytest

from service.messages import FAMILY_NAMES, KIND_NAMES, SKILL_NAMES, TEMPLATES, render, tracking_text
from service.models import Family, NeedKind, Skill
from service.roster import CHINESE_VALUES
from tests.worker.conftest import Api
from worker import notifications

SMS_LIMIT = {"zh": 70, "en": 160}
"""Characters in one SMS: 70 in UCS-2 (any Chinese character), 160 in GSM-7."""

VALUES: dict[str, Any] = {
    "kind": "water_delivery",
    "priority": "high",
    "distance": "3.2",
    "accept_by": "14:05 UTC",
    "code": "4821",
    "link": "http://aid.test/api/v1/offers/off_1",
    "track": "http://aid.test/t/abc",
    "volunteer": "Mei",
    "deadline": "2026-01-01 18:00",
    "reason": "the road is closed",
    "family": "water",
    "size": 12,
    "vulnerable": 4,
    "radius": "2.2",
    "resolved": 6,
}


def test_every_topic_has_a_chinese_and_an_english_text() -> None:
    for topic, texts in TEMPLATES.items():
        assert set(texts) == {"zh", "en"}, topic


@pytest.mark.parametrize("topic", sorted(TEMPLATES))
@pytest.mark.parametrize("locale", ["zh", "en"])
def test_every_text_renders_with_all_its_placeholders_filled(topic: str, locale: str) -> None:
    title, body = render(topic, locale, VALUES)

    assert title == {"zh": "Aidline 志愿调度", "en": "Aidline dispatch"}[locale]
    assert "{" not in body and "}" not in body
    assert "water_delivery" not in body, "kinds are shown by name"
    assert ("Aidline" in body) and body == body.strip()


def test_an_offer_in_chinese() -> None:
    title, body = render("offer", "zh", VALUES)

    assert title == "Aidline 志愿调度"
    assert body == (
        "【Aidline】高：送水，距您3.2公里，14:05 UTC前回复。"
        "回YES 4821接受，NO 4821拒绝。http://aid.test/api/v1/offers/off_1"
    )


def test_an_offer_in_english() -> None:
    title, body = render("offer", "en", VALUES)

    assert title == "Aidline dispatch"
    assert body == (
        "Aidline high: water delivery, 3.2 km away. Answer by 14:05 UTC. "
        "Reply YES 4821 or NO 4821. http://aid.test/api/v1/offers/off_1"
    )


def test_every_kind_has_a_chinese_name() -> None:
    assert set(KIND_NAMES["zh"]) == {k.value for k in NeedKind}


def test_every_family_has_a_chinese_name() -> None:
    assert set(FAMILY_NAMES["zh"]) == {f.value for f in Family}


def test_incident_texts_name_the_family_the_size_and_the_vulnerable() -> None:
    assert render("incident_opened", "en", VALUES)[1] == (
        "Aidline incident: 12 water needs within 2.2 km, 4 of them for vulnerable people. "
        "http://aid.test/api/v1/offers/off_1"
    )
    assert render("incident_half", "zh", VALUES)[1].startswith("【Aidline】事件进展：停水事件已解决过半（6/12）")
    assert "all 12 needs of the water incident are resolved" in render("incident_all", "en", VALUES)[1]


def test_the_tracking_page_tells_the_requester_of_the_wider_incident_in_both_languages() -> None:
    assert tracking_text("incident", "en", {"family": "heat", "size": 7}) == (
        "Your request is part of a wider heat incident (7 requests) that is being handled together."
    )
    assert tracking_text("incident", "zh", {"family": "heat", "size": 7}) == (
        "您的求助属于一起供暖事件（共7个求助），我们正在统一处理。"
    )


def test_every_skill_has_the_chinese_name_the_roster_reads() -> None:
    assert set(SKILL_NAMES["zh"]) == {s.value for s in Skill}
    assert {zh: skill for skill, zh in SKILL_NAMES["zh"].items()} == CHINESE_VALUES["skill"]


@pytest.mark.parametrize(
    ("reason", "zh"),
    [
        ("no available volunteer with driving within 25 km", "25公里内没有空闲的驾驶志愿者"),
        ("no available volunteer with heating, driving within 12.5 km", "12.5公里内没有空闲的供暖、驾驶志愿者"),
        ("no available volunteer with any skill within 5 km", "5公里内没有空闲的志愿者"),
        (
            "no available volunteer with tanker_truck can arrive in time (within 7.5 km)",
            "7.5公里内没有能按时赶到的水罐车志愿者",
        ),
        ("deadline at risk: still not assigned", "临近完成期限仍未指派"),
        ("past the committed completion deadline", "已超过承诺完成时间"),
    ],
)
@pytest.mark.parametrize("topic", ["escalated", "escalated_captain", "escalated_tier"])
def test_why_a_need_was_escalated_is_said_in_chinese_from_its_parts(topic: str, reason: str, zh: str) -> None:
    values = {**VALUES, "reason": reason}

    assert f"，{zh}。" in render(topic, "zh", values)[1]
    assert f", {reason}." in render(topic, "en", values)[1]


def test_an_unknown_locale_falls_back_to_chinese() -> None:
    assert render("received", "fr", VALUES) == render("received", "zh", VALUES)


def test_a_missing_value_leaves_a_gap_instead_of_failing() -> None:
    _, body = render("deferred", "en", {"kind": "transport"})

    assert body == "Aidline: your transport request is deferred: . We will contact you again."


def test_the_requester_is_told_the_volunteers_first_name_and_asked_for_a_rating() -> None:
    assert "志愿者Mei已接单，距您约3.2公里" in render("assigned", "zh", VALUES)[1]
    assert "Please rate it 1-5: http://aid.test/t/abc" in render("done", "en", VALUES)[1]
    assert "请为服务打分（1-5）：http://aid.test/t/abc" in render("done", "zh", VALUES)[1]
    assert "原因：the road is closed" in render("deferred", "zh", VALUES)[1]


# ---- one SMS -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["4821", "482193"], ids=["4-digit", "6-digit"])  # codes have at most 6 digits
@pytest.mark.parametrize("locale", ["zh", "en"])
def test_an_offer_without_its_link_fits_one_sms(code: str, locale: str) -> None:
    """Every kind and priority at the farthest distance (25.0 km), with each code length claim_code hands out."""
    farthest = {**VALUES, "distance": "25.0", "accept_by": "23:59 UTC", "code": code, "link": ""}
    bodies = [
        render("offer", locale, {**farthest, "kind": kind.value, "priority": priority})[1]
        for kind in NeedKind
        for priority in ("critical", "high", "normal", "low")
    ]

    longest = max(bodies, key=len)
    assert all("http" not in body and f"YES {code}" in body and f"NO {code}" in body for body in bodies)
    assert len(longest) <= SMS_LIMIT[locale], f"{len(longest)} characters: {longest}"


@pytest.mark.parametrize("locale", ["zh", "en"])
def test_an_offer_reminder_without_link_fits_one_sms(locale: str) -> None:
    values = {**VALUES, "kind": "companionship_visit", "accept_by": "23:59 UTC", "code": "48219377", "link": ""}

    _, body = render("offer_reminder", locale, values)

    assert len(body) <= SMS_LIMIT[locale], f"{len(body)} characters: {body}"


def test_a_planned_offer_keeps_an_sms_body_without_the_link(
    deps: Any, make_volunteer: Any, make_need: Any, work: Any, api: Api, receiver: Any
) -> None:
    v = make_volunteer(on_duty=True, channels=[receiver.url("/vol")])
    need = make_need()
    work()
    offer = api.pending_offer(v["id"])
    [planned] = [n for n in api.notifications(need["id"]) if n["topic"] == "offer"]

    delivery = deps.store.deliveries.get(planned["id"])

    assert delivery["body"].endswith(f"http://aid.test/api/v1/offers/{offer['id']}")
    assert "http" not in delivery["sms_body"]
    assert delivery["sms_body"].endswith(f"NO {offer['code']}拒绝。")
    assert len(delivery["sms_body"]) <= SMS_LIMIT["zh"]
    assert receiver.messages("/vol") == [delivery["body"]], "a json:// channel gets the text with the link"


@pytest.mark.parametrize(
    ("url", "sms"),
    [
        ("twilio://AC123:token@15551234567/15557654321", True),
        ("sns://key/secret/us-east-1/+8613800000001", True),
        ("json://127.0.0.1:9000/hook", False),
        ("mailto://user:pass@example.org", False),
    ],
)
def test_sms_channels_are_recognised_by_scheme(url: str, sms: bool) -> None:
    assert notifications.is_sms(url) is sms


def test_message_times_are_shown_in_the_configured_time_zone(deps: Any) -> None:
    from dataclasses import replace

    from worker.notifications import local_time

    shanghai = replace(deps, settings=replace(deps.settings, timezone="Asia/Shanghai"))
    assert local_time(shanghai, "2026-11-27T23:30:00Z") == "07:30"
    assert local_time(shanghai, "2026-11-27T23:30:00Z", with_date=True) == "11-28 07:30"
    assert local_time(deps, "2026-11-27T23:30:00Z") == "23:30 UTC"
