"""Stage 2 on a real local Spark session, over pools written by the test itself."""

import hashlib
import json
import math
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from metaclip_spark.run import outputs
from metaclip_spark.run import runfolder
from metaclip_spark.steps.balance import keep_probability, probabilities
from metaclip_spark.steps.draws import keep_mask, key_hashes, order_keys
from metaclip_spark.run.config import load_config
from metaclip_spark.spark.stage2 import curation_frame, run_balance
from metaclip_spark.run.schema import ENTRY_COUNTS_SCHEMA, POOL_SCHEMA
from metaclip_spark.steps.pipeline import index_columns

N_ENTRIES = 2000


def write_pool(folder, rows: int, files: int, seed: int, id_offset: int = 0) -> dict:
    """A finished stage-1 output folder: pool files, entry counts, manifest, _SUCCESS."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, N_ENTRIES + 1) ** 1.1
    weights /= weights.sum()
    counts = np.zeros(N_ENTRIES, dtype=np.int64)
    manifest, all_ids = [], []
    per = rows // files
    for f in range(files):
        lens = rng.integers(1, 7, size=per)
        draws = rng.choice(N_ENTRIES, size=int(lens.sum()), p=weights)
        keys = np.unique(np.repeat(np.arange(per, dtype=np.int64), lens) * N_ENTRIES + draws)
        row, values = keys // N_ENTRIES, (keys % N_ENTRIES).astype(np.int32)   # unique, ascending per row
        offsets = np.concatenate([[0], np.cumsum(np.bincount(row, minlength=per))]).astype(np.int32)
        ids = pa.ListArray.from_arrays(pa.array(offsets), pa.array(values))
        counts += np.bincount(values, minlength=N_ENTRIES)
        start = id_offset + f * per
        urls = ["http://img.example/%d.jpg" % (start + i) for i in range(per)]
        texts = ["caption number %d" % (start + i) for i in range(per)]
        table = pa.table({
            "url": urls, "text": texts, "entry_ids": ids,
            "page_url": ["http://page.example/%d" % (start + i) for i in range(per)],
            "lid_score": pa.array(np.full(per, 0.9, np.float32)), "source": ["synthetic-%d" % f] * per,
            "record_id": ["<urn:uuid:%d>" % (start + i) for i in range(per)],
            "record_offset": pa.array(np.arange(per, dtype=np.int64)),
            "key_hash": pa.array(key_hashes(urls, texts)), **index_columns(urls, texts, "synthetic"),
            "text_field": ["alt"] * per, "lang": ["en"] * per,
        }, schema=POOL_SCHEMA)
        uri = os.path.join(folder, "pool", "part-%05d.parquet" % f)
        outputs.write_table(uri, table)
        manifest.append({"source": "synthetic-%d" % f, "output": "pool/part-%05d.parquet" % f, "rows": per,
                         "failed": None})
        all_ids.append(ids)
    digest = runfolder.pool_digest([(m["output"], m["rows"]) for m in manifest])   # as stage 1 writes it
    outputs.write_table(os.path.join(folder, "entry_counts", "entry_counts.parquet"), pa.table({
        "entry_id": pa.array(np.arange(N_ENTRIES, dtype=np.int32)),
        "entry": ["entry%d" % i for i in range(N_ENTRIES)], "count": pa.array(counts), "lang": ["en"] * N_ENTRIES},
        schema=ENTRY_COUNTS_SCHEMA.with_metadata({"pool_digest": digest})))
    outputs.write_text(os.path.join(folder, "stats", "match-files.json"), json.dumps(manifest))
    outputs.write_text(os.path.join(folder, "stats", "match.json"), json.dumps({"pool_digest": digest}))
    outputs.write_text(os.path.join(folder, "_SUCCESS"), "")
    return {"counts": counts, "ids": all_ids}


def digests(folder) -> dict:
    names = sorted(n for n in os.listdir(folder) if n.endswith(".parquet"))
    return {n: hashlib.sha256(open(os.path.join(folder, n), "rb").read()).hexdigest() for n in names}


def cfg(out, **over):
    return load_config(overrides={"output": str(out), **over})


@pytest.fixture(scope="module")
def pool_1m(tmp_path_factory):
    d = tmp_path_factory.mktemp("pool1m")
    info = write_pool(str(d), rows=1_000_000, files=4, seed=3)
    return str(d), info


def test_million_row_pool_is_map_only_and_statistically_right(spark, pool_1m, tmp_path):
    pool, info = pool_1m
    out = tmp_path / "bal"
    # per-occurrence stage 2 (MetaCLIP v1 as written): the curated rows are the pool rows the kernel keeps
    summary = run_balance(cfg(out, **{"balance.t": 2000, "balance.rows_per_file": 1_000_000, "balance.dedup": "none"}),
                          [pool], spark=spark)
    probs = probabilities(info["counts"], 2000)
    assert summary["pool_rows"] == 1_000_000
    assert summary["head_entries"] == int((info["counts"] > 2000).sum()) > 50
    # the curated set is exactly the rows the kernel keeps, in the seeded order of their keys
    expected_urls, expected_keys = [], []
    for f in range(4):
        t = pq.read_table(os.path.join(pool, "pool", "part-%05d.parquet" % f))
        m = keep_mask(t.column("entry_ids"), t.column("key_hash").to_numpy(), probs, 0)
        expected_urls.extend(t.column("url").filter(pa.array(m)).to_pylist())
        expected_keys.extend(t.column("key_hash").filter(pa.array(m)).to_pylist())
    order = np.lexsort((np.arange(len(expected_keys)), order_keys(np.array(expected_keys, np.int64), 0)))
    got = outputs.read_tables(outputs.list_files(str(out / "curated"), ".parquet"))
    assert got.column("url").to_pylist() == [expected_urls[i] for i in order]
    assert sorted(got.column("url").to_pylist()) != got.column("url").to_pylist()   # not in pool order
    assert got.schema == POOL_SCHEMA
    # pair keep rate: actual size within 4 standard deviations of sum(1 - prod(1 - p))
    kp = np.concatenate([keep_probability(a, probs) for a in info["ids"]])
    assert summary["expected_size"] == pytest.approx(kp.sum(), rel=1e-9)
    sd = math.sqrt((kp * (1 - kp)).sum())
    assert abs(summary["curated_rows"] - kp.sum()) < 4 * sd
    # few large files for img2dataset, flat folder
    assert summary["groups"] == len(summary["files"]) == 1
    assert sorted(os.listdir(out / "curated")) == ["_SUCCESS"] + sorted(os.path.basename(f) for f in summary["files"])
    # balanced counts of head entries are pulled toward t
    bc = pq.read_table(out / "balance_counts" / "balance_counts.parquet")
    head = info["counts"] > 2000
    assert (bc.column("balanced_count").to_numpy()[head] < info["counts"][head]).all()


def test_plan_has_no_exchange(spark, pool_1m, tmp_path):
    pool, _ = pool_1m
    files = [os.path.join(pool, "pool", "part-%05d.parquet" % f) for f in range(4)]
    bc = spark.sparkContext.broadcast(np.ones(N_ENTRIES))
    df = curation_frame(spark, [files[:2], files[2:]], str(tmp_path / "c"), bc, 0)
    plan = df._jdf.queryExecution().executedPlan().toString()
    assert "MapInArrow" in plan or "PythonMapInArrow" in plan
    assert "Exchange" not in plan


@pytest.fixture(scope="module")
def small_pools(tmp_path_factory):
    a = str(tmp_path_factory.mktemp("poolA"))
    b = str(tmp_path_factory.mktemp("poolB"))
    return (a, write_pool(a, rows=60_000, files=6, seed=5)), (b, write_pool(b, rows=40_000, files=2, seed=6, id_offset=10**7))


def test_byte_identical_across_partitions_runs_and_retries(spark, small_pools, tmp_path, monkeypatch):
    (pool, _), _ = small_pools
    # per-occurrence stage 2: groups of pool files, balance_group per group (the fault is injected there)
    over = {"balance.t": 300, "balance.rows_per_file": 15_000, "balance.seed": 7, "balance.dedup": "none"}
    runs = {}
    runs["p1"] = run_balance(cfg(tmp_path / "p1", **over), [pool], spark=spark, partitions=1)
    runs["p8"] = run_balance(cfg(tmp_path / "p8", **over), [pool], spark=spark, partitions=8)
    runs["again"] = run_balance(cfg(tmp_path / "again", **over), [pool], spark=spark, partitions=8)
    faults = tmp_path / "faults"
    faults.mkdir()
    # the fault is injected from here: each group's first balance_group call (in its Spark task) raises
    from metaclip_spark.spark import stage2
    from tests.faults import failing_once
    monkeypatch.setattr(stage2, "balance_group", failing_once(stage2.balance_group, str(faults),
                                                             lambda g, *rest: "balance-group-%d" % g))
    runs["retried"] = run_balance(cfg(tmp_path / "retried", **over), [pool], spark=spark)
    monkeypatch.undo()
    assert len(os.listdir(faults)) == runs["retried"]["groups"] > 1   # every group's task failed once
    ref = digests(tmp_path / "p1" / "curated")
    assert len(ref) > 1
    for name in ("p8", "again", "retried"):
        assert digests(tmp_path / name / "curated") == ref, name
        assert runs[name]["curated_rows"] == runs["p1"]["curated_rows"]
    other = run_balance(cfg(tmp_path / "seed8", **{**over, "balance.seed": 8}), [pool], spark=spark)
    assert digests(tmp_path / "seed8" / "curated") != ref
    assert other["expected_size"] == pytest.approx(runs["p1"]["expected_size"])


def test_two_pools_sum_counts_and_balance_together(spark, small_pools, tmp_path):
    (a, ia), (b, ib) = small_pools
    over = {"balance.t": 300, "balance.dedup": "none"}      # per-occurrence counts of the pools, summed
    both = run_balance(cfg(tmp_path / "ab", **over), [a, b], spark=spark)
    only_a = run_balance(cfg(tmp_path / "a", **over), [a], spark=spark)
    total = ia["counts"] + ib["counts"]
    bc = pq.read_table(tmp_path / "ab" / "balance_counts" / "balance_counts.parquet")
    assert bc.column("count").to_numpy().tolist() == total.tolist()
    assert both["pool_rows"] == 100_000 and only_a["pool_rows"] == 60_000
    assert both["head_entries"] == int((total > 300).sum()) > only_a["head_entries"]
    # Together, head entries are rarer per pair (p = t / summed count), so pool A's pairs are
    # kept less often than when A is balanced alone; the draws themselves are the same.
    cur = outputs.read_tables(outputs.list_files(str(tmp_path / "ab" / "curated"), ".parquet"))
    a_urls_together = set(u for u in cur.column("url").to_pylist() if int(u.rsplit("/", 1)[1][:-4]) < 10**7)
    alone = set(outputs.read_tables(outputs.list_files(str(tmp_path / "a" / "curated"), ".parquet"))
                .column("url").to_pylist())
    assert a_urls_together < alone


def test_solving_t_from_tail_share_and_target_size(spark, small_pools, tmp_path):
    (pool, info), _ = small_pools
    by_share = run_balance(cfg(tmp_path / "s", **{"balance.tail_share": 0.2}), [pool], spark=spark)
    assert by_share["t_source"] == "tail_share"
    assert by_share["tail_share"] >= 0.2
    by_size = run_balance(cfg(tmp_path / "z", **{"balance.target_size": 20_000}), [pool], spark=spark)
    assert by_size["t_source"] == "target_size"
    assert by_size["expected_size"] == pytest.approx(20_000, rel=1e-6)


def test_unfinished_or_mismatched_pools_are_refused(spark, small_pools, tmp_path):
    from metaclip_spark.run.config import ConfigError

    with pytest.raises(ConfigError, match="not a finished stage-1 output"):
        run_balance(cfg(tmp_path / "x"), [str(tmp_path)], spark=spark)
    (a, _), _ = small_pools
    other = tmp_path / "other"
    write_pool(str(other), rows=100, files=1, seed=1)
    digest = json.loads((other / "stats" / "match.json").read_text())["pool_digest"]
    outputs.write_table(str(other / "entry_counts" / "entry_counts.parquet"), pa.table({
        "entry_id": pa.array([0], pa.int32()), "entry": ["zzz"], "count": pa.array([1], pa.int64()), "lang": ["en"]},
        schema=ENTRY_COUNTS_SCHEMA.with_metadata({"pool_digest": digest})))
    with pytest.raises(ConfigError, match="matched against other metadata"):
        run_balance(cfg(tmp_path / "y"), [a, str(other)], spark=spark)
