"""Settings: the only reader of the environment. Every problem is reported at once, in plain words."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from bot.errors import ConfigError
from bot.webhooks import FAL_JWKS_URL

PROVIDERS = ("local", "openai", "fal", "veo")

# What to tell a person about each variable when it is wrong: the name and what to set it to.
_HELP: dict[str, str] = {
    "SLACK_BOT_TOKEN": "the bot token from your Slack app's OAuth page (starts with xoxb-)",
    "SLACK_SIGNING_SECRET": "the signing secret from your Slack app's Basic Information page",
    "SLACK_APP_TOKEN": "an app-level token with connections:write (starts with xapp-), for Socket Mode",
    "SLACK_API_URL": "the Slack Web API base URL, e.g. https://slack.com/api/",
    "DATABASE_URL": "sqlite:///path/to/file.db or postgresql+psycopg://user@host/db",
    "SORA_BOT_DATA_DIR": "a writable folder for the database and clips, e.g. ./data",
    "SORA_BOT_ASSET_BUCKET": "the name of an S3-compatible bucket for clips, e.g. sora-bot-assets (unset: a folder)",
    "SORA_BOT_ASSET_PREFIX": "a prefix for every key in the bucket, e.g. team-a/ (letters, digits, . _ - /)",
    "SORA_BOT_S3_ENDPOINT_URL": "the http(s) endpoint of an S3-compatible service, e.g. https://<account>.r2.cloudflarestorage.com",
    "VIDEO_PROVIDER": "one of " + ", ".join(PROVIDERS),
    "VIDEO_MODEL": "a model id your provider accepts",
    "OPENAI_API_KEY": "an OpenAI (or gateway) API key",
    "OPENAI_BASE_URL": "an http(s) URL ending in /v1",
    "FAL_KEY": "your fal.ai key",
    "FAL_BASE_URL": "an http(s) URL, default https://queue.fal.run",
    "GEMINI_API_KEY": "your Gemini API key",
    "GEMINI_BASE_URL": "an http(s) URL, default https://generativelanguage.googleapis.com",
    "OPENAI_DRAFT_MODEL": "a chat model id the drafting server serves, e.g. gpt-5.4-mini or llama3.2",
    "OPENAI_DRAFT_API": "auto (Responses where the server has it, else Chat Completions), responses or chat",
    "OPENAI_DRAFT_BASE_URL": "the /v1 base of an OpenAI-compatible server, e.g. http://localhost:11434/v1",
    "OPENAI_DRAFT_API_KEY": "the drafting server's API key (any text for a server that needs none)",
    "OPENAI_MODERATION_MODEL": "a moderation model id, e.g. omni-moderation-latest",
    "OPENAI_IMAGE_MODEL": "an image model id, e.g. gpt-image-2",
    "OPENAI_WEBHOOK_SECRET": "the signing secret of your video webhook (starts with whsec_)",
    "SORA_BOT_PUBLIC_URL": "the https address Slack and providers reach this bot at, e.g. https://sora.example.com",
    "FAL_JWKS_URL": "the URL of fal's webhook signing keys (JWKS)",
    "SORA_BOT_PRICES": "provider[:model]=dollars-per-second pairs, e.g. openai:sora-2=0.10,fal=0.05",
    "SORA_BOT_DAILY_BUDGET": "dollars a channel may spend per day, e.g. 25 (unset: no limit)",
    "SORA_BOT_MAX_CONCURRENT": "how many jobs may run at one provider at once, 1 to 100",
    "SORA_BOT_MIN_BEAT_GAP": "seconds between storyboard cards below which the lint warns, 0.5 to 10",
    "SORA_BOT_VOTE_MINUTES": "a whole number of minutes between 1 and 10080 (a week)",
    "SORA_BOT_TIE_GRACE_MINUTES": "a whole number of minutes between 0 and 1440 (a day)",
    "SORA_BOT_TICK_SECONDS": "a number of seconds between 0.1 and 60",
    "SORA_BOT_MAX_CLIP_MB": "the largest clip to download from a provider, in MB, 1 to 1000",
    "SORA_BOT_LOG_LEVEL": "one of DEBUG, INFO, WARNING, ERROR",
    "SORA_BOT_ADMINS": "Slack user ids, comma-separated, e.g. U012AB3CD,U045EF6GH",
    "SORA_BOT_HTTP_THREADS": "how many requests are handled at once, 1 to 64",
    "SORA_BOT_HTTP_TIMEOUT_SECONDS": "whole seconds a connection may send nothing before it is closed, 1 to 300",
    "SORA_BOT_HTTP_MAX_BODY_BYTES": "the largest request body accepted, 65536 to 67108864 (default 2 MiB)",
    "SORA_BOT_HTTP_CONNECTIONS": "how many connections may be open at once, 10 to 10000",
    "SORA_BOT_SHUTDOWN_SECONDS": "seconds a stopping server lets requests in flight finish, 0 to 300",
    "SORA_BOT_MIGRATE_ON_START": "true (serve upgrades an older database as it starts) or false",
}


def _env(name: str) -> Any:
    return Field(default=None, validation_alias=AliasChoices(name))


class Settings(BaseSettings):
    """Read from the environment (and a `.env` file in the working directory, if present)."""

    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", case_sensitive=False, env_ignore_empty=True
    )

    slack_bot_token: SecretStr | None = _env("SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = _env("SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = _env("SLACK_APP_TOKEN")
    slack_api_url: str = Field(
        default="https://slack.com/api/", validation_alias=AliasChoices("SLACK_API_URL")
    )
    database_url: str | None = _env("DATABASE_URL")
    data_dir: Path = Field(default=Path("data"), validation_alias=AliasChoices("SORA_BOT_DATA_DIR"))
    # Clips in an S3-compatible bucket, shared by every replica; unset: a folder in the data dir. Credentials
    # come from boto3's own chain (AWS_ACCESS_KEY_ID…, a profile, an instance role), never from here.
    asset_bucket: str | None = _env("SORA_BOT_ASSET_BUCKET")
    asset_prefix: str = Field(default="", validation_alias=AliasChoices("SORA_BOT_ASSET_PREFIX"))
    s3_endpoint_url: str | None = _env("SORA_BOT_S3_ENDPOINT_URL")
    video_provider: str = Field(default="local", validation_alias=AliasChoices("VIDEO_PROVIDER"))
    video_model: str | None = _env("VIDEO_MODEL")
    openai_api_key: SecretStr | None = _env("OPENAI_API_KEY")
    openai_base_url: str | None = _env("OPENAI_BASE_URL")
    fal_key: SecretStr | None = _env("FAL_KEY")
    fal_base_url: str = Field(default="https://queue.fal.run", validation_alias=AliasChoices("FAL_BASE_URL"))
    gemini_api_key: SecretStr | None = _env("GEMINI_API_KEY")
    gemini_base_url: str = Field(
        default="https://generativelanguage.googleapis.com", validation_alias=AliasChoices("GEMINI_BASE_URL")
    )
    openai_draft_model: str = Field(
        default="gpt-5.4-mini", validation_alias=AliasChoices("OPENAI_DRAFT_MODEL")
    )
    openai_draft_api: Literal["auto", "responses", "chat"] = Field(
        default="auto", validation_alias=AliasChoices("OPENAI_DRAFT_API")
    )
    openai_draft_base_url: str | None = _env("OPENAI_DRAFT_BASE_URL")
    openai_draft_api_key: SecretStr | None = _env("OPENAI_DRAFT_API_KEY")
    openai_moderation_model: str = Field(
        default="omni-moderation-latest", validation_alias=AliasChoices("OPENAI_MODERATION_MODEL")
    )
    openai_image_model: str = Field(
        default="gpt-image-2", validation_alias=AliasChoices("OPENAI_IMAGE_MODEL")
    )
    openai_webhook_secret: SecretStr | None = _env("OPENAI_WEBHOOK_SECRET")
    public_url: str | None = _env("SORA_BOT_PUBLIC_URL")
    fal_jwks_url: str = Field(
        default=FAL_JWKS_URL,
        validation_alias=AliasChoices("FAL_JWKS_URL"),
    )
    prices: str = Field(default="", validation_alias=AliasChoices("SORA_BOT_PRICES"))
    daily_budget: float | None = Field(
        default=None, ge=0, validation_alias=AliasChoices("SORA_BOT_DAILY_BUDGET")
    )
    max_concurrent: int = Field(
        default=4, ge=1, le=100, validation_alias=AliasChoices("SORA_BOT_MAX_CONCURRENT")
    )
    min_beat_gap: float = Field(
        default=1.5, ge=0.5, le=10, validation_alias=AliasChoices("SORA_BOT_MIN_BEAT_GAP")
    )
    vote_minutes: int = Field(
        default=30, ge=1, le=10080, validation_alias=AliasChoices("SORA_BOT_VOTE_MINUTES")
    )
    # A tie the owner has not broken within this many minutes goes to the earliest tied variation.
    tie_grace_minutes: int = Field(
        default=10, ge=0, le=1440, validation_alias=AliasChoices("SORA_BOT_TIE_GRACE_MINUTES")
    )
    tick_seconds: float = Field(
        default=2.0, ge=0.1, le=60, validation_alias=AliasChoices("SORA_BOT_TICK_SECONDS")
    )
    lease_seconds: float = Field(
        default=120.0, ge=1, le=3600, validation_alias=AliasChoices("SORA_BOT_LEASE_SECONDS")
    )
    orphan_audit_seconds: float = Field(
        default=600.0, ge=1, le=86400, validation_alias=AliasChoices("SORA_BOT_ORPHAN_AUDIT_SECONDS")
    )
    max_clip_mb: int = Field(
        default=100, ge=1, le=1000, validation_alias=AliasChoices("SORA_BOT_MAX_CLIP_MB")
    )
    http_threads: int = Field(default=8, ge=1, le=64, validation_alias=AliasChoices("SORA_BOT_HTTP_THREADS"))
    http_timeout_seconds: int = Field(
        default=15, ge=1, le=300, validation_alias=AliasChoices("SORA_BOT_HTTP_TIMEOUT_SECONDS")
    )
    http_max_body_bytes: int = Field(
        default=2 * 1024 * 1024,
        ge=64 * 1024,
        le=64 * 1024 * 1024,
        validation_alias=AliasChoices("SORA_BOT_HTTP_MAX_BODY_BYTES"),
    )
    http_connections: int = Field(
        default=500, ge=10, le=10000, validation_alias=AliasChoices("SORA_BOT_HTTP_CONNECTIONS")
    )
    shutdown_seconds: float = Field(
        default=10.0, ge=0, le=300, validation_alias=AliasChoices("SORA_BOT_SHUTDOWN_SECONDS")
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", validation_alias=AliasChoices("SORA_BOT_LOG_LEVEL")
    )
    # `json`: one object per line (time, level, logger, message, exception) for a log collector.
    log_format: Literal["text", "json"] = Field(
        default="text", validation_alias=AliasChoices("SORA_BOT_LOG_FORMAT")
    )
    # Besides workspace admins and owners, who may change a channel's budget, provider and model.
    admins: str = Field(default="", validation_alias=AliasChoices("SORA_BOT_ADMINS"))
    # An empty database is always created; upgrading one an older release made waits for `sora-bot migrate`
    # (after a backup) unless this says serve may do it.
    migrate_on_start: bool = Field(default=False, validation_alias=AliasChoices("SORA_BOT_MIGRATE_ON_START"))

    @field_validator(
        "slack_api_url",
        "fal_base_url",
        "gemini_base_url",
        "openai_base_url",
        "openai_draft_base_url",
        "public_url",
        "fal_jwks_url",
        "s3_endpoint_url",
    )
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value

    @field_validator("asset_bucket")
    @classmethod
    def _bucket_name(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", value):
            raise ValueError("a bucket name is 3–63 lowercase letters, digits, dots and hyphens")
        return value

    @field_validator("asset_prefix")
    @classmethod
    def _key_prefix(cls, value: str) -> str:
        value = value.strip("/")
        if value and not re.fullmatch(r"[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*", value):
            raise ValueError("use letters, digits, dots, hyphens, underscores and slashes")
        if any(part in (".", "..") for part in value.split("/")):
            raise ValueError("“.” and “..” are not folders in a bucket")
        return f"{value}/" if value else ""

    @field_validator("admins")
    @classmethod
    def _user_ids(cls, value: str) -> str:
        for user_id in value.replace(",", " ").split():
            if not re.fullmatch(r"[UW][A-Z0-9]{2,20}", user_id):
                raise ValueError(f"“{user_id[:24]}” is not a Slack user id")
        return value

    @property
    def admin_ids(self) -> frozenset[str]:
        return frozenset(self.admins.replace(",", " ").split())

    @field_validator("slack_api_url")
    @classmethod
    def _trailing_slash(cls, value: str) -> str:
        return value if value.endswith("/") else value + "/"

    @field_validator("prices")
    @classmethod
    def _price_table(cls, value: str) -> str:
        from bot.pricing import PriceTable

        if value.strip():
            try:
                PriceTable.from_spec(value)
            except ConfigError as err:
                raise ValueError("; ".join(err.problems)) from None
        return value

    @field_validator("video_provider")
    @classmethod
    def _known_provider(cls, value: str) -> str:
        value = value.strip().lower()
        if value not in PROVIDERS:
            raise ValueError(f"unknown provider {value!r}")
        return value

    @field_validator("database_url")
    @classmethod
    def _database_scheme(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if value.startswith("postgres://"):
            value = "postgresql://" + value[len("postgres://") :]
        if value.startswith("postgresql://"):
            value = "postgresql+psycopg://" + value[len("postgresql://") :]
        if not value.startswith(("sqlite://", "postgresql+psycopg://")):
            raise ValueError("unsupported database")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("openai_draft_api", "log_format", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, dotenv_settings)

    # --- derived values -------------------------------------------------------------------------

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'sora-bot.db'}"

    @property
    def socket_mode(self) -> bool:
        return self.slack_app_token is not None

    @property
    def draft_server(self) -> tuple[str | None, str | None]:
        """(api_key, base_url) of the drafting model: its own server when set, else OpenAI's settings.

        A local server (Ollama, LM Studio, vLLM) needs no key, but the client sends one: any text will do.
        """
        if self.openai_draft_base_url:
            return self.secret("openai_draft_api_key") or "unused", self.openai_draft_base_url
        return self.secret("openai_draft_api_key") or self.secret("openai_api_key"), self.openai_base_url

    def secret(self, name: str) -> str | None:
        value = getattr(self, name)
        assert value is None or isinstance(value, SecretStr)
        return None if value is None else value.get_secret_value()

    def serve_problems(self) -> list[str]:
        """What `serve` additionally needs: a bot token, and a signing secret unless in Socket Mode."""
        problems: list[str] = []
        token = self.secret("slack_bot_token")
        if not token:
            problems.append(_describe("SLACK_BOT_TOKEN", "is not set"))
        elif not token.startswith("xoxb-"):
            problems.append(_describe("SLACK_BOT_TOKEN", "does not look like a bot token"))
        app_token = self.secret("slack_app_token")
        if app_token is not None and not app_token.startswith("xapp-"):
            problems.append(_describe("SLACK_APP_TOKEN", "does not look like an app-level token"))
        if not self.socket_mode and not self.secret("slack_signing_secret"):
            problems.append(
                _describe("SLACK_SIGNING_SECRET", "is not set (HTTP mode verifies every request)")
            )
        return problems

    def provider_problems(self) -> list[str]:
        """Keys a configured provider needs: never half-use a provider."""
        needs = {"openai": "openai_api_key", "fal": "fal_key", "veo": "gemini_api_key"}
        key = needs.get(self.video_provider)
        if key is not None and not self.secret(key):
            return [_describe(key.upper(), f"is not set, but VIDEO_PROVIDER is {self.video_provider}")]
        return []


class _IsolatedSettings(Settings):
    """Settings from an explicit mapping only: tests and tools must not pick up the caller's environment."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def _describe(variable: str, problem: str, got: object = None) -> str:
    shown = "" if got is None else f" (got {str(got)[:60]!r})"
    return f"{variable} {problem}{shown}; set it to {_HELP.get(variable, 'a valid value')}."


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from `environ` (only) or, when None, the process environment and `.env`.

    Raises ConfigError listing every malformed variable at once.
    """
    settings, problems = load_settings_reporting(environ)
    if problems:
        raise ConfigError(problems)
    return settings


def load_settings_reporting(environ: Mapping[str, str] | None = None) -> tuple[Settings, list[str]]:
    """Settings with every malformed variable at its default, and what was wrong with each of them.

    For `doctor`: a malformed setting is reported, and everything else is still checked.
    """
    # An empty variable means "not set", as it does for the process environment.
    values: dict[str, Any] = {} if environ is None else {k.upper(): v for k, v in environ.items() if v != ""}
    try:
        return _build(environ is None, values), []
    except ValidationError as err:
        problems: list[str] = []
        for error in err.errors():
            loc = error.get("loc") or ("?",)
            variable = str(loc[0]).upper()
            message = str(error.get("msg", "is invalid")).removeprefix("Value error, ")
            problems.append(_describe(variable, f"is invalid: {message}", error.get("input")))
            field = _FIELD_OF.get(variable)
            if field is not None:  # passed explicitly, the default outranks the environment's bad value
                values[variable] = Settings.model_fields[field].get_default(call_default_factory=True)
        try:
            return _build(environ is None, values), problems
        except ValidationError:
            raise ConfigError(problems) from None


def _build(from_environment: bool, values: dict[str, Any]) -> Settings:
    return Settings(**values) if from_environment else _IsolatedSettings(**values)


def _alias(name: str) -> str:
    alias = Settings.model_fields[name].validation_alias
    return str(alias.choices[0]).upper() if isinstance(alias, AliasChoices) else name.upper()


_FIELD_OF = {_alias(name): name for name in Settings.model_fields}
