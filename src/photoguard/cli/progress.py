"""A small terminal progress bar on stderr (only when stderr is a terminal): files done of the
files given, and for a clip in progress its pass and frames done of its frames."""

from __future__ import annotations

import sys
import time

#: a clip reports about once a frame; the line is redrawn at most this often (seconds)
REDRAW_SECONDS = 0.2


class Progress:
    def __init__(self, total: int, *, enabled: bool) -> None:
        self.total = max(total, 1)
        self.done = 0
        self.enabled = enabled
        self.start = time.monotonic()
        self._drawn = 0.0

    def line(self, clip: str = "") -> str:
        """The progress line (without the carriage return)."""
        width = 30
        filled = int(width * self.done / self.total)
        rate = self.done / max(time.monotonic() - self.start, 1e-6)
        text = f"[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} ({rate:.1f} photos/s)"
        return f"{text} {clip}" if clip else text

    def _draw(self, clip: str = "") -> None:
        # padded so that a shorter line covers the end of a longer one before it
        sys.stderr.write(f"\r{self.line(clip):<100}")
        sys.stderr.flush()
        self._drawn = time.monotonic()

    def step(self, n: int = 1) -> None:
        self.done += n
        if self.enabled:
            self._draw()

    def clip(self, stage: str, done: int, total: int) -> None:
        """A clip's progress (:func:`photoguard.photo.video.clip_progress`): its pass
        ("analyse" or "render") and frames done of its frames, on the same line."""
        if not self.enabled:
            return
        if done < total and time.monotonic() - self._drawn < REDRAW_SECONDS:
            return
        self._draw(f"clip: {stage} frame {done}/{total}")

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")
            sys.stderr.flush()
