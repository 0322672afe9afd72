"""The cyclic garbage collector tuned for a long-running server process.

Sending and webhooks are CPU-bound, and with CPython's defaults the cyclic GC took
about a fifth of a worker's CPU per message (and a comparable share of the API's per
webhook): every 700 allocations a young collection traversed the objects of the
requests and calls in flight, promoted them, and full collections walked the whole heap
of modules and ORM metadata again and again. Freezing what startup built keeps full
collections off that heap (it lives as long as the process), and a larger young
generation lets per-request objects die by reference count before a collection sees
them. Memory stays bounded: collections still run, just less often.
"""

from __future__ import annotations

import gc

#: the youngest generation's threshold (CPython's default: 700)
GEN0_THRESHOLD = 50_000


def tune() -> None:
    """Call once startup is done (modules imported, the ORM up)."""
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, gen1, gen2)
