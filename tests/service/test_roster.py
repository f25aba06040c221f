"""Reading roster files: UTF-8 with or without a byte order mark, English or Chinese headers, `;` lists, and every
bad row reported with the line it starts on and why; the same rules as the API's for the same fields."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from marshmallow import ValidationError

from service import roster
from service.api.schemas import HouseholdCreateSchema, VolunteerCreateSchema
from service.messages import ATTENTION_NAMES
from service.models import Locale, Location, Skill, Volunteer

ROOT = Path(__file__).resolve().parents[2]
HEADER = "name,phone,skills,lat,lon,capacity,team,grid,locale,channels\n"
LI = "Li Jinfeng,+8613800000001,plumbing;driving,46.33,132.21,2,pioneer,grid-2,zh,json://127.0.0.1:9000/hook\n"
WANG = "Wang Fang,+8613800000002,,46.34,132.25,,,,,\n"


def volunteers(text: str, *, bom: bool = False) -> roster.Parsed:
    return roster.parse_volunteers(("\ufeff" if bom else "").encode() + text.encode("utf-8"))


def messages(parsed: roster.Parsed) -> list[str]:
    return [str(error) for error in parsed.errors]


def test_a_good_file_gives_each_row_in_the_shape_the_api_takes() -> None:
    parsed = volunteers(HEADER + LI + WANG)
    assert parsed.errors == []
    assert [row.line for row in parsed.rows] == [2, 3]
    assert parsed.rows[0].values == {
        "name": "Li Jinfeng",
        "phone": "+8613800000001",
        "skills": ["plumbing", "driving"],
        "location": {"lat": 46.33, "lon": 132.21},
        "capacity": 2,
        "team": "pioneer",
        "grid": "grid-2",
        "locale": "zh",
        "channels": ["json://127.0.0.1:9000/hook"],
    }
    assert parsed.rows[1].values == {
        "name": "Wang Fang",
        "phone": "+8613800000002",
        "skills": [],
        "location": {"lat": 46.34, "lon": 132.25},
        "capacity": 1,
        "team": None,
        "grid": None,
        "locale": "zh",
        "channels": [],
    }


def test_a_byte_order_mark_is_dropped() -> None:
    assert volunteers(HEADER + LI, bom=True).rows[0].values["name"] == "Li Jinfeng"


def test_chinese_headers_in_any_order_are_read_like_english_ones() -> None:
    chinese = (
        "电话,姓名,纬度,经度,技能,容量,队伍,网格,语言,渠道\n+8613800000003,李金凤,46.3,132.2,电工,1,先锋队,二网格,zh,\n"
    )
    parsed = volunteers(chinese.replace("电工", "electrical"), bom=True)
    assert parsed.errors == []
    values = parsed.rows[0].values
    assert (values["name"], values["phone"], values["skills"], values["team"]) == (
        "李金凤",
        "+8613800000003",
        ["electrical"],
        "先锋队",
    )


def test_english_headers_ignore_case_and_spaces_and_optional_columns_may_be_left_out() -> None:
    parsed = volunteers(" Name , PHONE,Lat,Lon\nZhao,+8613800000004,46.3,132.2\n")
    assert parsed.errors == []
    assert parsed.rows[0].values["capacity"] == 1
    assert parsed.rows[0].values["skills"] == []


def test_lists_are_separated_by_semicolons_full_width_ones_too_and_repeats_are_dropped() -> None:
    row = "Li,+8613800000001,Plumbing； driving;;plumbing,46.33,132.21,1,,,en,json://a.example/x;ntfy://ntfy.sh/grid\n"
    values = volunteers(HEADER + row).rows[0].values
    assert values["skills"] == ["plumbing", "driving"]
    assert values["channels"] == ["json://a.example/x", "ntfy://ntfy.sh/grid"]
    assert values["locale"] == "en"


def test_phone_numbers_may_be_written_with_spaces_and_hyphens() -> None:
    row = "Li,+86 138-0000-0001,,46.33,132.21,,,,,\n"
    assert volunteers(HEADER + row).rows[0].values["phone"] == "+8613800000001"


def test_every_bad_row_is_reported_with_its_line_and_every_reason() -> None:
    text = (
        HEADER
        + LI
        + "Bad Phone,13800000009,plumbing,46.3,132.2,1,,,,\n"
        + WANG
        + ",+8613800000005,flying;plumbing,95,200,9,,,fr,mailto-nothing\n"
        + "Too few,+8613800000006\n"
    )
    parsed = volunteers(text)
    assert [row.line for row in parsed.rows] == [2, 4]
    assert messages(parsed) == [
        "line 3: phone: '13800000009' is not a phone number in E.164 form, like +8613800000001",
        "line 5: name: required",
        "line 5: skills: unknown skill flying (known: " + ", ".join(s.value for s in Skill) + ")",
        "line 5: lat: 95 is not between -85.0511 and 85.0511",
        "line 5: lon: 200 is not between -180 and 180",
        "line 5: capacity: 9 is not between 1 and 5",
        "line 5: locale: 'fr' is not a language (zh, en)",
        "line 5: channels: 'mailto-nothing' is not a notification URL that apprise understands (e.g. json://host/path)",
        "line 6: 2 values, the header has 10 columns",
    ]
    assert parsed.bad_lines == {3, 5, 6}
    assert not parsed.unreadable


def test_line_numbers_count_physical_lines_past_blank_lines_and_quoted_line_breaks() -> None:
    text = HEADER + '"Li\nJinfeng",+8613800000001,,46.3,132.2,,,,,\n\n' + "Zhao,+1,,46.3,132.2,,,,,\n"
    parsed = volunteers(text)
    assert parsed.rows[0].line == 2
    assert parsed.rows[0].values["name"] == "Li\nJinfeng"
    assert messages(parsed) == ["line 5: phone: '+1' is not a phone number in E.164 form, like +8613800000001"]


def test_a_phone_twice_in_one_file_is_refused_on_the_second_line() -> None:
    parsed = volunteers(HEADER + LI + WANG + LI.replace("Li Jinfeng", "Someone Else"))
    assert messages(parsed) == ["line 4: phone: +8613800000001 is on line 2 too"]


def test_numbers_must_be_numbers() -> None:
    parsed = volunteers(HEADER + "Li,+8613800000001,,north,nan,two,,,,\n")
    assert messages(parsed) == [
        "line 2: lat: 'north' is not a number",
        "line 2: lon: nan is not between -180 and 180",
        "line 2: capacity: 'two' is not a whole number",
    ]


def test_too_long_texts_are_refused() -> None:
    parsed = volunteers(HEADER + f"{'x' * 101},+8613800000001,,46.3,132.2,,{'t' * 51},,,\n")
    assert messages(parsed) == ["line 2: name: longer than 100 characters", "line 2: team: longer than 50 characters"]


@pytest.mark.parametrize(
    ("header", "reasons"),
    [
        (
            "name,phone,lat,lon,email\n",
            [
                "line 1: unknown column 'email' (columns: name, phone, skills, lat, lon, capacity, team, grid, "
                "locale, channels)"
            ],
        ),
        ("name,phone,lat\n", ["line 1: missing column lon"]),
        ("name,skills\n", ["line 1: missing columns phone, lat, lon"]),
        ("name,phone,lat,lon,电话\n", ["line 1: column phone appears twice"]),
    ],
)
def test_a_bad_header_makes_the_file_unreadable(header: str, reasons: list[str]) -> None:
    parsed = volunteers(header + LI)
    assert messages(parsed) == reasons
    assert parsed.unreadable
    assert parsed.rows == []


def test_an_empty_file_is_unreadable() -> None:
    parsed = volunteers("\n\n")
    assert parsed.unreadable
    assert messages(parsed) == [
        "line 1: the file is empty: it needs a header line, e.g. " + ",".join(roster.VOLUNTEER_COLUMNS)
    ]


def test_a_file_that_is_not_utf8_says_on_which_line_it_stops_being_text() -> None:
    data = (HEADER + LI).encode() + "王芳,+8613800000002,,46.3,132.2,,,,,\n".encode("gb18030")
    parsed = roster.parse_volunteers(data)
    assert parsed.unreadable
    assert messages(parsed) == ["line 3: not UTF-8 text: save the file as CSV UTF-8"]


def test_broken_quoting_is_reported_and_the_file_unreadable() -> None:
    parsed = volunteers(HEADER + 'Li,"+86138"00000001,,46.3,132.2,,,,,\n')
    assert parsed.unreadable
    assert len(parsed.errors) == 1 and parsed.errors[0].line == 2
    assert "not CSV" in parsed.errors[0].reason


def test_progress_is_told_of_every_row() -> None:
    seen: list[int] = []
    roster.parse_volunteers((HEADER + LI + WANG).encode(), progress=seen.append)
    assert sum(seen) == 2


# --- the same rules as the API ---------------------------------------------------------------------------------


def api_verdict(values: dict[str, Any]) -> set[str]:
    """The fields POST /volunteers refuses in this body, a location's lat and lon by their own names."""
    body = {name: value for name, value in values.items() if value is not None}
    try:
        VolunteerCreateSchema().load(body)
    except ValidationError as error:
        refused = error.normalized_messages()
        return {name for name in refused if name != "location"} | set(refused.get("location", {}))
    return set()


ROWS = [
    LI,
    WANG,
    "Li,+8613800000001,,85.05112,-180,5,,,en,\n",
    "Li,+8613800000001,,85.06,180.1,0,,,,\n",
    "Li,+0613800000001,,46.3,132.2,6,,,,\n",
    "Li,+861380000000123456,,46.3,132.2,1,,,,\n",
    "Li,+86138,,46.3,132.2,1,,,,\n",
    "Li,+8613800000001,,46.3,132.2,1,,,,json://a;json://b;json://c;json://d;json://e;json://f\n",
    "Li,+8613800000001,,46.3,132.2,1,,,,nothing://really\n",
    f"{'名' * 100},+8613800000001,,46.3,132.2,1,{'队' * 50},{'格' * 51},,\n",
    "Li,+8613800000001,,46.3,132.2,1,,grid 2,,\n",
    "Li,+8613800000001,,46.3,132.2,1,,grid/2,,\n",
    "Li,+8613800000001,,46.3,132.2,1,,三网格,,\n",
]


@pytest.mark.parametrize("row", ROWS)
def test_a_row_is_refused_for_exactly_the_fields_the_api_refuses(row: str) -> None:
    parsed = volunteers(HEADER + row)
    refused_here = {error.field for error in parsed.errors}
    cells = dict(zip(roster.VOLUNTEER_COLUMNS, row.rstrip("\n").split(","), strict=True))
    raw = {
        "name": cells["name"],
        "phone": cells["phone"],
        "skills": [s for s in cells["skills"].split(";") if s],
        "location": {"lat": float(cells["lat"]), "lon": float(cells["lon"])},
        "capacity": int(cells["capacity"]) if cells["capacity"] else 1,
        "team": cells["team"] or None,
        "grid": cells["grid"] or None,
        "locale": cells["locale"] or "zh",
        "channels": [c for c in cells["channels"].split(";") if c],
    }
    assert refused_here == api_verdict(raw)


# --- writing back ------------------------------------------------------------------------------------------------


def stored(**overrides: Any) -> Volunteer:
    fields: dict[str, Any] = {
        "id": "vol_1",
        "name": "Li Jinfeng",
        "phone": "+8613800000001",
        "skills": [Skill.GENERAL, Skill.DRIVING, Skill.PLUMBING],
        "home": Location(46.33, 132.21),
        "location": Location(46.5, 132.5),
        "capacity": 2,
        "load": 1,
        "on_duty": True,
        "channels": ["json://127.0.0.1:9000/hook"],
        "locale": Locale.ZH,
        "team": "pioneer",
        "grid": None,
        "created_at": "2026-11-29T10:00:00.000Z",
        "updated_at": "2026-11-29T10:00:00.000Z",
        "location_at": "2026-11-29T10:00:00.000Z",
        "idle_since": 0.0,
    }
    return Volunteer(**{**fields, **overrides})


def test_a_volunteer_is_written_as_a_record_of_its_home_without_general() -> None:
    assert roster.volunteer_cells(stored()) == [
        "Li Jinfeng",
        "+8613800000001",
        "driving;plumbing",
        "46.33",
        "132.21",
        "2",
        "pioneer",
        "",
        "zh",
        "json://127.0.0.1:9000/hook",
    ]


@pytest.mark.parametrize("language", ["en", "zh"])
def test_what_is_written_reads_back_as_the_same_values(language: str) -> None:
    out = io.StringIO(newline="")
    people = [stored(), stored(name='Wang "Fang", jr.', phone="+8613800000002", channels=[], team=None)]
    header = roster.header(roster.VOLUNTEER_COLUMNS, roster.VOLUNTEER_ALIASES, language)
    assert roster.write((roster.volunteer_cells(v) for v in people), header=header, out=out) == 2
    assert out.getvalue().splitlines()[0] == (
        "姓名,电话,技能,纬度,经度,容量,队伍,网格,语言,渠道" if language == "zh" else HEADER.strip()
    )
    parsed = roster.parse_volunteers(out.getvalue().encode())
    assert parsed.errors == []
    assert [row.values["name"] for row in parsed.rows] == ["Li Jinfeng", 'Wang "Fang", jr.']
    assert parsed.rows[0].values["location"] == {"lat": 46.33, "lon": 132.21}
    assert parsed.rows[0].values["skills"] == ["driving", "plumbing"]


# --- households --------------------------------------------------------------------------------------------------

HOUSEHOLDS = "address,lat,lon,grid,vulnerability,contact_name,contact_phone,attention_level,notes\n"


def test_a_household_row_gives_the_register_s_shape() -> None:
    text = HOUSEHOLDS + "Station 2 house 14,46.34,132.25,grid-2,elderly_alone;medical,Zhang,+8613900000002,Red,stove\n"
    parsed = roster.parse_households(text.encode())
    assert parsed.errors == []
    assert parsed.rows[0].values == {
        "address": "Station 2 house 14",
        "location": {"lat": 46.34, "lon": 132.25},
        "grid": "grid-2",
        "vulnerability": ["elderly_alone", "medical"],
        "contact": {"name": "Zhang", "phone": "+8613900000002"},
        "attention_level": "red",
        "notes": "stove",
    }


def test_household_rows_are_checked_and_chinese_headers_read() -> None:
    text = (
        "地址,纬度,经度,网格,困难类型,联系人,联系电话,关注等级,备注\n"
        "二站14号,46.34,132.25,二网格,child,张,+8613900000002,orange,\n"
        ",46.34,132.25,,pets,,+8613900000002,purple,\n"
    )
    parsed = roster.parse_households(text.encode())
    assert parsed.rows[0].values["attention_level"] == "orange"
    assert messages(parsed) == [
        "line 3: address: required",
        "line 3: vulnerability: unknown vulnerability pets (known: elderly_alone, disabled, child, livestock, medical)",
        "line 3: contact_name: required",
        "line 3: attention_level: 'purple' is not an attention level (red, orange, yellow, green)",
    ]


def test_values_may_be_given_by_their_chinese_names() -> None:
    chinese_volunteer = "电话,姓名,纬度,经度,技能,容量\n+8613800000003,李金凤,46.3,132.2,驾驶；水罐车,1\n"
    chinese_household = (
        "地址,纬度,经度,困难类型,联系人,联系电话,关注等级\n二站14号,46.34,132.25,独居老人;医疗,张,+8613900000002,红\n"
    )

    volunteer = volunteers(chinese_volunteer).rows[0].values
    household = roster.parse_households(chinese_household.encode()).rows[0].values

    assert volunteer["skills"] == ["driving", "tanker_truck"]
    assert (household["vulnerability"], household["attention_level"]) == (["elderly_alone", "medical"], "red")
    assert messages(volunteers(chinese_volunteer.replace("驾驶", "开车"))) == [
        "line 2: skills: unknown skill 开车 (known: " + ", ".join(s.value for s in Skill) + ")"
    ]


def test_the_chinese_names_of_values_are_the_consoles_and_the_reports_words() -> None:

    catalog = open("service/console/translations/zh/LC_MESSAGES/messages.po", encoding="utf-8").read()
    for value, name in [
        (v, k) for k, v in {**roster.CHINESE_VALUES["skill"], **roster.CHINESE_VALUES["vulnerability"]}.items()
    ]:
        assert f'msgid "{value.replace("_", " ")}"\nmsgstr "{name}"' in catalog, value
    assert {v: k for k, v in roster.CHINESE_VALUES["an attention level"].items()} == ATTENTION_NAMES["zh"]
    assert set(roster.CHINESE_VALUES["skill"].values()) == {s.value for s in Skill}


HOUSEHOLD_ROWS = [
    "Station 2 house 14,46.34,132.25,grid-2,elderly_alone;medical,Zhang,+8613900000002,red,stove\n",
    f"{'址' * 300},85.05112,-180,,,{'张' * 100},+8613900000002,green,{'n' * 2000}\n",
    f"{'址' * 301},85.06,180.5,{'g' * 51},pets,{'张' * 101},13900000002,purple,{'n' * 2001}\n",
    ",46.34,132.25,,,,+8613900000002,yellow,\n",
    "Station 2 house 14,46.34,132.25,grid 2,,Zhang,+8613900000002,red,\n",
]
PARTS = {"location": {"lat": "lat", "lon": "lon"}, "contact": {"name": "contact_name", "phone": "contact_phone"}}


@pytest.mark.parametrize("row", HOUSEHOLD_ROWS)
def test_a_household_row_is_refused_for_exactly_the_fields_the_api_refuses(row: str) -> None:
    parsed = roster.parse_households((HOUSEHOLDS + row).encode())
    refused_here = {error.field for error in parsed.errors}
    cells = dict(zip(roster.HOUSEHOLD_COLUMNS, row.rstrip("\n").split(","), strict=True))
    body = {
        "address": cells["address"],
        "location": {"lat": float(cells["lat"]), "lon": float(cells["lon"])},
        "grid": cells["grid"] or None,
        "vulnerability": [v for v in cells["vulnerability"].split(";") if v],
        "contact": {"name": cells["contact_name"], "phone": cells["contact_phone"]},
        "attention_level": cells["attention_level"],
        "notes": cells["notes"] or None,
    }
    refused_by_api: set[str] = set()
    try:
        HouseholdCreateSchema().load(body)
    except ValidationError as error:
        for name, detail in error.normalized_messages().items():
            refused_by_api |= {PARTS[name][part] for part in detail} if name in PARTS else {name}
    assert refused_here == refused_by_api
