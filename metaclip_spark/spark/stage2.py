"""Stage 2 (spark-submit entry file and `metaclip-spark balance`): map-only balancing.

The driver sums the entry counts of one or more stage-1 pools, chooses t, broadcasts
one float64 probability array and plans groups of pool files (one curated file per
group). Each group is one row of a DataFrame processed by ``mapInArrow``: the plan
has no Exchange, and each task reads, samples (vectorised over Arrow batches) and
writes its own file under a fixed name.

Groups go through :mod:`metaclip_spark.run.runner` in chunks of ``GROUP_CHUNK_SIZE``, each
committed with a marker under ``chunks/balance/``: a killed balance rerun with the same plan
(pools, t, seed, groups) skips committed chunks. A group's file and bytes depend only on the
group, its number, the probabilities and the seed, so the result equals an uninterrupted run.
"""

from __future__ import annotations

import hashlib
import json
import math
import time

import numpy as np
import pyarrow as pa

from metaclip_spark.run import outputs
from metaclip_spark.run import runfolder
from metaclip_spark.run import runner
from metaclip_spark.run.pools import count_columns, load_pools
from metaclip_spark.run.totals import RunTotals
from metaclip_spark.index.merge import global_ids
from metaclip_spark.steps.balance import PoolSizeModel, choose_ts, probabilities, t_vector
from metaclip_spark.run.config import Config, ConfigError
from metaclip_spark.steps.curated import balance_group, balance_stats, dropped_summary, iter_pool_batches, plan_groups

SIZE_MODEL_ROWS = 2_000_000   # pool rows read on the driver to model E(t) (all of a smaller pool)
GROUP_CHUNK_SIZE = 100        # groups per committed chunk (``balance.chunk_size`` when the config has it)

RESULT_SCHEMA = pa.schema([
    ("group", pa.int32()), ("output", pa.string()), ("rows_in", pa.int64()), ("rows_out", pa.int64()),
    ("expected", pa.float64()), ("entry_ids", pa.list_(pa.int32())), ("counts", pa.list_(pa.int64())),
    ("file_rows", pa.list_(pa.int64())), ("url_unencodable", pa.int64()),
    ("lang_rows", pa.list_(pa.int64())), ("lang_kept", pa.list_(pa.int64())), ("lang_expected", pa.list_(pa.float64())),
])
RESULT_DDL = ("`group` int, output string, rows_in bigint, rows_out bigint, expected double, "
              "entry_ids array<int>, counts array<bigint>, file_rows array<bigint>, "
              "url_unencodable bigint, lang_rows array<bigint>, lang_kept array<bigint>, lang_expected array<double>")


def size_model(files: list[tuple[str, int]], counts: np.ndarray, space=None) -> PoolSizeModel:
    """E(t) modelled from the first SIZE_MODEL_ROWS pool rows (in file order), scaled to the pool
    (rows' ids globalised over ``space``: E takes one t or a t vector)."""
    total = sum(n for _, n in files)
    arrays, read = [], 0
    worldwide = space is not None and len(space.languages) > 1
    for uri, n in files:
        if read >= SIZE_MODEL_ROWS:
            break
        for batch in iter_pool_batches(uri, columns=["entry_ids", "lang"] if worldwide else ["entry_ids"]):
            arrays.append(global_ids(batch, space))
            read += batch.num_rows
    return PoolSizeModel(arrays, counts, scale=(total / read) if read else 1.0)


def curation_frame(spark, groups: list[list[str]], curated: str, probs_bc, seed: int,
                   partitions: int | None = None, first: int = 0, space=None):
    """The map-only plan: one row per group → ``mapInArrow`` → one result row per group.
    ``groups[k]`` is group number ``first + k`` (its file is ``part-<first + k>.parquet``).

    ``partitions`` only changes how groups are spread over tasks, never the output."""

    def task(batches):
        p = probs_bc.value
        for batch in batches:
            for g, fl in zip(batch.column("group").to_pylist(), batch.column("files").to_pylist()):
                r = balance_group(g, fl, outputs.join(curated, "part-%05d.parquet" % g), p, seed, space)
                yield pa.RecordBatch.from_pydict({
                    "group": [r.group], "output": [r.output], "rows_in": [r.rows_in], "rows_out": [r.rows_out],
                    "expected": [r.expected], "entry_ids": [r.entry_ids.tolist()], "counts": [r.counts.tolist()],
                    "file_rows": [r.file_rows], "url_unencodable": [r.url_unencodable], "lang_rows": [r.lang_rows],
                    "lang_kept": [r.lang_kept], "lang_expected": [r.lang_expected],
                }, schema=RESULT_SCHEMA)

    rows = list(enumerate(groups, first))
    return (spark.sparkContext.parallelize(rows, min(partitions or len(rows), len(rows)))
            .toDF("`group` int, files array<string>").mapInArrow(task, RESULT_DDL))


def run_balance(cfg: Config, pools: list[str], spark=None, partitions: int | None = None,
                chunk_size: int | None = None, after_chunk=None) -> dict:
    """Stage 2. ``chunk_size``: groups per committed chunk (default ``balance.chunk_size`` or
    GROUP_CHUNK_SIZE); ``after_chunk(i)`` is called after chunk ``i`` is committed or reused
    (tests use it to stop a run part-way, as a killed job would)."""
    if cfg.index.path:                               # balance over an image index (docs/index.md)
        if pools:
            raise ConfigError("give --pool or --index, not both")
        from metaclip_spark.spark.index_balance import run_balance_index
        return run_balance_index(cfg, cfg.index.path, cfg.index.release, spark=spark, partitions=partitions,
                                 chunk_size=chunk_size, after_chunk=after_chunk)
    if not cfg.output:
        raise ConfigError("an output folder is required (--output DIR)")
    cfg.output = runfolder.absolute(cfg.output)      # once, on the driver: executors run elsewhere
    runfolder.check_location(cfg.output)
    if outputs.exists(outputs.join(cfg.output, "curated", "_SUCCESS")) and not cfg.overwrite:
        raise ConfigError("output %s already holds a finished curated set; pass --overwrite to replace it" % cfg.output)
    start = time.monotonic()
    loaded = load_pools(pools)
    if cfg.balance.dedup != "none":                  # images, not occurrences: an index of the pools first
        return _balance_via_index(cfg, pools, spark, partitions, chunk_size, after_chunk)
    chunk_size = chunk_size or getattr(cfg.balance, "chunk_size", None) or GROUP_CHUNK_SIZE
    if chunk_size <= 0:
        raise ConfigError("balance.chunk_size must be > 0, got %r" % chunk_size)
    with runner.claimed(cfg.output, "balance"):
        return _run_balance(cfg, [runfolder.absolute(p) for p in pools], loaded, spark, partitions, chunk_size,
                            after_chunk, start)


def _balance_via_index(cfg: Config, pools: list[str], spark, partitions, chunk_size, after_chunk) -> dict:
    """``balance --pool ... --dedup image|pair`` (and ``curate``): the pools' image index is built in
    OUTPUT/index/ (private to the run folder: rebuilt when it holds a pool not given now), then its
    release is balanced (docs/index.md)."""
    from metaclip_spark.index import layout
    from metaclip_spark.spark.index_balance import run_balance_index
    from metaclip_spark.spark.index_job import build_index, pool_digests

    index = outputs.join(cfg.output, "index")
    runfolder.claim(cfg.output)
    given = set(pool_digests(pools))
    merged = {p["digest"] for p in (layout.release_stats(index, layout.current(index)) or {}).get("pools", [])}
    if cfg.overwrite or not merged <= given:
        if outputs.exists(outputs.join(index, layout.INDEX_MARKER)):
            outputs.delete_dir(index)              # ours: only this run's balance writes it
    build_index(cfg, pools, index, spark=spark, partitions=partitions)
    return run_balance_index(cfg, index, None, spark=spark, partitions=partitions, chunk_size=chunk_size,
                             after_chunk=after_chunk)


def _reset(out: str) -> None:
    """Remove what an earlier balance wrote into the run folder (owned files only)."""
    runfolder.remove_owned(outputs.join(out, "curated"), names=("_SUCCESS",), patterns=(runfolder.CURATED_PART_RE,))
    runfolder.remove_owned(outputs.join(out, "balance_counts"), names=("balance_counts.parquet",))
    runfolder.remove_file(outputs.join(out, "stats", "balance.json"))
    runfolder.remove_file(outputs.join(out, runner.config_name("balance")))


def _plan(pools: list[str], files: list[tuple[str, int]], counts: np.ndarray, ts: dict, seed: int,
          groups: list[list[str]], chunk_size: int) -> dict:
    """What the curated files depend on: the pools (their files and rows), the counts, t (worldwide:
    every language's), the seed and the grouping."""
    files_doc = json.dumps(sorted(files), separators=(",", ":")).encode("utf-8")
    t = {"t": float(ts["en"])} if list(ts) == ["en"] else {"ts": {k: float(v) for k, v in ts.items()}}
    return {"stage": "balance", "pools": list(pools), **t, "seed": seed, "chunk_size": chunk_size,
            "groups": len(groups),
            "pool_files_sha256": hashlib.sha256(files_doc).hexdigest(),
            "counts_sha256": hashlib.sha256(np.ascontiguousarray(counts, dtype="<i8").tobytes()).hexdigest(),
            "groups_sha256": hashlib.sha256(json.dumps(groups, separators=(",", ":")).encode("utf-8")).hexdigest()}


def _run_balance(cfg: Config, pools: list[str], loaded, spark, partitions, chunk_size: int, after_chunk,
                 start: float) -> dict:
    from metaclip_spark.spark.session import get_spark

    entries, counts, files, space = loaded
    model_cache: list = []

    def model():
        if not model_cache:
            model_cache.append(size_model(files, counts, space))
        return model_cache[0]

    ts, t_source, p = _choose(cfg, counts, space, model)
    t_vec = t_vector(ts, space)
    probs = probabilities(counts, t_vec)
    pool_rows = sum(n for _, n in files)
    keep_rate = model()(t_vec) / pool_rows if pool_rows else 1.0
    per_group = max(1, math.ceil(cfg.balance.rows_per_file / max(keep_rate, 1e-9)))
    groups = plan_groups(files, per_group)
    curated = outputs.join(cfg.output, "curated")
    expected_rows = dict(files)
    state: dict = {}

    def run_chunk(i: int, part: list[list[str]]) -> RunTotals:
        if "bc" not in state:                     # Spark only when a chunk is to be computed
            state["spark"] = spark or get_spark(cfg.spark)
            state["bc"] = state["spark"].sparkContext.broadcast(probs)
        first = i * chunk_size
        df = curation_frame(state["spark"], part, curated, state["bc"], cfg.balance.seed, partitions, first, space)
        results = sorted(df.collect(), key=lambda r: r["group"])
        _check_results(groups, expected_rows, results)
        got = RunTotals(len(entries))
        for r in results:
            got.add_counts(r["entry_ids"], r["counts"])
            got.files.append({"source": "group-%05d" % r["group"], "output": r["output"], "rows": r["rows_out"],
                              "failed": None, "rows_in": r["rows_in"], "expected": r["expected"],
                              "url_unencodable": r["url_unencodable"], "lang_rows": list(r["lang_rows"]),
                              "lang_kept": list(r["lang_kept"]), "lang_expected": list(r["lang_expected"])})
        return got

    def clean_chunk(i: int, part) -> None:        # curated files of a killed attempt of this chunk
        names = tuple("part-%05d.parquet" % g for g in range(i * chunk_size, i * chunk_size + len(part)))
        runfolder.remove_owned(curated, names=names)

    def finish(totals: RunTotals, chunk_info: dict) -> dict:
        if "bc" in state:
            state["bc"].unpersist()
        kept = totals.dense_counts()
        results = totals.files                    # group order: chunks in order, groups sorted in each
        keys = count_columns(space)
        outputs.write_table(outputs.join(cfg.output, "balance_counts", "balance_counts.parquet"), pa.table({
            "entry_id": keys["entry_id"], "entry": pa.array(entries, pa.string()),
            "count": pa.array(counts), "p": pa.array(probs), "balanced_count": pa.array(kept), "lang": keys["lang"]}))
        summary = {"stage": "balance", "pools": list(pools), "t": ts.get("en"), "t_source": t_source,
                   "seed": cfg.balance.seed,
                   "pool_rows": int(sum(r["rows_in"] for r in results)),
                   "curated_rows": int(sum(r["rows"] for r in results)),
                   "expected_size": float(sum(r["expected"] for r in results)),
                   "files": [r["output"] for r in results if r["output"]],
                   "groups": len(groups),
                   "dropped": dropped_summary(sum(r["url_unencodable"] for r in results)),
                   **balance_stats(counts, space, ts, p, results)}
        summary["keep_rate"] = summary["curated_rows"] / summary["pool_rows"] if summary["pool_rows"] else 0.0
        summary["wall_seconds"] = round(time.monotonic() - start, 3)
        summary.update(chunk_info)
        return summary

    return runner.run(runner.Stage(
        name="balance", output=cfg.output, plan=_plan(pools, files, counts, ts, cfg.balance.seed, groups, chunk_size),
        items=groups, chunk_size=chunk_size, run_chunk=run_chunk, finish=finish, config_json=cfg.to_json(),
        n_entries=len(entries), overwrite=bool(cfg.overwrite), reset=lambda: _reset(cfg.output),
        clean_chunk=clean_chunk, temp_dirs=("curated", "balance_counts", "stats"),
        success="curated/_SUCCESS", files_manifest=False, after_chunk=after_chunk))


def _choose(cfg: Config, counts: np.ndarray, space, model) -> tuple[dict, str, float]:
    """t per language (steps/balance.choose_ts), its errors as ConfigError (before Spark starts)."""
    try:
        return choose_ts(cfg.balance, counts, space, model)
    except ValueError as e:
        raise ConfigError("balance: %s" % e) from None


def _check_results(groups: list[list[str]], expected_rows: dict, results) -> None:
    """Before a chunk is committed: every pool file was read with the rows its manifest lists
    (the runner then checks every curated file is there with the rows its task wrote)."""
    for r in results:
        got = list(r["file_rows"])
        want = [expected_rows[uri] for uri in groups[r["group"]]]
        if got != want:
            uri, w, g = next((u, w, g) for u, w, g in zip(groups[r["group"]], want, got) if w != g)
            raise runfolder.OutputMissing("pool file %s has %d rows where its manifest lists %d: the pool changed "
                                          "after stage 1; rerun stage 1" % (uri, g, w))
