"""Outbound webhooks, the pure part: event types and payloads, the signature, the retry
schedule and which URLs may be called.

A delivery is signed like Stripe's: the header
    Campaigns-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
is computed at each attempt (so `t` is the attempt's time, and a receiver can refuse
old replays), over the exact bytes of the body. The event id in the body (and in
Campaigns-Event-Id) is the same at every attempt and for every endpoint: receivers
de-duplicate on it, since delivery is at least once.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal, TypedDict
from urllib.parse import urlsplit

from domain.errors import ValidationFailed
from domain.events import StatsPayload

SIGNATURE_HEADER = "Campaigns-Signature"
EVENT_ID_HEADER = "Campaigns-Event-Id"
EVENT_TYPE_HEADER = "Campaigns-Event-Type"
ATTEMPT_HEADER = "Campaigns-Delivery-Attempt"
#: how old a signature's `t` a receiver should accept (the README's recipe uses it)
SIGNATURE_TOLERANCE_S = 300

URL_MAX = 2048
#: an endpoint's secret: this prefix and 32 random bytes, hex (the HMAC key is the whole string)
SECRET_PREFIX = "whsec_"


class EventType(StrEnum):
    """What an endpoint can subscribe to (TEST is only sent by sendTestWebhook)."""

    CAMPAIGN_STATUS_CHANGED = "campaign.status_changed"
    CAMPAIGN_COMPLETED = "campaign.completed"
    WEBHOOK_TEST = "webhook.test"


SUBSCRIBABLE = (EventType.CAMPAIGN_STATUS_CHANGED, EventType.CAMPAIGN_COMPLETED)


class DeliveryStatus(StrEnum):
    PENDING = "PENDING"
    DELIVERED = "DELIVERED"
    FAILED = "FAILED"


# functional syntax: "from" is a Python keyword. `from` is null for the first event of
# a campaign (its creation, to DRAFT).
StatusChangedData = TypedDict(
    "StatusChangedData",
    {
        "campaignId": str,
        "name": str,
        "from": str | None,
        "to": str,
        "action": str,
        "actor": str,
        "reason": str | None,
        "at": str,
    },
)


class CompletedData(TypedDict):
    campaignId: str
    name: str
    completedAt: str
    stats: StatsPayload


class TestData(TypedDict):
    message: str


class EventPayload(TypedDict):
    id: str
    type: str
    createdAt: str
    workspaceId: str
    data: StatusChangedData | CompletedData | TestData


def event_body(
    event_id: str,
    type_: EventType,
    created_at: datetime,
    workspace_id: str,
    data: StatusChangedData | CompletedData | TestData,
) -> str:
    """The body of every attempt, fixed when the event is recorded: what is signed."""
    payload: EventPayload = {
        "id": event_id,
        "type": type_.value,
        "createdAt": iso(created_at),
        "workspaceId": workspace_id,
        "data": data,
    }
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def status_changed_data(
    campaign_id: str,
    name: str,
    from_status: str | None,
    to_status: str,
    action: str,
    actor: str,
    reason: str | None,
    at: datetime,
) -> StatusChangedData:
    return {
        "campaignId": campaign_id,
        "name": name,
        "from": from_status,
        "to": to_status,
        "action": action,
        "actor": actor,
        "reason": reason,
        "at": iso(at),
    }


def completed_data(campaign_id: str, name: str, completed_at: datetime, stats: StatsPayload) -> CompletedData:
    return {"campaignId": campaign_id, "name": name, "completedAt": iso(completed_at), "stats": stats}


def iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The Campaigns-Signature header value for `body` sent at `timestamp`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: str, header: str, body: bytes, now: float, tolerance_s: float = SIGNATURE_TOLERANCE_S) -> bool:
    """What a receiver does (the README shows the same in a few lines): parse t and
    every v1, recompute, compare in constant time, refuse a stale t."""
    parts = [p.partition("=") for p in header.split(",")]
    stamps = [v for k, _, v in parts if k.strip() == "t"]
    if len(stamps) != 1 or not stamps[0].isdigit():
        return False
    timestamp = int(stamps[0])
    if abs(now - timestamp) > tolerance_s:
        return False
    expected = sign(secret, timestamp, body).rpartition("v1=")[2]
    return any(hmac.compare_digest(expected, v.strip()) for k, _, v in parts if k.strip() == "v1")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter: attempt n (1-based) failed, the next one waits
    base * 2**(n-1), at most `cap`, ±`jitter`; after `give_up_after` since the event
    was recorded, the delivery is FAILED."""

    base: timedelta = timedelta(seconds=10)
    cap: timedelta = timedelta(hours=1)
    give_up_after: timedelta = timedelta(hours=24)
    jitter: float = 0.2

    def next_attempt(self, attempts: int, now: datetime, created_at: datetime, rng: random.Random) -> datetime | None:
        """When to try again after `attempts` failed ones, or None: give up."""
        # in float seconds: base * 2**n as a timedelta overflows after ~45 attempts
        # (a window of days, or a short cap), where the delay is simply the cap
        doubled = self.base.total_seconds() * 2.0 ** min(max(attempts - 1, 0), 1023)
        delay = timedelta(seconds=min(doubled, self.cap.total_seconds()))
        delay *= 1 + rng.uniform(-self.jitter, self.jitter)
        at = now + delay
        if at > created_at + self.give_up_after:
            return None
        return at


Outcome = Literal["delivered", "retry", "failed"]


def is_success(status_code: int) -> bool:
    """2xx only: a redirect is not followed (a receiver must answer at the URL it gave)."""
    return 200 <= status_code < 300


# --- which URLs may be called ---------------------------------------------------


def refused_address(address: str) -> str | None:
    """Why an IP address must not be called (None: it may): the service must not be a
    way into the network it runs in (SSRF)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_private or ip.is_reserved or ip.is_multicast or ip.is_unspecified or not ip.is_global:
        return "a private or reserved address"
    return None


def check_url(url: str, *, allow_private: bool, field: Sequence[str] = ("url",)) -> str:
    """The URL as it will be called, or ValidationFailed naming `field`: http(s), a
    host, no credentials, and, unless `allow_private`, not an IP literal or name of a
    private, loopback or link-local target (names are checked again at each delivery,
    against what they resolve to then)."""
    url = url.strip()
    if not url:
        raise ValidationFailed("url is required.", field)
    if len(url) > URL_MAX:
        raise ValidationFailed(f"url is at most {URL_MAX} characters.", field)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValidationFailed(f"url is not a valid URL ({exc}).", field) from None
    if parts.scheme not in ("http", "https"):
        raise ValidationFailed("url must start with https:// (or http://).", field)
    host = parts.hostname
    if not host:
        raise ValidationFailed("url needs a host.", field)
    if parts.username is not None or parts.password is not None:
        raise ValidationFailed("url must not carry credentials: the signature authenticates us.", field)
    if port == 0:
        raise ValidationFailed("url has port 0.", field)
    if "#" in url:  # an empty fragment too: parts.fragment is "" for "…/x#"
        raise ValidationFailed("url must not have a #fragment.", field)
    if not allow_private:
        why = _refused_host(host)
        if why is not None:
            raise ValidationFailed(f"url points at {why}; webhooks go to public addresses.", field)
    return url


def _refused_host(host: str) -> str | None:
    name = host.rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return "a loopback address"
    try:
        return refused_address(name)
    except ValueError:
        return None  # a name: checked against its addresses at delivery


def parse_events(given: Iterable[str], field: Sequence[str] = ("events",)) -> tuple[EventType, ...]:
    """The subscribable event types named, in a stable order, at least one."""
    wanted: set[EventType] = set()
    for name in given:
        try:
            event = EventType(name)
        except ValueError:
            event = None
        if event is None or event not in SUBSCRIBABLE:
            names = ", ".join(e.value for e in SUBSCRIBABLE)
            raise ValidationFailed(f"events: unknown event type {name!r} (known: {names}).", field)
        wanted.add(event)
    if not wanted:
        raise ValidationFailed("events: subscribe to at least one event type.", field)
    return tuple(e for e in SUBSCRIBABLE if e in wanted)


def stored_events(events: Iterable[EventType]) -> str:
    return ",".join(e.value for e in events)


def loaded_events(text: str) -> tuple[EventType, ...]:
    return tuple(EventType(e) for e in text.split(",") if e)
