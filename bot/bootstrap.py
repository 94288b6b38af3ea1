"""The one composition root: settings → storage → providers → services → Slack app → ticker.

This is the only module in `bot/` allowed to import the Slack edge (`handlers`): it wires, it does not decide.
"""

from __future__ import annotations

import gc
import logging
import secrets
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot import checkup, redaction, safety
from bot.assets import open_asset_store
from bot.ballot_box import BallotBox
from bot.channels import Channels
from bot.clock import SystemClock
from bot.config import Settings
from bot.drafting import build_drafter
from bot.drafts import Drafts
from bot.errors import ConfigError
from bot.inbox import Inbox
from bot.jobs import Jobs
from bot.keyframes import build_keyframes
from bot.metrics import Meter, Metrics, NoMeter, metered
from bot.patterns import Patterns
from bot.ports import AssetStore, Clock, Publisher
from bot.posting import Posting
from bot.pricing import PriceTable
from bot.providers.registry import Providers, build_providers
from bot.rounds import Rounds
from bot.sweep import Sweep
from bot.ticker import Ticker
from bot.tuning import CoreSettings
from bot.variations import Variations
from bot.webhooks import FalKeys, Receivers
from storage.schema import UnknownRevision
from storage.store import Store

if TYPE_CHECKING:
    from wsgiref.types import WSGIApplication

    from handlers.app import TokenCheck
    from handlers.http import HttpServer
    from handlers.socket_mode import SocketModeConnection

log = logging.getLogger(__name__)


@dataclass
class Services:
    """The core's services, each owning one part of the product; handlers receive the ones they use."""

    inbox: Inbox
    ballots: BallotBox
    channels: Channels
    drafts: Drafts
    rounds: Rounds
    variations: Variations
    jobs: Jobs
    patterns: Patterns
    posting: Posting
    sweep: Sweep
    providers: Providers
    publisher: Publisher
    store: Store
    meter: Meter
    assets: AssetStore

    def health(self) -> dict[str, object]:
        """For `GET /healthz`: can we reach the database?"""
        try:
            with self.store.read() as repo:
                repo.ping()
        except Exception as err:  # report, never raise: a health check must answer
            return {"ok": False, "database": f"unreachable: {type(err).__name__}"}
        return {"ok": True, "database": "ok", "providers": list(self.providers.names())}

    def close(self) -> None:
        self.ballots.close()  # what is queued is kept and applied first
        self.jobs.close()
        self.posting.close()
        self.drafts.drafter.close()
        self.providers.close()
        self.assets.close()


def build_services(
    settings: Settings,
    *,
    store: Store,
    publisher: Publisher,
    clock: Clock,
    worker_id: str | None = None,
    core: CoreSettings | None = None,
    providers: Providers | None = None,
    meter: Meter | None = None,
    assets: AssetStore | None = None,
) -> Services:
    """Every service over one store and one publisher (the Slack one in production, a recording in tests).

    `meter` counts at the seams (provider calls here; Slack calls in the publisher it was given); `assets`
    replaces the configured asset store (tests give two "replicas" one bucket)."""
    meter = meter or NoMeter()
    worker = worker_id or f"worker-{uuid.uuid4().hex[:8]}"
    core = core or CoreSettings(
        vote_minutes=settings.vote_minutes,
        tie_minutes=settings.tie_grace_minutes,
        daily_budget=settings.daily_budget,
        max_concurrent=settings.max_concurrent,
        min_beat_gap=settings.min_beat_gap,
        lease_seconds=settings.lease_seconds,
        post_lease_seconds=settings.lease_seconds,
        orphan_audit_seconds=settings.orphan_audit_seconds,
        admins=settings.admin_ids,
        max_clip_mb=settings.max_clip_mb,
    )
    openai_key = settings.secret("openai_api_key")
    draft_key, draft_url = settings.draft_server
    prices = PriceTable.from_spec(settings.prices) if settings.prices else PriceTable.default()
    assets = assets or open_asset_store(settings)
    providers = metered(providers or build_providers(settings, prices=prices, assets=assets), meter)
    channels = Channels(
        store=store, providers=providers, prices=prices, clock=clock, settings=core, publisher=publisher
    )
    drafts = Drafts(
        store=store,
        channels=channels,
        providers=providers,
        assets=assets,
        clock=clock,
        settings=core,
        drafter=build_drafter(
            api_key=draft_key,
            base_url=draft_url,
            model=settings.openai_draft_model,
            api=settings.openai_draft_api,
        ),
        moderation=safety.build_moderation(
            api_key=openai_key, base_url=settings.openai_base_url, model=settings.openai_moderation_model
        ),
        keyframes=build_keyframes(
            api_key=openai_key, base_url=settings.openai_base_url, model=settings.openai_image_model
        ),
    )
    posting = Posting(
        store=store, publisher=publisher, assets=assets, clock=clock, settings=core, worker_id=worker
    )
    patterns = Patterns(store=store, clock=clock)
    rounds = Rounds(
        store=store,
        drafts=drafts,
        channels=channels,
        patterns=patterns,
        posting=posting,
        publisher=publisher,
        clock=clock,
        settings=core,
    )
    variations = Variations(
        store=store, channels=channels, rounds=rounds, posting=posting, assets=assets, clock=clock
    )
    jobs = Jobs(
        store=store,
        providers=providers,
        posting=posting,
        assets=assets,
        clock=clock,
        settings=core,
        worker_id=worker,
    )
    ballots = BallotBox(
        store=store, rounds=rounds, posting=posting, publisher=publisher, clock=clock, meter=meter
    )
    sweep = Sweep(
        store=store, jobs=jobs, posting=posting, rounds=rounds, ballots=ballots, clock=clock, settings=core
    )
    return Services(
        inbox=Inbox(store=store, clock=clock),
        ballots=ballots,
        channels=channels,
        drafts=drafts,
        rounds=rounds,
        variations=variations,
        jobs=jobs,
        patterns=patterns,
        posting=posting,
        sweep=sweep,
        providers=providers,
        publisher=publisher,
        store=store,
        meter=meter,
        assets=assets,
    )


@dataclass
class Serving:
    """What `Runtime.start` started: the HTTP server (HTTP mode, or Socket Mode's side server) and the
    Socket Mode connection."""

    http: HttpServer | None = None
    socket_mode: SocketModeConnection | None = None

    def stop(self) -> None:
        """The WebSocket first (no new envelopes), then HTTP: requests already received finish."""
        if self.socket_mode is not None:
            self.socket_mode.close()
        if self.http is not None:
            log.info(
                "sora-bot is stopping: finishing requests in flight (at most %ss)",
                self.http.limits.shutdown_seconds,
            )
            self.http.stop()


@dataclass
class Runtime:
    """Everything `serve` and `demo` run, built once from Settings."""

    settings: Settings
    store: Store
    services: Services
    ticker: Ticker
    app: object  # slack_bolt.App; typed loosely so `bot` stays free of Slack types outside this root
    webhooks: Receivers
    forget_secrets: Callable[[], None] = lambda: None
    metrics: Metrics | None = None

    def wsgi(self, *, health: Callable[[], dict[str, object]] | None = None) -> WSGIApplication:
        """HTTP mode's one WSGI app: Slack events, provider webhooks, the health check, the metrics."""
        from handlers.http import make_wsgi_app

        return make_wsgi_app(
            self.app,  # type: ignore[arg-type]
            # Socket Mode needs no signing secret: its side server never lets a request reach /slack/events
            # (handlers.socket_mode.side_app), so a random one stands in for an unset one.
            signing_secret=self.settings.secret("slack_signing_secret") or secrets.token_hex(16),
            max_body_bytes=self.settings.http_max_body_bytes,
            health=health or self.services.health,
            webhooks=self.webhooks,
            on_job_event=lambda event: self.services.jobs.job_event(
                provider=event.provider, job_id=event.job_id
            ),
            metrics=self.metrics.exposition if self.metrics else None,
        )

    def serve(self, *, host: str, port: int, until: threading.Event, http: bool = True) -> None:
        """Serve until `until` is set, then stop: see `start`."""
        serving = self.start(host=host, port=port, http=http)
        try:
            until.wait()
        finally:
            serving.stop()

    def start(self, *, host: str, port: int, http: bool = True) -> Serving:
        """Socket Mode when an app token is set, else HTTP on `host:port`. Socket Mode also serves HTTP on
        `host:port` — the health check and provider webhooks, everything but /slack/events — unless `http` is
        False. Raises ConfigError when the port is taken or Slack refuses the app token."""
        settle_heap()
        if not self.settings.socket_mode:
            if not http:
                raise ConfigError(["--no-http is for Socket Mode: in HTTP mode Slack needs the server"])
            server = self._listen(host, port, application=self.wsgi())
            log.info(
                "sora-bot is listening on %s (POST /slack/events, GET /healthz, GET /metrics%s)",
                server.url,
                self._hooks(),
            )
            return Serving(http=server)
        from slack_sdk.errors import SlackApiError, SlackClientError

        from handlers.socket_mode import SocketModeConnection, health_with_connection, side_app

        connection = SocketModeConnection(self.app, app_token=self.settings.secret("slack_app_token") or "")  # type: ignore[arg-type]
        serving = Serving(socket_mode=connection)
        try:
            if http:
                health = health_with_connection(self.services.health, connection)
                serving.http = self._listen(host, port, application=side_app(self.wsgi(health=health)))
            connection.connect()
        except SlackApiError as err:
            serving.stop()
            error = err.response.get("error") if isinstance(err.response.data, dict) else err
            raise ConfigError(
                [
                    f"Slack refused SLACK_APP_TOKEN at {self.settings.slack_api_url} ({error}): create an "
                    "app-level token with connections:write under Basic Information → App-Level Tokens"
                ]
            ) from None
        except (SlackClientError, OSError) as err:
            serving.stop()
            raise ConfigError(
                [f"Slack cannot be reached at {self.settings.slack_api_url} for Socket Mode ({err})"]
            ) from None
        except BaseException:
            serving.stop()
            raise
        if serving.http is not None:
            log.info(
                "sora-bot is connected in Socket Mode; HTTP on %s (GET /healthz, GET /metrics%s; not /slack/events)",
                serving.http.url,
                self._hooks(),
            )
        else:
            log.info(
                "sora-bot is connected in Socket Mode (no HTTP server: no /healthz, no provider webhooks)"
            )
            if self.webhooks.names():
                log.warning(
                    "provider webhooks are configured but --no-http leaves nothing to receive them: "
                    "jobs are still polled"
                )
        return serving

    def _listen(self, host: str, port: int, *, application: WSGIApplication) -> HttpServer:
        from handlers.http import HttpLimits, HttpServer

        limits = HttpLimits(
            threads=self.settings.http_threads,
            timeout_seconds=self.settings.http_timeout_seconds,
            max_body_bytes=self.settings.http_max_body_bytes,
            connection_limit=self.settings.http_connections,
            shutdown_seconds=self.settings.shutdown_seconds,
        )
        try:
            server = HttpServer(application, host=host, port=port, limits=limits)
        except OSError as err:
            advice = " or --no-http" if self.settings.socket_mode else ""
            raise ConfigError(
                [f"cannot listen on {host}:{port} ({err.strerror or err}): choose another --port{advice}"]
            ) from None
        return server.start()

    def _hooks(self) -> str:
        return "".join(f", POST /webhooks/{name}" for name in self.webhooks.names())

    def close(self) -> None:
        from handlers.app import finish_listeners

        self.ticker.stop()
        finish_listeners(self.app)  # type: ignore[arg-type]  # their work needs the services and the store
        self.services.close()
        self.store.dispose()
        self.forget_secrets()


def settle_heap() -> None:
    """Move everything built so far — modules, the app, the models' metadata: it lives as long as the process —
    out of the garbage collector's full passes. A full collection then walks only what was made since, and pauses
    every thread for milliseconds rather than the ~100 ms that pushed the slowest acks past Slack's patience."""
    gc.collect()
    gc.freeze()


def slack_timeout(lease_seconds: float) -> int:
    """A post is leased while it is sent; an upload is up to four HTTP calls, so each gets a quarter of the lease
    (at most 30 s): a send never outlives its lease, and no other worker takes over a post still under way."""
    return max(1, min(30, int(lease_seconds // 4)))


def prepare_schema(store: Store, settings: Settings) -> None:
    """Create the schema in an empty database; upgrade an older one only when SORA_BOT_MIGRATE_ON_START says so.

    Raises ConfigError (one line: run `sora-bot migrate`) when the database is behind, or ahead of, this release."""
    state = store.schema_state()
    if state.up_to_date:
        return
    problem = checkup.schema_problem(state, migrate_on_start=settings.migrate_on_start)
    if problem:
        raise ConfigError([problem])
    try:
        migration = store.create_schema()  # under a lock: a replica that waited finds it done
    except UnknownRevision as err:  # a newer release migrated it in the meantime
        raise ConfigError([str(err)]) from None
    if migration.ran:
        log.info("database schema migrated from %s to %s", migration.before or "nothing", migration.after)


def check_slack(settings: Settings, *, timeout: int = 10) -> TokenCheck:
    """Ask Slack (`auth.test` at SLACK_API_URL) whether the bot token works, as the app will when it starts."""
    from handlers.app import check_bot_token

    return check_bot_token(
        token=settings.secret("slack_bot_token") or "", base_url=settings.slack_api_url, timeout=timeout
    )


def build_runtime(
    settings: Settings,
    *,
    clock: Clock | None = None,
    worker_id: str | None = None,
    providers: Providers | None = None,
    assets: AssetStore | None = None,
    listeners_finish_before_answer: bool = False,
) -> Runtime:
    """Raises ConfigError when Slack refuses the bot token (Bolt checks it with auth.test).

    `providers` and `assets` replace the configured ones, and `listeners_finish_before_answer` makes each HTTP
    answer wait for its listener, and the posts it asked for: all for tests, which then read outcomes the moment
    Slack would have its answer."""
    from slack_bolt.error import BoltError
    from slack_sdk.errors import SlackClientError

    from handlers.app import build_app, make_client, make_publisher

    # Before anything can fail or log: a key a provider or Slack echoes back is never shown, logged or stored.
    forget_secrets = redaction.protect(redaction.secrets_of(settings))
    redaction.install_log_scrubbing()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(settings.resolved_database_url)
    try:
        prepare_schema(store, settings)
    except BaseException:
        store.dispose()
        forget_secrets()
        raise
    metrics = Metrics()
    metrics.watch(store)
    token = settings.secret("slack_bot_token") or ""
    client = make_client(token=token, base_url=settings.slack_api_url)
    services = build_services(
        settings,
        store=store,
        publisher=make_publisher(
            token=token,
            base_url=settings.slack_api_url,
            timeout=slack_timeout(settings.lease_seconds),
            meter=metrics,
        ),
        clock=clock or SystemClock(),
        worker_id=worker_id,
        providers=providers,
        meter=metrics,
        assets=assets,
    )
    # Posts a listener asks for go out from the outbox's own threads, unless the listener must be done first.
    services.posting.inline = listeners_finish_before_answer
    try:
        app = build_app(
            client=client,
            signing_secret=settings.secret("slack_signing_secret") or "",
            services=services,
            socket_mode=settings.socket_mode,
            process_before_response=listeners_finish_before_answer,
        )
    except (BoltError, SlackClientError, OSError) as err:
        # Bolt's App() calls auth.test; `serve` asks first (check_slack), so this is the race where Slack
        # changed its mind in between: still one line, never a traceback.
        services.close()
        store.dispose()
        forget_secrets()
        raise ConfigError(
            [f"Slack refused or could not be reached at {settings.slack_api_url} ({err})"]
        ) from None
    ticker = Ticker(services.sweep, interval=settings.tick_seconds)
    services.sweep.wake = services.rounds.wake = ticker.wake
    services.ballots.wake_at = ticker.wake_at
    receivers = Receivers(
        openai_secret=settings.secret("openai_webhook_secret"),
        fal_keys=FalKeys.from_url(settings.fal_jwks_url) if settings.secret("fal_key") else None,
    )
    return Runtime(
        settings=settings,
        store=store,
        services=services,
        ticker=ticker,
        app=app,
        webhooks=receivers,
        forget_secrets=forget_secrets,
        metrics=metrics,
    )
