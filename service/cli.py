"""The `aidline` command: tokens, workers, demo data, operations and drills."""

from __future__ import annotations

import io
import json
import os
import secrets
import sys
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import click
import redis

from service import clock, launcher, reports, roster, roster_sync, sweeper, volunteers
from service.bootstrap import bootstrap, check_settings
from service.config import SettingError, Settings
from service.demo import demo_captain, demo_care, load_households, put_captain_on_call
from service.deps import Deps
from service.drill import chart as drill_chart
from service.drill import report as drill_report
from service.drill import scenarios as drill_scenarios
from service.drill.client import ApiError, Client, Unreachable
from service.drill.player import Player
from service.exceptions import InvalidInput
from service.ids import new_id
from service.models import GRID_NAME, GRID_NAME_RULE, Principal, ReportGroup, Role
from service.store import Refusal, Refused, Store, volunteer_fields
from service.volunteers import build_volunteer
from worker import monitoring, runner


def _deps() -> Deps:
    return bootstrap(Settings.from_env())


@click.group()
def cli() -> None:
    """Aidline volunteer dispatch."""


@cli.group()
def token() -> None:
    """Create and revoke API tokens."""


def create_token(store: Store, role: Role, volunteer_id: str | None, grids: tuple[str, ...] = ()) -> str:
    """A new random token for the role (a captain's with its grids), stored hashed; the token itself is
    returned once."""
    value = "ald_" + secrets.token_urlsafe(32)
    store.tokens.save(
        token=value,
        token_id=new_id("tok"),
        role=role,
        volunteer_id=volunteer_id,
        now_iso=clock.iso(clock.SystemClock().now()),
        grids=grids,
    )
    return value


@token.command("create")
@click.option("--role", "role_name", required=True, type=click.Choice([r.value for r in Role]))
@click.option(
    "--volunteer-id", default=None, help="Required for the volunteer and captain roles: the volunteer it acts as."
)
@click.option("--grid", "grids", multiple=True, help="Required for the captain role (repeatable): a grid it handles.")
def token_create(role_name: str, volunteer_id: str | None, grids: tuple[str, ...]) -> None:
    """Print a new token, alone on stdout. It is stored hashed; keep it now."""
    role = Role(role_name)
    deps = _deps()
    if role in (Role.VOLUNTEER, Role.CAPTAIN):
        if not volunteer_id:
            raise click.UsageError(f"--volunteer-id is required for the {role.value} role")
        if deps.store.volunteers.get(volunteer_id) is None:
            raise click.UsageError(f"no volunteer {volunteer_id}")
    elif volunteer_id:
        raise click.UsageError("--volunteer-id is only for the volunteer and captain roles")
    grids = tuple(dict.fromkeys(g.strip() for g in grids if g.strip()))
    if role is Role.CAPTAIN and not grids:
        raise click.UsageError("--grid is required for the captain role (one or more)")
    if role is not Role.CAPTAIN and grids:
        raise click.UsageError("--grid is only for the captain role")
    for grid in grids:
        if not GRID_NAME.fullmatch(grid):
            raise click.UsageError(f"--grid {grid!r}: {GRID_NAME_RULE[0].lower()}{GRID_NAME_RULE[1:]}")
    click.echo(create_token(deps.store, role, volunteer_id, grids))


@token.command("revoke")
@click.argument("token_or_id")
def token_revoke(token_or_id: str) -> None:
    """Revoke a token, given the token itself or its id."""
    if not _deps().store.tokens.revoke(token_or_id):
        raise click.ClickException("no such token")
    click.echo("revoked", err=True)


@cli.command()
@click.option("--processes", type=int, default=None, help="Match worker processes (AIDLINE_WORKER_PROCESSES).")
@click.option(
    "--notify-processes", type=int, default=None, help="Notify worker processes; 0 = match workers also notify."
)
@click.option("--burst", is_flag=True, help="Exit when the queues are empty.")
@click.option("--match-only", is_flag=True, help="Only match (urgent, default, low); a notify worker runs elsewhere.")
def worker(processes: int | None, notify_processes: int | None, burst: bool, match_only: bool) -> None:
    """Run the RQ workers (urgent, default, low, notify) with the scheduler and the sweep."""
    settings = Settings.from_env()
    check_settings(settings)  # here, before any worker process starts (each would stop at once, again and again)
    sys.exit(
        runner.run(
            settings,
            processes=settings.worker_processes if processes is None else processes,
            notify_processes=settings.notify_processes if notify_processes is None else notify_processes,
            burst=burst,
            match_only=match_only,
        )
    )


@cli.group()
def demo() -> None:
    """Demo data for the sample district."""


def demo_volunteers() -> list[dict[str, Any]]:
    """The volunteers of the sample district (service/data/demo_volunteers.json)."""
    rows: list[dict[str, Any]] = json.loads(
        resources.files("service").joinpath("data/demo_volunteers.json").read_text("utf-8")
    )
    return rows


def load_demo(deps: Deps) -> int:
    """Add the demo volunteers that are not there yet; returns how many were added."""
    added = 0
    for row in demo_volunteers():
        if deps.store.volunteers.get(row["id"]) is not None:
            continue
        volunteer = build_volunteer(volunteer_in=row, now=deps.clock.now(), volunteer_id=row["id"])
        try:
            deps.store.volunteers.save(
                volunteer.id,
                volunteer_fields(volunteer),
                create=True,
                now_iso=volunteer.created_at,
                now_epoch=volunteer.idle_since,
            )
        except Refused as refused:
            if refused.reason is Refusal.EXISTS:
                continue  # loaded by someone else meanwhile
            raise
        added += 1
    return added


def set_demo_duty(deps: Deps, *, on_duty: bool) -> tuple[int, int, int]:
    """Put every demo volunteer on or off duty (off duty withdraws their pending offers, as the API does);
    returns (changed, already so, not loaded)."""
    changed = already = missing = 0
    for row in demo_volunteers():
        found = deps.store.volunteers.get(row["id"])
        if found is None:
            missing += 1
        elif found.on_duty is on_duty:
            already += 1
        else:
            volunteers.set_availability(deps=deps, volunteer_id=row["id"], on_duty=on_duty)
            changed += 1
    return changed, already, missing


def _demo_duty(on_duty: bool) -> None:
    changed, already, missing = set_demo_duty(_deps(), on_duty=on_duty)
    duty = "on duty" if on_duty else "off duty"
    line = f"demo volunteers: {changed} put {duty}, {already} already {duty}"
    click.echo(line + (f", {missing} not loaded (aidline demo load)" if missing else ""))


@demo.command("off-duty")
def demo_off_duty() -> None:
    """Put every demo volunteer off duty (their pending offers are withdrawn), e.g. before a drill."""
    _demo_duty(False)


@demo.command("on-duty")
def demo_on_duty() -> None:
    """Put every demo volunteer on duty again."""
    _demo_duty(True)


@demo.command("load")
@click.option(
    "--tokens-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Keep demo tokens here (a shell file to `source`) and reuse them while they are valid.",
)
@click.option("--export-env", is_flag=True, help="Also write REDIS_URL and AIDLINE_PUBLIC_URL into the file.")
def demo_load(tokens_file: Path | None, export_env: bool) -> None:
    """Load the demo volunteers and households (twice adds nothing), put the demo captain on call, and print
    demo tokens."""
    deps = _deps()
    added = load_demo(deps)
    click.echo(f"demo volunteers: {added} added, {len(demo_volunteers())} in the data set", err=True)
    captain = demo_captain()
    tokens: dict[str, str] = {}
    if tokens_file and tokens_file.exists():
        for line in tokens_file.read_text().splitlines():
            name, _, value = line.removeprefix("export ").partition("=")
            if name.endswith("_TOKEN") and value and deps.store.tokens.record(value):
                tokens[name] = value
    wanted = {
        "DISPATCHER_TOKEN": (Role.DISPATCHER, None),
        "INTAKE_TOKEN": (Role.INTAKE, None),
        "OPS_TOKEN": (Role.OPS, None),
        "VOLUNTEER_TOKEN": (Role.VOLUNTEER, demo_volunteers()[0]["id"]),
        "CAPTAIN_TOKEN": (Role.CAPTAIN, captain.volunteer_id),
    }
    for name, (role, vid) in wanted.items():
        if name not in tokens:
            tokens[name] = create_token(deps.store, role, vid, (captain.grid,) if role is Role.CAPTAIN else ())
    households_added, in_set = load_households(deps), len(demo_care()["households"])
    click.echo(f"demo households: {households_added} added, {in_set} in the data set", err=True)
    if put_captain_on_call(deps):
        click.echo(f"demo captain: {captain.volunteer_id} on call for {captain.grid} around the clock", err=True)
    lines = [f"export {name}={value}" for name, value in tokens.items()]
    if tokens_file:
        settings = deps.settings
        extra = []
        if export_env:
            extra = [
                f"export REDIS_URL={settings.redis_url}",
                f"export AIDLINE_PUBLIC_URL={os.environ.get('AIDLINE_PUBLIC_URL', settings.public_url)}",
            ]
            if settings.inbound_sms_secret:
                extra.append(f"export AIDLINE_INBOUND_SMS_SECRET={settings.inbound_sms_secret}")
        tokens_file.parent.mkdir(parents=True, exist_ok=True)
        tokens_file.write_text("\n".join(lines + extra) + "\n")
        tokens_file.chmod(0o600)
    click.echo("\n".join(lines))


@cli.command("run")
@click.option("--port", type=int, default=lambda: int(os.environ.get("PORT", "8000")))
@click.option("--redis-port", type=int, default=6390, help="Port of the private Redis (when REDIS_URL is unset).")
@click.option("--var", type=click.Path(file_okay=False, path_type=Path), default=Path("var"))
def run_all(port: int, redis_port: int, var: Path) -> None:
    """Run Redis (AOF on, under ./var), the API, the workers and the demo data; Ctrl-C stops all."""
    launcher.run(port=port, redis_port=redis_port, var=var)


@cli.group()
def ops() -> None:
    """Look after the queue: status, failed jobs, the sweep."""


@ops.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def ops_status(as_json: bool) -> None:
    """Queues, workers, failed jobs, escalated and overdue needs."""
    report = monitoring.status_report(_deps())
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo("queue      queued  started  scheduled  failed")
    for name, q in report["queues"].items():
        click.echo(f"{name:<10} {q['queued']:>6}  {q['started']:>7}  {q['scheduled']:>9}  {q['failed']:>6}")
    click.echo(f"workers: {len(report['workers'])}")
    for w in report["workers"]:
        click.echo(f"  {w['name']}  {w['state']}  {','.join(w['queues'])}")
    click.echo(
        f"waiting: {report['waiting']['match']} needs to match, {report['waiting']['announcements']} announcements"
    )
    click.echo("needs: " + ", ".join(f"{k} {v}" for k, v in report["needs"].items() if v))
    click.echo(f"escalated: {' '.join(report['escalated']) or '-'}")
    click.echo(f"overdue: {' '.join(report['overdue']) or '-'}")


@ops.command("requeue-failed")
def ops_requeue_failed() -> None:
    """Put every failed job back on its queue (jobs are idempotent)."""
    click.echo(f"requeued {monitoring.requeue_failed(_deps())} failed jobs")


@ops.command("sweep")
def ops_sweep() -> None:
    """Run the sweep now: re-enqueue stuck needs, expire overdue offers, check deadlines."""
    click.echo(json.dumps(sweeper.sweep(deps=_deps())))


@cli.group("import")
def import_() -> None:
    """Import a roster from a CSV file (UTF-8, English or Chinese headers; see README, "Rosters")."""


def progress_bars() -> tuple[roster_sync.Progress, Callable[[], None]]:
    """Progress bars on stderr when it is a terminal (nothing in a pipe or a log), and a function closing them."""
    from tqdm import tqdm

    bars: list[Any] = []

    def bar(description: str, total: int) -> Callable[[int], None]:
        shown = tqdm(total=total, desc=description, unit=" rows", disable=not sys.stderr.isatty(), file=sys.stderr)
        bars.append(shown)
        return lambda done: shown.update(done)

    def close() -> None:
        for shown in bars:
            shown.close()

    return bar, close


SKIP_BAD = click.option(
    "--skip-bad", is_flag=True, help="Import the good rows even when some are bad (each is reported)."
)
DRY_RUN = click.option("--dry-run", is_flag=True, help="Check every row and say what would change; write nothing.")


def run_import(
    kind: str, importer: Callable[..., roster_sync.ImportReport], data: bytes, skip_bad: bool, dry_run: bool
) -> None:
    """Import, report every bad row on stderr and the outcome on stdout; exit 1 when nothing was imported."""
    bar, close = progress_bars()
    try:
        report = importer(deps=_deps(), data=data, skip_bad=skip_bad, dry_run=dry_run, progress=bar)
    finally:
        close()
    for error in report.errors:
        click.echo(str(error), err=True)
    bad = len({error.line for error in report.errors})
    if report.unreadable:
        raise click.ClickException("the file cannot be read: nothing imported")
    if report.errors and not skip_bad and not report.imported:
        raise click.ClickException(
            f"{bad} bad row{'s' if bad != 1 else ''}: nothing imported (--skip-bad imports the good rows)"
        )
    if report.errors and not skip_bad:
        raise click.ClickException(f"{bad} row{'s' if bad != 1 else ''} not imported (above); the others were")
    would = " would be" if dry_run else ""
    click.echo(
        f"{kind}: {report.created}{would} created, {report.updated}{would} updated, {report.unchanged} unchanged, "
        f"{bad} bad rows skipped"
    )


@import_.command("volunteers")
@click.argument("file", type=click.File("rb"))
@SKIP_BAD
@DRY_RUN
def import_volunteers(file: Any, skip_bad: bool, dry_run: bool) -> None:
    """Create the volunteers of FILE (- for stdin), or update those registered with the same phone.

    Columns: name,phone,skills,lat,lon,capacity,team,grid,locale,channels (姓名,电话,技能,纬度,经度,容量,队伍,网格,
    语言,渠道); skills and channels separated by ;. Every row is checked first: with a bad row nothing is imported
    unless --skip-bad.
    """
    run_import("volunteers", roster_sync.import_volunteers, file.read(), skip_bad, dry_run)


@import_.command("households")
@click.argument("file", type=click.File("rb"))
@SKIP_BAD
@DRY_RUN
def import_households(file: Any, skip_bad: bool, dry_run: bool) -> None:
    """Register the households of FILE (- for stdin), or update those with the same contact phone.

    Columns: address,lat,lon,grid,vulnerability,contact_name,contact_phone,attention_level,notes (地址,纬度,经度,网格,
    困难类型,联系人,联系电话,关注等级,备注); vulnerabilities separated by ;. Every row is checked first: with a bad
    row nothing is imported unless --skip-bad. New households get their first visit planned.
    """
    run_import("households", roster_sync.import_households, file.read(), skip_bad, dry_run)


@cli.group("export")
def export() -> None:
    """Write a roster as a CSV file that `aidline import` reads back."""


OUTPUT = click.option("-o", "--output", type=click.File("wb"), default="-", help="The file to write (default: stdout).")
HEADERS = click.option(
    "--headers",
    type=click.Choice(["en", "zh"]),
    default="en",
    show_default=True,
    help="Column names in English or Chinese.",
)


def write_csv(output: Any, rows: Iterator[list[str]], header: list[str]) -> int:
    """The rows as CSV, UTF-8 with a byte order mark (so spreadsheet programs show Chinese text); how many."""
    stream = io.TextIOWrapper(output, encoding="utf-8-sig", newline="")
    try:
        count = roster.write(rows, header=header, out=stream)
        stream.flush()
    finally:
        stream.detach()
    return count


@export.command("volunteers")
@OUTPUT
@HEADERS
@click.option(
    "--with-secrets", is_flag=True, help="Channel URLs as they are, passwords and tokens included (masked otherwise)."
)
def export_volunteers(output: Any, headers: str, with_secrets: bool) -> None:
    """Every registered volunteer (drill volunteers left out) as CSV: UTF-8 with a byte order mark."""
    rows = roster_sync.volunteer_rows(deps=_deps(), reveal_secrets=with_secrets)
    count = write_csv(output, rows, roster.header(roster.VOLUNTEER_COLUMNS, roster.VOLUNTEER_ALIASES, headers))
    click.echo(f"{count} volunteers exported", err=True)


@export.command("households")
@OUTPUT
@HEADERS
def export_households(output: Any, headers: str) -> None:
    """Every household of the care register as CSV: UTF-8 with a byte order mark. It holds contact phones and
    exact addresses: keep the file as safe as the register."""
    rows = roster_sync.household_rows(deps=_deps())
    count = write_csv(output, rows, roster.header(roster.HOUSEHOLD_COLUMNS, roster.HOUSEHOLD_ALIASES, headers))
    click.echo(f"{count} households exported", err=True)


@cli.group()
def drill() -> None:
    """Replay a scenario against a running Aidline through its HTTP API, as a real client would.

    Everything a drill creates is marked drill: true; `aidline drill clean` removes it.
    """


DEFAULT_API_URL = "http://127.0.0.1:8000"


def default_api_url() -> str:
    """AIDLINE_API_URL, else AIDLINE_PUBLIC_URL (var/demo-tokens.env exports it), else the local default."""
    return os.environ.get("AIDLINE_API_URL") or os.environ.get("AIDLINE_PUBLIC_URL") or DEFAULT_API_URL


def _warn(line: str) -> None:
    click.echo(line, err=True)


URL_OPTION = click.option(
    "--url",
    default=default_api_url,
    show_default=f"AIDLINE_API_URL, else AIDLINE_PUBLIC_URL, else {DEFAULT_API_URL}",
    help="Base URL of the running Aidline.",
)
TOKEN_OPTION = click.option(
    "--token", envvar="AIDLINE_TOKEN", required=True, help="A dispatcher token (AIDLINE_TOKEN)."
)


@drill.command("list")
def drill_list() -> None:
    """List the scenarios."""
    for name in drill_scenarios.SCENARIOS:
        scenario = drill_scenarios.build(name, 1)
        click.echo(
            f"{name:<8} {len(scenario.needs):>4} needs  {len(scenario.volunteers):>3} volunteers  {scenario.title}"
        )


@drill.command("clean")
@URL_OPTION
@TOKEN_OPTION
def drill_clean(url: str, token: str) -> None:
    """Remove every need and volunteer drills created."""
    client = Client(url, token, warn=_warn)
    try:
        answer = client.clean()
    except (ApiError, Unreachable) as error:
        raise click.ClickException(str(error)) from None
    finally:
        client.close()
    click.echo(f"removed {answer['needs_removed']} needs and {answer['volunteers_removed']} volunteers")
    for kept in answer["volunteers_kept"]:
        click.echo(f"kept {kept['id']}: {kept['reason']}")
    if answer["needs_rematched"]:
        click.echo(
            f"matched again (their offers to drill volunteers were withdrawn): {' '.join(answer['needs_rematched'])}"
        )


def _drill_command(name: str) -> click.Command:
    @click.command(name, help=drill_scenarios.SCENARIOS[name].__doc__)
    @URL_OPTION
    @TOKEN_OPTION
    @click.option(
        "--speed",
        type=click.FloatRange(min=0.01),
        default=1.0,
        show_default=True,
        help="Divide every scenario time by this (arrivals, answers, accept windows, deadlines).",
    )
    @click.option("--seed", type=int, default=1, show_default=True, help="Seed of the scenario and the volunteers.")
    @click.option(
        "--json",
        "json_path",
        is_flag=False,
        flag_value="-",
        default=None,
        metavar="[PATH]",
        help="Write the report as JSON to PATH (stdout without PATH; the table then goes to stderr).",
    )
    @click.option(
        "--chart",
        "chart_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Write a PNG of the drill's needs by status over time.",
    )
    @click.option(
        "--timeout",
        type=click.FloatRange(min=1),
        default=None,
        help="Stop after this many seconds (default: the scenario's own limit divided by the speed).",
    )
    @click.option("--quiet", is_flag=True, help="No progress lines on stderr.")
    def play(
        url: str,
        token: str,
        speed: float,
        seed: int,
        json_path: str | None,
        chart_path: Path | None,
        timeout: float | None,
        quiet: bool,
    ) -> None:
        scenario = drill_scenarios.build(name, seed)
        client = Client(url, token, warn=_warn)
        say = (lambda line: None) if quiet else (lambda line: click.echo(line, err=True))
        try:
            played = Player(client, scenario, speed=speed, seed=seed, timeout=timeout, say=say).run()
        except (ApiError, Unreachable) as error:
            raise click.ClickException(str(error)) from None
        finally:
            client.close()
        report = drill_report.compute(played)
        click.echo(drill_report.table(report), err=json_path == "-")
        if json_path == "-":
            click.echo(json.dumps(report, indent=2, ensure_ascii=False))
        elif json_path:
            Path(json_path).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        if chart_path:
            drill_chart.render(played.samples, chart_path, speed=speed, title=scenario.title)
        failed = drill_report.timed_out(report)
        if failed:
            raise click.ClickException(failed)  # after the report: a drill that timed out exits 1

    return play


for _name in drill_scenarios.SCENARIOS:
    drill.add_command(_drill_command(_name))


@cli.command("report")
@click.option("--from", "date_from", type=click.DateTime(["%Y-%m-%d"]), default=None, help="First day (YYYY-MM-DD).")
@click.option("--to", "date_to", type=click.DateTime(["%Y-%m-%d"]), default=None, help="Last day (YYYY-MM-DD).")
@click.option("--group-by", type=click.Choice([g.value for g in ReportGroup]), default=None, help="One row per group.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV (UTF-8 with a byte order mark) instead of a table.")
@click.option("--lang", type=click.Choice(["zh", "en"]), default="en", show_default=True, help="Headings' language.")
def report(date_from: Any, date_to: Any, group_by: str | None, as_csv: bool, lang: str) -> None:
    """The numbers managers read, over local days in AIDLINE_TIMEZONE (default: the last 30 days)."""
    start, end = (d.date() if d is not None else None for d in (date_from, date_to))
    try:
        summary = reports.summary(
            deps=_deps(),
            principal=Principal(role=Role.OPS, token_id="cli"),
            date_from=start,
            date_to=end,
            group_by=ReportGroup(group_by) if group_by else None,
            locale=lang,
        )
    except InvalidInput as refused:
        [(name, [message])] = (refused.errors or {}).get("query", {}).items()
        raise click.BadParameter(message, param_hint=f"--{name}") from None
    click.echo(reports.to_csv(summary, locale=lang) if as_csv else reports.to_table(summary, locale=lang), nl=False)


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, prog_name="aidline")
    except redis.exceptions.ConnectionError as down:
        click.echo(
            f"Error: cannot reach Redis: {down} Set REDIS_URL to the Redis Aidline uses "
            "(with `make run`: source var/demo-tokens.env).",
            err=True,
        )
        sys.exit(1)
    except SettingError as wrong:
        click.echo(f"Error: {wrong}", err=True)
        sys.exit(1)
