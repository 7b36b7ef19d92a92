"""Model-loading progress on stderr (a line that updates in place on a terminal)."""

from __future__ import annotations

import sys

from agent.llm.base import LoadProgress


class StderrProgress:
    """A ProgressCallback that draws ``[#####     ] 50% message`` on stderr."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self._tty = sys.stderr.isatty()
        self._last = -1

    def __call__(self, progress: LoadProgress) -> None:
        if self.quiet:
            return
        percent = int(progress.fraction * 100)
        if self._tty:
            bar = "#" * (percent // 5)
            sys.stderr.write(f"\r[{bar:<20}] {percent:3d}% {progress.message[:50]:<50}")
            if progress.fraction >= 1.0:
                sys.stderr.write("\n")
        elif percent != self._last and percent > 0 and (percent == 100 or percent - self._last >= 25):
            sys.stderr.write(f"{percent}% {progress.message}\n")
        self._last = percent
        sys.stderr.flush()
