"""Webhook signatures and event bodies from video providers (Standard Webhooks/OpenAI, fal.ai's Ed25519)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import http.client
import json
import logging
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

log = logging.getLogger(__name__)

FAL_JWKS_URL = "https://rest.alpha.fal.ai/.well-known/jwks.json"

# A JWKS is a few hundred bytes; the cap keeps a misbehaving endpoint from filling memory.
_MAX_JWKS_BYTES = 64 * 1024
_ED25519_SIGNATURE_BYTES = 64


@dataclass(frozen=True)
class WebhookEvent:
    """A provider's "this job changed" notice. `kind` is "completed", "failed" or "other"."""

    provider: str
    job_id: str
    kind: str
    event_id: str | None


class InvalidWebhook(Exception):
    """The request is not a genuine, fresh webhook (or its body cannot be read). Answer 4xx; never act on it."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class WebhookKeysUnavailable(InvalidWebhook):
    """fal's public keys could not be fetched, so nothing can be verified; answer 5xx so fal retries later."""


def _header(headers: Mapping[str, str], name: str) -> str:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    raise InvalidWebhook(f"missing header {name}")


def _check_timestamp(raw: str, *, now: float, tolerance: int) -> None:
    try:
        timestamp = int(raw)
    except ValueError:
        raise InvalidWebhook("timestamp is not an integer") from None
    # Both directions: an old timestamp is a replay, a future one would stay "fresh" for too long.
    if now - timestamp > tolerance:
        raise InvalidWebhook("timestamp is too old")
    if timestamp - now > tolerance:
        raise InvalidWebhook("timestamp is in the future")


def _standard_webhook_key(secret: str) -> bytes:
    if not secret.startswith("whsec_"):
        return secret.encode()
    try:
        return base64.b64decode(secret.removeprefix("whsec_"))
    except binascii.Error:
        # A configuration mistake, not a bad request: let it surface as such, without echoing the secret.
        raise ValueError("the webhook secret after 'whsec_' is not valid base64") from None


def verify_standard_webhook(
    *, secret: str, headers: Mapping[str, str], body: bytes, now: float, tolerance: int = 300
) -> None:
    """Check a Standard Webhooks signature (OpenAI's scheme). Raises: InvalidWebhook; ValueError on a bad secret."""
    webhook_id = _header(headers, "webhook-id")
    timestamp = _header(headers, "webhook-timestamp")
    signatures = _header(headers, "webhook-signature")
    _check_timestamp(timestamp, now=now, tolerance=tolerance)
    key = _standard_webhook_key(secret)
    # Sign the raw bytes: re-serialising parsed JSON would not reproduce what the sender signed.
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())
    # Several "v1,<sig>" entries appear while a secret is being rotated; any one may match.
    candidates = [part[3:].encode() for part in signatures.split() if part.startswith("v1,")]
    if not any(hmac.compare_digest(expected, candidate) for candidate in candidates):
        raise InvalidWebhook("no signature matches")


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except ValueError:
        raise InvalidWebhook("body is not JSON") from None
    if not isinstance(document, dict):
        raise InvalidWebhook("body is not a JSON object")
    return document


def _text(document: Mapping[str, Any], field: str) -> str:
    value = document.get(field)
    if not isinstance(value, str) or not value:
        raise InvalidWebhook(f"field {field!r} is missing or not a string")
    return value


_OPENAI_KINDS = {"video.completed": "completed", "video.failed": "failed"}


def parse_openai_event(body: bytes) -> WebhookEvent:
    """Read an OpenAI event envelope. Raises: InvalidWebhook when it is not one.

    Event types other than video.completed/video.failed give kind "other" (acknowledge and ignore them);
    their `job_id` is `data.id` when present, else "".
    """
    document = _json_object(body)
    event_id = _text(document, "id")
    event_type = _text(document, "type")
    data = document.get("data")
    if not isinstance(data, dict):
        raise InvalidWebhook("field 'data' is missing or not an object")
    kind = _OPENAI_KINDS.get(event_type, "other")
    if kind == "other":
        job_id = data.get("id")
        return WebhookEvent("openai", job_id if isinstance(job_id, str) else "", kind, event_id)
    return WebhookEvent("openai", _text(data, "id"), kind, event_id)


def _parse_jwks(document: bytes) -> tuple[Ed25519PublicKey, ...]:
    """The Ed25519 keys of a JWKS document. Raises: ValueError when it is not a JWKS."""
    parsed = json.loads(document)
    entries = parsed.get("keys") if isinstance(parsed, dict) else None
    if not isinstance(entries, list):
        raise ValueError("not a JWKS document")
    keys = []
    for entry in entries:
        # Skip, rather than reject, keys of other types: a JWKS may legitimately list them.
        if not isinstance(entry, dict) or entry.get("kty") != "OKP" or entry.get("crv") != "Ed25519":
            continue
        x = entry.get("x")
        if not isinstance(x, str):
            continue
        try:
            raw = base64.urlsafe_b64decode(x + "=" * (-len(x) % 4))
            keys.append(Ed25519PublicKey.from_public_bytes(raw))
        except ValueError:
            continue
    return tuple(keys)


class FalKeys:
    """fal's webhook public keys, fetched lazily and cached for `ttl` seconds.

    `fetch` returns the JWKS document and raises OSError (or ValueError) when it cannot. A signature that no
    cached key verifies triggers one refetch, since fal may have rotated its keys; every fetch, for whatever
    reason, is at most one per `REFETCH_INTERVAL` so forged requests cannot turn us into a load generator.
    """

    REFETCH_INTERVAL = 300.0

    def __init__(
        self, *, fetch: Callable[[], bytes], ttl: float = 86400, clock: Callable[[], float] = time.time
    ) -> None:
        self._fetch = fetch
        self._ttl = ttl
        self._clock = clock
        self._keys: tuple[Ed25519PublicKey, ...] = ()
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        # Webhooks may arrive on several server threads at once; one of them refreshes, the rest wait.
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str, *, timeout: float = 5.0) -> FalKeys:
        """Keys fetched from a JWKS URL with urllib (fal's is `FAL_JWKS_URL`)."""
        scheme = urllib.parse.urlsplit(url).scheme
        if scheme not in ("https", "http"):
            raise ValueError(f"the JWKS URL must be http(s), not {scheme!r}")

        def fetch() -> bytes:
            request = urllib.request.Request(url, headers={"Accept": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=timeout) as response:
                    document: bytes = response.read(_MAX_JWKS_BYTES + 1)
            except http.client.HTTPException as err:  # e.g. IncompleteRead: not an OSError, same meaning
                raise OSError(f"JWKS fetch failed: {type(err).__name__}") from err
            if len(document) > _MAX_JWKS_BYTES:
                raise ValueError("JWKS document is too large")
            return document

        return cls(fetch=fetch)

    def verify(self, signature: bytes, message: bytes) -> bool:
        """True when any of fal's keys signed `message`. Raises: WebhookKeysUnavailable."""
        with self._lock:
            now = self._clock()
            if self._fetched_at is None or now - self._fetched_at >= self._ttl:
                self._refresh(now)
            if not self._keys:
                raise WebhookKeysUnavailable("fal webhook keys are unavailable")
            if self._matches(signature, message):
                return True
            if self._refresh(now):
                return self._matches(signature, message)
            return False

    def _matches(self, signature: bytes, message: bytes) -> bool:
        for key in self._keys:
            try:
                key.verify(signature, message)
            except InvalidSignature:
                continue
            return True
        return False

    def _refresh(self, now: float) -> bool:
        """Fetch the keys unless a fetch was tried recently; True when new keys were loaded."""
        if self._attempted_at is not None and now - self._attempted_at < self.REFETCH_INTERVAL:
            return False
        self._attempted_at = now
        try:
            keys = _parse_jwks(self._fetch())
        except (OSError, ValueError) as err:
            # Keep the old keys: a JWKS outage should not reject webhooks that those keys still verify.
            log.warning("could not fetch fal webhook keys: %s", err)
            return False
        if not keys:
            log.warning("fal's JWKS lists no Ed25519 keys; keeping the previous ones")
            return False
        self._keys, self._fetched_at = keys, now
        return True


def verify_fal_webhook(
    *, keys: FalKeys, headers: Mapping[str, str], body: bytes, now: float, tolerance: int = 300
) -> None:
    """Check fal's Ed25519 webhook signature. Raises: InvalidWebhook (WebhookKeysUnavailable if keys are down)."""
    request_id = _header(headers, "X-Fal-Webhook-Request-Id")
    user_id = _header(headers, "X-Fal-Webhook-User-Id")
    timestamp = _header(headers, "X-Fal-Webhook-Timestamp")
    signature_hex = _header(headers, "X-Fal-Webhook-Signature")
    _check_timestamp(timestamp, now=now, tolerance=tolerance)
    try:
        signature = bytes.fromhex(signature_hex)
    except ValueError:
        raise InvalidWebhook("signature is not hex") from None
    # A wrong-length signature can never verify; rejecting it here also spares a pointless key refetch.
    if len(signature) != _ED25519_SIGNATURE_BYTES:
        raise InvalidWebhook("signature has the wrong length")
    message = "\n".join((request_id, user_id, timestamp, hashlib.sha256(body).hexdigest())).encode()
    if not keys.verify(signature, message):
        raise InvalidWebhook("no key verifies the signature")


_FAL_KINDS = {"OK": "completed", "ERROR": "failed"}


def parse_fal_event(body: bytes) -> WebhookEvent:
    """Read fal's webhook body. Raises: InvalidWebhook when it has no request id.

    fal has no delivery id and retries the same request_id, so `event_id` is None: upsert on `job_id`.
    """
    document = _json_object(body)
    status = document.get("status")
    kind = _FAL_KINDS.get(status, "other") if isinstance(status, str) else "other"
    return WebhookEvent("fal", _text(document, "request_id"), kind, None)


class Receivers:
    """The providers that may call us back, each with how to check its signature and read its event."""

    def __init__(
        self,
        *,
        openai_secret: str | None = None,
        fal_keys: FalKeys | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._openai_secret = openai_secret
        self._fal_keys = fal_keys
        self._clock = clock

    def names(self) -> tuple[str, ...]:
        return tuple(n for n, on in (("openai", self._openai_secret), ("fal", self._fal_keys)) if on)

    def receive(self, provider: str, *, headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        """The verified event; raises KeyError for a provider not set up here, InvalidWebhook for a bad one."""
        now = self._clock()
        if provider == "openai" and self._openai_secret:
            verify_standard_webhook(secret=self._openai_secret, headers=headers, body=body, now=now)
            return parse_openai_event(body)
        if provider == "fal" and self._fal_keys is not None:
            verify_fal_webhook(keys=self._fal_keys, headers=headers, body=body, now=now)
            return parse_fal_event(body)
        raise KeyError(provider)
