"""Progress for `deid run` and the examples: a bar with ETA for files and folders, a frame counter with live FPS
for streams. `run_pipeline(..., progress=Progress())` starts it once the source is open."""
from __future__ import annotations

import sys
import time

from deid_sdk.io.live_loop import LoopSummary


class Progress:
    def __init__(self, description: str = "deid"):
        self.description = description
        self._bar = None
        self._last_refresh = 0.0

    def start(self, total: int | None, live: bool) -> None:
        from tqdm import tqdm

        # Redrawing is cheap on a terminal; in a log file every redraw is a new line, so do it rarely.
        common = dict(desc=self.description, unit="frame", file=sys.stderr, dynamic_ncols=True,
                      mininterval=0.2 if sys.stderr.isatty() else 10.0)
        if live or not total:
            self._bar = tqdm(**common, bar_format="{desc}: {n} frames [{elapsed}, {rate_fmt}{postfix}]")
        else:
            self._bar = tqdm(**common, total=total)

    def __call__(self, summary: LoopSummary) -> None:
        if self._bar is None:
            return
        self._bar.update(summary.frames_written - self._bar.n)
        now = time.monotonic()
        if (summary.frames_dropped or summary.frames_blanked) and now - self._last_refresh > 1.0:
            self._last_refresh = now
            self._bar.set_postfix(dropped=summary.frames_dropped, blanked=summary.frames_blanked, refresh=False)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
