"""The text of a snapshot (pure): the progress line at every width, the plain line,
the summary."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.watch.samples import DONE, LATER, RUNNING
from watch.render import (
    format_duration,
    format_eta,
    format_percent,
    render_bar,
    render_line,
    render_plain,
    render_summary,
    waiting_note,
)
from watch.snapshot import Snapshot


def test_percent_rounds_down_so_100_means_done() -> None:
    assert format_percent(386, 5000) == "7.7%"
    assert format_percent(9999, 10000) == "99.9%"
    assert format_percent(1000, 1000) == "100.0%"
    assert format_percent(0, 0) == "0.0%"


def test_eta_is_pending_over_rate_and_unknown_without_a_rate() -> None:
    assert format_eta(4614, 382.4) == "13s"
    assert format_eta(100, 0.0) == "--"
    assert format_eta(0, 0.0) == "0s"
    assert format_eta(10**6, float("nan")) == "--"
    assert [format_duration(s) for s in (0.2, 59, 61, 3599, 3600, 7322, 10**7)] == [
        "1s",
        "59s",
        "1m01s",
        "59m59s",
        "1h00m",
        "2h02m",
        ">99h",
    ]


def test_bar_fills_in_proportion_and_is_full_only_when_done() -> None:
    assert render_bar(0, 100, 10, unicode=False) == "----------"
    assert render_bar(50, 100, 10, unicode=False) == "#####-----"
    assert render_bar(99, 100, 10, unicode=False) == "#########-"
    assert render_bar(100, 100, 10, unicode=False) == "##########"
    assert render_bar(5, 0, 4, unicode=False) == "----"
    assert render_bar(4, 16, 2) == "▌ "  # eighths of a cell on a Unicode terminal
    assert all(len(render_bar(i, 37, 13)) == 13 for i in range(38))


def test_wide_line_shows_every_field() -> None:
    line = render_line(RUNNING, 200)
    assert line.startswith("PROCESSING [")
    for part in ("7.7%", "386/5000", "sent 386", "delivered 59", "read 3", "failed 0", "cancelled 0", "pending 4614"):
        assert part in line
    assert "382 msg/s" in line and "ETA 13s" in line


@pytest.mark.parametrize("width", [1, 5, 20, 40, 60, 79, 80, 100, 120, 132, 200, 400])
@pytest.mark.parametrize("snap", [RUNNING, LATER, DONE, Snapshot("x", "DRAFT")])
def test_line_never_reaches_the_last_column(width: int, snap: Snapshot) -> None:
    for note in ("", "reconnecting in 3s (connection lost)"):
        assert len(render_line(snap, width, note=note)) <= max(width - 1, 1)
        assert len(render_line(snap, width, note=note, unicode=False)) <= max(width - 1, 1)


def test_detail_gives_way_to_width_but_the_bar_stays_on_80_columns() -> None:
    assert "delivered 59" in render_line(RUNNING, 200)
    assert "dlv 59" in render_line(RUNNING, 140)
    narrow = render_line(RUNNING, 80)
    assert "[" in narrow and "d:59" in narrow and "ETA 13s" in narrow
    assert "[" not in render_line(RUNNING, 50)
    assert render_line(RUNNING, 30).endswith("…")
    assert render_line(RUNNING, 30, unicode=False).endswith(">")


@pytest.mark.parametrize("width", [100, 132, 200])
def test_bar_keeps_its_place_and_size_while_the_numbers_grow(width: int) -> None:
    first, later = render_line(RUNNING, width), render_line(LATER, width)
    assert first.index("]") == later.index("]")
    paused = render_line(replace(LATER, status="PAUSED"), width)
    assert paused.index("[") == later.index("[")  # the status column is padded


def test_a_note_stands_in_for_rate_and_eta_and_takes_room_from_the_bar() -> None:
    plain = render_line(RUNNING, 132)
    counts = plain[: plain.index("  382 msg/s")]
    short = render_line(RUNNING, 132, note="settling 3s")
    assert short == counts + "  settling 3s"  # same bar, same numbers
    note = "reconnecting in 3s (connection closed (1012))"
    long = render_line(RUNNING, 132, note=note)
    assert long.endswith(note) and counts.split("] ")[1] in long
    assert long.index("]") < plain.index("]")
    narrow = render_line(LATER, 80, note="reconnecting in 3s")
    assert "p:408  reconnecting" in narrow and "[" in narrow


def test_plain_line_has_every_field_and_no_bar() -> None:
    assert render_plain(RUNNING) == (
        "PROCESSING  7.7%  386/5000  sent 386 delivered 59 read 3 failed 0 cancelled 0 pending 4614  382 msg/s  ETA 13s"
    )
    assert "ETA --" in render_plain(replace(RUNNING, send_rate=0.0))


def test_summary_has_the_final_numbers_and_rates() -> None:
    assert render_summary(DONE) == (
        "COMPLETED: total 1000, sent 990, delivered 900 (90.9%), read 450 (50.0%), "
        "replied 12, failed 10 (1.0%), cancelled 0, pending 0"
    )


REASON = "Waiting until 09:00 Europe/Paris (2026-12-03) for 3,120 recipients: their local send time. 8,000 wait in all."


def test_a_waiting_note_is_the_first_clause_of_the_status_reason() -> None:
    note = waiting_note(REASON)
    assert note == "waiting until 09:00 Europe/Paris (2026-12-03) for 3,120 recipients"
    assert waiting_note("Waiting until 07:00 UTC (2026-12-03) for 1 recipient.") == (
        "waiting until 07:00 UTC (2026-12-03) for 1 recipient"
    )
    assert waiting_note(None) == waiting_note("") == ""
    stalled = replace(RUNNING, send_rate=0.0)
    line = render_line(stalled, 200, note=note)
    assert line.endswith(f"pending 4614  {note}") and "ETA" not in line and "msg/s" not in line
    assert len(render_line(stalled, 80, note=note)) == 79  # cut, never wrapped
