"""When to draw: on a terminal one line redrawn in place, elsewhere plain lines."""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable
from typing import TextIO

from watch.render import GLYPHS, render_line, render_plain, render_summary
from watch.snapshot import Snapshot


def _supports_unicode(out: TextIO) -> bool:
    try:
        GLYPHS.encode(getattr(out, "encoding", None) or "ascii")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def _terminal_width() -> int:
    return shutil.get_terminal_size(fallback=(80, 24)).columns


class Display:
    """Draws snapshots: on a terminal one line redrawn in place (at most 10 a second);
    elsewhere one plain line per update, at most `plain_interval` apart (the newest
    state wins; a held-back update is drawn when its turn comes)."""

    def __init__(
        self,
        out: TextIO,
        err: TextIO,
        *,
        tty: bool,
        width: Callable[[], int] = _terminal_width,
        unicode: bool | None = None,
        plain_interval: float = 0.5,
        tty_interval: float = 0.1,
    ) -> None:
        self.out, self.err, self.tty, self.width = out, err, tty, width
        self.unicode = _supports_unicode(out) if unicode is None else unicode
        self.interval = tty_interval if tty else plain_interval
        self.snap: Snapshot | None = None
        self.note = ""
        self._dirty = False
        self._drawn_at = -math.inf
        self._last_text = ""
        self._line_open = False
        self._line_len = 0

    def show(self, snap: Snapshot) -> None:
        self.snap = snap
        self._dirty = True

    def set_note(self, note: str) -> None:
        """A remark at the end of the terminal line (reconnecting, settling)."""
        if note != self.note:
            self.note = note
            self._dirty = self._dirty or self.tty

    def due_in(self, now: float) -> float | None:
        """Seconds until a held-back draw is due; None when nothing waits."""
        if not self._dirty or self.snap is None:
            return None
        return max(0.0, self._drawn_at + self.interval - now)

    def flush(self, now: float, *, force: bool = False) -> None:
        if not self._dirty or self.snap is None:
            return
        if not force and now - self._drawn_at < self.interval:
            return
        self._dirty, self._drawn_at = False, now
        if self.tty:
            line = render_line(self.snap, self.width(), unicode=self.unicode, note=self.note)
            # Blank out what is left of a longer line, but stop there: the cursor stays
            # right after the text, so a ^C echo does not wrap.
            self.out.write("\r" + line.ljust(self._line_len if self._line_open else 0))
            self._line_open, self._line_len = True, len(line)
        else:
            text = render_plain(self.snap)
            if text == self._last_text:
                return
            self._last_text = text
            self.out.write(text + "\n")
        self.out.flush()

    def message(self, text: str) -> None:
        """A line of its own on stderr, without tearing the progress line."""
        self._end_line()
        self.err.write(text + "\n")
        self.err.flush()
        if self.tty and self.snap is not None:
            self._dirty = True
            self.flush(self._drawn_at, force=True)

    def finish(self, snap: Snapshot) -> None:
        self.show(snap)
        self.set_note("")
        self.flush(math.inf, force=True)
        self._end_line()
        self.out.write(render_summary(snap) + "\n")
        self.out.flush()

    def close(self) -> None:
        self._end_line()

    def _end_line(self) -> None:
        if self._line_open:
            self.out.write("\n")
            self.out.flush()
            self._line_open = False
