"""The console in Chinese and English: switched on any page, remembered, from complete message catalogs."""

from __future__ import annotations

import gettext
from pathlib import Path

from babel.messages.pofile import read_po

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
