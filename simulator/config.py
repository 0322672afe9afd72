"""What the simulated WhatsApp Cloud API account looks like and how it behaves.

One frozen value: the same config and seed give the same outcome for every message, so a
benchmark can be re-run and compared, and a test can name the exact failures it expects.

The defaults behave as Meta's Cloud API does (docs/STACK.md): no idempotency key is
honoured (a repeated request is a second message), every accepted message gets a
`sent` status, each status comes in a POST of its own, some late, some twice, some out
of order, and a webhook answered non-2xx is retried with backoff for days. Options
turn on what Meta does not do (honouring Idempotency-Key, batching statuses) and
faults to test against (answers lost after acceptance, answers slower than the
client waits).

| variable (prefix SIMULATOR_) | field | example |
|---|---|---|
| SEED | seed | 1 |
| ACCESS_TOKEN | access_token | dev-token |
| PHONE_NUMBER_ID | phone_number_id | 100000000000001 |
| DISPLAY_PHONE_NUMBER / WABA_ID / VERIFIED_NAME | ... | 15550000001 / 200000000000001 / Simulated Business |
| MESSAGING_LIMIT_TIER | messaging_limit_tier | TIER_250 (TIER_2K, ..., TIER_UNLIMITED): enforced, 131048 beyond |
| NUMBERS | numbers | JSON list of numbers as `POST /_simulator/numbers` takes them (simulator/numbers.py) |
| TEMPLATES | templates | JSON list of templates as `POST /_simulator/templates/{waba_id}` takes them, plus `waba_id` |
| SAMPLE_TEMPLATES | sample_templates | true (WABA_ID gets spring_sale, order_update; every WABA has hello_world) |
| TEMPLATES_RATE_LIMIT_PER_HOUR | ... | 5000 (template listings per WABA and hour, 80007 beyond; "none" = unlimited) |
| LATENCY_MS | latency_mean_ms | 50 |
| LATENCY_JITTER | latency_jitter | 0.53 (lognormal sigma; 0 = constant) |
| RATE_LIMIT | rate_limit_per_second | 80 (empty or "none" = unlimited) |
| ERROR_MIX | error_mix | 131026=0.02,131047=0.01 |
| LATER_FAILURE_MIX | later_failure_mix | 131026=0.01 |
| DELIVERED_PROBABILITY / READ_PROBABILITY | ... | 0.95 / 0.6 |
| SENT_DELAY_MS / DELIVERED_DELAY_MS / READ_DELAY_MS | ..._delay_ms | 300-2000 |
| DUPLICATE_WEBHOOK_PROBABILITY / OUT_OF_ORDER_PROBABILITY | ... | 0.02 |
| WEBHOOK_URL | webhook_url | http://127.0.0.1:8000/webhooks/whatsapp |
| APP_SECRET | app_secret | dev-app-secret |
| HONOUR_IDEMPOTENCY | honour_idempotency | false (Meta honours none) |
| WEBHOOK_BATCH_SIZE / WEBHOOK_FLUSH_MS | ... | 1 / 20 (Meta: mostly one status per POST) |
| WEBHOOK_MAX_ATTEMPTS / WEBHOOK_RETRY_BASE_MS / WEBHOOK_RETRY_MAX_MS | ... | 10000 / 500 / 60000 |
| WEBHOOK_RETRY_FOR_S | webhook_retry_for_s | 604800 (Meta retries for 7 days) |
| LATE_PROBABILITY / LATE_DELAY_MS | ... | 0.01 / 5000-30000 |
| LOST_ANSWER_PROBABILITY | lost_answer_probability | 0.05 (accepted, then the connection drops) |
| SLOW_ANSWER_PROBABILITY / SLOW_ANSWER_MS | ... | 0.05 / 20000 (accepted, answered after the client gave up) |
| PRICING_CATEGORY | pricing_category | marketing (status webhooks' `pricing.category`: utility, ...) |
| OPTED_OUT_ANSWER | opted_out_answer | status (accepted, then `failed` 131050, as Meta does) or error |
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any

from simulator.numbers import PhoneNumber, parse_numbers
from simulator.templates import Template

#: sigma of a lognormal whose p99 is about 3x its mean: exp(2.326 s - s^2 / 2) = 3
P99_3X_SIGMA = 0.53


def _error_code(code: str | int) -> str:
    """An error code as its digits. Meta's codes are integers: the engine answers with
    `int(code)` and a `failed` webhook's `errors[].code` is one, so a typo ("13l026") is
    refused here instead of crashing a send (a 500 without Meta's error body) later."""
    text = str(code).strip()
    if not (text.isascii() and text.isdigit()):
        raise ValueError(f"error code {text!r} is not a number (Meta's error codes are integers)")
    return text


def _frozen_mix(mix: Mapping[str, float] | Mapping[int, float]) -> Mapping[str, float]:
    """Codes as strings (env and JSON give strings, code gives ints), sorted so the
    cumulative walk in `fate` does not depend on how the mapping was built."""
    items = sorted((_error_code(code), float(p)) for code, p in mix.items())
    for code, p in items:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"probability of {code} must be within [0, 1], got {p}")
    if sum(p for _, p in items) > 1.0 + 1e-9:
        raise ValueError(f"probabilities of {dict(items)} add up to more than 1")
    return MappingProxyType(dict(items))


@dataclass(frozen=True)
class SimulatorConfig:
    """Behaviour of the simulated Cloud API and its first business phone number (more
    in `numbers`). Delays are (min, max) in ms."""

    seed: int = 1
    access_token: str = "dev-token"
    phone_number_id: str = "100000000000001"
    display_phone_number: str = "15550000001"
    waba_id: str = "200000000000001"
    verified_name: str = "Simulated Business"
    #: Meta's names: TIER_250 (a new portfolio), TIER_2K, TIER_10K, TIER_100K, TIER_UNLIMITED;
    #: enforced on sends (simulator/messaging_limit.py)
    messaging_limit_tier: str = "TIER_250"
    #: further numbers served from the start (the control API registers more at run time)
    numbers: tuple[PhoneNumber, ...] = ()
    #: templates served from the start (JSON objects are read with Template.from_json,
    #: their `waba_id` defaulting to `waba_id`); they replace samples of the same name
    templates: tuple[Template, ...] = ()
    #: whether the first number's WABA also gets simulator/templates.SAMPLES
    sample_templates: bool = True
    #: template listings per WABA per hour (80007 beyond): Meta allows 5,000 to a WABA
    #: with a registered number (docs/STACK.md); None = unlimited
    templates_rate_limit_per_hour: int | None = 5000
    #: the version the docs show; any version path segment is accepted
    api_version: str = "v26.0"
    #: mean answer latency; 0 answers without sleeping at all
    latency_mean_ms: float = 0.0
    #: lognormal sigma of the latency; the default gives p99 about 3x the mean, 0 is constant
    latency_jitter: float = P99_3X_SIGMA
    #: accepted requests per second (token bucket, one second of burst); None = unlimited
    rate_limit_per_second: float | None = None
    #: code -> probability that a request is answered at once with that error
    error_mix: Mapping[str, float] = field(default_factory=dict)
    #: code -> probability that an accepted message later gets a `failed` webhook
    later_failure_mix: Mapping[str, float] = field(default_factory=dict)
    delivered_probability: float = 0.95
    #: of the delivered ones
    read_probability: float = 0.6
    #: whether a `sent` status precedes delivered/read/failed, as on the real API
    send_sent_status: bool = True
    sent_delay_ms: tuple[float, float] = (50.0, 250.0)
    delivered_delay_ms: tuple[float, float] = (300.0, 2000.0)
    #: after delivered
    read_delay_ms: tuple[float, float] = (1000.0, 5000.0)
    duplicate_webhook_probability: float = 0.02
    #: a read message whose `read` webhook is posted before its `delivered` one
    out_of_order_probability: float = 0.02
    #: a message whose statuses all come late, by a draw from `late_delay_ms`
    late_probability: float = 0.01
    late_delay_ms: tuple[float, float] = (5000.0, 30000.0)
    #: an accepted send whose answer is lost: the connection drops before the body
    lost_answer_probability: float = 0.0
    #: an accepted send answered only after `slow_answer_ms` (beyond the client's timeout)
    slow_answer_probability: float = 0.0
    slow_answer_ms: float = 20000.0
    #: None: no webhooks are scheduled (the ledger still records each message's fate)
    webhook_url: str | None = None
    app_secret: str = "dev-app-secret"
    #: Meta honours no Idempotency-Key; on, a repeated key replays the first answer
    honour_idempotency: bool = False
    #: what messages are billed as (status webhooks' `pricing.category`); only marketing
    #: messages are refused to a phone that stopped them (the ledger's `opted_out`)
    pricing_category: str = "marketing"
    #: how a marketing message to such a phone is refused: "status" (accepted, then a
    #: `failed` status 131050, as Meta reports it) or "error" (the send answered 131050)
    opted_out_answer: str = "status"
    #: statuses per POST (Meta: mostly one; batches of up to 1,000 are possible)
    webhook_batch_size: int = 1
    webhook_flush_ms: float = 20.0
    #: attempts per webhook POST before it is dropped (and counted), and for how long
    webhook_max_attempts: int = 10_000
    webhook_retry_for_s: float = 7 * 24 * 3600.0
    #: backoff between attempts: doubling from the base, capped
    webhook_retry_base_ms: float = 500.0
    webhook_retry_max_ms: float = 60_000.0
    webhook_timeout_s: float = 10.0
    #: webhook POSTs in flight at once
    webhook_concurrency: int = 32

    def __post_init__(self) -> None:
        # Frozen dataclass: normalise through object.__setattr__; read-only mappings keep
        # the value immutable even though dicts were passed in.
        object.__setattr__(self, "error_mix", _frozen_mix(self.error_mix))
        object.__setattr__(self, "later_failure_mix", _frozen_mix(self.later_failure_mix))
        for name in ("sent_delay_ms", "delivered_delay_ms", "read_delay_ms", "late_delay_ms"):
            low, high = (float(v) for v in getattr(self, name))
            if not 0.0 <= low <= high:
                raise ValueError(f"{name} must be (min, max) with 0 <= min <= max, got {(low, high)}")
            object.__setattr__(self, name, (low, high))
        for name in (
            "delivered_probability",
            "read_probability",
            "duplicate_webhook_probability",
            "out_of_order_probability",
            "late_probability",
            "lost_answer_probability",
            "slow_answer_probability",
        ):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be within [0, 1]")
        if self.lost_answer_probability + self.slow_answer_probability > 1.0:
            raise ValueError("lost_answer_probability + slow_answer_probability must be at most 1")
        if self.rate_limit_per_second is not None and self.rate_limit_per_second <= 0:
            raise ValueError("rate_limit_per_second must be positive or None")
        if self.webhook_batch_size < 1 or self.webhook_max_attempts < 1 or self.webhook_concurrency < 1:
            raise ValueError("webhook batch size, attempts and concurrency must be at least 1")
        if not (self.pricing_category.isascii() and self.pricing_category.replace("_", "").isalpha()):
            raise ValueError(
                f"pricing_category must be a word like marketing or utility, got {self.pricing_category!r}"
            )
        if self.opted_out_answer not in ("status", "error"):
            raise ValueError(f"opted_out_answer must be status or error, got {self.opted_out_answer!r}")
        numbers = tuple(n if isinstance(n, PhoneNumber) else PhoneNumber.from_json(n) for n in self.numbers)
        object.__setattr__(self, "numbers", numbers)
        ids = [number.phone_number_id for number in (self.number, *numbers)]
        wabas = {number.waba_id for number in (self.number, *numbers)}
        templates = tuple(_template(t, i, self.waba_id) for i, t in enumerate(self.templates))
        object.__setattr__(self, "templates", templates)
        for template in templates:
            if template.waba_id not in wabas:
                raise ValueError(f"templates: {template.name} names WABA {template.waba_id}, which has no number here")
        limit = self.templates_rate_limit_per_hour
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise ValueError(f"templates_rate_limit_per_hour must be a positive integer or None, got {limit!r}")
        if len(set(ids)) != len(ids):
            raise ValueError(f"numbers: every phone_number_id must be distinct, got {ids}")

    @property
    def number(self) -> PhoneNumber:
        """The first number, from the fields above (its throughput is `rate_limit_per_second`)."""
        return PhoneNumber(
            phone_number_id=self.phone_number_id,
            waba_id=self.waba_id,
            display_phone_number=self.display_phone_number,
            access_token=self.access_token,
            verified_name=self.verified_name,
            throughput=self.rate_limit_per_second,
            messaging_limit_tier=self.messaging_limit_tier,
        )

    @classmethod
    def from_env(cls, prefix: str = "SIMULATOR_", env: Mapping[str, str] | None = None) -> SimulatorConfig:
        """A config from `<prefix><NAME>` variables (see the module table); unset ones keep
        their defaults. Every field is also readable under its own upper-cased name."""
        source = os.environ if env is None else env
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {}
        for suffix, (name, parse) in _ENV.items():
            variable = prefix + suffix
            raw = source.get(variable)
            if raw is not None and name in known:
                try:
                    values[name] = parse(raw.strip())
                except ValueError as exc:
                    # Among thirty variables, "could not convert string to float" alone
                    # does not say which one is wrong (as settings.py's ConfigError does).
                    raise ValueError(f"{variable}: cannot use {raw!r}: {exc}") from None
        return cls(**values)


def _template(item: Template | Any, i: int, waba_id: str) -> Template:
    if isinstance(item, Template):
        return item
    try:
        return Template.from_json(item, waba_id)
    except ValueError as exc:
        raise ValueError(f"templates[{i}]: {exc}") from None


def parse_mix(text: str) -> dict[str, float]:
    """`"131026=0.02,131047=0.01"` -> {"131026": 0.02, "131047": 0.01}."""
    mix: dict[str, float] = {}
    for part in text.replace(";", ",").split(","):
        if part.strip():
            code, sep, p = part.partition("=")
            if not sep:
                raise ValueError(f"error mix entry {part!r} is not CODE=PROBABILITY")
            mix[_error_code(code)] = float(p)
    return mix


def parse_range(text: str) -> tuple[float, float]:
    """`"300-2000"`, `"300..2000"` or `"300,2000"` -> (300.0, 2000.0); one number is fixed."""
    for sep in ("..", "-", ","):
        if sep in text:
            low, high = text.split(sep, 1)
            return float(low), float(high)
    return float(text), float(text)


def _bool(text: str) -> bool:
    return text.lower() in ("1", "true", "yes", "on")


def _optional_float(text: str) -> float | None:
    return None if text.lower() in ("", "none", "null", "0", "unlimited") else float(text)


def _optional_str(text: str) -> str | None:
    return text or None


def _optional_int(text: str) -> int | None:
    return None if text.lower() in ("", "none", "null", "0", "unlimited") else int(text)


def parse_templates(text: str) -> tuple[Any, ...]:
    """`SIMULATOR_TEMPLATES`: a JSON list of templates; each is checked (and its WABA
    defaulted) by the config, which knows its numbers."""
    data = json.loads(text) if text.strip() else []
    if not isinstance(data, list):
        raise ValueError("a JSON list of templates")
    return tuple(data)


_Parser = Callable[[str], Any]
_ENV: dict[str, tuple[str, _Parser]] = {
    "LATENCY_MS": ("latency_mean_ms", float),
    "RATE_LIMIT": ("rate_limit_per_second", _optional_float),
}
# Every field under its own name too, parsed by its declared type.
_BY_TYPE: dict[str, _Parser] = {
    "int": int,
    "str": str,
    "float": float,
    "bool": _bool,
    "float | None": _optional_float,
    "str | None": _optional_str,
    "Mapping[str, float]": parse_mix,
    "tuple[float, float]": parse_range,
    "tuple[PhoneNumber, ...]": parse_numbers,
    "tuple[Template, ...]": parse_templates,
    "int | None": _optional_int,
}
for _field in fields(SimulatorConfig):
    _ENV.setdefault(_field.name.upper(), (_field.name, _BY_TYPE[str(_field.type)]))
