"""Merging pool rows into index buckets (docs/index.md, steps 2 and 3): Arrow and numpy only.

- :func:`add_ids` gives pool rows written before stage 1 wrote ``image_id``, ``text_hash`` and
  ``crawl`` those columns (``crawl`` = the ``CC-MAIN-YYYY-WW`` id in the row's ``source``, else
  the pool's label).
- :func:`aggregate_occurrences` groups pool rows by (image_id, text_hash): the reference of the
  Spark SQL aggregation of ``spark/index_job.py`` (same rows), usable for small inputs.
- :func:`merge_bucket` merges a bucket of the previous release with the bucket's aggregated new
  rows: rows of one (image_id, text_hash) combine (occurrences add, crawls union, the first
  provenance is the smallest (first_crawl, first_source, first_record_offset, url, key_hash,
  first_page_url), nulls first, as Spark orders structs), rows are sorted by (image_id,
  text_hash) and an image keeps the text of its ``max_texts`` smallest text hashes only.

Combining is associative and commutative, so merging A then B gives the rows of merging A and B
at once, and the same bytes whatever the partitioning.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from metaclip_spark.index import ids
from metaclip_spark.index.schema import INDEX_SCHEMA

__all__ = ["CRAWL_RE", "ID_COLUMNS", "add_ids", "crawl_labels", "aggregate_occurrences", "merge_bucket", "top_repeated",
           "BucketResult", "sparse_counts"]

CRAWL_RE = r"(?P<crawl>CC-MAIN-\d{4}-\d{2})"
ID_COLUMNS = ("image_id", "text_hash", "crawl")
# first provenance order (then the rest of Spark's struct: page_url, text, entry_ids, lid_score,
# which are equal for rows equal on these)
FIRST = ("first_crawl", "first_source", "first_record_offset", "url", "key_hash", "first_page_url")
POOL_FIRST = ("crawl", "source", "record_offset", "url", "key_hash", "page_url")


def crawl_labels(sources, fallback: str) -> pa.Array:
    """The CC-MAIN-YYYY-WW crawl id in each source, else ``fallback``."""
    if isinstance(sources, pa.ChunkedArray):
        sources = sources.combine_chunks()
    found = pc.struct_field(pc.extract_regex(sources, CRAWL_RE), [0])
    return pc.fill_null(found, pa.scalar(fallback, pa.string()))


def add_ids(table: pa.Table, label: str) -> pa.Table:
    """``table`` (pool rows) with image_id, text_hash and crawl computed where absent."""
    names = table.column_names
    if "image_id" not in names:
        table = table.append_column("image_id", ids.image_ids(table.column("url")))
    if "text_hash" not in names:
        table = table.append_column("text_hash", pa.array(
            ids.text_hashes(table.column("image_id"), table.column("text")), pa.int64()))
    if "crawl" not in names:
        table = table.append_column("crawl", crawl_labels(table.column("source"), label))
    return table


def _sort(table: pa.Table, keys) -> pa.Table:
    order = pc.sort_indices(table, sort_keys=[(k, "ascending", "at_start") for k in keys])
    return table.take(order)


def _starts(table: pa.Table, keys) -> np.ndarray:
    """Row numbers where the values of ``keys`` change (``table`` sorted by them; keys non-null)."""
    n = table.num_rows
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    change = np.zeros(n, dtype=bool)
    change[0] = True
    for k in keys:
        col = table.column(k)
        change[1:] |= pc.not_equal(col.slice(1), col.slice(0, n - 1)).to_numpy(zero_copy_only=False)
    return np.flatnonzero(change)


def _group_of(starts: np.ndarray, n: int) -> np.ndarray:
    mark = np.zeros(n, dtype=np.int64)
    mark[starts] = 1
    return np.cumsum(mark) - 1


def _distinct_lists(groups: np.ndarray, values: pa.Array, n_groups: int) -> pa.Array:
    """list<string> per group: the sorted distinct non-null ``values`` of its rows."""
    t = pa.table({"g": pa.array(groups, pa.int64()), "v": values}).filter(pc.is_valid(values))
    t = _sort(t, ("g", "v"))
    keep = _starts(t, ("g", "v"))
    t = t.take(keep)
    lens = np.bincount(t.column("g").to_numpy(), minlength=n_groups) if t.num_rows else np.zeros(n_groups, np.int64)
    offsets = np.concatenate([[0], np.cumsum(lens)]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), t.column("v").combine_chunks().cast(pa.string()))


def _index_table(rep: pa.Table, cols: dict) -> pa.Table:
    return pa.table({name: cols[name] if name in cols else rep.column(name) for name in INDEX_SCHEMA.names},
                    schema=INDEX_SCHEMA)


def aggregate_occurrences(pool_table: pa.Table, label: str = "") -> pa.Table:
    """Pool rows grouped by (image_id, text_hash) -> INDEX_SCHEMA rows sorted by (image_id,
    text_hash), every text kept (the K limit is :func:`merge_bucket`'s)."""
    t = add_ids(pool_table, label)
    t = _sort(t, ("image_id", "text_hash") + POOL_FIRST)
    starts = _starts(t, ("image_id", "text_hash"))
    n = t.num_rows
    rep = t.take(starts)
    occ = np.diff(np.append(starts, n)).astype(np.int64)
    crawls = _distinct_lists(_group_of(starts, n), t.column("crawl").combine_chunks(), len(starts))
    rep = rep.rename_columns(["first_" + c if c in ("crawl", "source", "record_offset", "page_url") else c
                              for c in rep.column_names])
    return _index_table(rep, {"occurrences": pa.array(occ, pa.int64()), "crawls": crawls})


def sparse_counts(entry_ids, weights=None) -> tuple[np.ndarray, np.ndarray]:
    """(ids, counts) of the non-zero entry counts of a list<int32> column (each list weighted)."""
    if isinstance(entry_ids, pa.ChunkedArray):
        entry_ids = entry_ids.combine_chunks()
    values = pc.list_flatten(entry_ids).to_numpy(zero_copy_only=False)
    if not len(values):
        return np.zeros(0, np.int32), np.zeros(0, np.int64)
    if weights is None:
        dense = np.bincount(values)
    else:
        lens = pc.fill_null(pc.list_value_length(entry_ids), 0).to_numpy(zero_copy_only=False)
        dense = np.zeros(int(values.max()) + 1, np.int64)
        np.add.at(dense, values, np.repeat(np.asarray(weights, np.int64), lens))
    nz = np.flatnonzero(dense)
    return nz.astype(np.int32), dense[nz].astype(np.int64)


@dataclass
class BucketResult:
    rows: int = 0                    # distinct (image_id, text_hash) in the merged bucket
    images: int = 0
    occurrences: int = 0             # pool rows over every merged pool
    texts_stored: int = 0
    new_pairs: int = 0               # rows new to the index
    new_images: int = 0
    input_pairs: int = 0             # the new rows (this merge's input)
    input_images: int = 0
    input_occurrences: int = 0
    pair_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))     # entries of new pairs
    pair_counts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    occ_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))      # entries x occurrences
    occ_counts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))   # of the new rows
    new_images_per_crawl: dict = field(default_factory=dict)   # crawl -> images new to the index
    top: list = field(default_factory=list)     # [{image_id, url, text, occurrences, pairs}]


def _empty() -> pa.Table:
    return INDEX_SCHEMA.empty_table()


def merge_bucket(old: pa.Table | None, new: pa.Table, max_texts: int, top: int = 20) -> tuple[pa.Table, BucketResult]:
    """Merge ``new`` (aggregated new rows, INDEX_SCHEMA) into ``old`` (the previous release's
    bucket, or None) -> (merged bucket, its statistics)."""
    old = _empty() if old is None else old.select(INDEX_SCHEMA.names).cast(INDEX_SCHEMA)
    new = new.select(INDEX_SCHEMA.names).cast(INDEX_SCHEMA)
    res = BucketResult(input_pairs=new.num_rows,
                       input_occurrences=int(pc.sum(new.column("occurrences")).as_py() or 0))
    if new.num_rows:
        res.input_images = pc.count_distinct(new.column("image_id")).as_py()
        res.occ_ids, res.occ_counts = sparse_counts(new.column("entry_ids"), new.column("occurrences").to_numpy())
    both = pa.concat_tables([old, new]).append_column(
        "_new", pa.array(np.concatenate([np.zeros(old.num_rows, np.int8), np.ones(new.num_rows, np.int8)])))
    n = both.num_rows
    if n == 0:
        return _empty(), res
    s = _sort(both, ("image_id", "text_hash") + FIRST)
    starts = _starts(s, ("image_id", "text_hash"))
    g = len(starts)
    group = _group_of(starts, n)
    rep = s.take(starts)
    occ = np.add.reduceat(s.column("occurrences").to_numpy(), starts).astype(np.int64)
    all_new = np.minimum.reduceat(s.column("_new").to_numpy(), starts) == 1
    crawls = _distinct_lists(group[pc.list_parent_indices(s.column("crawls").combine_chunks()).to_numpy()],
                             pc.list_flatten(s.column("crawls").combine_chunks()), g)
    img_starts = _starts(rep, ("image_id",))
    image = _group_of(img_starts, g)
    rank = np.arange(g) - img_starts[image]
    text = pc.if_else(pa.array(rank < max_texts), rep.column("text"), pa.scalar(None, pa.string()))
    merged = _index_table(rep, {"text": text, "occurrences": pa.array(occ, pa.int64()), "crawls": crawls})

    res.rows, res.images, res.occurrences = g, len(img_starts), int(occ.sum())
    res.texts_stored = g - merged.column("text").null_count
    res.new_pairs = int(all_new.sum())
    res.pair_ids, res.pair_counts = sparse_counts(rep.column("entry_ids").filter(pa.array(all_new)))
    new_image = np.minimum.reduceat(all_new.astype(np.int8), img_starts) == 1
    res.new_images = int(new_image.sum())
    if res.new_images:
        mask = new_image[image]
        t = pa.table({"i": pa.array(image[mask]), "c": rep.column("first_crawl").filter(pa.array(mask))})
        t = t.take(pc.sort_indices(t, sort_keys=[("i", "ascending", "at_end"), ("c", "ascending", "at_end")]))
        firsts = pc.fill_null(t.column("c").take(pa.array(_starts(t, ("i",)))), "")
        res.new_images_per_crawl = {v["values"]: int(v["counts"]) for v in pc.value_counts(firsts).to_pylist()}
    if top > 0:
        img_occ = np.add.reduceat(occ, img_starts)
        pairs = np.diff(np.append(img_starts, g))
        for i in np.lexsort((np.arange(len(img_starts)), -img_occ))[:top]:
            r = int(img_starts[i])
            res.top.append({"image_id": merged.column("image_id")[r].as_py(), "url": merged.column("url")[r].as_py(),
                            "text": merged.column("text")[r].as_py(), "occurrences": int(img_occ[i]),
                            "pairs": int(pairs[i])})
    return merged, res


def top_repeated(tops: list[list[dict]], n: int) -> list[dict]:
    """The ``n`` most repeated images of several buckets' ``top`` lists."""
    rows = [r for t in tops for r in t]
    return sorted(rows, key=lambda r: (-r["occurrences"], r["image_id"]))[:n]
