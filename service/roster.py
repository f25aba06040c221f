"""Roster files: the CSV a grid office keeps of its volunteers (and households), read and checked row by row, and
written back in the same format. Pure rules: no Redis, no framework; `service.roster_sync` stores what this reads.

A file is UTF-8 (a byte order mark allowed), one header line then one record per line; the header names the
columns in English or in Chinese (姓名, 电话, ...), in any order, in any letter case. Lists (skills, channels,
vulnerabilities) are separated by `;` (a full-width `；` too). Every record is checked with the rules the API applies
to the same fields, and every bad one is reported with the line it starts on and the reason.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from service.models import GRID_NAME, GRID_NAME_RULE, AttentionLevel, Locale, Skill, Vulnerability

VOLUNTEER_COLUMNS = ("name", "phone", "skills", "lat", "lon", "capacity", "team", "grid", "locale", "channels")
VOLUNTEER_REQUIRED = ("name", "phone", "lat", "lon")
VOLUNTEER_ALIASES = {
    "姓名": "name",
    "电话": "phone",
    "技能": "skills",
    "纬度": "lat",
    "经度": "lon",
    "容量": "capacity",
    "队伍": "team",
    "网格": "grid",
    "语言": "locale",
    "渠道": "channels",
}

HOUSEHOLD_COLUMNS = (
    "address",
    "lat",
    "lon",
    "grid",
    "vulnerability",
    "contact_name",
    "contact_phone",
    "attention_level",
    "notes",
)
HOUSEHOLD_REQUIRED = ("address", "lat", "lon", "contact_name", "contact_phone", "attention_level")
HOUSEHOLD_ALIASES = {
    "地址": "address",
    "纬度": "lat",
    "经度": "lon",
    "网格": "grid",
    "困难类型": "vulnerability",
    "联系人": "contact_name",
    "联系电话": "contact_phone",
    "关注等级": "attention_level",
    "备注": "notes",
}


def header(columns: Sequence[str], aliases: dict[str, str], language: str = "en") -> list[str]:
    """The header line of a file: the English column names, or their Chinese names with language='zh'."""
    chinese = {english: name for name, english in aliases.items()}
    return [chinese[c] if language == "zh" else c for c in columns]


E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
"""A phone number in E.164 form, as the API takes it."""
MAX_LAT = 85.05112
"""Redis GEO indexes cover latitudes up to here; the API refuses anything further north or south."""
CHANNEL_URL = re.compile(r"^[A-Za-z0-9]+://")
MAX_SKILLS = 20
MAX_CHANNELS = 5
LIST_SEPARATOR = re.compile(r"[;；]")
PHONE_SPACING = re.compile(r"[\s\-()]")


@dataclass(frozen=True)
class RowError:
    """Why one line of a file cannot be imported; `field` is the column, None for the line as a whole."""

    line: int
    field: str | None
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.field}: {self.reason}" if self.field else f"line {self.line}: {self.reason}"


@dataclass(frozen=True)
class Row:
    """One good record: the line it starts on and its values, in the shape the API takes them."""

    line: int
    values: dict[str, Any]


@dataclass
class Parsed:
    """What a file holds: its good rows, and an error for each bad one (or for the file as a whole)."""

    rows: list[Row] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    bad_lines: set[int] = field(default_factory=set)
    unreadable: bool = False
    """The file as a whole cannot be read (not UTF-8, not CSV, no header or a bad one): no record was looked at."""
    columns: tuple[str, ...] = ()
    """The columns the file has (by their English names): one it leaves out leaves that field of a record
    already registered as it is."""

    def refuse(self, line: int, field_name: str | None, reason: str) -> None:
        self.errors.append(RowError(line, field_name, reason))
        self.bad_lines.add(line)


class FieldError(ValueError):
    """One value breaks a rule; the message is the reason."""


# --- reading ---------------------------------------------------------------------------------------------------------


def decode(data: bytes) -> tuple[str | None, RowError | None]:
    """The file's text (a leading byte order mark dropped), or the line where it stops being UTF-8."""
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        return None, RowError(line, None, "not UTF-8 text: save the file as CSV UTF-8")


def records(text: str) -> Iterator[tuple[int, list[str]]]:
    """Each non-blank record with the number of the line it starts on (a quoted value may span lines)."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    ended = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise FieldError(f"line {ended + 1}: not CSV: {error}") from None
        start, ended = ended + 1, reader.line_num
        if any(cell.strip() for cell in cells):
            yield start, cells


def header_columns(
    cells: list[str], *, columns: Sequence[str], aliases: dict[str, str], required: Sequence[str]
) -> tuple[list[str], list[str]]:
    """The column name of each header cell, and what is wrong with the header (unknown, repeated or missing)."""
    names: list[str] = []
    problems: list[str] = []
    for cell in cells:
        label = cell.strip()
        name = aliases.get(label, label.lower())
        if name not in columns:
            problems.append(f"unknown column {label!r} (columns: {', '.join(columns)})")
        elif name in names:
            problems.append(f"column {name} appears twice")
        names.append(name)
    missing = [name for name in required if name not in names]
    if missing:
        problems.append("missing column" + ("s " if len(missing) > 1 else " ") + ", ".join(missing))
    return names, problems


def parse(
    data: bytes,
    *,
    columns: Sequence[str],
    aliases: dict[str, str],
    required: Sequence[str],
    check: Callable[[dict[str, str]], dict[str, Any]],
    key: tuple[str, Callable[[dict[str, Any]], str]],
    progress: Callable[[int], None] = lambda n: None,
) -> Parsed:
    """Read and check every record: `check` turns one record's cells into values or raises RowProblems; `key`
    names the column that tells records apart and reads it from the values (a second record with the same value
    is refused)."""
    parsed = Parsed()
    text, undecodable = decode(data)
    if text is None:
        assert undecodable is not None
        parsed.refuse(undecodable.line, None, undecodable.reason)
        parsed.unreadable = True
        return parsed
    try:
        found = list(records(text))
    except FieldError as error:
        where, _, reason = str(error).partition(": ")
        parsed.refuse(int(where.removeprefix("line ")), None, reason)
        parsed.unreadable = True
        return parsed
    if not found:
        parsed.refuse(1, None, "the file is empty: it needs a header line, e.g. " + ",".join(columns))
        parsed.unreadable = True
        return parsed
    (header_line, header), *body = found
    names, problems = header_columns(header, columns=columns, aliases=aliases, required=required)
    for problem in problems:
        parsed.refuse(header_line, None, problem)
    if problems:
        parsed.unreadable = True
        return parsed
    parsed.columns = tuple(names)
    first_seen: dict[str, int] = {}
    for line, cells in body:
        progress(1)
        if len(cells) != len(names):
            parsed.refuse(line, None, f"{len(cells)} values, the header has {len(names)} columns")
            continue
        try:
            values = check(dict(zip(names, (cell.strip() for cell in cells), strict=True)))
        except RowProblems as bad:
            for name, reason in bad.problems:
                parsed.refuse(line, name, reason)
            continue
        key_name, key_of = key
        seen = first_seen.setdefault(key_of(values), line)
        if seen != line:
            parsed.refuse(line, key_name, f"{key_of(values)} is on line {seen} too")
            continue
        parsed.rows.append(Row(line, values))
    return parsed


class RowProblems(ValueError):
    """Every bad value of one record: (column, reason) pairs."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{name}: {reason}" for name, reason in problems))
        self.problems = problems


class Checker:
    """Collects the problems of one record while its values are read, column by column."""

    def __init__(self, cells: dict[str, str]) -> None:
        self.cells = cells
        self.problems: list[tuple[str, str]] = []

    def take(self, name: str, read: Callable[[str], Any], default: Any = None) -> Any:
        raw = self.cells.get(name, "")
        if raw == "":
            return default
        try:
            return read(raw)
        except FieldError as error:
            self.problems.append((name, str(error)))
            return None

    def need(self, name: str, read: Callable[[str], Any]) -> Any:
        if self.cells.get(name, "") == "":
            self.problems.append((name, "required"))
            return None
        return self.take(name, read)

    def done(self, values: dict[str, Any]) -> dict[str, Any]:
        if self.problems:
            raise RowProblems(self.problems)
        return values


# --- the rules for single values, the API's ----------------------------------------------------------------------


def text_of(max_length: int) -> Callable[[str], str]:
    def read(raw: str) -> str:
        if len(raw) > max_length:
            raise FieldError(f"longer than {max_length} characters")
        return raw

    return read


def phone(raw: str) -> str:
    """An E.164 number; spaces, hyphens and brackets between the digits are dropped."""
    number = PHONE_SPACING.sub("", raw)
    if not E164.match(number):
        raise FieldError(f"{raw!r} is not a phone number in E.164 form, like +8613800000001")
    return number


def decimal(low: float, high: float) -> Callable[[str], float]:
    def read(raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise FieldError(f"{raw!r} is not a number") from None
        if not math.isfinite(value) or not low <= value <= high:
            raise FieldError(f"{raw} is not between {low:g} and {high:g}")
        return value

    return read


def whole(low: int, high: int) -> Callable[[str], int]:
    def read(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise FieldError(f"{raw!r} is not a whole number") from None
        if not low <= value <= high:
            raise FieldError(f"{value} is not between {low} and {high}")
        return value

    return read


def grid_name(raw: str) -> str:
    if not GRID_NAME.fullmatch(raw):
        raise FieldError(f"{raw!r}: {GRID_NAME_RULE[0].lower()}{GRID_NAME_RULE[1:]}")
    return raw


def items(raw: str) -> list[str]:
    return [part.strip() for part in LIST_SEPARATOR.split(raw) if part.strip()]


CHINESE_VALUES: dict[str, dict[str, str]] = {
    "skill": {
        "通用": "general",
        "搬运": "heavy_lifting",
        "驾驶": "driving",
        "水罐车": "tanker_truck",
        "水管": "plumbing",
        "电工": "electrical",
        "供暖": "heating",
        "烹饪": "cooking",
        "医疗": "medical",
        "调解": "mediation",
        "辅导": "tutoring",
    },
    "vulnerability": {
        "独居老人": "elderly_alone",
        "残障": "disabled",
        "儿童": "child",
        "牲畜": "livestock",
        "医疗": "medical",
    },
    "an attention level": {"红": "red", "橙": "orange", "黄": "yellow", "绿": "green"},
}
"""Values a file may give by their Chinese names (the console's and the reports' words): 驾驶 for driving, 红
for red. Exports write the English values, which every import reads."""


def one_of(choices: Iterable[str], what: str) -> Callable[[str], str]:
    allowed = tuple(choices)
    chinese = CHINESE_VALUES.get(what, {})

    def read(raw: str) -> str:
        value = chinese.get(raw.strip(), raw.lower())
        if value not in allowed:
            raise FieldError(f"{raw!r} is not {what} ({', '.join(allowed)})")
        return value

    return read


def list_of(choices: Iterable[str], what: str, *, most: int) -> Callable[[str], list[str]]:
    allowed = tuple(choices)
    chinese = CHINESE_VALUES.get(what, {})

    def read(raw: str) -> list[str]:
        values = [chinese.get(v, v.lower()) for v in items(raw)]
        unknown = [v for v in values if v not in allowed]
        if unknown:
            raise FieldError(f"unknown {what} {', '.join(unknown)} (known: {', '.join(allowed)})")
        if len(values) > most:
            raise FieldError(f"at most {most} {what}s")
        return list(dict.fromkeys(values))

    return read


def channels(raw: str) -> list[str]:
    """Notification channels: apprise URLs, separated by `;`, at most 5."""
    import apprise

    urls = items(raw)
    if len(urls) > MAX_CHANNELS:
        raise FieldError(f"at most {MAX_CHANNELS} channels")
    for url in urls:
        if len(url) > 500:
            raise FieldError("a channel is longer than 500 characters")
        if not CHANNEL_URL.match(url) or apprise.Apprise.instantiate(url) is None:
            raise FieldError(f"{url!r} is not a notification URL that apprise understands (e.g. json://host/path)")
    return urls


# --- volunteers --------------------------------------------------------------------------------------------------


def check_volunteer(cells: dict[str, str]) -> dict[str, Any]:
    """One volunteer record as the API takes it (POST /volunteers), or RowProblems naming every bad value."""
    c = Checker(cells)
    return c.done(
        {
            "name": c.need("name", text_of(100)),
            "phone": c.need("phone", phone),
            "skills": c.take("skills", list_of((s.value for s in Skill), "skill", most=MAX_SKILLS), []),
            "location": {"lat": c.need("lat", decimal(-MAX_LAT, MAX_LAT)), "lon": c.need("lon", decimal(-180, 180))},
            "capacity": c.take("capacity", whole(1, 5), 1),
            "team": c.take("team", text_of(50)),
            "grid": c.take("grid", grid_name),
            "locale": c.take("locale", one_of((loc.value for loc in Locale), "a language"), Locale.ZH.value),
            "channels": c.take("channels", channels, []),
        }
    )


def parse_volunteers(data: bytes, *, progress: Callable[[int], None] = lambda n: None) -> Parsed:
    """Every volunteer record of a roster file, checked; a phone may appear once."""
    return parse(
        data,
        columns=VOLUNTEER_COLUMNS,
        aliases=VOLUNTEER_ALIASES,
        required=VOLUNTEER_REQUIRED,
        check=check_volunteer,
        key=("phone", lambda values: str(values["phone"])),
        progress=progress,
    )


def volunteer_cells(volunteer: Any, *, channel_text: Callable[[str], str] = lambda url: url) -> list[str]:
    """A stored volunteer as one record of a roster file (its home location; 'general', which everyone has,
    left out of the skills)."""
    return [
        volunteer.name,
        volunteer.phone,
        ";".join(s.value for s in volunteer.skills if s is not Skill.GENERAL),
        _number(volunteer.home.lat),
        _number(volunteer.home.lon),
        str(volunteer.capacity),
        volunteer.team or "",
        volunteer.grid or "",
        volunteer.locale.value,
        ";".join(channel_text(url) for url in volunteer.channels),
    ]


# --- households --------------------------------------------------------------------------------------------------


def check_household(cells: dict[str, str]) -> dict[str, Any]:
    """One household record as the API takes it (POST /households, with a location), or RowProblems."""
    c = Checker(cells)
    return c.done(
        {
            "address": c.need("address", text_of(300)),
            "location": {"lat": c.need("lat", decimal(-MAX_LAT, MAX_LAT)), "lon": c.need("lon", decimal(-180, 180))},
            "grid": c.take("grid", grid_name),
            "vulnerability": c.take(
                "vulnerability", list_of((v.value for v in Vulnerability), "vulnerability", most=len(Vulnerability)), []
            ),
            "contact": {"name": c.need("contact_name", text_of(100)), "phone": c.need("contact_phone", phone)},
            "attention_level": c.need(
                "attention_level", one_of((a.value for a in AttentionLevel), "an attention level")
            ),
            "notes": c.take("notes", text_of(2000)),
        }
    )


def parse_households(data: bytes, *, progress: Callable[[int], None] = lambda n: None) -> Parsed:
    """Every household record of a register file, checked; a contact phone may appear once."""
    return parse(
        data,
        columns=HOUSEHOLD_COLUMNS,
        aliases=HOUSEHOLD_ALIASES,
        required=HOUSEHOLD_REQUIRED,
        check=check_household,
        key=("contact_phone", lambda values: str(values["contact"]["phone"])),
        progress=progress,
    )


def household_cells(household: Any) -> list[str]:
    """A stored household as one record of a register file."""
    return [
        household.address,
        _number(household.location.lat),
        _number(household.location.lon),
        household.grid or "",
        ";".join(v.value for v in household.vulnerability),
        household.contact.name,
        household.contact.phone,
        household.attention_level.value,
        household.notes or "",
    ]


# --- writing ---------------------------------------------------------------------------------------------------------


def write(rows: Iterable[list[str]], *, header: Sequence[str], out: Any) -> int:
    """Write the header line and the rows as CSV to the text stream `out`; returns how many rows."""
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    count = 0
    for row in rows:
        writer.writerow(row)
        count += 1
    return count


def _number(value: float) -> str:
    """A coordinate as stored (6 decimals at most), without trailing zeros."""
    return f"{round(value, 6):.6f}".rstrip("0").rstrip(".")
