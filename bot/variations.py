"""Variations: every reply verb in a round's thread (remix, again, recut, extend, loop, blend, pick, help) and
every button on a variation's message becomes one command, and each new generation is linked to its parent
through one factory.

A thread holds its rounds one after another: `#N` names a variation of any of them, and new work goes into the
thread's open round, or opens the next one once the last has closed."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from bot import media, prompts, replies, safety
from bot.assets import discard, finished_clip, last_frame_key
from bot.channels import Channels
from bot.domain import GenerationKind, PromptSpec
from bot.errors import InvalidInput, NotFound
from bot.ports import AssetStore, Clock
from bot.posting import Posting
from bot.rounds import Rounds, distinct_seeds, numbers_hint
from bot.views import Outcome, thread_generations, thread_rounds
from storage.models import Generation, Round
from storage.store import Repo, Store

log = logging.getLogger(__name__)

EDIT_PROVIDER = "edit"  # the internal provider that makes recuts, loops and blends from finished clips


@dataclass(frozen=True)
class Target:
    """A finished variation a button acts on: its number and its clip's real length in seconds."""

    generation_id: int
    number: int
    length: float


@dataclass(frozen=True)
class NewVariation:
    """What a reply asks for: everything of the new generation that is not copied from its parent."""

    kind: GenerationKind
    spec: PromptSpec
    prompt: str
    seconds: int
    change: str | None = None
    provider: str | None = None  # None: the parent's
    reference_path: str | None = None
    source_paths: tuple[str, ...] = ()
    edit_start: float | None = None
    edit_end: float | None = None


class Variations:
    def __init__(
        self,
        *,
        store: Store,
        channels: Channels,
        rounds: Rounds,
        posting: Posting,
        assets: AssetStore,
        clock: Clock,
    ) -> None:
        self.store = store
        self.channels = channels
        self.rounds = rounds
        self.posting = posting
        self.assets = assets
        self.clock = clock

    def handle_reply(self, *, channel_id: str, thread_ts: str, user_id: str, text: str) -> Outcome:
        """A reply in a round's thread. Ordinary conversation is left alone; commands act or explain."""
        parsed = replies.parse_reply(text)
        if parsed is None:
            return Outcome(False)
        with self.store.read() as repo:
            rounds = repo.rounds.in_thread(channel_id, thread_ts)
            if not rounds or rounds[-1].id is None:
                return Outcome(False)
            round_id = rounds[-1].id
            generations = thread_generations(repo, rounds)
        if isinstance(parsed, replies.ReplyError):
            return Outcome(False, f"{parsed.message} {parsed.hint}".strip())
        return self._perform(round_id, generations, parsed, actor=user_id)

    def handle_button(self, generation_id: int, command: replies.ReplyCommand, *, actor: str) -> Outcome:
        """A variation's button or modal: the reply's own command, on that variation, down the same path."""
        with self.store.read() as repo:
            target = repo.generations.get(generation_id)
            if target is None:
                raise NotFound("That variation no longer exists.")
            round_id = target.round_id
            round_row = repo.rounds.get(round_id)
            if round_row is None:
                raise NotFound("That round no longer exists.")
            generations = thread_generations(repo, thread_rounds(repo, round_row))
        command = replace(command, numbers=(target.number, *command.numbers[1:]))
        return self._perform(round_id, generations, command, actor=actor)

    def target(self, generation_id: int) -> Target:
        """What a variation's modal shows and checks: its number and its clip's length."""
        with self.store.read() as repo:
            row = repo.generations.get(generation_id)
            if row is None or row.id is None:
                raise NotFound("That variation no longer exists.")
        if not row.asset_path:
            raise InvalidInput(f"#{row.number} has no finished clip yet; try again once it is posted.")
        if row.clip_seconds:  # measured when it finished: no download on a modal's 3-second path
            return Target(generation_id=row.id, number=row.number, length=row.clip_seconds)
        clip = finished_clip(self.assets, row)
        if clip is None:
            raise InvalidInput(f"#{row.number} has no finished clip yet; try again once it is posted.")
        length = media.probe(clip).duration
        return Target(generation_id=row.id, number=row.number, length=length)

    def _perform(
        self, round_id: int, generations: list[Generation], command: replies.ReplyCommand, *, actor: str
    ) -> Outcome:
        """One command, from a reply or a button, in `round_id`'s thread (`generations`: every round's there):
        pick, on the round holding #N, or one new variation."""
        if command.verb == replies.Verb.HELP:
            return Outcome(True, replies.HELP_TEXT)
        if command.verb == replies.Verb.PICK:
            picked = self._find(generations, command.numbers[0])
            return self.rounds.close_round(
                picked.round_id, actor=actor, pick=picked.number, reason=command.change
            )
        if command.verb == replies.Verb.AGAIN and not command.numbers:
            # A bare `again` re-rolls the thread's own prompt (#1's), unlinked: it is a sibling, not a child.
            parent = generations[0] if generations else None
            if parent is None:
                raise NotFound("This thread has no variations yet.")
            new = NewVariation(
                kind=GenerationKind.AGAIN,
                spec=PromptSpec.from_dict(parent.spec),
                prompt=parent.prompt,
                seconds=parent.seconds,
            )
            return self._add(round_id, actor=actor, parent=parent, new=new, linked=False)
        sources = [self._find(generations, n) for n in command.numbers]
        parent = sources[0]
        if command.verb == replies.Verb.REMIX:
            assert command.change is not None
            spec = prompts.apply_change(PromptSpec.from_dict(parent.spec), command.change)
            _preflight(spec, what="That remix")
            new = NewVariation(
                kind=GenerationKind.REMIX,
                spec=spec,
                prompt=prompts.render(spec, seconds=parent.seconds),
                seconds=parent.seconds,
                change=command.change,
            )
        elif command.verb == replies.Verb.AGAIN:
            new = NewVariation(
                kind=GenerationKind.AGAIN,
                spec=PromptSpec.from_dict(parent.spec),
                prompt=parent.prompt,
                seconds=parent.seconds,
            )
        else:
            new = self._edit(command, sources)
        return self._add(round_id, actor=actor, parent=parent, new=new)

    def _edit(self, command: replies.ReplyCommand, sources: list[Generation]) -> NewVariation:
        """recut, loop, blend (media operations on finished clips, at the internal edit provider) and extend
        (a continuation from the last frame at the source's provider, joined on when it is done)."""
        kind = command.kind
        assert kind is not None
        clips = []
        for source in sources:
            clip = finished_clip(self.assets, source)
            if clip is None:
                raise InvalidInput(f"#{source.number} has no finished clip yet; try again once it is posted.")
            clips.append(clip)
        first, first_clip = sources[0], clips[0]
        assert first.id is not None
        spec = PromptSpec.from_dict(first.spec)
        # The rows keep asset keys, not this process's copies: whichever replica makes the edit fetches them.
        paths = tuple(s.asset_path for s in sources if s.asset_path)
        if kind == GenerationKind.RECUT:
            assert command.start is not None and command.end is not None
            length = media.probe(first_clip).duration
            if command.end > length + 0.05:
                raise InvalidInput(
                    f"#{first.number} is only {length:.1f} s long; recut within 0–{length:.1f} s."
                )
            return NewVariation(
                kind=kind,
                spec=spec,
                prompt=first.prompt,
                seconds=max(1, round(command.end - command.start)),
                change=f"{command.start:g}–{command.end:g} s",
                provider=EDIT_PROVIDER,
                source_paths=paths,
                edit_start=command.start,
                edit_end=command.end,
            )
        if kind == GenerationKind.LOOP:
            return NewVariation(
                kind=kind,
                spec=spec,
                prompt=first.prompt,
                seconds=first.seconds,
                change="seamless loop",
                provider=EDIT_PROVIDER,
                source_paths=paths,
            )
        if kind == GenerationKind.BLEND:
            return NewVariation(
                kind=kind,
                spec=spec,
                prompt=first.prompt,
                seconds=first.seconds + sources[1].seconds - 1,
                change=f"crossfade into #{sources[1].number}",
                provider=EDIT_PROVIDER,
                source_paths=paths,
            )
        text = command.change or "the same shot continues for a moment"
        spec = replace(spec, action=text, beats=())
        _preflight(spec, what="That extension")
        seconds = command.seconds or 4
        frame = self.assets.scratch("last-frame.png")
        try:
            media.last_frame(first_clip, frame)
        except media.MediaError:
            discard(frame)
            raise
        reference = last_frame_key(first.round_id, first.number)
        self.assets.put(reference, frame)
        return NewVariation(
            kind=kind,
            spec=spec,
            prompt=prompts.render(spec, seconds=seconds),
            seconds=seconds,
            change=f"+{seconds} s: {text}",
            reference_path=reference,
            source_paths=paths,
        )

    def _add(
        self, round_id: int, *, actor: str, parent: Generation, new: NewVariation, linked: bool = True
    ) -> Outcome:
        """The one factory: the round it goes into (the thread's open round, or the next round, opened now: a
        closed round and its winner stay as they were), charge, add the next #N of the thread, ask the outbox
        for its message. Everything in one transaction."""
        provider = new.provider or parent.provider
        model = parent.model if provider == parent.provider else None
        with self.store.transaction() as repo:
            work = self.rounds.round_for_work(repo, round_id)
            round_row = work.round
            assert round_row.id is not None
            charged = self._charge(
                repo, round_row, actor=actor, provider=provider, model=model, seconds=new.seconds
            )
            row = repo.generations.add_to_round(
                Generation(
                    round_id=round_row.id,
                    parent_id=parent.id if linked else None,
                    number=0,
                    kind=new.kind.value,
                    requested_by=actor,
                    spec=new.spec.as_dict(),
                    prompt=new.prompt,
                    change=new.change,
                    seconds=new.seconds,
                    aspect=parent.aspect,
                    provider=provider,
                    model=model,
                    reference_path=new.reference_path
                    or (parent.reference_path if provider != EDIT_PROVIDER else None),
                    seed=distinct_seeds(1)[0],
                    source_paths=list(new.source_paths),
                    edit_start=new.edit_start,
                    edit_end=new.edit_end,
                    charged=charged,
                    created_at=self.clock.now(),
                ),
                after=work.earlier,
            )
            assert row.id is not None
            self.posting.variation_added(repo, round_row.id, row.id)
            target_id, number = round_row.id, row.number
        self.posting.deliver_soon(target_id)
        self.rounds.wake()
        if not work.opened:
            return Outcome(True)
        return Outcome(
            True,
            f"#{number} opens round {work.place} in this thread, with its own vote: "
            f"round {work.place - 1} and its result stay as they were.",
        )

    def _charge(
        self, repo: Repo, round_row: Round, *, actor: str, provider: str, model: str | None, seconds: int
    ) -> float:
        """Charge the channel for one new variation; the round's cost so far grows by it. Returns the charge."""
        assert round_row.id is not None
        defaults = self.channels.defaults_in(repo, round_row.channel_id)
        total, _ = self.channels.estimate(provider, model, seconds=seconds, variations=1)
        self.channels.charge(
            repo,
            defaults,
            team_id=round_row.team_id,
            user_id=actor,
            amount=total,
            round_id=round_row.id,
            provider=provider,
            model=model,
            seconds=seconds,
        )
        repo.rounds.add_cost(round_row.id, total)
        return total

    @staticmethod
    def _find(generations: list[Generation], number: int) -> Generation:
        found = next((g for g in generations if g.number == number), None)
        if found is None or found.id is None:
            raise NotFound(
                f"There is no variation #{number} in this thread.",
                hint=numbers_hint(generations, where="thread"),
            )
        return found


def _preflight(spec: PromptSpec, *, what: str) -> None:
    # The local rules only: a slow moderation call does not belong on a reply's path.
    blocked = safety.check(spec).blocking
    if blocked:
        raise InvalidInput(
            f"{what} was not started: the safety check blocks it ({blocked[0].rule}). {blocked[0].message}",
            hint=f"Try: “{blocked[0].safer}”",
        )
