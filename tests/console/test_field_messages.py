"""service/console/field_messages.py: the schemas' field messages in the console's language."""

from __future__ import annotations

from typing import Any

import pytest
from flask_babel import force_locale

from service.console.field_messages import say


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
        ("A message not known here.", "A message not known here.", "A message not known here."),
    ],
)
def test_a_message_is_said_in_the_consoles_language_keeping_its_values(
    app: Any, message: str, en: str, zh: str
) -> None:
    with app.test_request_context():
        with force_locale("en"):
            assert say(message) == en
        with force_locale("zh"):
            said = say(message)
    assert said == zh
