"""Finished stage-1 pools as later stages read them (Spark-free): their entry counts, their
(file, rows) list, and the checks that the run folder is what stage 1 wrote (docs/outputs.md).

Also the one reader of entry-count tables (:func:`read_counts`: stage 1's ``entry_counts/``, an
index release's, ``balance_counts/``; a table without ``lang`` is an English one) and the key
columns of one written from a global vector (:func:`count_columns`)."""

from __future__ import annotations

import json
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from metaclip_spark.metadata.languages import ENGLISH, LanguageSpace
from metaclip_spark.run import outputs
from metaclip_spark.run import runfolder
from metaclip_spark.run.config import ConfigError

class Counts(NamedTuple):
    vector: np.ndarray          # int64, one slot per global id of ``space`` (one row per column asked for)
    space: LanguageSpace
    entries: pa.Array           # entry text per global id (null where the table has no row); Arrow, not
                                # 15M Python strings on the driver


def read_counts(table: pa.Table, column: str | tuple = "count") -> Counts:
    """An entry-count table (rows ``lang``, ``entry_id`` local to the language, ``column``) -> the
    dense vector over global ids and its LanguageSpace (each language sized by its largest
    entry_id + 1; ids absent from the table count 0). No ``lang`` column: an English file.
    ``column`` a tuple of names: one vector per name (``count, occ = read_counts(t, ("count",
    "occurrences")).vector``), the table's ids and entries worked out once."""
    if "lang" not in table.column_names:
        table = table.append_column("lang", pa.array([ENGLISH] * table.num_rows, pa.string()))
    ids = table.column("entry_id").to_numpy().astype(np.int64) if table.num_rows else np.zeros(0, np.int64)
    sizes = {}
    if table.num_rows:
        agg = table.select(["lang", "entry_id"]).group_by("lang").aggregate([("entry_id", "max")])
        sizes = dict(zip(agg.column("lang").to_pylist(), (int(m) + 1 for m in agg.column("entry_id_max").to_pylist())))
    space = LanguageSpace(sizes if sizes else {ENGLISH: 0})
    langs = table.column("lang")
    codes = pc.index_in(langs, value_set=pa.array(space.languages, pa.string())).to_numpy(zero_copy_only=False)
    g = space.offsets[codes.astype(np.int64)] + ids if len(ids) else ids
    columns = [column] if isinstance(column, str) else list(column)
    vector = np.zeros((len(columns), len(space)), np.int64)
    for row, name in zip(vector, columns):
        row[g] = table.column(name).to_numpy()
    entries = pa.nulls(len(space), pa.string())
    if "entry" in table.column_names:
        col = table.column("entry").combine_chunks().cast(pa.string())
        if len(g) == len(space) and np.array_equal(g, np.arange(len(g))):     # rows in space order (as written)
            entries = col
        else:
            pos = np.full(len(space), -1, np.int64)
            pos[g] = np.arange(len(g))
            entries = col.take(pa.array(pos, mask=pos < 0))
    return Counts(vector[0] if isinstance(column, str) else vector, space, entries)


def count_columns(space: LanguageSpace) -> dict:
    """``entry_id`` (local) and ``lang`` of every global id of ``space``, in order: the key columns
    of an entry-count table written from a global vector (row i = global id i)."""
    code = space.lang_of(np.arange(len(space)))
    local = np.arange(len(space)) - space.offsets[code] if len(space) else np.zeros(0, np.int64)
    langs = pa.DictionaryArray.from_arrays(pa.array(code.astype(np.int32)), pa.array(space.languages, pa.string()))
    return {"entry_id": pa.array(local.astype(np.int32)), "lang": langs.cast(pa.string())}


class Pools(NamedTuple):
    entries: pa.Array           # entry text per global id
    counts: np.ndarray          # summed counts per global id
    files: list                 # (pool file, rows)
    space: LanguageSpace


def load_pools(pools: list[str]) -> Pools:
    """Entries, summed counts, the (file, rows) list and the language space of finished stage-1 pools.

    Each pool is read from its own run folder (manifests name files relative to it), and only
    if its file list and row counts are the ones its entry counts came from (the digest stage 1
    wrote) and every listed file is there."""
    if not pools:
        raise ConfigError("give at least one --pool (a stage-1 output folder)")
    entries, counts, files, space = None, None, [], None
    for pool in (runfolder.absolute(p) for p in pools):
        if not outputs.exists(outputs.join(pool, "_SUCCESS")):
            raise ConfigError("%s is not a finished stage-1 output (no _SUCCESS)" % pool)
        table = outputs.read_tables(outputs.list_files(outputs.join(pool, "entry_counts"), ".parquet"))
        got = read_counts(table)
        if entries is None:
            entries, counts, space = got.entries, np.zeros(len(got.space), dtype=np.int64), got.space
        elif got.space != space or not got.entries.equals(entries):
            raise ConfigError("%s was matched against other metadata than %s: counts cannot be summed"
                              % (pool, pools[0]))
        counts += got.vector
        manifest = json.loads(outputs.read_text(outputs.join(pool, "stats", "match-files.json")))
        listed = sorted((f["output"], int(f["rows"])) for f in manifest if f["output"])
        _check_pool(pool, listed, table)
        files.extend((runfolder.inside(pool, name), rows) for name, rows in listed)
    return Pools(entries, counts, files, space)


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
