"""The ``leadledger`` command line: serve, demo, project, process, relay, mail, schemas,
rebuild, history, token, user, export-process-log, import."""

from __future__ import annotations

import argparse
import contextlib
import gc
import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

from leadledger.settings import Settings
from leadledger.wiring import CommandSide, Platform, build, build_command_side

log = logging.getLogger("leadledger")


def _platform() -> Platform:
    try:
        return build(Settings())
    except ValueError as exc:
        raise SystemExit(f"leadledger: configuration error: {exc}") from exc


def _command_side() -> CommandSide:
    try:
        return build_command_side(Settings())
    except ValueError as exc:
        raise SystemExit(f"leadledger: configuration error: {exc}") from exc


def _load_demo(platform: Platform | CommandSide, leads: int, deals: int, seed: int) -> int:
    from tqdm import tqdm

    from leadledger.demo import (
        load_demo,
        load_demo_deals,
        load_demo_delivered_history,
        load_demo_lead_projects,
    )

    with tqdm(desc="demo commands", unit="cmd", file=sys.stderr) as bar:
        sent = load_demo(
            platform.store,
            platform.funnels,
            platform.clock(),
            leads=leads,
            seed=seed,
            progress=lambda n: bar.update(n),
        )
    load_demo_lead_projects(
        platform.store, platform.funnels, platform.rules, platform.clock(), seed=seed
    )
    load_demo_deals(
        platform.store, platform.funnels, platform.rules, platform.clock(), deals=deals, seed=seed
    )
    log.info("loaded %d demo deals with their hand-offs", deals)
    from leadledger.demo import load_demo_activities

    load_demo_activities(platform.store, platform.rules, platform.clock(), seed=seed)
    delivered = load_demo_delivered_history(
        platform.store, platform.rules, platform.clock(), seed=seed
    )
    log.info("loaded %d demo projects delivered over two years", delivered)
    from leadledger.demo import load_demo_companies

    cards = load_demo_companies(platform.store, platform.clock())
    log.info("filled the directory cards of %d demo companies", cards)
    from leadledger.demo import load_demo_directories
    from leadledger.wiring import load_directories

    directories = load_directories(platform.settings.directories_file)
    entries = load_demo_directories(platform.store, platform.funnels, directories, platform.clock())
    log.info("loaded %d demo contacts and directory entries", entries)
    return sent


def _print_demo_tokens(platform: Platform) -> None:
    from leadledger.demo import (
        demo_logins,
        load_demo_assistant,
        load_demo_cost_rates,
        load_demo_users,
    )

    load_demo_users(platform.store, platform.clock())
    load_demo_cost_rates(platform.store, platform.clock())
    load_demo_assistant(platform.store, platform.funnels, platform.rules, platform.clock())
    side = CommandSide(
        platform.settings, platform.funnels, platform.rules, platform.store, platform.clock
    )
    print("Demo users (send as 'Authorization: Bearer <token>'):", flush=True)
    for role, username in demo_logins():
        print(f"  {role:<10} {username:<18} {_issue_token(side, username, None)}", flush=True)
    _print_demo_passwords(platform)


def demo_password(username: str) -> str:
    """A demo user's workspace password: deterministic, because it is demo data."""
    return f"demo-{username}"


def _print_demo_passwords(platform: Platform) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from leadledger.demo import DEMO_USERS

    credentials = platform.credentials
    unset = [u for u, *_ in DEMO_USERS if not credentials.has_password(u)]  # changed: kept
    with ThreadPoolExecutor(max_workers=4) as pool:  # argon2 hashing releases the GIL
        list(
            pool.map(lambda u: credentials.set_password(u, demo_password(u), set_by="demo"), unset)
        )
    print(
        "Workspace sign-in (at / on the server below): each demo user's password is "
        "demo-<username> unless changed since (demo data):",
        flush=True,
    )
    for username, _, role, department, _ in DEMO_USERS:
        where = f" ({department})" if department else ""
        print(f"  {role + where:<24} {username:<18} {demo_password(username)}", flush=True)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from read_api.app import create_app

    settings = Settings()
    platform = _platform()
    if args.demo and platform.store.last_position() == 0:
        log.info("the event store is empty: loading the demo data")
        _load_demo(platform, args.demo_leads, args.demo_deals, 7)
    if args.demo:
        _print_demo_tokens(platform)
    log.info("catching up the read models from position %d", platform.projector.position)
    platform.projector.catch_up()
    app = create_app(platform)
    host = args.host or settings.host
    port = args.port or settings.port
    log.info("LeadLedger workspace at http://%s:%d/ (sign in), API docs at /docs", host, port)
    uvicorn.run(app, host=host, port=port, log_level="info")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    platform = _command_side()
    try:
        if platform.store.last_position() and not args.force:
            print(
                "leadledger demo: the event store is not empty; pass --force to add the demo "
                "leads anyway",
                file=sys.stderr,
            )
            return 2
        sent = _load_demo(platform, args.leads, args.deals, args.seed)
        print(f"loaded {sent} demo commands ({args.leads} leads) into the event store")
        return 0
    finally:
        platform.close()


def cmd_project(args: argparse.Namespace) -> int:
    platform = _platform()
    try:
        if args.once:
            count = platform.projector.catch_up()
            print(
                f"projected {count} events; read models at position {platform.projector.position}"
            )
            return 0
        from leadledger.metrics import follower_samples, render
        from process_managers.state import ProcessStore

        positions = ProcessStore(platform.store)
        _serve_worker_metrics(
            platform.settings,
            lambda: render(
                follower_samples(
                    platform.store,
                    stored_position=positions.position,
                    projector_position=platform.projector.position,
                )
            ),
        )
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        log.info(
            "projector following the event store from position %d", platform.projector.position
        )
        with contextlib.suppress(KeyboardInterrupt):
            platform.projector.run_forever(stop, platform.settings.projector_poll_seconds)
        return 0
    finally:
        platform.close()


def cmd_process(args: argparse.Namespace) -> int:
    """The process managers on their own (the event store only; no read models)."""
    from leadledger.wiring import process_runner

    side = _command_side()
    runner = process_runner(side)
    try:
        if args.once:
            count = runner.run_once()
            print(f"process managers read {count} events and fired what was due")
            return 0
        from leadledger.metrics import follower_samples, render

        _serve_worker_metrics(
            side.settings,
            lambda: render(
                follower_samples(
                    side.store,
                    stored_position=runner.position,
                    process_positions={m.name: runner.position(m.name) for m in runner.managers},
                )
            ),
        )
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        log.info("process managers following the event store")
        with contextlib.suppress(KeyboardInterrupt):
            runner.run_forever(stop, side.settings.process_poll_seconds)
        return 0
    finally:
        side.close()


def _serve_worker_metrics(settings: Settings, text: Callable[[], str]) -> None:
    port = settings.metrics_port
    if port is not None:
        from leadledger.metrics import serve_metrics

        serve_metrics(port, settings.host, text)
        log.info("metrics at http://%s:%d/metrics", settings.host, port)


def cmd_relay(args: argparse.Namespace) -> int:
    """The relay on its own: the event store's log to Kafka."""
    from leadledger.metrics import follower_samples, render
    from leadledger.wiring import kafka_relay
    from relay.relay import tune_gc

    side = _command_side()
    tune_gc()
    try:
        try:
            relay = kafka_relay(side)
        except ValueError as exc:
            raise SystemExit(f"leadledger relay: {exc}") from exc
        _serve_worker_metrics(
            side.settings,
            lambda: render(
                follower_samples(side.store, stored_position=relay.state.position, relay=relay)
            ),
        )
        if args.once:
            count = relay.catch_up()
            print(f"published {count} events; relay at position {relay.position}")
            return 0
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        log.info(
            "relay publishing to %s from position %d",
            side.settings.kafka_bootstrap_servers,
            relay.position,
        )
        with contextlib.suppress(KeyboardInterrupt):
            relay.run_forever(stop, side.settings.relay_poll_seconds)
        return 0
    finally:
        side.close()
        gc.unfreeze()  # let the interpreter tear the frozen start-up heap down normally


def cmd_mail(args: argparse.Namespace) -> int:
    """The mailer on its own: alerts from the event store's log to their recipients."""
    from leadledger.metrics import render
    from leadledger.wiring import alert_mailer
    from notifications.mailer import MailUnavailable, mailer_samples

    side = _command_side()
    try:
        try:
            mailer = alert_mailer(side)
        except ValueError as exc:
            raise SystemExit(f"leadledger mail: {exc}") from exc
        _serve_worker_metrics(
            side.settings,
            lambda: render(mailer_samples(mailer, side.store.last_position())),
        )
        if args.once:
            try:
                mailer.catch_up()
            except MailUnavailable as exc:
                print(f"leadledger mail: the SMTP server cannot take mail now: {exc}")
                return 1
            stats = mailer.stats
            print(
                f"sent {stats.sent_total}, refused {stats.refused_total}, without an address "
                f"{stats.no_address_total}; mailer at position {mailer.ledger.position()}"
            )
            return 0
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        log.info(
            "mailer sending alerts through %s from position %d",
            side.settings.smtp_host,
            mailer.ledger.position(),
        )
        with contextlib.suppress(KeyboardInterrupt):
            mailer.run_forever(
                stop, side.settings.mail_poll_seconds, side.settings.mail_max_backoff_seconds
            )
        return 0
    finally:
        side.close()


def cmd_schemas(args: argparse.Namespace) -> int:
    """Write or check the published event schemas (schemas/published)."""
    from pathlib import Path

    from schemas.events.export import check_published, write_published

    directory = Path(args.directory)
    if args.action == "export":
        problems = [p for p in check_published(directory) if p.startswith("breaking:")]
        if problems and not args.force:
            print("\n".join(problems), file=sys.stderr)
            print(
                "refusing to overwrite published schemas with incompatible ones: publish a "
                "new version with an upcaster instead (or pass --force)",
                file=sys.stderr,
            )
            return 1
        written = write_published(directory)
        print(f"wrote {len(written)} schema files under {directory}")
        return 0
    problems = check_published(directory)
    for problem in problems:
        print(problem)
    return 1 if problems else 0


def cmd_rebuild(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from leadledger.wiring import read_model_projections
    from projections.projector import rebuild

    platform = _platform()
    try:
        total = platform.store.last_position()
        with tqdm(total=total, desc="rebuilding read models", unit="ev", file=sys.stderr) as bar:
            projector = rebuild(
                platform.store,
                platform.db,
                read_model_projections(platform.funnels, platform.rules),
                page_size=args.page_size,
                progress=lambda n: bar.update(n),
            )
        print(f"read models rebuilt up to position {projector.position}")
        return 0
    finally:
        platform.close()


def _format_value(value: Any) -> str:
    text = "∅" if value is None else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def cmd_history(args: argparse.Namespace) -> int:
    from commands.leads import load_lead_records
    from queries.history import history

    try:
        lead_id = UUID(args.lead_id)
    except ValueError:
        print(f"leadledger history: '{args.lead_id}' is not a lead id (UUID)", file=sys.stderr)
        return 2
    platform = _command_side()
    try:
        records = load_lead_records(platform.store, lead_id)
        if not records:
            print(f"leadledger history: lead {lead_id} not found", file=sys.stderr)
            return 1
        print(f"History of lead {lead_id} ({len(records)} events)")
        for entry in history(records):
            print(
                f"\nv{entry['version']:<4} #{entry['position']:<8} {entry['at']:%Y-%m-%d %H:%M:%S}"
                f"  {entry['type']:<22} by {entry['actor']}"
                + (f" ({entry['actor_role']})" if entry["actor_role"] else "")
                + (f" via {entry['command']}" if entry["command"] else "")
            )
            if entry["caused_by"]:
                print(f"      caused by {entry['caused_by']}")
            for field, change in entry["changes"].items():
                print(
                    f"      {field:<24} {_format_value(change['old'])} → "
                    f"{_format_value(change['new'])}"
                )
        return 0
    finally:
        platform.close()


def cmd_verify(args: argparse.Namespace) -> int:
    from event_store import open_event_store
    from event_store.chain import seal_existing, verify
    from leadledger.wiring import event_codec

    try:
        store = open_event_store(Settings().event_store_url, event_codec())
    except ValueError as exc:
        raise SystemExit(f"leadledger: configuration error: {exc}") from exc
    try:
        if args.seal:
            sealed = seal_existing(store)
            print(f"sealed {sealed} event(s) into the chain")
        report = verify(store)
        if not report.ok:
            print(f"leadledger verify: {report.message()}", file=sys.stderr)
            return 1
        print(f"{report.message()} ({report.events_per_second:,.0f} events/s)")
        return 0
    finally:
        store.close()


def _issue_token(side: CommandSide, username: str, hours: float | None) -> str:
    from datetime import timedelta

    from commands.users import load_user
    from leadledger.tokens import Signer, secret_from

    user = load_user(side.store, username)
    if not user.active:
        raise SystemExit(f"leadledger token: user {username} is deactivated")
    signer = Signer(secret_from(side.settings))
    ttl = timedelta(hours=hours or side.settings.token_ttl_hours)
    return signer.issue(user.principal(), now=side.clock(), ttl=ttl)


def cmd_token(args: argparse.Namespace) -> int:
    from datetime import timedelta

    from aggregates import users
    from aggregates.errors import InvalidValue
    from commands.context import StreamNotFound
    from leadledger.tokens import Signer, secret_from

    side = _command_side()
    try:
        if args.role is None:
            try:
                print(_issue_token(side, args.user, args.hours))
            except StreamNotFound:
                print(
                    f"leadledger token: {args.user} is not in the user directory; register "
                    "them (POST /users) or pass --role (and --department) to issue a token "
                    "for claims of your own",
                    file=sys.stderr,
                )
                return 2
            return 0
        try:
            principal = users.Principal(
                users.username(args.user),
                users.role(args.role),
                users.department(args.department),
                args.region,
            )
            users.check_claims(principal.role, principal.department)
        except InvalidValue as error:
            print(f"leadledger token: {error.message}", file=sys.stderr)
            return 2
        signer = Signer(secret_from(side.settings))
        ttl = timedelta(hours=args.hours or side.settings.token_ttl_hours)
        print(signer.issue(principal, now=side.clock(), ttl=ttl))
        return 0
    except ValueError as exc:
        raise SystemExit(f"leadledger: configuration error: {exc}") from exc
    finally:
        side.close()


def cmd_user(args: argparse.Namespace) -> int:
    import getpass

    from aggregates import users
    from commands.context import StreamNotFound
    from event_store.credentials import check_password_shape, open_credentials

    if not users.USERNAME.match(args.user):
        print(f"leadledger user: {args.user} is not a valid username", file=sys.stderr)
        return 2
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass(f"New password for {args.user}: ")
        if getpass.getpass("Again: ") != password:
            print("leadledger user: the two passwords differ", file=sys.stderr)
            return 2
    try:
        check_password_shape(password)
    except ValueError as error:
        print(f"leadledger user: {error}", file=sys.stderr)
        return 2
    side = _command_side()
    try:
        from commands.users import load_user

        try:
            load_user(side.store, args.user)
        except StreamNotFound:
            print(
                f"leadledger user: {args.user} is not in the user directory; register them "
                "first (POST /users)",
                file=sys.stderr,
            )
            return 2
        credentials = open_credentials(
            side.settings.key_store_url, side.settings.event_store_url, clock=side.clock
        )
        try:
            credentials.set_password(args.user, password, set_by="cli")
        finally:
            credentials.close()
        print(f"the password of {args.user} is set")
        return 0
    except ValueError as exc:
        raise SystemExit(f"leadledger: configuration error: {exc}") from exc
    finally:
        side.close()


def export_process_log(
    platform: Platform, fmt: str, out: Any, kind: str = "lead", funnel: str | None = None
) -> None:
    """Write the process log (``ocel``: OCEL 2.0 JSON of every record kind; ``xes``: one
    kind's XES) to the binary file ``out``, a batch of rows at a time."""
    from queries import process_log

    cursor = platform.db.cursor()
    try:
        if fmt == "ocel":
            for chunk in process_log.ocel_json(cursor):
                out.write(chunk)
        else:
            for text in process_log.xes(cursor, kind, funnel):  # type: ignore[arg-type]
                out.write(text.encode())
    finally:
        cursor.close()


def cmd_export_process_log(args: argparse.Namespace) -> int:
    platform = _platform()
    try:
        platform.projector.catch_up()
        if args.output == "-":
            export_process_log(platform, args.format, sys.stdout.buffer, args.kind, args.funnel)
        else:
            with open(args.output, "wb") as out:
                export_process_log(platform, args.format, out, args.kind, args.funnel)
        return 0
    finally:
        platform.close()


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="leadledger",
        description="LeadLedger: follow every lead from first touch to a paid project. "
        "Configuration comes from LEADLEDGER_* environment variables (see the README).",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("serve", help="run the API with the projector in one process")
    s.add_argument("--host", help="interface to listen on (default: LEADLEDGER_HOST or 127.0.0.1)")
    s.add_argument("--port", type=int, help="port (default: LEADLEDGER_PORT or 8000)")
    s.add_argument(
        "--demo", action="store_true", help="load the demo data first if the event store is empty"
    )
    s.add_argument(
        "--demo-leads", type=int, default=2000, help="leads in the demo data (default 2000)"
    )
    s.add_argument(
        "--demo-deals",
        type=int,
        default=40,
        help="deals with hand-offs in the demo data, each from a lead of its own (default 40)",
    )
    s.set_defaults(func=cmd_serve)

    d = sub.add_parser(
        "demo", help="load demo leads over the last 12 months through the command handlers"
    )
    d.add_argument("--leads", type=int, default=2000, help="number of leads (default 2000)")
    d.add_argument(
        "--deals",
        type=int,
        default=40,
        help="deals with hand-offs, each from a lead of its own (default 40)",
    )
    d.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    d.add_argument(
        "--force", action="store_true", help="load even when the event store is not empty"
    )
    d.set_defaults(func=cmd_demo)

    pr = sub.add_parser("project", help="run the projector on its own, following the event store")
    pr.add_argument("--once", action="store_true", help="catch up once and exit")
    pr.set_defaults(func=cmd_project)

    pm = sub.add_parser(
        "process",
        help="run the process managers on their own (hand-offs, conversion, deadlines)",
    )
    pm.add_argument("--once", action="store_true", help="catch up, fire what is due, exit")
    pm.set_defaults(func=cmd_process)

    rl = sub.add_parser(
        "relay", help="publish every event to Kafka (LEADLEDGER_KAFKA_BOOTSTRAP_SERVERS)"
    )
    rl.add_argument("--once", action="store_true", help="publish up to the head of the log, exit")
    rl.set_defaults(func=cmd_relay)

    ml = sub.add_parser("mail", help="e-mail every alert to its recipient (LEADLEDGER_SMTP_HOST)")
    ml.add_argument("--once", action="store_true", help="send up to the head of the log, exit")
    ml.set_defaults(func=cmd_mail)

    sc = sub.add_parser("schemas", help="export or check the published event schemas")
    sc.add_argument("action", choices=["export", "check"])
    sc.add_argument("--directory", default="schemas/published", help="default: schemas/published")
    sc.add_argument(
        "--force", action="store_true", help="export even over incompatible committed schemas"
    )
    sc.set_defaults(func=cmd_schemas)

    r = sub.add_parser("rebuild", help="drop the read models and replay every event, with progress")
    r.add_argument("--page-size", type=int, default=200_000, help="events per DuckDB transaction")
    r.set_defaults(func=cmd_rebuild)

    h = sub.add_parser("history", help="print every event of a lead, with its changes old → new")
    h.add_argument("lead_id", help="the lead's id")
    h.set_defaults(func=cmd_history)

    v = sub.add_parser(
        "verify", help="re-check the event store's hash chain; exit 1 naming the first break"
    )
    v.add_argument(
        "--seal",
        action="store_true",
        help="first chain the events that have none (recorded before the chain existed)",
    )
    v.set_defaults(func=cmd_verify)

    t = sub.add_parser(
        "token",
        help="print a bearer token for a user of the directory (or for the claims given)",
    )
    t.add_argument("user", help="username")
    t.add_argument(
        "--role",
        choices=[r.value for r in _roles()],
        help="issue for these claims instead of the directory's (e.g. the first admin)",
    )
    t.add_argument("--department", help="with --role: the department (heads, workers)")
    t.add_argument("--region", help="with --role: region or city")
    t.add_argument(
        "--hours", type=float, help="lifetime in hours (default LEADLEDGER_TOKEN_TTL_HOURS)"
    )
    t.set_defaults(func=cmd_token)

    u = sub.add_parser("user", help="manage a directory user's workspace sign-in")
    user_sub = u.add_subparsers(dest="action", required=True, metavar="ACTION")
    sp = user_sub.add_parser(
        "set-password", help="set a user's workspace password (asked twice, or from stdin)"
    )
    sp.add_argument("user", help="username (must be in the user directory)")
    sp.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin's first line"
    )
    sp.set_defaults(func=cmd_user)

    ex = sub.add_parser(
        "export-process-log",
        help="write the process log for process-mining tools (OCEL 2.0 JSON or XES)",
    )
    ex.add_argument("--format", choices=("ocel", "xes"), default="ocel")
    ex.add_argument(
        "--kind", choices=("lead", "deal", "project"), default="lead", help="XES: which records"
    )
    ex.add_argument("--funnel", default=None, help="XES: only this lead or deal funnel")
    ex.add_argument("--output", "-o", default="-", help="file to write (default: stdout)")
    ex.set_defaults(func=cmd_export_process_log)

    im = sub.add_parser(
        "import",
        help="import a file (XLSX or CSV) of leads, deals, companies, contacts or directory "
        "entries: every row checked",
    )
    im.add_argument(
        "kind",
        help="what the file holds: leads, deals, companies, contacts, or a directory's "
        "entries by its id (court, opponent, consultant, lawyer, expert, signatory)",
    )
    im.add_argument("file", help="the XLSX or CSV file (CSV: UTF-8, ';' or ',')")
    im.add_argument(
        "--mapping", help='a mapping JSON file ({"Column": "field"}) or a saved mapping\'s name'
    )
    im.add_argument(
        "--map",
        action="append",
        metavar="COLUMN=FIELD",
        help="map one column (repeatable; over --mapping; FIELD empty leaves it out)",
    )
    im.add_argument("--dry-run", action="store_true", help="check every row, write nothing")
    im.add_argument(
        "--mode",
        choices=("all", "rows"),
        default="all",
        help="all: the whole file or nothing (default); rows: the good rows, rejects listed",
    )
    im.add_argument("--errors", metavar="OUT.xlsx", help="write the refused rows and reasons")
    im.add_argument("--json", action="store_true", help="print the report as JSON")
    im.add_argument("--actor", default="import", help="who the events name (default: import)")
    im.set_defaults(func=cmd_import)
    return p


def cmd_import(args: argparse.Namespace) -> int:
    """Import a file of records (issue 18 §2): check every row, then write the good ones
    in one transaction; a progress bar for each pass."""
    import json
    from pathlib import Path
    from uuid import uuid4

    from tqdm import tqdm

    from aggregates.errors import DomainError
    from commands.context import CommandContext, StreamNotFound
    from commands.imports import get_mapping, import_file, mapping_columns, parse_map_options
    from leadledger.imports.base import MappingError
    from leadledger.imports.files import UnreadableFile
    from leadledger.imports.report import write_errors
    from leadledger.imports.runner import ImportConflict
    from leadledger.wiring import load_directories

    side = _command_side()
    bars: list[Any] = []
    try:
        mapping: dict[str, str] = {}
        if args.mapping:
            path = Path(args.mapping)
            if path.exists():
                mapping = mapping_columns(json.loads(path.read_text(encoding="utf-8")))
            else:
                mapping = dict(get_mapping(side.store, args.mapping).columns)
        mapping.update(parse_map_options(args.map or []))
        ctx = CommandContext(
            actor=args.actor,
            at=side.clock(),
            command_id=uuid4(),
            actor_role="admin",
            command=f"import-{args.kind}",
        )
        checking = tqdm(desc="checking rows", unit="row", file=sys.stderr)
        bars.append(checking)

        def writing(total: int) -> None:
            checking.close()
            bars.append(tqdm(total=total, desc="writing events", unit="ev", file=sys.stderr))

        report, source = import_file(
            side.store,
            side.funnels,
            side.rules,
            ctx,
            args.kind,
            Path(args.file),
            mapping=mapping or None,
            mode=args.mode,
            dry_run=args.dry_run,
            checked=checking.update,
            writing=writing,
            written=lambda n: bars[-1].update(n),
            directories=load_directories(side.settings.directories_file),
        )
        for bar in bars:
            bar.close()
        if args.errors and report.errors:
            written = write_errors(source, report, Path(args.errors))
            print(f"{written} refused row(s) written to {args.errors}", file=sys.stderr)
        if args.json:
            print(json.dumps(report.as_dict(), ensure_ascii=False, indent=2, default=str))
        else:
            _print_import(report)
        return (
            0
            if report.status in ("dry_run", "imported", "already_imported")
            and (not report.errors or args.mode == "rows")
            else 1
        )
    except (MappingError, UnreadableFile, DomainError, StreamNotFound, ImportConflict) as exc:
        for bar in bars:
            bar.close()
        print(f"leadledger import: {getattr(exc, 'message', None) or exc}", file=sys.stderr)
        return 2
    finally:
        side.close()


def _print_import(report: Any) -> None:
    shown = report.errors[:50]
    for error in shown:
        where = f"column '{error.column}'" if error.column else (error.field or "row")
        print(f"row {error.row}: {where}: {error.reason} [{error.code}]")
    if len(report.errors) > len(shown):
        print(f"... and {len(report.errors) - len(shown)} more refused row(s) (see --errors)")
    verdict = {
        "dry_run": "dry run: nothing written",
        "imported": f"imported {report.imported} record(s), {report.events} event(s) at "
        f"positions {report.first_position}..{report.last_position}",
        "rejected": "nothing imported: the file goes in whole or not at all (mode all); "
        "fix the rows above, or import the good ones with --mode rows",
        "already_imported": "already imported: nothing new",
        "nothing": "no row to import",
    }[report.status]
    print(
        f"{report.file} ({report.format}, sha256 {report.checksum[:12]}…): {report.rows} "
        f"row(s), {report.accepted} good, {report.already_imported} already imported, "
        f"{report.refused} refused — {verdict}"
    )


def _roles() -> tuple[Any, ...]:
    from aggregates.users import ROLES

    return ROLES


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    args = parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
