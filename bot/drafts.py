"""Drafts: an idea becomes a structured, checked, priced prompt — created, storyboarded, edited, re-goaled,
given a reference image or keyframe, or cancelled. Nothing here spends money."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from bot import media, prompts, safety, storyboard, views
from bot.assets import reference_key
from bot.channels import Channels
from bot.domain import Aspect, Beat, PromptSpec
from bot.drafting import Drafter, OfflineDrafter
from bot.errors import AssetMissing, FieldErrors, InvalidInput, NotAllowed, NotFound
from bot.keyframes import KeyframeMaker
from bot.ports import AssetStore, Clock
from bot.providers.registry import Providers
from bot.tuning import MAX_SECONDS, MAX_VARIATIONS, MIN_SECONDS, MIN_VARIATIONS, CoreSettings
from bot.views import DraftCard, Outcome
from storage.models import Draft
from storage.store import Repo, Store

log = logging.getLogger(__name__)

MAX_FIELD_CHARS = 400
MAX_STORYBOARD_IDEA_CHARS = 1000  # the subject and look; the beats carry the rest


@dataclass(frozen=True)
class DraftEdit:
    """The edit modal's fields, as typed (validated by `update_draft`)."""

    subject: str
    action: str
    camera: str
    environment: str
    finish: str
    intent: str
    aspect: str
    seconds: str
    variations: str
    provider: str | None = None
    goal: str | None = None


class Drafts:
    def __init__(
        self,
        *,
        store: Store,
        channels: Channels,
        providers: Providers,
        assets: AssetStore,
        clock: Clock,
        settings: CoreSettings,
        drafter: Drafter | None = None,
        moderation: safety.ModerationCheck | None = None,
        keyframes: KeyframeMaker | None = None,
    ) -> None:
        self.store = store
        self.channels = channels
        self.providers = providers
        self.assets = assets
        self.clock = clock
        self.settings = settings
        self.drafter: Drafter = drafter or OfflineDrafter()
        self.moderation = moderation
        self.keyframes = keyframes

    def card_for(self, row: Draft) -> DraftCard:
        total, summary = self.channels.estimate(
            row.provider, row.model, seconds=row.seconds, variations=row.variations
        )
        return views.draft_card(row, estimated_cost=total, estimate_summary=summary)

    _card = card_for

    def create_draft(
        self,
        *,
        team_id: str,
        channel_id: str,
        user_id: str,
        idea: str,
        goal: prompts.Goal | None = None,
        provider: str | None = None,
        beats: Sequence[tuple[str, str]] = (),
        seconds: int | None = None,
        explore: prompts.Explore | None = None,
    ) -> DraftCard:
        """Draft a structured prompt from an idea (and storyboard beats), check it, price it, keep it."""
        idea = idea.strip()
        if not idea:
            raise InvalidInput(
                "A draft needs an idea.", hint="Try `/sora draft a robot rolls through a neon alley`."
            )
        defaults = self.channels.defaults(channel_id)
        goal = goal or defaults.goal
        chosen = self.providers.pick(provider or defaults.provider)
        model = defaults.model if chosen.name == defaults.provider else None
        preset = prompts.PRESETS[goal] if goal else None
        length = seconds or (preset.seconds if preset else 4)
        parsed_beats = self._beats(beats, seconds=length)
        # The drafter may call a model: outside any transaction, and never a dead end (it falls back offline).
        result = self.drafter.for_user(user_id).draft(idea, goal=goal)
        aspect = preset.aspect if preset else Aspect.LANDSCAPE
        if not parsed_beats and result.spec.beats:
            # Beats the drafter proposed, spaced over the clip; a clip too short for them grows to two seconds a beat.
            if seconds is None:
                length = min(MAX_SECONDS, max(length, 2 * len(result.spec.beats)))
            parsed_beats = storyboard.spread([b.text for b in result.spec.beats], seconds=length)
        spec = replace(result.spec, beats=parsed_beats)
        if "intent" in result.filled:  # a default intent should at least say what will be made
            kind = preset.label.lower() if preset else "clip"
            spec = replace(spec, intent=f"{length}-second {kind}, {aspect.value}")
        row = Draft(
            team_id=team_id,
            channel_id=channel_id,
            user_id=user_id,
            idea=idea,
            goal=goal.value if goal else None,
            aspect=aspect.value,
            seconds=length,
            variations=preset.variations if preset else 3,
            explore=explore.value if explore else None,
            provider=chosen.name,
            model=model,
            filled=list(result.filled),
            notes=[*([result.note] if result.note else []), *result.notes],
            created_at=self.clock.now(),
        )
        self._check(row, spec)
        with self.store.transaction() as repo:
            repo.drafts.save(row)
            return self._card(row)

    def _beats(self, rows: Sequence[tuple[str, str]], *, seconds: int) -> tuple[Beat, ...]:
        if not rows:
            return ()
        parsed = storyboard.parse_beats(rows)
        if isinstance(parsed, storyboard.BeatErrors):
            raise FieldErrors({f"beat-{i}": message for i, message in parsed.errors.items()})
        return parsed

    def _check(self, row: Draft, spec: PromptSpec) -> None:
        """Lint, storyboard spacing, safety and price: everything the card says before money is spent."""
        findings = prompts.lint(spec, filled=row.filled)
        if spec.beats:
            findings += storyboard.lint_beats(
                spec.beats, seconds=row.seconds, min_gap=self.settings.min_beat_gap
            )
        verdict = safety.check(spec, reference=self._reference(row))
        if self.moderation is not None:
            verdict = safety.combine(
                verdict, self.moderation.check_text(prompts.render(spec, seconds=row.seconds))
            )
        row.spec = spec.as_dict()
        row.findings = [views.finding_dict(f) for f in findings]
        row.safety = [
            {
                "rule": f.rule,
                "message": f.message,
                "safer": f.safer,
                "severity": f.severity.value,
                "term": f.term,
            }
            for f in verdict.findings
        ]
        row.notes = [n for n in [*row.notes, verdict.note] if n]

    def _reference(self, row: Draft) -> Path | None:
        """The local copy of the draft's reference image, when it has one the store still holds."""
        if not row.reference_path:
            return None
        try:
            return self.assets.fetch(row.reference_path)
        except AssetMissing:
            return None

    def draft_card(self, draft_id: int, *, actor: str) -> DraftCard:
        with self.store.read() as repo:
            return self._card(self.owned(repo, draft_id, actor))

    def validate_edit(self, edit: DraftEdit) -> dict[str, str]:
        """Problems with the edit modal's values, by field; fast and pure, so a modal can show them inline."""
        try:
            self._parse_edit(edit)
        except FieldErrors as err:
            return err.errors
        return {}

    def update_draft(self, draft_id: int, *, actor: str, edit: DraftEdit) -> DraftCard:
        """The edit modal's values: every problem reported by field at once, else the re-checked card."""
        layers, aspect, seconds, variations, provider, goal = self._parse_edit(edit)
        with self.store.read() as repo:
            row = self.owned(repo, draft_id, actor)
            if row.status != "open":
                raise InvalidInput("This draft was already generated or cancelled; start a new one.")
        old = PromptSpec.from_dict(row.spec)
        spec = PromptSpec(
            subject=layers["subject"],
            action=layers["action"],
            camera=layers["camera"],
            environment=layers["environment"],
            finish=layers["finish"],
            intent=layers["intent"],
            beats=old.beats,
        )
        row.aspect, row.seconds, row.variations = aspect.value, seconds, variations
        if provider is not None and provider != row.provider:
            row.provider, row.model = provider, None
        row.goal = goal.value if goal else row.goal
        row.filled = [name for name in row.filled if layers[name] == getattr(old, name)]
        row.notes = []
        self._check(row, spec)  # the moderation call, if any, runs outside the transaction
        with self.store.transaction() as repo:
            repo.drafts.save(row)
            return self._card(row)

    def _parse_edit(
        self, edit: DraftEdit
    ) -> tuple[dict[str, str], Aspect, int, int, str | None, prompts.Goal | None]:
        errors: dict[str, str] = {}
        layers = {name: " ".join(getattr(edit, name).split()) for name in PromptSpec.LAYERS}
        for name, value in layers.items():
            if len(value) > MAX_FIELD_CHARS:
                errors[name] = f"Keep it under {MAX_FIELD_CHARS} characters (it is {len(value)})."
        for name in ("subject", "action"):
            if not layers[name]:
                errors[name] = f"A prompt needs a {name}."
        try:
            aspect = Aspect(edit.aspect)
        except ValueError:
            errors["aspect"] = "Choose 16:9, 9:16 or 1:1."
        seconds = whole(edit.seconds, low=MIN_SECONDS, high=MAX_SECONDS)
        if seconds is None:
            errors["seconds"] = f"A whole number of seconds from {MIN_SECONDS} to {MAX_SECONDS}."
        variations = whole(edit.variations, low=MIN_VARIATIONS, high=MAX_VARIATIONS)
        if variations is None:
            errors["variations"] = f"Between {MIN_VARIATIONS} and {MAX_VARIATIONS} variations."
        provider = edit.provider or None
        if provider is not None and provider not in self.providers.names():
            errors["provider"] = "Not configured here; " + ", ".join(self.providers.names()) + " are."
        goal = prompts.parse_goal(edit.goal) if edit.goal else None
        if edit.goal and goal is None:
            errors["goal"] = "Choose one of the listed goals."
        if errors:
            raise FieldErrors(errors)
        assert seconds is not None and variations is not None
        return layers, aspect, seconds, variations, provider, goal

    def validate_storyboard(
        self, *, idea: str, seconds: str, rows: Sequence[tuple[str, str]]
    ) -> dict[str, str]:
        """The storyboard modal's problems by block: the idea, the length, and each card's text or start."""
        errors: dict[str, str] = {}
        if not idea.strip():
            errors["idea"] = "Say what the clip is of, e.g. a small delivery robot in a neon alley."
        elif len(idea) > MAX_STORYBOARD_IDEA_CHARS:
            errors["idea"] = f"Keep it under {MAX_STORYBOARD_IDEA_CHARS} characters (it is {len(idea):,})."
        length = whole(seconds, low=MIN_SECONDS, high=MAX_SECONDS)
        if length is None:
            errors["seconds"] = f"A whole number of seconds from {MIN_SECONDS} to {MAX_SECONDS}."
        parsed = storyboard.parse_beats(rows)
        if isinstance(parsed, storyboard.BeatErrors):
            errors.update({f"beat-{i}": message for i, message in parsed.errors.items()})
        elif len(parsed) < 2:
            errors["beat-1"] = "A storyboard needs at least two cards; use `/sora draft` for a single shot."
        elif length is not None and any(b.start >= length for b in parsed):
            late = next(i for i, b in enumerate(parsed) if b.start >= length)
            errors[f"beat-{late}-start"] = f"Starts after the clip ends ({length} s)."
        return errors

    def create_storyboard_draft(
        self,
        *,
        team_id: str,
        channel_id: str,
        user_id: str,
        idea: str,
        seconds: str,
        goal: str | None,
        rows: Sequence[tuple[str, str]],
    ) -> DraftCard:
        errors = self.validate_storyboard(idea=idea, seconds=seconds, rows=rows)
        if errors:
            raise FieldErrors(errors)
        length = whole(seconds, low=MIN_SECONDS, high=MAX_SECONDS)
        return self.create_draft(
            team_id=team_id,
            channel_id=channel_id,
            user_id=user_id,
            idea=idea,
            goal=prompts.parse_goal(goal) if goal else prompts.Goal.STORYBOARD,
            beats=[row for row in rows if row[0].strip() or row[1].strip()],
            seconds=length,
        )

    def change_goal(self, draft_id: int, *, actor: str, goal: prompts.Goal) -> DraftCard:
        """Re-draft the same idea for another goal preset (the card's goal picker)."""
        with self.store.read() as repo:
            row = self.owned(repo, draft_id, actor)
            if row.status != "open":
                raise InvalidInput("This draft was already generated or cancelled; start a new one.")
        preset = prompts.PRESETS[goal]
        result = self.drafter.for_user(actor).draft(row.idea, goal=goal)
        beats = PromptSpec.from_dict(row.spec).beats
        spec = replace(result.spec, beats=beats)
        row.goal, row.aspect, row.seconds, row.variations = (
            goal.value,
            preset.aspect.value,
            preset.seconds,
            preset.variations,
        )
        row.filled, row.notes = list(result.filled), [result.note] if result.note else []
        self._check(row, spec)
        with self.store.transaction() as repo:
            repo.drafts.save(row)
            return self._card(row)

    def change_explore(self, draft_id: int, *, actor: str, explore: prompts.Explore | None) -> DraftCard:
        """Re-rolls of one prompt, or a round that varies one layer (the card's variations picker)."""
        with self.store.transaction() as repo:
            row = self.owned(repo, draft_id, actor)
            if row.status != "open":
                raise InvalidInput("This draft was already generated or cancelled; start a new one.")
            row.explore = explore.value if explore else None
            repo.drafts.save(row)
            return self._card(row)

    def attach_reference(self, draft_id: int, *, actor: str, data: bytes, filename: str) -> DraftCard:
        """A reference image turns the draft into image-to-video; anything but an image is refused."""
        kind = media.image_kind(data)
        if kind is None:
            raise FieldErrors({"reference": f"“{filename[:60]}” is not a PNG, JPEG or WebP image."})
        with self.store.read() as repo:
            row = self.owned(repo, draft_id, actor)
        path = self.assets.scratch(f"reference.{kind}")
        path.write_bytes(data)
        row.reference_path = reference_key(draft_id, data, kind)
        self.assets.put(row.reference_path, path)
        self._check(row, PromptSpec.from_dict(row.spec))
        with self.store.transaction() as repo:
            repo.drafts.save(row)
            return self._card(row)

    def make_keyframe(self, draft_id: int, *, actor: str) -> DraftCard:
        """Generate a first frame from the prompt and attach it; a failure leaves a note, not an error."""
        if self.keyframes is None:
            raise InvalidInput("Keyframes need an OpenAI key (OPENAI_API_KEY); attach an image instead.")
        with self.store.read() as repo:
            row = self.owned(repo, draft_id, actor)
        spec = PromptSpec.from_dict(row.spec)
        keyframe = self.keyframes.make(prompts.render(spec, seconds=row.seconds), aspect=Aspect(row.aspect))
        if keyframe.png is None:
            row.notes = [*row.notes, keyframe.note or "No keyframe was made."]
            with self.store.transaction() as repo:
                repo.drafts.save(row)
                return self._card(row)
        return self.attach_reference(draft_id, actor=actor, data=keyframe.png, filename="keyframe.png")

    def cancel_draft(self, draft_id: int, *, actor: str) -> Outcome:
        with self.store.transaction() as repo:
            draft = self.owned(repo, draft_id, actor)
            if not repo.drafts.cancel(draft_id):
                return Outcome(False, "This draft was already generated or cancelled.")
            log.info("draft %s cancelled by %s", draft.id, actor)
        return Outcome(True)

    def owned(self, repo: Repo, draft_id: int, actor: str) -> Draft:
        draft = repo.drafts.get(draft_id)
        if draft is None:
            raise NotFound("That draft no longer exists.", hint="Start a new one with `/sora draft <idea>`.")
        if draft.user_id != actor:
            raise NotAllowed("Only the person who drafted this can use its buttons.")
        return draft

    # --- generate ------------------------------------------------------------------------------


def whole(text: str, *, low: int, high: int) -> int | None:
    """A whole number typed in `low`–`high` (an optional trailing "s"), else None. ASCII digits only:
    "²" and "٣" are digits to Python, not to someone reading the card."""
    text = text.strip().removesuffix("s").strip()
    if not (0 < len(text) <= 9 and text.isascii() and text.isdigit()):
        return None
    return int(text) if low <= int(text) <= high else None
