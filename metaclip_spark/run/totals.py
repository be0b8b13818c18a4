"""Adding up per-file results of stage 1: statistics, entry counts and the file manifest.

Used as a Spark ``treeAggregate`` combiner, so it must stay small when empty (the
zero value travels with every task) and merging must be exact integer arithmetic.
"""

from __future__ import annotations

import numpy as np

from metaclip_spark.run.stats import Stats


class RunTotals:
    def __init__(self, n_entries: int):
        self.n_entries = n_entries
        self.stats = Stats()
        self.counts: np.ndarray | None = None      # dense int64, allocated on first use
        self.files: list[dict] = []

    def _dense(self) -> np.ndarray:
        if self.counts is None:
            self.counts = np.zeros(self.n_entries, dtype=np.int64)
        return self.counts

    def add_file(self, result) -> "RunTotals":
        self.stats.merge(result.stats)
        if len(result.entry_ids):
            np.add.at(self._dense(), result.entry_ids, result.counts)
        self.files.append({"source": result.source, "output": result.output, "rows": result.rows,
                           "failed": result.failed, "seconds": round(result.seconds, 3)})
        return self

    def add_counts(self, entry_ids, counts) -> "RunTotals":
        """Add ``counts`` to the entries ``entry_ids`` (repeated ids add up)."""
        if len(entry_ids):
            np.add.at(self._dense(), np.asarray(entry_ids, dtype=np.int64), np.asarray(counts, dtype=np.int64))
        return self

    def merge(self, other: "RunTotals") -> "RunTotals":
        self.stats.merge(other.stats)
        if other.counts is not None:
            self._dense()[:] += other.counts
        self.files.extend(other.files)
        return self

    def dense_counts(self) -> np.ndarray:
        return self._dense()

    def failed_inputs(self) -> list[dict]:
        return sorted(({"source": f["source"], "error": f["failed"]} for f in self.files if f["failed"]),
                      key=lambda f: f["source"])
