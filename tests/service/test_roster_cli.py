"""`aidline import volunteers` and `aidline export volunteers` against a real Redis: all or nothing, --skip-bad,
updates by phone instead of duplicates, and an export that imports back to the same roster."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from rq import Queue

from service import cli, jobs
from service.clock import ManualClock
from service.deps import Deps
from service.models import Volunteer
from tests.conftest import Tokens

HEADER = "name,phone,skills,lat,lon,capacity,team,grid,locale,channels\n"
LI = "Li Jinfeng,+8613800000001,plumbing;driving,46.33,132.21,2,pioneer,grid-2,zh,json://127.0.0.1:9000/hook\n"
WANG = "Wang Fang,+8613800000002,,46.34,132.25,,,,en,\n"
ZHAO = "Zhao Lei,+8613800000003,heating,46.35,132.26,3,,grid-3,zh,\n"


@pytest.fixture
def aidline(deps: Deps, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run an `aidline` command line on the test's Redis, as a shell user would (stderr apart from stdout)."""
    monkeypatch.setattr(cli, "_deps", lambda: deps)

    def run(*args: str, stdin: bytes | None = None) -> Result:
        return CliRunner().invoke(cli.cli, list(args), input=stdin, catch_exceptions=False)

    return run


def roster_file(tmp_path: Path, text: str, *, bom: bool = False, name: str = "roster.csv") -> str:
    path = tmp_path / name
    path.write_bytes(("\ufeff" if bom else "").encode() + text.encode("utf-8"))
    return str(path)


def everyone(deps: Deps) -> list[Volunteer]:
    ids = deps.store.volunteers.ids_range(start=0, count=1000)
    return [v for v in deps.store.volunteers.get_many(ids) if v is not None]


def by_phone(deps: Deps) -> dict[str, Volunteer]:
    return {v.phone: v for v in everyone(deps)}


def test_import_creates_the_volunteers_of_the_file(aidline: Any, deps: Deps, tmp_path: Path, tokens: Tokens) -> None:
    result = aidline("import", "volunteers", roster_file(tmp_path, HEADER + LI + WANG, bom=True))
    assert result.exit_code == 0, result.output
    assert result.stdout == "volunteers: 2 created, 0 updated, 0 unchanged, 0 bad rows skipped\n"
    stored = by_phone(deps)
    li = stored["+8613800000001"]
    assert (li.name, [s.value for s in li.skills], li.capacity, li.team, li.grid) == (
        "Li Jinfeng",
        ["general", "driving", "plumbing"],
        2,
        "pioneer",
        "grid-2",
    )
    assert (li.home.lat, li.home.lon, li.location.lat) == (46.33, 132.21, 46.33)
    assert li.channels == ["json://127.0.0.1:9000/hook"]
    assert not li.on_duty
    assert stored["+8613800000002"].locale.value == "en"
    assert deps.store.volunteers.ids_by_phone(["+8613800000001"]) == {"+8613800000001": [li.id]}


def test_imported_volunteers_are_what_the_api_shows(aidline: Any, client: Any, tokens: Tokens, tmp_path: Path) -> None:
    aidline("import", "volunteers", roster_file(tmp_path, HEADER + LI))
    (shown,) = client.get("/api/v1/volunteers", headers=tokens.dispatcher).get_json()["items"]
    assert shown["name"] == "Li Jinfeng"
    assert shown["location"] == {"lat": 46.33, "lon": 132.21}
    assert shown["on_duty"] is False


def test_chinese_headers_and_stdin(aidline: Any, deps: Deps) -> None:
    text = (
        "姓名,电话,技能,纬度,经度,容量,队伍,网格,语言,渠道\n"
        "李金凤,+8613800000001,electrical,46.3,132.2,1,先锋队,二网格,zh,\n"
    )
    result = aidline("import", "volunteers", "-", stdin=("\ufeff" + text).encode())
    assert result.exit_code == 0, result.output
    assert by_phone(deps)["+8613800000001"].team == "先锋队"


def test_with_a_bad_row_nothing_is_imported_and_every_bad_row_is_named(
    aidline: Any, deps: Deps, tmp_path: Path
) -> None:
    text = HEADER + LI + "Bad,13800000009,,46.3,132.2,,,,,\n" + WANG + "Worse,+8613800000004,,95,132.2,1,,,,\n"
    result = aidline("import", "volunteers", roster_file(tmp_path, text))
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "line 3: phone: '13800000009' is not a phone number in E.164 form, like +8613800000001",
        "line 5: lat: 95 is not between -85.0511 and 85.0511",
        "Error: 2 bad rows: nothing imported (--skip-bad imports the good rows)",
    ]
    assert everyone(deps) == []


def test_skip_bad_imports_the_good_rows_and_still_names_the_bad_ones(aidline: Any, deps: Deps, tmp_path: Path) -> None:
    text = HEADER + LI + "Bad,13800000009,,46.3,132.2,,,,,\n" + WANG
    result = aidline("import", "volunteers", "--skip-bad", roster_file(tmp_path, text))
    assert result.exit_code == 0
    assert result.stderr.splitlines() == [
        "line 3: phone: '13800000009' is not a phone number in E.164 form, like +8613800000001"
    ]
    assert result.stdout == "volunteers: 2 created, 0 updated, 0 unchanged, 1 bad rows skipped\n"
    assert sorted(by_phone(deps)) == ["+8613800000001", "+8613800000002"]


def test_a_file_that_cannot_be_read_fails_even_with_skip_bad(aidline: Any, deps: Deps, tmp_path: Path) -> None:
    result = aidline("import", "volunteers", "--skip-bad", roster_file(tmp_path, "name,mobile\nLi,+8613800000001\n"))
    assert result.exit_code == 1
    assert "line 1: unknown column 'mobile'" in result.stderr
    assert "Error: the file cannot be read: nothing imported" in result.stderr
    assert everyone(deps) == []


def test_re_importing_updates_by_phone_instead_of_duplicating(
    aidline: Any, deps: Deps, tmp_path: Path, clock: ManualClock
) -> None:
    aidline("import", "volunteers", roster_file(tmp_path, HEADER + LI + WANG))
    first = by_phone(deps)
    changed = LI.replace("Li Jinfeng", "Li Jinfeng (captain)").replace(",2,pioneer,", ",4,pioneer,")
    moved = WANG.replace("46.34,132.25", "46.40,132.30")
    result = aidline("import", "volunteers", roster_file(tmp_path, HEADER + changed + moved + ZHAO, name="again.csv"))
    assert result.stdout == "volunteers: 1 created, 2 updated, 0 unchanged, 0 bad rows skipped\n"
    after = by_phone(deps)
    assert len(everyone(deps)) == 3
    li = after["+8613800000001"]
    assert li.id == first["+8613800000001"].id
    assert (li.name, li.capacity, li.created_at) == ("Li Jinfeng (captain)", 4, first["+8613800000001"].created_at)
    wang = after["+8613800000002"]
    assert (wang.home.lat, wang.location.lat) == (46.40, 46.40)
    again = aidline("import", "volunteers", roster_file(tmp_path, HEADER + changed + moved + ZHAO, name="again.csv"))
    assert again.stdout == "volunteers: 0 created, 0 updated, 3 unchanged, 0 bad rows skipped\n"


def test_clearing_optional_values_in_the_file_clears_them(aidline: Any, deps: Deps, tmp_path: Path) -> None:
    aidline("import", "volunteers", roster_file(tmp_path, HEADER + LI))
    bare = "Li Jinfeng,+8613800000001,,46.33,132.21,1,,,zh,\n"
    aidline("import", "volunteers", roster_file(tmp_path, HEADER + bare, name="bare.csv"))
    li = by_phone(deps)["+8613800000001"]
    assert (li.team, li.grid, li.channels, [s.value for s in li.skills], li.capacity) == (
        None,
        None,
        [],
        ["general"],
        1,
    )


def test_a_column_left_out_of_the_file_leaves_that_field_as_it_is(aidline: Any, deps: Deps, tmp_path: Path) -> None:
    aidline("import", "volunteers", roster_file(tmp_path, HEADER + LI))
    before = by_phone(deps)["+8613800000001"]

    moved = aidline(
        "import",
        "volunteers",
        roster_file(tmp_path, "name,phone,lat,lon\nLi Jinfeng,+8613800000001,46.40,132.30\n", name="few.csv"),
    )

    assert moved.stdout == "volunteers: 0 created, 1 updated, 0 unchanged, 0 bad rows skipped\n"
    li = by_phone(deps)["+8613800000001"]
    assert li.home.lat == 46.40
    assert (li.capacity, li.team, li.grid, li.locale, li.channels, li.skills) == (
        before.capacity,
        before.team,
        before.grid,
        before.locale,
        before.channels,
        before.skills,
    )


def test_a_phone_changed_through_the_api_is_found_by_its_new_number_only(
    aidline: Any, deps: Deps, client: Any, tokens: Tokens, make_volunteer: Any, tmp_path: Path
) -> None:
    vid = make_volunteer(phone="+8613800000009")["id"]
    reply = client.patch(f"/api/v1/volunteers/{vid}", json={"phone": "+8613800000001"}, headers=tokens.dispatcher)
    assert reply.status_code == 200
    aidline(
        "import", "volunteers", roster_file(tmp_path, HEADER + LI + WANG.replace("+8613800000002", "+8613800000009"))
    )
    stored = by_phone(deps)
    assert stored["+8613800000001"].id == vid  # updated, not duplicated
    assert stored["+8613800000001"].name == "Li Jinfeng"
    assert stored["+8613800000009"].id != vid  # the old number belongs to nobody now: a new volunteer
    assert len(everyone(deps)) == 2


def test_volunteers_stored_before_the_phone_index_existed_are_found(
    aidline: Any, deps: Deps, make_volunteer: Any, tmp_path: Path
) -> None:
    vid = make_volunteer(phone="+8613800000001")["id"]
    index = deps.store.keys
    deps.redis.delete(index.volunteers_by_phone("+8613800000001"), index.phone_index_complete())
    result = aidline("import", "volunteers", roster_file(tmp_path, HEADER + LI))
    assert result.stdout.startswith("volunteers: 0 created, 1 updated")
    assert [v.id for v in everyone(deps)] == [vid]


def test_a_phone_shared_by_several_registered_volunteers_is_a_bad_row(
    aidline: Any, deps: Deps, make_volunteer: Any, tmp_path: Path
) -> None:
    first, second = make_volunteer()["id"], make_volunteer()["id"]
    result = aidline("import", "volunteers", roster_file(tmp_path, HEADER + LI + WANG))
    assert result.exit_code == 1
    ids = ", ".join(sorted([first, second]))
    assert result.stderr.splitlines()[0] == (
        f"line 2: phone: 2 registered volunteers have +8613800000001 ({ids}): change them through the API"
    )
    assert len(everyone(deps)) == 2


def test_a_removed_volunteer_leaves_the_phone_index(aidline: Any, deps: Deps, tmp_path: Path) -> None:
    aidline("import", "volunteers", roster_file(tmp_path, HEADER + LI))
    (li,) = everyone(deps)
    deps.redis.hset(deps.store.keys.volunteer(li.id), "drill", "1")
    deps.store.drills.remove_volunteer(li.id, now_iso="2026-11-29T10:00:00.000Z", now_epoch=0.0, reason="test")
    assert deps.store.volunteers.ids_by_phone(["+8613800000001"]) == {"+8613800000001": []}
    assert deps.redis.exists(deps.store.keys.volunteers_by_phone("+8613800000001")) == 0


def test_dry_run_says_what_would_change_and_writes_nothing(aidline: Any, deps: Deps, tmp_path: Path) -> None:
    result = aidline("import", "volunteers", "--dry-run", roster_file(tmp_path, HEADER + LI + WANG))
    assert result.exit_code == 0
    assert result.stdout == "volunteers: 2 would be created, 0 would be updated, 0 unchanged, 0 bad rows skipped\n"
    assert everyone(deps) == []


def test_no_progress_bar_when_stderr_is_not_a_terminal(aidline: Any, tmp_path: Path) -> None:
    result = aidline("import", "volunteers", roster_file(tmp_path, HEADER + LI + WANG))
    assert result.stderr == ""


def test_an_on_duty_volunteer_who_gains_a_skill_is_matched_again(
    aidline: Any, deps: Deps, client: Any, tokens: Tokens, tmp_path: Path
) -> None:
    aidline("import", "volunteers", roster_file(tmp_path, HEADER + LI))
    (li,) = everyone(deps)
    client.put(f"/api/v1/volunteers/{li.id}/availability", json={"on_duty": True}, headers=tokens.dispatcher)
    queue = Queue(jobs.DEFAULT, connection=deps.redis)
    queue.empty()
    aidline("import", "volunteers", roster_file(tmp_path, HEADER + LI.replace("plumbing;", "plumbing;heating;")))
    assert [(job.func_name, job.kwargs) for job in queue.get_jobs()] == [(jobs.REMATCH_NEAR, {"volunteer_id": li.id})]
    assert by_phone(deps)["+8613800000001"].on_duty  # an import leaves availability alone


# --- export ------------------------------------------------------------------------------------------------------


def test_export_writes_the_import_format_with_a_byte_order_mark(aidline: Any, tmp_path: Path) -> None:
    aidline("import", "volunteers", roster_file(tmp_path, HEADER + LI + WANG))
    result = aidline("export", "volunteers")
    assert result.exit_code == 0
    assert result.stdout_bytes.startswith("\ufeff".encode())
    assert result.stdout_bytes.decode("utf-8-sig").splitlines() == [
        HEADER.strip(),
        "Li Jinfeng,+8613800000001,driving;plumbing,46.33,132.21,2,pioneer,grid-2,zh,json://127.0.0.1:9000/hook",
        "Wang Fang,+8613800000002,,46.34,132.25,1,,,en,",
    ]
    assert result.stderr == "2 volunteers exported\n"


def test_export_then_import_into_an_empty_store_gives_the_same_roster(aidline: Any, deps: Deps, tmp_path: Path) -> None:
    secret = (
        "Chen Jing,+8613800000005,cooking,46.3,132.2,1,,,zh,twilio://ACabc:secrettoken@+15550001111/+8613800000005\n"
    )
    aidline("import", "volunteers", roster_file(tmp_path, HEADER + LI + WANG + ZHAO + secret))
    out = tmp_path / "export.csv"
    assert aidline("export", "volunteers", "--with-secrets", "-o", str(out)).exit_code == 0
    before = [
        (v.name, v.phone, v.skills, v.home, v.capacity, v.team, v.grid, v.locale, v.channels) for v in everyone(deps)
    ]
    deps.redis.flushdb()
    assert aidline("import", "volunteers", str(out)).stdout.startswith("volunteers: 4 created")
    after = [
        (v.name, v.phone, v.skills, v.home, v.capacity, v.team, v.grid, v.locale, v.channels) for v in everyone(deps)
    ]
    assert after == before
    again = aidline("export", "volunteers", "--with-secrets").stdout_bytes
    assert again == out.read_bytes()


def test_export_masks_secrets_and_importing_it_back_keeps_the_real_ones(
    aidline: Any, deps: Deps, tmp_path: Path
) -> None:
    url = "json://user:secrettoken@hooks.example.org/aidline"
    plain = "ntfy://ntfy.sh/grid-2"
    row = f"Chen,+8613800000005,,46.3,132.2,1,,,zh,{url};{plain}\n"
    aidline("import", "volunteers", roster_file(tmp_path, HEADER + row))
    exported = aidline("export", "volunteers").stdout_bytes
    assert b"secrettoken" not in exported
    assert b"hooks.example.org/aidline?method=POST" in exported  # as the API shows it
    assert exported.endswith(f";{plain}\r\n".encode())  # a URL without secrets as it was given
    result = aidline("import", "volunteers", "-", stdin=exported)
    assert result.stdout.startswith("volunteers: 0 created, 0 updated, 1 unchanged")
    assert by_phone(deps)["+8613800000005"].channels == [url, plain]


def test_export_with_chinese_headers_imports_back(aidline: Any, tmp_path: Path) -> None:
    aidline("import", "volunteers", roster_file(tmp_path, HEADER + LI))
    exported = aidline("export", "volunteers", "--headers", "zh").stdout_bytes
    assert exported.decode("utf-8-sig").startswith("姓名,电话,技能,纬度,经度,容量,队伍,网格,语言,渠道\r\n")
    assert aidline("import", "volunteers", "-", stdin=exported).stdout.startswith("volunteers: 0 created, 0 updated, 1")


def test_export_leaves_drill_volunteers_out(aidline: Any, make_volunteer: Any) -> None:
    make_volunteer(drill=True, phone="+8613800000007")
    make_volunteer(phone="+8613800000008")
    lines = aidline("export", "volunteers").stdout_bytes.decode("utf-8-sig").splitlines()
    assert [line.split(",")[1] for line in lines[1:]] == ["+8613800000008"]


# --- households --------------------------------------------------------------------------------------------------

HOUSEHOLDS = "address,lat,lon,grid,vulnerability,contact_name,contact_phone,attention_level,notes\n"
ZHANG = "Station 2 house 14,46.34,132.25,grid-2,elderly_alone;medical,Zhang Guilan,+8613900000002,red,knock loudly\n"
LIU = "Station 5 house 3,46.36,132.27,grid-3,child,Liu Wei,+8613900000003,yellow,\n"


def registered(client: Any, tokens: Tokens) -> dict[str, dict[str, Any]]:
    items = client.get("/api/v1/households?limit=200", headers=tokens.dispatcher).get_json()["items"]
    return {h["contact"]["phone"]: h for h in items}


def test_import_registers_households_and_plans_their_visits(
    aidline: Any, client: Any, tokens: Tokens, tmp_path: Path
) -> None:
    result = aidline("import", "households", roster_file(tmp_path, HOUSEHOLDS + ZHANG + LIU, bom=True))
    assert result.exit_code == 0, result.output
    assert result.stdout == "households: 2 created, 0 updated, 0 unchanged, 0 bad rows skipped\n"
    zhang = registered(client, tokens)["+8613900000002"]
    assert {k: zhang[k] for k in ("address", "location", "grid", "vulnerability", "attention_level", "notes")} == {
        "address": "Station 2 house 14",
        "location": {"lat": 46.34, "lon": 132.25},
        "grid": "grid-2",
        "vulnerability": ["elderly_alone", "medical"],
        "attention_level": "red",
        "notes": "knock loudly",
    }
    assert zhang["contact"]["name"] == "Zhang Guilan"
    visits = client.get(f"/api/v1/households/{zhang['id']}/visits", headers=tokens.dispatcher).get_json()["items"]
    assert [visit["status"] for visit in visits] == ["planned"]


def test_household_import_is_all_or_nothing_unless_skip_bad(
    aidline: Any, client: Any, tokens: Tokens, tmp_path: Path
) -> None:
    text = HOUSEHOLDS + ZHANG + "Nowhere,46.3,132.2,,,Nobody,+8613900000009,purple,\n" + LIU
    refused = aidline("import", "households", roster_file(tmp_path, text))
    assert refused.exit_code == 1
    assert refused.stderr.splitlines()[0] == (
        "line 3: attention_level: 'purple' is not an attention level (red, orange, yellow, green)"
    )
    assert registered(client, tokens) == {}
    skipped = aidline("import", "households", "--skip-bad", roster_file(tmp_path, text))
    assert skipped.stdout == "households: 2 created, 0 updated, 0 unchanged, 1 bad rows skipped\n"
    assert sorted(registered(client, tokens)) == ["+8613900000002", "+8613900000003"]


def test_re_importing_households_updates_by_contact_phone(
    aidline: Any, client: Any, tokens: Tokens, make_household: Any, tmp_path: Path
) -> None:
    existing = make_household(contact={"name": "Zhang Guilan", "phone": "+8613900000002"}, attention_level="green")
    result = aidline("import", "households", roster_file(tmp_path, HOUSEHOLDS + ZHANG + LIU))
    assert result.stdout == "households: 1 created, 1 updated, 0 unchanged, 0 bad rows skipped\n"
    now = registered(client, tokens)
    assert len(now) == 2
    zhang = now["+8613900000002"]
    assert zhang["id"] == existing["id"]
    assert (zhang["attention_level"], zhang["address"]) == ("red", "Station 2 house 14")
    again = aidline("import", "households", roster_file(tmp_path, HOUSEHOLDS + ZHANG + LIU))
    assert again.stdout == "households: 0 created, 0 updated, 2 unchanged, 0 bad rows skipped\n"


def test_a_household_column_left_out_of_the_file_leaves_that_field_as_it_is(
    aidline: Any, client: Any, tokens: Tokens, tmp_path: Path
) -> None:
    aidline("import", "households", roster_file(tmp_path, HOUSEHOLDS + ZHANG))
    few = "address,lat,lon,contact_name,contact_phone,attention_level\n"
    few += "Station 2 house 14,46.34,132.25,Zhang Guilan,+8613900000002,orange\n"

    result = aidline("import", "households", roster_file(tmp_path, few, name="few.csv"))

    assert result.stdout == "households: 0 created, 1 updated, 0 unchanged, 0 bad rows skipped\n"
    zhang = registered(client, tokens)["+8613900000002"]
    assert zhang["attention_level"] == "orange"
    assert (zhang["grid"], sorted(zhang["vulnerability"]), zhang["notes"]) == (
        "grid-2",
        ["elderly_alone", "medical"],
        "knock loudly",
    )


def test_households_export_then_import_into_an_empty_register_gives_the_same_register(
    aidline: Any, deps: Deps, client: Any, tokens: Tokens, tmp_path: Path
) -> None:
    notes = '"Two lines,\nand ""quotes"""'
    text = HOUSEHOLDS + ZHANG + LIU + f"二站14号,46.3,132.2,二网格,disabled,张桂兰,+8613900000004,orange,{notes}\n"
    aidline("import", "households", roster_file(tmp_path, text))
    out = tmp_path / "households.csv"
    exported = aidline("export", "households", "-o", str(out))
    assert exported.stderr == "3 households exported\n"
    lines = out.read_bytes().decode("utf-8-sig").split("\r\n")
    assert lines[0] == HOUSEHOLDS.strip()
    assert lines[1] == ZHANG.strip()

    def register(tokens: Tokens) -> list[tuple[Any, ...]]:
        return sorted(
            (h["address"], h["location"], h["grid"], h["vulnerability"], h["contact"], h["attention_level"], h["notes"])
            for h in registered(client, tokens).values()
        )

    before = register(tokens)
    deps.redis.flushdb()
    assert aidline("import", "households", str(out)).stdout.startswith("households: 3 created")
    assert register(Tokens(deps)) == before  # the tokens went with everything else
    assert aidline("export", "households").stdout_bytes == out.read_bytes()


def test_households_export_with_chinese_headers_imports_back(aidline: Any, tmp_path: Path) -> None:
    aidline("import", "households", roster_file(tmp_path, HOUSEHOLDS + ZHANG))
    exported = aidline("export", "households", "--headers", "zh").stdout_bytes
    assert exported.decode("utf-8-sig").startswith("地址,纬度,经度,网格,困难类型,联系人,联系电话,关注等级,备注\r\n")
    result = aidline("import", "households", "-", stdin=exported)
    assert result.stdout == "households: 0 created, 0 updated, 1 unchanged, 0 bad rows skipped\n"
