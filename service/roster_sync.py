"""Importing and exporting rosters: the volunteers (or households) of a CSV file, which service.roster reads and
checks, created, or updated when one with the same phone (a household's contact phone) is already registered;
and the registered ones written back in the same format.

Every row is checked, and every phone looked up, before anything is written: with a bad row nothing is imported
unless bad rows are to be skipped. Volunteers are written in pipelined batches of script calls (the same atomic
step as the API's), so ten thousand rows take seconds; households one by one through the register's own
functions, which plan each new household's visits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from service import clock, households, jobs, roster
from service.backlog import wait_for_matches
from service.deps import Deps
from service.exceptions import AidlineError
from service.models import Household, Location, Principal, Role, Volunteer
from service.privacy import mask_channel
from service.store import Refusal, Refused, volunteer_fields
from service.volunteers import build_volunteer, keep_secrets

Progress = Callable[[str, int], Callable[[int], None]]
"""Given what is being done and how many steps it takes, a function told each time some steps are done."""


def no_progress(description: str, total: int) -> Callable[[int], None]:
    return lambda done: None


@dataclass
class ImportReport:
    """What an import did: volunteers created, updated and left as they were; the bad rows (skipped, or the
    reason nothing was imported); `imported` is False when nothing was written."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[roster.RowError] = field(default_factory=list)
    imported: bool = False
    unreadable: bool = False
    """The file as a whole could not be read (not UTF-8, not CSV, a bad header): no row was looked at."""

    @property
    def rows(self) -> int:
        return self.created + self.updated + self.unchanged


@dataclass(frozen=True)
class _Change:
    line: int
    volunteer_id: str
    fields: dict[str, Any]
    create: bool
    rematch_near: bool


def import_volunteers(
    *, deps: Deps, data: bytes, skip_bad: bool = False, dry_run: bool = False, progress: Progress = no_progress
) -> ImportReport:
    """Create or update (by phone) the volunteers of a roster file; see the module's docstring."""
    lines = max(0, data.count(b"\n"))
    parsed = roster.parse_volunteers(data, progress=progress("checking", lines))
    report = ImportReport(errors=list(parsed.errors))
    if parsed.unreadable:
        report.unreadable = True
        return report
    found = deps.store.volunteers.ids_by_phone([row.values["phone"] for row in parsed.rows])
    rows = []
    for row in parsed.rows:
        ids = found[row.values["phone"]]
        if len(ids) > 1:
            report.errors.append(
                roster.RowError(
                    row.line,
                    "phone",
                    f"{len(ids)} registered volunteers have {row.values['phone']} ({', '.join(ids)}): "
                    "change them through the API",
                )
            )
        else:
            rows.append((row, ids[0] if ids else None))
    report.errors.sort(key=lambda e: e.line)
    if report.errors and not skip_bad:
        return report
    now = deps.clock.now()
    found_ids = [vid for _, vid in rows if vid]
    before = dict(zip(found_ids, deps.store.volunteers.get_many(found_ids), strict=True))
    changes: list[_Change] = []
    for row, volunteer_id in rows:
        current = before.get(volunteer_id) if volunteer_id else None
        wanted = build_volunteer(volunteer_in=row.values, now=now)
        if current is None:
            changes.append(_Change(row.line, wanted.id, volunteer_fields(wanted), True, False))
            continue
        fields = _differences(current, wanted, columns=parsed.columns)
        if not fields:
            report.unchanged += 1
            continue
        fields["updated_at"] = clock.iso(now)
        capacity = int(fields.get("capacity", current.capacity))
        gained = capacity > current.capacity or "skills" in fields and bool(set(wanted.skills) - set(current.skills))
        rematch = current.on_duty and current.load < capacity and (gained or "lat" in fields)
        changes.append(_Change(row.line, current.id, fields, False, rematch))
    if dry_run:
        report.created = sum(1 for c in changes if c.create)
        report.updated = len(changes) - report.created
        return report
    _write(deps=deps, changes=changes, report=report, progress=progress)
    report.imported = True
    return report


def _differences(current: Volunteer, wanted: Volunteer, *, columns: tuple[str, ...]) -> dict[str, Any]:
    """The fields to change so the stored volunteer says what the row says (as PATCH /volunteers/{id} would);
    a column the file leaves out leaves its field as it is."""
    fields: dict[str, Any] = {}
    for name in ("name", "phone", "capacity", "locale", "team", "grid"):
        if name in columns and getattr(current, name) != getattr(wanted, name):
            fields[name] = getattr(wanted, name)
    if "skills" in columns and current.skills != wanted.skills:
        fields["skills"] = ",".join(s.value for s in wanted.skills)
    channels = keep_secrets(wanted.channels, current.channels)
    if "channels" in columns and channels != current.channels:
        fields["channels"] = channels or None
    if (round(current.home.lat, 6), round(current.home.lon, 6)) != (
        round(wanted.home.lat, 6),
        round(wanted.home.lon, 6),
    ):
        home = wanted.home
        fields.update(home_lat=round(home.lat, 6), home_lon=round(home.lon, 6), lat=home.lat, lon=home.lon)
    return fields


BATCH = 1000
"""Script calls sent in one round trip."""


def _write(*, deps: Deps, changes: list[_Change], report: ImportReport, progress: Progress) -> None:
    moment = deps.clock.now()
    advance = progress("importing", len(changes))
    touched: list[str] = []
    for start in range(0, len(changes), BATCH):
        chunk = changes[start : start + BATCH]
        saves = [(c.volunteer_id, c.fields, c.create) for c in chunk]
        results = deps.store.volunteers.save_many(saves, now_iso=clock.iso(moment), now_epoch=clock.epoch(moment))
        for change, result in zip(chunk, results, strict=True):
            if isinstance(result, Refused):
                report.errors.append(roster.RowError(change.line, None, _refusal_reason(result)))
                continue
            touched.extend(result)
            if change.create:
                report.created += 1
            else:
                report.updated += 1
                if change.rematch_near:
                    deps.jobs.enqueue(jobs.REMATCH_NEAR, queue=jobs.DEFAULT, volunteer_id=change.volunteer_id)
        advance(len(chunk))
    needs = [need for need in deps.store.needs.get_many(list(dict.fromkeys(touched))) if need is not None]
    wait_for_matches(deps, needs)


def _refusal_reason(refused: Refused) -> str:
    if refused.reason is Refusal.NO_VOLUNTEER:
        return "the volunteer with this phone was removed while the file was imported"
    return f"refused: {refused.reason.value}"


def channel_without_secrets(url: str) -> str:
    """A channel URL as stored when it holds no password or token, else masked as the API shows it (importing
    the masked URL back for the same volunteer keeps the real one)."""
    import apprise

    plugin = apprise.Apprise.instantiate(url)
    if plugin is not None and plugin.url(privacy=True) == plugin.url(privacy=False):  # type: ignore[no-untyped-call]
        return url
    return mask_channel(url)


def volunteer_rows(*, deps: Deps, reveal_secrets: bool = False, batch: int = 1000) -> Iterator[list[str]]:
    """Every registered volunteer (drill volunteers left out) as a roster record, in order of registration;
    channel URLs with their secrets masked unless `reveal_secrets`."""
    channel_text = (lambda url: url) if reveal_secrets else channel_without_secrets
    total = deps.store.volunteers.count()
    for start in range(0, total, batch):
        ids = deps.store.volunteers.ids_range(start=start, count=batch)
        for volunteer in deps.store.volunteers.get_many(ids):
            if volunteer is not None and not volunteer.drill:
                yield roster.volunteer_cells(volunteer, channel_text=channel_text)


# --- households ----------------------------------------------------------------------------------------------

IMPORTER = Principal(role=Role.DISPATCHER, token_id="import")
"""Who the register's timeline says made an imported change."""


def import_households(
    *, deps: Deps, data: bytes, skip_bad: bool = False, dry_run: bool = False, progress: Progress = no_progress
) -> ImportReport:
    """Create or update (by contact phone) the households of a register file; see the module's docstring.
    Preferred volunteers are not in the file: an update leaves them as they are."""
    lines = max(0, data.count(b"\n"))
    parsed = roster.parse_households(data, progress=progress("checking", lines))
    report = ImportReport(errors=list(parsed.errors))
    if parsed.unreadable:
        report.unreadable = True
        return report
    if report.errors and not skip_bad:
        return report
    store = deps.store.households
    found = [store.id_for_phone(row.values["contact"]["phone"]) for row in parsed.rows]
    known = [hid for hid in found if hid]
    current = dict(zip(known, store.get_many(known), strict=True))
    plan: list[tuple[roster.Row, Household | None, dict[str, Any]]] = []
    for row, household_id in zip(parsed.rows, found, strict=True):
        household = current.get(household_id) if household_id else None
        if household is None:
            plan.append((row, None, row.values))
            continue
        changes = _household_differences(household, row.values, columns=parsed.columns)
        if changes:
            plan.append((row, household, changes))
        else:
            report.unchanged += 1
    if dry_run:
        report.created = sum(1 for _, household, _ in plan if household is None)
        report.updated = len(plan) - report.created
        return report
    advance = progress("importing", len(plan))
    for row, household, changes in plan:
        try:
            if household is None:
                households.create_household(deps=deps, household_in=changes, principal=IMPORTER)
                report.created += 1
            else:
                households.update_household(deps=deps, household_id=household.id, changes=changes, principal=IMPORTER)
                report.updated += 1
        except AidlineError as error:
            report.errors.append(roster.RowError(row.line, None, str(error)))
        advance(1)
    report.errors.sort(key=lambda e: e.line)
    report.imported = True
    return report


def _household_differences(household: Household, values: dict[str, Any], *, columns: tuple[str, ...]) -> dict[str, Any]:
    """The changes (in the API's PATCH shape) that make the stored household say what the row says; a column the
    file leaves out leaves its field as it is."""
    changes: dict[str, Any] = {}
    if household.address != values["address"]:
        changes["address"] = values["address"]
    wanted = Location(**values["location"])
    if (round(household.location.lat, 6), round(household.location.lon, 6)) != (
        round(wanted.lat, 6),
        round(wanted.lon, 6),
    ):
        changes["location"] = values["location"]
    if "grid" in columns and household.grid != values["grid"]:
        changes["grid"] = values["grid"]
    if "vulnerability" in columns and sorted(v.value for v in household.vulnerability) != sorted(
        values["vulnerability"]
    ):
        changes["vulnerability"] = values["vulnerability"]
    if (household.contact.name, household.contact.phone) != (values["contact"]["name"], values["contact"]["phone"]):
        changes["contact"] = values["contact"]
    if household.attention_level.value != values["attention_level"]:
        changes["attention_level"] = values["attention_level"]
    if "notes" in columns and household.notes != values["notes"]:
        changes["notes"] = values["notes"]
    return changes


def household_rows(*, deps: Deps, batch: int = 1000) -> Iterator[list[str]]:
    """Every household of the register as a record of a register file, by grid, then address, then contact phone
    (unique), so the same register always gives the same file."""
    store = deps.store.households
    ids: list[str] = []
    while True:
        page = store.ids_page(grid=None, level=None, before=ids[-1] if ids else None, limit=batch)
        ids.extend(page)
        if len(page) < batch:
            break
    found: list[Household] = []
    for start in range(0, len(ids), batch):
        found.extend(h for h in store.get_many(ids[start : start + batch]) if h is not None)
    found.sort(key=lambda h: (h.grid or "", h.address, h.contact.phone))
    for household in found:
        yield roster.household_cells(household)
