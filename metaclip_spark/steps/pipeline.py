"""Stage 1 for one input file, Spark-free: extract → English LID → match → pool Parquet.

``match_file`` and ``extract_file`` stream one WARC/WAT file and write one Parquet
file under a name derived from the input URI, so a retried task rewrites the same
file. They return a :class:`FileResult` with the file's statistics and its sparse
entry counts; the Spark glue in ``jobs/`` only distributes files and adds results up.
"""

from __future__ import annotations

import hashlib
import itertools
import time
import traceback
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Iterable, Iterator
from urllib.parse import urlsplit

import numpy as np
import pyarrow as pa

from metaclip_spark.steps import extract
from metaclip_spark.steps.draws import key_hashes
from metaclip_spark.inputs.io import open_binary
from metaclip_spark.steps.language import LanguageId
from metaclip_spark.steps.match import Matcher
from metaclip_spark.run.outputs import ParquetSink, join
from metaclip_spark.run.redact import scrub, scrub_uri
from metaclip_spark.run.schema import EXTRACT_SCHEMA, POOL_SCHEMA
from metaclip_spark.run.stats import Stats

MATCH_CACHE_MAX = 200_000   # texts remembered per file (alt texts repeat a lot)


@dataclass
class FileResult:
    source: str
    output: str | None
    rows: int
    stats: Stats
    entry_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))   # sparse counts: ids
    counts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))      # and their counts
    failed: str | None = None
    seconds: float = 0.0                                                          # wall time of the file


_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


def part_name(uri: str, suffix: str = ".parquet") -> str:
    """Deterministic output file name for an input URI: base name plus a short digest.

    Both come from the stored name ``scrub_uri(uri)`` (no credential reaches a file name);
    the base is the last path segment without query, its input extensions and any
    character but ASCII letters, digits and ``-_.``; one that does not start with a letter
    or digit gets ``part`` in front, so no name starts with ``_`` or ``.`` (files Parquet,
    Spark and Hadoop readers skip as hidden)."""
    name = scrub_uri(uri)
    path = urlsplit(name).path if "://" in name else name
    base = path.rstrip("/").rsplit("/", 1)[-1]
    stripped = None
    while stripped != base:
        stripped = base
        for ext in (".gz", ".warc", ".wat", ".arc"):
            if base.endswith(ext):
                base = base[: -len(ext)]
    base = "".join(c if c in _NAME_CHARS else "_" for c in base)[:80]
    if not base[:1].isalnum():
        base = "part" + base
    return "%s-%s%s" % (base, hashlib.sha1(name.encode("utf-8")).hexdigest()[:12], suffix)


def _stored(result: FileResult, uri: str, name: str) -> FileResult:
    """``result`` naming its input by its stored name (``scrub_uri``) instead of ``uri``."""
    result.source = name
    for err in result.stats.errors:
        if err.get("source") == uri:
            err["source"] = name
    return result


_URL, _TEXT, _DROP = itemgetter(0), itemgetter(1), itemgetter(2)


def _lid(lid: LanguageId, texts: list[str], memo: dict | None = None) -> tuple[list[str], np.ndarray]:
    """LID on the distinct texts of a batch, mapped back to every row. ``memo`` (text ->
    (label, score), one per file, bounded by MATCH_CACHE_MAX) skips texts seen in earlier
    batches: fastText scores each line on its own, so the result is the same."""
    if memo is None:
        memo = {}
    uniq = list(dict.fromkeys(texts))
    todo = [t for t in uniq if t not in memo]
    if len(memo) + len(todo) > MATCH_CACHE_MAX:
        memo.clear()
        todo = uniq
    if todo:
        labels, scores = lid.predict(todo)
        memo.update(zip(todo, zip(labels, scores.tolist())))
    got = [memo[t] for t in texts]
    return [g[0] for g in got], np.array([g[1] for g in got], dtype=np.float32)


def _run(uri: str, out_uri: str, schema: pa.Schema, body, policy=None) -> FileResult:
    """Shared frame: open the input, write the sink, turn unexpected failures into a result.
    An input read to its end without a single WARC record (empty, not gzip/WARC, an empty
    gzip ...) is a failed input too (``failed`` names its damage), with its counts kept."""
    stats = Stats()
    stats.add("inputs")
    sink = None
    start = time.perf_counter()
    try:
        sink = ParquetSink(out_uri, schema)
        with (open_binary(uri) if policy is None else open_binary(uri, policy)) as fh:   # policy: limits.read
            extra = body(fh, stats, sink)
            broken = getattr(getattr(fh, "raw", None), "failure", None)
        if broken is not None:   # the stream failed for good after its retries: the input failed
            raise broken
        sink.commit()
        failed = None
        if not stats["records_read"]:   # not one record (empty, not a WARC, ...): listed as failed, damage kept
            stats.add("inputs_failed")
            failed = scrub("no WARC record read: " + ("; ".join("%s: %s" % (e["kind"], e["message"])
                                                                for e in stats.errors[:3]) or "no error reported"))
        return FileResult(uri, out_uri, sink.rows, stats, failed=failed, seconds=time.perf_counter() - start, **extra)
    except Exception as exc:  # the input failed as a whole: recorded, never fatal to the task
        if sink is not None:
            sink.abort()
        message = scrub("%s: %s" % (type(exc).__name__, exc))
        stats = Stats()          # a failed input adds nothing but its failure (it is redone on rerun)
        stats.add("inputs")
        stats.add("inputs_failed")
        stats.error(uri, "input_failed", scrub(message + " | " + traceback.format_exc(limit=3)[-300:]))
        return FileResult(uri, None, 0, stats, failed=message, seconds=time.perf_counter() - start)


def _pair_batches(pages: Iterable[extract.Page], n: int) -> Iterator[dict]:
    """The pairs of consecutive pages as column lists (url, text, page_url, source,
    record_id, record_offset, drop), cut into batches of exactly ``n`` pairs (the last shorter)."""
    names = ("url", "text", "page_url", "source", "record_id", "record_offset", "drop")
    cols = {k: [] for k in names}
    url, text, page_url, source, record_id, offset, drop = (cols[k] for k in names)
    for src, purl, rid, off, cands in pages:
        k = len(cands)
        url.extend(map(_URL, cands))
        text.extend(map(_TEXT, cands))
        drop.extend(map(_DROP, cands))
        page_url.extend(itertools.repeat(purl, k))
        source.extend(itertools.repeat(src, k))
        record_id.extend(itertools.repeat(rid, k))
        offset.extend(itertools.repeat(off, k))
        while len(url) >= n:
            yield {k: v[:n] for k, v in cols.items()}
            for v in cols.values():
                del v[:n]
    if url:
        yield cols


def match_file(uri: str, out_dir: str, matcher: Matcher, lid: LanguageId,
               limits: extract.ExtractLimits, batch_size: int = 8192) -> FileResult:
    """Stage 1 on one file: the pool rows go to ``out_dir/<part_name(uri)>``."""
    stored = scrub_uri(uri)      # the input's stored name (rows, results); the task opens ``uri``

    def body(fh, stats: Stats, sink: ParquetSink) -> dict:
        cache: dict[str, list[int]] = {}
        lid_memo: dict = {}
        all_ids: list[np.ndarray] = []
        pages = extract.pages_from_file(fh, stats=stats, source=stored, limits=limits)
        for b in _pair_batches(pages, batch_size):
            texts = b["text"]
            labels, scores = _lid(lid, texts, lid_memo)
            english = np.fromiter((label == "en" for label in labels), bool, len(labels))
            confident = ~(scores < lid.threshold)      # as the per-row test was: NaN never "low"
            n_other = len(labels) - int(english.sum())
            keep = np.flatnonzero(english & confident).tolist()
            n_low = len(labels) - n_other - len(keep)
            rows, entry_ids = [], []
            for i in keep:
                text = texts[i]
                ids = cache.get(text)
                if ids is None:
                    ids = matcher.match(text)
                    if len(cache) < MATCH_CACHE_MAX:
                        cache[text] = ids
                if ids:
                    rows.append(i)
                    entry_ids.append(ids)
            n_en, n_none = len(keep), len(keep) - len(rows)
            for name, n in (("not_english", n_other), ("lid_low_score", n_low), ("no_match", n_none)):
                if n:
                    stats.drop(name, n)
            if n_en:
                stats.add("english", n_en)
            if rows:
                stats.add("matched", len(rows))
                cols = {k: [v[i] for i in rows] for k, v in b.items() if k != "drop"}
                cols["entry_ids"] = entry_ids
                cols["lid_score"] = scores[rows]
                cols["key_hash"] = key_hashes(cols["url"], cols["text"])
                batch = pa.RecordBatch.from_pydict(cols, schema=POOL_SCHEMA)
                sink.write(batch)
                all_ids.append(batch.column("entry_ids").values.to_numpy(zero_copy_only=False))
        flat = np.concatenate(all_ids) if all_ids else np.zeros(0, np.int32)
        ids, counts = np.unique(flat, return_counts=True)
        stats.add("pool_rows", sink.rows)
        return {"entry_ids": ids.astype(np.int32), "counts": counts.astype(np.int64)}

    return _stored(_run(uri, join(out_dir, part_name(uri)), POOL_SCHEMA, body, limits.read), uri, stored)


def extract_file(uri: str, out_dir: str, lid: LanguageId, limits: extract.ExtractLimits,
                 batch_size: int = 8192) -> FileResult:
    """Every pair candidate of one file with its LID label/score and its drop reason (if any)."""
    stored = scrub_uri(uri)

    def body(fh, stats: Stats, sink: ParquetSink) -> dict:
        pages = extract.pages_from_file(fh, stats=stats, source=stored, limits=limits, keep_dropped=True)
        lid_memo: dict = {}
        for b in _pair_batches(pages, batch_size):
            texts, drops = b["text"], b["drop"]
            live = [i for i, drop in enumerate(drops) if drop is None]
            labels, scores = _lid(lid, [texts[i] for i in live], lid_memo)
            cols = dict(b)
            cols["lid_label"] = lid_label = [None] * len(texts)
            cols["lid_score"] = lid_score = [None] * len(texts)
            for i, label, score in zip(live, labels, scores.tolist()):
                lid_label[i], lid_score[i] = label, score
                if label != "en":
                    drops[i] = "not_english"
                elif score < lid.threshold:
                    drops[i] = "lid_low_score"
                if drops[i]:
                    stats.drop(drops[i])
                else:
                    stats.add("english")
            sink.write(pa.RecordBatch.from_pydict(cols, schema=EXTRACT_SCHEMA))
        stats.add("extract_rows", sink.rows)
        return {}

    return _stored(_run(uri, join(out_dir, part_name(uri)), EXTRACT_SCHEMA, body, limits.read), uri, stored)
