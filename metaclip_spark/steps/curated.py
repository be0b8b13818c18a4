"""Stage 2 for one group of pool files, Spark-free: sample and write one curated file.

The group → file mapping is fixed on the driver from the pool's file list and row
counts, so the curated layout and bytes depend only on the pool, the probabilities
and the seed: never on Spark's partitioning, executor count or task retries.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from metaclip_spark.steps.balance import BalanceSummary, keep_probability, language_stats, log_miss, t_vector
from metaclip_spark.steps.draws import draw_thresholds, order_keys, sample_batch
from metaclip_spark.run.outputs import ParquetSink, resolve
from metaclip_spark.run.schema import POOL_SCHEMA
from metaclip_spark.index.merge import add_ids, global_ids
from metaclip_spark.inputs.labels import run_name
from metaclip_spark.formats.urls import request_urls
from metaclip_spark.run.stats import Stats
from metaclip_spark.steps.base import Step
from metaclip_spark.steps.drops import BALANCE

(URL_UNENCODABLE,) = BALANCE      # the balance step's one counted drop reason

READ_BATCH_ROWS = 64 * 1024


@dataclass
class GroupResult:
    group: int
    output: str | None
    rows_in: int
    rows_out: int
    expected: float
    entry_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))  # kept matches: ids
    counts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))     # and their counts
    file_rows: list = field(default_factory=list)        # rows read from each pool file (checked by the driver)
    url_unencodable: int = 0                              # kept rows left out: no request form (URL_UNENCODABLE)
    lang_rows: list = field(default_factory=list)        # per language of the space: rows read,
    lang_kept: list = field(default_factory=list)        # rows curated,
    lang_expected: list = field(default_factory=list)    # expected rows curated


def iter_pool_batches(uri: str, columns: list[str] | None = None, batch_rows: int = READ_BATCH_ROWS):
    fs, path = resolve(uri)
    with fs.open_input_file(path) as fh:
        # one core per task: pyarrow's decoding threads only add CPU time (x1.8 measured)
        for batch in pq.ParquetFile(fh).iter_batches(batch_size=batch_rows, columns=columns, use_threads=False):
            yield batch


def plan_groups(files: list[tuple[str, int]], pool_rows_per_file: int) -> list[list[str]]:
    """Consecutive pool files packed into groups of about ``pool_rows_per_file`` rows
    (a larger file forms a group of its own); files without rows are left out."""
    groups: list[list[str]] = []
    current: list[str] = []
    rows = 0
    for uri, n in files:
        if n <= 0:
            continue
        if current and rows + n > pool_rows_per_file:
            groups.append(current)
            current, rows = [], 0
        current.append(uri)
        rows += n
    if current:
        groups.append(current)
    return groups


class Downloadable(Step):
    """The balance step's last part: drawn rows -> their curated form (:func:`downloadable`);
    rows whose URL has no request form are dropped as URL_UNENCODABLE."""

    name = "balance"
    section = "balance"

    def __init__(self, seed: int):
        self.seed = seed

    def apply(self, kept: pa.Table):
        table, bad = downloadable(kept, self.seed)
        return table, table.num_rows, {URL_UNENCODABLE: bad}


def dropped_summary(url_unencodable: int) -> dict:
    """``stats/balance.json`` ``dropped``: the balance step's reasons by name, as stage 1's
    ``dropped`` (no ``dropped.`` prefix, the registry's names; zeros kept)."""
    stats = Stats()
    stats.drop(URL_UNENCODABLE, int(url_unencodable))
    return stats.dropped()


def downloadable(kept: pa.Table, seed: int, order="key_hash") -> tuple[pa.Table, int]:
    """The curated form of kept pool rows: ``url`` as a browser requests it (urls.request_url;
    rows whose URL has none are left out and counted), rows in the seeded shuffled order of
    ``balancing.order_keys`` (ties, i.e. the same pair twice, in their pool order), so that a
    downloader does not hit one page's or host's images in a burst.

    ``order``: the key the order is drawn from, a column name (default ``key_hash``, the pair) or
    one key per row of ``kept`` (an int64/uint64 array, e.g. the image key of index rows)."""
    keys = kept.column(order) if isinstance(order, str) else order
    keys = order_keys(keys, seed) if kept.num_rows else np.zeros(0, np.uint64)
    urls, ok = request_urls(kept.column("url"))
    kept = kept.set_column(kept.schema.get_field_index("url"), kept.schema.field("url"), urls)
    bad = int(len(ok) - ok.sum())
    if bad:
        kept = kept.filter(pa.array(ok))
        keys = keys[ok]
    order_ = np.lexsort((np.arange(kept.num_rows), keys))
    return kept.take(order_), bad


def language_codes(table, space) -> np.ndarray:
    """Index into ``space.languages`` of each row's ``lang`` (absent: en)."""
    if space is None or len(space.languages) == 1:
        return np.zeros(table.num_rows, np.int64)
    langs = table.column("lang") if "lang" in table.schema.names else pa.array(["en"] * table.num_rows)
    return pc.index_in(langs, value_set=pa.array(space.languages, pa.string())).to_numpy(
        zero_copy_only=False).astype(np.int64)


def balance_group(group: int, files: list[str], out_uri: str, probs: np.ndarray, seed: int,
                  space=None) -> GroupResult:
    """Sample the pool rows of ``files`` into ``out_uri`` in their curated form (:func:`downloadable`);
    empty results write no file. ``probs`` over the global ids of ``space`` (a LanguageSpace; None:
    English): each row is drawn with its ids globalised by its ``lang`` (one draw per (pair,
    global id)); rows keep their local ids."""
    rows_in, expected, kept, file_rows = 0, 0.0, [], []
    n_lang = len(space.languages) if space is not None else 1
    lang_rows, lang_expected = np.zeros(n_lang, np.int64), np.zeros(n_lang)
    log_q, thresholds = log_miss(probs), draw_thresholds(probs)   # once per group, not per batch
    for uri in files:
        file_rows.append(0)
        for batch in iter_pool_batches(uri):
            file_rows[-1] += batch.num_rows
            rows_in += batch.num_rows
            gids = global_ids(batch, space)
            keep_p = keep_probability(gids, None, log_q)
            expected += float(keep_p.sum())
            codes = language_codes(batch, space)
            lang_rows += np.bincount(codes, minlength=n_lang)
            lang_expected += np.bincount(codes, weights=keep_p, minlength=n_lang)
            rows = sample_batch(batch, probs, seed, thresholds=thresholds, entry_ids=gids)
            if rows.num_rows:
                rows = pa.Table.from_batches([rows])
                if rows.num_columns < len(POOL_SCHEMA):   # a pool written before image_id, text_hash, crawl
                    rows = add_ids(rows, run_name(uri.rsplit("/", 2)[0]))
                kept.append(rows.cast(POOL_SCHEMA))
    table, unencodable = downloadable(pa.concat_tables(kept) if kept else POOL_SCHEMA.empty_table(), seed)
    kept_ids = [pc.list_flatten(global_ids(table, space)).to_numpy()] if table.num_rows else []
    lang_kept = np.bincount(language_codes(table, space), minlength=n_lang)
    sink = ParquetSink(out_uri, POOL_SCHEMA)
    try:
        sink.write(table)
    except BaseException:
        sink.abort()
        raise
    if sink.rows:
        sink.commit()
    else:
        sink.abort()
    flat = np.concatenate(kept_ids) if kept_ids else np.zeros(0, np.int32)
    ids, counts = np.unique(flat, return_counts=True)
    return GroupResult(group, out_uri if sink.rows else None, rows_in, sink.rows, expected,
                       ids.astype(np.int32), counts.astype(np.int64), file_rows, unencodable,
                       lang_rows.tolist(), lang_kept.tolist(), lang_expected.tolist())


def balance_stats(counts: np.ndarray, space, ts: dict, p: float, files: list, pool_key: str = "lang_rows") -> dict:
    """stats/balance.json's count statistics: section 6's BalanceSummary (English mode: at t, as
    before; worldwide: every language at its own t, ``t`` = en's), ``languages`` (per language
    ``balance.language_stats`` with the group results ``files``' per-language rows ``pool_key``,
    ``lang_kept`` and ``lang_expected`` summed) and ``tail_share_en`` (p: en's tail share at t_en,
    which fixes every other language's t)."""
    n = len(space.languages)

    def total(key, dtype):
        out = np.zeros(n, dtype)
        for f in files:
            if f.get(key):
                out += np.asarray(f[key], dtype)
        return out

    t_en = ts.get("en")
    if space.languages == ("en",):
        out = BalanceSummary.from_counts(counts, t_en).to_dict()
    else:
        c, tv = np.asarray(counts, np.int64), t_vector(ts, space)
        tot, head = int(c.sum()), c > tv
        out = {"t": t_en, "n_entries": int(c.size), "total_matches": tot,
               "zero_count_entries": int(np.count_nonzero(c == 0)), "head_entries": int(np.count_nonzero(head)),
               "head_share": int(c[head].sum()) / tot if tot else 0.0,
               "tail_share": int(c[c < tv].sum()) / tot if tot else 0.0}
    out["languages"] = language_stats(counts, space, ts, total(pool_key, np.int64), total("lang_kept", np.int64),
                                      total("lang_expected", np.float64))
    out["tail_share_en"] = float(p)
    return out
