"""service/console/wording.py: the service's messages in the console's language."""

from __future__ import annotations

from typing import Any

import pytest
from flask_babel import force_locale

from service import lifecycle
from service.console.wording import REFUSED_ACTIONS, field_message, refusal
from service.exceptions import Conflict, InvalidTransition
from service.lifecycle import Action


@pytest.mark.parametrize(
    ("message", "en", "zh"),
    [
        ("Missing data for required field.", "Required.", "必填。"),
        ("Not a valid integer.", "Not a whole number.", "不是整数。"),
        (
            "Must be greater than or equal to 1 and less than or equal to 20.",
            "Must be from 1 to 20.",
            "必须在 1 到 20 之间。",
        ),
        (
            "Must be one of: critical, high, normal, low.",
            "Must be one of: critical, high, normal, low.",
            "必须是以下之一：critical, high, normal, low。",
        ),
        ("Longer than maximum length 2000.", "At most 2000 characters.", "最多 2000 个字符。"),
        (
            "Must be 1 to 50 characters without spaces, commas or slashes, like grid-2.",
            "Must be 1 to 50 characters without spaces, commas or slashes, like grid-2.",
            "必须是 1 到 50 个字符，不含空格、逗号或斜杠，例如 grid-2。",
        ),
        ("A message not known here.", "A message not known here.", "A message not known here."),
    ],
)
def test_a_message_is_said_in_the_consoles_language_keeping_its_values(
    app: Any, message: str, en: str, zh: str
) -> None:
    with app.test_request_context():
        with force_locale("en"):
            assert field_message(message) == en
        with force_locale("zh"):
            said = field_message(message)
    assert said == zh


@pytest.mark.parametrize(
    ("error", "en", "zh"),
    [
        (
            lifecycle.refusal(Action.CANCEL, "done"),
            "A need that is done cannot be cancelled.",
            "需求不能取消。",
        ),
        (
            lifecycle.refusal(Action.DONE, "queued"),
            "A need that is queued cannot be marked done.",
            "需求不能标记为完成。",
        ),
        (
            lifecycle.refusal(Action.EN_ROUTE, "closed"),
            "A need that is closed cannot be set on its way.",
            "需求不能设为出发。",
        ),
        (
            InvalidTransition("cannot change the priority of a closed need", current="closed"),
            "The priority of a need that is closed cannot be changed.",
            "需求不能更改优先级。",
        ),
        (
            InvalidTransition("the need has all the offers it asked for", current="offered"),
            "the need has all the offers it asked for",
            "the need has all the offers it asked for",
        ),
        (Conflict("something else"), "something else", "something else"),
    ],
)
def test_a_lifecycle_refusal_is_said_in_the_consoles_language(app: Any, error: Any, en: str, zh: str) -> None:
    with app.test_request_context():
        with force_locale("en"):
            assert refusal(error) == en
        with force_locale("zh"):
            assert refusal(error).endswith(zh)


def test_the_console_words_a_refusal_of_every_action_of_the_lifecycle() -> None:
    assert set(REFUSED_ACTIONS) == {action.value for action in Action}
