"""Time to HTTP 200 for Slack's requests on the production server, beside a bare Bolt app that only acks.

20 concurrent clients send signed slash commands, reaction events and button clicks to `sora-bot`'s real app
(real services, SQLite, the instant provider, a fake Slack Web API) served by `handlers.http.HttpServer`; then the
same traffic goes to a bare Bolt app behind the same edge and server. Prints p50/p95/p99 per kind for each, the
process's RSS, and what stalled and oversized clients cost the server (threads, memory).

Prints figures and PASS/MISS per goal; it never fails on a figure (exit 0 unless the bench itself breaks).
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # this checkout's code

from _kit import SECRET, bare_app, peak_rss_mb, percentiles, rss_mb, sora_runtime  # noqa: E402

from devkit.simulator import SlackSimulator  # noqa: E402
from devkit.slack_api import Ephemeral, FakeSlack  # noqa: E402
from handlers import blocks  # noqa: E402
from handlers.http import HttpServer, make_wsgi_app  # noqa: E402

CHANNEL = "C0BENCH"
USERS = {f"U0B{i:03d}": f"user{i}" for i in range(40)}
ACK_GOAL_P99 = 0.1  # seconds: Slack gives 3 s; the goal is a tenth of a second at p99…
ACK_GOAL_RATIO = 1.5  # …and within 1.5× of a bare Bolt app that only acks, on the same server in the same run


def draft_cards(sim: SlackSimulator, fake: FakeSlack, users: list[str]) -> dict[str, Ephemeral]:
    """One draft card per person, made by sora-bot, to click on."""
    cards: dict[str, Ephemeral] = {}
    for user in users:
        assert sim.command(user, CHANNEL, "draft a paper boat in a gutter stream, macro").ok
        cards[user] = fake.wait_for(lambda u=user: (fake.ephemerals(CHANNEL, u) or [None])[-1], what="card")
    return cards


def drive(
    sim: SlackSimulator, fake: FakeSlack, cards: dict[str, Ephemeral], *, per_client: int
) -> dict[str, list[float]]:
    """Each client sends `per_client` of each kind, interleaved; returns seconds to 200 per kind."""
    users = list(cards)
    clients = len(users)
    target = fake.record_user_message(CHANNEL, users[0], "a message people react to")
    times: dict[str, list[float]] = {"command": [], "reaction": [], "click": []}
    lock = threading.Lock()
    emoji = ["+1", "heart", "fire", "eyes", "tada"]

    def client(index: int) -> None:
        user = users[index]
        kinds: list[tuple[str, Callable[[], Any]]] = []
        for n in range(per_client):
            kinds.append(
                ("command", lambda n=n: sim.command(user, CHANNEL, f"draft a payload drone, take {n}"))
            )
            kinds.append(("reaction", lambda n=n: sim.react(user, CHANNEL, target.ts, emoji[n % len(emoji)])))
            kinds.append(
                ("click", lambda: sim.click_button(user, message=cards[user], action_id=blocks.GENERATE))
            )
        for kind, send in kinds:
            started = time.perf_counter()
            response = send()
            elapsed = time.perf_counter() - started
            if response.status != 200:
                raise RuntimeError(f"{kind} answered {response.status}: {response.body[:200]}")
            with lock:
                times[kind].append(elapsed)

    with ThreadPoolExecutor(max_workers=clients) as pool:
        for future in [pool.submit(client, i) for i in range(clients)]:
            future.result()
    return times


def stalled_and_oversized(server: HttpServer, *, stalled: int, oversized: int, body_mb: int) -> None:
    """Clients that stop mid-body, then clients that upload a body far above the cap, all at once."""
    threads_before, rss_before = threading.active_count(), rss_mb()
    socks = []
    head = (
        b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n"
    )
    for _ in range(stalled):
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        sock.sendall(head + b"{")
        socks.append(sock)
    time.sleep(1.0)
    print(
        f"  {stalled} stalled clients: threads {threads_before} -> {threading.active_count()}, "
        f"RSS {rss_before:.0f} -> {rss_mb():.0f} MB"
    )
    for sock in socks:
        sock.close()
    rss_before = rss_mb()
    body = b"x" * (body_mb * 1024 * 1024)

    def upload() -> str:
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
            try:
                sock.sendall(
                    f"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                )
                sock.sendall(body)
            except OSError:
                pass  # the server answered and closed before the body was through
            try:
                return sock.recv(64).split(b"\r\n")[0].decode()
            except OSError as err:
                return type(err).__name__

    with ThreadPoolExecutor(max_workers=oversized) as pool:
        answers = list(pool.map(lambda _: upload(), range(oversized)))
    print(
        f"  {oversized} clients uploading {body_mb} MB: {sorted(set(answers))}, "
        f"RSS {rss_before:.0f} -> {rss_mb():.0f} MB (the bench holds one {body_mb} MB body itself)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--per-client", type=int, default=10, help="requests of each kind per client")
    parser.add_argument("--stalled", type=int, default=150)
    parser.add_argument("--oversized", type=int, default=20)
    parser.add_argument("--body-mb", type=int, default=20)
    args = parser.parse_args(argv)
    print(f"RSS at start {rss_mb():.0f} MB")
    results: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory() as tmp, FakeSlack(users=USERS, channels={CHANNEL: "bench"}) as fake:
        runtime = sora_runtime(fake, Path(tmp) / "data")
        server = HttpServer(runtime.wsgi(), host="127.0.0.1", port=0).start()
        try:
            sim = SlackSimulator(fake, app_url=server.url, signing_secret=SECRET, timeout=30)
            cards = draft_cards(sim, fake, list(USERS)[: args.clients])
            results["sora-bot"] = drive(sim, fake, cards, per_client=args.per_client)
            print(f"RSS after sora-bot {rss_mb():.0f} MB")
            print("Stalled and oversized clients against sora-bot's server:")
            stalled_and_oversized(
                server, stalled=args.stalled, oversized=args.oversized, body_mb=args.body_mb
            )
        finally:
            server.stop()
            runtime.close()
        bare = HttpServer(
            make_wsgi_app(bare_app(fake), signing_secret=SECRET, health=lambda: {"ok": True}),
            host="127.0.0.1",
            port=0,
        ).start()
        try:
            sim = SlackSimulator(fake, app_url=bare.url, signing_secret=SECRET, timeout=30)
            results["bare Bolt"] = drive(sim, fake, cards, per_client=args.per_client)
        finally:
            bare.stop()
    print(
        f"\nTime to HTTP 200, {args.clients} concurrent clients, {args.clients * args.per_client} of each kind:"
    )
    for app_name, times in results.items():
        for kind, samples in times.items():
            print(f"  {app_name:10} {kind:9} {percentiles(samples)}")
    print(
        f"Peak RSS of the whole bench process (both apps, the fake Slack, the clients): {peak_rss_mb():.0f} MB"
    )
    for kind, samples in results["sora-bot"].items():
        p99 = statistics.quantiles(samples, n=100, method="inclusive")[98]
        verdict = "PASS" if p99 < ACK_GOAL_P99 else "MISS"
        print(f"{verdict}  sora-bot {kind} p99 {p99 * 1000:.0f} ms < {ACK_GOAL_P99 * 1000:.0f} ms")
        bare = results.get("bare Bolt", {}).get(kind)
        if bare:
            bare_p99 = statistics.quantiles(bare, n=100, method="inclusive")[98]
            verdict = "PASS" if p99 <= ACK_GOAL_RATIO * bare_p99 else "MISS"
            print(
                f"{verdict}  sora-bot {kind} p99 within {ACK_GOAL_RATIO}× the bare app's ({bare_p99 * 1000:.0f} ms)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
