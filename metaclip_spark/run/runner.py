"""One runner for every chunked stage (match, extract, balance; the index stage to come).

Spark-free: the Spark glue of a stage (``metaclip_spark.spark.stage1`` / ``stage2``) hands
the runner a :class:`Stage` with a ``run_chunk(i, items)`` callable that computes one chunk
(a Spark job) and returns its :class:`~metaclip_spark.run.totals.RunTotals`, and a
``finish(totals, chunk_info)`` callable that writes the stage's own outputs from the summed
totals and returns its summary. The runner does everything else, the same way for every
stage:

1. claims the run folder and holds its lock (:mod:`metaclip_spark.run.runfolder`);
2. removes the temporaries a killed run left in the stage's folders;
3. on ``--overwrite``, or when no plan of this stage is there, resets what the stage (and the
   stages computed from it) wrote (``Stage.reset``: owned files only);
4. writes ``chunks/<stage>/plan.json`` or checks it against the one there (resume; another
   plan is refused);
5. runs every chunk not yet committed (or committed with failed items): deletes the leftovers
   of a killed attempt (``Stage.clean_chunk``), calls ``run_chunk``, makes manifest file names
   relative to the run folder, checks the chunk's files on the driver
   (:func:`runfolder.verify_parquet_files`), commits totals + ``_SUCCESS``
   (:mod:`metaclip_spark.run.chunks`), reports progress;
6. calls ``finish`` with the totals summed in chunk order, writes ``stats/<stage>.json``,
   ``stats/<stage>-files.json`` (where the stage has a per-item manifest) and
   ``config-<stage>.json``, runs ``Stage.check`` (e.g. too many failed inputs), and writes the
   stage's success marker last.

:func:`summary_lines` is the summary the CLI prints for any stage.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any, Callable

from metaclip_spark.run import chunks
from metaclip_spark.run import outputs
from metaclip_spark.run import runfolder
from metaclip_spark.run.redact import scrub_obj
from metaclip_spark.run.totals import RunTotals

log = logging.getLogger("metaclip_spark")


@dataclass
class Stage:
    name: str                                          # match / extract / balance: chunks/<name>/, stats/<name>.json
    output: str                                        # the run folder (absolute, resolved on the driver)
    plan: dict                                         # what the results depend on (chunks/<name>/plan.json)
    items: list                                        # inputs or groups, in their fixed order
    chunk_size: int
    run_chunk: Callable[[int, list], RunTotals]        # computes chunk i (the Spark job)
    finish: Callable[[RunTotals, dict], dict]          # writes the stage's outputs, returns its summary
    config_json: str = "{}"                            # the resolved configuration (credentials masked)
    n_entries: int = 0                                 # length of RunTotals.counts
    overwrite: bool = False
    reset: Callable[[], None] | None = None            # removes what the stage (and later ones) wrote
    clean_chunk: Callable[[int, list], None] | None = None   # leftovers of a killed attempt of chunk i
    temp_dirs: tuple = ()                              # folders (relative) where the stage writes temporaries
    success: str = "_SUCCESS"                          # marker (relative to the run folder) written last
    files_manifest: bool = True                        # write stats/<name>-files.json
    check: Callable[[dict], None] | None = None        # after stats, before the marker (raises to fail)
    redo: Callable[[RunTotals], bool] = chunks.has_failures   # a committed chunk to compute again
    progress: Any = None                               # Progress (or None): .chunk(i, n, items, reused)
    after_chunk: Callable[[int], None] | None = None   # tests: called after chunk i is committed or reused
    lock_stage: str | None = None                      # name in the lock (default: name)
    extra_info: dict = field(default_factory=dict)     # added to the chunk info given to finish


def config_name(stage: str) -> str:
    return "config-%s.json" % stage


def claimed(output: str, stage: str) -> runfolder.RunLock:
    """``with claimed(out, stage):`` the run folder is claimed and locked for the stage."""
    runfolder.claim(output)
    return runfolder.RunLock(output, stage)


def run(stage: Stage) -> dict:
    """Run ``stage`` in its (claimed, locked) run folder; returns the summary."""
    with claimed(stage.output, stage.lock_stage or stage.name):
        total, info = run_chunks(stage)
        summary = scrub_obj(stage.finish(total, {**info, **stage.extra_info}))
        out = stage.output
        outputs.write_text(outputs.join(out, "stats", stage.name + ".json"), json.dumps(summary, indent=2))
        if stage.files_manifest:
            outputs.write_text(outputs.join(out, "stats", stage.name + "-files.json"),
                               json.dumps(scrub_obj(sorted(total.files, key=lambda f: f["source"])), indent=2))
        outputs.write_text(outputs.join(out, config_name(stage.name)), stage.config_json)
        if stage.check is not None:
            stage.check(summary)
        outputs.write_text(outputs.join(out, stage.success), "")
        return summary


def run_chunks(stage: Stage) -> tuple[RunTotals, dict]:
    """Steps 2-5: run or reuse every chunk and add their totals up, in chunk order."""
    out, name = stage.output, stage.name
    for folder in ("",) + tuple(stage.temp_dirs):
        runfolder.remove_temporaries(outputs.join(out, folder) if folder else out)   # the lock says none runs
    if stage.overwrite or not outputs.exists(outputs.join(chunks.root(out, name), "plan.json")):
        if stage.reset is not None:
            stage.reset()
        chunks.reset(out, name)
    chunks.check_plan(out, name, stage.plan)
    parts = chunks.split(stage.items, stage.chunk_size)
    total, reused = RunTotals(stage.n_entries), 0
    for i, part in enumerate(parts):
        got = chunks.load(out, name, i, stage.n_entries) if chunks.committed(out, name, i) else None
        if got is not None and not stage.redo(got):
            reused += 1
            if stage.progress is not None:
                stage.progress.chunk(i, len(parts), len(part), reused=True)
        else:
            chunks.drop_chunk(out, name, i)
            if stage.clean_chunk is not None:
                stage.clean_chunk(i, part)
            got = stage.run_chunk(i, part)
            for f in got.files:                   # manifests name files relative to the run folder
                if f["output"] and ("://" in f["output"] or f["output"].startswith("/")):
                    f["output"] = runfolder.relative(out, f["output"])
            runfolder.verify_parquet_files(out, [(f["output"], f["rows"]) for f in got.files if f["output"]])
            chunks.save(out, name, i, got)
            log.info("%s: chunk %d/%d committed (%d items)", name, i + 1, len(parts), len(part))
            if stage.progress is not None:
                stage.progress.chunk(i, len(parts), len(part), reused=False)
        total.merge(got)
        if stage.after_chunk is not None:
            stage.after_chunk(i)
    return total, {"chunks": len(parts), "chunks_reused": reused, "chunk_size": stage.chunk_size}


SUMMARY_KEYS = ("stage", "inputs", "inputs_failed", "pool_rows", "matches", "entries", "entries_zero_count",
                "dedup", "index_rows", "t", "t_source", "curated_rows", "expected_size", "head_entries", "added")


def summary_lines(summary: dict, output: str) -> list[str]:
    """What the CLI prints after any stage: the key numbers, where the outputs are."""
    lines = [json.dumps({k: summary[k] for k in SUMMARY_KEYS if k in summary}, indent=2),
             "output: %s (stats in %s/stats/)" % (output, output.rstrip("/"))]
    if summary.get("files") is not None:
        lines.append("curated set: %s/curated/ (img2dataset --input_format parquet --url_col url --caption_col text)"
                     % output.rstrip("/"))
    if summary.get("report"):
        lines.append("report: %s" % summary["report"])
    return lines
