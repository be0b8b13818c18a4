"""run/totals.py: exact integer sums of per-file results (the treeAggregate combiner)."""

import pickle
from types import SimpleNamespace

import numpy as np

from metaclip_spark.run.stats import Stats
from metaclip_spark.run.totals import RunTotals


def result(source, ids, counts, rows, failed=None, seconds=0.12345, **stats):
    return SimpleNamespace(source=source, output=None if failed else "pool/%s.parquet" % source, rows=rows,
                           failed=failed, seconds=seconds, stats=Stats(stats),
                           entry_ids=np.asarray(ids, np.int64), counts=np.asarray(counts, np.int64))


def test_empty_totals_stay_small_until_used():
    t = RunTotals(10_000_000)
    assert len(pickle.dumps(t)) < 1000
    assert t.dense_counts().shape == (10_000_000,) and t.dense_counts().sum() == 0


def test_add_file_and_merge_are_exact():
    a = RunTotals(4).add_file(result("f1", [0, 2, 2], [1, 2 ** 40, 5], 3, pairs=10))
    b = RunTotals(4).add_file(result("f2", [3], [7], 1, pairs=4, english=2))
    b.add_file(result("f3", [], [], 0, failed="unreadable"))
    total = RunTotals(4).merge(a).merge(b).merge(RunTotals(4))
    assert total.dense_counts().tolist() == [1, 0, 2 ** 40 + 5, 7]
    assert dict(total.stats.counts) == {"pairs": 14, "english": 2}
    assert total.files == [
        {"source": "f1", "output": "pool/f1.parquet", "rows": 3, "failed": None, "seconds": 0.123},
        {"source": "f2", "output": "pool/f2.parquet", "rows": 1, "failed": None, "seconds": 0.123},
        {"source": "f3", "output": None, "rows": 0, "failed": "unreadable", "seconds": 0.123}]
    assert total.failed_inputs() == [{"source": "f3", "error": "unreadable"}]


def test_add_counts_adds_repeated_ids():
    t = RunTotals(3).add_counts([2, 0, 2], [1, 4, 10])
    assert t.dense_counts().tolist() == [4, 0, 11]
    assert [a.tolist() for a in RunTotals(3).add_counts([], []).sparse_counts()] == [[], []]


def test_counts_stay_sparse_in_tasks_and_pickles():
    """A task's totals over a 15M-entry (worldwide) id range pickle as their non-zero ids only,
    and compaction past the pending threshold keeps the sums exact."""
    from metaclip_spark.run import totals as mod

    t = RunTotals(15_000_000).add_file(result("f1", [14_999_999, 3], [2, 1], 2))
    assert len(pickle.dumps(t)) < 2000
    big = RunTotals(15_000_000)
    ids = np.arange(mod._COMPACT_AT + 5, dtype=np.int64) % 1000
    big.add_counts(ids, np.ones(len(ids), np.int64))          # compacts once on the way
    big.merge(pickle.loads(pickle.dumps(t)))
    got_ids, got = big.sparse_counts()
    expect = np.bincount(ids, minlength=1000)
    assert got_ids.tolist() == list(range(1000)) + [14_999_999]
    assert got.tolist() == (expect + np.eye(1, 1000, 3, dtype=np.int64)[0]).tolist() + [2]


def test_out_of_range_ids_are_refused():
    import pytest

    with pytest.raises(IndexError):
        RunTotals(3).add_counts([3], [1])
