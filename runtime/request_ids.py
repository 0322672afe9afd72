"""The id of the request being served, for logs, errors and the X-Request-ID header.

A context variable: the HTTP middleware sets it per request (web/observability.py), the
log formatter and the GraphQL error masking read it (schema/extensions.py).
"""

from __future__ import annotations

import contextvars
import itertools
import secrets

#: "-" outside a request
REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

#: new ids: this process's random prefix and a counter. Unique enough to find a log line,
#: and no system call per request (os.urandom was a few % of a webhook's CPU).
_PREFIX = secrets.token_hex(4)
_SEQUENCE = itertools.count(1)


def current_request_id() -> str:
    return REQUEST_ID.get()


def new_request_id() -> str:
    return f"{_PREFIX}{next(_SEQUENCE):08x}"
