"""The console in Chinese and English: switched on any page, remembered, from complete message catalogs."""

from __future__ import annotations

import gettext
from pathlib import Path
from typing import Any

from babel.messages.pofile import read_po

from service.console.present import EVENT_NAMES
from service.models import EventType
from tests.conftest import Tokens
from tests.console.conftest import Console

TRANSLATIONS = Path(__file__).parents[2] / "service" / "console" / "translations"


def test_switching_to_chinese_is_remembered_and_switching_back_works(console: Console) -> None:
    assert "Needs a human now" in console.html("/console/")

    switched = console.post("/console/lang", {"lang": "zh", "next": "/console/volunteers"})

    assert switched.status_code == 303 and switched.headers["Location"] == "/console/volunteers"
    cookie = next(c for c in switched.headers.getlist("Set-Cookie") if c.startswith("aidline_lang="))
    assert "aidline_lang=zh" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    board = console.html("/console/")
    assert "需要人工处理" in board and 'lang="zh-Hans"' in board
    console.post("/console/lang", {"lang": "en"})
    assert "Needs a human now" in console.html("/console/")


def test_the_browsers_language_is_the_default(console: Console) -> None:
    page = console.get("/console/", headers={"Accept-Language": "zh-CN,zh;q=0.9"}).get_data(as_text=True)

    assert "看板" in page


def test_only_known_languages_and_console_addresses_are_taken(console: Console) -> None:
    assert console.post("/console/lang", {"lang": "fr"}).status_code == 400
    away = console.post("/console/lang", {"lang": "zh", "next": "https://elsewhere.example/"})
    assert away.headers["Location"] == "/console/"


def test_every_text_has_a_chinese_translation_and_the_compiled_catalogs_are_current() -> None:
    for lang in ("zh", "en"):
        po = TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po"
        with po.open("rb") as f:
            catalog = read_po(f)
        compiled = gettext.GNUTranslations((po.with_suffix(".mo")).open("rb"))
        for message in catalog:
            if not message.id:
                continue
            if lang == "zh":
                assert message.string, f"no Chinese for {message.id!r}"
            expected = message.string or message.id
            assert compiled.gettext(str(message.id)) == expected, f"{po.with_suffix('.mo')} is stale: make translations"
    with (TRANSLATIONS / "messages.pot").open("rb") as f:
        template = {m.id for m in read_po(f) if m.id}
    with (TRANSLATIONS / "zh" / "LC_MESSAGES" / "messages.po").open("rb") as f:
        assert template <= {m.id for m in read_po(f) if m.id}, "run make translations-update"


def test_the_timeline_names_every_step_in_the_readers_language(
    console: Console, make_need: Any, make_volunteer: Any, work: Any
) -> None:
    assert set(EVENT_NAMES) == set(EventType), "every step on a timeline has a name"
    make_volunteer(on_duty=True, location={"lat": 46.34, "lon": 132.25})
    need = make_need()
    work()
    console.post("/console/lang", {"lang": "zh"})

    page = console.html(f"/console/needs/{need['id']}")

    assert "<b>已受理</b>" in page and "<b>开始匹配</b>" in page and "<b>已派单</b>" in page
    assert "matching started" not in page


def test_the_header_names_the_signed_in_role_in_the_readers_language(console: Console, ops_console: Console) -> None:
    console.post("/console/lang", {"lang": "zh"})
    ops_console.post("/console/lang", {"lang": "zh"})

    assert '<span class="who">调度员</span>' in console.html("/console/")
    assert '<span class="who">运维（只读）</span>' in ops_console.html("/console/")


def test_ages_on_the_board_are_in_the_readers_language(console: Console, make_need: Any, clock: Any) -> None:
    make_need()
    clock.advance(3 * 3600 + 5 * 60)
    assert "3 h 5 min" in console.html("/console/board")

    console.post("/console/lang", {"lang": "zh"})

    assert "3 小时 5 分钟" in console.html("/console/board")


def test_offer_and_incident_statuses_are_in_the_readers_language(
    console: Console, make_need: Any, make_volunteer: Any, work: Any, client: Any, tokens: Tokens
) -> None:
    make_volunteer(on_duty=True, location={"lat": 46.34, "lon": 132.25})
    need = make_need()
    work()
    declared = client.post(
        "/api/v1/incidents",
        json={"family": "water", "centre": {"lat": 46.34, "lon": 132.25}, "radius_km": 2},
        headers=tokens.dispatcher,
    ).get_json()
    console.post("/console/lang", {"lang": "zh"})

    assert ">待回复</span>" in console.html(f"/console/needs/{need['id']}")
    assert "<td>进行中</td>" in console.html("/console/incidents")
    assert "停水 · 进行中" in console.html(f"/console/incidents/{declared['id']}")
