"""Workflow rules with a recording publisher: real SQLite, the local renderer, a frozen clock, no Slack."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bot import media
from bot.assets import LocalAssetStore
from bot.clock import FrozenClock
from bot.domain import RoundView, ThreadRef, VariationView
from bot.errors import InvalidInput, NotAllowed
from bot.providers.edit import EditProvider
from bot.providers.local import LocalProvider
from bot.providers.registry import Providers
from bot.workflow import Workflow
from storage.store import Store


@dataclass
class RecordingPublisher:
    """Keeps what the core said, in order, as plain records."""

    posts: list[tuple[str, object]] = field(default_factory=list)
    told: list[tuple[str, str]] = field(default_factory=list)
    counter: int = 0

    def _ts(self) -> str:
        self.counter += 1
        return f"1.{self.counter:04d}"

    def post_round(self, view: RoundView) -> str:
        self.posts.append(("round", view))
        return self._ts()

    def update_round(self, thread: ThreadRef, view: RoundView) -> None:
        self.posts.append(("round-update", view))

    def post_variation(self, thread: ThreadRef, view: VariationView) -> str:
        self.posts.append(("variation", view))
        return self._ts()

    def update_variation(self, thread: ThreadRef, message_ts: str, view: VariationView) -> None:
        self.posts.append(("variation-update", view))

    def upload_file(self, thread: ThreadRef, path: Path, *, title: str, comment: str) -> str:
        assert path.exists()
        self.posts.append(("file", title))
        return f"F{self._ts()}"

    def announce_winner(self, thread: ThreadRef, view: RoundView) -> str:
        self.posts.append(("winner", view))
        return self._ts()

    def tell_user(self, channel_id: str, user_id: str, text: str, *, thread_ts: str | None = None) -> None:
        self.told.append((user_id, text))

    def last(self, kind: str) -> object:
        return next(record for k, record in reversed(self.posts) if k == kind)


@pytest.fixture
def workflow(tmp_path: Path) -> Workflow:
    store = Store(f"sqlite:///{tmp_path / 'w.db'}")
    store.create_schema()
    return Workflow(
        store=store,
        providers=Providers(
            available={"local": LocalProvider(tmp_path / "render"), "edit": EditProvider(tmp_path / "edits")},
            default="local",
        ),
        publisher=RecordingPublisher(),
        assets=LocalAssetStore(tmp_path / "assets"),
        clock=FrozenClock(),
    )


def publisher(workflow: Workflow) -> RecordingPublisher:
    assert isinstance(workflow.publisher, RecordingPublisher)
    return workflow.publisher


def ready_round(workflow: Workflow, *, owner: str = "U1") -> tuple[int, list[str]]:
    card = workflow.create_draft(team_id="T", channel_id="C", user_id=owner, idea="a fox runs through snow")
    started = workflow.start_round(card.draft_id, actor=owner)
    assert started.thread is not None
    workflow.sweep()
    view = workflow.round_view(started.round_id)
    with workflow.store.read() as repo:
        ts = [g.message_ts or "" for g in repo.generations_in_round(started.round_id)]
    assert all(v.status == "completed" for v in view.variations)
    return started.round_id, ts


def test_a_tie_goes_to_the_earliest_variation(workflow: Workflow) -> None:
    round_id, ts = ready_round(workflow)
    workflow.record_vote(channel_id="C", message_ts=ts[2], user_id="A", emoji="fire")
    workflow.record_vote(channel_id="C", message_ts=ts[1], user_id="B", emoji="heart")
    assert workflow.close_round(round_id, actor="U1").done
    winner = publisher(workflow).last("winner")
    assert isinstance(winner, RoundView) and winner.winner_number == 2


def test_a_blind_round_hides_votes_until_it_closes(workflow: Workflow) -> None:
    round_id, ts = ready_round(workflow)
    with workflow.store.transaction() as repo:
        from storage.models import Round

        row = repo.get(Round, round_id)
        assert row is not None
        row.blind = True
        repo.add(row)
    workflow.record_vote(channel_id="C", message_ts=ts[0], user_id="A", emoji="+1")
    assert all(v.votes is None for v in workflow.round_view(round_id).variations)
    workflow.close_round(round_id, actor="U1")
    assert [v.votes for v in workflow.round_view(round_id).variations] == [1, 0, 0]


def test_pick_is_for_the_owner_and_names_the_winner(workflow: Workflow) -> None:
    round_id, _ = ready_round(workflow)
    with pytest.raises(NotAllowed):
        workflow.handle_reply(channel_id="C", thread_ts="1.0001", user_id="someone", text="pick #3")
    workflow.handle_reply(channel_id="C", thread_ts="1.0001", user_id="U1", text="pick #3")
    assert workflow.round_view(round_id).winner_number == 3


def test_a_remix_after_close_reopens_the_round_for_a_new_vote(workflow: Workflow) -> None:
    round_id, _ = ready_round(workflow)
    workflow.close_round(round_id, actor="U1")
    outcome = workflow.handle_reply(channel_id="C", thread_ts="1.0001", user_id="U2", text="remix #1 at dusk")
    assert outcome.done
    view = workflow.round_view(round_id)
    assert view.status == "open" and len(view.variations) == 4
    assert view.variations[3].parent_number == 1 and view.variations[3].change == "at dusk"


def test_again_rerolls_the_draft_without_a_parent_link(workflow: Workflow) -> None:
    round_id, _ = ready_round(workflow)
    workflow.handle_reply(channel_id="C", thread_ts="1.0001", user_id="U2", text="again")
    view = workflow.round_view(round_id)
    assert view.variations[3].kind == "again" and view.variations[3].parent_number is None


def clip_of(workflow: Workflow, round_id: int, number: int) -> Path:
    with workflow.store.read() as repo:
        row = repo.generation_by_number(round_id, number)
    assert row is not None and row.status == "completed" and row.asset_path, row
    return Path(row.asset_path)


def test_recut_loop_blend_and_extend_each_add_a_linked_votable_clip_of_the_right_length(
    workflow: Workflow,
) -> None:
    round_id, _ = ready_round(workflow)
    for text in ("recut #1 1-3", "loop #2", "blend #1 #3", "extend #2 2s the fox turns to camera"):
        assert workflow.handle_reply(channel_id="C", thread_ts="1.0001", user_id="U2", text=text).done, text
    workflow.sweep()
    view = workflow.round_view(round_id)
    assert [(v.number, v.kind.value, v.parent_number) for v in view.variations[3:]] == [
        (4, "recut", 1),
        (5, "loop", 2),
        (6, "blend", 1),
        (7, "extend", 2),
    ]
    assert media.probe(clip_of(workflow, round_id, 4)).duration == pytest.approx(2.0, abs=0.1)
    assert media.probe(clip_of(workflow, round_id, 6)).duration == pytest.approx(7.0, abs=0.2)
    assert media.probe(clip_of(workflow, round_id, 7)).duration == pytest.approx(6.0, abs=0.2)
    assert media.probe(clip_of(workflow, round_id, 5)).duration > 2.0
    assert (
        view.variations[3].change == "1–3 s" and view.variations[6].change == "+2 s: the fox turns to camera"
    )


def test_edits_need_a_finished_clip_and_a_range_inside_it(workflow: Workflow) -> None:
    round_id, _ = ready_round(workflow)
    with pytest.raises(InvalidInput, match=r"only 4\.0 s long"):
        workflow.handle_reply(channel_id="C", thread_ts="1.0001", user_id="U2", text="recut #1 1-9")
    workflow.handle_reply(channel_id="C", thread_ts="1.0001", user_id="U2", text="remix #1 at dusk")
    with pytest.raises(InvalidInput, match="no finished clip yet"):
        workflow.handle_reply(channel_id="C", thread_ts="1.0001", user_id="U2", text="loop #4")
    assert len(workflow.round_view(round_id).variations) == 4


def test_only_the_drafter_can_generate_their_draft(workflow: Workflow) -> None:
    card = workflow.create_draft(team_id="T", channel_id="C", user_id="U1", idea="a fox runs")
    with pytest.raises(NotAllowed):
        workflow.start_round(card.draft_id, actor="U2")
    with pytest.raises(InvalidInput):
        workflow.create_draft(team_id="T", channel_id="C", user_id="U1", idea="   ")


def test_a_remix_passes_the_same_safety_check_as_a_draft(workflow: Workflow) -> None:
    round_id, _ = ready_round(workflow)
    with pytest.raises(InvalidInput) as caught:
        workflow.handle_reply(
            channel_id="C", thread_ts="1.0001", user_id="U2", text="remix #1 make it Mickey Mouse"
        )
    assert "copyrighted_character" in str(caught.value) and "Try:" in str(caught.value)
    assert len(workflow.round_view(round_id).variations) == 3, "nothing was added or charged"


def test_a_remix_says_which_prompt_layer_it_changed(workflow: Workflow) -> None:
    round_id, _ = ready_round(workflow)
    workflow.handle_reply(
        channel_id="C", thread_ts="1.0001", user_id="U2", text="remix #1 make it golden hour"
    )
    remix = workflow.round_view(round_id).variations[3]
    assert remix.parent_number == 1 and remix.changed == ("environment",)
    assert workflow.round_view(round_id).variations[0].changed == ()
