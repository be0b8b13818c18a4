"""Resumable stage 1: inputs in chunks, each chunk's results committed with a marker.

Layout under a stage-1 output folder (``stage`` is ``match`` or ``extract``)::

    chunks/<stage>/plan.json                 inputs, chunk size and the settings the results depend on
    chunks/<stage>/chunk-00000/totals.json   statistics, file manifest, sparse entry counts
    chunks/<stage>/chunk-00000/_SUCCESS      written last: the chunk is committed

A chunk's pool files are written by its tasks under deterministic names before its
``totals.json``; the marker makes the chunk count. A rerun with the same plan skips
committed chunks (and redoes those that had failed inputs), so a killed job resumes
without losing or duplicating work; a rerun with another plan is refused.
"""

from __future__ import annotations

import json

import numpy as np

from metaclip_spark.run import outputs
from metaclip_spark.run.config import ConfigError
from metaclip_spark.run.redact import scrub_obj
from metaclip_spark.run.stats import Stats
from metaclip_spark.run.totals import RunTotals


def split(inputs: list[str], size: int) -> list[list[str]]:
    return [inputs[i:i + size] for i in range(0, len(inputs), size)]


def root(out: str, stage: str) -> str:
    return outputs.join(out, "chunks", stage)


def chunk_dir(out: str, stage: str, i: int) -> str:
    return outputs.join(root(out, stage), "chunk-%05d" % i)


def check_plan(out: str, stage: str, plan: dict) -> bool:
    """Write ``plan`` for a new run; True when an existing identical plan is resumed.
    Raises ConfigError when the folder holds an unfinished run of another plan."""
    uri = outputs.join(root(out, stage), "plan.json")
    if outputs.exists(uri):
        old = json.loads(outputs.read_text(uri))
        if old == plan:
            return True
        diff = sorted(k for k in set(old) | set(plan) if old.get(k) != plan.get(k))
        raise ConfigError("%s holds an unfinished %s run with other %s; rerun with the same inputs and "
                          "settings to resume it, or pass --overwrite to start again"
                          % (out, stage, ", ".join(diff)))
    outputs.write_text(uri, json.dumps(plan, indent=2, sort_keys=True))
    return False


def committed(out: str, stage: str, i: int) -> bool:
    return outputs.exists(outputs.join(chunk_dir(out, stage, i), "_SUCCESS"))


def save(out: str, stage: str, i: int, totals: RunTotals) -> None:
    """Commit chunk ``i``: its totals, then the marker."""
    ids, counts = totals.sparse_counts()
    doc = {"stats": totals.stats.to_dict(), "files": sorted(totals.files, key=lambda f: f["source"]),
           "entry_ids": ids.tolist(), "entry_counts": counts.tolist()}
    folder = chunk_dir(out, stage, i)
    outputs.write_text(outputs.join(folder, "totals.json"), json.dumps(scrub_obj(doc)))
    outputs.write_text(outputs.join(folder, "_SUCCESS"), "")


def load(out: str, stage: str, i: int, n_entries: int) -> RunTotals:
    doc = json.loads(outputs.read_text(outputs.join(chunk_dir(out, stage, i), "totals.json")))
    totals = RunTotals(n_entries)
    totals.stats = Stats.from_dict(doc["stats"])
    totals.files = doc["files"]
    if doc["entry_ids"]:
        totals.add_counts(doc["entry_ids"], doc["entry_counts"])
    return totals


def has_failures(totals: RunTotals) -> bool:
    return any(f["failed"] for f in totals.files)


def reset(out: str, stage: str) -> None:
    outputs.delete_dir(root(out, stage))


def drop_chunk(out: str, stage: str, i: int) -> None:
    outputs.delete_dir(chunk_dir(out, stage, i))
