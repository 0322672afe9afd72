"""runtime/gc.py: tune() collects what startup left as garbage, freezes what startup
built (full collections no longer walk it), and makes young collections rarer, not
absent: a cycle made after tuning is still freed without anyone calling gc.collect().

Each test restores the interpreter's collector as it found it."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from runtime import gc as gc_tuning


class Node:
    """Something the cyclic collector tracks and a weak reference can watch."""

    def __init__(self) -> None:
        self.other: Node | None = None


def cycle() -> weakref.ref[Node]:
    """A two-node reference cycle nobody else refers to: only the cyclic GC frees it."""
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)


@pytest.fixture(autouse=True)
def collector() -> Iterator[None]:
    threshold, enabled, frozen = gc.get_threshold(), gc.isenabled(), gc.get_freeze_count()
    gc.set_threshold(700, 10, 10)  # CPython's defaults, whatever ran before
    try:
        yield
    finally:
        if frozen == 0:  # a worker started in-process may have tuned (and frozen) before
            gc.unfreeze()
        gc.set_threshold(*threshold)
        (gc.enable if enabled else gc.disable)()


def test_only_the_young_generations_threshold_changes() -> None:
    gc_tuning.tune()
    assert gc.get_threshold() == (gc_tuning.GEN0_THRESHOLD, 10, 10)
    assert gc_tuning.GEN0_THRESHOLD > 700


def test_garbage_left_by_startup_is_collected_not_frozen() -> None:
    gc.disable()  # so no automatic collection frees it first
    garbage = cycle()
    assert garbage() is not None
    gc_tuning.tune()
    assert garbage() is None


def test_what_startup_built_is_frozen_and_what_comes_later_is_not() -> None:
    built_at_startup = [Node()]
    gc_tuning.tune()
    assert gc.get_freeze_count() > 0
    # frozen objects sit in the permanent generation, which no collection traverses
    assert not any(o is built_at_startup for o in gc.get_objects())
    made_later = [Node()]
    assert any(o is made_later for o in gc.get_objects(generation=0))


def test_young_collections_run_less_often_but_still_free_cycles() -> None:
    assert gc.isenabled()
    gc_tuning.tune()
    young: list[int] = []

    def seen(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            young.append(info["generation"])

    gc.callbacks.append(seen)
    try:
        garbage = cycle()
        # far more live allocations than CPython's default threshold of 700 ...
        alive = [Node() for _ in range(10 * 700)]
        assert young == [] and garbage() is not None
        # ... and past the tuned one, a collection runs by itself and frees the cycle
        alive += [Node() for _ in range(gc_tuning.GEN0_THRESHOLD)]
        assert young != [] and garbage() is None
    finally:
        gc.callbacks.remove(seen)
    del alive
