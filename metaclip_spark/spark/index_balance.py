"""`metaclip-spark balance --index INDEX [--release N] --dedup image|pair [--previous CURATED]`:
balancing over an image index release (docs/index.md "Balancing over the index").

The driver reads the release's entry counts (``count``: distinct (image, text), docs/semantics.md
section 9), chooses t as stage 2 does, and plans groups of consecutive bucket files (about
``balance.rows_per_file`` index rows each). Each group is one row of a DataFrame processed by
``mapInArrow`` (no Exchange): the task selects per bucket (index/select.py) and writes
``curated/part-<group>.parquet``. Groups go through the one runner (run/runner.py) in chunks, so a
killed balance rerun resumes to the same bytes. With ``balance.previous`` the JVM computes the diff
against the previous curated set (anti-joins on image_id): ``diff/added/``, ``diff/removed/``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from metaclip_spark.index import layout, select
from metaclip_spark.run import outputs, runfolder, runner
from metaclip_spark.run.config import Config, ConfigError
from metaclip_spark.run.totals import RunTotals
from metaclip_spark.index.merge import global_ids
from metaclip_spark.run.pools import count_columns, read_counts
from metaclip_spark.steps.balance import PoolSizeModel, choose_ts, probabilities, t_vector
from metaclip_spark.steps.curated import balance_stats, dropped_summary, plan_groups

SIZE_MODEL_ROWS = 2_000_000   # index rows read on the driver to model E(t) (all of a smaller release)
GROUP_CHUNK_SIZE = 100        # groups per committed chunk (as stage 2)
SPARK_PART_RE = re.compile(r"^part-(\d{5})-.*\.parquet$")       # Spark's writer names, renamed part-<n>.parquet
DIFF_OWNED = (runfolder.CURATED_PART_RE, SPARK_PART_RE, re.compile(r"^\..*\.crc$"))

RESULT_SCHEMA = pa.schema([
    ("group", pa.int32()), ("output", pa.string()), ("rows_in", pa.int64()), ("candidates", pa.int64()),
    ("rows_out", pa.int64()), ("images", pa.int64()), ("expected", pa.float64()),
    ("entry_ids", pa.list_(pa.int32())), ("counts", pa.list_(pa.int64())), ("file_rows", pa.list_(pa.int64())),
    ("url_unencodable", pa.int64()),
    ("lang_rows", pa.list_(pa.int64())), ("lang_kept", pa.list_(pa.int64())), ("lang_expected", pa.list_(pa.float64())),
])
RESULT_DDL = ("`group` int, output string, rows_in bigint, candidates bigint, rows_out bigint, images bigint, "
              "expected double, entry_ids array<int>, counts array<bigint>, file_rows array<bigint>, "
              "url_unencodable bigint, lang_rows array<bigint>, lang_kept array<bigint>, lang_expected array<double>")
CURATED_DDL = ("url string, text string, entry_ids array<int>, image_id string, page_url string, lid_score float, "
               "crawl string, source string, record_offset bigint, occurrences bigint, key_hash bigint, "
               "text_hash bigint, text_field string, lang string")


# ------------------------------------------------------------------------------ the release

def load_release(folder: str):
    """Entries, counts (section 9), occurrence counts (section 5), the (bucket file, rows) list and
    the LanguageSpace (all over global ids; run/pools.read_counts)."""
    counts_file = outputs.join(folder, "entry_counts", "entry_counts.parquet")
    table = outputs.read_tables([counts_file]) if outputs.exists(counts_file) else None
    if table is None or not {"entry", "count", "occurrences"} <= set(table.column_names):
        raise ConfigError("%s has no entry counts (entry_counts/entry_counts.parquet)" % folder)
    got = read_counts(table, ("count", "occurrences"))
    names = layout.bucket_files(folder)

    def rows(uri):
        fs, path = outputs.resolve(uri)
        return uri, pq.read_metadata(path, filesystem=fs).num_rows

    with ThreadPoolExecutor(16) as pool:
        files = list(pool.map(rows, names))
    count, occurrences = got.vector
    return got.entries, count, occurrences, files, got.space


def size_models(files, counts, occurrences, dedup: str, seed: int, space=None):
    """E(t) over the candidates (counts) and over the occurrences (occurrence counts: the size without
    de-duplication), from the first SIZE_MODEL_ROWS index rows (buckets are uniform hash samples),
    scaled to the release."""
    total = sum(n for _, n in files)
    lists, occ_lists, occ_weights, read = [], [], [], 0
    for uri, n in files:
        if read >= SIZE_MODEL_ROWS:
            break
        table = select.read_bucket(uri, ["image_id", "text_hash", "text", "entry_ids", "occurrences", "lang"])
        lists.append(select.candidate_lists(table, dedup, seed, space))
        occ_lists.append(global_ids(table, space))
        occ_weights.append(table.column("occurrences").to_numpy())
        read += table.num_rows
    scale = total / read if read else 1.0
    return (PoolSizeModel(lists, counts, scale),
            PoolSizeModel(occ_lists, occurrences, scale, occ_weights))


# ------------------------------------------------------------------------------ the Spark job

def curation_frame(spark, groups, curated: str, dedup: str, probs_bc, seed: int, partitions=None, first: int = 0,
                   space=None):
    """One row per group -> ``mapInArrow`` -> one result row per group (``partitions`` never changes
    the output)."""

    def task(batches):
        p = probs_bc.value
        for batch in batches:
            for g, fl in zip(batch.column("group").to_pylist(), batch.column("files").to_pylist()):
                r = select.curate_files(g, fl, outputs.join(curated, "part-%05d.parquet" % g), dedup, p, seed, space)
                yield pa.RecordBatch.from_pydict({
                    "group": [r.group], "output": [r.output], "rows_in": [r.rows_in], "candidates": [r.candidates],
                    "rows_out": [r.rows_out], "images": [r.images], "expected": [r.expected],
                    "entry_ids": [r.entry_ids.tolist()], "counts": [r.counts.tolist()], "file_rows": [r.file_rows],
                    "url_unencodable": [r.url_unencodable], "lang_rows": [r.lang_rows], "lang_kept": [r.lang_kept],
                    "lang_expected": [r.lang_expected]}, schema=RESULT_SCHEMA)

    rows = list(enumerate(groups, first))
    return (spark.sparkContext.parallelize(rows, min(partitions or len(rows), len(rows)))
            .toDF("`group` int, files array<string>").mapInArrow(task, RESULT_DDL))


def run_balance_index(cfg: Config, index_dir: str, release: int | None = None, spark=None,
                      partitions: int | None = None, chunk_size: int | None = None, after_chunk=None) -> dict:
    """Balance release ``release`` (default: CURRENT) of the index ``index_dir`` into ``cfg.output``."""
    if not cfg.output:
        raise ConfigError("an output folder is required (--output DIR)")
    dedup = cfg.balance.dedup
    if dedup not in select.DEDUP_MODES:
        raise ConfigError("--dedup %s with --index: the index keeps occurrence counts, not occurrences; "
                          "balance the pools with --pool --dedup none" % dedup)
    cfg.output = runfolder.absolute(cfg.output)
    index_dir = runfolder.absolute(index_dir)
    runfolder.check_location(cfg.output, [index_dir])
    if outputs.exists(outputs.join(cfg.output, "curated", "_SUCCESS")) and not cfg.overwrite:
        raise ConfigError("output %s already holds a finished curated set; pass --overwrite to replace it" % cfg.output)
    start = time.monotonic()
    folder, number = layout.open_release(index_dir, release)
    previous = previous_curated(cfg.balance.previous) if cfg.balance.previous else None
    chunk_size = chunk_size or getattr(cfg.balance, "chunk_size", None) or GROUP_CHUNK_SIZE
    if chunk_size <= 0:
        raise ConfigError("balance.chunk_size must be > 0, got %r" % chunk_size)
    entries, counts, occurrences, files, space = load_release(folder)
    models: list = []

    def model(which: int):
        if not models:
            models.extend(size_models(files, counts, occurrences, dedup, cfg.balance.seed, space))
        return models[which]

    try:
        ts, t_source, p = choose_ts(cfg.balance, counts, space, lambda: model(0))
        ts_occ = choose_ts(cfg.balance, occurrences, space, lambda: model(1))[0] \
            if t_source in ("tail_share", "target_size") else ts
    except ValueError as e:
        raise ConfigError("balance: %s" % e) from None
    probs = probabilities(counts, t_vector(ts, space))
    groups = plan_groups(files, cfg.balance.rows_per_file)
    curated = outputs.join(cfg.output, "curated")
    expected_rows = dict(files)
    state: dict = {}

    def session():
        if "spark" not in state:
            from metaclip_spark.spark.session import get_spark
            state["spark"] = spark or get_spark(cfg.spark)
        return state["spark"]

    def run_chunk(i: int, part) -> RunTotals:
        if "bc" not in state:
            state["bc"] = session().sparkContext.broadcast(probs)
        df = curation_frame(session(), part, curated, dedup, state["bc"], cfg.balance.seed, partitions, i * chunk_size,
                            space)
        results = sorted(df.collect(), key=lambda r: r["group"])
        for r in results:
            if list(r["file_rows"]) != [expected_rows[u] for u in groups[r["group"]]]:
                raise runfolder.OutputMissing("a bucket file of group %d changed while it was balanced" % r["group"])
        got = RunTotals(len(entries))
        for r in results:
            got.add_counts(r["entry_ids"], r["counts"])
            got.files.append({"source": "group-%05d" % r["group"], "output": r["output"], "rows": r["rows_out"],
                              "failed": None, "rows_in": r["rows_in"], "candidates": r["candidates"],
                              "images": r["images"], "expected": r["expected"],
                              "url_unencodable": r["url_unencodable"], "lang_rows": list(r["lang_rows"]),
                              "lang_kept": list(r["lang_kept"]), "lang_expected": list(r["lang_expected"])})
        return got

    def clean_chunk(i: int, part) -> None:
        names = tuple("part-%05d.parquet" % g for g in range(i * chunk_size, i * chunk_size + len(part)))
        runfolder.remove_owned(curated, names=names)

    def finish(totals: RunTotals, chunk_info: dict) -> dict:
        if "bc" in state:
            state["bc"].unpersist()
        res = totals.files
        keys = count_columns(space)
        outputs.write_table(outputs.join(cfg.output, "balance_counts", "balance_counts.parquet"), pa.table({
            "entry_id": keys["entry_id"], "entry": pa.array(entries, pa.string()),
            "count": pa.array(counts), "p": pa.array(probs), "balanced_count": pa.array(totals.dense_counts()),
            "lang": keys["lang"]}))
        summary = {"stage": "balance", "dedup": dedup, "index": _stored_path(cfg.output, index_dir),
                   "release": number, "t": ts.get("en"),
                   "t_source": t_source, "seed": cfg.balance.seed,
                   "pool_rows": int(sum(r["rows_in"] for r in res)),
                   "candidates": int(sum(r["candidates"] for r in res)),
                   "curated_rows": int(sum(r["rows"] for r in res)),
                   "images": int(sum(r["images"] for r in res)),
                   "expected_size": float(sum(r["expected"] for r in res)),
                   "files": [r["output"] for r in res if r["output"]], "groups": len(groups),
                   "dropped": dropped_summary(sum(r["url_unencodable"] for r in res)),
                   **balance_stats(counts, space, ts, p, res),
                   "t_without_dedup": ts_occ.get("en"),
                   "head_entries_without_dedup": int(np.count_nonzero(occurrences > t_vector(ts_occ, space))),
                   "occurrences_total_matches": int(occurrences.sum())}
        summary["keep_rate"] = summary["curated_rows"] / summary["candidates"] if summary["candidates"] else 0.0
        if previous is not None:
            curated_files = [outputs.join(cfg.output, f) for f in summary["files"]]
            summary["previous"] = previous[0]
            summary["diff"] = write_diff(session(), cfg.output, curated_files, previous[1],
                                         cfg.balance.rows_per_file)
        summary["wall_seconds"] = round(time.monotonic() - start, 3)
        summary.update(chunk_info)
        return summary

    files_doc = json.dumps(sorted((runfolder.relative(index_dir, u), n) for u, n in files)).encode("utf-8")
    t_plan = {"t": float(ts["en"])} if list(ts) == ["en"] else {"ts": {k: float(v) for k, v in ts.items()}}
    plan = {"stage": "balance", "index": index_dir, "release": number, "dedup": dedup, **t_plan,
            "seed": cfg.balance.seed, "chunk_size": chunk_size, "groups": len(groups),
            "bucket_files_sha256": hashlib.sha256(files_doc).hexdigest(),
            "counts_sha256": hashlib.sha256(np.ascontiguousarray(counts, dtype="<i8").tobytes()).hexdigest(),
            "groups_sha256": hashlib.sha256(json.dumps(groups).encode("utf-8")).hexdigest()}
    return runner.run(runner.Stage(
        name="balance", output=cfg.output, plan=plan, items=groups, chunk_size=chunk_size, run_chunk=run_chunk,
        finish=finish, config_json=cfg.to_json(), n_entries=len(entries), overwrite=bool(cfg.overwrite),
        reset=lambda: _reset(cfg.output), clean_chunk=clean_chunk,
        temp_dirs=("curated", "balance_counts", "stats", "diff/added", "diff/removed"),
        success="curated/_SUCCESS", files_manifest=False, after_chunk=after_chunk))


def _stored_path(run: str, index_dir: str) -> str:
    """The index as stats/balance.json names it: relative when inside the run folder (``curate``,
    ``balance --pool``), so that a copied or moved run folder still names its own index."""
    try:
        return runfolder.relative(run, index_dir)
    except ValueError:
        return index_dir


def _reset(out: str) -> None:
    """Remove what an earlier balance wrote into the run folder (owned files only)."""
    runfolder.remove_owned(outputs.join(out, "curated"), names=("_SUCCESS",), patterns=(runfolder.CURATED_PART_RE,))
    runfolder.remove_owned(outputs.join(out, "balance_counts"), names=("balance_counts.parquet",))
    for part in ("added", "removed"):
        runfolder.remove_owned(outputs.join(out, "diff", part), names=("_SUCCESS",), patterns=DIFF_OWNED)
    runfolder.remove_file(outputs.join(out, "stats", "balance.json"))
    runfolder.remove_file(outputs.join(out, runner.config_name("balance")))


# ------------------------------------------------------------------------------ the diff

def previous_curated(previous: str) -> tuple[str, list[str]]:
    """(folder, part files) of a previous curated set: ``previous`` is a run folder holding
    ``curated/_SUCCESS`` or a curated folder holding ``_SUCCESS``; its rows need ``image_id``."""
    root = runfolder.absolute(previous)
    for folder in (outputs.join(root, "curated"), root):
        if outputs.exists(outputs.join(folder, "_SUCCESS")):
            files = outputs.list_files(folder, ".parquet")
            for uri in files[:1]:
                fs, path = outputs.resolve(uri)
                if "image_id" not in pq.read_schema(path, filesystem=fs).names:
                    raise ConfigError("--previous %s: its curated rows have no image_id column (a curated set "
                                      "of `balance --index` or `--dedup image|pair` is needed)" % previous)
            return folder, files
    raise ConfigError("--previous %s is not a finished curated set (no curated/_SUCCESS or _SUCCESS)" % previous)


def _frame(spark, files: list[str], ddl: str):
    if files:
        return spark.read.schema(ddl).parquet(*files) if ddl else spark.read.parquet(*files)
    return spark.createDataFrame([], ddl or "image_id string, url string, text string")


def write_flat(df, folder: str, sort_cols: list[str], parts: int) -> int:
    """``df`` as a flat Parquet folder of ``parts`` files (at least one) hashed by image_id, each
    sorted by ``sort_cols``, named ``part-<n>.parquet``, with a ``_SUCCESS``; returns its rows (read
    from the files' footers, no second pass over the data)."""
    df.repartition(max(1, parts), "image_id").sortWithinPartitions(*sort_cols).write.mode("overwrite").parquet(folder)
    fs, path = outputs.resolve(folder)
    rows = 0
    for uri in outputs.list_files(folder, ".parquet"):
        m = SPARK_PART_RE.match(uri.rsplit("/", 1)[-1])
        if m:
            target = path + "/part-%s.parquet" % m.group(1)
            fs.move(outputs.resolve(uri)[1], target)
            rows += pq.ParquetFile(target, filesystem=fs).metadata.num_rows
    runfolder.remove_owned(folder, patterns=(DIFF_OWNED[2],))
    return rows


def write_diff(spark, out: str, curated_files: list[str], previous_files: list[str], rows_per_file: int) -> dict:
    """diff/added (new curated rows of images not in the previous set), diff/removed (image_id, url of
    previous rows whose image is not curated now); counts of images added, removed, kept, and kept
    images with a text not among their previous texts. One join of the two sets' images (their
    texts collected), cached: the counts are one aggregation over it, the two folders two semi-joins."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    new = _frame(spark, curated_files, CURATED_DDL)
    prev = _frame(spark, previous_files, None).select("image_id", "url", "text")
    images = (new.groupBy("image_id").agg(F.collect_set("text").alias("nt"))
              .join(prev.groupBy("image_id").agg(F.collect_set("text").alias("pt")), "image_id", "full_outer")
              .persist(StorageLevel.MEMORY_AND_DISK))
    try:
        both = F.col("nt").isNotNull() & F.col("pt").isNotNull()
        c = images.agg(
            F.sum(F.when(F.col("pt").isNull(), 1).otherwise(0)).alias("added"),
            F.sum(F.when(F.col("nt").isNull(), 1).otherwise(0)).alias("removed"),
            F.sum(F.when(both, 1).otherwise(0)).alias("kept"),
            F.sum(F.when(both & (F.size(F.array_except("nt", "pt")) > 0), 1).otherwise(0)).alias("text_changed"),
        ).collect()[0]
        counts = {k: int(c[k] or 0) for k in ("added", "removed", "kept", "text_changed")}
        added = new.join(images.where(F.col("pt").isNull()).select("image_id"), "image_id", "left_semi").select(
            *new.columns)
        removed = prev.select("image_id", "url").distinct().join(
            images.where(F.col("nt").isNull()).select("image_id"), "image_id", "left_semi").select("image_id", "url")
        # file counts from the image counts (one row per image in dedup image): a fixed layout per input
        added_rows = write_flat(added, outputs.join(out, "diff", "added"), ["image_id", "text_hash", "url"],
                                math.ceil(counts["added"] / rows_per_file))
        removed_rows = write_flat(removed, outputs.join(out, "diff", "removed"), ["image_id", "url"],
                                  math.ceil(counts["removed"] / rows_per_file))
    finally:
        images.unpersist()
    return {**counts, "added_rows": added_rows, "removed_rows": removed_rows}
