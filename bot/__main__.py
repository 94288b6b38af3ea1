"""The one composition root and the `sora-bot` CLI: settings → store → providers → Slack app → ticker → serve.

This is the only module in `bot/` allowed to import the Slack edge (`handlers`): it wires, it does not decide.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bot import safety
from bot.assets import LocalAssetStore
from bot.clock import SystemClock
from bot.config import Settings, load_settings
from bot.drafting import build_drafter
from bot.errors import ConfigError
from bot.keyframes import build_keyframes
from bot.ports import Clock
from bot.pricing import PriceTable
from bot.providers.registry import build_providers
from bot.ticker import Ticker
from bot.webhooks import FalKeys, Receivers
from bot.workflow import Workflow, WorkflowSettings
from storage.store import Store

if TYPE_CHECKING:
    from wsgiref.types import WSGIApplication

log = logging.getLogger("sora-bot")

DEMO_MARKER = ".sora-bot-demo"


@dataclass
class Runtime:
    """Everything `serve` and `demo` run, built once from Settings."""

    settings: Settings
    store: Store
    workflow: Workflow
    ticker: Ticker
    app: object  # slack_bolt.App; typed loosely so `bot` stays free of Slack types outside this root
    webhooks: Receivers

    def wsgi(self) -> WSGIApplication:
        """HTTP mode's one WSGI app: Slack events, provider webhooks, the health check."""
        from handlers.http import make_wsgi_app

        return make_wsgi_app(
            self.app,  # type: ignore[arg-type]
            health=self.workflow.health,
            webhooks=self.webhooks,
            on_job_event=lambda event: self.workflow.job_event(provider=event.provider, job_id=event.job_id),
        )

    def close(self) -> None:
        self.ticker.stop()
        self.workflow.close()
        self.workflow.drafter.close()
        self.workflow.providers.close()
        self.store.dispose()


def build_runtime(settings: Settings, *, clock: Clock | None = None, worker_id: str | None = None) -> Runtime:
    from handlers.app import build_app, make_client
    from handlers.publisher import SlackPublisher

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(settings.resolved_database_url)
    store.create_schema()
    client = make_client(token=settings.secret("slack_bot_token") or "", base_url=settings.slack_api_url)
    openai_key = settings.secret("openai_api_key")
    prices = PriceTable.from_spec(settings.prices) if settings.prices else PriceTable.default()
    workflow = Workflow(
        store=store,
        providers=build_providers(settings, prices=prices),
        publisher=SlackPublisher(client),
        assets=LocalAssetStore(settings.data_dir / "assets"),
        clock=clock or SystemClock(),
        settings=WorkflowSettings(
            vote_minutes=settings.vote_minutes,
            daily_budget=settings.daily_budget,
            max_concurrent=settings.max_concurrent,
            min_beat_gap=settings.min_beat_gap,
        ),
        worker_id=worker_id,
        drafter=build_drafter(
            api_key=openai_key, base_url=settings.openai_base_url, model=settings.openai_draft_model
        ),
        moderation=safety.build_moderation(
            api_key=openai_key, base_url=settings.openai_base_url, model=settings.openai_moderation_model
        ),
        prices=prices,
        keyframes=build_keyframes(
            api_key=openai_key, base_url=settings.openai_base_url, model=settings.openai_image_model
        ),
    )
    app = build_app(
        client=client,
        signing_secret=settings.secret("slack_signing_secret") or "",
        workflow=workflow,
        socket_mode=settings.socket_mode,
    )
    ticker = Ticker(workflow.sweep, interval=settings.tick_seconds)
    workflow.wake = ticker.wake
    receivers = Receivers(
        openai_secret=settings.secret("openai_webhook_secret"),
        fal_keys=FalKeys.from_url(settings.fal_jwks_url) if settings.secret("fal_key") else None,
    )
    return Runtime(
        settings=settings, store=store, workflow=workflow, ticker=ticker, app=app, webhooks=receivers
    )


# --- commands ---------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    from slack_bolt.error import BoltError

    from handlers.http import HttpServer

    settings = load_settings()
    _configure_logging(settings.log_level)
    problems = settings.serve_problems() + settings.provider_problems()
    if problems:
        raise ConfigError(problems)
    try:
        runtime = build_runtime(settings)
    except BoltError as err:
        raise ConfigError([f"Slack rejected SLACK_BOT_TOKEN at {settings.slack_api_url} ({err})"]) from None
    runtime.ticker.start()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        if settings.socket_mode:
            from slack_bolt.adapter.socket_mode import SocketModeHandler

            handler = SocketModeHandler(runtime.app, settings.secret("slack_app_token"))  # type: ignore[arg-type]
            handler.connect()  # type: ignore[no-untyped-call]
            log.info("sora-bot is connected in Socket Mode")
            stop.wait()
            handler.close()  # type: ignore[no-untyped-call]
        else:
            server = HttpServer(runtime.wsgi(), host=args.host, port=args.port).start()
            hooks = ", ".join(f"POST /webhooks/{name}" for name in runtime.webhooks.names())
            log.info(
                "sora-bot is listening on %s (POST /slack/events, GET /healthz%s)",
                server.url,
                f", {hooks}" if hooks else "",
            )
            stop.wait()
            server.stop()
    finally:
        runtime.close()
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
    _configure_logging("DEBUG" if args.verbose else "WARNING")
    return run_demo(out, build_runtime=build_runtime, timeout=args.timeout)


def cmd_doctor(args: argparse.Namespace) -> int:
    settings = load_settings()
    lines = [f"database: {_redact(settings.resolved_database_url)}"]
    problems = settings.serve_problems() + settings.provider_problems()
    try:
        store = Store(settings.resolved_database_url)
        with store.transaction() as repo:
            repo.ping()
        store.dispose()
        lines.append("database: reachable")
    except Exception as err:
        problems.append(f"DATABASE_URL cannot be reached: {type(err).__name__}: {str(err).splitlines()[0]}")
    try:
        prices = PriceTable.from_spec(settings.prices) if settings.prices else PriceTable.default()
        providers = build_providers(settings, prices=prices)
        names = providers.names()
        providers.close()
        lines.append(f"video providers: {', '.join(names)} (default {settings.video_provider})")
    except ConfigError as err:
        problems.extend(err.problems)
    mode = "Socket Mode" if settings.socket_mode else "HTTP mode (POST /slack/events)"
    lines.append(f"Slack: {mode}, Web API {settings.slack_api_url}")
    print("\n".join(lines))
    if problems:
        print("\nProblems:\n" + "\n".join(f"  - {p}" for p in dict.fromkeys(problems)))
        return 1
    print("\nEverything needed to serve is in place.")
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = load_settings()
    store = Store(settings.resolved_database_url)
    store.create_schema()
    store.dispose()
    print(f"schema is up to date at {_redact(settings.resolved_database_url)}")
    return 0


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _configure_logging(level: str) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


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
    serve.add_argument("--port", type=int, default=3000, help="HTTP port (default 3000)")
    serve.add_argument("--host", default="0.0.0.0", help="HTTP bind address (default 0.0.0.0)")
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
        "doctor", help="check the configuration, database and providers, and say what is missing"
    )
    doctor.set_defaults(func=cmd_doctor)
    migrate = sub.add_parser("migrate", help="create or update the database schema")
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
