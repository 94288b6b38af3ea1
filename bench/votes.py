"""Votes processed per second from signed reaction events, beside a bare Bolt app that only acknowledges them.

A real round (draft → Generate → the instant provider's clips, the real ticker sweeping) gets `reaction_added`
and `reaction_removed` events on its variation messages from 20 concurrent senders over HTTP, with Slack's
retries (same event_id, `X-Slack-Retry-Num`) and plain duplicates among them. The round keeps the default rule:
one vote per person per round. The bench knows which vote rows must end active or removed (the last event per
person, variation and emoji), waits until the database holds exactly that, and prints events/s processed, ack
p50/p99, lost and doubled votes, and the most `chat.update` calls any message got in any 1-second window. Then
a second round takes thousands of votes, to compare the first votes' throughput with the last ones'.

Prints figures and PASS/MISS per goal; it never fails on a figure (exit 0 unless the bench itself breaks).
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import re
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # this checkout's code

from _kit import SECRET, bare_app, peak_rss_mb, postgres_schema, quantile, sora_runtime  # noqa: E402
from sqlmodel import select  # noqa: E402

from bot.bootstrap import Runtime  # noqa: E402
from devkit.simulator import SimResponse, SlackSimulator  # noqa: E402
from devkit.slack_api import FakeSlack  # noqa: E402
from handlers import blocks  # noqa: E402
from handlers.http import HttpServer, make_wsgi_app  # noqa: E402
from storage.models import Generation, Round, Vote  # noqa: E402

CHANNEL = "C0VOTES"
OWNER = "U0OWNER"
EMOJI = ["+1", "heart", "fire", "star", "white_check_mark", "raised_hands", "star-struck", "100"]
GOAL_RATE = 300.0  # events/s processed
GOAL_ACK_P99 = 0.100  # seconds
GOAL_UPDATES = 1  # chat.update per message in any 1-second window

Key = tuple[int, str, str]  # generation_id, user_id, emoji


@dataclass
class Send:
    """One delivery: an event, or Slack delivering it again (`retry_num`, or a plain duplicate)."""

    kind: str  # reaction_added / reaction_removed
    user_id: str
    message_ts: str
    key: Key
    event_id: str
    retry_num: int | None = None
    again: bool = False  # a delivery of an event already sent (same event_id and event_ts)


@dataclass
class Plan:
    senders: list[list[Send]]
    last: dict[Key, tuple[str, bool]] = field(default_factory=dict)  # key → (event_id of last event, active)
    originals: int = 0
    adds: int = 0
    removes: int = 0

    @property
    def deliveries(self) -> int:
        return sum(len(s) for s in self.senders)


def plan_events(
    rng: random.Random,
    *,
    voters: list[str],
    messages: dict[int, str],
    senders: int,
    events: int,
    removes: float,
    retries: float,
    duplicates: float,
    tag: str,
) -> Plan:
    """Each person belongs to one sender, so one person's events go out in order (as Slack sends them)."""
    plan = Plan(senders=[[] for _ in range(senders)])
    held: dict[str, set[Key]] = defaultdict(set)
    counter = itertools.count()
    per_sender = events // senders
    for index, out in enumerate(plan.senders):
        mine = voters[index::senders]
        free = {u: [(g, u, e) for g in messages for e in EMOJI] for u in mine}
        for u in mine:
            rng.shuffle(free[u])
        pending: list[tuple[int, Send]] = []  # retries due at a later position
        for position in range(per_sender):
            user = rng.choice([u for u in mine if free[u] or held[u]])
            if held[user] and (not free[user] or rng.random() < removes):
                key = rng.choice(sorted(held[user]))
                held[user].discard(key)
                free[user].append(key)
                kind, active = "reaction_removed", False
                plan.removes += 1
            else:
                key = free[user].pop()
                held[user].add(key)
                kind, active = "reaction_added", True
                plan.adds += 1
            event_id = f"Ev{tag}{next(counter):07d}"
            send = Send(kind, user, messages[key[0]], key, event_id)
            out.append(send)
            plan.last[key] = (event_id, active)
            plan.originals += 1
            if rng.random() < duplicates:
                out.append(Send(kind, user, send.message_ts, key, event_id, again=True))
            if rng.random() < retries:
                retry = Send(kind, user, send.message_ts, key, event_id, retry_num=1, again=True)
                pending.append((position + rng.randint(1, 20), retry))
            for due in [p for p in pending if p[0] <= position]:
                out.append(due[1])
                pending.remove(due)
        out.extend(send for _, send in pending)
    return plan


@dataclass
class Drive:
    acks: list[float]
    started: float
    sent: float  # when the last answer came back
    event_ts: dict[str, str]  # event_id → the event_ts it went out with


def drive(sim: SlackSimulator, senders: list[list[Send]], *, record: bool) -> Drive:
    """Every sender's list from its own thread; event_ts from one counter, so one key's events are ordered."""
    acks: list[float] = []
    lock = threading.Lock()
    base = int(time.time())
    ticks = itertools.count(1)
    event_ts: dict[str, str] = {}

    def sender(sends: list[Send]) -> None:
        mine: list[float] = []
        for send in sends:
            if send.again:
                ts = event_ts[send.event_id]
            else:
                with lock:
                    ts = f"{base}.{next(ticks):06d}"
                event_ts[send.event_id] = ts
            react = sim.react if send.kind == "reaction_added" else sim.unreact
            started = time.perf_counter()
            response: SimResponse = react(
                send.user_id,
                CHANNEL,
                send.message_ts,
                send.key[2],
                event_id=send.event_id,
                retry_num=send.retry_num,
                event_ts=ts,
                record=record and not send.again,
            )
            mine.append(time.perf_counter() - started)
            if response.status != 200:
                raise RuntimeError(f"{send.kind} answered {response.status}: {response.body[:200]}")
        with lock:
            acks.extend(mine)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(senders)) as pool:
        for future in [pool.submit(sender, s) for s in senders]:
            future.result()
    return Drive(acks=acks, started=started, sent=time.perf_counter(), event_ts=event_ts)


@dataclass
class Check:
    done_at: float | None
    missing: int  # keys whose last event is not what the row shows
    extra_rows: int  # rows beyond one per key, or for keys never sent


def wait_for_votes(
    runtime: Runtime, round_id: int, plan: Plan, event_ts: dict[str, str], timeout: float
) -> Check:
    want = {key: (event_ts[event_id], active) for key, (event_id, active) in plan.last.items()}
    deadline = time.perf_counter() + timeout
    # Plain rows, not ORM objects, and not too often: the bench shares the process (and its GIL) with the bot.
    query = select(Vote.generation_id, Vote.user_id, Vote.emoji, Vote.event_ts, Vote.active).where(
        Vote.round_id == round_id
    )
    while True:
        with runtime.store.engine.connect() as conn:
            seen = [((g, u, e), (ts, bool(a))) for g, u, e, ts, a in conn.execute(query).all()]
        now = time.perf_counter()
        have = dict(seen)
        missing = sum(1 for key, state in want.items() if have.get(key) != state)
        extra = len(seen) - len(have) + sum(1 for key in have if key not in want)
        if missing == 0 or now > deadline:
            return Check(done_at=now if missing == 0 else None, missing=missing, extra_rows=extra)
        time.sleep(0.05)


def counted_votes(runtime: Runtime) -> dict[str, float]:
    """The bot's own count of tally changes (`sora_votes_total` by change), from its metrics."""
    assert runtime.metrics is not None
    text = runtime.metrics.exposition()[0].decode()
    found: dict[str, float] = {}
    for change, value in re.findall(r'^\w*votes_total\{change="(\w+)"\} (\S+)$', text, re.MULTILINE):
        found[change] = float(value)
    return found


def listener_errors(runtime: Runtime) -> float:
    assert runtime.metrics is not None
    text = runtime.metrics.exposition()[0].decode()
    return sum(float(v) for v in re.findall(r"^\w*listener_errors_total\{[^}]*\} (\S+)$", text, re.MULTILINE))


def updates_per_second(fake: FakeSlack, since: float) -> tuple[int, int, int, float]:
    """(calls, messages, most calls to one message in any 1-second window, smallest gap between two)."""
    by_message: dict[tuple[str, str], list[float]] = defaultdict(list)
    for call in fake.calls("chat.update"):
        if call.at >= since:
            by_message[(str(call.params.get("channel")), str(call.params.get("ts")))].append(call.at)
    most, gap = 0, float("inf")
    for times in by_message.values():
        times.sort()
        j = 0
        for i, start in enumerate(times):
            while times[j] < start - 1.0 + 1e-9:
                j += 1
            most = max(most, i - j + 1)
            if i:
                gap = min(gap, start - times[i - 1])
    return sum(len(t) for t in by_message.values()), len(by_message), most, gap


def ready_round(
    sim: SlackSimulator, fake: FakeSlack, runtime: Runtime, idea: str
) -> tuple[int, dict[int, str]]:
    """Draft → Generate → every clip posted (the ticker sweeps); returns the round id and variation messages."""
    seen = len(fake.ephemerals(CHANNEL, OWNER))
    assert sim.command(OWNER, CHANNEL, f"draft {idea}").ok
    card = fake.wait_for(
        lambda: fake.ephemerals(CHANNEL, OWNER)[seen:] and fake.ephemerals(CHANNEL, OWNER)[-1]
    )
    with runtime.store.read() as repo:
        known = {r.id for r in repo.session.exec(select(Round)).all()}
    assert sim.click_button(OWNER, message=card, action_id=blocks.GENERATE).ok

    def posted() -> tuple[int, dict[int, str]] | None:
        with runtime.store.read() as repo:
            rounds = [r for r in repo.session.exec(select(Round)).all() if r.id not in known]
            if not rounds:
                return None
            gens = repo.session.exec(select(Generation).where(Generation.round_id == rounds[0].id)).all()
            if len(gens) < 3 or not all(g.message_ts and g.clip_ts for g in gens):
                return None
            assert rounds[0].id is not None
            return rounds[0].id, {g.id: g.message_ts for g in gens if g.id is not None and g.message_ts}

    return fake.wait_for(posted, what="a round with every clip posted", timeout=60)


@contextmanager
def running_bot(fake: FakeSlack, tmp: Path, database_url: str | None) -> Iterator[tuple[Runtime, HttpServer]]:
    runtime = sora_runtime(fake, tmp / "data", database_url=database_url)
    serving = runtime.start(host="127.0.0.1", port=0)  # as `serve` starts it
    assert serving.http is not None
    runtime.ticker.start()  # the real sweep: clips, and the outbox's coalesced chat.update calls
    try:
        yield runtime, serving.http
    finally:
        serving.stop()
        runtime.close()


def run_bot(name: str, fake: FakeSlack, database_url: str | None, args: argparse.Namespace) -> dict[str, str]:
    rng = random.Random(args.seed)
    voters = [f"U0V{i:04d}" for i in range(args.users)]
    figures: dict[str, str] = {}
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_bot(fake, Path(tmp), database_url) as (runtime, server),
    ):
        sim = SlackSimulator(fake, app_url=server.url, signing_secret=SECRET, timeout=30)
        round_id, messages = ready_round(sim, fake, runtime, "a paper boat in a gutter stream, macro")
        growth_round, growth_messages = ready_round(sim, fake, runtime, "a kite over dunes at dusk")

        # 1. Mixed traffic: adds, removes, retries and duplicates.
        plan = plan_events(
            rng,
            voters=voters,
            messages=messages,
            senders=args.senders,
            events=args.events,
            removes=0.3,
            retries=0.1,
            duplicates=0.05,
            tag=f"{name[:2].upper()}M",
        )
        before = counted_votes(runtime)
        since = time.time()
        run = drive(sim, plan.senders, record=True)
        check = wait_for_votes(runtime, round_id, plan, run.event_ts, args.timeout)
        time.sleep(2.5)  # let the outbox send its last coalesced updates
        after = counted_votes(runtime)
        updates, updated, most, gap = updates_per_second(fake, since)
        added = after.get("added", 0) - before.get("added", 0)
        removed = after.get("removed", 0) - before.get("removed", 0)
        elapsed = (check.done_at or time.perf_counter()) - run.started
        print(
            f"\n[{name}] round {round_id}, {len(voters)} voters, one vote per person per round (the default)"
        )
        print(
            f"  sent {plan.originals} events + {plan.deliveries - plan.originals} retries/duplicates "
            f"({plan.adds} adds, {plan.removes} removes) from {args.senders} senders"
        )
        print(
            f"  all answered in {run.sent - run.started:.2f} s "
            f"({plan.deliveries / (run.sent - run.started):.0f} deliveries/s acked); "
            f"database right after {elapsed:.2f} s"
            + ("" if check.done_at else f" (TIMED OUT after {args.timeout:.0f} s)")
        )
        rate = plan.originals / elapsed
        print(
            f"  processed {rate:.0f} events/s ({plan.deliveries / elapsed:.0f} deliveries/s); "
            f"ack p50 {quantile(run.acks, 50) * 1000:.1f} ms, p95 {quantile(run.acks, 95) * 1000:.1f} ms, "
            f"p99 {quantile(run.acks, 99) * 1000:.1f} ms"
        )
        # Fewer tally changes than events is no loss: a removal handled before its own add leaves both no-ops.
        lost = check.missing
        doubled = check.extra_rows + max(0, added - plan.adds) + max(0, removed - plan.removes)
        print(
            f"  vote rows not as the last event left them: {check.missing}; extra rows: {check.extra_rows}; "
            f"tally changes counted {added:.0f} added / {removed:.0f} removed "
            f"(expected {plan.adds} / {plan.removes}); listener errors {listener_errors(runtime):.0f}"
        )
        print(
            f"  chat.update: {updates} calls to {updated} messages; most to one message in any 1 s: {most}; "
            f"smallest gap {gap:.2f} s"
        )
        figures.update(
            rate=f"{rate:.0f}",
            p50=f"{quantile(run.acks, 50) * 1000:.1f}",
            p99=f"{quantile(run.acks, 99) * 1000:.1f}",
            lost=str(lost),
            doubled=str(doubled),
            updates=str(most),
        )
        verdicts = [
            (rate >= GOAL_RATE, f"{rate:.0f} events/s processed >= {GOAL_RATE:.0f}"),
            (quantile(run.acks, 99) < GOAL_ACK_P99, f"ack p99 < {GOAL_ACK_P99 * 1000:.0f} ms"),
            (lost == 0, f"lost votes {lost} == 0"),
            (doubled == 0, f"doubled votes {doubled} == 0"),
            (most <= GOAL_UPDATES, f"chat.update per message per second {most} <= {GOAL_UPDATES}"),
        ]

        # 2. The cost of one vote as the round fills: the first N votes against the last N.
        growth = plan_events(
            rng,
            voters=voters,
            messages=growth_messages,
            senders=args.senders,
            events=args.growth,
            removes=0.0,
            retries=0.0,
            duplicates=0.0,
            tag=f"{name[:2].upper()}G",
        )
        n = args.window // args.senders
        batches = {
            "first": [s[:n] for s in growth.senders],
            "middle": [s[n:-n] for s in growth.senders],
            "last": [s[-n:] for s in growth.senders],
        }
        rates: dict[str, float] = {}
        in_round = 0
        event_ts: dict[str, str] = {}
        for label, senders in batches.items():
            sub = Plan(senders=senders)
            for s in senders:
                for send in s:
                    sub.last[send.key] = growth.last[send.key]
            run = drive(sim, senders, record=True)
            event_ts.update(run.event_ts)
            done = wait_for_votes(runtime, growth_round, sub, event_ts, args.timeout)
            took = (done.done_at or time.perf_counter()) - run.started
            count = sum(len(s) for s in senders)
            rates[label] = count / took
            if label != "middle":
                print(
                    f"  {label} {count} votes (with {in_round} already in the round): {took:.2f} s, "
                    f"{rates[label]:.0f} votes/s, ack p99 {quantile(run.acks, 99) * 1000:.1f} ms"
                    + ("" if done.done_at else " (TIMED OUT)")
                )
            in_round += count
        ratio = rates["last"] / rates["first"]
        print(f"  last/first throughput {ratio:.2f} with {in_round} votes in the round")
        figures.update(first=f"{rates['first']:.0f}", last=f"{rates['last']:.0f}")
        verdicts.append((ratio >= 0.8, f"last/first throughput {ratio:.2f} >= 0.8 (cost flat in votes held)"))
        for ok, text in verdicts:
            print(f"{'PASS' if ok else 'MISS'}  {name}: {text}")
    return figures


def run_bare(fake: FakeSlack, args: argparse.Namespace, voters: list[str]) -> dict[str, str]:
    rng = random.Random(args.seed)
    app = bare_app(fake)
    server = HttpServer(
        make_wsgi_app(app, signing_secret=SECRET, health=lambda: {"ok": True}), host="127.0.0.1", port=0
    ).start()
    try:
        sim = SlackSimulator(fake, app_url=server.url, signing_secret=SECRET, timeout=30)
        target = fake.record_user_message(CHANNEL, OWNER, "a message people react to")
        plan = plan_events(
            rng,
            voters=voters,
            messages={1: target.ts, 2: target.ts, 3: target.ts},
            senders=args.senders,
            events=args.events,
            removes=0.3,
            retries=0.1,
            duplicates=0.05,
            tag="BB",
        )
        run = drive(sim, plan.senders, record=False)
    finally:
        server.stop()
    took = run.sent - run.started
    print(
        f"\n[bare Bolt] the same {plan.deliveries} deliveries acked in {took:.2f} s: "
        f"{plan.originals / took:.0f} events/s, ack p50 {quantile(run.acks, 50) * 1000:.1f} ms, "
        f"p99 {quantile(run.acks, 99) * 1000:.1f} ms"
    )
    return {
        "rate": f"{plan.originals / took:.0f}",
        "p50": f"{quantile(run.acks, 50) * 1000:.1f}",
        "p99": f"{quantile(run.acks, 99) * 1000:.1f}",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--senders", type=int, default=20)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--events", type=int, default=600, help="distinct events in the mixed run")
    parser.add_argument("--growth", type=int, default=1200, help="votes into the second round")
    parser.add_argument("--window", type=int, default=200, help="the first and last N votes compared")
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"),
    )
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--seed", type=int, default=9)
    args = parser.parse_args(argv)
    if args.growth < 2 * args.window:
        parser.error(
            "--growth must be at least twice --window (the first and the last votes are timed apart)"
        )
    voters = [f"U0V{i:04d}" for i in range(args.users)]
    table: dict[str, dict[str, str]] = {}
    users = {OWNER: "owner", **{u: f"voter{i}" for i, u in enumerate(voters)}}
    with FakeSlack(users=users, channels={CHANNEL: "votes"}) as fake:
        for name in args.databases.split(","):
            if name == "sqlite":
                table[name] = run_bot(name, fake, None, args)
            else:
                with postgres_schema(args.postgres_url) as url:
                    table[name] = run_bot(name, fake, url, args)
        table["bare Bolt"] = run_bare(fake, args, voters)
    print(
        "\n| app | events/s | ack p50 ms | ack p99 ms | lost | doubled | updates/msg/s | first N/s | last N/s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, f in table.items():
        cells = [f.get(k, "–") for k in ("rate", "p50", "p99", "lost", "doubled", "updates", "first", "last")]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print(f"Peak RSS of the whole bench process: {peak_rss_mb():.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
