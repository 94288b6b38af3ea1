"""Core rules through the services: real SQLite, the instant provider, a recording publisher, a frozen clock."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import Core

from bot import media
from bot.errors import InvalidInput, NotAllowed
from bot.views import Outcome, RoundView


def ready_round(core: Core, *, owner: str = "U1") -> tuple[int, list[str]]:
    card = core.services.drafts.create_draft(
        team_id="T", channel_id="C", user_id=owner, idea="a fox runs through snow"
    )
    started = core.services.rounds.start_round(card.draft_id, actor=owner)
    assert started.thread_ts is not None
    core.sweep_until_idle()
    view = core.services.rounds.round_view(started.round_id)
    with core.store.read() as repo:
        ts = [g.message_ts or "" for g in repo.generations.in_round(started.round_id)]
    assert all(v.status == "completed" for v in view.variations)
    return started.round_id, ts


def vote(core: Core, message_ts: str, user_id: str, emoji: str) -> None:
    """A reaction in Slack, and the event that tells the bot of it."""
    core.publisher.react(message_ts, user_id, emoji)
    core.services.ballots.record_vote(channel_id="C", message_ts=message_ts, user_id=user_id, emoji=emoji)


def reply(core: Core, text: str, *, user: str = "U2") -> Outcome:
    thread = core.publisher.of_kind("round")[0].ts
    return core.services.variations.handle_reply(channel_id="C", thread_ts=thread, user_id=user, text=text)


def test_a_tie_waits_for_the_owner_then_goes_to_the_earliest_variation(core: Core) -> None:
    round_id, ts = ready_round(core)
    vote(core, ts[2], "A", "fire")
    vote(core, ts[1], "B", "heart")
    assert core.services.rounds.close_round(round_id, actor="U1").done
    tie = core.publisher.last("winner")
    assert isinstance(tie, RoundView) and tie.status == "tied" and tie.tied == (2, 3)
    assert tie.winner_number is None, "a tie is announced as a tie, not as a win"
    core.clock.advance(minutes=9)
    assert core.services.rounds.close_due() == 0, "the owner still has time to pick"
    core.clock.advance(minutes=2)
    assert core.services.rounds.close_due() == 1
    winner = core.publisher.last("winner")
    assert isinstance(winner, RoundView) and winner.winner_number == 2 and winner.close_reason == "tie_rule"


def test_a_blind_round_hides_votes_until_it_closes(core: Core) -> None:
    core.services.channels.update_settings(
        team_id="T", channel_id="C", user_id="U1", changes=[("blind", True)]
    )
    round_id, ts = ready_round(core)
    with core.store.read() as repo:
        first = next(g for g in repo.generations.in_round(round_id) if g.number == 1)
    assert first.id is not None
    vote(core, ts[0], "A", "+1")  # a reaction: no vote in a blind round
    assert core.services.ballots.cast_ballot(first.id, user_id="B", action_ts="1700000000.000100").done
    view = core.services.rounds.round_view(round_id)
    assert all(v.votes is None for v in view.variations) and view.voters == 1
    core.services.rounds.close_round(round_id, actor="U1")
    assert [v.votes for v in core.services.rounds.round_view(round_id).variations] == [1, 0, 0]


def test_pick_is_for_the_owner_and_names_the_winner(core: Core) -> None:
    round_id, _ = ready_round(core)
    with pytest.raises(NotAllowed):
        reply(core, "pick #3", user="someone")
    reply(core, "pick #3", user="U1")
    assert core.services.rounds.round_view(round_id).winner_number == 3


def test_a_remix_after_close_opens_the_next_round_and_the_closed_one_stays_as_it_was(core: Core) -> None:
    round_id, _ = ready_round(core)
    vote(core, core.publisher.of_kind("variation")[1].ts, "A", "+1")
    core.services.rounds.close_round(round_id, actor="U1")
    outcome = reply(core, "remix #1 at dusk", user="U2")
    assert outcome.done and outcome.message and "opens round 2" in outcome.message
    closed = core.services.rounds.round_view(round_id)
    assert closed.status == "closed" and closed.winner_number == 2 and len(closed.variations) == 3
    assert closed.next_place == 2
    with core.store.read() as repo:
        second = repo.rounds.following(round_id)
    assert second is not None and second.id is not None and second.previous_id == round_id
    view = core.services.rounds.round_view(second.id)
    assert view.status == "open" and view.place == 2
    assert view.previous is not None and (view.previous.place, view.previous.winner_number) == (1, 2)
    [remix] = view.variations
    assert (remix.number, remix.parent_number, remix.change) == (4, 1, "at dusk")
    [posted] = [
        p
        for p in core.publisher.of_kind("round")
        if isinstance(p.view, RoundView) and p.view.round_id == second.id
    ]
    assert posted.thread_ts == core.publisher.of_kind("round")[0].ts, "a reply in the same thread"


def test_again_rerolls_the_draft_without_a_parent_link(core: Core) -> None:
    round_id, _ = ready_round(core)
    reply(core, "again", user="U2")
    view = core.services.rounds.round_view(round_id)
    assert view.variations[3].kind == "again" and view.variations[3].parent_number is None


def clip_of(core: Core, round_id: int, number: int) -> Path:
    with core.store.read() as repo:
        row = next((g for g in repo.generations.in_round(round_id) if g.number == number), None)
    assert row is not None and row.status == "completed" and row.asset_path, row
    return core.services.assets.fetch(row.asset_path)


def test_recut_loop_blend_and_extend_each_add_a_linked_votable_clip_of_the_right_length(
    core: Core,
) -> None:
    round_id, _ = ready_round(core)
    for text in ("recut #1 1-3", "loop #2", "blend #1 #3", "extend #2 2s the fox turns to camera"):
        assert reply(core, text).done, text
    core.sweep_until_idle()
    view = core.services.rounds.round_view(round_id)
    assert [(v.number, v.kind.value, v.parent_number) for v in view.variations[3:]] == [
        (4, "recut", 1),
        (5, "loop", 2),
        (6, "blend", 1),
        (7, "extend", 2),
    ]
    assert media.probe(clip_of(core, round_id, 4)).duration == pytest.approx(2.0, abs=0.1)
    assert media.probe(clip_of(core, round_id, 6)).duration == pytest.approx(7.0, abs=0.2)
    assert media.probe(clip_of(core, round_id, 7)).duration == pytest.approx(6.0, abs=0.2)
    assert media.probe(clip_of(core, round_id, 5)).duration > 2.0
    assert (
        view.variations[3].change == "1–3 s" and view.variations[6].change == "+2 s: the fox turns to camera"
    )


def test_edits_need_a_finished_clip_and_a_range_inside_it(core: Core) -> None:
    round_id, _ = ready_round(core)
    with pytest.raises(InvalidInput, match=r"only 4\.0 s long"):
        reply(core, "recut #1 1-9", user="U2")
    reply(core, "remix #1 at dusk", user="U2")
    with pytest.raises(InvalidInput, match="no finished clip yet"):
        reply(core, "loop #4", user="U2")
    assert len(core.services.rounds.round_view(round_id).variations) == 4


def test_only_the_drafter_can_generate_their_draft(core: Core) -> None:
    card = core.services.drafts.create_draft(team_id="T", channel_id="C", user_id="U1", idea="a fox runs")
    with pytest.raises(NotAllowed):
        core.services.rounds.start_round(card.draft_id, actor="U2")
    with pytest.raises(InvalidInput):
        core.services.drafts.create_draft(team_id="T", channel_id="C", user_id="U1", idea="   ")


def test_a_remix_passes_the_same_safety_check_as_a_draft(core: Core) -> None:
    round_id, _ = ready_round(core)
    with pytest.raises(InvalidInput) as caught:
        reply(core, "remix #1 make it Mickey Mouse", user="U2")
    assert "copyrighted_character" in str(caught.value) and "Try:" in str(caught.value)
    assert len(core.services.rounds.round_view(round_id).variations) == 3, "nothing was added or charged"


def test_a_remix_says_which_prompt_layer_it_changed(core: Core) -> None:
    round_id, _ = ready_round(core)
    reply(core, "remix #1 make it golden hour", user="U2")
    remix = core.services.rounds.round_view(round_id).variations[3]
    assert remix.parent_number == 1 and remix.changed == ("environment",)
    assert core.services.rounds.round_view(round_id).variations[0].changed == ()
