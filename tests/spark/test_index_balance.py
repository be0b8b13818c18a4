"""`balance --index` (metaclip_spark/spark/index_balance.py) on hand-made releases (tests/index/releases.py):
rows equal the Spark-free selection, partitioning and a killed run change no byte, the diff against a
previous curated set, monotonicity of a grown release (docs/semantics.md section 9), clear errors."""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from metaclip_spark.index import ids, select
from metaclip_spark.run.config import ConfigError, load_config
from metaclip_spark.spark.index_balance import run_balance_index
from metaclip_spark.spark.stage2 import run_balance
from metaclip_spark.steps.balance import probabilities, solve_t_for_tail_share
from tests.index.releases import build_release, index_rows, random_rows

ENTRIES = ["entry%d" % i for i in range(16)]
T = 100.0


def cfg(out, **over):
    return load_config(overrides={"output": str(out), "balance.t": T, "balance.rows_per_file": 150, **over})


def digests(folder) -> dict:
    folder = str(folder)
    return {n: hashlib.sha256(open(os.path.join(folder, n), "rb").read()).hexdigest()
            for n in sorted(os.listdir(folder)) if n.endswith(".parquet")}


def curated(out) -> pa.Table:
    folder = os.path.join(str(out), "curated")
    return pa.concat_tables([pq.read_table(os.path.join(folder, n)) for n in sorted(os.listdir(folder))
                             if n.endswith(".parquet")])


def stats(out) -> dict:
    return json.load(open(os.path.join(str(out), "stats", "balance.json")))


def reference(release_dir, dedup, t, seed=0):
    """Spark-free: every bucket file through index/select.py; (rows sorted by image_id, text_hash, expected)."""
    counts = pq.read_table(os.path.join(release_dir, "entry_counts", "entry_counts.parquet")).column("count")
    probs = probabilities(counts.to_numpy(), t)
    parts, expected = [], 0.0
    images = os.path.join(release_dir, "images")
    for name in sorted(os.listdir(images)):
        sel = select.select(pq.read_table(os.path.join(images, name)), dedup, probs, seed)
        form, _ = select.curated_form(sel.rows, dedup, seed)
        parts.append(form)
        expected += sel.expected
    return pa.concat_tables(parts).sort_by([("image_id", "ascending"), ("text_hash", "ascending")]), expected


@pytest.fixture(scope="module")
def releases(tmp_path_factory):
    """Release 1: 400 images; release 2: release 1 + 200 new images + new texts for 100 of the old ones."""
    d = tmp_path_factory.mktemp("index")
    rows1 = random_rows(400, len(ENTRIES), seed=1)
    more = random_rows(200, len(ENTRIES), seed=2, prefix="new")
    extra = [{**r, "text": r["text"] + " again"} for r in random_rows(100, len(ENTRIES), seed=3)]
    for r in extra:                                   # same URLs as release 1's first 100 images
        r["url"] = r["url"]
    rel1 = build_release(d / "idx", 1, rows1, ENTRIES, buckets=8)
    rel2 = build_release(d / "idx", 2, rows1 + more + extra, ENTRIES, buckets=8)
    return {"dir": str(d / "idx"), "rel1": rel1, "rel2": rel2, "rows1": rows1, "rows2": rows1 + more + extra}


@pytest.fixture(scope="module")
def run_a(spark, releases, tmp_path_factory):
    out = tmp_path_factory.mktemp("a")
    summary = run_balance_index(cfg(out), releases["dir"], 1, spark=spark, partitions=1)
    return out, summary


def test_rows_equal_reference_and_each_image_once(run_a, releases):
    out, summary = run_a
    got = curated(out)
    ids_ = got.column("image_id").to_pylist()
    assert len(set(ids_)) == len(ids_) and len(set(got.column("url").to_pylist())) == len(ids_)
    want, expected = reference(releases["rel1"], "image", T)
    assert got.sort_by([("image_id", "ascending"), ("text_hash", "ascending")]).equals(want)
    assert summary["curated_rows"] == summary["images"] == want.num_rows
    assert summary["candidates"] == 400 and summary["pool_rows"] == len(releases["rows1"])
    assert summary["expected_size"] == pytest.approx(expected, rel=1e-9)
    assert (summary["dedup"], summary["release"], summary["t"], summary["t_source"]) == ("image", 1, T, "t")
    assert summary["t_without_dedup"] == T and summary["groups"] > 2
    occ = pq.read_table(os.path.join(releases["rel1"], "entry_counts", "entry_counts.parquet")).column("occurrences")
    assert summary["head_entries_without_dedup"] == int((occ.to_numpy() > T).sum())
    assert summary["head_entries"] < summary["head_entries_without_dedup"]
    bc = pq.read_table(os.path.join(str(out), "balance_counts", "balance_counts.parquet"))
    kept = np.bincount([e for ids_ in got.column("entry_ids").to_pylist() for e in ids_], minlength=len(ENTRIES))
    assert bc.column("balanced_count").to_pylist() == kept.tolist()
    assert os.path.exists(os.path.join(str(out), "curated", "_SUCCESS")) and stats(out)["images"] == want.num_rows


def test_partitions_and_killed_run_give_identical_bytes(spark, run_a, releases, tmp_path):
    out_a, _ = run_a
    run_balance_index(cfg(tmp_path / "b"), releases["dir"], 1, spark=spark, partitions=3)
    assert digests(tmp_path / "b" / "curated") == digests(out_a / "curated")

    def stop(i):
        if i == 1:
            raise KeyboardInterrupt("killed")
    with pytest.raises(KeyboardInterrupt):
        run_balance_index(cfg(tmp_path / "c"), releases["dir"], 1, spark=spark, chunk_size=1, after_chunk=stop)
    assert not os.path.exists(tmp_path / "c" / "curated" / "_SUCCESS")
    summary = run_balance_index(cfg(tmp_path / "c"), releases["dir"], 1, spark=spark, chunk_size=1, partitions=2)
    assert summary["chunks_reused"] == 2
    assert digests(tmp_path / "c" / "curated") == digests(out_a / "curated")
    assert digests(tmp_path / "c" / "balance_counts") == digests(out_a / "balance_counts")


def test_grown_release_diff_and_monotonicity(spark, run_a, releases, tmp_path):
    out_a, _ = run_a
    out = tmp_path / "d"
    summary = run_balance(cfg(out, **{"index.path": releases["dir"], "balance.previous": str(out_a)}), [],
                          spark=spark, partitions=2)          # CURRENT: release 2, through stage 2's entry
    assert summary["release"] == 2 and summary["candidates"] == 600
    new, old = curated(out), curated(out_a)
    new_ids, old_ids = set(new.column("image_id").to_pylist()), set(old.column("image_id").to_pylist())
    added = pq.read_table(str(out / "diff" / "added"))
    removed = pq.read_table(str(out / "diff" / "removed"))
    assert set(added.column("image_id").to_pylist()) == new_ids - old_ids and added.num_rows == len(new_ids - old_ids)
    assert added.schema.names == new.schema.names
    assert set(removed.column("image_id").to_pylist()) == old_ids - new_ids
    old_url = dict(zip(old.column("image_id").to_pylist(), old.column("url").to_pylist()))
    assert sorted(zip(removed.column("image_id").to_pylist(), removed.column("url").to_pylist())) == \
        sorted((i, old_url[i]) for i in old_ids - new_ids)
    old_text = dict(zip(old.column("image_id").to_pylist(), old.column("text").to_pylist()))
    new_text = dict(zip(new.column("image_id").to_pylist(), new.column("text").to_pylist()))
    both = new_ids & old_ids
    assert summary["diff"] == {"added": len(new_ids - old_ids), "removed": len(old_ids - new_ids), "kept": len(both),
                               "text_changed": sum(new_text[i] != old_text[i] for i in both),
                               "added_rows": len(new_ids - old_ids), "removed_rows": len(old_ids - new_ids)}
    assert stats(out)["diff"] == summary["diff"]
    assert os.path.exists(out / "diff" / "added" / "_SUCCESS") and os.path.exists(out / "diff" / "removed" / "_SUCCESS")
    assert all(n == "_SUCCESS" or n.startswith("part-") and len(n) == len("part-00000.parquet")
               for n in os.listdir(out / "diff" / "added"))
    assert len(old_ids - new_ids) > 0 and len(new_ids - old_ids) > 0
    # monotonicity (section 9): every image kept now with the text release 1 chose for it was kept before
    chosen1 = {}
    for r in index_rows(releases["rows1"]):
        chosen1.setdefault(r["image_id"], []).append(r["text_hash"])
    chosen1 = {i: select.choose_text(h, 0) for i, h in chosen1.items()}
    same = [i for i, th in zip(new.column("image_id").to_pylist(), new.column("text_hash").to_pylist())
            if chosen1.get(i) == th]
    assert same and set(same) <= old_ids


def test_pair_mode_and_tail_share(spark, releases, tmp_path):
    out = tmp_path / "p"
    c = cfg(out, **{"balance.dedup": "pair", "balance.t": None, "balance.tail_share": 0.3})
    summary = run_balance_index(c, releases["dir"], None, spark=spark)
    counts = pq.read_table(os.path.join(releases["rel2"], "entry_counts", "entry_counts.parquet"))
    t = solve_t_for_tail_share(counts.column("count").to_numpy(), 0.3)
    assert summary["t"] == t and summary["t_source"] == "tail_share"
    assert summary["t_without_dedup"] == solve_t_for_tail_share(counts.column("occurrences").to_numpy(), 0.3)
    want, expected = reference(releases["rel2"], "pair", t)
    assert curated(out).sort_by([("image_id", "ascending"), ("text_hash", "ascending")]).equals(want)
    assert summary["candidates"] == len(releases["rows2"]) and summary["expected_size"] == pytest.approx(expected)


def test_target_size(spark, releases, tmp_path):
    c = cfg(tmp_path / "s", **{"balance.t": None, "balance.target_size": 300})
    summary = run_balance_index(c, releases["dir"], 2, spark=spark)
    assert summary["t_source"] == "target_size"
    assert summary["expected_size"] == pytest.approx(300, rel=1e-6)       # the whole release is the model
    assert summary["t_without_dedup"] != summary["t"]


def test_errors(spark, releases, tmp_path):
    with pytest.raises(ConfigError, match="no CURRENT"):
        run_balance_index(cfg(tmp_path / "e1"), str(tmp_path / "nothing"))
    with pytest.raises(ConfigError, match="missing"):
        run_balance_index(cfg(tmp_path / "e2"), releases["dir"], 7)
    build_release(tmp_path / "idx", 1, random_rows(5, len(ENTRIES)), ENTRIES, finished=False)
    with pytest.raises(ConfigError, match="unfinished"):
        run_balance_index(cfg(tmp_path / "e3"), str(tmp_path / "idx"), 1)
    with pytest.raises(ConfigError, match="use --pool --dedup none|balance the pools with --pool --dedup none"):
        run_balance_index(cfg(tmp_path / "e4", **{"balance.dedup": "none"}), releases["dir"])
    with pytest.raises(ConfigError, match="give --pool or --index"):
        run_balance(cfg(tmp_path / "e5", **{"index.path": releases["dir"]}), ["somepool"])
    (tmp_path / "prev").mkdir()
    with pytest.raises(ConfigError, match="not a finished curated set"):
        run_balance_index(cfg(tmp_path / "e6", **{"balance.previous": str(tmp_path / "prev")}), releases["dir"])
    pq.write_table(pa.table({"url": ["u"], "text": ["t"]}), str(tmp_path / "prev" / "part-00000.parquet"))
    open(tmp_path / "prev" / "_SUCCESS", "w").close()
    with pytest.raises(ConfigError, match="no image_id column"):
        run_balance_index(cfg(tmp_path / "e7", **{"balance.previous": str(tmp_path / "prev")}), releases["dir"])
    assert ids.image_id("a b") == ids.image_id("ab")
