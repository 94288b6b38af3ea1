"""Use cases: one method and one transaction each. Calls ports (providers, publisher), never Slack."""

from __future__ import annotations

import logging
import threading
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path

from bot import media, prompts, replies, safety, storyboard, votes
from bot.domain import (
    Aspect,
    Beat,
    Edit,
    Finding,
    GenerationKind,
    GenerationRequest,
    JobStatus,
    PromptSpec,
    RoundStatus,
    RoundView,
    Severity,
    ThreadRef,
    VariationView,
)
from bot.drafting import Drafter, OfflineDrafter
from bot.errors import (
    InvalidInput,
    NotAllowed,
    NotFound,
    ProviderError,
    PublishError,
    SoraBotError,
    UserError,
)
from bot.keyframes import KeyframeMaker
from bot.ports import AssetStore, Clock, JobFinder, Publisher
from bot.pricing import PriceTable, UnknownPrice
from bot.providers.registry import Providers
from storage.models import ChannelSettings, Draft, Generation, Pattern, Round
from storage.store import Repo, Store

log = logging.getLogger(__name__)

MAX_VARIATIONS = 4
MIN_VARIATIONS = 2
DEADLINE_ACTOR = "deadline"
EDIT_PROVIDER = "edit"
EDIT_KINDS = frozenset({GenerationKind.RECUT, GenerationKind.LOOP, GenerationKind.BLEND})
UNCERTAIN_SUBMIT = (
    "The provider did not confirm this job and cannot be asked whether it exists, so it was not sent again "
    "(that could bill twice). Reply `again` to try once more."
)


MIN_SECONDS = 2
MAX_SECONDS = 20
MAX_FIELD_CHARS = 400


@dataclass(frozen=True)
class WorkflowSettings:
    vote_minutes: int = 60
    daily_budget: float | None = None
    max_concurrent: int = 4
    min_beat_gap: float = storyboard.MIN_GAP
    workers: int = 8  # provider calls the sweep makes at once (each waits on the network, not the CPU)
    claim_batch: int = 32
    lease_seconds: float = 120.0
    poll_min_seconds: float = 2.0
    poll_max_seconds: float = 30.0
    max_submit_attempts: int = 5
    job_timeout_minutes: float = 30.0
    vote_emoji: frozenset[str] = votes.VOTE_EMOJI


@dataclass(frozen=True)
class DraftCard:
    """Everything the draft card shows: layers, checklist, safety, settings, estimate."""

    draft_id: int
    idea: str
    spec: PromptSpec
    findings: tuple[Finding, ...]
    score: int
    goal: prompts.Goal | None
    aspect: Aspect
    seconds: int
    variations: int
    provider: str
    model: str | None
    estimated_cost: float
    estimate_summary: str
    filled: tuple[str, ...]
    prompt: str
    safety: tuple[safety.SafetyFinding, ...] = ()
    notes: tuple[str, ...] = ()
    has_reference: bool = False
    status: str = "open"

    @property
    def blocked(self) -> bool:
        return any(f.severity is Severity.ERROR for f in self.safety)


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


class FieldErrors(InvalidInput):
    """Input problems keyed by field, for a modal to show next to each field."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        super().__init__("Some fields need fixing: " + "; ".join(f"{k}: {v}" for k, v in errors.items()))


@dataclass(frozen=True)
class ChannelDefaults:
    channel_id: str
    provider: str
    model: str | None
    goal: prompts.Goal | None
    vote_minutes: int
    blind: bool
    daily_budget: float | None
    spent_today: float


@dataclass(frozen=True)
class RoundStarted:
    round_id: int
    thread: ThreadRef | None
    card: DraftCard


@dataclass(frozen=True)
class Outcome:
    """What happened to a user's action; `message` (if any) is told to that user only."""

    done: bool
    message: str | None = None


@dataclass(frozen=True)
class PatternCard:
    pattern_id: int
    title: str
    prompt: str
    spec: PromptSpec
    winner_number: int
    votes: int
    voters: int
    rounds_closed_at: str
    settings: dict[str, object]
    rhythm: tuple[dict[str, object], ...]


@dataclass(frozen=True)
class StatusReport:
    providers: tuple[str, ...]
    default_provider: str
    queued: int
    running: int
    mine: int
    open_rounds: int


@dataclass
class SweepReport:
    submitted: int = 0
    polled: int = 0
    completed: int = 0
    failed: int = 0
    uploaded: int = 0
    sheets: int = 0
    closed: int = 0
    announced: int = 0
    repaired: int = 0
    errors: list[str] = field(default_factory=list)
    next_due: datetime | None = None  # the earliest job waiting for a later sweep, for the ticker

    @property
    def busy(self) -> bool:
        return any((self.submitted, self.polled, self.uploaded, self.sheets, self.closed, self.repaired))


class Workflow:
    """The core's use cases. Slow calls (providers, Slack, ffmpeg) always run outside a transaction."""

    def __init__(
        self,
        *,
        store: Store,
        providers: Providers,
        publisher: Publisher,
        assets: AssetStore,
        clock: Clock,
        settings: WorkflowSettings | None = None,
        worker_id: str | None = None,
        drafter: Drafter | None = None,
        moderation: safety.ModerationCheck | None = None,
        prices: PriceTable | None = None,
        keyframes: KeyframeMaker | None = None,
    ) -> None:
        self.keyframes = keyframes
        self.drafter: Drafter = drafter or OfflineDrafter()
        self.moderation = moderation
        self.prices = prices or PriceTable.default()
        self.store = store
        self.providers = providers
        self.publisher = publisher
        self.assets = assets
        self.clock = clock
        self.settings = settings or WorkflowSettings()
        self.worker_id = worker_id or f"worker-{uuid.uuid4().hex[:8]}"
        self.wake: Callable[[], None] = lambda: None
        self._refresh_locks: dict[int, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        # What each Slack message shows now, so an unchanged view is not sent again (chat.update is
        # rate-limited, and most polls change nothing a person can see).
        self._shown: dict[tuple[str, int], object] = {}
        self._durations: dict[str, deque[float]] = {}  # recent job run times per provider, to time polls
        self._pool = ThreadPoolExecutor(max_workers=self.settings.workers, thread_name_prefix="sweep")
        # Callbacks get their own workers so a job a provider just finished never queues behind a busy sweep.
        self._callbacks = ThreadPoolExecutor(max_workers=4, thread_name_prefix="callback")

    def close(self) -> None:
        self._callbacks.shutdown(wait=True, cancel_futures=True)
        self._pool.shutdown(wait=True, cancel_futures=True)

    # --- events --------------------------------------------------------------------------------

    def mark_event_processed(self, event_id: str) -> bool:
        """True the first time; False for a retry of an event already handled."""
        with self.store.transaction() as repo:
            return repo.mark_event_processed(event_id, now=self.clock.now())

    # --- channel defaults ---------------------------------------------------------------------

    def channel_defaults(self, channel_id: str) -> ChannelDefaults:
        with self.store.read() as repo:
            return self._defaults(repo, channel_id)

    def _defaults(self, repo: Repo, channel_id: str) -> ChannelDefaults:
        row = repo.channel_settings(channel_id)
        provider = (row.provider if row else None) or self.providers.default
        if (
            provider not in self.providers.available
        ):  # configured once, since removed: say so, use the default
            provider = self.providers.default
        return ChannelDefaults(
            channel_id=channel_id,
            provider=provider,
            model=row.model if row else None,
            goal=prompts.Goal(row.goal) if row and row.goal else None,
            vote_minutes=(row.vote_minutes if row else None) or self.settings.vote_minutes,
            blind=bool(row and row.blind),
            daily_budget=row.daily_budget
            if row and row.daily_budget is not None
            else self.settings.daily_budget,
            spent_today=repo.spent_today(channel_id, day=self._today()),
        )

    def update_settings(
        self, *, team_id: str, channel_id: str, user_id: str, changes: Sequence[tuple[str, object]]
    ) -> ChannelDefaults:
        """Change a channel's defaults (`provider`, `model`, `goal`, `vote`, `blind`, `budget`)."""
        values = dict(changes)
        provider = values.get("provider")
        if provider is not None:
            self.providers.pick(str(provider))  # refuses, by name, a provider that is not configured
        with self.store.transaction() as repo:
            row = repo.channel_settings(channel_id) or ChannelSettings(
                channel_id=channel_id, team_id=team_id, updated_by=user_id, updated_at=self.clock.now()
            )
            names = {"vote": "vote_minutes", "budget": "daily_budget"}
            for key, value in values.items():
                setattr(row, names.get(key, key), value.value if isinstance(value, prompts.Goal) else value)
            if "provider" in values and "model" not in values:
                row.model = None  # a model id belongs to the provider it was set for
            row.updated_by, row.updated_at = user_id, self.clock.now()
            repo.add(row)
            return self._defaults(repo, channel_id)

    def _today(self) -> str:
        return self.clock.now().date().isoformat()

    # --- draft ---------------------------------------------------------------------------------

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
    ) -> DraftCard:
        """Draft a structured prompt from an idea (and storyboard beats), check it, price it, keep it."""
        idea = idea.strip()
        if not idea:
            raise InvalidInput(
                "A draft needs an idea.", hint="Try `/sora draft a robot rolls through a neon alley`."
            )
        defaults = self.channel_defaults(channel_id)
        goal = goal or defaults.goal
        chosen = self.providers.pick(provider or defaults.provider)
        model = defaults.model if chosen.name == defaults.provider else None
        preset = prompts.PRESETS[goal] if goal else None
        length = seconds or (preset.seconds if preset else 4)
        parsed_beats = self._beats(beats, seconds=length)
        # The drafter may call a model: outside any transaction, and never a dead end (it falls back offline).
        result = self.drafter.for_user(user_id).draft(idea, goal=goal)
        aspect = preset.aspect if preset else Aspect.LANDSCAPE
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
            provider=chosen.name,
            model=model,
            filled=list(result.filled),
            notes=[result.note] if result.note else [],
            created_at=self.clock.now(),
        )
        self._check(row, spec)
        with self.store.transaction() as repo:
            repo.add(row)
            return self._draft_card(row)

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
        reference = Path(row.reference_path) if row.reference_path else None
        verdict = safety.check(spec, reference=reference)
        if self.moderation is not None:
            verdict = safety.combine(
                verdict, self.moderation.check_text(prompts.render(spec, seconds=row.seconds))
            )
        row.spec = spec.as_dict()
        row.findings = [_finding_dict(f) for f in findings]
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

    def _estimate(
        self, provider: str, model: str | None, *, seconds: int, variations: int
    ) -> tuple[float, str]:
        try:
            estimate = self.prices.estimate(provider, model, seconds=seconds, variations=variations)
        except UnknownPrice:
            # A provider without a configured price is charged at its own idea of its rate.
            rate = self.providers.get(provider).cost_per_second(model)
            total = rate * seconds * variations
            return total, f"≈ ${total:.2f} ({variations} × {seconds} s at ${rate:.2f}/s)" if total else "free"
        return estimate.total, estimate.summary

    def _draft_card(self, row: Draft) -> DraftCard:
        assert row.id is not None
        spec = PromptSpec.from_dict(row.spec)
        findings = tuple(_finding_from(f) for f in row.findings)
        total, summary = self._estimate(
            row.provider, row.model, seconds=row.seconds, variations=row.variations
        )
        return DraftCard(
            draft_id=row.id,
            idea=row.idea,
            spec=spec,
            findings=findings,
            score=prompts.score(findings),
            goal=prompts.Goal(row.goal) if row.goal else None,
            aspect=Aspect(row.aspect),
            seconds=row.seconds,
            variations=row.variations,
            provider=row.provider,
            model=row.model,
            estimated_cost=total,
            estimate_summary=summary,
            filled=tuple(row.filled),
            prompt=prompts.render(spec, seconds=row.seconds),
            safety=tuple(
                safety.SafetyFinding(
                    rule=str(f["rule"]),
                    message=str(f["message"]),
                    safer=str(f["safer"]),
                    severity=Severity(str(f["severity"])),
                    term=str(f.get("term", "")),
                )
                for f in row.safety
            ),
            notes=tuple(row.notes),
            has_reference=row.reference_path is not None,
            status=row.status,
        )

    def draft_card(self, draft_id: int, *, actor: str) -> DraftCard:
        with self.store.read() as repo:
            return self._draft_card(self._draft_owned_by(repo, draft_id, actor))

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
            row = self._draft_owned_by(repo, draft_id, actor)
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
            repo.add(row)
            return self._draft_card(row)

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
        seconds = _whole(edit.seconds, low=MIN_SECONDS, high=MAX_SECONDS)
        if seconds is None:
            errors["seconds"] = f"A whole number of seconds from {MIN_SECONDS} to {MAX_SECONDS}."
        variations = _whole(edit.variations, low=MIN_VARIATIONS, high=MAX_VARIATIONS)
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
        length = _whole(seconds, low=MIN_SECONDS, high=MAX_SECONDS)
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
        length = _whole(seconds, low=MIN_SECONDS, high=MAX_SECONDS)
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
            row = self._draft_owned_by(repo, draft_id, actor)
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
            repo.add(row)
            return self._draft_card(row)

    def attach_reference(self, draft_id: int, *, actor: str, data: bytes, filename: str) -> DraftCard:
        """A reference image turns the draft into image-to-video; anything but an image is refused."""
        kind = media.image_kind(data)
        if kind is None:
            raise FieldErrors({"reference": f"“{filename[:60]}” is not a PNG, JPEG or WebP image."})
        with self.store.read() as repo:
            row = self._draft_owned_by(repo, draft_id, actor)
        path = self.assets.path_for(f"draft-{draft_id}-reference.{kind}")
        path.write_bytes(data)
        row.reference_path = str(path)
        self._check(row, PromptSpec.from_dict(row.spec))
        with self.store.transaction() as repo:
            repo.add(row)
            return self._draft_card(row)

    def make_keyframe(self, draft_id: int, *, actor: str) -> DraftCard:
        """Generate a first frame from the prompt and attach it; a failure leaves a note, not an error."""
        if self.keyframes is None:
            raise InvalidInput("Keyframes need an OpenAI key (OPENAI_API_KEY); attach an image instead.")
        with self.store.read() as repo:
            row = self._draft_owned_by(repo, draft_id, actor)
        spec = PromptSpec.from_dict(row.spec)
        keyframe = self.keyframes.make(prompts.render(spec, seconds=row.seconds), aspect=Aspect(row.aspect))
        if keyframe.png is None:
            row.notes = [*row.notes, keyframe.note or "No keyframe was made."]
            with self.store.transaction() as repo:
                repo.add(row)
                return self._draft_card(row)
        return self.attach_reference(draft_id, actor=actor, data=keyframe.png, filename="keyframe.png")

    def cancel_draft(self, draft_id: int, *, actor: str) -> Outcome:
        with self.store.transaction() as repo:
            draft = self._draft_owned_by(repo, draft_id, actor)
            if not repo.cancel_draft(draft_id):
                return Outcome(False, "This draft was already generated or cancelled.")
            log.info("draft %s cancelled by %s", draft.id, actor)
        return Outcome(True)

    def _draft_owned_by(self, repo: Repo, draft_id: int, actor: str) -> Draft:
        draft = repo.get(Draft, draft_id)
        if draft is None:
            raise NotFound("That draft no longer exists.", hint="Start a new one with `/sora draft <idea>`.")
        if draft.user_id != actor:
            raise NotAllowed("Only the person who drafted this can use its buttons.")
        return draft

    # --- generate ------------------------------------------------------------------------------

    def start_round(self, draft_id: int, *, actor: str) -> RoundStarted:
        """Turn an open draft into a round: one parent message and one message per variation."""
        now = self.clock.now()
        with self.store.transaction() as repo:
            draft = self._draft_owned_by(repo, draft_id, actor)
            card = self._draft_card(draft)
            if card.blocked:
                first = next(f for f in card.safety if f.severity is Severity.ERROR)
                raise InvalidInput(
                    f"Nothing was submitted: the safety check blocks this draft ({first.rule}). {first.message}",
                    hint=f"Try: “{first.safer}” (use Edit).",
                )
            if not repo.submit_draft(draft_id):
                raise InvalidInput("This draft was already generated or cancelled.")
            spec = PromptSpec.from_dict(draft.spec)
            count = max(MIN_VARIATIONS, min(MAX_VARIATIONS, draft.variations))
            defaults = self._defaults(repo, draft.channel_id)
            total, _ = self._estimate(draft.provider, draft.model, seconds=draft.seconds, variations=count)
            round_row = repo.add(
                Round(
                    draft_id=draft_id,
                    team_id=draft.team_id,
                    channel_id=draft.channel_id,
                    owner_id=actor,
                    title=spec.subject or draft.idea[:80],
                    closes_at=now + timedelta(minutes=defaults.vote_minutes),
                    blind=defaults.blind,
                    estimated_cost=total,
                    created_at=now,
                )
            )
            assert round_row.id is not None
            self._charge(
                repo,
                defaults,
                team_id=draft.team_id,
                user_id=actor,
                amount=total,
                round_id=round_row.id,
                provider=draft.provider,
                model=draft.model,
                seconds=draft.seconds * count,
            )
            for number in range(1, count + 1):
                repo.add(
                    Generation(
                        round_id=round_row.id,
                        number=number,
                        kind=GenerationKind.CREATE.value,
                        requested_by=actor,
                        spec=draft.spec,
                        prompt=prompts.render(spec, seconds=draft.seconds),
                        seconds=draft.seconds,
                        aspect=draft.aspect,
                        provider=draft.provider,
                        model=draft.model,
                        reference_path=draft.reference_path,
                        created_at=now,
                    )
                )
            round_id = round_row.id
            draft.status = "submitted"
            card = self._draft_card(draft)
        thread = self._post_round(round_id)
        self.wake()
        return RoundStarted(round_id=round_id, thread=thread, card=card)

    def _charge(
        self,
        repo: Repo,
        defaults: ChannelDefaults,
        *,
        team_id: str,
        user_id: str,
        amount: float,
        round_id: int,
        provider: str,
        model: str | None,
        seconds: int,
    ) -> None:
        """Spend from the channel's daily budget, atomically; raising rolls the whole use case back."""
        spent = repo.charge(
            team_id=team_id,
            channel_id=defaults.channel_id,
            user_id=user_id,
            amount=amount,
            budget=defaults.daily_budget,
            day=self._today(),
            now=self.clock.now(),
            provider=provider,
            model=model,
            seconds=seconds,
            round_id=round_id,
        )
        if spent is not None:
            assert defaults.daily_budget is not None
            raise InvalidInput(
                f"Nothing was submitted: this channel's daily budget is ${defaults.daily_budget:.2f}, "
                f"${spent:.2f} is spent today and this needs ${amount:.2f}.",
                hint="Fewer variations or seconds (Edit) cost less; `/sora settings budget=…` changes the budget.",
            )

    def _post_round(self, round_id: int) -> ThreadRef | None:
        """Post the parent and the variation messages that are missing; safe to repeat."""
        with self.store.read() as repo:
            round_row = repo.get(Round, round_id)
            assert round_row is not None
            view = self._round_view(repo, round_row)
            parent_ts = round_row.parent_ts
        if parent_ts is None:
            try:
                parent_ts = self.publisher.post_round(view)
            except PublishError as err:
                log.warning("could not post round %s yet: %s", round_id, err)
                return None
            self._save(Round, round_id, parent_ts=parent_ts)
        thread = ThreadRef(channel_id=view.channel_id, thread_ts=parent_ts)
        for variation in view.variations:
            self._post_variation_message(thread, variation)
        return thread

    def _post_variation_message(self, thread: ThreadRef, view: VariationView) -> None:
        with self.store.read() as repo:
            row = repo.get(Generation, view.generation_id)
            if row is None or row.message_ts is not None:
                return
        try:
            ts = self.publisher.post_variation(thread, view)
        except PublishError as err:
            log.warning("could not post variation %s yet: %s", view.generation_id, err)
            return
        self._save(Generation, view.generation_id, message_ts=ts)

    # --- votes ---------------------------------------------------------------------------------

    def record_vote(self, *, channel_id: str, message_ts: str, user_id: str, emoji: str) -> Outcome:
        """A reaction on a variation message. Non-vote emoji and other messages are ignored on purpose."""
        name = votes.normalise_emoji(emoji)
        if not votes.is_vote(name, allowed=self.settings.vote_emoji):
            return Outcome(False)
        with self.store.transaction() as repo:
            generation = repo.generation_by_message(channel_id, message_ts)
            if generation is None or generation.id is None:
                return Outcome(False)
            round_row = repo.get(Round, generation.round_id)
            assert round_row is not None and round_row.id is not None
            if round_row.status != RoundStatus.OPEN.value:
                winner = self._winner_number(repo, round_row)
                said = f" #{winner} won." if winner else ""
                return Outcome(False, f"Voting on this round has closed; your vote was not counted.{said}")
            repo.add_vote(
                round_id=round_row.id,
                generation_id=generation.id,
                user_id=user_id,
                emoji=name,
                now=self.clock.now(),
            )
            round_id = round_row.id
        self.refresh_round(round_id)
        return Outcome(True)

    def remove_vote(self, *, channel_id: str, message_ts: str, user_id: str, emoji: str) -> Outcome:
        name = votes.normalise_emoji(emoji)
        with self.store.transaction() as repo:
            generation = repo.generation_by_message(channel_id, message_ts)
            if generation is None or generation.id is None:
                return Outcome(False)
            round_row = repo.get(Round, generation.round_id)
            assert round_row is not None and round_row.id is not None
            if round_row.status != RoundStatus.OPEN.value:
                return Outcome(False)
            removed = repo.remove_vote(generation_id=generation.id, user_id=user_id, emoji=name)
            round_id = round_row.id
        if removed:
            self.refresh_round(round_id)
        return Outcome(removed)

    def _winner_number(self, repo: Repo, round_row: Round) -> int | None:
        if round_row.winner_generation_id is None:
            return None
        winner = repo.get(Generation, round_row.winner_generation_id)
        return winner.number if winner else None

    # --- close ---------------------------------------------------------------------------------

    def close_round(self, round_id: int, *, actor: str, pick: int | None = None) -> Outcome:
        """Count votes, pick the winner, save it as a pattern, announce it. Closes once, whoever asks twice."""
        now = self.clock.now()
        with self.store.transaction() as repo:
            round_row = repo.get(Round, round_id)
            if round_row is None or round_row.id is None:
                raise NotFound("That round no longer exists.")
            if actor != DEADLINE_ACTOR and actor != round_row.owner_id:
                raise NotAllowed("Only the person who started this round can close it.")
            generations = repo.generations_in_round(round_id)
            tally = self._tally(repo, round_row, generations)
            winner_id = tally.winner.generation_id if tally.winner else None
            if pick is not None:
                picked = next((g for g in generations if g.number == pick), None)
                if picked is None:
                    raise NotFound(
                        f"There is no variation #{pick} in this round.", hint=_numbers_hint(generations)
                    )
                winner_id = picked.id
            if not repo.close_round(round_id, now=now, actor=actor):
                return Outcome(False, "This round is already closed.")
            round_row.status = RoundStatus.CLOSED.value
            round_row.winner_generation_id = winner_id
            round_row.announced_ts = None
            repo.add(round_row)
            if winner_id is not None:
                self._save_pattern(repo, round_row, winner_id, generations, tally)
        self._announce(round_id)
        self.refresh_round(round_id)
        return Outcome(True)

    def _tally(self, repo: Repo, round_row: Round, generations: Sequence[Generation]) -> votes.RoundTally:
        assert round_row.id is not None
        numbers = {g.id: g.number for g in generations if g.id is not None}
        records = [
            votes.VoteRecord(generation_id=v.generation_id, user_id=v.user_id, emoji=v.emoji)
            for v in repo.votes_in_round(round_row.id)
        ]
        return votes.tally(records, numbers=numbers)

    def _save_pattern(
        self,
        repo: Repo,
        round_row: Round,
        winner_id: int,
        generations: Sequence[Generation],
        tally: votes.RoundTally,
    ) -> None:
        assert round_row.id is not None
        winner = next(g for g in generations if g.id == winner_id)
        spec = PromptSpec.from_dict(winner.spec)
        winner_tally = next((t for t in tally.tallies if t.generation_id == winner_id), None)
        lineage = []
        by_id = {g.id: g for g in generations}
        cursor: Generation | None = winner
        while cursor is not None:
            lineage.append(cursor.number)
            cursor = by_id.get(cursor.parent_id) if cursor.parent_id else None
        pattern = repo.pattern_for_round(round_row.id) or Pattern(
            team_id=round_row.team_id,
            channel_id=round_row.channel_id,
            round_id=round_row.id,
            generation_id=winner_id,
            title=round_row.title,
            prompt=winner.prompt,
            created_at=self.clock.now(),
        )
        pattern.generation_id = winner_id
        pattern.prompt = winner.prompt
        pattern.spec = winner.spec
        pattern.rhythm = [{"text": b.text, "start": b.start} for b in spec.beats]
        pattern.settings = {
            "seconds": winner.seconds,
            "aspect": winner.aspect,
            "provider": winner.provider,
            "model": winner.model,
            "kind": winner.kind,
        }
        pattern.outcome = {
            "winner_number": winner.number,
            "votes": winner_tally.votes if winner_tally else 0,
            "voters": tally.voters,
            "variations": len(generations),
            "tie": tally.tie,
            "closed_by": round_row.closed_by,
        }
        pattern.lineage = lineage
        pattern.tags = " ".join(filter(None, [winner.kind, winner.aspect.replace(":", "x"), spec.camera]))
        repo.add(pattern)

    def _announce(self, round_id: int) -> None:
        with self.store.read() as repo:
            round_row = repo.get(Round, round_id)
            if round_row is None or round_row.parent_ts is None or round_row.announced_ts is not None:
                return
            view = self._round_view(repo, round_row)
            thread = ThreadRef(round_row.channel_id, round_row.parent_ts)
        try:
            ts = self.publisher.announce_winner(thread, view)
        except PublishError as err:
            log.warning("could not announce round %s yet: %s", round_id, err)
            return
        self._save(Round, round_id, announced_ts=ts)

    # --- thread replies ------------------------------------------------------------------------

    def handle_reply(self, *, channel_id: str, thread_ts: str, user_id: str, text: str) -> Outcome:
        """A reply in a round's thread. Ordinary conversation is left alone; commands act or explain."""
        parsed = replies.parse_reply(text)
        if parsed is None:
            return Outcome(False)
        with self.store.read() as repo:
            round_row = repo.round_by_thread(channel_id, thread_ts)
            if round_row is None or round_row.id is None:
                return Outcome(False)
            round_id = round_row.id
        if isinstance(parsed, replies.ReplyError):
            return Outcome(False, f"{parsed.message} {parsed.hint}".strip())
        verb = parsed.verb
        if verb == replies.Verb.HELP:
            return Outcome(True, replies.HELP_TEXT)
        if verb == replies.Verb.PICK:
            return self.close_round(round_id, actor=user_id, pick=parsed.numbers[0])
        if verb == replies.Verb.REMIX:
            assert parsed.change is not None
            return self._add_variation(
                round_id,
                actor=user_id,
                kind=GenerationKind.REMIX,
                source=parsed.numbers[0],
                change=parsed.change,
            )
        if verb == replies.Verb.AGAIN:
            source = parsed.numbers[0] if parsed.numbers else None
            return self._add_variation(round_id, actor=user_id, kind=GenerationKind.AGAIN, source=source)
        return self._add_edit(round_id, actor=user_id, command=parsed)

    def _add_variation(
        self,
        round_id: int,
        *,
        actor: str,
        kind: GenerationKind,
        source: int | None,
        change: str | None = None,
    ) -> Outcome:
        with self.store.transaction() as repo:
            round_row, generations = self._round_and_generations(repo, round_id)
            if source is None:
                parent = generations[0] if generations else None
            else:
                parent = next((g for g in generations if g.number == source), None)
            if parent is None or parent.id is None:
                raise NotFound(
                    f"There is no variation #{source} in this round.", hint=_numbers_hint(generations)
                )
            spec = PromptSpec.from_dict(parent.spec)
            if change is not None:
                spec = prompts.apply_change(spec, change)
                self._preflight(spec, what="That remix")
            self._append(
                repo,
                round_row,
                actor=actor,
                row=Generation(
                    round_id=round_id,
                    parent_id=parent.id if source is not None else None,
                    number=0,
                    kind=kind.value,
                    requested_by=actor,
                    spec=spec.as_dict(),
                    prompt=prompts.render(spec, seconds=parent.seconds),
                    change=change,
                    seconds=parent.seconds,
                    aspect=parent.aspect,
                    provider=parent.provider,
                    model=parent.model,
                    reference_path=parent.reference_path,
                    created_at=self.clock.now(),
                ),
            )
        return self._announce_new(round_id)

    def _add_edit(self, round_id: int, *, actor: str, command: replies.ReplyCommand) -> Outcome:
        """recut, loop, blend (media operations on finished clips) and extend (a continuation from the last
        frame, then joined on), each a new votable variation linked to its source."""
        kind = command.kind
        assert kind is not None
        with self.store.read() as repo:
            _, generations = self._round_and_generations(repo, round_id)
        sources = []
        for number in command.numbers:
            found = next((g for g in generations if g.number == number), None)
            if found is None:
                raise NotFound(
                    f"There is no variation #{number} in this round.", hint=_numbers_hint(generations)
                )
            if _asset(found) is None:
                raise InvalidInput(f"#{number} has no finished clip yet; try again once it is posted.")
            sources.append(found)
        first = sources[0]
        first_clip = _asset(first)
        assert first.id is not None and first_clip is not None
        spec = PromptSpec.from_dict(first.spec)
        provider, seconds, reference, prompt = EDIT_PROVIDER, first.seconds, None, first.prompt
        params: dict[str, object] = {"sources": [str(_asset(g)) for g in sources]}
        if kind == GenerationKind.RECUT:
            assert command.start is not None and command.end is not None
            length = media.probe(first_clip).duration
            if command.end > length + 0.05:
                raise InvalidInput(
                    f"#{first.number} is only {length:.1f} s long; recut within 0–{length:.1f} s."
                )
            params |= {"start": command.start, "end": command.end}
            seconds = max(1, round(command.end - command.start))
            change = f"{command.start:g}–{command.end:g} s"
        elif kind == GenerationKind.LOOP:
            change = "seamless loop"
        elif kind == GenerationKind.BLEND:
            change = f"crossfade into #{sources[1].number}"
            seconds = first.seconds + sources[1].seconds - 1
        else:  # extend: the model continues from the last frame; the join happens when it is done
            text = command.change or "the same shot continues for a moment"
            spec = replace(spec, action=text, beats=())
            self._preflight(spec, what="That extension")
            provider, seconds = first.provider, command.seconds or 4
            reference = self.assets.path_for(f"generation-{first.id}-last.png")
            media.last_frame(first_clip, reference)
            prompt = prompts.render(spec, seconds=seconds)
            change = f"+{seconds} s: {text}"
        with self.store.transaction() as repo:
            round_row, _ = self._round_and_generations(repo, round_id)
            self._append(
                repo,
                round_row,
                actor=actor,
                row=Generation(
                    round_id=round_id,
                    parent_id=first.id,
                    number=0,
                    kind=kind.value,
                    requested_by=actor,
                    spec=spec.as_dict(),
                    prompt=prompt,
                    change=change,
                    seconds=seconds,
                    aspect=first.aspect,
                    provider=provider,
                    model=first.model if provider != EDIT_PROVIDER else None,
                    reference_path=str(reference) if reference else None,
                    params=params,
                    created_at=self.clock.now(),
                ),
            )
        return self._announce_new(round_id)

    def _round_and_generations(self, repo: Repo, round_id: int) -> tuple[Round, Sequence[Generation]]:
        round_row = repo.get(Round, round_id)
        if round_row is None:
            raise NotFound("That round no longer exists.")
        return round_row, repo.generations_in_round(round_id)

    def _preflight(self, spec: PromptSpec, *, what: str) -> None:
        # The local rules only: a slow moderation call does not belong inside a transaction.
        blocked = safety.check(spec).blocking
        if blocked:
            raise InvalidInput(
                f"{what} was not started: the safety check blocks it ({blocked[0].rule}). {blocked[0].message}",
                hint=f"Try: “{blocked[0].safer}”",
            )

    def _append(self, repo: Repo, round_row: Round, *, actor: str, row: Generation) -> None:
        """Charge, reopen a closed round (a new variation is votable), and add the row as the next #N."""
        assert round_row.id is not None
        defaults = self._defaults(repo, round_row.channel_id)
        total, _ = self._estimate(row.provider, row.model, seconds=row.seconds, variations=1)
        self._charge(
            repo,
            defaults,
            team_id=round_row.team_id,
            user_id=actor,
            amount=total,
            round_id=round_row.id,
            provider=row.provider,
            model=row.model,
            seconds=row.seconds,
        )
        if round_row.status == RoundStatus.CLOSED.value:
            round_row.status = RoundStatus.OPEN.value
            round_row.closes_at = self.clock.now() + timedelta(minutes=defaults.vote_minutes)
            round_row.closed_at = None
            repo.add(round_row)
        row.number = repo.next_number(round_row.id)
        repo.add(row)

    def _announce_new(self, round_id: int) -> Outcome:
        self._post_round(round_id)
        self.refresh_round(round_id)
        self.wake()
        return Outcome(True)

    # --- recall --------------------------------------------------------------------------------

    def recall(self, *, team_id: str, query: str, limit: int = 3) -> list[PatternCard]:
        if not query.strip():
            raise InvalidInput("Recall needs something to look for.", hint="Try `/sora recall neon robot`.")
        with self.store.read() as repo:
            hits = repo.search_patterns(team_id, query, limit=limit)
            return [_pattern_card(hit.pattern) for hit in hits]

    def health(self) -> dict[str, object]:
        """For `GET /healthz`: can we reach the database?"""
        try:
            with self.store.read() as repo:
                repo.ping()
        except Exception as err:  # report, never raise: a health check must answer
            return {"ok": False, "database": f"unreachable: {type(err).__name__}"}
        return {"ok": True, "database": "ok", "providers": list(self.providers.names())}

    # --- cancel and provider callbacks ----------------------------------------------------------

    def cancel_generation(self, generation_id: int, *, actor: str) -> Outcome:
        """Stop a queued or running job; only the person who asked for it may."""
        with self.store.transaction() as repo:
            row = repo.get(Generation, generation_id)
            if row is None:
                raise NotFound("That variation no longer exists.")
            if row.requested_by != actor:
                raise NotAllowed(f"Only the person who asked for #{row.number} can cancel it.")
            if JobStatus(row.status).is_terminal:
                return Outcome(False, f"#{row.number} has already {row.status.replace('_', ' ')}.")
            job_id, provider, round_id = row.provider_job_id, row.provider, row.round_id
            row.status, row.error = JobStatus.CANCELLED.value, None
            repo.release(row)
        if job_id:
            try:
                self.providers.get(provider).cancel(job_id)
            except (ProviderError, UserError) as err:  # ours is cancelled either way; the provider may bill
                log.warning("provider %s could not cancel %s: %s", provider, job_id, err)
        self.refresh_round(round_id)
        return Outcome(True)

    def cancel_by_reaction(self, *, channel_id: str, message_ts: str, user_id: str) -> Outcome:
        with self.store.read() as repo:
            row = repo.generation_by_message(channel_id, message_ts)
        if row is None or row.id is None:
            return Outcome(False)
        return self.cancel_generation(row.id, actor=user_id)

    def job_event(self, *, provider: str, job_id: str) -> bool:
        """A provider says a job changed (a webhook): poll it now instead of at its next turn."""
        with self.store.transaction() as repo:
            row = repo.generation_by_job(provider, job_id)
            if row is None or row.status != JobStatus.IN_PROGRESS.value:
                return False
            row.next_poll_at = self.clock.now()  # if the fast path below fails, the sweep takes it next
            repo.add(row)
            generation_id = row.id
        assert generation_id is not None
        self._callbacks.submit(self._poll_now, generation_id)
        return True

    # --- status -------------------------------------------------------------------------------

    def status(self, *, channel_id: str, user_id: str) -> StatusReport:
        with self.store.read() as repo:
            counts = repo.count_active_generations(channel_id=channel_id, user_id=user_id)
            open_rounds = repo.count_open_rounds(channel_id)
        running = [JobStatus.SUBMITTING.value, JobStatus.IN_PROGRESS.value]
        return StatusReport(
            providers=self.providers.names(),
            default_provider=self.providers.default,
            queued=counts.get(JobStatus.QUEUED.value, (0, 0))[0],
            running=sum(counts.get(s, (0, 0))[0] for s in running),
            mine=sum(mine for _, mine in counts.values()),
            open_rounds=open_rounds,
        )

    # --- the sweep -----------------------------------------------------------------------------

    def sweep(self) -> SweepReport:
        """One pass over everything due: repair posts, submit, poll, upload, sheets, deadlines, announcements.

        Every step works from rows alone, so a restart (or a second replica) resumes exactly here.
        """
        report = SweepReport()
        for step in (
            self._repair_posts,
            self._submit_queued,
            self._poll_running,
            self._upload_finished,
            self._post_sheets,
            self._close_due_rounds,
            self._announce_closed,
        ):
            try:
                step(report)
            except Exception as err:  # one broken step must not stop the others
                log.exception("sweep step %s failed", step.__name__)
                report.errors.append(f"{step.__name__}: {err}")
        with self.store.read() as repo:
            report.next_due = repo.next_due()
        return report

    def _repair_posts(self, report: SweepReport) -> None:
        with self.store.read() as repo:
            round_ids = [r.id for r in repo.rounds_missing_parent()]
            round_ids += [g.round_id for g in repo.generations_missing_message()]
        for round_id in dict.fromkeys(round_ids):
            if round_id is not None:
                self._post_round(round_id)
                report.repaired += 1

    def _submit_queued(self, report: SweepReport) -> None:
        now = self.clock.now()
        with self.store.transaction() as repo:
            claimed = repo.claim_generations(
                statuses=[JobStatus.QUEUED.value, JobStatus.SUBMITTING.value],
                now=now,
                owner=self.worker_id,
                lease=timedelta(seconds=self.settings.lease_seconds),
                limit=self.settings.claim_batch,
            )
            room = {
                name: self.settings.max_concurrent - repo.count_inflight(name)
                for name in {r.provider for r in claimed}
            }
            started = []
            for row in claimed:
                if row.status == JobStatus.QUEUED.value and room[row.provider] <= 0:
                    repo.release(row)  # the provider is at its limit: stays queued, its place in line kept
                    continue
                if row.status == JobStatus.QUEUED.value:
                    room[row.provider] -= 1
                    # Written before the provider call: a crash leaves a row that says "maybe submitted".
                    row.status = JobStatus.SUBMITTING.value
                    row.submitted_at = now
                    row.attempts += 1
                    repo.add(row)
                    started.append((row, False))
                else:
                    started.append((row, True))  # a submit that crashed or went unanswered

        def submit(item: tuple[Generation, bool]) -> bool:
            row, uncertain = item
            assert row.id is not None
            failed = self._submit_one(row, uncertain=uncertain)
            self._refresh_variation(row.id)
            return failed

        report.failed += sum(self._pool.map(submit, started))
        report.submitted += len(started)
        if len(claimed) >= self.settings.claim_batch:
            self.wake()  # more are due than one batch: go round again at once

    def _request(self, row: Generation) -> GenerationRequest:
        assert row.id is not None
        kind = GenerationKind(row.kind)
        edited = kind in EDIT_KINDS  # made from finished clips, not by a model
        return GenerationRequest(
            prompt=row.prompt,
            spec=PromptSpec.from_dict(row.spec),
            seconds=row.seconds,
            aspect=Aspect(row.aspect),
            variation=row.number,
            idempotency_key=f"generation-{row.id}",
            model=row.model,
            reference_image=Path(row.reference_path) if row.reference_path else None,
            sources=tuple(Path(str(p)) for p in row.params.get("sources", [])) if edited else (),
            edit=Edit(kind=kind, start=_float(row.params.get("start")), end=_float(row.params.get("end")))
            if edited
            else None,
        )

    def _submit_one(self, row: Generation, *, uncertain: bool) -> bool:
        """Submit once; True when the job failed for good. A submit that may have reached the provider is
        looked up, never blindly repeated."""
        assert row.id is not None
        provider = self.providers.get(row.provider)
        request = self._request(row)
        now = self.clock.now()
        try:
            job = None
            if uncertain:
                if not isinstance(provider, JobFinder):
                    self._fail_now(row.id, ProviderError(UNCERTAIN_SUBMIT))
                    return True
                since = (row.submitted_at or row.created_at).timestamp()
                job = provider.find_submitted(request, since=since)
            if job is None:
                job = provider.submit(request)
        except (ProviderError, UserError) as err:
            return self._submit_failed(row.id, err, now=now)
        with self.store.transaction() as repo:
            fresh = repo.get(Generation, row.id)
            assert fresh is not None
            fresh.provider_job_id = job.job_id  # stored the moment it is known: never submitted twice
            fresh.provider_callback_id = job.callback_id
            fresh.seconds = job.seconds or fresh.seconds  # what the provider will really make (and bill)
            cancelled = fresh.status == JobStatus.CANCELLED.value  # cancelled while we were submitting it
            if not cancelled:
                fresh.status = JobStatus.IN_PROGRESS.value
                fresh.progress = job.progress
                fresh.error = None
                fresh.next_poll_at = now + timedelta(
                    seconds=self._first_poll_delay(fresh.provider, job.poll_after)
                )
            repo.release(fresh)
        if cancelled:
            try:
                provider.cancel(job.job_id)
            except (ProviderError, UserError) as err:
                log.warning("could not cancel %s after a late submit: %s", job.job_id, err)
        return False

    def _submit_failed(self, generation_id: int, err: SoraBotError, *, now: datetime) -> bool:
        code = getattr(err, "code", None)
        retryable = isinstance(err, ProviderError) and err.retryable
        with self.store.transaction() as repo:
            fresh = repo.get(Generation, generation_id)
            assert fresh is not None
            if code == "timeout_on_create":
                # It may exist: stay "submitting" and look it up on a later sweep instead of paying twice.
                fresh.error = "The provider did not answer in time; checking whether it started the job."
                fresh.next_poll_at = now + timedelta(seconds=self.settings.poll_min_seconds * 5)
            elif retryable and fresh.attempts < self.settings.max_submit_attempts:
                fresh.status = JobStatus.QUEUED.value
                delay = getattr(err, "retry_after", None) or self._backoff(fresh.attempts)
                fresh.next_poll_at = now + timedelta(seconds=delay)
            else:
                fresh.status = JobStatus.FAILED.value
                fresh.error = str(err)
            repo.release(fresh)
            return fresh.status == JobStatus.FAILED.value

    def _poll_running(self, report: SweepReport) -> None:
        now = self.clock.now()
        with self.store.transaction() as repo:
            claimed = repo.claim_generations(
                statuses=[JobStatus.IN_PROGRESS.value],
                now=now,
                owner=self.worker_id,
                lease=timedelta(seconds=self.settings.lease_seconds),
                limit=self.settings.claim_batch,
            )
        outcomes = list(self._pool.map(self._poll_and_post, claimed))
        report.polled += len(claimed)
        report.completed += outcomes.count("completed") + outcomes.count("completed-unposted")
        report.failed += outcomes.count("failed")
        report.uploaded += outcomes.count("completed")
        if len(claimed) >= self.settings.claim_batch:
            self.wake()

    def _poll_and_post(self, row: Generation) -> str:
        """Poll one job and, the moment its clip is ours, post it: no waiting for the next step or sweep."""
        assert row.id is not None
        outcome = self._poll_one(row)
        if outcome == "completed" and not self._upload_one(row.id):
            outcome = "completed-unposted"  # the upload step retries it
        self._refresh_variation(row.id)
        return outcome

    def _poll_now(self, generation_id: int) -> None:
        """A provider called back: poll this job at once, outside the sweep (if nobody else holds it)."""
        try:
            with self.store.transaction() as repo:
                row = repo.claim_generation(
                    generation_id,
                    now=self.clock.now(),
                    owner=self.worker_id,
                    lease=timedelta(seconds=self.settings.lease_seconds),
                )
            if row is not None:
                self._poll_and_post(row)
        except Exception:  # a background task: log it; the sweep will poll the job anyway
            log.exception("polling generation %s after a callback failed", generation_id)

    def _poll_one(self, row: Generation) -> str:
        """ "completed", "failed" or "pending"."""
        assert row.id is not None and row.provider_job_id is not None
        provider = self.providers.get(row.provider)
        now = self.clock.now()
        asset: Path | None = None
        error: str | None = None
        retry_after: float | None = None
        try:
            job = provider.fetch(row.provider_job_id)
            if job.status == JobStatus.COMPLETED:
                asset = provider.download(
                    row.provider_job_id, self.assets.path_for(f"generation-{row.id}.mp4")
                )
                if row.kind == GenerationKind.EXTEND.value:
                    # The continuation was made from the source's last frame: join the two into one clip.
                    before = Path(str(row.params["sources"][0]))
                    asset = media.concat(
                        [before, asset], self.assets.path_for(f"generation-{row.id}-extended.mp4")
                    )
        except ProviderError as err:
            job = None
            if not err.retryable:  # an expired clip, a revoked key: waiting will not help
                self._fail_now(row.id, err)
                return "failed"
            error, retry_after = str(err), err.retry_after
        except media.MediaError as err:
            self._fail_now(row.id, err)
            return "failed"
        except OSError as err:
            job, error = None, str(err)
        with self.store.transaction() as repo:
            fresh = repo.get(Generation, row.id)
            assert fresh is not None
            if fresh.status != JobStatus.IN_PROGRESS.value:  # cancelled meanwhile: the row's word stands
                repo.release(fresh)
                return "failed"
            polls = fresh.attempts = fresh.attempts + 1
            timed_out = fresh.submitted_at is not None and now - fresh.submitted_at > timedelta(
                minutes=self.settings.job_timeout_minutes
            )
            outcome = "pending"
            if job is not None and job.status == JobStatus.COMPLETED and asset is not None:
                fresh.status = JobStatus.COMPLETED.value
                fresh.progress = 100
                fresh.asset_path = str(asset)
                fresh.completed_at = now
                fresh.cost = (job.seconds or fresh.seconds) * provider.cost_per_second(fresh.model)
                if fresh.submitted_at is not None:
                    self._learn_duration(fresh.provider, (now - fresh.submitted_at).total_seconds())
                outcome = "completed"
            elif job is not None and job.status in (JobStatus.FAILED, JobStatus.CANCELLED):
                fresh.status = job.status.value
                fresh.error = job.error or "The provider gave no reason."
                outcome = "failed"
            elif timed_out:
                fresh.status = JobStatus.FAILED.value
                fresh.error = (
                    f"The provider did not finish within {self.settings.job_timeout_minutes:g} minutes; "
                    "reply `again` to try once more."
                )
                outcome = "failed"
            else:
                if job is not None:
                    fresh.progress = job.progress
                hint = (job.poll_after if job is not None else retry_after) or 0.0
                delay = self._next_poll_delay(
                    polls=polls,
                    hint=hint,
                    progress=job.progress if job is not None else 0,
                    running_for=(now - (fresh.submitted_at or now)).total_seconds(),
                )
                fresh.next_poll_at = now + timedelta(seconds=delay)
                if error:
                    log.warning("poll of generation %s failed, will retry: %s", row.id, error)
            repo.release(fresh)
            return outcome

    def _fail_now(self, generation_id: int, err: Exception) -> None:
        self._save(
            Generation,
            generation_id,
            status=JobStatus.FAILED.value,
            error=str(err),
            lease_owner=None,
            lease_until=None,
        )

    def _first_poll_delay(self, provider: str, hint: float | None) -> float:
        """The first look at a new job: when jobs at this provider have recently taken to finish, else soon
        enough to read its progress (which then times the next look)."""
        with self._locks_guard:
            recent = sorted(self._durations.get(provider, ()))
        typical = recent[len(recent) // 2] if recent else 0.0
        if hint == 0:  # the provider says it is ready to be asked now (the local renderer)
            return typical
        return max(hint or 0.0, typical or self.settings.poll_min_seconds)

    def _learn_duration(self, provider: str, seconds: float) -> None:
        with self._locks_guard:
            self._durations.setdefault(provider, deque(maxlen=20)).append(seconds)

    def _next_poll_delay(self, *, polls: int, hint: float, progress: int, running_for: float) -> float:
        """When to ask again: back off (2 s doubling to 30 s), but where the provider reports progress, poll
        about when it should be done. The provider's hint is a floor, not the schedule: a 1 s hint kept for
        a half-hour job would be ~900 requests."""
        delay = self._backoff(polls)
        if 0 < progress < 100 and running_for > 0:
            expected = running_for * (100 - progress) / progress
            delay = min(delay, max(expected + 0.25, self.settings.poll_min_seconds / 2))
        return max(hint, delay)

    def _backoff(self, attempts: int) -> float:
        return float(
            min(self.settings.poll_max_seconds, self.settings.poll_min_seconds * 2 ** max(0, attempts - 1))
        )

    def _upload_finished(self, report: SweepReport) -> None:
        """Post finished clips the poll could not post at once (Slack down, a crash in between)."""
        with self.store.read() as repo:
            pending = [g.id for g in repo.generations_missing_upload() if g.id is not None]
        report.uploaded += sum(self._pool.map(self._upload_one, pending))

    def _upload_one(self, generation_id: int) -> bool:
        """Upload one finished clip into its thread, once; True when it is posted now."""
        with self.store.read() as repo:
            row = repo.get(Generation, generation_id)
            if row is None or row.posted_at is not None or row.message_ts is None:
                return False
            round_row = repo.get(Round, row.round_id)
        assert round_row is not None and round_row.id is not None and round_row.parent_ts is not None
        path = _asset(row)
        if path is None:
            message = "The finished clip went missing before it could be posted; reply `again` to retry."
            self._save(Generation, generation_id, status=JobStatus.FAILED.value, error=message)
            return False
        thread = ThreadRef(round_row.channel_id, round_row.parent_ts)
        try:
            file_id = self.publisher.upload_file(
                thread, path, title=f"Variation #{row.number}", comment=f"#{row.number} is ready"
            )
        except PublishError as err:
            log.warning("upload of generation %s failed, will retry: %s", generation_id, err)
            return False
        self._save(Generation, generation_id, file_id=file_id, posted_at=self.clock.now())
        self._refresh_variation(generation_id)
        self.refresh_round(round_row.id)
        return True

    def _save(self, model: type[Round] | type[Generation], row_id: int, **values: object) -> None:
        """Record what a slow call outside the transaction produced (a message ts, a file id…)."""
        with self.store.transaction() as repo:
            row = repo.get(model, row_id)
            assert row is not None, f"{model.__name__} {row_id} vanished"
            for name, value in values.items():
                setattr(row, name, value)
            repo.add(row)

    def _post_sheets(self, report: SweepReport) -> None:
        with self.store.read() as repo:
            todo = [(r, repo.generations_in_round(r.id or 0)) for r in repo.rounds_missing_sheet()]
        report.sheets += sum(self._pool.map(self._post_sheet, todo))

    def _post_sheet(self, item: tuple[Round, Sequence[Generation]]) -> bool:
        """One round's contact sheet (ffmpeg, so off the sweep's own thread); True when it is done."""
        round_row, generations = item
        assert round_row.id is not None and round_row.parent_ts is not None
        ready = [g for g in generations if g.status == JobStatus.COMPLETED.value and _asset(g) is not None]
        file_id = "none"  # nothing to show (every variation failed): never try again
        if ready:
            sheet = self.assets.path_for(f"round-{round_row.id}-sheet.png")
            try:
                media.contact_sheet(
                    [p for g in ready if (p := _asset(g))], sheet, labels=[f"#{g.number}" for g in ready]
                )
                file_id = self.publisher.upload_file(
                    ThreadRef(round_row.channel_id, round_row.parent_ts),
                    sheet,
                    title="Contact sheet",
                    comment="All variations side by side. React on a variation's message to vote.",
                )
            except media.MediaError as err:
                log.error("contact sheet for round %s cannot be made: %s", round_row.id, err)
            except PublishError as err:
                log.warning("contact sheet for round %s failed, will retry: %s", round_row.id, err)
                return False
        self._save(Round, round_row.id, sheet_file_id=file_id)
        return True

    def _close_due_rounds(self, report: SweepReport) -> None:
        with self.store.read() as repo:
            due = [r.id for r in repo.due_rounds(self.clock.now())]
        for round_id in due:
            assert round_id is not None
            if self.close_round(round_id, actor=DEADLINE_ACTOR).done:
                report.closed += 1

    def _announce_closed(self, report: SweepReport) -> None:
        with self.store.read() as repo:
            pending = [r.id for r in repo.rounds_missing_announcement()]
        for round_id in pending:
            assert round_id is not None
            self._announce(round_id)
            report.announced += 1

    # --- views ---------------------------------------------------------------------------------

    def _refresh_lock(self, round_id: int) -> threading.Lock:
        with self._locks_guard:
            return self._refresh_locks.setdefault(round_id, threading.Lock())

    def refresh_round(self, round_id: int) -> None:
        """Bring the parent message and every variation message up to date with the rows.

        Read and publish under one lock per round: two votes refreshing at once could otherwise post
        their views out of order and leave the older tally showing.
        """
        with self._refresh_lock(round_id):
            self._refresh_round(round_id)

    def _refresh_round(self, round_id: int) -> None:
        with self.store.read() as repo:
            round_row = repo.get(Round, round_id)
            if round_row is None or round_row.parent_ts is None:
                return
            view = self._round_view(repo, round_row)
            messages = {g.id: g.message_ts for g in repo.generations_in_round(round_id)}
        thread = ThreadRef(round_row.channel_id, round_row.parent_ts)
        try:
            if self._changed(("round", round_id), view):
                self.publisher.update_round(thread, view)
            for variation in view.variations:
                ts = messages.get(variation.generation_id)
                if ts is not None and self._changed(("variation", variation.generation_id), variation):
                    self.publisher.update_variation(thread, ts, variation)
        except PublishError as err:
            self._forget(("round", round_id))
            log.warning("could not refresh round %s: %s", round_id, err)

    def _changed(self, key: tuple[str, int], view: object) -> bool:
        """True (and remembered) when `view` differs from what the message last showed."""
        with self._locks_guard:
            if self._shown.get(key) == view:
                return False
            self._shown[key] = view
            return True

    def _forget(self, key: tuple[str, int]) -> None:
        with self._locks_guard:
            self._shown.pop(key, None)

    def _refresh_variation(self, generation_id: int) -> None:
        with self.store.read() as repo:
            row = repo.get(Generation, generation_id)
            if row is None or row.message_ts is None:
                return
        with self._refresh_lock(row.round_id):
            self._refresh_variation_locked(generation_id)

    def _refresh_variation_locked(self, generation_id: int) -> None:
        with self.store.read() as repo:
            row = repo.get(Generation, generation_id)
            if row is None or row.message_ts is None:
                return
            round_row = repo.get(Round, row.round_id)
            assert round_row is not None and round_row.parent_ts is not None
            view = next(
                v for v in self._round_view(repo, round_row).variations if v.generation_id == generation_id
            )
            thread = ThreadRef(round_row.channel_id, round_row.parent_ts)
            message_ts = row.message_ts
        if not self._changed(("variation", generation_id), view):
            return
        try:
            self.publisher.update_variation(thread, message_ts, view)
        except PublishError as err:
            self._forget(("variation", generation_id))
            log.warning("could not update variation %s: %s", generation_id, err)

    def round_view(self, round_id: int) -> RoundView:
        with self.store.read() as repo:
            round_row = repo.get(Round, round_id)
            if round_row is None:
                raise NotFound("That round no longer exists.")
            return self._round_view(repo, round_row)

    def _round_view(self, repo: Repo, round_row: Round) -> RoundView:
        assert round_row.id is not None
        generations = repo.generations_in_round(round_row.id)
        tally = self._tally(repo, round_row, generations)
        counts = {t.generation_id: t.votes for t in tally.tallies}
        is_open = round_row.status == RoundStatus.OPEN.value
        hide = round_row.blind and is_open
        numbers = {g.id: g.number for g in generations}
        specs = {g.id: g.spec for g in generations}
        queued = [g for g in generations if g.status == JobStatus.QUEUED.value]
        # A place in the provider's line, across every round waiting on it, not just this one.
        place = {g.id: repo.queued_ahead(g.provider, g.id or 0) + 1 for g in queued}
        variations = tuple(
            VariationView(
                round_id=round_row.id,
                generation_id=g.id or 0,
                number=g.number,
                kind=GenerationKind(g.kind),
                prompt=g.prompt,
                status=JobStatus(g.status),
                progress=g.progress,
                seconds=g.seconds,
                aspect=Aspect(g.aspect),
                provider=g.provider,
                parent_number=numbers.get(g.parent_id) if g.parent_id else None,
                change=g.change,
                error=g.error,
                votes=None if hide else counts.get(g.id or 0, 0),
                is_winner=not is_open and g.id == round_row.winner_generation_id,
                queue_position=place.get(g.id),
                changed=prompts.changed_layers(
                    PromptSpec.from_dict(specs[g.parent_id]), PromptSpec.from_dict(g.spec)
                )
                if g.parent_id in specs
                else (),
            )
            for g in generations
        )
        winner_number = (
            numbers.get(round_row.winner_generation_id) if round_row.winner_generation_id else None
        )
        return RoundView(
            round_id=round_row.id,
            channel_id=round_row.channel_id,
            owner_id=round_row.owner_id,
            title=round_row.title,
            status=RoundStatus(round_row.status),
            closes_at_epoch=int(round_row.closes_at.timestamp()),
            blind=round_row.blind,
            estimated_cost=round_row.estimated_cost,
            variations=variations,
            winner_number=None if is_open else winner_number,
            voters=tally.voters,
        )


def _float(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _whole(text: str, *, low: int, high: int) -> int | None:
    text = text.strip().removesuffix("s").strip()
    return int(text) if text.isdigit() and low <= int(text) <= high else None


def _asset(generation: Generation) -> Path | None:
    path = Path(generation.asset_path) if generation.asset_path else None
    return path if path is not None and path.exists() else None


def _numbers_hint(generations: Sequence[Generation]) -> str:
    if not generations:
        return "This round has no variations yet."
    return "This round has " + ", ".join(f"#{g.number}" for g in generations) + "."


def _finding_dict(finding: Finding) -> dict[str, str]:
    return {
        "rule": finding.rule,
        "severity": finding.severity.value,
        "message": finding.message,
        "fix": finding.fix,
    }


def _finding_from(data: dict[str, object]) -> Finding:
    return Finding(
        rule=str(data["rule"]),
        severity=Severity(str(data["severity"])),
        message=str(data["message"]),
        fix=str(data["fix"]),
    )


def _pattern_card(pattern: Pattern) -> PatternCard:
    assert pattern.id is not None
    outcome = pattern.outcome
    return PatternCard(
        pattern_id=pattern.id,
        title=pattern.title,
        prompt=pattern.prompt,
        spec=PromptSpec.from_dict(pattern.spec),
        winner_number=int(outcome.get("winner_number", 0)),
        votes=int(outcome.get("votes", 0)),
        voters=int(outcome.get("voters", 0)),
        rounds_closed_at=pattern.created_at.strftime("%Y-%m-%d"),
        settings=dict(pattern.settings),
        rhythm=tuple(pattern.rhythm),
    )
