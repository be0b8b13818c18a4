"""Finished stage-1 pools as later stages read them (Spark-free): their entry counts, their
(file, rows) list, and the checks that the run folder is what stage 1 wrote (docs/outputs.md)."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa

from metaclip_spark.run import outputs
from metaclip_spark.run import runfolder
from metaclip_spark.run.config import ConfigError


def load_pools(pools: list[str]) -> tuple[list[str], np.ndarray, list[tuple[str, int]]]:
    """Entries, summed counts and the (file, rows) list of finished stage-1 pools.

    Each pool is read from its own run folder (manifests name files relative to it), and only
    if its file list and row counts are the ones its entry counts came from (the digest stage 1
    wrote) and every listed file is there."""
    if not pools:
        raise ConfigError("give at least one --pool (a stage-1 output folder)")
    entries, counts, files = None, None, []
    for pool in (runfolder.absolute(p) for p in pools):
        if not outputs.exists(outputs.join(pool, "_SUCCESS")):
            raise ConfigError("%s is not a finished stage-1 output (no _SUCCESS)" % pool)
        table = outputs.read_tables(outputs.list_files(outputs.join(pool, "entry_counts"), ".parquet"))
        ents = table.column("entry").to_pylist()
        if entries is None:
            entries, counts = ents, np.zeros(len(ents), dtype=np.int64)
        elif ents != entries:
            raise ConfigError("%s was matched against other metadata than %s: counts cannot be summed"
                              % (pool, pools[0]))
        counts += table.column("count").to_numpy()
        manifest = json.loads(outputs.read_text(outputs.join(pool, "stats", "match-files.json")))
        listed = sorted((f["output"], int(f["rows"])) for f in manifest if f["output"])
        _check_pool(pool, listed, table)
        files.extend((runfolder.inside(pool, name), rows) for name, rows in listed)
    return entries, counts, files


def _check_pool(pool: str, listed: list[tuple[str, int]], counts_table: pa.Table) -> None:
    """The pool files of ``pool``'s manifest are the ones its entry counts were computed from
    (stage 1's digest, in stats/match.json and the entry-count file) and are all present."""
    want = json.loads(outputs.read_text(outputs.join(pool, "stats", "match.json"))).get("pool_digest")
    meta = (counts_table.schema.metadata or {}).get(b"pool_digest", b"").decode()
    if not want:
        raise ConfigError("%s was written by an older version (no pool digest); rerun stage 1" % pool)
    names = [name for name, _ in listed]
    for name in names:
        runfolder.inside(pool, name)                     # relative names only
    got = runfolder.pool_digest(listed)
    if got != want or meta != want:
        raise ConfigError("%s: the pool files listed in stats/match-files.json are not the ones its entry counts "
                          "came from (digest %s, stage 1 wrote %s): the run folder was changed after stage 1; "
                          "rerun stage 1" % (pool, got[:12], (want or meta)[:12]))
    present = set()
    for folder in sorted({name.rsplit("/", 1)[0] for name in names if "/" in name}):
        present.update(outputs.list_files(outputs.join(pool, folder)))
    missing = [name for name in names if outputs.join(pool, name) not in present]
    if missing:
        raise ConfigError("%s: %d pool file(s) of its manifest are missing (%s%s); rerun stage 1"
                          % (pool, len(missing), ", ".join(missing[:3]), ", ..." if len(missing) > 3 else ""))
