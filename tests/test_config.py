"""Settings: defaults, and every problem reported at once in plain words."""

from __future__ import annotations

import pytest

from bot.config import load_settings, load_settings_reporting
from bot.errors import ConfigError


def test_defaults_need_no_environment_at_all() -> None:
    settings = load_settings({})
    assert settings.video_provider == "local"
    assert settings.resolved_database_url.startswith("sqlite:///") and settings.slack_api_url.endswith(
        "/api/"
    )


def test_every_malformed_setting_is_reported_at_once_with_what_to_set() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(
            {
                "VIDEO_PROVIDER": "sora",
                "SLACK_API_URL": "slack.com/api",
                "SORA_BOT_VOTE_MINUTES": "soon",
                "DATABASE_URL": "mysql://db",
            }
        )
    text = str(caught.value)
    assert len(caught.value.problems) == 4
    for variable in ("VIDEO_PROVIDER", "SLACK_API_URL", "SORA_BOT_VOTE_MINUTES", "DATABASE_URL"):
        assert variable in text
    assert "one of local, openai, fal, veo" in text and "Traceback" not in text


def test_serving_needs_a_bot_token_and_in_http_mode_a_signing_secret() -> None:
    problems = load_settings({}).serve_problems()
    assert any("SLACK_BOT_TOKEN" in p for p in problems) and any(
        "SLACK_SIGNING_SECRET" in p for p in problems
    )
    socket = load_settings({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1"})
    assert socket.socket_mode and socket.serve_problems() == []
    assert "does not look like a bot token" in load_settings({"SLACK_BOT_TOKEN": "abc"}).serve_problems()[0]


def test_a_hosted_provider_without_its_key_is_refused_by_name() -> None:
    assert "FAL_KEY" in load_settings({"VIDEO_PROVIDER": "fal"}).provider_problems()[0]


def test_postgres_urls_get_the_installed_driver() -> None:
    settings = load_settings({"DATABASE_URL": "postgres://u@h/db"})
    assert settings.resolved_database_url == "postgresql+psycopg://u@h/db"


def test_the_drafting_api_is_auto_by_default_and_a_wrong_one_is_named() -> None:
    assert load_settings({}).openai_draft_api == "auto"
    assert load_settings({"OPENAI_DRAFT_API": " Chat "}).openai_draft_api == "chat"
    with pytest.raises(ConfigError) as caught:
        load_settings({"OPENAI_DRAFT_API": "completions"})
    assert "OPENAI_DRAFT_API" in str(caught.value) and "auto" in str(caught.value)


def test_the_drafter_uses_its_own_server_when_set_and_openais_settings_otherwise() -> None:
    assert load_settings({}).draft_server == (None, None)
    shared = load_settings({"OPENAI_API_KEY": "sk-1", "OPENAI_BASE_URL": "https://gw.example/v1"})
    assert shared.draft_server == ("sk-1", "https://gw.example/v1")
    local = load_settings({"OPENAI_API_KEY": "sk-1", "OPENAI_DRAFT_BASE_URL": "http://localhost:11434/v1"})
    assert local.draft_server == ("unused", "http://localhost:11434/v1")
    keyed = load_settings({"OPENAI_DRAFT_BASE_URL": "https://llm.example/v1", "OPENAI_DRAFT_API_KEY": "k-2"})
    assert keyed.draft_server == ("k-2", "https://llm.example/v1")
    with pytest.raises(ConfigError, match="OPENAI_DRAFT_BASE_URL"):
        load_settings({"OPENAI_DRAFT_BASE_URL": "localhost:11434"})


def test_doctor_gets_every_malformed_setting_and_the_rest_of_the_settings_still_read() -> None:
    settings, problems = load_settings_reporting(
        {"VIDEO_PROVIDER": "sora", "SORA_BOT_VOTE_MINUTES": "soon", "SLACK_BOT_TOKEN": "xoxb-1"}
    )
    assert len(problems) == 2 and "VIDEO_PROVIDER" in problems[0] and "SORA_BOT_VOTE_MINUTES" in problems[1]
    assert settings.video_provider == "local" and settings.vote_minutes == 30, "malformed ones fall back"
    assert settings.secret("slack_bot_token") == "xoxb-1"
    assert load_settings_reporting({})[1] == []
