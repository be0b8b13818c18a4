"""Stage 1 (spark-submit entry file and `metaclip-spark match` / `extract`).

One Spark task per input file: each task streams its file through
``metaclip_spark.steps.pipeline`` and writes one Parquet file; per-file statistics and
entry counts come back through ``treeAggregate`` (exact, retry-safe: only successful
attempts' results are combined). Everything that can be checked (config, metadata,
LID model, inputs, S3 credentials) is checked before Spark starts.

Inputs are processed in chunks of ``input.chunk_size`` files, each committed with a
marker (see :mod:`metaclip_spark.run.chunks`): a rerun of a killed job skips committed
chunks, and the final entry counts and statistics are the sums over chunks, so the
result equals an uninterrupted run. Inputs that still fail after the readers' retries
are listed in ``stats/<stage>.json`` (``failed_inputs``); more than
``input.max_failed_fraction`` of them fails the job after everything else is written.

Worldwide mode (``worldwide.enabled``, ``--worldwide``; :mod:`metaclip_spark.spark.stage1_world`):
the world metadata and the LID map are checked before Spark starts, the per-language automata
are built once on the driver into the run folder, the tasks get a WorldMatcher and the
worldwide language step, and the counts are one dense vector over the LanguageSpace's global ids.
"""

from __future__ import annotations

import time

import numpy as np
import pyarrow as pa

from metaclip_spark.run import chunks
from metaclip_spark.metadata import defaults
from metaclip_spark.run import outputs
from metaclip_spark.run import runfolder
from metaclip_spark.run import runner
from metaclip_spark.run.config import Config, ConfigError
from metaclip_spark.inputs.crawl import crawl_inputs, crawl_output, sample
from metaclip_spark.steps.extract import ExtractLimits, text_fields
from metaclip_spark.inputs.io import expand_inputs, probe, scheme
from metaclip_spark.inputs.labels import crawl_label
from metaclip_spark.steps.language import LanguageId, check_model
from metaclip_spark.spark import sparkfiles
from metaclip_spark.spark import stage1_world
from metaclip_spark.steps.match import Matcher
from metaclip_spark.metadata.languages import ENGLISH, LanguageSpace
from metaclip_spark.metadata.load import load_metadata, metadata_digest
from metaclip_spark.steps.pipeline import extract_file, match_file, part_name
from metaclip_spark.run.progress import Progress
from metaclip_spark.run.schema import ENTRY_COUNTS_SCHEMA
from metaclip_spark.run.totals import RunTotals


class Stage1Failed(RuntimeError):
    """More inputs failed than ``input.max_failed_fraction`` allows (outputs are written)."""


def resolve_output(cfg: Config) -> str:
    """The run folder: ``<output>/crawl=<id>`` when a crawl id is given (``cfg.output`` is
    updated in place, idempotently, so later stages use the same folder)."""
    if not cfg.output:
        raise ConfigError("an output folder is required (--output DIR)")
    if cfg.input.crawl:
        cfg.output = crawl_output(cfg.output, cfg.input.crawl)
    cfg.output = runfolder.absolute(cfg.output)     # once, on the driver: executors run elsewhere
    return cfg.output


def resolve_inputs(cfg: Config) -> list[str]:
    """The exact input URIs of a run (no Spark; network only to read remote listings)."""
    i = cfg.input
    if i.crawl:
        if i.paths:
            raise ConfigError("give either --crawl or --input, not both")
        inputs = crawl_inputs(i.crawl, i.kind, i.source, i.paths_list or None, i.limit,
                              i.sample_fraction, i.sample_seed)
    else:
        specs = list(i.paths) + ([i.paths_list] if i.paths_list else [])
        inputs = expand_inputs(specs or defaults.sample_inputs(), i.cc_root)
        inputs = sample(inputs, i.sample_fraction, i.sample_seed)
        if i.limit is not None:
            if i.limit <= 0:
                raise ConfigError("input.limit must be > 0, got %r" % i.limit)
            inputs = inputs[:i.limit]
    if not inputs:
        raise ConfigError("no inputs to process")
    return inputs


def prepare(cfg: Config, need_metadata: bool = True) -> dict:
    """Driver-side checks and resources, before any Spark work."""
    resolve_output(cfg)
    model_uri = cfg.lid.model or defaults.default_lid_model_path()
    model = sparkfiles.driver_path(model_uri, cfg.data_files)   # s3/gs/https: a local copy
    check_model(model)
    entries, world = None, None
    if cfg.worldwide.enabled:         # extract too: its LID marks need the metadata's languages
        world = stage1_world.prepare_world(cfg)
    elif need_metadata:
        entries = load_metadata(sparkfiles.driver_path(cfg.match.metadata or defaults.default_metadata_path(),
                                                       cfg.data_files))
    inputs = resolve_inputs(cfg)
    if scheme(inputs[0]) in ("s3", "s3a", "s3n"):
        probe(inputs[0])                      # wrong or missing credentials: a clear error now
    runfolder.check_location(cfg.output, list(cfg.input.paths) + [cfg.input.paths_list], inputs)
    if outputs.exists(cfg.output) and not cfg.overwrite and outputs.exists(outputs.join(cfg.output, "_SUCCESS")):
        raise ConfigError("output %s already holds a finished run; pass --overwrite to replace it" % cfg.output)
    from metaclip_spark.inputs.streams import RetryPolicy   # the time rules of input reads travel in limits

    i = cfg.input
    limits = ExtractLimits(cfg.extract.max_html_bytes, cfg.extract.max_text_chars, cfg.extract.max_url_chars,
                           cfg.extract.max_nesting_work,
                           RetryPolicy(connect_timeout=i.connect_timeout, read_timeout=i.read_timeout,
                                       budget_seconds=i.read_budget_seconds,
                                       min_bytes_per_second=i.min_bytes_per_second,
                                       slow_window_seconds=i.slow_window_seconds),
                           text_fields=text_fields(cfg))
    return {"model": model, "entries": entries, "world": world, "inputs": inputs, "limits": limits,
            "lid": sparkfiles.language_id(model_uri, model, cfg.lid.threshold, cfg.data_files).batched(cfg.lid.batch_size)}


def _summary(cfg: Config, stage: str, totals: RunTotals, extra: dict) -> dict:
    failed = totals.failed_inputs()
    summary = {"stage": stage, "inputs": len(totals.files), "inputs_failed": len(failed),
               "failed_inputs": failed, "counts": dict(sorted(totals.stats.counts.items())),
               "dropped": totals.stats.dropped(), "errors": totals.stats.errors[:1000],
               "errors_total": len(totals.stats.errors)}
    summary.update(extra)
    return summary


def _check_failures(cfg: Config):
    def check(summary: dict) -> None:
        n, k = summary["inputs"], summary["inputs_failed"]
        if n and k / n > cfg.input.max_failed_fraction:
            raise Stage1Failed("%d of %d inputs failed (allowed fraction %.3f); the failed inputs and their errors "
                               "are listed in %s (failed_inputs); rerun the same command to retry them"
                               % (k, n, cfg.input.max_failed_fraction,
                                  outputs.join(cfg.output, "stats", summary["stage"] + ".json")))
    return check


def _reset(cfg: Config, stage: str, folder: str) -> None:
    """Remove what an earlier run of ``stage`` (and the stage-2 outputs computed from it) wrote
    into the run folder, and nothing else (runfolder.remove_owned)."""
    out = cfg.output
    runfolder.remove_owned(outputs.join(out, folder), patterns=(runfolder.POOL_PART_RE,))
    runfolder.remove_owned(outputs.join(out, "stats"), names=(stage + ".json", stage + "-files.json", "balance.json"))
    runfolder.remove_owned(outputs.join(out, "entry_counts"), names=("entry_counts.parquet",))
    runfolder.remove_owned(outputs.join(out, "curated"), names=("_SUCCESS",), patterns=(runfolder.CURATED_PART_RE,))
    runfolder.remove_owned(outputs.join(out, "balance_counts"), names=("balance_counts.parquet",))
    chunks.reset(out, "balance")
    for name in ("_SUCCESS", runner.config_name(stage), runner.config_name("balance")):
        runfolder.remove_file(outputs.join(out, name))


def _plan(cfg: Config, stage: str, inputs: list[str], entries, entries_digest: str | None = None) -> dict:
    plan = {"stage": stage, "chunk_size": cfg.input.chunk_size, "inputs": len(inputs),
            "inputs_sha256": metadata_digest(inputs),
            "entries_sha256": entries_digest or metadata_digest(entries or []),
            "extract": cfg.to_dict()["extract"], "lid_threshold": cfg.lid.threshold,
            "batch_size": cfg.match.batch_size}
    if cfg.worldwide.enabled:         # a resume in the other mode / with other LID rules is refused
        plan["worldwide"] = {k: v for k, v in cfg.to_dict()["worldwide"].items() if k != "automata_cache"}
    if stage == "match":          # the pool's crawl column: a resume with another label is refused
        plan["label"] = cfg.input.label
    return plan


def _progress_counters(sc):
    """Accumulators of finished files, pairs and failed files for the driver's progress lines:
    ``counted(result)`` (in tasks) adds a file's result, ``poll()`` (driver) reads them."""
    files, pairs, failed = sc.accumulator(0), sc.accumulator(0), sc.accumulator(0)

    def counted(result):
        files.add(1)
        pairs.add(result.stats["pairs"])
        failed.add(1 if result.failed else 0)
        return result

    return counted, lambda: (files.value, pairs.value, failed.value)


def _stage(cfg: Config, stage: str, folder: str, inputs: list[str], entries, run_chunk, finish,
           after_chunk=None, entries_digest: str | None = None, progress: Progress | None = None,
           n_entries: int | None = None) -> runner.Stage:
    """The runner's view of stage 1: one chunk is ``chunk_size`` input files, each written by its
    task to ``<folder>/<part_name(input)>``."""
    out_dir = outputs.join(cfg.output, folder)

    def clean_chunk(i, part):                     # leftovers of a killed attempt of this chunk
        for uri in part:
            fs, path = outputs.resolve(outputs.join(out_dir, part_name(uri)))
            if fs.get_file_info(path).type != outputs.pafs.FileType.NotFound:
                fs.delete_file(path)

    return runner.Stage(
        name=stage, output=cfg.output, plan=_plan(cfg, stage, inputs, entries, entries_digest), items=inputs,
        chunk_size=cfg.input.chunk_size, run_chunk=lambda i, part: run_chunk(part, out_dir), finish=finish,
        config_json=cfg.to_json(),
        n_entries=n_entries if n_entries is not None else len(entries) if entries is not None else 0,
        overwrite=bool(cfg.overwrite), reset=lambda: _reset(cfg, stage, folder), clean_chunk=clean_chunk,
        temp_dirs=(folder, "stats", "entry_counts"), check=_check_failures(cfg), progress=progress,
        after_chunk=after_chunk)


def run_match(cfg: Config, spark=None, after_chunk=None) -> dict:
    """Stage 1. ``after_chunk(i)`` is called after chunk ``i`` is committed or reused
    (tests use it to stop a run part-way, as a killed job would)."""
    start = time.monotonic()
    res = prepare(cfg)
    with runner.claimed(cfg.output, "match"):          # re-entrant: runner.run holds the same lock
        return _run_match(cfg, res, spark, after_chunk, start)


def _run_match(cfg: Config, res: dict, spark, after_chunk, start: float) -> dict:
    from metaclip_spark.spark.session import get_spark

    entries, inputs, lid, limits, world = res["entries"], res["inputs"], res["lid"], res["limits"], res["world"]
    task_world = None
    if world is not None:      # before Spark: the automata are built once, here, into the run folder
        task_world, matcher = stage1_world.world_task(cfg, world, lid)
        space, digest = world["world"].space, world["world"].digest
    else:
        matcher = Matcher(entries)
        space, digest = LanguageSpace.english(len(entries)), matcher.digest
    n_entries = len(space)
    spark = spark or get_spark(cfg.spark)
    sc = spark.sparkContext
    matcher_bc = sc.broadcast(matcher)
    batch_size = cfg.match.batch_size
    counted, poll = _progress_counters(sc)

    def run_chunk(part, pool_dir):
        def task(items):
            local_matcher = matcher_bc.value
            for uri, crawl in items:
                yield counted(match_file(uri, pool_dir, local_matcher, lid, limits, batch_size, crawl, task_world))

        labelled = [(uri, crawl_label(cfg.input.label, cfg.input.crawl, uri, cfg.output)) for uri in part]
        return (sc.parallelize(labelled, len(labelled)).mapPartitions(task)
                .treeAggregate(RunTotals(n_entries), RunTotals.add_file, RunTotals.merge))

    def finish(totals: RunTotals, chunk_info: dict) -> dict:
        matcher_bc.unpersist()
        counts = totals.dense_counts()
        pool_digest = runfolder.pool_digest([(f["output"], f["rows"]) for f in totals.files if f["output"]])
        if world is not None:
            table = stage1_world.entry_counts_table(world["world"], counts, pool_digest)
            mode = {"mode": stage1_world.MODE_WORLDWIDE,
                    "languages": stage1_world.language_stats(space, counts, totals.stats),
                    "metadata": world["world"].report(), "metadata_path": cfg.worldwide.metadata,
                    "metadata_sha256": digest}
        else:
            table = pa.table({"entry_id": pa.array(np.arange(len(entries), dtype=np.int32)),
                              "entry": pa.array(entries, pa.string()),
                              "count": pa.array(counts), "lang": pa.array([ENGLISH] * len(entries), pa.string())},
                             schema=ENTRY_COUNTS_SCHEMA.with_metadata({"pool_digest": pool_digest}))
            mode = {"mode": stage1_world.MODE_ENGLISH, "metadata": cfg.match.metadata or "default",
                    "languages": stage1_world.english_stats(len(entries), counts, totals.stats)}
        outputs.write_table(outputs.join(cfg.output, "entry_counts", "entry_counts.parquet"), table)
        return _summary(cfg, "match", totals, {
            "entries": n_entries, "entries_zero_count": int((counts == 0).sum()),
            "matches": int(counts.sum()), "pool_rows": totals.stats["pool_rows"],
            **mode, "lid_model": res["model"],
            "crawl": cfg.input.crawl or None, "pool_digest": pool_digest,
            "wall_seconds": round(time.monotonic() - start, 3), **chunk_info})

    with Progress("match", len(inputs), cfg.progress_seconds, poll) as progress:
        return runner.run(_stage(cfg, "match", "pool", inputs, entries, run_chunk, finish, after_chunk,
                                 entries_digest=digest, progress=progress, n_entries=n_entries))


def run_extract(cfg: Config, spark=None, after_chunk=None) -> dict:
    start = time.monotonic()
    res = prepare(cfg, need_metadata=False)
    with runner.claimed(cfg.output, "extract"):
        return _run_extract(cfg, res, spark, after_chunk, start)


def _run_extract(cfg: Config, res: dict, spark, after_chunk, start: float) -> dict:
    from metaclip_spark.spark.session import get_spark

    inputs, lid, limits = res["inputs"], res["lid"], res["limits"]
    language = stage1_world.language_factory(cfg, res["world"], lid) if res["world"] is not None else None
    spark = spark or get_spark(cfg.spark)
    batch_size = cfg.match.batch_size
    counted, poll = _progress_counters(spark.sparkContext)

    def run_chunk(part, out_dir):
        def task(uris):
            for uri in uris:
                yield counted(extract_file(uri, out_dir, lid, limits, batch_size, language))

        return (spark.sparkContext.parallelize(part, len(part)).mapPartitions(task)
                .treeAggregate(RunTotals(0), RunTotals.add_file, RunTotals.merge))

    def finish(totals: RunTotals, chunk_info: dict) -> dict:
        return _summary(cfg, "extract", totals, {"lid_model": res["model"], "crawl": cfg.input.crawl or None,
                                                 "wall_seconds": round(time.monotonic() - start, 3),
                                                 **chunk_info})

    with Progress("extract", len(inputs), cfg.progress_seconds, poll) as progress:
        return runner.run(_stage(cfg, "extract", "pairs", inputs, None, run_chunk, finish, after_chunk,
                                 progress=progress))


def dry_run(cfg: Config) -> list[str]:
    """The inputs and run folder a run would use, without Spark (printed by ``--dry-run``)."""
    resolve_output(cfg) if cfg.output else None
    return resolve_inputs(cfg)
