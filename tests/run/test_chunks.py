"""run/chunks.py: chunk layout, plan check, commit and exact reload of a chunk's totals."""

import json

import numpy as np
import pytest

from metaclip_spark.run import chunks
from metaclip_spark.run.config import ConfigError
from metaclip_spark.run.stats import Stats
from metaclip_spark.run.totals import RunTotals


def test_split_keeps_order_and_the_last_chunk_short():
    assert chunks.split(list("abcdefg"), 3) == [["a", "b", "c"], ["d", "e", "f"], ["g"]]
    assert chunks.split(list("ab"), 5) == [["a", "b"]]
    assert chunks.split([], 2) == []


def test_layout(tmp_path):
    assert chunks.root(str(tmp_path), "balance") == str(tmp_path / "chunks" / "balance")
    assert chunks.chunk_dir(str(tmp_path), "match", 12) == str(tmp_path / "chunks" / "match" / "chunk-00012")


def test_plan_written_then_resumed_then_another_refused(tmp_path):
    out = str(tmp_path)
    plan = {"stage": "match", "chunk_size": 2, "inputs": 3}
    assert chunks.check_plan(out, "match", plan) is False
    assert json.loads((tmp_path / "chunks/match/plan.json").read_text()) == plan
    assert chunks.check_plan(out, "match", dict(plan)) is True
    with pytest.raises(ConfigError, match=r"holds an unfinished match run with other chunk_size, inputs; rerun"):
        chunks.check_plan(out, "match", {**plan, "chunk_size": 3, "inputs": 4})
    chunks.reset(out, "match")
    assert not (tmp_path / "chunks" / "match").exists()


def test_save_load_exact_and_marker_last(tmp_path):
    out = str(tmp_path)
    t = RunTotals(6)
    t.stats = Stats({"pairs": 7, "dropped.no_match": 2}, [{"source": "b", "kind": "k", "message": "m"}])
    t.add_counts([5, 1, 5], [2 ** 40, 3, 1])
    t.files = [{"source": "z", "output": "pool/z.parquet", "rows": 4, "failed": None, "seconds": 0.5},
               {"source": "a", "output": None, "rows": 0, "failed": "boom", "seconds": 0.1}]
    assert not chunks.committed(out, "match", 0)
    chunks.save(out, "match", 0, t)
    assert chunks.committed(out, "match", 0)
    doc = json.loads((tmp_path / "chunks/match/chunk-00000/totals.json").read_text())
    assert doc["entry_ids"] == [1, 5] and doc["entry_counts"] == [3, 2 ** 40 + 1]       # sparse
    assert [f["source"] for f in doc["files"]] == ["a", "z"]                             # sorted
    back = chunks.load(out, "match", 0, 6)
    assert back.dense_counts().tolist() == [0, 3, 0, 0, 0, 2 ** 40 + 1]
    assert back.dense_counts().dtype == np.int64
    assert dict(back.stats.counts) == {"pairs": 7, "dropped.no_match": 2}
    assert back.stats.errors == [{"source": "b", "kind": "k", "message": "m"}]
    assert chunks.has_failures(back)
    assert back.failed_inputs() == [{"source": "a", "error": "boom"}]
    chunks.drop_chunk(out, "match", 0)
    assert not chunks.committed(out, "match", 0)


def test_empty_totals_round_trip(tmp_path):
    chunks.save(str(tmp_path), "balance", 3, RunTotals(4))
    back = chunks.load(str(tmp_path), "balance", 3, 4)
    assert back.dense_counts().tolist() == [0, 0, 0, 0] and back.files == [] and not chunks.has_failures(back)
