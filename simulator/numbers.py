"""The business phone numbers the simulator serves, each in its WhatsApp Business Account.

A number is what a sender connects on Meta: a phone number id (the address of sends and
lookups), the WABA it belongs to, the display number and verified name people see, the
access token allowed to use it, its throughput and its messaging-limit tier. The
config's number is the first; more are registered at run time (`POST /_simulator/numbers`)
or listed in `SimulatorConfig.numbers`.

Access is decided as the Graph API does (docs/STACK.md): a missing token is code 104, a
token Meta never issued is 190, and a good token asking for a number it may not use
reads exactly like a number that does not exist (code 100, subcode 33). A token may
cover several numbers, as a system user's token covers every number it is assigned.

Numbers belong to a `Waba`, which also holds the account's message templates; a token
may read a WABA's templates when it may use one of that WABA's numbers (our reading:
Meta grants `whatsapp_business_management` per account).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from enum import Enum
from typing import Any

from simulator.templates import TemplateBook

#: Meta's names for the messaging limit (unique users per moving 24 h), lowest first
TIERS = ("TIER_250", "TIER_2K", "TIER_10K", "TIER_100K", "TIER_UNLIMITED")
QUALITY_RATINGS = ("GREEN", "YELLOW", "RED", "UNKNOWN")
#: messages/s of a number Meta has not upgraded; above it the level reads HIGH
STANDARD_THROUGHPUT = 80.0
#: the Graph API node type, as its "nonexisting field" error names it
NODE_TYPE = "WhatsAppBusinessPhoneNumber"
#: `whatsapp_business_manager_messaging_limit` from v24.0, `messaging_limit_tier` before
LIMIT_FIELD_SINCE = (24, 0)
#: fields Graph returns when none are asked for
DEFAULT_FIELDS = ("display_phone_number", "verified_name", "quality_rating")

_ID = re.compile(r"[0-9]{1,32}")
_VERSION = re.compile(r"v([0-9]+)\.([0-9]+)")


class Denial(Enum):
    """Why a request may not use a number; each has one Graph API answer (engine)."""

    MISSING_TOKEN = "missing token"  # 104
    INVALID_TOKEN = "invalid token"  # 190
    NO_OBJECT = "no such object, or not this token's"  # 100, subcode 33


def _text(value: Any, name: str, *, digits: bool = False) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string")
    value = value.strip()
    if digits and not _ID.fullmatch(value):
        raise ValueError(f"{name} must be digits only (up to 32), as Meta's ids are, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class PhoneNumber:
    """One business phone number as Meta knows it; the simulator's truth for lookups,
    token checks, throughput and webhook metadata."""

    phone_number_id: str
    waba_id: str
    display_phone_number: str
    access_token: str
    verified_name: str = "Simulated Business"
    #: accepted sends per second (130429 above it); None: unlimited (benchmarks)
    throughput: float | None = STANDARD_THROUGHPUT
    messaging_limit_tier: str = "TIER_250"
    quality_rating: str = "GREEN"

    def __post_init__(self) -> None:
        object.__setattr__(self, "phone_number_id", _text(self.phone_number_id, "phone_number_id", digits=True))
        object.__setattr__(self, "waba_id", _text(self.waba_id, "waba_id", digits=True))
        object.__setattr__(self, "display_phone_number", _text(self.display_phone_number, "display_phone_number"))
        object.__setattr__(self, "verified_name", _text(self.verified_name, "verified_name"))
        token = _text(self.access_token, "access_token")
        if any(c.isspace() for c in token) or not token.isascii():
            raise ValueError("access_token must be printable ASCII without spaces")
        object.__setattr__(self, "access_token", token)
        throughput = self.throughput
        if throughput is not None:
            if isinstance(throughput, bool) or not isinstance(throughput, int | float) or not throughput > 0:
                raise ValueError(f"throughput must be positive messages per second or null, got {throughput!r}")
            object.__setattr__(self, "throughput", float(throughput))
        for name, allowed in (("messaging_limit_tier", TIERS), ("quality_rating", QUALITY_RATINGS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")

    @classmethod
    def from_json(cls, data: Any) -> PhoneNumber:
        """A number from the control API's JSON; a wrong or unknown field is named."""
        if not isinstance(data, Mapping):
            raise ValueError("a number is a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown field {unknown[0]!r} (known: {', '.join(sorted(known))})")
        for name in ("phone_number_id", "waba_id", "display_phone_number", "access_token"):
            if data.get(name) is None:
                raise ValueError(f"{name} is required")
        return cls(**dict(data))

    def to_json(self) -> dict[str, Any]:
        """The control API's view (its token too: the simulator issued it, it is fake)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @property
    def throughput_level(self) -> str:
        """Meta reports a level, not a rate: STANDARD (80/s) or HIGH (up to 1,000/s)."""
        return "HIGH" if self.throughput is not None and self.throughput > STANDARD_THROUGHPUT else "STANDARD"

    def node(self, version: tuple[int, int]) -> dict[str, Any]:
        """Every field this number serves as a Graph API node at `version`."""
        node: dict[str, Any] = {
            "id": self.phone_number_id,
            "display_phone_number": self.display_phone_number,
            "verified_name": self.verified_name,
            "quality_rating": self.quality_rating,
            "throughput": {"level": self.throughput_level},
            "code_verification_status": "VERIFIED",
            "name_status": "APPROVED",
            "platform_type": "CLOUD_API",
            "status": "CONNECTED",
            "account_mode": "LIVE",
        }
        if version >= LIMIT_FIELD_SINCE:
            node["whatsapp_business_manager_messaging_limit"] = self.messaging_limit_tier
        else:
            node["messaging_limit_tier"] = self.messaging_limit_tier
        return node


def graph_version(segment: str, default: tuple[int, int]) -> tuple[int, int]:
    """`"v26.0"` -> (26, 0); a segment that is not a version reads as the default."""
    found = _VERSION.fullmatch(segment)
    return (int(found.group(1)), int(found.group(2))) if found else default


def requested_fields(param: str | None) -> list[str]:
    """`?fields=a,b{c}` -> ["a", "b"] (an expansion returns the whole field here)."""
    if not param:
        return list(DEFAULT_FIELDS)
    names = [part.split("{", 1)[0].strip() for part in re.split(r",(?![^{]*\})", param)]
    return [name for name in names if name]


def parse_numbers(text: str) -> tuple[PhoneNumber, ...]:
    """`SIMULATOR_NUMBERS`: a JSON list of numbers as the control API takes them."""
    data = json.loads(text) if text.strip() else []
    if not isinstance(data, list):
        raise ValueError("a JSON list of numbers")
    return tuple(PhoneNumber.from_json(item) for item in data)


def bearer(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (Graph also takes `OAuth`)."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() not in ("bearer", "oauth"):
        return None
    return token.strip() or None


@dataclass(slots=True)
class Waba:
    """A WhatsApp Business Account: its numbers and its message templates (which start
    with Meta's `hello_world`, simulator/templates.py)."""

    id: str
    numbers: dict[str, PhoneNumber] = field(default_factory=dict)
    templates: TemplateBook = field(init=False)

    def __post_init__(self) -> None:
        self.templates = TemplateBook(self.id)


class NumberConflict(ValueError):
    """A registration that contradicts a number already registered."""


class NumberRegistry:
    """The numbers by id, their WABAs, and which token may use which number."""

    def __init__(self, first: PhoneNumber) -> None:
        #: the config's number: it cannot be removed, and it is the default for webhooks
        self.first = first
        self._numbers: dict[str, PhoneNumber] = {}
        self._wabas: dict[str, Waba] = {}
        # "Bearer <token>" (the header as sent, the hot path's lookup) -> its numbers
        self._grants: dict[str, dict[str, PhoneNumber]] = {}
        self._tokens: set[str] = set()
        self.register(first)

    def __iter__(self) -> Iterator[PhoneNumber]:
        return iter(list(self._numbers.values()))

    def __len__(self) -> int:
        return len(self._numbers)

    def get(self, phone_number_id: str) -> PhoneNumber | None:
        return self._numbers.get(phone_number_id)

    def waba(self, waba_id: str) -> Waba | None:
        return self._wabas.get(waba_id)

    def register(self, number: PhoneNumber) -> bool:
        """Add a number (True); the same number again changes nothing (False); another
        number under a registered id is a conflict."""
        known = self._numbers.get(number.phone_number_id)
        if known is not None:
            if known == number:
                return False
            raise NumberConflict(f"phone_number_id {number.phone_number_id} is already registered with other details")
        self._numbers[number.phone_number_id] = number
        self._wabas.setdefault(number.waba_id, Waba(number.waba_id)).numbers[number.phone_number_id] = number
        self._grants.setdefault(f"Bearer {number.access_token}", {})[number.phone_number_id] = number
        self._tokens.add(number.access_token)
        return True

    def remove(self, phone_number_id: str) -> PhoneNumber | None:
        """Take a number off (as when it is deleted on Meta): its sends and lookups then
        answer 100/33. The first number stays."""
        if phone_number_id == self.first.phone_number_id:
            raise NumberConflict("the configured number cannot be removed")
        number = self._numbers.pop(phone_number_id, None)
        if number is None:
            return None
        waba = self._wabas[number.waba_id]
        del waba.numbers[phone_number_id]
        if not waba.numbers:
            del self._wabas[number.waba_id]
        header = f"Bearer {number.access_token}"
        del self._grants[header][phone_number_id]
        if not self._grants[header]:
            del self._grants[header]
            self._tokens.discard(number.access_token)
        return number

    def access(self, phone_number_id: str, authorization: str | None) -> PhoneNumber | Denial:
        """The number a request may use, or why not. The hot path of every send: one
        dict lookup by the header as sent, a parse only when that misses."""
        granted = self._grants.get(authorization) if authorization else None
        if granted is None:
            token = bearer(authorization)
            if token is None:
                return Denial.MISSING_TOKEN
            if token not in self._tokens:
                return Denial.INVALID_TOKEN
            # A known token in another spelling of the header ("bearer", extra spaces)
            granted = self._grants[f"Bearer {token}"]
        number = granted.get(phone_number_id)
        return Denial.NO_OBJECT if number is None else number

    def access_waba(self, waba_id: str, authorization: str | None) -> Waba | Denial:
        """The WABA a request may read (its templates): the token must be one of a number
        of that WABA; any other answer reads as Graph's, like `access`."""
        token = bearer(authorization)
        if token is None:
            return Denial.MISSING_TOKEN
        if token not in self._tokens:
            return Denial.INVALID_TOKEN
        waba = self._wabas.get(waba_id)
        if waba is None or not any(n.waba_id == waba_id for n in self._grants[f"Bearer {token}"].values()):
            return Denial.NO_OBJECT
        return waba
