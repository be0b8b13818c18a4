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

from metaclip_spark.steps.balance import keep_probability, log_miss
from metaclip_spark.steps.draws import draw_thresholds, order_keys, sample_batch
from metaclip_spark.run.outputs import ParquetSink, resolve
from metaclip_spark.run.schema import POOL_SCHEMA
from metaclip_spark.index.merge import add_ids
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


def balance_group(group: int, files: list[str], out_uri: str, probs: np.ndarray, seed: int) -> GroupResult:
    """Sample the pool rows of ``files`` into ``out_uri`` in their curated form (:func:`downloadable`);
    empty results write no file."""
    rows_in, expected, kept, file_rows = 0, 0.0, [], []
    log_q, thresholds = log_miss(probs), draw_thresholds(probs)   # once per group, not per batch
    for uri in files:
        file_rows.append(0)
        for batch in iter_pool_batches(uri):
            file_rows[-1] += batch.num_rows
            rows_in += batch.num_rows
            expected += float(keep_probability(batch.column("entry_ids"), None, log_q).sum())
            rows = sample_batch(batch, probs, seed, thresholds=thresholds)
            if rows.num_rows:
                rows = pa.Table.from_batches([rows])
                if rows.num_columns < len(POOL_SCHEMA):   # a pool written before image_id, text_hash, crawl
                    rows = add_ids(rows, run_name(uri.rsplit("/", 2)[0]))
                kept.append(rows.cast(POOL_SCHEMA))
    table, unencodable = downloadable(pa.concat_tables(kept) if kept else POOL_SCHEMA.empty_table(), seed)
    kept_ids = [pc.list_flatten(table.column("entry_ids")).to_numpy()] if table.num_rows else []
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
                       ids.astype(np.int32), counts.astype(np.int64), file_rows, unencodable)
