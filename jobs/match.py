"""Stage 1 (spark-submit entry file and `metaclip-spark match` / `extract`).

One Spark task per input file: each task streams its file through
``metaclip_spark.pipeline`` and writes one Parquet file; per-file statistics and
entry counts come back through ``treeAggregate`` (exact, retry-safe: only successful
attempts' results are combined). Everything that can be checked (config, metadata,
LID model, inputs) is checked before Spark starts.
"""

from __future__ import annotations

import json
import logging
import sys

import numpy as np
import pyarrow as pa

from metaclip_spark import defaults, outputs
from metaclip_spark.config import Config, ConfigError
from metaclip_spark.extract import ExtractLimits
from metaclip_spark.io import expand_inputs
from metaclip_spark.lid import LanguageId, check_model
from metaclip_spark.matching import Matcher
from metaclip_spark.metadata import load_metadata
from metaclip_spark.pipeline import extract_file, match_file
from metaclip_spark.schema import ENTRY_COUNTS_SCHEMA
from metaclip_spark.totals import RunTotals

log = logging.getLogger("metaclip_spark")


class Stage1Failed(RuntimeError):
    """More inputs failed than ``input.max_failed_fraction`` allows (outputs are written)."""


def prepare(cfg: Config, need_metadata: bool = True) -> dict:
    """Driver-side checks and resources, before any Spark work."""
    if not cfg.output:
        raise ConfigError("an output folder is required (--output DIR)")
    model = cfg.lid.model or defaults.default_lid_model_path()
    check_model(model)
    entries = None
    if need_metadata:
        entries = load_metadata(cfg.match.metadata or defaults.default_metadata_path())
    inputs = expand_inputs(cfg.input.paths or defaults.sample_inputs(), cfg.input.cc_root)
    if not inputs:
        raise ConfigError("no inputs to process")
    if outputs.exists(cfg.output) and not cfg.overwrite and outputs.exists(outputs.join(cfg.output, "_SUCCESS")):
        raise ConfigError("output %s already holds a finished run; pass --overwrite to replace it" % cfg.output)
    limits = ExtractLimits(cfg.extract.max_html_bytes, cfg.extract.max_text_chars, cfg.extract.max_url_chars)
    return {"model": model, "entries": entries, "inputs": inputs, "limits": limits,
            "lid": LanguageId(model, cfg.lid.threshold)}


def _write_common(cfg: Config, stage: str, totals: RunTotals, extra: dict) -> dict:
    failed = totals.failed_inputs()
    summary = {"stage": stage, "inputs": len(totals.files), "inputs_failed": len(failed),
               "failed_inputs": failed, "counts": dict(sorted(totals.stats.counts.items())),
               "dropped": totals.stats.dropped(), "errors": totals.stats.errors[:1000],
               "errors_total": len(totals.stats.errors)}
    summary.update(extra)
    outputs.write_text(outputs.join(cfg.output, "stats", stage + ".json"), json.dumps(summary, indent=2))
    outputs.write_text(outputs.join(cfg.output, "stats", stage + "-files.json"),
                       json.dumps(sorted(totals.files, key=lambda f: f["source"]), indent=2))
    outputs.write_text(outputs.join(cfg.output, "config.json"), cfg.to_json())
    return summary


def _finish(cfg: Config, summary: dict) -> dict:
    n, k = summary["inputs"], summary["inputs_failed"]
    if n and k / n > cfg.input.max_failed_fraction:
        raise Stage1Failed("%d of %d inputs failed (allowed fraction %.3f); see %s" % (
            k, n, cfg.input.max_failed_fraction, outputs.join(cfg.output, "stats")))
    outputs.write_text(outputs.join(cfg.output, "_SUCCESS"), "")
    return summary


def _reset(cfg: Config, folder: str) -> None:
    for name in (folder, "stats", "entry_counts", "_SUCCESS"):
        uri = outputs.join(cfg.output, name)
        if name == "_SUCCESS":
            if outputs.exists(uri):
                outputs.resolve(uri)[0].delete_file(outputs.resolve(uri)[1])
        else:
            outputs.delete_dir(uri)


def run_match(cfg: Config, spark=None) -> dict:
    from metaclip_spark.jobs.session import get_spark

    res = prepare(cfg)
    entries, inputs, lid, limits = res["entries"], res["inputs"], res["lid"], res["limits"]
    _reset(cfg, "pool")
    spark = spark or get_spark(cfg.spark)
    sc = spark.sparkContext
    matcher_bc = sc.broadcast(Matcher(entries))
    pool_dir = outputs.join(cfg.output, "pool")
    batch_size = cfg.match.batch_size

    def task(uris):
        matcher = matcher_bc.value
        for uri in uris:
            yield match_file(uri, pool_dir, matcher, lid, limits, batch_size)

    totals = (sc.parallelize(inputs, len(inputs)).mapPartitions(task)
              .treeAggregate(RunTotals(len(entries)), RunTotals.add_file, RunTotals.merge))
    matcher_bc.unpersist()
    counts = totals.dense_counts()
    table = pa.table({"entry_id": pa.array(np.arange(len(entries), dtype=np.int32)),
                      "entry": pa.array(entries, pa.string()),
                      "count": pa.array(counts)}, schema=ENTRY_COUNTS_SCHEMA)
    outputs.write_table(outputs.join(cfg.output, "entry_counts", "entry_counts.parquet"), table)
    extra = {"entries": len(entries), "entries_zero_count": int((counts == 0).sum()),
             "matches": int(counts.sum()), "pool_rows": totals.stats["pool_rows"],
             "metadata": cfg.match.metadata or "default", "lid_model": res["model"]}
    summary = _write_common(cfg, "match", totals, extra)
    return _finish(cfg, summary)


def run_extract(cfg: Config, spark=None) -> dict:
    from metaclip_spark.jobs.session import get_spark

    res = prepare(cfg, need_metadata=False)
    inputs, lid, limits = res["inputs"], res["lid"], res["limits"]
    _reset(cfg, "pairs")
    spark = spark or get_spark(cfg.spark)
    out_dir = outputs.join(cfg.output, "pairs")
    batch_size = cfg.match.batch_size

    def task(uris):
        for uri in uris:
            yield extract_file(uri, out_dir, lid, limits, batch_size)

    totals = (spark.sparkContext.parallelize(inputs, len(inputs)).mapPartitions(task)
              .treeAggregate(RunTotals(0), RunTotals.add_file, RunTotals.merge))
    summary = _write_common(cfg, "extract", totals, {"lid_model": res["model"]})
    return _finish(cfg, summary)


if __name__ == "__main__":
    from metaclip_spark.cli import main

    sys.exit(main(["match"] + sys.argv[1:]))
