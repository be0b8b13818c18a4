"""Stage 1 for one input file, Spark-free: the steps extract → language → match → pool Parquet.

``match_file`` and ``extract_file`` stream one WARC/WAT file and write one Parquet
file under a name derived from the input URI, so a retried task rewrites the same
file. They return a :class:`FileResult` with the file's statistics and its sparse
entry counts; the Spark glue in ``spark/`` only distributes files and adds results up.

Worldwide mode (SPEC section 10, docs/worldwide.md): ``match_file(..., world=WorldTask)``
runs the worldwide language step (every language, ``lang`` per text) and matches each text
against its language's metadata (``WorldMatcher.match_many(texts, langs)``: positions in that
language's list). The file's sparse counts are in GLOBAL ids (``LanguageSpace.globalize``), so
the driver adds them up into one dense vector exactly as in English mode; per-language pool
rows are counted under ``lang_matched.<lang>`` (:func:`matched_by_language`; the language step
counts ``lang_texts.<lang>``).
"""

from __future__ import annotations

import hashlib
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import urlsplit

import numpy as np
import pyarrow as pa

from metaclip_spark.steps import extract
from metaclip_spark.steps.draws import key_hashes
from metaclip_spark.index import ids
from metaclip_spark.inputs.io import open_binary
from metaclip_spark.inputs.labels import crawl_label
from metaclip_spark.steps.base import Step
from metaclip_spark.steps.drops import MATCH
from metaclip_spark.metadata.languages import ENGLISH, LanguageSpace
from metaclip_spark.steps.language import Language, LanguageId
from metaclip_spark.steps.match import Matcher
from metaclip_spark.run.outputs import ParquetSink, join
from metaclip_spark.run.redact import scrub, scrub_uri
from metaclip_spark.run.schema import EXTRACT_SCHEMA, POOL_SCHEMA
from metaclip_spark.run.stats import Stats

(NO_MATCH,) = MATCH          # the match step's one drop reason


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


@dataclass
class WorldTask:
    """What a worldwide stage-1 task needs beside its matcher (picklable; built on the driver):
    the language space (global ids of the counts) and a factory of the per-file worldwide
    language step (``language()`` -> a Step adding ``lang`` and ``lid_score``)."""
    space: LanguageSpace
    language: Callable[[], Step]


MATCHED_PREFIX = "lang_matched."   # Stats counter ``lang_matched.<lang>``: pool rows of a language (worldwide)


def matched_by_language(stats) -> dict[str, int]:
    """``{lang: pool rows}`` from a Stats (``lang_matched.<lang>`` counters of worldwide mode)."""
    return stats.prefixed(MATCHED_PREFIX)


class Match(Step):
    """Stage 1's match step: the batch's rows whose text matches at least one metadata entry,
    with their ``entry_ids``. The Matcher's own text -> ids cache is the only text cache.
    ``by_language``: worldwide, ``matcher.match_many(texts, langs)`` matches each text against
    its ``lang``'s list (section 10); else ``matcher.match_many(texts)`` (section 4)."""

    name = "match"
    section = "match"
    kept_counter = "matched"

    def __init__(self, matcher, by_language: bool = False):
        self.matcher, self.by_language = matcher, by_language

    def apply(self, batch: dict):
        if self.by_language:
            found = self.matcher.match_many(batch["text"], batch["lang"])
        else:
            found = self.matcher.match_many(batch["text"])
        rows = [i for i, ids in enumerate(found) if ids]
        out = {k: [v[i] for i in rows] for k, v in batch.items() if k != "lid_score"}
        out["entry_ids"] = [found[i] for i in rows]
        if "lid_score" in batch:
            out["lid_score"] = batch["lid_score"][rows]
        return out, len(rows), {NO_MATCH: len(found) - len(rows)}


def index_columns(urls, texts, crawl: str) -> dict:
    """The pool columns of the image index (docs/index.md) for rows of ``urls`` and ``texts``:
    ``image_id`` (ids.image_ids), ``text_hash`` (ids.text_hashes) and ``crawl`` (one label)."""
    image_id = ids.image_ids(urls)
    return {"image_id": image_id, "text_hash": ids.text_hashes(image_id, texts),
            "crawl": pa.array([crawl] * len(image_id), pa.string())}


def match_file(uri: str, out_dir: str, matcher: Matcher, lid: LanguageId,
               limits: extract.ExtractLimits, batch_size: int = 8192, crawl: str | None = None,
               world: WorldTask | None = None) -> FileResult:
    """Stage 1 on one file: Extract -> Language -> Match; the pool rows go to ``out_dir/<part_name(uri)>``.
    ``crawl`` is the rows' crawl label (the driver resolves it: inputs/labels.crawl_label); None:
    the crawl id in ``uri``, else the name of the run folder holding ``out_dir``. ``world``:
    worldwide mode (``matcher`` is a WorldMatcher; counts in global ids of ``world.space``)."""
    stored = scrub_uri(uri)      # the input's stored name (rows, results); the task opens ``uri``
    if crawl is None:
        crawl = crawl_label("", "", uri, out_dir.rstrip("/").rsplit("/", 1)[0])

    def body(fh, stats: Stats, sink: ParquetSink) -> dict:
        language = Language(lid) if world is None else world.language()
        match = Match(matcher, by_language=world is not None)
        all_ids: list[np.ndarray] = []
        for b in extract.Extract(limits, batch_size).batches(fh, stats, stored):
            b = match.run(language.run(b, stats), stats)
            if b["url"]:
                del b["drop"]
                b["key_hash"] = key_hashes(b["url"], b["text"])
                b.update(index_columns(b["url"], b["text"], crawl))
                if world is None:                  # English mode: every row's language is en (texts: alt)
                    b["lang"] = [ENGLISH] * len(b["url"])
                batch = pa.RecordBatch.from_pydict(b, schema=POOL_SCHEMA)
                sink.write(batch)
                ids = batch.column("entry_ids")
                if world is not None:
                    ids = world.space.globalize(batch.column("lang"), ids)
                    for lang, n in Counter(b["lang"]).items():
                        stats.add(MATCHED_PREFIX + lang, n)
                all_ids.append(ids.values.to_numpy(zero_copy_only=False))
        flat = np.concatenate(all_ids) if all_ids else np.zeros(0, np.int32)
        ids, counts = np.unique(flat, return_counts=True)
        stats.add("pool_rows", sink.rows)
        return {"entry_ids": ids.astype(np.int32), "counts": counts.astype(np.int64)}

    return _stored(_run(uri, join(out_dir, part_name(uri)), POOL_SCHEMA, body, limits.read), uri, stored)


def extract_file(uri: str, out_dir: str, lid: LanguageId, limits: extract.ExtractLimits,
                 batch_size: int = 8192, language: Callable[[], Step] | None = None) -> FileResult:
    """Every pair candidate of one file with its LID label/score and its drop reason (if any):
    Extract (keeping the candidates it dropped) -> Language in mark mode. ``language``: the
    worldwide language step's factory (``WorldTask.language``; its drops), else English LID."""
    stored = scrub_uri(uri)

    def body(fh, stats: Stats, sink: ParquetSink) -> dict:
        language_step = Language(lid) if language is None else language()
        for b in extract.Extract(limits, batch_size, keep_dropped=True).batches(fh, stats, stored):
            sink.write(pa.RecordBatch.from_pydict(language_step.mark(b, stats), schema=EXTRACT_SCHEMA))
        stats.add("extract_rows", sink.rows)
        return {}

    return _stored(_run(uri, join(out_dir, part_name(uri)), EXTRACT_SCHEMA, body, limits.read), uri, stored)
