"""Merging pool rows into index buckets (docs/index.md, steps 2 and 3): Arrow and numpy only.

- :func:`add_ids` gives pool rows written before stage 1 wrote ``image_id``, ``text_hash`` and
  ``crawl`` those columns (``crawl`` = the ``CC-MAIN-YYYY-WW`` id in the row's ``source``, else
  the pool's label), and ``text_field``/``lang`` (alt, en) to rows written before worldwide mode.
- Index rows keep local ``entry_ids`` with their ``lang`` (from the first provenance row; one text
  has one language); counts are over global ids (:func:`global_ids`, ``space`` of merge_bucket).
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
from metaclip_spark.index import keys as keys_
from metaclip_spark.index.schema import INDEX_SCHEMA
from metaclip_spark.inputs.labels import CC_ID_PATTERN

__all__ = ["CRAWL_RE", "ID_COLUMNS", "add_ids", "with_languages", "global_ids", "crawl_labels", "aggregate_occurrences", "aggregate_file",
           "merge_bucket", "top_repeated",
           "BucketResult", "sparse_counts"]

CRAWL_RE = r"(?P<crawl>%s)" % CC_ID_PATTERN          # the crawl id of inputs/labels.py
ID_COLUMNS = ("image_id", "text_hash", "crawl")
# first provenance order (then the rest of Spark's struct: page_url, text, entry_ids, lid_score,
# which are equal for rows equal on these)
FIRST = ("first_crawl", "first_source", "first_record_offset", "url", "key_hash", "first_page_url")
POOL_FIRST = ("crawl", "source", "record_offset", "url", "key_hash", "page_url")


LANGUAGE_DEFAULTS = (("text_field", "alt"), ("lang", "en"))   # rows written before these columns


def with_languages(table: pa.Table) -> pa.Table:
    """``table`` with ``text_field`` and ``lang`` appended where absent (English mode: alt, en)."""
    for name, value in LANGUAGE_DEFAULTS:
        if name not in table.column_names:
            table = table.append_column(name, pa.array([value] * table.num_rows, pa.string()))
    return table


def global_ids(table, space=None):
    """The rows' ``entry_ids`` as global ids of ``space`` (metadata/languages.LanguageSpace) by their
    ``lang`` (absent: en); None or an English space: the column itself."""
    ids_ = table.column("entry_ids")
    if space is None or (len(space.languages) == 1 and space.offsets[0] == 0):
        return ids_
    names = table.schema.names
    langs = table.column("lang") if "lang" in names else ["en"] * table.num_rows
    return space.globalize(langs, ids_)


def crawl_labels(sources, fallback: str) -> pa.Array:
    """The CC-MAIN-YYYY-WW crawl id in each source, else ``fallback``."""
    if isinstance(sources, pa.ChunkedArray):
        sources = sources.combine_chunks()
    found = pc.struct_field(pc.extract_regex(sources, CRAWL_RE), [0])
    return pc.fill_null(found, pa.scalar(fallback, pa.string()))


def add_ids(table: pa.Table, label: str) -> pa.Table:
    """``table`` (pool rows) with image_id, text_hash and crawl computed where absent, then
    text_field and lang (:func:`with_languages`: alt, en) where absent."""
    table = _add_ids(table, label)
    return with_languages(table)


def _add_ids(table: pa.Table, label: str) -> pa.Table:
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
    per_crawl: dict = field(default_factory=dict)     # crawl -> [occurrences, pairs, images] of the new rows
    top: list = field(default_factory=list)     # [{image_id, url, text, occurrences, pairs}]


def _empty() -> pa.Table:
    return INDEX_SCHEMA.empty_table()


def _one(table: pa.Table) -> pa.Table:
    """``table`` with single-chunk columns."""
    return table.combine_chunks() if any(c.num_chunks != 1 for c in table.columns) else table


def _provenance_order(group_keys: list, table: pa.Table, names) -> np.ndarray:
    """Row order that puts the rows of each group (equal numeric ``group_keys``: hi, lo,
    text_hash[, crawl rank]) together, each group's rows by the first provenance ``names``
    (crawl, source, record_offset, url, key_hash, page_url columns of ``table``), nulls first.
    The groups come in hash order (sort them afterwards where it matters) and only each group's
    first row is placed (the rest of a group in any order); url / key_hash / page_url are
    compared on the rows still tied only."""
    crawl, source, offset, url, key_hash, page_url = (table.column(c) for c in names)
    keys = [keys_.mix(*group_keys)] + list(group_keys)
    keys += [keys_.ranks(crawl)[0], keys_.ranks(source)[0]] + keys_.nullable(offset)
    kh = keys_.nullable(key_hash)

    def url_key(rows, run):
        # within a group (one image and text) key_hash is the hash of (url, text): the runs whose
        # rows all have one key_hash have one url; the others are ranked on their urls
        differ = np.zeros(len(rows), bool)
        for k in kh:
            v = k[rows]
            differ[1:] |= v[1:] != v[:-1]
        mark = np.zeros(int(run[-1]) + 1, bool)
        mark[run[1:][differ[1:] & (run[1:] == run[:-1])]] = True
        out = np.zeros(len(rows), np.int64)
        if mark.any():
            some = mark[run]
            out[some] = keys_.ranks(url.take(pa.array(rows[some])))[0]
        return out

    keys.append(url_key)
    keys.append(lambda rows, run: _null_key(key_hash.take(pa.array(rows))))
    keys.append(lambda rows, run: keys_.ranks(page_url.take(pa.array(rows)))[0])
    return keys_.sort_order(keys, groups=1 + len(group_keys))


def _null_key(a) -> np.ndarray:
    """A nullable int64 column as one sortable key (nulls first): rank of (valid, value)."""
    if not a.null_count:
        return keys_.nullable(a)[0]
    valid, value = keys_.nullable(a)
    order = np.lexsort((value, valid))
    out = np.empty(len(a), np.int64)
    v, x = valid[order], value[order]
    out[order] = np.cumsum(np.concatenate([[1], (v[1:] != v[:-1]) | (x[1:] != x[:-1])]))
    return out


def aggregate_file(pool_table: pa.Table, label: str = "", n_buckets: int | None = None) -> pa.Table:
    """Pool rows (one file) grouped by (image_id, text_hash, crawl) -> INDEX_SCHEMA rows (in the
    order of their first provenance row in the file; ``crawls`` = [crawl], the first provenance
    row's columns, occurrences = the group's rows), plus ``bucket`` (int32) when ``n_buckets``
    is given. Columns read as dictionaries (source, crawl, page_url) are accepted."""
    if "crawl" not in pool_table.column_names and pa.types.is_dictionary(pool_table.schema.field("source").type):
        pool_table = pool_table.set_column(pool_table.column_names.index("source"), "source",
                                           pool_table.column("source").cast(pa.string()))
    t = add_ids(pool_table, label)
    n = t.num_rows
    hi, lo = keys_.id_keys(t.column("image_id"))
    th = t.column("text_hash").to_numpy()
    crawl_rank = keys_.ranks(t.column("crawl"))[0]
    order = _provenance_order([hi, lo, th, crawl_rank], t, POOL_FIRST)
    st = keys_.starts([hi, lo, th, crawl_rank], order)
    first = order[st]
    perm = np.argsort(first)                                 # groups in file order: a filter, no take
    mask = np.zeros(n, bool)
    mask[first] = True
    rep = t.filter(pa.array(mask))
    for name in ("crawl", "source", "page_url"):
        if pa.types.is_dictionary(rep.schema.field(name).type):
            rep = rep.set_column(rep.column_names.index(name), name, rep.column(name).cast(pa.string()))
    occ = np.diff(np.append(st, n)).astype(np.int64)[perm]
    crawl = rep.column("crawl").combine_chunks()
    crawls = pa.ListArray.from_arrays(pa.array(np.arange(len(st) + 1, dtype=np.int32)), crawl)
    rep = rep.rename_columns(["first_" + c if c in ("crawl", "source", "record_offset", "page_url") else c
                              for c in rep.column_names])
    out = _index_table(rep, {"occurrences": pa.array(occ, pa.int64()), "crawls": crawls})
    if n_buckets is not None:
        b = (lo[first[perm]] % np.uint64(n_buckets)).astype(np.int32)
        out = out.append_column("bucket", pa.array(b, pa.int32()))
    return out


def _distinct(values: np.ndarray, bound: int) -> np.ndarray:
    """The sorted distinct values of a non-negative int64 array (values < ``bound``)."""
    if bound <= max(1 << 24, 8 * len(values)):
        present = np.zeros(bound, bool)
        present[values] = True
        return np.flatnonzero(present)
    v = np.sort(values)
    return v[np.concatenate([[True], v[1:] != v[:-1]])] if len(v) else v


def _sorted_lists(group: np.ndarray, values, n_groups: int) -> pa.Array:
    """list<string> per group: the sorted distinct non-null ``values`` of its rows."""
    rank, uniq = keys_.ranks(values)
    m = np.int64(len(uniq) + 1)
    ok = rank > 0
    key = _distinct(group[ok].astype(np.int64) * m + rank[ok], n_groups * m)
    lens = np.bincount(key // m, minlength=n_groups) if len(key) else np.zeros(n_groups, np.int64)
    offsets = np.concatenate([[0], np.cumsum(lens)]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), uniq.take(pa.array(key % m - 1)).cast(pa.string()))


def _per_crawl(new_rows: np.ndarray, pair: np.ndarray, image_of_pair: np.ndarray, occurrences: np.ndarray,
               crawls) -> dict:
    """{crawl: [occurrences, distinct pairs, distinct images]} of the new rows (rows numbered
    ``new_rows`` of ``crawls``, a list column; exact when each new row has one crawl)."""
    sub = crawls.take(pa.array(new_rows))
    parent = new_rows[pc.list_parent_indices(sub).to_numpy()]
    rank, uniq = keys_.ranks(pc.list_flatten(sub))
    if not len(uniq):
        return {}
    m = np.int64(len(uniq) + 1)
    g = pair[parent].astype(np.int64)
    occ = np.bincount(rank, weights=occurrences[parent], minlength=int(m))
    pairs = np.bincount(_distinct(g * m + rank, (int(pair.max()) + 1) * m) % m, minlength=int(m))
    imgs = np.bincount(_distinct(image_of_pair[g] * m + rank, (int(image_of_pair.max()) + 1) * m) % m,
                       minlength=int(m))
    return {c: [int(round(occ[r])), int(pairs[r]), int(imgs[r])]
            for r, c in enumerate(uniq.to_pylist(), start=1)}


def merge_bucket(old: pa.Table | None, new: pa.Table, max_texts: int, top: int = 20,
                 space=None) -> tuple[pa.Table, BucketResult]:
    """Merge ``new`` (new rows, INDEX_SCHEMA, possibly several per (image_id, text_hash): one per
    pool file and crawl) into ``old`` (the previous release's bucket, or None) -> (merged bucket,
    its statistics; entry counts over the global ids of ``space``, None: English)."""
    old = _empty() if old is None else with_languages(old).select(INDEX_SCHEMA.names).cast(INDEX_SCHEMA)
    new = with_languages(new).select(INDEX_SCHEMA.names).cast(INDEX_SCHEMA)
    res = BucketResult(input_occurrences=int(pc.sum(new.column("occurrences")).as_py() or 0))
    if new.num_rows:
        res.occ_ids, res.occ_counts = sparse_counts(global_ids(new, space), new.column("occurrences").to_numpy())
    both = _one(pa.concat_tables([old, new]))
    n = both.num_rows
    if n == 0:
        return _empty(), res
    is_new = np.concatenate([np.zeros(old.num_rows, np.int8), np.ones(new.num_rows, np.int8)])
    hi, lo = keys_.id_keys(both.column("image_id"))
    th = both.column("text_hash").to_numpy()
    order = _provenance_order([hi, lo, th], both, FIRST)
    starts = keys_.starts([hi, lo, th], order)
    g = len(starts)
    first = order[starts]
    gperm = keys_.sort_order([hi[first], lo[first], th[first]])      # groups by (image_id, text_hash)
    first = first[gperm]
    rep = both.take(pa.array(first))
    occ = np.add.reduceat(both.column("occurrences").to_numpy()[order], starts).astype(np.int64)[gperm]
    new_sorted = is_new[order]
    all_new = (np.minimum.reduceat(new_sorted, starts) == 1)[gperm]
    any_new = (np.maximum.reduceat(new_sorted, starts) == 1)[gperm]
    rank_of_group = np.empty(g, np.int64)
    rank_of_group[gperm] = np.arange(g)
    pair = np.empty(n, np.int64)
    pair[order] = rank_of_group[keys_.group_of(starts, n)]
    crawls_col = both.column("crawls").chunk(0)
    crawls = _sorted_lists(pair[pc.list_parent_indices(crawls_col).to_numpy()], pc.list_flatten(crawls_col), g)
    img_starts = keys_.starts([hi[first], lo[first]])
    image = keys_.group_of(img_starts, g)
    rank = np.arange(g) - img_starts[image]
    text = pc.if_else(pa.array(rank < max_texts), rep.column("text"), pa.scalar(None, pa.string()))
    merged = _one(_index_table(rep, {"text": text, "occurrences": pa.array(occ, pa.int64()), "crawls": crawls}))

    res.rows, res.images, res.occurrences = g, len(img_starts), int(occ.sum())
    res.texts_stored = g - merged.column("text").null_count
    res.input_pairs = int(any_new.sum())
    res.input_images = int((np.maximum.reduceat(any_new.astype(np.int8), img_starts) == 1).sum())
    if new.num_rows:
        res.per_crawl = _per_crawl(np.arange(old.num_rows, n), pair, image, both.column("occurrences").to_numpy(),
                                   crawls_col)
    res.new_pairs = int(all_new.sum())
    res.pair_ids, res.pair_counts = sparse_counts(global_ids(rep.filter(pa.array(all_new)), space))
    new_image = np.minimum.reduceat(all_new.astype(np.int8), img_starts) == 1
    res.new_images = int(new_image.sum())
    if res.new_images:
        c_rank, c_uniq = keys_.ranks(rep.column("first_crawl"))
        c_rank = np.where(c_rank == 0, len(c_uniq) + 1, c_rank)        # null crawls last
        first_c = np.minimum.reduceat(c_rank, img_starts)[new_image]
        names = c_uniq.to_pylist() + [""]
        counts = np.bincount(first_c, minlength=len(names) + 1)
        res.new_images_per_crawl = {names[r - 1]: int(counts[r]) for r in range(1, len(names) + 1) if counts[r]}
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
