"""The text of a snapshot (pure): the terminal progress line, the plain line for logs
and pipes, and the closing summary, with the numbers formatted for them."""

from __future__ import annotations

import math

from watch.snapshot import Snapshot


def format_percent(done: int, total: int) -> str:
    """Rounded down to a tenth, so 100.0% means every message is processed."""
    tenths = done * 1000 // total if total > 0 else 0
    return f"{tenths // 10}.{tenths % 10}%"


def format_rate(rate: float) -> str:
    if not math.isfinite(rate) or rate <= 0:
        return "0"
    return f"{rate:.1f}" if rate < 10 else f"{rate:.0f}"


def format_duration(seconds: float) -> str:
    s = math.ceil(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 100 * 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return ">99h"


def format_eta(pending: int, rate: float) -> str:
    """pending / rate; "--" when the rate is unknown (zero) and work remains."""
    if pending <= 0:
        return "0s"
    if not math.isfinite(rate) or rate <= 0:
        return "--"
    return format_duration(pending / rate)


_EIGHTHS = " ▏▎▍▌▋▊▉"
GLYPHS = "█" + _EIGHTHS + "…"  # what a Unicode line may draw (the out stream must encode them)


def render_bar(done: int, total: int, width: int, *, unicode: bool = True) -> str:
    """`width` cells, filled in proportion done/total (rounded down; full only when done)."""
    if width <= 0:
        return ""
    fraction = min(max(done / total, 0.0), 1.0) if total > 0 else 0.0
    if not unicode:
        full = math.floor(fraction * width)
        return "#" * full + "-" * (width - full)
    eighths = math.floor(fraction * width * 8)
    full, part = divmod(eighths, 8)
    bar = "█" * full + (_EIGHTHS[part] if part else "")
    return bar + " " * (width - len(bar))


_LABELS = {
    "long": ("sent", "delivered", "read", "failed", "cancelled", "pending"),
    "short": ("sent", "dlv", "read", "fail", "canc", "pend"),
    "tiny": ("s:", "d:", "r:", "f:", "c:", "p:"),
}
STYLES = ("long", "short", "tiny")
MIN_BAR, MAX_BAR = 10, 40
TINY_BAR = 4  # the least bar worth drawing on a narrow terminal
STATUS_WIDTH = len("PROCESSING")  # the longest status: the bar does not move when it changes
GAP = "  "


def _parts(snap: Snapshot, style: str, *, note: str = "", widest: bool = False) -> list[str]:
    """Everything right of the bar at one level of detail. A `note` stands in for the
    rate and the ETA, which it makes moot (a lost connection has no current rate, a
    settling campaign no ETA). `widest`: as wide as this campaign's line can get (every
    count at total, a 4-digit rate, a 6-character ETA), which fixes the layout so the
    bar does not shrink as the numbers grow."""
    values = (snap.sent, snap.delivered, snap.read, snap.failed, snap.cancelled, snap.pending)
    percent = format_percent(snap.processed, snap.total).rjust(6)
    rate, eta = format_rate(snap.send_rate), format_eta(snap.pending, snap.send_rate)
    if widest:
        values, percent, rate, eta = (snap.total,) * 6, "100.0%", "9999", "59m59s"
    sep = "" if style == "tiny" else " "
    parts = [percent]
    if style == "long":
        parts.append(f"{snap.total if widest else snap.processed}/{snap.total}")
    parts.append(" ".join(f"{label}{sep}{value}" for label, value in zip(_LABELS[style], values, strict=True)))
    if note:
        return [*parts, note]
    parts.append(f"{rate}/s" if style == "tiny" else f"{rate} msg/s")
    parts.append(f"ETA {eta}")
    return parts


def _layout(snap: Snapshot, room: int) -> tuple[str, int] | None:
    """(style, bar width) for `room` columns, or None when no bar fits.

    The most detailed style whose widest line for this campaign leaves MIN_BAR cells
    wins, so the layout stays put while the numbers grow. Where none does (narrow
    terminals), the tiny style with the room left by the actual numbers."""
    fixed = STATUS_WIDTH + 4  # " [" "]" " "
    for style in STYLES:
        bar = room - fixed - len(GAP.join(_parts(snap, style, widest=True)))
        if bar >= MIN_BAR:
            return style, min(bar, MAX_BAR)
    bar = room - fixed - len(GAP.join(_parts(snap, "tiny")))
    return ("tiny", min(bar, MAX_BAR)) if bar >= TINY_BAR else None


def _cut(line: str, room: int, unicode: bool) -> str:
    if len(line) <= room:
        return line
    return line[: room - 1] + ("…" if unicode else ">") if room > 1 else line[:room]


def render_line(snap: Snapshot, width: int, *, unicode: bool = True, note: str = "") -> str:
    """The progress line for a terminal `width` columns wide, never longer than
    width - 1 (writing the last column makes some terminals wrap).

    Detail gives way to width in this order: long labels and the done/total count,
    then short labels, then one-letter labels, then the bar; at last the line is cut.
    A `note` (reconnecting, settling) replaces the rate and ETA at the end; where it
    is longer, it takes room from the bar down to MIN_BAR cells, never the layout, and
    is cut where the line must be."""
    room = max(width - 1, 1)
    layout = _layout(snap, room)
    if layout is None:
        return _cut(GAP.join([snap.status, *_parts(snap, "tiny", note=note)]), room, unicode)
    style, bar_width = layout
    tail = GAP.join(_parts(snap, style, note=note))
    status = snap.status.ljust(STATUS_WIDTH)
    shortfall = len(status) + 4 + bar_width + len(tail) - room
    if shortfall > 0:
        bar_width -= min(shortfall, max(bar_width - (MIN_BAR if bar_width >= MIN_BAR else TINY_BAR), 0))
    bar = render_bar(snap.processed, snap.total, bar_width, unicode=unicode)
    return _cut(f"{status} [{bar}] {tail}", room, unicode)


def render_plain(snap: Snapshot) -> str:
    """One line for a log or a pipe: every field, full labels, no bar."""
    return GAP.join([snap.status, *(part.strip() for part in _parts(snap, "long"))])


def render_summary(snap: Snapshot) -> str:
    """The last line printed: the settled numbers, each rate beside its count."""
    return (
        f"{snap.status}: total {snap.total}, sent {snap.sent}, "
        f"delivered {snap.delivered} ({snap.delivery_rate:.1%}), read {snap.read} ({snap.read_rate:.1%}), "
        f"replied {snap.replied}, failed {snap.failed} ({snap.failure_rate:.1%}), "
        f"cancelled {snap.cancelled}, pending {snap.pending}"
    )


def waiting_note(status_reason: str | None) -> str:
    """The note of a PROCESSING campaign whose messages wait: the first clause of its
    statusReason ("Waiting until 09:00 Europe/Paris (2026-12-03) for 3,120 recipients:
    their local send time. …" → "waiting until 09:00 Europe/Paris (2026-12-03) for
    3,120 recipients"); "" without a reason."""
    clause = (status_reason or "").strip().split(": ", 1)[0].split(". ", 1)[0].rstrip(".").strip()
    return clause[:1].lower() + clause[1:]
