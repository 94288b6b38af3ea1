"""Unit tests for bot.replies: thread reply text → command, explained mistake, or silence."""

from __future__ import annotations

import pytest

from bot.domain import GenerationKind
from bot.replies import HELP_TEXT, USAGE, ReplyCommand, ReplyError, Verb, parse_reply

NASTY = [
    "",
    "   ",
    "🎬🎬🎬",
    "<!channel>",
    "remix #99999999999999999999",
    "a" * 5000,
    "recut #1 -",
    "blend ##",
    "\x00",
    "remix #",
    "recut #1 1.2.3-4",
    "extend #1 99999999999999999999999s go",
    "again ####",
    "<@U123|bot>",
    "&amp;lt;",
]


def error(text: str) -> ReplyError:
    parsed = parse_reply(text)
    assert isinstance(parsed, ReplyError), parsed
    return parsed


# --- every verb ------------------------------------------------------------------------------------


def test_reply_remix_two_queues_one_remix_of_variation_two() -> None:
    assert parse_reply("remix #2 make it golden hour") == ReplyCommand(
        verb=Verb.REMIX, numbers=(2,), change="make it golden hour"
    )


def test_reply_remix_reports_its_generation_kind() -> None:
    parsed = parse_reply("remix #2 add rain")
    assert isinstance(parsed, ReplyCommand)
    assert parsed.kind is GenerationKind.REMIX


def test_reply_recut_takes_a_decimal_range_in_seconds() -> None:
    assert parse_reply("recut #1 1.5-4") == ReplyCommand(verb=Verb.RECUT, numbers=(1,), start=1.5, end=4.0)


def test_reply_recut_accepts_seconds_suffixes_and_dashes() -> None:
    expected = ReplyCommand(verb=Verb.RECUT, numbers=(1,), start=1.5, end=4.0)
    assert parse_reply("recut #1 1.5s-4s") == expected
    assert parse_reply("recut #1 1.5 – 4 s") == expected
    assert parse_reply("recut #1 1.5 to 4") == expected


def test_reply_extend_takes_seconds_and_a_direction() -> None:
    assert parse_reply("extend #1 4s the robot turns to camera") == ReplyCommand(
        verb=Verb.EXTEND, numbers=(1,), change="the robot turns to camera", seconds=4
    )


def test_reply_extend_without_seconds_or_direction_continues_naturally() -> None:
    assert parse_reply("extend #3") == ReplyCommand(verb=Verb.EXTEND, numbers=(3,))
    assert parse_reply("extend #3 the robot waves") == ReplyCommand(
        verb=Verb.EXTEND, numbers=(3,), change="the robot waves"
    )


def test_reply_loop_names_one_variation() -> None:
    assert parse_reply("loop #3") == ReplyCommand(verb=Verb.LOOP, numbers=(3,))


def test_reply_blend_names_two_variations_in_order() -> None:
    assert parse_reply("blend #1 #3") == ReplyCommand(verb=Verb.BLEND, numbers=(1, 3))
    assert parse_reply("blend #3 and #1") == ReplyCommand(verb=Verb.BLEND, numbers=(3, 1))


def test_reply_again_alone_rerolls_and_again_with_a_number_rerolls_that_one() -> None:
    assert parse_reply("again") == ReplyCommand(verb=Verb.AGAIN)
    assert parse_reply("Again!") == ReplyCommand(verb=Verb.AGAIN)
    assert parse_reply("again #2") == ReplyCommand(verb=Verb.AGAIN, numbers=(2,))


def test_reply_pick_names_the_winner_and_keeps_the_reason() -> None:
    assert parse_reply("pick #2") == ReplyCommand(verb=Verb.PICK, numbers=(2,))
    assert parse_reply("pick #2 - the light is best") == ReplyCommand(
        verb=Verb.PICK, numbers=(2,), change="the light is best"
    )


def test_reply_pick_and_help_create_no_generation() -> None:
    assert Verb.PICK.kind is None
    assert Verb.HELP.kind is None


def test_reply_help_alone_asks_for_help() -> None:
    assert parse_reply("help") == ReplyCommand(verb=Verb.HELP)
    assert parse_reply("help?") == ReplyCommand(verb=Verb.HELP)


def test_help_text_lists_every_verb() -> None:
    for verb in Verb:
        assert f"`{verb.value}" in HELP_TEXT
    assert set(USAGE) == set(Verb)


# --- tolerance -------------------------------------------------------------------------------------


def test_reply_verbs_are_case_insensitive() -> None:
    assert parse_reply("REMIX #2 add rain") == ReplyCommand(verb=Verb.REMIX, numbers=(2,), change="add rain")


def test_reply_tolerates_a_leading_bot_mention() -> None:
    assert parse_reply("<@UBOT> remix #2 add rain") == ReplyCommand(
        verb=Verb.REMIX, numbers=(2,), change="add rain"
    )
    assert parse_reply("<@UBOT|sora>: loop #1") == ReplyCommand(verb=Verb.LOOP, numbers=(1,))


def test_reply_unescapes_slack_entities_in_the_change() -> None:
    parsed = parse_reply("remix #2 rain &amp; fog &lt;heavy&gt;")
    assert isinstance(parsed, ReplyCommand)
    assert parsed.change == "rain & fog <heavy>"


def test_reply_tolerates_no_space_before_the_number_and_extra_spaces() -> None:
    assert parse_reply("remix#2   add   rain") == ReplyCommand(
        verb=Verb.REMIX, numbers=(2,), change="add rain"
    )


# --- ordinary chat stays silent --------------------------------------------------------------------


def test_ordinary_chat_is_not_for_the_bot() -> None:
    for text in [
        "nice one!",
        "I like #2",
        "#2 is the best",
        "love the remix #2 though",
        "again, I think #2 wins",
        "help me understand the lighting",
        "loop me in when it's done",
        "extend the deadline?",
        "pick whichever you like",
        "blending these would be cool",
        "remixing is fun",
        "<@UBOT> thanks!",
        "",
    ]:
        assert parse_reply(text) is None, text


def test_a_mention_makes_a_chatty_verb_a_command() -> None:
    assert parse_reply("<@UBOT> help me") == ReplyCommand(verb=Verb.HELP)


# --- every ReplyError ------------------------------------------------------------------------------


def test_reply_remix_without_a_number_explains_itself() -> None:
    problem = error("remix make it golden hour")
    assert problem.verb is Verb.REMIX
    assert "#2" in problem.message
    assert "remix #2" in problem.hint


def test_reply_remix_without_a_change_asks_what_should_change() -> None:
    problem = error("remix #2")
    assert "What should change in #2" in problem.message


def test_reply_remix_of_two_variations_is_refused() -> None:
    assert "one variation at a time" in error("remix #1 #2 add rain").message


def test_reply_recut_with_end_before_start_is_refused() -> None:
    problem = error("recut #1 4-2")
    assert "must come after the start" in problem.message
    assert "recut #1 1.5-4" in problem.hint


def test_reply_recut_without_a_range_is_refused() -> None:
    assert "start and end" in error("recut #1").message
    assert "start and end" in error("recut #1 -").message


def test_reply_recut_with_absurd_times_is_refused() -> None:
    assert "longer than any clip" in error("recut #1 0-100000").message


def test_reply_extend_with_fractional_or_absurd_seconds_is_refused() -> None:
    assert "whole seconds" in error("extend #1 2.5s keep going").message
    assert "whole seconds" in error("extend #1 90s keep going").message


def test_reply_blend_with_one_variation_is_refused() -> None:
    problem = error("blend #1")
    assert "exactly two" in problem.message
    assert "blend #1 #3" in problem.hint


def test_reply_blend_of_a_variation_with_itself_is_refused() -> None:
    assert "two different" in error("blend #2 #2").message


def test_reply_blend_with_bare_hashes_is_refused() -> None:
    assert "`#` and a number" in error("blend ##").message


def test_reply_variation_zero_is_refused() -> None:
    assert "from #1" in error("remix #0 add rain").message
    assert "from #1" in error("pick #0").message


def test_reply_absurd_variation_numbers_are_refused_without_echoing_them_whole() -> None:
    problem = error("remix #99999999999999999999 add rain")
    assert "no variation" in problem.message
    assert "99999999999999999999" not in problem.message
    assert "no variation #1000" in error("loop #1000").message


def test_reply_pick_without_a_number_is_refused() -> None:
    assert "needs a number" in error("pick 2").message


def test_reply_loop_of_two_variations_is_refused() -> None:
    assert "one variation at a time" in error("loop #1 #2").message


def test_reply_again_of_two_variations_is_refused() -> None:
    assert "one variation at a time" in error("again #1 #2").message


def test_reply_parser_never_raises_on_nasty_strings() -> None:
    for text in NASTY:
        parsed = parse_reply(text)
        assert parsed is None or isinstance(parsed, ReplyCommand | ReplyError), text


@pytest.mark.parametrize(
    "text",
    [
        "pick #١",
        "remix #² make it red",
        "recut #1 ²-3",
        "loop #٣",
        "extend #1 1e9s the robot turns",
        "extend #1 ²s",
    ],
)
def test_numbers_are_ascii_digits_and_an_unreadable_one_is_refused_not_guessed(text: str) -> None:
    assert isinstance(parse_reply(text), ReplyError), text


def test_a_change_or_direction_over_the_cap_is_refused_before_anything_is_charged() -> None:
    long = "make it red " * 60
    for text in (f"remix #1 {long}", f"extend #1 4s {long}"):
        refused = parse_reply(text)
        assert isinstance(refused, ReplyError) and "400 characters" in refused.message, text
    assert isinstance(parse_reply("remix #1 " + "x" * 400), ReplyCommand)
