"""`metaclip-spark index`: merge finished stage-1 pools into an image index (docs/index.md).

The driver checks the pools (run/pools.load_pools, per pool) and the index (same metadata entries,
pools already merged are skipped), then the runner computes the new release's buckets in
chunks: one ``mapInArrow`` task per pool file reads it with pyarrow and groups its rows by
(image_id, text_hash, crawl) (``index.merge.aggregate_file``; no JVM read or aggregation of the
pools), these rows are shuffled into their buckets with one marker row per bucket of the chunk
(so every bucket is written), and one ``mapInArrow`` task per group of buckets merges each
bucket with the previous release's file (``index.merge.merge_bucket``: the new rows of a pair
combine there), writes it under its fixed name and returns its counts (per crawl too: every row
of an image is in its bucket, so per-bucket distinct counts add up). CURRENT is moved last.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from metaclip_spark.index import layout
from metaclip_spark.index.merge import crawl_labels, top_repeated
from metaclip_spark.index.tasks import STAT_KEYS, bucket_task, file_task
from metaclip_spark.index.schema import BUCKET_RE, INDEX_COUNTS_SCHEMA, INDEX_SCHEMA
from metaclip_spark.run import outputs
from metaclip_spark.run import runfolder
from metaclip_spark.run import runner
from metaclip_spark.run.config import Config, ConfigError
from metaclip_spark.run.totals import RunTotals
from metaclip_spark.run.pools import count_columns, load_pools, read_counts
from metaclip_spark.inputs.labels import run_name

log = logging.getLogger("metaclip_spark")

BLOB_DDL = "bucket int, blob binary"
FILE_DDL = "uri string, label string"
RESULT_DDL = ("bucket int, output string, " + ", ".join("%s bigint" % k for k in STAT_KEYS) +
              ", pair_ids array<int>, pair_counts array<bigint>, occ_ids array<int>, occ_counts array<bigint>, "
              "extra string")


def run_index(cfg: Config, pools: list[str], spark=None, partitions: int | None = None, after_chunk=None,
              chunk_size: int | None = None) -> dict:
    """`metaclip-spark index --pool P ... --index DIR`: a new release of the index DIR."""
    if not cfg.index.path:
        raise ConfigError("an index folder is required (--index DIR)")
    index = runfolder.absolute(cfg.index.path)
    runfolder.check_location(index, input_specs=list(pools))
    return build_index(cfg, pools, index, spark, partitions, after_chunk, chunk_size)


def pool_digests(pools: list[str]) -> list[str]:
    """The ``pool_digest`` stage 1 wrote for each finished pool (what the index knows a pool by)."""
    return [json.loads(outputs.read_text(outputs.join(runfolder.absolute(p), "stats", "match.json")))["pool_digest"]
            for p in pools]


def _load(pools: list[str]):
    """Entries, their LanguageSpace and, per distinct pool (by digest), its folder, files, rows and digest."""
    entries, space, out, seen = None, None, [], set()
    for pool in (runfolder.absolute(p) for p in pools):
        got = load_pools([pool])
        files = got.files
        if entries is None:
            entries, space = got.entries, got.space
        elif got.space != space or not got.entries.equals(entries):
            raise ConfigError("%s was matched against other metadata than %s: they cannot share an index"
                              % (pool, pools[0]))
        digest = json.loads(outputs.read_text(outputs.join(pool, "stats", "match.json")))["pool_digest"]
        if digest not in seen:
            seen.add(digest)
            out.append({"pool": pool, "files": files, "rows": sum(n for _, n in files), "digest": digest})
    return entries, space, out


def build_index(cfg: Config, pools: list[str], index: str, spark=None, partitions: int | None = None,
                after_chunk=None, chunk_size: int | None = None) -> dict:
    """Merge ``pools`` into the index folder ``index`` (created on first use): returns the
    summary (the release's stats/index.json), or the current one's when every pool is in it."""
    start = time.monotonic()
    index = runfolder.absolute(index)
    entries, space, loaded = _load(pools)
    sha = layout.metadata_sha256(entries, space)
    chunk_size = chunk_size or cfg.index.chunk_size
    if chunk_size <= 0:
        raise ConfigError("index.chunk_size must be > 0, got %r" % chunk_size)
    outputs.makedirs(index)
    with runfolder.RunLock(index, "index"):
        marker = layout.open_index(index, cfg.index.buckets, cfg.index.max_texts_per_image, sha, len(entries))
        prev = layout.adopt_finished(index)
        prev_stats = layout.release_stats(index, prev) or {}
        done = {p["digest"] for p in prev_stats.get("pools", [])}
        todo = [p for p in loaded if p["digest"] not in done]
        if not todo:
            msg = "%s: already in the index %s (release %s); no new release" % (
                ", ".join(p["pool"] for p in loaded), index, prev)
            log.info(msg)
            print(msg)
            return {**prev_stats, "added": 0, "message": "already in the index"}
        release = (prev or 0) + 1
        job = _Merge(cfg, index, marker, entries, todo, prev, prev_stats, release, spark, partitions, start)
        job.space = space
        summary = job.run(chunk_size, after_chunk)
        layout.write_current(index, release)
        return summary


class _Merge:
    def __init__(self, cfg, index, marker, entries, pools, prev, prev_stats, release, spark, partitions, start):
        self.cfg, self.index, self.entries, self.pools = cfg, index, entries, pools
        self.buckets, self.k = int(marker["buckets"]), int(marker["max_texts_per_image"])
        self.sha = marker["entries_sha256"]
        self.prev, self.prev_stats, self.release = prev, prev_stats, release
        self.out = layout.release_dir(index, release)
        self._spark, self.partitions, self.start = spark, partitions, start
        self._frames: dict = {}
        self.chunks = 2
        self.space = None                       # the pools' LanguageSpace (build_index sets it)

    # --- Spark ---------------------------------------------------------------------------
    @property
    def spark(self):
        if self._spark is None:
            from metaclip_spark.spark.session import get_spark
            self._spark = get_spark(self.cfg.spark)
        return self._spark

    def files_frame(self):
        """One row per pool file (uri, label), one file per partition."""
        files = [(uri, run_name(p["pool"])) for p in self.pools for uri, _ in p["files"]]
        if not files:
            return self.spark.createDataFrame([], FILE_DDL)
        return self.spark.sparkContext.parallelize(files, len(files)).toDF(FILE_DDL)

    def new_rows(self):
        """The new rows grouped per pool file by (image_id, text_hash, crawl), with their bucket
        (persisted when several chunks use them): one Python task per file, no JVM read of the
        pools."""
        if "new" not in self._frames:
            from pyspark import StorageLevel
            df = self.files_frame().mapInArrow(file_task(self.buckets), BLOB_DDL)
            self._frames["new"] = df.persist(StorageLevel.MEMORY_AND_DISK) if self.chunks > 1 else df
        return self._frames["new"]

    def chunk_frame(self, part: list[int]):
        from pyspark.sql import functions as F
        markers = self.spark.createDataFrame([(int(b),) for b in part], "bucket int").select(
            "bucket", F.lit(None).cast("binary").alias("blob"))
        rows = self.new_rows().where(F.col("bucket").isin([int(b) for b in part])).unionByName(markers)
        n = self.partitions or max(1, min(len(part), 2 * self.spark.sparkContext.defaultParallelism))
        task = bucket_task(self.index, self.prev, self.release, self.k, self.cfg.index.top_repeated, self.space)
        return rows.repartition(n, "bucket").sortWithinPartitions("bucket").mapInArrow(task, RESULT_DDL)

    # --- the runner's stage ----------------------------------------------------------------
    def plan(self, chunk_size: int) -> dict:
        files = sorted((runfolder.relative(p["pool"], uri), n) for p in self.pools for uri, n in p["files"])
        return {"stage": "index", "release": self.release, "previous": self.prev, "buckets": self.buckets,
                "max_texts_per_image": self.k, "entries_sha256": self.sha, "chunk_size": chunk_size,
                "pools": sorted(p["digest"] for p in self.pools), "top_repeated": self.cfg.index.top_repeated,
                "pool_files_sha256": hashlib.sha256(json.dumps(files).encode("utf-8")).hexdigest()}

    def reset(self) -> None:
        runfolder.remove_owned(outputs.join(self.out, "images"), patterns=(BUCKET_RE,))
        runfolder.remove_owned(outputs.join(self.out, "entry_counts"), names=("entry_counts.parquet",))
        for name in ("stats/index.json", "stats/index-files.json", runner.config_name("index"), "_SUCCESS"):
            runfolder.remove_file(outputs.join(self.out, name))

    def run(self, chunk_size: int, after_chunk) -> dict:
        self.chunks = -(-self.buckets // chunk_size)             # one chunk: the new rows are read once
        plan = self.plan(chunk_size)
        uri = outputs.join(self.out, "chunks", "index", "plan.json")
        other = outputs.exists(uri) and json.loads(outputs.read_text(uri)) != plan
        if other:
            log.warning("index: release %d was left unfinished by a merge of other pools; starting it again",
                        self.release)
        n = len(self.entries)
        try:
            return runner.run(runner.Stage(
                name="index", output=self.out, plan=plan, items=list(range(self.buckets)), chunk_size=chunk_size,
                run_chunk=self.run_chunk, finish=self.finish, config_json=self.cfg.to_json(), n_entries=2 * n,
                overwrite=other, reset=self.reset, clean_chunk=self.clean_chunk,
                temp_dirs=("images", "entry_counts", "stats"), after_chunk=after_chunk))
        finally:
            if "new" in self._frames:
                self._frames["new"].unpersist()

    def clean_chunk(self, i: int, part: list[int]) -> None:
        from metaclip_spark.index.schema import bucket_name
        runfolder.remove_owned(outputs.join(self.out, "images"), names=tuple(bucket_name(b) for b in part))

    def run_chunk(self, i: int, part: list[int]) -> RunTotals:
        from pyspark import StorageLevel
        from pyspark.sql import functions as F
        n = len(self.entries)
        df = self.chunk_frame(part).persist(StorageLevel.MEMORY_AND_DISK)
        try:
            results = sorted(df.drop("pair_ids", "pair_counts", "occ_ids", "occ_counts").collect(),
                             key=lambda r: r["bucket"])
            got = RunTotals(2 * n)
            for ids_col, counts_col, offset in (("pair_ids", "pair_counts", 0), ("occ_ids", "occ_counts", n)):
                sums = (df.select(F.explode(F.arrays_zip(ids_col, counts_col)).alias("z"))
                        .groupBy(F.col("z.%s" % ids_col).alias("e")).agg(F.sum("z.%s" % counts_col).alias("c"))
                        .collect())
                got.add_counts([r["e"] + offset for r in sums], [r["c"] for r in sums])
        finally:
            df.unpersist()
        if [r["bucket"] for r in results] != list(part):
            raise runfolder.OutputMissing("index chunk %d: buckets %s came back for %s" % (
                i, [r["bucket"] for r in results][:10], list(part)[:10]))
        for r in results:
            got.files.append({"source": "bucket-%05d" % r["bucket"], "output": r["output"], "rows": r["rows"],
                              "failed": None, **{k: r[k] for k in STAT_KEYS if k != "rows"},
                              **json.loads(r["extra"])})
        return got

    def pool_crawls(self) -> dict:
        """{pool number: sorted distinct crawls of its rows} (one column of each file)."""
        out = {}
        for k, p in enumerate(self.pools):
            found = set()
            for uri, _ in p["files"]:
                fs, path = outputs.resolve(uri)
                names = pq.read_schema(path, filesystem=fs).names
                col = "crawl" if "crawl" in names else "source"
                column = pq.read_table(path, columns=[col], filesystem=fs, read_dictionary=[col]).column(col)
                if not column.num_chunks:
                    continue
                values = pc.unique(pa.concat_arrays([c.dictionary.cast(pa.string()) for c in column.chunks]))
                if col == "source":
                    values = crawl_labels(pc.fill_null(values, ""), run_name(p["pool"]))
                found.update(v for v in values.to_pylist() if v is not None)
            out[k] = sorted(found)
        return out

    def per_crawl(self, files: list[dict]) -> dict:
        """{crawl: {occurrences, pairs, images}} of the new rows (the buckets' exact counts)."""
        crawl: dict = {}
        for f in files:
            for c, v in f.pop("per_crawl", {}).items():
                o = crawl.setdefault(c, {"occurrences": 0, "pairs": 0, "images": 0})
                for key, x in zip(("occurrences", "pairs", "images"), v):
                    o[key] += int(x)
        return dict(sorted(crawl.items(), key=lambda kv: str(kv[0])))

    def finish(self, totals: RunTotals, chunk_info: dict) -> dict:
        n = len(self.entries)
        dense = totals.dense_counts()
        count, occ = dense[:n].copy(), dense[n:].copy()
        if self.prev is not None:
            old = pq.read_table(outputs.resolve(outputs.join(layout.release_dir(self.index, self.prev), "entry_counts",
                                                             "entry_counts.parquet"))[1])
            old_count, old_occ = read_counts(old, ("count", "occurrences")).vector
            count += old_count
            occ += old_occ
        keys = count_columns(self.space)
        outputs.write_table(outputs.join(self.out, "entry_counts", "entry_counts.parquet"), pa.table({
            "entry_id": keys["entry_id"], "entry": pa.array(self.entries, pa.string()),
            "count": pa.array(count), "lang": keys["lang"], "occurrences": pa.array(occ)}, schema=INDEX_COUNTS_SCHEMA))
        files = totals.files
        tot = {k: int(sum(f[k] for f in files)) for k in ("occurrences", "images", "texts_stored")}
        tot["pairs"] = int(sum(f["rows"] for f in files))
        per_crawl, pool_crawls = self.per_crawl(files), self.pool_crawls()
        for f in files:
            for c, v in f["new_images_per_crawl"].items():
                per_crawl.setdefault(c, {"occurrences": 0, "pairs": 0, "images": 0}).setdefault("new_images", 0)
                per_crawl[c]["new_images"] = per_crawl[c].get("new_images", 0) + v
        for v in per_crawl.values():
            v.setdefault("new_images", 0)
        merge = {"pools": len(self.pools), "occurrences": int(sum(f["input_occurrences"] for f in files)),
                 "pairs": int(sum(f["input_pairs"] for f in files)), "images": int(sum(f["input_images"] for f in files)),
                 "new_pairs": int(sum(f["new_pairs"] for f in files)),
                 "new_images": int(sum(f["new_images"] for f in files))}
        merge["duplicate_factor"] = merge["occurrences"] / merge["images"] if merge["images"] else 0.0
        crawls = sorted(per_crawl)
        pools = list(self.prev_stats.get("pools", [])) + [
            {"pool": p["pool"], "digest": p["digest"], "rows": p["rows"], "crawls": pool_crawls.get(k, []),
             "release": self.release} for k, p in enumerate(self.pools)]
        history = list(self.prev_stats.get("history", [])) + [
            {"release": self.release, **{k: merge[k] for k in ("occurrences", "pairs", "images", "new_pairs",
                                                                "new_images")}, "crawls": crawls}]
        summary = {"stage": "index", "release": self.release, "previous": self.prev, "buckets": self.buckets,
                   "max_texts_per_image": self.k, "entries_sha256": self.sha, "pools": pools,
                   "totals": {"occurrences": tot["occurrences"], "pairs": tot["pairs"], "images": tot["images"],
                              "texts_stored": tot["texts_stored"],
                              "texts_hash_only": tot["pairs"] - tot["texts_stored"]},
                   "merge": merge, "per_crawl": per_crawl, "history": history,
                   "top_repeated": top_repeated([f["top"] for f in files], self.cfg.index.top_repeated),
                   "entries": n, "entries_zero_count": int((count == 0).sum()), "added": len(self.pools),
                   "wall_seconds": round(time.monotonic() - self.start, 3)}
        summary.update({k: chunk_info[k] for k in ("chunks", "chunks_reused") if k in chunk_info})
        return summary
