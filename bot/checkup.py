"""What `sora-bot doctor` checks beyond the settings: the database, the asset store, ffmpeg and each hosted
provider's key.

Each check answers in one line, and a failed one says what to change. Provider checks make one cheap
authenticated GET with a short timeout; nothing is generated or billed.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import httpx

from bot import media
from bot.assets import open_asset_store
from bot.config import Settings
from bot.errors import ConfigError
from storage.schema import SchemaState, UnknownRevision
from storage.store import Store

TIMEOUT = 5.0
_OPENAI_URL = "https://api.openai.com/v1"
# A request id no one has: fal answers it "not found" for a good key and 401/403 for a bad one.
_FAL_PROBE = "fal-ai/kling-video/requests/00000000-0000-0000-0000-000000000000/status"


@dataclass(frozen=True)
class Check:
    subject: str
    ok: bool
    detail: str  # what was found; when not ok, what is wrong and what to change


def database(settings: Settings) -> Check:
    try:
        store = Store(settings.resolved_database_url)
        try:
            with store.transaction() as repo:
                repo.ping()
        finally:
            store.dispose()
    except Exception as err:  # any driver's failure is reported, not raised: doctor lists every problem
        first = (str(err).splitlines() or [""])[0][:200]
        return Check(
            "database", False, f"DATABASE_URL cannot be reached ({type(err).__name__}: {first}); check it."
        )
    return Check("database", True, "reachable")


def schema(settings: Settings) -> Check:
    """The database's migration level against this release's; behind is a problem unless serve may migrate."""
    store = Store(settings.resolved_database_url)
    try:
        state = store.schema_state()
    finally:
        store.dispose()
    problem = schema_problem(state, migrate_on_start=settings.migrate_on_start)
    if problem:
        return Check("schema", False, problem)
    if state.up_to_date:
        return Check("schema", True, state.describe())
    if state.empty:
        return Check("schema", True, f"{state.describe()}; serve creates it")
    return Check("schema", True, f"{state.describe()}; serve migrates it (SORA_BOT_MIGRATE_ON_START)")


def schema_problem(state: SchemaState, *, migrate_on_start: bool) -> str | None:
    """Why serve cannot start on this database, in one line; None when it can (creating an empty database's
    schema, or migrating an older one when SORA_BOT_MIGRATE_ON_START is true)."""
    if not state.known:
        return str(UnknownRevision(str(state.current), state.head))
    if state.up_to_date or state.empty or migrate_on_start:
        return None
    return (
        f"the database schema is older than this release ({state.current or 'unversioned'}, needs "
        f"{state.head}): back it up and run `sora-bot migrate` (or set SORA_BOT_MIGRATE_ON_START=true)"
    )


def assets(settings: Settings) -> Check:
    """Store a small probe file, see it there, delete it: what every clip will need (a writable folder, or a
    bucket that answers and takes our credentials)."""
    fix = (
        "check SORA_BOT_ASSET_BUCKET, SORA_BOT_S3_ENDPOINT_URL and the AWS credentials (AWS_ACCESS_KEY_ID…)"
        if settings.asset_bucket
        else "make SORA_BOT_DATA_DIR a writable folder"
    )
    try:
        store = open_asset_store(settings)
    except ConfigError as err:
        return Check("assets", False, f"{'; '.join(err.problems)}; {fix}.")
    key = f"doctor/probe-{secrets.token_hex(6)}.txt"
    try:
        probe = store.scratch("probe.txt")
        probe.write_bytes(b"sora-bot doctor was here; safe to delete\n")
        store.put(key, probe)
        if not store.exists(key):
            return Check("assets", False, f"{store.where} took a file but does not show it; {fix}.")
        store.delete(key)
    except OSError as err:  # AssetError included: a refused credential, a missing bucket, a read-only disk
        first = (str(err).splitlines() or [""])[0][:200]
        return Check("assets", False, f"{store.where} cannot store a file ({first}); {fix}.")
    finally:
        store.close()
    return Check("assets", True, f"{store.where}, writable")


def ffmpeg() -> Check:
    try:
        return Check("ffmpeg", True, media.ffmpeg_exe())
    except Exception as err:  # a missing binary must be a line in the report, not a traceback
        return Check(
            "ffmpeg", False, f"ffmpeg is missing ({err}); reinstall sora-bot (imageio-ffmpeg ships it)."
        )


def providers(settings: Settings) -> list[Check]:
    """One check per hosted API whose key is set (OpenAI also drafts and moderates, so its key counts too)."""
    checks = []
    openai_key = settings.secret("openai_api_key")
    if openai_key:
        base = (settings.openai_base_url or _OPENAI_URL).rstrip("/")
        checks.append(
            _reach(
                "openai",
                f"{base}/models",
                headers={"Authorization": f"Bearer {openai_key}"},
                key="OPENAI_API_KEY",
                base_variable="OPENAI_BASE_URL",
            )
        )
    fal_key = settings.secret("fal_key")
    if fal_key:
        checks.append(
            _reach(
                "fal",
                f"{settings.fal_base_url.rstrip('/')}/{_FAL_PROBE}",
                headers={"Authorization": f"Key {fal_key}"},
                key="FAL_KEY",
                base_variable="FAL_BASE_URL",
                missing_is_fine=True,
            )
        )
    gemini_key = settings.secret("gemini_api_key")
    if gemini_key:
        checks.append(
            _reach(
                "veo",
                f"{settings.gemini_base_url.rstrip('/')}/v1beta/models?pageSize=1",
                headers={"x-goog-api-key": gemini_key},
                key="GEMINI_API_KEY",
                base_variable="GEMINI_BASE_URL",
            )
        )
    return checks


def _reach(
    name: str,
    url: str,
    *,
    headers: dict[str, str],
    key: str,
    base_variable: str,
    missing_is_fine: bool = False,
) -> Check:
    where = url.split("?")[0]
    try:
        response = httpx.get(url, headers=headers, timeout=TIMEOUT)
    except httpx.HTTPError as err:
        return Check(
            name,
            False,
            f"{where} cannot be reached ({type(err).__name__}); check {base_variable} and the network.",
        )
    status = response.status_code
    # Gemini answers a bad key with 400 API_KEY_INVALID rather than 401.
    refused = status in (401, 403) or (status == 400 and "API_KEY" in response.text)
    if refused:
        return Check(name, False, f"{where} refused {key} (HTTP {status}); set {key} to a valid key.")
    if status >= 500 or (status >= 400 and not (missing_is_fine and status in (404, 422))):
        return Check(
            name,
            False,
            f"{where} answered HTTP {status}; check {base_variable} (or the provider's status page).",
        )
    return Check(name, True, f"reachable, {key} accepted")
