"""Channels: their defaults (`/sora settings`), who may change them, estimates, and the daily budget."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from bot import prompts, votes
from bot.errors import InvalidInput, NotAllowed, PublishError
from bot.ports import Clock, Publisher
from bot.pricing import PriceTable, UnknownPrice
from bot.providers.registry import Providers
from bot.tuning import CoreSettings
from bot.views import ChannelDefaults
from storage.models import ChannelSettings, Generation, Spend
from storage.store import Repo, Store

log = logging.getLogger(__name__)


GUARDED_SETTINGS = ("budget", "provider", "model")  # what spends money: admins only
# `/sora settings` keys whose column has another name.
_COLUMNS = {
    "vote": "vote_minutes",
    "budget": "daily_budget",
    "emoji": "vote_emoji",
    "multi": "multi_vote",
    "tie": "tie_minutes",
}


def describe_changes(before: ChannelDefaults, after: ChannelDefaults) -> str:
    """ "budget $10.00 → no limit, vote 60 → 30 minutes": what a settings change did, for the channel."""

    def shown(defaults: ChannelDefaults) -> dict[str, str]:
        return {
            "provider": defaults.provider,
            "model": defaults.model or "default",
            "goal": defaults.goal.value if defaults.goal else "none",
            "vote": f"{defaults.vote_minutes} minutes",
            "blind": "on" if defaults.blind else "off",
            "emoji": " ".join(f":{e}:" for e in votes.shown_order(defaults.vote_emoji)),
            "multi": "on" if defaults.multi else "off",
            "owner_votes": "on" if defaults.owner_votes else "off",
            "quorum": "off" if defaults.quorum is None else f"{defaults.quorum} voters",
            "tie": f"{defaults.tie_minutes} minutes",
            "budget": "no limit" if defaults.daily_budget is None else f"${defaults.daily_budget:,.2f} a day",
        }

    old, new = shown(before), shown(after)
    return ", ".join(f"{key} {old[key]} → {new[key]}" for key in old if old[key] != new[key])


class Channels:
    def __init__(
        self,
        *,
        store: Store,
        providers: Providers,
        prices: PriceTable,
        clock: Clock,
        settings: CoreSettings,
        publisher: Publisher,
    ) -> None:
        self.store = store
        self.publisher = publisher
        self.providers = providers
        self.prices = prices
        self.clock = clock
        self.settings = settings

    def defaults(self, channel_id: str) -> ChannelDefaults:
        with self.store.read() as repo:
            return self.defaults_in(repo, channel_id)

    def legacy_rules(self, *, blind: bool) -> votes.VoteRules:
        """The rules a round from before rules were stored ran under: a vote on each variation, owner included."""
        return votes.VoteRules(
            emoji=self.settings.vote_emoji,
            multi=True,
            minutes=self.settings.vote_minutes,
            blind=blind,
            tie_minutes=self.settings.tie_minutes,
        )

    def defaults_in(self, repo: Repo, channel_id: str) -> ChannelDefaults:
        row = repo.channels.settings(channel_id)
        provider = (row.provider if row else None) or self.providers.default
        if provider not in self.providers.available:  # configured once, since removed: use the default
            provider = self.providers.default
        return ChannelDefaults(
            channel_id=channel_id,
            provider=provider,
            model=row.model if row else None,
            goal=prompts.Goal(row.goal) if row and row.goal else None,
            vote_minutes=(row.vote_minutes if row else None) or self.settings.vote_minutes,
            blind=bool(row and row.blind),
            vote_emoji=frozenset(row.vote_emoji) if row and row.vote_emoji else self.settings.vote_emoji,
            multi=bool(row and row.multi_vote),
            owner_votes=row.owner_votes if row and row.owner_votes is not None else True,
            quorum=row.quorum if row else None,
            tie_minutes=row.tie_minutes if row and row.tie_minutes is not None else self.settings.tie_minutes,
            daily_budget=row.daily_budget
            if row and row.daily_budget is not None
            else self.settings.daily_budget,
            spent_today=repo.ledger.spent_today(channel_id, day=self.today()),
        )

    def update_settings(
        self, *, team_id: str, channel_id: str, user_id: str, changes: Sequence[tuple[str, object]]
    ) -> ChannelDefaults:
        """Change a channel's defaults (`provider`, `model`, `goal`, `budget`) and voting rules (`vote`, `emoji`,
        `multi`, `owner_votes`, `quorum`, `blind`, `tie`). Rounds already running keep the rules they started with.

        What costs money (budget, provider, model) is for workspace admins and the people the deployment names;
        every change is announced in the channel, so nobody lifts a budget quietly."""
        values = dict(changes)
        self._may_change(user_id, values)
        provider = values.get("provider")
        if provider is not None:
            self.providers.pick(str(provider))  # refuses, by name, a provider that is not configured
        now = self.clock.now()
        with self.store.transaction() as repo:
            before = self.defaults_in(repo, channel_id)
            row = repo.channels.settings(channel_id) or ChannelSettings(
                channel_id=channel_id, team_id=team_id, updated_by=user_id, updated_at=now
            )
            for key, value in values.items():
                if key == "emoji":  # a tuple of names, or None: the deployment's set
                    value = sorted(str(e) for e in value) if isinstance(value, tuple) else []
                setattr(
                    row, _COLUMNS.get(key, key), value.value if isinstance(value, prompts.Goal) else value
                )
            if "provider" in values and "model" not in values:
                row.model = None  # a model id belongs to the provider it was set for
            row.updated_by, row.updated_at = user_id, now
            repo.channels.save_settings(row)
            after = self.defaults_in(repo, channel_id)
        said = describe_changes(before, after)
        if said:
            try:
                self.publisher.notify_channel(
                    channel_id, f"changed this channel's settings: {said}.", by=user_id
                )
            except PublishError as err:  # the change stands; only its notice is missing
                log.warning("settings of %s changed by %s, but not announced: %s", channel_id, user_id, err)
        return after

    def _may_change(self, user_id: str, values: dict[str, object]) -> None:
        guarded = [key for key in GUARDED_SETTINGS if key in values]
        if not guarded or user_id in self.settings.admins:
            return
        try:
            admin = self.publisher.is_admin(user_id)
        except PublishError as err:
            log.warning("could not ask Slack whether %s is an admin: %s", user_id, err)
            raise InvalidInput(
                "Slack could not confirm who may change this just now, so nothing was changed.",
                hint="Try again in a minute.",
            ) from err
        if not admin:
            raise NotAllowed(
                f"Only workspace admins (and the people this bot's operators named) can change "
                f"{' or '.join(guarded)}; nothing was changed.",
                hint="Ask one of them. The goal and the voting rules are yours to change.",
            )

    def estimate(
        self, provider: str, model: str | None, *, seconds: int, variations: int
    ) -> tuple[float, str]:
        """The cost shown before anything is spent, and the one charged."""
        try:
            estimate = self.prices.estimate(provider, model, seconds=seconds, variations=variations)
        except UnknownPrice:
            # A provider without a configured price is charged at its own idea of its rate.
            rate = self.providers.get(provider).cost_per_second(model)
            total = rate * seconds * variations
            return total, f"≈ ${total:.2f} ({variations} × {seconds} s at ${rate:.2f}/s)" if total else "free"
        return estimate.total, estimate.summary

    def charge(
        self,
        repo: Repo,
        defaults: ChannelDefaults,
        *,
        team_id: str,
        user_id: str,
        amount: float,
        round_id: int | None,
        provider: str,
        model: str | None,
        seconds: int,
    ) -> None:
        """Spend from the channel's daily budget, atomically; raising rolls the whole use case back."""
        budget, now = defaults.daily_budget, self.clock.now()
        if budget is not None:
            repo.ledger.lock_channel(
                channel_id=defaults.channel_id, team_id=team_id, user_id=user_id, now=now
            )
            spent = repo.ledger.spent_today(defaults.channel_id, day=self.today(now))
            if spent + amount > budget + 1e-9:
                raise InvalidInput(
                    f"Nothing was submitted: this channel's daily budget is ${budget:.2f}, "
                    f"${spent:.2f} is spent today and this needs ${amount:.2f}.",
                    hint="Fewer variations or seconds (Edit) cost less; `/sora settings budget=…` changes the budget.",
                )
        repo.ledger.record(
            Spend(
                team_id=team_id,
                channel_id=defaults.channel_id,
                user_id=user_id,
                day=self.today(now),
                round_id=round_id,
                provider=provider,
                model=model,
                seconds=seconds,
                amount=amount,
                created_at=now,
            )
        )

    def today(self, now: datetime | None = None) -> str:
        return (now or self.clock.now()).date().isoformat()


def refund(repo: Repo, generation: Generation, *, now: datetime) -> bool:
    """Give a variation that will never render (refused, cancelled, failed at the provider) its share of the
    charge back to the channel's budget for the day it was charged, once however often this is called. Returns
    True when this call gave it back (the caller then refreshes the round's cost)."""
    if generation.id is None or generation.charged <= 0:
        return False
    round_row = repo.rounds.get(generation.round_id)
    if round_row is None:
        return False
    refunded = repo.ledger.refund(
        Spend(
            team_id=round_row.team_id,
            channel_id=round_row.channel_id,
            user_id=generation.requested_by,
            day=generation.created_at.date().isoformat(),
            round_id=generation.round_id,
            provider=generation.provider,
            model=generation.model,
            seconds=generation.seconds,
            amount=-generation.charged,
            refund_of=generation.id,
            created_at=now,
        )
    )
    if refunded:
        repo.rounds.add_cost(generation.round_id, -generation.charged)
        log.info(
            "generation %s: refunded $%.2f to %s", generation.id, generation.charged, round_row.channel_id
        )
    return refunded
