"""Webhook signatures (Standard Webhooks as OpenAI signs them, fal's Ed25519 + JWKS) and event parsing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import openai
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from bot.webhooks import (
    FalKeys,
    InvalidWebhook,
    WebhookEvent,
    WebhookKeysUnavailable,
    parse_fal_event,
    parse_openai_event,
    verify_fal_webhook,
    verify_standard_webhook,
)

NOW = 1_800_000_000
RAW_SECRET = b"0123456789abcdef0123456789abcdef"
WHSEC = "whsec_" + base64.b64encode(RAW_SECRET).decode()
BODY = json.dumps(
    {
        "id": "evt_1",
        "object": "event",
        "created_at": NOW,
        "type": "video.completed",
        "data": {"id": "video_1"},
    }
).encode()


# --- Standard Webhooks (OpenAI) -------------------------------------------------------------------------


def standard_signature(key: bytes, *, webhook_id: str, timestamp: int, body: bytes) -> str:
    """Signed the way the spec (and OpenAI) describe it, independently of bot.webhooks."""
    signed = f"{webhook_id}.{timestamp}.{body.decode()}".encode()
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def standard_headers(
    key: bytes, *, body: bytes = BODY, timestamp: int = NOW, webhook_id: str = "msg_1"
) -> dict[str, str]:
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": standard_signature(key, webhook_id=webhook_id, timestamp=timestamp, body=body),
    }


def reason(secret: str, headers: dict[str, str], body: bytes = BODY, *, now: float = NOW) -> str:
    with pytest.raises(InvalidWebhook) as caught:
        verify_standard_webhook(secret=secret, headers=headers, body=body, now=now)
    return caught.value.reason


def test_a_whsec_secret_is_base64_decoded_before_signing() -> None:
    verify_standard_webhook(secret=WHSEC, headers=standard_headers(RAW_SECRET), body=BODY, now=NOW)


def test_a_plain_secret_is_used_as_its_utf8_bytes() -> None:
    headers = standard_headers(b"plain-secret")
    verify_standard_webhook(secret="plain-secret", headers=headers, body=BODY, now=NOW)


def test_header_names_match_whatever_their_case() -> None:
    headers = {name.title(): value for name, value in standard_headers(RAW_SECRET).items()}
    verify_standard_webhook(secret=WHSEC, headers=headers, body=BODY, now=NOW)


def test_a_tampered_body_is_rejected() -> None:
    tampered = BODY.replace(b"video_1", b"video_2")
    assert reason(WHSEC, standard_headers(RAW_SECRET), tampered) == "no signature matches"


def test_a_signature_made_with_another_secret_is_rejected() -> None:
    assert reason(WHSEC, standard_headers(b"some other secret")) == "no signature matches"


def test_a_whsec_secret_is_not_accepted_as_its_literal_text() -> None:
    assert reason(WHSEC, standard_headers(WHSEC.encode())) == "no signature matches"


def test_a_timestamp_older_than_the_tolerance_is_rejected() -> None:
    headers = standard_headers(RAW_SECRET, timestamp=NOW - 301)
    assert reason(WHSEC, headers) == "timestamp is too old"


def test_a_timestamp_further_ahead_than_the_tolerance_is_rejected() -> None:
    headers = standard_headers(RAW_SECRET, timestamp=NOW + 301)
    assert reason(WHSEC, headers) == "timestamp is in the future"


def test_timestamps_at_the_edge_of_the_tolerance_pass() -> None:
    for timestamp in (NOW - 300, NOW + 300):
        headers = standard_headers(RAW_SECRET, timestamp=timestamp)
        verify_standard_webhook(secret=WHSEC, headers=headers, body=BODY, now=NOW)


def test_a_timestamp_that_is_not_a_number_is_rejected() -> None:
    headers = {**standard_headers(RAW_SECRET), "webhook-timestamp": "yesterday"}
    assert reason(WHSEC, headers) == "timestamp is not an integer"


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_each_missing_header_is_named_in_the_rejection(missing: str) -> None:
    headers = standard_headers(RAW_SECRET)
    del headers[missing]
    assert reason(WHSEC, headers) == f"missing header {missing}"


def test_one_matching_signature_among_several_is_enough() -> None:
    good = standard_headers(RAW_SECRET)["webhook-signature"]
    stale = standard_signature(b"the previous secret", webhook_id="msg_1", timestamp=NOW, body=BODY)
    headers = {**standard_headers(RAW_SECRET), "webhook-signature": f"v1a,abc {stale} {good}"}
    verify_standard_webhook(secret=WHSEC, headers=headers, body=BODY, now=NOW)


def test_a_signature_without_its_version_prefix_is_ignored() -> None:
    bare = standard_headers(RAW_SECRET)["webhook-signature"].removeprefix("v1,")
    headers = {**standard_headers(RAW_SECRET), "webhook-signature": bare}
    assert reason(WHSEC, headers) == "no signature matches"


def test_non_ascii_junk_in_the_signature_header_is_a_plain_rejection() -> None:
    headers = {**standard_headers(RAW_SECRET), "webhook-signature": "v1,ünïcode"}
    assert reason(WHSEC, headers) == "no signature matches"


def test_a_malformed_whsec_secret_is_a_configuration_error_that_does_not_echo_it() -> None:
    with pytest.raises(ValueError, match="not valid base64") as caught:
        verify_standard_webhook(secret="whsec_abc", headers=standard_headers(b"x"), body=BODY, now=NOW)
    assert "abc" not in str(caught.value)


@pytest.mark.parametrize("secret", [WHSEC, "plain-secret"])
def test_the_openai_sdk_and_this_module_agree_on_signatures(secret: str) -> None:
    # The SDK reads the clock itself, so this one test signs at the real current time.
    now = int(time.time())
    key = RAW_SECRET if secret.startswith("whsec_") else secret.encode()
    sdk = openai.OpenAI(api_key="x", webhook_secret=secret).webhooks

    ours_signed = standard_headers(key, timestamp=now)
    sdk.verify_signature(BODY, ours_signed)
    verify_standard_webhook(secret=secret, headers=ours_signed, body=BODY, now=now)

    forged = standard_headers(b"not the secret", timestamp=now)
    with pytest.raises(openai.InvalidWebhookSignatureError):
        sdk.verify_signature(BODY, forged)
    with pytest.raises(InvalidWebhook):
        verify_standard_webhook(secret=secret, headers=forged, body=BODY, now=now)


def event_body(**fields: object) -> bytes:
    return json.dumps({"id": "evt_9", "object": "event", "created_at": NOW, **fields}).encode()


def test_a_video_completed_event_names_the_video() -> None:
    body = event_body(type="video.completed", data={"id": "video_abc"})
    assert parse_openai_event(body) == WebhookEvent("openai", "video_abc", "completed", "evt_9")


def test_a_video_failed_event_is_a_failure() -> None:
    body = event_body(type="video.failed", data={"id": "video_abc"})
    assert parse_openai_event(body) == WebhookEvent("openai", "video_abc", "failed", "evt_9")


def test_other_event_types_are_other_even_without_a_data_id() -> None:
    assert parse_openai_event(event_body(type="batch.completed", data={"id": "batch_1"})) == WebhookEvent(
        "openai", "batch_1", "other", "evt_9"
    )
    assert parse_openai_event(event_body(type="realtime.call.incoming", data={"call_id": "c"})) == (
        WebhookEvent("openai", "", "other", "evt_9")
    )


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"\xff\xfe",
        b"[]",
        json.dumps({"type": "video.completed", "data": {"id": "video_1"}}).encode(),
        event_body(data={"id": "video_1"}),
        event_body(type="video.completed"),
        event_body(type="video.completed", data="video_1"),
        event_body(type="video.completed", data={}),
        event_body(type="video.failed", data={"id": 7}),
    ],
)
def test_a_malformed_openai_event_is_rejected(body: bytes) -> None:
    with pytest.raises(InvalidWebhook):
        parse_openai_event(body)


# --- fal (Ed25519 + JWKS) ---------------------------------------------------------------------------------

FAL_BODY = json.dumps(
    {"request_id": "req-1", "gateway_request_id": "req-1", "status": "OK", "payload": {"video": {}}}
).encode()


def jwk(private: Ed25519PrivateKey) -> dict[str, str]:
    raw = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return {"kty": "OKP", "crv": "Ed25519", "x": base64.urlsafe_b64encode(raw).rstrip(b"=").decode()}


def jwks(*privates: Ed25519PrivateKey) -> bytes:
    return json.dumps({"keys": [jwk(p) for p in privates]}).encode()


def fal_headers(
    private: Ed25519PrivateKey, *, body: bytes = FAL_BODY, timestamp: int = NOW, request_id: str = "req-1"
) -> dict[str, str]:
    message = f"{request_id}\nuser-1\n{timestamp}\n{hashlib.sha256(body).hexdigest()}".encode()
    return {
        "X-Fal-Webhook-Request-Id": request_id,
        "X-Fal-Webhook-User-Id": "user-1",
        "X-Fal-Webhook-Timestamp": str(timestamp),
        "X-Fal-Webhook-Signature": private.sign(message).hex(),
    }


class FakeJwks:
    """Serves a sequence of JWKS documents (the last one repeats) and keeps what it served."""

    def __init__(self, *documents: bytes) -> None:
        self.documents = list(documents)
        self.served: list[bytes] = []

    def __call__(self) -> bytes:
        document = self.documents[min(len(self.served), len(self.documents) - 1)]
        self.served.append(document)
        return document


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def fal_reason(keys: FalKeys, headers: dict[str, str], body: bytes = FAL_BODY, *, now: float = NOW) -> str:
    with pytest.raises(InvalidWebhook) as caught:
        verify_fal_webhook(keys=keys, headers=headers, body=body, now=now)
    return caught.value.reason


@pytest.fixture
def fal_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def test_a_fal_signature_from_a_published_key_passes(fal_key: Ed25519PrivateKey) -> None:
    keys = FalKeys(fetch=FakeJwks(jwks(Ed25519PrivateKey.generate(), fal_key)), clock=Clock())
    verify_fal_webhook(keys=keys, headers=fal_headers(fal_key), body=FAL_BODY, now=NOW)


def test_fal_header_names_match_whatever_their_case(fal_key: Ed25519PrivateKey) -> None:
    keys = FalKeys(fetch=FakeJwks(jwks(fal_key)), clock=Clock())
    headers = {name.lower(): value for name, value in fal_headers(fal_key).items()}
    verify_fal_webhook(keys=keys, headers=headers, body=FAL_BODY, now=NOW)


def test_a_tampered_fal_body_is_rejected(fal_key: Ed25519PrivateKey) -> None:
    keys = FalKeys(fetch=FakeJwks(jwks(fal_key)), clock=Clock())
    tampered = FAL_BODY.replace(b'"OK"', b'"ERROR"')
    assert fal_reason(keys, fal_headers(fal_key), tampered) == "no key verifies the signature"


def test_a_fal_signature_for_another_request_id_is_rejected(fal_key: Ed25519PrivateKey) -> None:
    keys = FalKeys(fetch=FakeJwks(jwks(fal_key)), clock=Clock())
    headers = {**fal_headers(fal_key), "X-Fal-Webhook-Request-Id": "req-2"}
    assert fal_reason(keys, headers) == "no key verifies the signature"


def test_a_fal_signature_from_an_unpublished_key_is_rejected(fal_key: Ed25519PrivateKey) -> None:
    keys = FalKeys(fetch=FakeJwks(jwks(fal_key)), clock=Clock())
    assert fal_reason(keys, fal_headers(Ed25519PrivateKey.generate())) == "no key verifies the signature"


def test_a_stale_or_future_fal_timestamp_is_rejected(fal_key: Ed25519PrivateKey) -> None:
    keys = FalKeys(fetch=FakeJwks(jwks(fal_key)), clock=Clock())
    assert fal_reason(keys, fal_headers(fal_key, timestamp=NOW - 301)) == "timestamp is too old"
    assert fal_reason(keys, fal_headers(fal_key, timestamp=NOW + 301)) == "timestamp is in the future"


def test_a_missing_fal_header_is_named(fal_key: Ed25519PrivateKey) -> None:
    keys = FalKeys(fetch=FakeJwks(jwks(fal_key)), clock=Clock())
    headers = fal_headers(fal_key)
    del headers["X-Fal-Webhook-User-Id"]
    assert fal_reason(keys, headers) == "missing header X-Fal-Webhook-User-Id"


@pytest.mark.parametrize(("signature", "why"), [("zz", "signature is not hex"), ("ab" * 63, "wrong length")])
def test_a_malformed_fal_signature_is_rejected_without_fetching_keys(
    fal_key: Ed25519PrivateKey, signature: str, why: str
) -> None:
    fetch = FakeJwks(jwks(fal_key))
    headers = {**fal_headers(fal_key), "X-Fal-Webhook-Signature": signature}
    assert why in fal_reason(FalKeys(fetch=fetch, clock=Clock()), headers)
    assert fetch.served == []


def test_a_rotated_fal_key_is_found_by_refetching_the_jwks(fal_key: Ed25519PrivateKey) -> None:
    old = Ed25519PrivateKey.generate()
    clock = Clock()
    keys = FalKeys(fetch=FakeJwks(jwks(old), jwks(old, fal_key)), clock=clock)
    verify_fal_webhook(keys=keys, headers=fal_headers(old), body=FAL_BODY, now=NOW)

    clock.now += 600  # fal rotates well inside the 24-hour cache
    now = clock.now
    verify_fal_webhook(keys=keys, headers=fal_headers(fal_key, timestamp=int(now)), body=FAL_BODY, now=now)


def test_refetching_on_unknown_keys_happens_at_most_once_per_five_minutes(fal_key: Ed25519PrivateKey) -> None:
    later, latest = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    clock = Clock()
    keys = FalKeys(fetch=FakeJwks(jwks(fal_key), jwks(fal_key, later), jwks(fal_key, latest)), clock=clock)

    def attempt(key: Ed25519PrivateKey) -> bool:
        headers = fal_headers(key, timestamp=int(clock.now))
        try:
            verify_fal_webhook(keys=keys, headers=headers, body=FAL_BODY, now=clock.now)
        except InvalidWebhook:
            return False
        return True

    assert attempt(fal_key)
    assert not attempt(later)  # the keys were fetched a moment ago: no refetch yet
    clock.now += 299
    assert not attempt(later)
    clock.now += 1
    assert attempt(later)  # five minutes on, a miss refetches and finds the new key
    clock.now += 10
    assert not attempt(latest)  # a forged-looking signature cannot force another fetch so soon
    clock.now += 300
    assert attempt(latest)


def test_the_fal_keys_are_refetched_after_the_ttl(fal_key: Ed25519PrivateKey) -> None:
    clock = Clock()
    fetch = FakeJwks(jwks(fal_key))
    keys = FalKeys(fetch=fetch, ttl=3600, clock=clock)
    for step in (0, 1800, 1800):
        clock.now += step
        headers = fal_headers(fal_key, timestamp=int(clock.now))
        verify_fal_webhook(keys=keys, headers=headers, body=FAL_BODY, now=clock.now)
    assert len(fetch.served) == 2


def test_without_any_fal_keys_verification_reports_them_unavailable(fal_key: Ed25519PrivateKey) -> None:
    def unreachable() -> bytes:
        raise OSError("connection refused")

    keys = FalKeys(fetch=unreachable, clock=Clock())
    with pytest.raises(WebhookKeysUnavailable):
        verify_fal_webhook(keys=keys, headers=fal_headers(fal_key), body=FAL_BODY, now=NOW)


def test_old_fal_keys_keep_working_while_the_jwks_cannot_be_fetched(fal_key: Ed25519PrivateKey) -> None:
    clock = Clock()
    documents = iter([jwks(fal_key), b"<html>502 Bad Gateway</html>"])
    keys = FalKeys(fetch=lambda: next(documents), ttl=3600, clock=clock)
    verify_fal_webhook(keys=keys, headers=fal_headers(fal_key), body=FAL_BODY, now=NOW)

    clock.now += 7200
    headers = fal_headers(fal_key, timestamp=int(clock.now))
    verify_fal_webhook(keys=keys, headers=headers, body=FAL_BODY, now=clock.now)


def test_jwks_entries_that_are_not_ed25519_keys_are_skipped(fal_key: Ed25519PrivateKey) -> None:
    document = json.dumps(
        {
            "keys": [
                {"kty": "RSA", "n": "AQAB", "e": "AQAB"},
                {"kty": "OKP", "crv": "X25519", "x": jwk(fal_key)["x"]},
                {"kty": "OKP", "crv": "Ed25519", "x": "too-short"},
                "junk",
                jwk(fal_key),
            ]
        }
    ).encode()
    keys = FalKeys(fetch=FakeJwks(document), clock=Clock())
    verify_fal_webhook(keys=keys, headers=fal_headers(fal_key), body=FAL_BODY, now=NOW)


@pytest.fixture
def jwks_server(fal_key: Ed25519PrivateKey) -> Iterator[str]:
    document = jwks(fal_key)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(document)))
            self.end_headers()
            self.wfile.write(document)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/.well-known/jwks.json"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_fal_keys_from_a_url_are_fetched_over_http(jwks_server: str, fal_key: Ed25519PrivateKey) -> None:
    keys = FalKeys.from_url(jwks_server, timeout=2)
    now = time.time()
    headers = fal_headers(fal_key, timestamp=int(now))
    verify_fal_webhook(keys=keys, headers=headers, body=FAL_BODY, now=now)


def test_fal_keys_refuse_a_url_that_is_not_http() -> None:
    with pytest.raises(ValueError, match="http"):
        FalKeys.from_url("file:///etc/passwd")


def fal_body(**fields: object) -> bytes:
    return json.dumps({"request_id": "req-1", "gateway_request_id": "gw-1", **fields}).encode()


def test_a_fal_ok_is_a_completion_keyed_by_request_id() -> None:
    body = fal_body(status="OK", payload={"video": {"url": "https://fal.media/x.mp4"}})
    assert parse_fal_event(body) == WebhookEvent("fal", "req-1", "completed", None)


def test_a_fal_error_is_a_failure() -> None:
    body = fal_body(status="ERROR", payload={"detail": "boom"}, error="Invalid status code: 422")
    assert parse_fal_event(body) == WebhookEvent("fal", "req-1", "failed", None)


def test_an_unknown_fal_status_is_other() -> None:
    assert parse_fal_event(fal_body(status="CANCELLED")).kind == "other"
    assert parse_fal_event(fal_body()).kind == "other"


@pytest.mark.parametrize(
    "body",
    [b"", b"{", b'"OK"', json.dumps({"status": "OK"}).encode(), json.dumps({"request_id": 1}).encode()],
)
def test_a_fal_body_without_a_request_id_is_rejected(body: bytes) -> None:
    with pytest.raises(InvalidWebhook):
        parse_fal_event(body)
