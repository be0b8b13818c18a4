"""Adding up per-file results of stage 1: statistics, entry counts and the file manifest.

Used as a Spark ``treeAggregate`` combiner, so it must stay small when empty (the
zero value travels with every task) and merging must be exact integer arithmetic.

The counts are kept sparse (ascending ids and their int64 sums) and made dense only on the
driver (:meth:`RunTotals.dense_counts`): a worldwide metadata has ~15M entries, and a dense
vector per task was 120 MB of worker heap, pickled again for every merge of the aggregation.
"""

from __future__ import annotations

import numpy as np

from metaclip_spark.run.stats import Stats

_COMPACT_AT = 1 << 20     # pending (id, count) pairs before they are summed into the sparse counts


def _sum_by_id(ids: np.ndarray, vals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ascending distinct ids and the exact int64 sum of their values."""
    if not len(ids):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    order = np.argsort(ids, kind="stable")
    ids, vals = ids[order], vals[order]
    starts = np.flatnonzero(np.concatenate(([True], ids[1:] != ids[:-1])))
    return ids[starts], np.add.reduceat(vals, starts)


class RunTotals:
    def __init__(self, n_entries: int):
        self.n_entries = n_entries
        self.stats = Stats()
        self.files: list[dict] = []
        self._ids = np.zeros(0, np.int64)         # sparse counts: ascending ids ...
        self._vals = np.zeros(0, np.int64)        # ... and their sums
        self._pending: list[tuple[np.ndarray, np.ndarray]] = []
        self._n_pending = 0

    def __getstate__(self) -> dict:
        self._compact()
        state = dict(self.__dict__)
        state["_pending"], state["_n_pending"] = [], 0
        return state

    def _push(self, ids, vals) -> None:
        ids = np.asarray(ids, dtype=np.int64)
        if not len(ids):
            return
        if len(ids) and (ids.min() < 0 or ids.max() >= self.n_entries):
            raise IndexError("entry id out of range [0, %d)" % self.n_entries)
        self._pending.append((ids, np.asarray(vals, dtype=np.int64)))
        self._n_pending += len(ids)
        if self._n_pending >= max(_COMPACT_AT, len(self._ids)):
            self._compact()

    def _compact(self) -> None:
        if not self._pending:
            return
        ids = np.concatenate([self._ids] + [p[0] for p in self._pending])
        vals = np.concatenate([self._vals] + [p[1] for p in self._pending])
        self._ids, self._vals = _sum_by_id(ids, vals)
        self._pending, self._n_pending = [], 0

    def add_file(self, result) -> "RunTotals":
        self.stats.merge(result.stats)
        self._push(result.entry_ids, result.counts)
        self.files.append({"source": result.source, "output": result.output, "rows": result.rows,
                           "failed": result.failed, "seconds": round(result.seconds, 3)})
        return self

    def add_counts(self, entry_ids, counts) -> "RunTotals":
        """Add ``counts`` to the entries ``entry_ids`` (repeated ids add up)."""
        self._push(entry_ids, counts)
        return self

    def merge(self, other: "RunTotals") -> "RunTotals":
        self.stats.merge(other.stats)
        other._compact()
        self._push(other._ids, other._vals)
        self.files.extend(other.files)
        return self

    def sparse_counts(self) -> tuple[np.ndarray, np.ndarray]:
        """``(ids, counts)``: the ids with a non-zero count, ascending, and their counts."""
        self._compact()
        nz = self._vals != 0
        return self._ids[nz], self._vals[nz]

    def dense_counts(self) -> np.ndarray:
        """The counts as one int64 vector of ``n_entries`` (the driver's form)."""
        dense = np.zeros(self.n_entries, dtype=np.int64)
        ids, vals = self.sparse_counts()
        dense[ids] = vals
        return dense

    def failed_inputs(self) -> list[dict]:
        return sorted(({"source": f["source"], "error": f["failed"]} for f in self.files if f["failed"]),
                      key=lambda f: f["source"])
