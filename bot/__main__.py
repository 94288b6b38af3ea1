"""The `sora-bot` CLI: serve, demo, doctor, migrate. The wiring itself lives in `bot.bootstrap`."""

from __future__ import annotations

import argparse
import logging
import shutil
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from bot import checkup, logs
from bot.bootstrap import build_runtime, check_slack
from bot.config import load_settings, load_settings_reporting
from bot.errors import ConfigError
from bot.pricing import PriceTable
from bot.providers.registry import build_providers
from storage.schema import UnknownRevision
from storage.store import Store

log = logging.getLogger("sora-bot")

DEMO_MARKER = ".sora-bot-demo"

# --- commands ---------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    settings = load_settings()
    logs.configure(settings.log_level, fmt=settings.log_format)
    problems = settings.serve_problems() + settings.provider_problems()
    if args.no_http and not settings.socket_mode:
        problems.append(
            "--no-http is for Socket Mode (set SLACK_APP_TOKEN): in HTTP mode Slack needs the server"
        )
    if problems:
        raise ConfigError(problems)
    slack = check_slack(settings)  # a revoked token or an unreachable Slack is one line, not a traceback
    if slack.problem:
        raise ConfigError([slack.problem])
    runtime = build_runtime(settings)
    runtime.ticker.start()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        runtime.serve(host=args.host, port=args.port, until=stop, http=not args.no_http)
    finally:
        runtime.close()
    log.info("sora-bot stopped")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from devkit.demo import run_demo

    out = Path(args.out).resolve()
    if out.exists() and any(out.iterdir()):
        if not (out / DEMO_MARKER).exists():
            print(
                f"{out} exists and is not a sora-bot demo folder; choose another with --out.", file=sys.stderr
            )
            return 2
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / DEMO_MARKER).write_text("Created by `sora-bot demo`; safe to delete.\n")
    logs.configure("DEBUG" if args.verbose else "WARNING")
    return run_demo(out, build_runtime=build_runtime, timeout=args.timeout)


def cmd_doctor(args: argparse.Namespace) -> int:
    """Every problem at once: malformed settings, then what the database, providers and Slack answer."""
    settings, problems = load_settings_reporting()
    problems += settings.serve_problems() + settings.provider_problems()
    lines = [f"database: {_redact(settings.resolved_database_url)}"]
    reachable = checkup.database(settings)
    schema_checks = [checkup.schema(settings)] if reachable.ok else []
    for check in (reachable, *schema_checks, checkup.assets(settings), checkup.ffmpeg()):
        _report(check, lines, problems)
    try:
        prices = PriceTable.from_spec(settings.prices) if settings.prices else PriceTable.default()
        providers = build_providers(settings, prices=prices)
        names = providers.names()
        providers.close()
        lines.append(f"video providers: {', '.join(names)} (default {settings.video_provider})")
    except ConfigError as err:
        problems.extend(err.problems)
    for check in checkup.providers(settings):
        _report(check, lines, problems)
    draft_key, draft_url = settings.draft_server
    if draft_key:
        lines.append(
            f"drafting: {settings.openai_draft_model} at {draft_url or 'OpenAI'} "
            f"(API: {settings.openai_draft_api}), offline when it fails"
        )
    else:
        lines.append("drafting: offline (set OPENAI_API_KEY or OPENAI_DRAFT_BASE_URL for the AI drafter)")
    mode = "Socket Mode" if settings.socket_mode else "HTTP mode (POST /slack/events)"
    slack = f"Slack: {mode}, Web API {settings.slack_api_url}"
    if settings.secret("slack_bot_token"):
        answer = check_slack(settings, timeout=5)
        if answer.problem:
            problems.append(answer.problem)
        else:
            slack += f", authenticated as {answer.identity}"
    lines.append(slack)
    print("\n".join(lines))
    if problems:
        print("\nProblems:\n" + "\n".join(f"  - {p}" for p in dict.fromkeys(problems)))
        return 1
    print("\nEverything needed to serve is in place.")
    return 0


def _report(check: checkup.Check, lines: list[str], problems: list[str]) -> None:
    if check.ok:
        lines.append(f"{check.subject}: {check.detail}")
    else:
        problems.append(check.detail)


def cmd_migrate(args: argparse.Namespace) -> int:
    """Bring the database to this release's newest revision and say from where to where."""
    settings = load_settings()
    logs.configure(settings.log_level, fmt=settings.log_format)
    store = Store(settings.resolved_database_url)
    try:
        migration = store.create_schema()
    except UnknownRevision as err:
        raise ConfigError([str(err)]) from None
    finally:
        store.dispose()
    where = _redact(settings.resolved_database_url)
    if migration.ran:
        print(f"migrated {where} from {migration.before or 'no revision'} to {migration.after} (head)")
    else:
        print(f"{where} is already at {migration.after} (head); nothing to do")
    return 0


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sora-bot",
        description="A Slack bot for teams that iterate on short AI video: draft, generate, vote, remix, recall.",
        epilog="Configuration comes from the environment (see the README's table); `sora-bot doctor` checks it.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = sub.add_parser(
        "serve", help="run the bot (Socket Mode when SLACK_APP_TOKEN is set, else HTTP on --port)"
    )
    serve.add_argument(
        "--port",
        type=int,
        default=3000,
        help="HTTP port (default 3000); in Socket Mode it serves /healthz and provider webhooks",
    )
    serve.add_argument("--host", default="0.0.0.0", help="HTTP bind address (default 0.0.0.0)")
    serve.add_argument(
        "--no-http",
        action="store_true",
        help="Socket Mode only: no HTTP server (no /healthz, no provider webhooks; jobs are still polled)",
    )
    serve.set_defaults(func=cmd_serve)
    demo = sub.add_parser(
        "demo",
        help="play a whole team session offline against a built-in fake Slack and print the transcript",
    )
    demo.add_argument(
        "--out", default="sora-bot-demo", help="folder for the clips and database (default ./sora-bot-demo)"
    )
    demo.add_argument(
        "--timeout", type=float, default=60.0, help="seconds to wait for each step (default 60)"
    )
    demo.add_argument("--verbose", action="store_true", help="show the bot's logs")
    demo.set_defaults(func=cmd_demo)
    doctor = sub.add_parser(
        "doctor",
        help="check the settings, Slack (auth.test), the database and its schema, the asset store, ffmpeg and "
        "each provider, and list every problem at once",
    )
    doctor.set_defaults(func=cmd_doctor)
    migrate = sub.add_parser(
        "migrate", help="create the database schema, or upgrade one an older release made (back it up first)"
    )
    migrate.set_defaults(func=cmd_migrate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as err:
        print(err, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
