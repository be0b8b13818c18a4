"""The index merge (spark/index_job.py) on a real local Spark session: counts equal a pyarrow
recount, merging A then B equals merging A and B at once, a pool merged twice makes no new
release, a killed merge resumes to the same bytes, partitioning and chunking change nothing."""

import hashlib
import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from metaclip_spark.index import ids, layout
from metaclip_spark.index.merge import add_ids
from metaclip_spark.index.schema import INDEX_MARKER
from metaclip_spark.run import outputs, runfolder
from metaclip_spark.run.config import ConfigError, load_config
from metaclip_spark.run.schema import ENTRY_COUNTS_SCHEMA
from metaclip_spark.spark.index_job import run_index
from metaclip_spark.steps.draws import key_hashes

N_ENTRIES = 50


def write_pool(folder, seed: int, rows: int = 3000, files: int = 3, images: int = 400, crawl="CC-MAIN-2024-10",
               entries=None) -> None:
    """A finished stage-1 folder whose rows repeat images and texts (no image_id/text_hash/crawl
    columns: the merge computes them, crawl from the source name)."""
    rng = np.random.default_rng(seed)
    manifest = []
    for f in range(files):
        img = rng.integers(0, images, rows)
        txt = rng.integers(0, 6, rows)
        urls = ["http://img.example/%d.jpg" % i for i in img]
        texts = ["caption %d of %d" % (t, i) for t, i in zip(txt, img)]
        lens = (txt % 3) + 1
        vals = ((img[:, None] * 7 + txt[:, None] * 3 + np.arange(3)[None, :]) % N_ENTRIES).astype(np.int32)
        ids_ = pa.array([sorted(set(v[:n].tolist())) for v, n in zip(vals, lens)], pa.list_(pa.int32()))
        table = pa.table({
            "url": urls, "text": texts, "entry_ids": ids_,
            "page_url": ["http://page.example/%d/%d" % (seed, k) for k in range(rows)],
            "lid_score": pa.array(np.full(rows, 0.9, np.float32)),
            "source": ["s3://commoncrawl/crawl-data/%s/seg/warc-%d-%d.warc.gz" % (
                crawl[f % len(crawl)] if isinstance(crawl, list) else crawl, seed, f)] * rows,
            "record_id": ["<urn:uuid:%d-%d-%d>" % (seed, f, k) for k in range(rows)],
            "record_offset": pa.array(np.arange(rows, dtype=np.int64) * 100),
            "key_hash": pa.array(key_hashes(urls, texts))})
        name = "pool/part-%d-%05d.parquet" % (seed, f)   # pool digests name files and rows only
        outputs.write_table(os.path.join(folder, name), table)
        manifest.append({"source": "f%d" % f, "output": name, "rows": rows, "failed": None})
    digest = runfolder.pool_digest([(m["output"], m["rows"]) for m in manifest])
    outputs.write_table(os.path.join(folder, "entry_counts", "entry_counts.parquet"), pa.table({
        "entry_id": pa.array(np.arange(N_ENTRIES, dtype=np.int32)),
        "entry": entries or ["entry%d" % i for i in range(N_ENTRIES)], "count": pa.array(np.zeros(N_ENTRIES, np.int64)),
        "lang": ["en"] * N_ENTRIES},
        schema=ENTRY_COUNTS_SCHEMA.with_metadata({"pool_digest": digest})))
    outputs.write_text(os.path.join(folder, "stats", "match-files.json"), json.dumps(manifest))
    outputs.write_text(os.path.join(folder, "stats", "match.json"), json.dumps({"pool_digest": digest}))
    outputs.write_text(os.path.join(folder, "_SUCCESS"), "")


def cfg(index, **over):
    return load_config(overrides={"index.path": str(index), "index.buckets": 8, **over})


def pool_rows(*pools) -> pa.Table:
    tables = []
    for p in pools:
        for uri in sorted(outputs.list_files(os.path.join(p, "pool"), ".parquet")):
            tables.append(add_ids(pq.read_table(uri), os.path.basename(p)).select(
                ["image_id", "text_hash", "text", "entry_ids", "crawl"]))
    return pa.concat_tables(tables)


def release_rows(index, release=None) -> pa.Table:
    release = release or layout.current(str(index))
    folder = os.path.join(layout.release_dir(str(index), release), "images")
    return pa.concat_tables([pq.read_table(os.path.join(folder, n)) for n in sorted(os.listdir(folder))])


def bucket_digests(index, release=None) -> dict:
    release = release or layout.current(str(index))
    folder = os.path.join(layout.release_dir(str(index), release), "images")
    return {n: hashlib.sha256(open(os.path.join(folder, n), "rb").read()).hexdigest() for n in sorted(os.listdir(folder))}


def counts(index, release=None) -> pa.Table:
    release = release or layout.current(str(index))
    return pq.read_table(os.path.join(layout.release_dir(str(index), release), "entry_counts", "entry_counts.parquet"))


@pytest.fixture(scope="module")
def pools(tmp_path_factory):
    root = tmp_path_factory.mktemp("index-pools")
    a, b = str(root / "poolA"), str(root / "poolB")
    write_pool(a, seed=1, crawl="CC-MAIN-2024-10")
    write_pool(b, seed=2, crawl="CC-MAIN-2024-18")        # shares images and texts with A
    return a, b


def recount(rows: pa.Table) -> dict:
    """Occurrences, distinct pairs and images, and section-9/section-5 entry counts, in pyarrow."""
    pairs = {}
    for i, h, e in zip(*(rows.column(c).to_pylist() for c in ("image_id", "text_hash", "entry_ids"))):
        pairs[(i, h)] = e
    count = np.bincount([x for e in pairs.values() for x in e], minlength=N_ENTRIES)
    occ = np.bincount(pc.list_flatten(rows.column("entry_ids")).to_numpy(), minlength=N_ENTRIES)
    return {"occurrences": rows.num_rows, "pairs": len(pairs),
            "images": pc.count_distinct(rows.column("image_id")).as_py(), "count": count, "occ": occ}


def content(index, release=None):
    return release_rows(index, release).sort_by([("image_id", "ascending"), ("text_hash", "ascending")])


def test_counts_equal_a_pyarrow_recount_and_merges_add_up(spark, pools, tmp_path):
    a, b = pools
    s1 = run_index(cfg(tmp_path / "ab"), [a], spark=spark)
    want = recount(pool_rows(a))
    assert s1["release"] == 1 and s1["previous"] is None
    assert {k: s1["totals"][k] for k in ("occurrences", "pairs", "images")} == \
        {k: want[k] for k in ("occurrences", "pairs", "images")}
    assert s1["merge"]["new_pairs"] == want["pairs"] and s1["merge"]["new_images"] == want["images"]
    assert s1["per_crawl"] == {"CC-MAIN-2024-10": {"occurrences": want["occurrences"], "pairs": want["pairs"],
                                                   "images": want["images"], "new_images": want["images"]}}
    s2 = run_index(cfg(tmp_path / "ab"), [b], spark=spark)
    both, wb = recount(pool_rows(a, b)), recount(pool_rows(b))
    assert s2["release"] == 2 and s2["previous"] == 1 and layout.current(str(tmp_path / "ab")) == 2
    assert {k: s2["totals"][k] for k in ("occurrences", "pairs", "images")} == \
        {k: both[k] for k in ("occurrences", "pairs", "images")}
    assert s2["merge"]["new_pairs"] == both["pairs"] - want["pairs"]
    assert s2["merge"]["new_images"] == both["images"] - want["images"]
    assert s2["per_crawl"]["CC-MAIN-2024-18"]["occurrences"] == wb["occurrences"]
    assert [p["digest"] for p in s2["pools"]] == [json.load(open(os.path.join(p, "stats", "match.json")))["pool_digest"]
                                                  for p in (a, b)]
    assert [h["release"] for h in s2["history"]] == [1, 2]
    c = counts(tmp_path / "ab")
    assert c.column("count").to_numpy().tolist() == both["count"].tolist()      # each distinct text once
    assert c.column("occurrences").to_numpy().tolist() == both["occ"].tolist()  # section 5
    top = s2["top_repeated"]
    assert len(top) == 20 and top[0]["occurrences"] >= top[-1]["occurrences"]
    # A then B == A and B at once: same rows, same counts
    s_once = run_index(cfg(tmp_path / "once"), [a, b], spark=spark)
    assert s_once["release"] == 1 and s_once["totals"] == s2["totals"]
    assert content(tmp_path / "once").equals(content(tmp_path / "ab"))
    assert counts(tmp_path / "once").equals(c)
    # merging A (or B) again: nothing new, no new release, CURRENT unchanged
    again = run_index(cfg(tmp_path / "ab"), [a], spark=spark)
    assert again["message"] == "already in the index" and again["release"] == 2
    assert layout.current(str(tmp_path / "ab")) == 2
    assert sorted(os.listdir(tmp_path / "ab" / "releases")) == ["00001", "00002"]


def test_killed_merge_resumes_to_identical_bytes(spark, pools, tmp_path):
    a, b = pools
    ref = run_index(cfg(tmp_path / "ref", **{"index.chunk_size": 3}), [a, b], spark=spark, partitions=2)

    def stop(i):
        if i == 0:
            raise KeyboardInterrupt("killed after the first chunk")

    with pytest.raises(KeyboardInterrupt):
        run_index(cfg(tmp_path / "killed", **{"index.chunk_size": 3}), [a, b], spark=spark, partitions=2,
                  after_chunk=stop)
    killed = tmp_path / "killed"
    assert layout.current(str(killed)) is None and not layout.finished(str(killed), 1)
    assert len(os.listdir(killed / "releases" / "00001" / "images")) == 3
    resumed = run_index(cfg(killed, **{"index.chunk_size": 3}), [a, b], spark=spark, partitions=3)
    assert resumed["chunks_reused"] == 1 and resumed["chunks"] == 3
    assert bucket_digests(killed) == bucket_digests(tmp_path / "ref")
    assert counts(killed).equals(counts(tmp_path / "ref")) and resumed["totals"] == ref["totals"]


def test_unfinished_release_of_other_pools_is_started_again(spark, pools, tmp_path):
    a, b = pools

    def stop(i):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_index(cfg(tmp_path / "i", **{"index.chunk_size": 4}), [a], spark=spark, after_chunk=stop)
    done = run_index(cfg(tmp_path / "i", **{"index.chunk_size": 4}), [a, b], spark=spark)
    assert done["release"] == 1 and done["chunks_reused"] == 0
    run_index(cfg(tmp_path / "ref"), [a, b], spark=spark)
    assert bucket_digests(tmp_path / "i") == bucket_digests(tmp_path / "ref")


def test_partitions_and_bucket_counts_change_nothing(spark, pools, tmp_path):
    a, b = pools
    run_index(cfg(tmp_path / "p1"), [a, b], spark=spark, partitions=1)
    run_index(cfg(tmp_path / "p5", **{"index.chunk_size": 5}), [a, b], spark=spark, partitions=5)
    assert bucket_digests(tmp_path / "p1") == bucket_digests(tmp_path / "p5")
    run_index(cfg(tmp_path / "b3", **{"index.buckets": 3}), [a, b], spark=spark)
    assert len(os.listdir(tmp_path / "b3" / "releases" / "00001" / "images")) == 3
    assert content(tmp_path / "b3").equals(content(tmp_path / "p1"))
    assert counts(tmp_path / "b3").equals(counts(tmp_path / "p1"))
    for name in os.listdir(tmp_path / "b3" / "releases" / "00001" / "images"):
        t = pq.read_table(tmp_path / "b3" / "releases" / "00001" / "images" / name)
        assert set(ids.buckets(t.column("image_id"), 3).tolist()) <= {int(name[7:12])}


def test_refusals(spark, pools, tmp_path):
    a, _ = pools
    other = str(tmp_path / "other")
    write_pool(other, seed=9, entries=["other%d" % i for i in range(N_ENTRIES)])
    run_index(cfg(tmp_path / "i"), [a], spark=spark)
    marker = json.load(open(tmp_path / "i" / INDEX_MARKER))
    assert marker["buckets"] == 8 and marker["max_texts_per_image"] == 64
    with pytest.raises(ConfigError, match="other metadata"):
        run_index(cfg(tmp_path / "i"), [other], spark=spark)
    with pytest.raises(ConfigError, match="other metadata"):
        run_index(cfg(tmp_path / "j"), [a, other], spark=spark)
    (tmp_path / "k").mkdir()
    (tmp_path / "k" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not an image index"):
        run_index(cfg(tmp_path / "k"), [a], spark=spark)
    with pytest.raises(ConfigError, match="index folder is required"):
        run_index(load_config(overrides={}), [a], spark=spark)


def test_per_crawl_of_a_pool_with_several_crawls(spark, pools, tmp_path):
    a, _ = pools
    c = str(tmp_path / "poolC")
    write_pool(c, seed=3, crawl=["CC-MAIN-2024-10", "CC-MAIN-2024-22"])     # files of two crawls
    s1 = run_index(cfg(tmp_path / "ix"), [a], spark=spark)
    s2 = run_index(cfg(tmp_path / "ix"), [c], spark=spark)
    rows = pool_rows(c)
    want = {}
    for crawl in ("CC-MAIN-2024-10", "CC-MAIN-2024-22"):
        r = recount(rows.filter(pc.equal(rows.column("crawl"), crawl)))
        want[crawl] = {"occurrences": r["occurrences"], "pairs": r["pairs"], "images": r["images"]}
    old_images = set(pool_rows(a).column("image_id").to_pylist())
    new_images = set(rows.column("image_id").to_pylist()) - old_images
    got = {k: {x: v[x] for x in ("occurrences", "pairs", "images")} for k, v in s2["per_crawl"].items()}
    assert got == want
    assert sum(v["new_images"] for v in s2["per_crawl"].values()) == len(new_images) == s2["merge"]["new_images"]
    assert [p["crawls"] for p in s2["pools"]] == [["CC-MAIN-2024-10"], ["CC-MAIN-2024-10", "CC-MAIN-2024-22"]]
    whole = recount(rows)
    assert (s2["merge"]["occurrences"], s2["merge"]["pairs"], s2["merge"]["images"]) == (
        whole["occurrences"], whole["pairs"], whole["images"])
    assert s1["history"] == s2["history"][:1] and s2["history"][1]["crawls"] == sorted(want)
