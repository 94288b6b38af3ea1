"""Unit tests for bot.commands: `/sora` text → a typed command or a CommandError."""

from __future__ import annotations

from bot.commands import (
    MAX_IDEA_CHARS,
    SUBCOMMANDS,
    CommandError,
    DraftCommand,
    HelpCommand,
    RecallCommand,
    SettingsCommand,
    StatusCommand,
    StoryboardCommand,
    parse_command,
)
from bot.prompts import Goal

NASTY = [
    "",
    "   ",
    "🎬🎬🎬",
    "<!channel>",
    "&lt;!channel&gt;",
    "remix #99999999999999999999",
    "a" * 5000,
    "draft " + "a" * 5000,
    "recut #1 -",
    "blend ##",
    "\x00",
    "draft --goal",
    "draft --goal=",
    'draft --goal "',
    "draft —goal “social",
    ":",
]


def error(text: str) -> CommandError:
    parsed = parse_command(text)
    assert isinstance(parsed, CommandError), parsed
    return parsed


def test_empty_text_asks_for_help() -> None:
    assert parse_command("") == HelpCommand()
    assert parse_command("   ") == HelpCommand()


def test_help_status_settings_and_storyboard_parse() -> None:
    assert parse_command("help") == HelpCommand()
    assert parse_command("status") == StatusCommand()
    assert parse_command("settings") == SettingsCommand()
    assert parse_command("settings vote=30 blind=on budget=$25 goal=social model=default provider=fal") == (
        SettingsCommand(
            changes=(
                ("vote", 30),
                ("blind", True),
                ("budget", 25.0),
                ("goal", Goal.SOCIAL_TEASER),
                ("model", None),
                ("provider", "fal"),
            )
        )
    )
    assert parse_command("settings budget=none blind=off") == SettingsCommand(
        changes=(("budget", None), ("blind", False))
    )
    assert parse_command("storyboard 0 establish | 2 push-in") == StoryboardCommand(
        args="0 establish | 2 push-in"
    )


def test_subcommands_are_case_insensitive() -> None:
    assert parse_command("STATUS") == StatusCommand()
    assert parse_command("Draft A robot waves") == DraftCommand(idea="A robot waves")


def test_draft_takes_the_rest_as_the_idea() -> None:
    assert parse_command("draft a small robot rolls through an alley") == DraftCommand(
        idea="a small robot rolls through an alley"
    )


def test_draft_goal_flag_is_accepted_anywhere_in_both_spellings() -> None:
    expected = DraftCommand(idea="a robot rolls through an alley", goal=Goal.SOCIAL_TEASER)
    assert parse_command("draft --goal social a robot rolls through an alley") == expected
    assert parse_command("draft a robot rolls through an alley --goal=social") == expected
    assert parse_command("draft a robot --goal social_teaser rolls through an alley") == expected


def test_draft_goal_flag_survives_slack_turning_dashes_into_an_em_dash() -> None:
    assert parse_command("draft —goal hero a red sneaker rotates") == DraftCommand(
        idea="a red sneaker rotates", goal=Goal.PRODUCT_HERO
    )


def test_draft_goal_flag_accepts_a_quoted_name() -> None:
    assert parse_command('draft --goal "style study" a teapot steams') == DraftCommand(
        idea="a teapot steams", goal=Goal.STYLE_STUDY
    )


def test_draft_unescapes_slack_entities() -> None:
    assert parse_command("draft a robot &lt;3 rain &amp; neon &gt; sunsets") == DraftCommand(
        idea="a robot <3 rain & neon > sunsets"
    )


def test_draft_without_an_idea_explains_with_an_example() -> None:
    for text in ("draft", "draft   ", "draft --goal social"):
        problem = error(text)
        assert "needs an idea" in problem.message
        assert "/sora draft" in problem.hint


def test_draft_with_an_unknown_goal_lists_the_valid_goals() -> None:
    problem = error("draft --goal banana a robot waves")
    assert "Unknown goal `banana`" in problem.message
    for goal in Goal:
        assert goal.value in problem.hint


def test_draft_goal_flag_without_a_value_is_refused() -> None:
    assert "needs a value" in error("draft a robot waves --goal").message


def test_draft_idea_over_the_limit_says_how_long_it_is_and_the_limit() -> None:
    problem = error("draft " + "a" * 4001)
    assert "4,001 characters" in problem.message
    assert f"{MAX_IDEA_CHARS:,}" in problem.message
    assert MAX_IDEA_CHARS == 4000


def test_draft_idea_at_the_limit_is_accepted() -> None:
    assert parse_command("draft " + "a" * MAX_IDEA_CHARS) == DraftCommand(idea="a" * MAX_IDEA_CHARS)


def test_draft_idea_just_over_the_limit_is_refused() -> None:
    assert "4,001 characters" in error("draft " + "a" * (MAX_IDEA_CHARS + 1)).message


def test_recall_takes_the_rest_as_the_query() -> None:
    assert parse_command("recall neon   robot") == RecallCommand(query="neon robot")


def test_recall_without_a_query_is_refused() -> None:
    problem = error("recall")
    assert "needs something to look for" in problem.message
    assert "/sora recall" in problem.hint


def test_unknown_subcommand_suggests_the_closest_one_and_lists_them_all() -> None:
    problem = error("drfat a robot")
    assert "Did you mean `draft`?" in problem.message
    for name in SUBCOMMANDS:
        assert name in problem.hint


def test_unknown_subcommand_far_from_any_lists_them_and_shows_how_to_draft() -> None:
    problem = error("a robot rolls through an alley")
    assert "Did you mean" not in problem.message
    assert "/sora draft" in problem.hint


def test_errors_never_echo_slack_control_tokens() -> None:
    for text in ("&lt;!channel&gt; hi", "draft --goal &lt;!here&gt; a robot", "<@U123> hi"):
        problem = error(text)
        assert "<" not in problem.message and ">" not in problem.message


def test_command_parser_never_raises_on_nasty_strings() -> None:
    for text in NASTY:
        parse_command(text)


def test_settings_mistakes_name_the_key_and_what_it_takes() -> None:
    for text, needle in (
        ("settings vote 30m blind", "needs a value"),
        ("settings vote=abc", "`vote=abc` is not valid"),
        ("settings vote=0", "not valid"),
        ("settings colour=red", "Unknown setting `colour`"),
        ("settings budget=lots", "not valid"),
        ("settings goal=opera", "not valid"),
    ):
        result = parse_command(text)
        assert isinstance(result, CommandError) and needle in result.message, text


def test_draft_takes_a_provider_flag() -> None:
    assert parse_command("draft --provider fal --goal ad a cat runs") == DraftCommand(
        idea="a cat runs", goal=Goal.AD_CONCEPT, provider="fal"
    )
    assert isinstance(parse_command("draft --provider"), CommandError)


def test_export_reads_a_round_id_and_a_format_in_either_order_and_nothing_else() -> None:
    from bot.commands import CommandError, ExportCommand, parse_command

    assert parse_command("export") == ExportCommand(None, "md")
    assert parse_command("export 12 csv") == ExportCommand(12, "csv")
    assert parse_command("export JSON #7") == ExportCommand(7, "json")
    assert parse_command("export markdown") == ExportCommand(None, "md")
    for wrong in ("export 12 13", "export csv json", "export ١٢", "export 1e3", "export 12 csv x"):
        assert isinstance(parse_command(wrong), CommandError), wrong
