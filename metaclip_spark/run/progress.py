"""Progress lines on the driver (Spark-free): a crawl-scale run must not look hung.

A stage reports what its finished tasks have done so far (files, pairs, failed files) through
a ``poll`` callable (Spark accumulators in the job; they count finished task attempts, so a
retried file may count twice here: progress is a view, the statistics stay exact), and every
``interval`` seconds, and at each committed chunk, one line goes to stderr::

    match 12:04:31  chunk 3/40 committed | files 250/4000 (6.2%), 1 failed | 1,204,331 pairs, 40.1k pairs/s | ETA 25m10s
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Callable, TextIO


def _eta(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds >= 3600:
        return "%dh%02dm" % (seconds // 3600, seconds % 3600 // 60)
    if seconds >= 60:
        return "%dm%02ds" % (seconds // 60, seconds % 60)
    return "%ds" % seconds


def _rate(x: float) -> str:
    return "%.1fk" % (x / 1000) if x >= 1000 else "%.0f" % x


def line(stage: str, files: int, total: int, failed: int, pairs: int, elapsed: float, done_at_start: int = 0,
         note: str = "", now: float | None = None) -> str:
    """One progress line. ``done_at_start``: files of chunks reused from an earlier run (they
    count as done but not toward the rates)."""
    stamp = time.strftime("%H:%M:%S", time.localtime(time.time() if now is None else now))
    pct = 100.0 * files / total if total else 100.0
    parts = ["%s %s " % (stage, stamp) + (" %s |" % note if note else ""),
             " files %d/%d (%.1f%%)%s |" % (files, total, pct, ", %d failed" % failed if failed else "")]
    fresh = files - done_at_start
    if elapsed > 0:
        parts.append(" %s pairs, %s pairs/s |" % (format(pairs, ","), _rate(pairs / elapsed)))
    if fresh > 0 and files < total and elapsed > 0:
        parts.append(" ETA %s" % _eta((total - files) * elapsed / fresh))
    elif files >= total:
        parts.append(" done in %s" % _eta(elapsed))
    else:
        parts.append(" ETA -")
    return "".join(parts).rstrip(" |")


class Progress:
    """``with Progress(stage, total, interval, poll):`` prints a line every ``interval`` seconds
    (0: never) from a daemon thread, plus :meth:`chunk` lines. ``poll()`` returns the
    (files, pairs, failed) finished so far in this run."""

    def __init__(self, stage: str, total: int, interval: float, poll: Callable[[], tuple[int, int, int]],
                 out: TextIO | None = None, clock: Callable[[], float] = time.monotonic):
        self.stage, self.total, self.interval, self.poll = stage, total, interval, poll
        self.out = out
        self.clock = clock
        self.start = clock()
        self.reused = 0                 # files of reused chunks
        self._stop = threading.Event()
        self._thread = None

    def __enter__(self) -> "Progress":
        if self.interval > 0:
            self._thread = threading.Thread(target=self._loop, name="metaclip-progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _emit(self, note: str = "") -> None:
        if self.interval <= 0:
            return
        files, pairs, failed = self.poll()
        text = line(self.stage, self.reused + files, self.total, failed, pairs, self.clock() - self.start,
                    self.reused, note)
        print(text, file=self.out or sys.stderr, flush=True)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self._emit()
            except Exception:       # a progress line must never fail a run
                pass

    def chunk(self, i: int, n: int, files: int, reused: bool) -> None:
        """Chunk ``i`` of ``n`` (``files`` inputs) was committed, or reused from an earlier run."""
        if reused:
            self.reused += files
        self._emit("chunk %d/%d %s" % (i + 1, n, "reused" if reused else "committed"))
