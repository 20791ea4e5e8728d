"""A dependency-free progress bar for long audit commands (verify, export).

Drawn on stderr as `\\r[#####.....] 1234/5000 events`, so stdout stays clean
for the command's result. It is only drawn on a terminal, or when the job is
big enough for a progress line in a log to be worth its noise; off a terminal
it redraws only when a bar cell fills, so a log gets at most `width` updates.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

DRAW_THRESHOLD = 1000  # totals up to this finish too fast for a bar to help
REDRAW_INTERVAL_SECONDS = 0.1


class ProgressBar:
    """Counts work done towards a known total; pass the instance as a `progress` callback."""

    def __init__(
        self, total: int, *, unit: str = "events", stream: TextIO | None = None,
        threshold: int = DRAW_THRESHOLD, width: int = 40,
    ) -> None:  # fmt: skip
        self.total = max(total, 0)
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.done = 0
        self.is_terminal = bool(getattr(self.stream, "isatty", lambda: False)())
        self.enabled = self.total > threshold or self.is_terminal
        self._drawn_cells = -1
        self._drawn_at = 0.0
        self._drawn_once = False

    def __call__(self, count: int = 1) -> None:
        self.advance(count)

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.finish()

    def advance(self, count: int = 1) -> None:
        self.done += count
        if self.enabled:
            self._draw(final=False)

    def finish(self) -> None:
        """Draw the last state and end the line, so later output starts on a fresh one."""
        if self.enabled and self._drawn_once:
            self._draw(final=True)
            self.stream.write("\n")
            self.stream.flush()

    def render(self) -> str:
        shown = min(self.done, self.total) if self.total else self.done
        cells = self._cells()
        return f"\r[{'#' * cells}{'.' * (self.width - cells)}] {shown}/{self.total} {self.unit}"

    def _cells(self) -> int:
        if not self.total:
            return self.width
        return min(self.width, self.done * self.width // self.total)

    def _draw(self, *, final: bool) -> None:
        cells = self._cells()
        now = time.monotonic()
        if not final:
            if self.is_terminal and now - self._drawn_at < REDRAW_INTERVAL_SECONDS:
                return
            if not self.is_terminal and cells == self._drawn_cells:
                return
        self._drawn_cells, self._drawn_at, self._drawn_once = cells, now, True
        self.stream.write(self.render())
        self.stream.flush()
