"""Balancing over an image index release, Spark-free (docs/index.md "Balancing over the index",
docs/semantics.md sections 6 and 9): one bucket table (sorted by (image_id, text_hash)) -> the
kept rows in CURATED_INDEX_SCHEMA, vectorised in numpy/Arrow (no per-row Python).

- ``image`` (:func:`select_images`): the candidates are the rows with a stored text; per image the
  row with the smallest ``ids.choice_key(text_hash, seed)`` is its text (choice keys are a bijection
  of text hashes, so exactly one row per image); the image is kept iff
  ``draws.keep_mask(entry_ids, ids.image_key(image_id), p, seed)``: one draw per (seed, image, entry).
- ``pair`` (:func:`select_pairs`): every row with a stored text, drawn per section 6 with its
  ``key_hash`` (url, text).

:func:`choose_text` and :func:`keep_image` decide one image in pure Python (the reference the tests
hold the vectorised path to); :func:`curate_files` is one group of bucket files -> one curated file.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from metaclip_spark.index import ids, layout
from metaclip_spark.index.schema import CURATED_INDEX_SCHEMA
from metaclip_spark.run.outputs import ParquetSink
from metaclip_spark.steps import draws
from metaclip_spark.steps.balance import keep_probability, log_miss
from metaclip_spark.index.merge import global_ids
from metaclip_spark.steps.curated import downloadable, language_codes

__all__ = ["DEDUP_MODES", "select_images", "select_pairs", "select", "curated_rows", "curated_form",
           "choose_text", "keep_image", "Selection", "GroupResult", "curate_files", "read_bucket",
           "candidate_lists"]

DEDUP_MODES = ("image", "pair")
# what a balance reads of a bucket file (``crawls`` is not part of a curated row)
READ_COLUMNS = ["image_id", "text_hash", "text", "url", "key_hash", "entry_ids", "lid_score", "occurrences",
                "first_crawl", "first_source", "first_record_offset", "first_page_url", "text_field", "lang"]


@dataclass
class Selection:
    rows: pa.Table          # kept rows, CURATED_INDEX_SCHEMA, in bucket order
    candidates: int         # rows that could be drawn (image: images with a stored text; pair: stored rows)
    expected: float         # sum of the candidates' keep probabilities
    lang_candidates: np.ndarray = None   # per language of the space: candidates
    lang_expected: np.ndarray = None     # and their keep probabilities summed


# ------------------------------------------------------------------------------ one image, pure Python

def choose_text(text_hashes, seed: int) -> int:
    """The chosen text of one image: the text hash (among its stored texts) with the smallest
    ``ids.choice_key``."""
    return min((int(h) for h in text_hashes), key=lambda h: ids.choice_key(h, seed))


def keep_image(entry_ids, image_id: str, probs, seed: int, thresholds=None) -> bool:
    """Whether the image is kept with its chosen text's ``entry_ids`` (global ids: worldwide, the
    text's local ids plus its language's offset): one draw per (seed, image, global id)."""
    return draws.keeps(entry_ids, ids.image_key(image_id), probs, seed, thresholds)


# ------------------------------------------------------------------------------ vectorised

def _stored(table: pa.Table) -> pa.Table:
    text = table.column("text")
    return table.filter(pc.is_valid(text)) if text.null_count else table


def _image_starts(image_id) -> np.ndarray:
    """Start row of every run of equal image ids (the table is sorted by image_id)."""
    n = len(image_id)
    if n == 0:
        return np.zeros(0, np.int64)
    col = image_id.combine_chunks() if isinstance(image_id, pa.ChunkedArray) else image_id
    change = pc.not_equal(col.slice(1), col.slice(0, n - 1)).to_numpy(zero_copy_only=False)
    return np.concatenate([[0], np.flatnonzero(change) + 1]).astype(np.int64)


def _chosen_rows(table: pa.Table, seed: int) -> np.ndarray:
    """Row index of every image's chosen text (``table``: stored-text rows, sorted by image)."""
    n = table.num_rows
    if n == 0:
        return np.zeros(0, np.int64)
    starts = _image_starts(table.column("image_id"))
    ck = ids.choice_keys(table.column("text_hash").to_numpy(), seed)
    mins = np.minimum.reduceat(ck, starts)
    lens = np.diff(np.append(starts, n))
    return np.flatnonzero(ck == np.repeat(mins, lens))


def curated_rows(table: pa.Table) -> pa.Table:
    """Index rows -> CURATED_INDEX_SCHEMA (the first occurrence's provenance)."""
    col = table.column
    return pa.table([col("url"), col("text"), col("entry_ids"), col("image_id"), col("first_page_url"),
                     col("lid_score"), col("first_crawl"), col("first_source"), col("first_record_offset"),
                     col("occurrences"), col("key_hash"), col("text_hash"), col("text_field"), col("lang")],
                    schema=CURATED_INDEX_SCHEMA)


def _draw(cands: pa.Table, keys, probs, seed: int, thresholds, log_q, space) -> Selection:
    """The candidates drawn with their global ids (``space``; None: English), per-language sums."""
    gids = global_ids(cands, space)
    mask = draws.keep_mask(gids, keys, probs, seed, thresholds)
    kp = keep_probability(gids, probs, log_q) if len(gids) else np.zeros(0)
    codes, n = language_codes(cands, space), (len(space.languages) if space is not None else 1)
    return Selection(curated_rows(cands.filter(pa.array(mask))), cands.num_rows, float(kp.sum()) if len(kp) else 0.0,
                     np.bincount(codes, minlength=n), np.bincount(codes, weights=kp, minlength=n))


def select_images(table: pa.Table, probs, seed: int, thresholds=None, log_q=None, space=None) -> Selection:
    """dedup image over one bucket table: each image with a stored text at most once (drawn with
    its chosen text's language: the text's global ids)."""
    stored = _stored(table)
    chosen = stored.take(pa.array(_chosen_rows(stored, seed)))
    return _draw(chosen, ids.image_keys(chosen.column("image_id")), probs, seed, thresholds, log_q, space)


def select_pairs(table: pa.Table, probs, seed: int, thresholds=None, log_q=None, space=None) -> Selection:
    """dedup pair over one bucket table: every stored (image, text) row, section 6 draws by key_hash."""
    stored = _stored(table)
    return _draw(stored, stored.column("key_hash"), probs, seed, thresholds, log_q, space)


def select(table: pa.Table, dedup: str, probs, seed: int, thresholds=None, log_q=None, space=None) -> Selection:
    if dedup == "image":
        return select_images(table, probs, seed, thresholds, log_q, space)
    if dedup == "pair":
        return select_pairs(table, probs, seed, thresholds, log_q, space)
    raise ValueError("dedup must be image or pair over an index, got %r" % dedup)


def curated_form(rows: pa.Table, dedup: str, seed: int) -> tuple[pa.Table, int]:
    """Kept rows in the curated form of stage 2 (``curated.downloadable``): request-form URLs
    (URL_UNENCODABLE rows dropped and counted), seeded order of the image key (image) or the
    pair key (pair)."""
    order = ids.image_keys(rows.column("image_id")) if dedup == "image" else "key_hash"
    return downloadable(rows, seed, order)


def candidate_lists(table: pa.Table, dedup: str, seed: int, space=None):
    """The global-id lists of the candidates of one bucket table (for size models)."""
    stored = _stored(table)
    if dedup == "image":
        stored = stored.take(pa.array(_chosen_rows(stored, seed)))
    return global_ids(stored, space)


# ------------------------------------------------------------------------------ one group of bucket files

@dataclass
class GroupResult:
    group: int
    output: str | None
    rows_in: int                       # index rows read
    candidates: int
    rows_out: int
    images: int                        # distinct images curated
    expected: float
    entry_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))   # kept matches: ids
    counts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))      # and their counts
    file_rows: list = field(default_factory=list)
    url_unencodable: int = 0
    lang_rows: list = field(default_factory=list)        # per language: candidates,
    lang_kept: list = field(default_factory=list)        # rows curated,
    lang_expected: list = field(default_factory=list)    # expected rows curated


def read_bucket(uri: str, columns=None) -> pa.Table:
    """A whole bucket file with the columns balancing reads (its images must not be split)."""
    return layout.read_bucket_file(uri, columns or READ_COLUMNS)


def curate_files(group: int, files: list[str], out_uri: str, dedup: str, probs, seed: int,
                 space=None) -> GroupResult:
    """The bucket files of one group -> one curated file ``out_uri`` (no file when nothing is kept);
    ``probs`` over the global ids of ``space`` (None: English)."""
    thresholds, log_q = draws.draw_thresholds(probs), log_miss(probs)
    parts, rows_in, candidates, expected, file_rows = [], 0, 0, 0.0, []
    n_lang = len(space.languages) if space is not None else 1
    lang_rows, lang_expected = np.zeros(n_lang, np.int64), np.zeros(n_lang)
    for uri in files:
        table = read_bucket(uri)
        file_rows.append(table.num_rows)
        rows_in += table.num_rows
        sel = select(table, dedup, probs, seed, thresholds, log_q, space)
        candidates += sel.candidates
        expected += sel.expected
        lang_rows += sel.lang_candidates
        lang_expected += sel.lang_expected
        if sel.rows.num_rows:
            parts.append(sel.rows)
    kept = pa.concat_tables(parts) if parts else CURATED_INDEX_SCHEMA.empty_table()
    table, unencodable = curated_form(kept, dedup, seed)
    sink = ParquetSink(out_uri, CURATED_INDEX_SCHEMA)
    try:
        sink.write(table)
        sink.commit() if sink.rows else sink.abort()
    except BaseException:
        sink.abort()
        raise
    flat = pc.list_flatten(global_ids(table, space)).to_numpy() if table.num_rows else np.zeros(0, np.int32)
    eids, counts = np.unique(flat, return_counts=True)
    images = len(pc.unique(table.column("image_id"))) if table.num_rows else 0
    return GroupResult(group, out_uri if sink.rows else None, rows_in, candidates, sink.rows, images, expected,
                       eids.astype(np.int32), counts.astype(np.int64), file_rows, unencodable, lang_rows.tolist(),
                       np.bincount(language_codes(table, space), minlength=n_lang).tolist(), lang_expected.tolist())
