"""E-mail through apprise's mailto:// to a real local SMTP server (aiosmtpd), plain SMTP with login."""

from __future__ import annotations

from typing import Any

import pytest

from tests.worker.conftest import SMTP_PASSWORD, Api, Receiver, SmtpServer


@pytest.fixture
def notify_env(notify_env: dict[str, str], smtp: SmtpServer) -> dict[str, str]:
    """The standard settings, plus grid-mail whose dispatchers are reached by e-mail."""
    grids = notify_env["AIDLINE_GRID_CHANNELS"] + ";grid-mail=" + smtp.url("captain@example.org")
    return {**notify_env, "AIDLINE_GRID_CHANNELS": grids}


def test_an_offer_by_email_arrives_at_the_smtp_server(
    make_volunteer: Any, make_need: Any, work: Any, api: Api, smtp: SmtpServer
) -> None:
    v = make_volunteer(on_duty=True, locale="en", channels=[smtp.url("li@example.org")])
    make_need()

    work()

    offer = api.pending_offer(v["id"])
    [mail] = smtp.mails
    assert mail.sender == "aid@example.org"
    assert mail.recipients == ["li@example.org"]
    assert mail.authenticated
    assert mail.subject == "Aidline dispatch"
    assert f"Reply YES {offer['code']} or NO {offer['code']}" in mail.text
    assert f"http://aid.test/api/v1/offers/{offer['id']}" in mail.text


def test_an_escalation_is_mailed_to_the_grids_dispatchers_in_chinese(
    make_need: Any, work: Any, api: Api, smtp: SmtpServer, receiver: Receiver
) -> None:
    need = make_need(grid="grid-mail")

    work()

    [mail] = smtp.mails
    assert mail.recipients == ["captain@example.org"]
    assert mail.subject == "Aidline 志愿调度"
    assert "需人工调度：送水" in mail.text and need["id"] in mail.text
    assert receiver.delivered("/dispatch") == []
    [delivery] = [n for n in api.notifications(need["id"]) if n["topic"] == "escalated"]
    assert delivery["status"] == "sent"


def test_a_rejected_smtp_login_falls_back_to_the_next_channel_and_hides_both_passwords(
    make_volunteer: Any, make_need: Any, work: Any, api: Api, tokens: Any, smtp: SmtpServer, receiver: Receiver
) -> None:
    wrong = smtp.url("li@example.org", password="not-the-p4ssword")
    v = make_volunteer(on_duty=True, channels=[wrong, smtp.url("li@example.org"), receiver.url("/vol")])
    need = make_need()

    work()

    assert len(smtp.mails) == 1, "the second channel, with the right password, delivered"
    assert receiver.delivered("/vol") == []
    [offer] = [n for n in api.notifications(need["id"]) if n["topic"] == "offer"]
    assert offer["status"] == "sent"
    assert [a["ok"] for a in offer["attempts"]][-1] is True
    assert not any(a["ok"] for a in offer["attempts"][:-1])
    shown = repr(
        [
            v,
            api.client.get(f"/api/v1/volunteers/{v['id']}", headers=tokens.dispatcher).get_json(),
            api.notifications(need["id"]),
            api.events(need["id"]),
        ]
    )
    assert SMTP_PASSWORD not in shown and "not-the-p4ssword" not in shown
