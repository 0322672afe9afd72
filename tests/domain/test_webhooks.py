"""domain/webhooks.py: the signature a receiver verifies, the retry schedule, which
URLs an endpoint may have, the event types it may subscribe to, and the body of an
event. Pure: no I/O."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import pytest

from domain import webhooks as wh
from domain.errors import ValidationFailed

SECRET = "whsec_" + "ab" * 32
BODY = b'{"id":"evt_1","type":"webhook.test"}'
T = 1_700_000_000
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


# --- the signature -----------------------------------------------------------------


def test_a_signed_body_verifies_within_the_tolerance_either_side() -> None:
    header = wh.sign(SECRET, T, BODY)
    assert header.startswith(f"t={T},v1=") and len(header.rpartition("v1=")[2]) == 64  # hex SHA-256
    assert wh.verify(SECRET, header, BODY, now=T)
    assert wh.verify(SECRET, header, BODY, now=T + wh.SIGNATURE_TOLERANCE_S)
    assert wh.verify(SECRET, header, BODY, now=T - wh.SIGNATURE_TOLERANCE_S)  # a receiver's clock behind


def test_a_tampered_body_another_secret_or_another_time_is_refused() -> None:
    header = wh.sign(SECRET, T, BODY)
    assert not wh.verify(SECRET, header, BODY + b" ", now=T)
    assert not wh.verify(SECRET, header, BODY.replace(b"evt_1", b"evt_2"), now=T)
    assert not wh.verify("whsec_" + "cd" * 32, header, BODY, now=T)
    # the time is signed too: the same MAC under a fresher t is not valid
    mac = header.rpartition("v1=")[2]
    assert not wh.verify(SECRET, f"t={T + 60},v1={mac}", BODY, now=T + 60)


def test_a_stale_or_future_timestamp_is_refused_as_a_replay() -> None:
    header = wh.sign(SECRET, T, BODY)
    assert not wh.verify(SECRET, header, BODY, now=T + wh.SIGNATURE_TOLERANCE_S + 1)
    assert not wh.verify(SECRET, header, BODY, now=T - wh.SIGNATURE_TOLERANCE_S - 1)
    assert not wh.verify(SECRET, header, BODY, now=T + 60, tolerance_s=30)


def test_of_several_v1_values_one_must_match() -> None:
    """Stripe's format allows several v1 (signatures by several secrets, e.g. across a
    rotation): any one valid is enough, none valid is a refusal."""
    mac = wh.sign(SECRET, T, BODY).rpartition("v1=")[2]
    other = wh.sign("whsec_other", T, BODY).rpartition("v1=")[2]
    assert wh.verify(SECRET, f"t={T},v1={other},v1={mac}", BODY, now=T)
    assert wh.verify(SECRET, f"t={T}, v1={other}, v1={mac}", BODY, now=T)  # spaces after commas
    assert not wh.verify(SECRET, f"t={T},v1={other},v1={'0' * 64}", BODY, now=T)
    assert not wh.verify(SECRET, f"t={T},v0={mac}", BODY, now=T)  # another scheme is not v1


@pytest.mark.parametrize(
    "header",
    [
        "",
        "garbage",
        ",,,",
        "v1={mac}",  # no t
        "t={t}",  # no v1
        "t=,v1={mac}",
        "t=abc,v1={mac}",
        "t=-{t},v1={mac}",
        "t={t}.5,v1={mac}",
        "t={t},t={t},v1={mac}",  # two times: which one was signed?
        "t={t},v1=",
        "t={t};v1={mac}",
        "{mac}",
    ],
)
def test_malformed_headers_are_refused(header: str) -> None:
    mac = wh.sign(SECRET, T, BODY).rpartition("v1=")[2]
    assert not wh.verify(SECRET, header.format(t=T, mac=mac), BODY, now=T)


# --- the retry schedule ------------------------------------------------------------


def test_delays_double_from_the_base_until_the_cap() -> None:
    policy = wh.RetryPolicy(
        base=timedelta(seconds=10), cap=timedelta(seconds=100), give_up_after=timedelta(days=1), jitter=0
    )
    rng = random.Random(1)
    delays = [policy.next_attempt(n, NOW, NOW, rng) for n in range(1, 8)]
    assert [d - NOW for d in delays if d is not None] == [timedelta(seconds=s) for s in (10, 20, 40, 80, 100, 100, 100)]


def test_the_default_schedule_is_the_documented_one() -> None:
    """README: retried after 10 s, 20 s, 40 s … at most an hour apart, for 24 h."""
    policy = wh.RetryPolicy(jitter=0)
    rng = random.Random(1)
    assert policy.next_attempt(1, NOW, NOW, rng) == NOW + timedelta(seconds=10)
    assert policy.next_attempt(3, NOW, NOW, rng) == NOW + timedelta(seconds=40)
    assert policy.next_attempt(20, NOW, NOW, rng) == NOW + timedelta(hours=1)
    assert policy.next_attempt(1, NOW, NOW - timedelta(hours=24), rng) is None


def test_the_jitter_stays_within_its_bounds_and_spreads_the_retries() -> None:
    policy = wh.RetryPolicy(base=timedelta(seconds=10), jitter=0.2)
    rng = random.Random(42)
    for attempts, nominal in ((1, 10.0), (2, 20.0), (4, 80.0), (30, 3600.0)):
        seen = [(policy.next_attempt(attempts, NOW, NOW, rng) - NOW).total_seconds() for _ in range(200)]  # type: ignore[operator]
        assert all(nominal * 0.8 <= s <= nominal * 1.2 for s in seen), (attempts, min(seen), max(seen))
        assert max(seen) - min(seen) > nominal * 0.2  # not all the same: endpoints do not retry in step


def test_the_same_seed_gives_the_same_schedule() -> None:
    policy = wh.RetryPolicy()
    first = [policy.next_attempt(n, NOW, NOW, random.Random(7)) for n in range(1, 6)]
    again = [policy.next_attempt(n, NOW, NOW, random.Random(7)) for n in range(1, 6)]
    assert first == again


def test_no_retry_is_planned_past_the_give_up_window() -> None:
    policy = wh.RetryPolicy(
        base=timedelta(seconds=10), cap=timedelta(minutes=10), give_up_after=timedelta(hours=1), jitter=0
    )
    rng = random.Random(1)
    created = NOW - timedelta(minutes=59, seconds=50)
    assert policy.next_attempt(1, NOW, created, rng) == NOW + timedelta(seconds=10)  # exactly at the end: kept
    assert policy.next_attempt(2, NOW, created, rng) is None  # 20 s would be past it
    assert policy.next_attempt(1, NOW, NOW - timedelta(hours=2), rng) is None


def test_many_attempts_keep_the_cap_rather_than_overflow() -> None:
    """A long window (WEBHOOK_RETRY_FOR_S of days) or a short cap means many attempts:
    base * 2**(n-1) must not overflow timedelta, it is the cap."""
    policy = wh.RetryPolicy(give_up_after=timedelta(days=30), jitter=0)
    rng = random.Random(1)
    for attempts in (45, 60, 200, 10_000):
        assert policy.next_attempt(attempts, NOW, NOW, rng) == NOW + timedelta(hours=1)


# --- which URLs may be called ------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/x",
        "http://example.com/hooks?source=campaigns",
        "https://hooks.example.com:8443/in",
        "http://8.8.8.8/hook",
        "https://1.1.1.1:8080/hook",
        "https://[2606:4700:4700::1111]/hook",
    ],
)
def test_public_http_urls_are_accepted_as_given(url: str) -> None:
    assert wh.check_url(url, allow_private=False) == url
    assert wh.check_url(f"  {url} ", allow_private=False) == url  # surrounding spaces go


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("", "required"),
        ("   ", "required"),
        ("ftp://example.com/x", "https://"),
        ("example.com/x", "https://"),
        ("javascript:alert(1)", "https://"),
        ("https:///x", "host"),
        ("https:example.com", "host"),
        ("https://user:pass@example.com/x", "credentials"),
        ("https://user@example.com/x", "credentials"),
        ("https://example.com/x#part", "fragment"),
        ("https://example.com/x#", "fragment"),
        ("https://example.com/" + "a" * wh.URL_MAX, f"at most {wh.URL_MAX}"),
        ("https://example.com:0/x", "port 0"),
        ("https://example.com:99999/x", "not a valid URL"),
        ("https://[::1/x", "not a valid URL"),
    ],
)
def test_malformed_urls_are_refused_naming_the_field_even_when_private_targets_are_allowed(url: str, why: str) -> None:
    for allow_private in (False, True):
        with pytest.raises(ValidationFailed) as refused:
            wh.check_url(url, allow_private=allow_private)
        assert refused.value.field == ("url",)
        assert why in refused.value.message, refused.value.message


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1/x", "loopback"),
        ("http://127.8.9.10:8000/x", "loopback"),
        ("http://10.0.0.7/x", "private"),
        ("http://172.16.4.2/x", "private"),
        ("http://192.168.1.20/x", "private"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),  # cloud metadata
        ("http://[::1]/x", "loopback"),
        ("http://[fe80::1]/x", "link-local"),
        ("http://[fe80::1%25eth0]/x", "link-local"),
        ("http://[::ffff:127.0.0.1]/x", "loopback"),  # IPv4-mapped: the IPv4 address counts
        ("http://[::ffff:10.0.0.1]/x", "private"),
        ("http://0.0.0.0/x", "private or reserved"),
        ("http://[::]/x", "private or reserved"),
        ("http://203.0.113.5/x", "private or reserved"),  # TEST-NET-3: not global
        ("http://100.64.0.1/x", "private or reserved"),  # carrier-grade NAT
        ("http://224.0.0.1/x", "private or reserved"),  # multicast
        ("http://localhost:8000/x", "loopback"),
        ("http://LocalHost./x", "loopback"),
        ("http://foo.localhost/x", "loopback"),
    ],
)
def test_private_loopback_and_link_local_targets_are_refused_unless_allowed(url: str, why: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        wh.check_url(url, allow_private=False)
    assert refused.value.field == ("url",)
    assert f"url points at a {why}" in refused.value.message
    assert "public addresses" in refused.value.message
    assert wh.check_url(url, allow_private=True) == url


def test_the_field_named_is_the_one_given() -> None:
    with pytest.raises(ValidationFailed) as refused:
        wh.check_url("ftp://x", allow_private=False, field=("input", "url"))
    assert refused.value.field == ("input", "url")


def test_a_name_is_left_to_the_check_at_delivery() -> None:
    """Only IP literals and localhost are refused when saved: what a name resolves to is
    checked against the address connected to, at each delivery (jobs/webhooks.py)."""
    assert wh.check_url("https://internal.example/x", allow_private=False) == "https://internal.example/x"
    assert wh.refused_address("8.8.8.8") is None
    assert wh.refused_address("2606:4700:4700::1111") is None
    assert wh.refused_address("127.0.0.1") == "a loopback address"
    assert wh.refused_address("fe80::1%eth0") == "a link-local address"
    with pytest.raises(ValueError):
        wh.refused_address("example.com")


# --- event types -------------------------------------------------------------------


def test_events_parse_in_a_stable_order_and_duplicates_collapse() -> None:
    changed, done = wh.EventType.CAMPAIGN_STATUS_CHANGED, wh.EventType.CAMPAIGN_COMPLETED
    assert wh.parse_events(["campaign.completed", "campaign.status_changed"]) == (changed, done)
    assert wh.parse_events(["campaign.status_changed", "campaign.completed"]) == (changed, done)
    assert wh.parse_events(["campaign.completed", "campaign.completed"]) == (done,)
    assert wh.parse_events(iter(["campaign.status_changed"])) == (changed,)


@pytest.mark.parametrize(
    ("events", "why"),
    [
        (["campaign.deleted"], "unknown event type 'campaign.deleted'"),
        (["campaign.status_changed", "CAMPAIGN_COMPLETED"], "unknown event type 'CAMPAIGN_COMPLETED'"),
        (["webhook.test"], "unknown event type 'webhook.test'"),  # sent on request, not subscribed to
        ([], "at least one"),
    ],
)
def test_unknown_unsubscribable_or_no_events_are_refused_naming_the_field(events: list[str], why: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        wh.parse_events(events)
    assert refused.value.field == ("events",)
    assert why in refused.value.message
    if events:
        assert "campaign.status_changed, campaign.completed" in refused.value.message  # what is known


def test_stored_events_load_back_as_parsed() -> None:
    events = wh.parse_events(["campaign.completed", "campaign.status_changed"])
    text = wh.stored_events(events)
    assert text == "campaign.status_changed,campaign.completed"
    assert wh.loaded_events(text) == events
    assert wh.loaded_events("") == ()


# --- the body ----------------------------------------------------------------------


def test_a_status_change_body_is_compact_json_with_the_documented_keys() -> None:
    at = datetime(2024, 5, 1, 12, 0, 30, 250000, tzinfo=UTC)
    data = wh.status_changed_data("Q2FtcGFpZ246MQ==", "Spring – sale", None, "DRAFT", "CREATE", "tester", None, at)
    body = wh.event_body("evt_1", wh.EventType.CAMPAIGN_STATUS_CHANGED, at, "V29ya3NwYWNlOjE=", data)
    assert ", " not in body and ": " not in body  # compact: the bytes signed are few
    assert "Spring – sale" in body  # not \u-escaped
    parsed = json.loads(body)
    assert list(parsed) == ["id", "type", "createdAt", "workspaceId", "data"]
    assert parsed == {
        "id": "evt_1",
        "type": "campaign.status_changed",
        "createdAt": "2024-05-01T12:00:30.250000Z",
        "workspaceId": "V29ya3NwYWNlOjE=",
        "data": {
            "campaignId": "Q2FtcGFpZ246MQ==",
            "name": "Spring – sale",
            "from": None,
            "to": "DRAFT",
            "action": "CREATE",
            "actor": "tester",
            "reason": None,
            "at": "2024-05-01T12:00:30.250000Z",
        },
    }


def test_a_completed_body_carries_the_numbers() -> None:
    stats = {"total": 5, "pending": 0, "sent": 3, "delivered": 2, "read": 1, "failed": 1, "cancelled": 1}
    data = wh.completed_data("Q2FtcGFpZ246MQ==", "Sale", NOW, stats)  # type: ignore[arg-type]
    parsed = json.loads(wh.event_body("evt_2", wh.EventType.CAMPAIGN_COMPLETED, NOW, "V29ya3NwYWNlOjE=", data))
    assert parsed["type"] == "campaign.completed"
    assert parsed["data"] == {
        "campaignId": "Q2FtcGFpZ246MQ==",
        "name": "Sale",
        "completedAt": "2024-05-01T12:00:00Z",
        "stats": stats,
    }


def test_only_2xx_is_a_success() -> None:
    assert [c for c in (199, 200, 201, 204, 299, 300, 301, 302, 304, 400, 500) if wh.is_success(c)] == [
        200,
        201,
        204,
        299,
    ]
