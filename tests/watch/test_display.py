"""When the display draws: plain lines at most two a second, or one terminal line
redrawn in place."""

from __future__ import annotations

import io
from dataclasses import replace

import pytest

from tests.watch.samples import DONE, LATER, RUNNING
from watch.display import Display
from watch.render import render_line, render_plain, render_summary


def test_plain_output_is_one_line_per_update_at_most_two_a_second() -> None:
    out = io.StringIO()
    display = Display(out, io.StringIO(), tty=False)
    display.show(RUNNING)
    display.flush(0.0)
    display.show(replace(RUNNING, pending=4000, sent=1000))
    display.flush(0.2)  # too soon: held back
    assert out.getvalue().count("\n") == 1
    assert display.due_in(0.2) == pytest.approx(0.3)
    display.show(LATER)  # the newest state wins
    display.flush(0.5)
    lines = out.getvalue().splitlines()
    assert lines == [render_plain(RUNNING), render_plain(LATER)]
    assert display.due_in(0.6) is None
    display.finish(DONE)
    assert out.getvalue().splitlines()[-2:] == [render_plain(DONE), render_summary(DONE)]
    assert "\r" not in out.getvalue()


def test_terminal_output_redraws_one_line_in_place() -> None:
    out = io.StringIO()
    display = Display(out, io.StringIO(), tty=True, width=lambda: 100, unicode=False)
    display.show(LATER)
    display.flush(0.0)
    display.show(RUNNING)  # a shorter line
    display.flush(1.0)
    text = out.getvalue()
    assert "\n" not in text and text.count("\r") == 2
    first, second = text.split("\r")[1:]
    assert first == render_line(LATER, 100, unicode=False)
    assert second == render_line(RUNNING, 100, unicode=False).ljust(len(first))  # blanks the rest of the old one
    display.finish(DONE)
    assert out.getvalue().endswith("\n" + render_summary(DONE) + "\n")
