"""Extraction: WARC / WAT files -> (image URL, alt text) pair records (docs/semantics.md section 2).

Public API::

    pairs_from_warc(src, stats=None, source=None, limits=ExtractLimits(), keep_dropped=False)
    pairs_from_wat(src, ...)     # same arguments
    pairs_from_file(src, ...)    # WARC or WAT, decided record by record from the content
    pages_from_file(src, ...)    # the same pairs grouped by page, as tuples (the pipeline's form)

``src`` is a path (str/PathLike; local, s3:// or http(s):// via :func:`metaclip_spark.inputs.io.
open_binary`) or a binary file object (read front to back once; need not be seekable).
``source`` is the provenance name stored with every pair (default: the path, or the file
object's ``name``). Each yielded dict has ``url, text, page_url, source, record_id,
record_offset, drop``: ``record_id`` is the WARC-Record-ID of the HTML response (from a WAT,
its ``WARC-Refers-To``, so both give the same id), ``record_offset`` the byte offset of the
record's gzip member in the file read, ``drop`` None for kept pairs. With
``keep_dropped=True`` candidates dropped for a reason of ``drops.CANDIDATE`` (rules 4-6 of
:mod:`metaclip_spark.formats.pairs`) are yielded too, with that reason in ``drop`` (url/text
clipped to the limits).
``pages_from_file`` yields one ``Page`` tuple ``(source, page_url, record_id,
record_offset, pairs)`` per page with at least one pair, ``pairs`` a list of ``(url, text,
drop)``: the same pairs in the same order without a dict per pair (the stage-1 loop
consumes it; ``pairs_from_file`` is this, flattened).
Texts of an image (semantics section 10): ``limits.text_fields`` names the ``<img>``
attributes (WAT: ``IMG@/src`` link keys) whose values are texts, default ``("alt",)``
(:func:`text_fields` reads it from a run's config). With any other set every pair also
carries its attribute: candidates are ``(url, text, drop, text_field)``, dicts gain
``text_field`` (``alt``, ``title``, ``data-image-title``); with ``("alt",)`` everything is as
described here, the batches' ``text_field`` column is "alt" (:func:`pair_batches`).
Order: file order, then document order within a page. An optional ``reader`` argument
(a function or a name in :data:`metaclip_spark.formats.warc.READERS`) swaps the record reader.

Which records are used: ``pairs_from_warc`` reads WARC ``response`` records whose HTTP
Content-Type is HTML (any HTTP status; see :mod:`metaclip_spark.formats.html`);
``pairs_from_wat`` reads ``metadata`` records with a JSON body (``application/json``) and
takes the page's identity from ``WARC-Refers-To`` (see :mod:`metaclip_spark.formats.wat`);
``pairs_from_file`` does both, so either kind of file works whatever its name.

Statistics (names passed to ``stats.add`` / ``stats.drop`` / ``stats.error``; counters are
flushed into ``stats`` when the iterator is exhausted or closed):

- ``records_read``, ``records.<warc-type>`` (``records.response``, ``records.metadata`` ...)
- ``html_pages``: HTML responses (WARC) / WAT records with HTML-Metadata (WAT), any status
- ``content_encoding_ignored``: HTML pages whose Content-Encoding data did not decode and
  were parsed as stored (see :mod:`metaclip_spark.formats.html`)
- ``wat_no_html_metadata``: WAT JSON records without HTML-Metadata (requests, warcinfo,
  metadata, non-HTML responses): counted, not an error
- ``images``: <img> with a src attribute (WAT: IMG@/src links); ``images_with_alt``: of
  those, with an alt attribute; ``pairs``: kept pairs. Per page
  ``images = no_alt + images_with_alt`` and ``images_with_alt = empty_alt + empty_src +
  non_http_url + invalid_url + text_too_long + url_too_long + duplicate_in_page + pairs``.
  Other text fields add ``texts.title``, ``texts.data_image_title`` (non-empty values) and
  ``pairs.title``, ``pairs.data_image_title`` (kept); their drops count under the same
  reasons, one per text (invariants: :mod:`metaclip_spark.formats.pairs`).
- drops (``dropped.<reason>``): the ``extract`` step's reasons of the registry
  (:mod:`metaclip_spark.steps.drops`: ``drops.PAGE`` per record / page, counted here;
  ``drops.IMAGE`` per image, counted by :mod:`metaclip_spark.formats.pairs`)
- errors (``errors.<kind>``, with a message in ``stats.errors``): ``empty_file``,
  ``not_gzip``, ``leading_junk``, ``empty_gzip``, ``truncated_gzip``, ``bad_gzip``,
  ``truncated_record``, ``bad_record``, ``bad_content_length``, ``read_error`` (see
  :mod:`metaclip_spark.formats.warc`; ``bad_record``
  also for a record whose processing raised), ``reader_error`` (the warcio/fastwarc
  readers, or any reader that raises), ``malformed_json`` (a WAT JSON body that does not parse,
  e.g. one cut short: its page is not counted in ``html_pages``; bodies without ``IMG@`` are
  only validated, see :mod:`metaclip_spark.formats.wat`), ``open_error`` (src cannot be opened).
"""

from __future__ import annotations

import itertools
import os
from collections import Counter
from dataclasses import dataclass
from operator import itemgetter
from typing import Iterable, Iterator, NamedTuple

from metaclip_spark.formats import html as htmlpairs
from metaclip_spark.formats import wat
from metaclip_spark.formats.pairs import FieldCounts, PageCounts, TEXT_FIELDS, canonical_fields, page_pairs
from metaclip_spark.run.stats import Stats
from metaclip_spark.inputs.streams import DEFAULT_POLICY, RetryPolicy
from metaclip_spark.formats.warc import READERS, read_records
from metaclip_spark.steps import drops as registry
from metaclip_spark.steps.base import Step

NOT_HTML, HTML_TOO_LARGE, HTML_TOO_DEEP, UNDECODABLE_PAGE = registry.PAGE   # this module's page drops


@dataclass(frozen=True)
class ExtractLimits:
    max_html_bytes: int = 5_000_000   # larger HTML payloads: page skipped (HTML_TOO_LARGE)
    max_text_chars: int = 2_000       # longer normalised alt: pair dropped (drops.IMAGE)
    max_url_chars: int = 2_048        # longer resolved URL: pair dropped (drops.IMAGE)
    max_nesting_work: int | None = 200_000_000   # HTML page over it (htmlpairs.check_nesting): HTML_TOO_DEEP
    read: RetryPolicy = DEFAULT_POLICY            # retries and time rules of remote input reads (streams)
    text_fields: tuple[str, ...] = ("alt",)       # the <img> attributes whose values are texts (TEXT_FIELDS)


def text_fields(cfg) -> tuple[str, ...]:
    """The texts of an image a run extracts (``extract.text_fields``, semantics section 10):
    the configured list if not empty, else all of :data:`TEXT_FIELDS` in worldwide mode and
    ``("alt",)`` in English mode; always in field order (alt, title, data-image-title)."""
    if cfg.extract.text_fields:
        return canonical_fields(cfg.extract.text_fields)
    return TEXT_FIELDS if cfg.worldwide.enabled else ("alt",)


class Page(NamedTuple):
    source: str
    page_url: str
    record_id: str | None
    record_offset: int
    pairs: list          # [(url, text, drop), ...]


_WARC_TYPES = frozenset(("response",))
_WAT_TYPES = frozenset(("metadata",))
_ALL_TYPES = _WARC_TYPES | _WAT_TYPES


def pairs_from_warc(src, stats=None, source=None, limits=ExtractLimits(), keep_dropped=False,
                    reader=None) -> Iterator[dict]:
    """Pairs from the HTML responses of a WARC file."""
    return _as_dicts(_extract(src, stats, source, limits, keep_dropped, reader, _WARC_TYPES))


def pairs_from_wat(src, stats=None, source=None, limits=ExtractLimits(), keep_dropped=False,
                   reader=None) -> Iterator[dict]:
    """Pairs from the HTML-Metadata Links of a WAT file."""
    return _as_dicts(_extract(src, stats, source, limits, keep_dropped, reader, _WAT_TYPES))


def pairs_from_file(src, stats=None, source=None, limits=ExtractLimits(), keep_dropped=False,
                    reader=None) -> Iterator[dict]:
    """Pairs from a WARC or a WAT file: WARC responses and WAT JSON metadata records are
    recognised record by record, so the file name does not matter."""
    return _as_dicts(_extract(src, stats, source, limits, keep_dropped, reader, _ALL_TYPES))


def pages_from_file(src, stats=None, source=None, limits=ExtractLimits(), keep_dropped=False,
                    reader=None) -> Iterator[Page]:
    """:func:`pairs_from_file`'s pairs grouped by page (``Page`` tuples, see the module doc)."""
    return _extract(src, stats, source, limits, keep_dropped, reader, _ALL_TYPES)


def _as_dicts(pages: Iterator[Page]) -> Iterator[dict]:
    try:
        for source, page_url, record_id, offset, cands in pages:
            for cand in cands:
                row = {"url": cand[0], "text": cand[1], "page_url": page_url, "source": source,
                       "record_id": record_id, "record_offset": offset, "drop": cand[2]}
                if len(cand) > 3:
                    row["text_field"] = cand[3]
                yield row
    finally:
        pages.close()       # flushes the counters into stats, closes the file, if stopped early


def _open(src, source):
    if isinstance(src, (str, os.PathLike)):
        from metaclip_spark.inputs.io import open_binary

        path = os.fspath(src)
        return open_binary(path), (path if source is None else source), True
    if source is None:
        source = getattr(src, "name", None)
        source = source if isinstance(source, str) else ""
    return src, source, False


def _extract(src, stats, source, limits, keep_dropped, reader, types) -> Iterator[Page]:
    stats = Stats() if stats is None else stats
    read = READERS[reader] if isinstance(reader, str) else (reader or read_records)
    try:
        fh, source, owned = _open(src, source)
    except Exception as exc:
        stats.error(str(source if source is not None else src), "open_error", "%s: %s" % (type(exc).__name__, exc))
        return
    fields = canonical_fields(limits.text_fields)
    adds, drops, counts = Counter(), Counter(), PageCounts() if fields == ("alt",) else FieldCounts()
    max_block = limits.max_html_bytes + (1 << 20)
    mt, mu = limits.max_text_chars, limits.max_url_chars
    do_warc, do_wat = "response" in types, "metadata" in types
    n_records = 0
    try:
        for rec in read(fh, stats, source, types, max_block):
            n_records += 1
            rtype = rec.type
            adds["records." + (rtype or "unknown")] += 1
            try:
                if rtype == "response" and do_warc:
                    got = _html_page(rec, limits, adds, drops, counts, keep_dropped, fields)
                    record_id = rec.headers.get("warc-record-id")
                elif rtype == "metadata" and do_wat and "json" in rec.headers.get("content-type", "").lower():
                    got = _wat_page(rec, stats, source, adds, drops, counts, mt, mu, keep_dropped, fields)
                    record_id = rec.headers.get("warc-refers-to")
                else:
                    continue
            except Exception as exc:             # a bug or an input nobody foresaw: count, go on
                stats.error(source, "bad_record", "record at %d: %s: %s" % (rec.offset, type(exc).__name__, exc))
                continue
            if got and got[1]:
                yield Page(source, got[0], record_id, rec.offset, got[1])
    except Exception as exc:                     # a reader that raises (ours never does)
        stats.error(source, "reader_error", "%s: %s" % (type(exc).__name__, exc))
    finally:
        adds["records_read"] = n_records
        for name, n in adds.items():
            if n:
                stats.add(name, n)
        for name, n in drops.items():
            stats.drop(name, n)
        counts.flush(stats)
        if owned:
            try:
                fh.close()
            except Exception:
                pass


def _target_uri(rec) -> str:
    uri = rec.headers.get("warc-target-uri", "")
    if uri.startswith("<") and uri.endswith(">"):   # WARC/0.x and some 1.0 writers
        uri = uri[1:-1]
    return uri


def _html_page(rec, limits, adds, drops, counts, keep_dropped, fields):
    block = rec.block
    http = htmlpairs.split_http(block) if block is not None else None
    if http is None:
        drops[NOT_HTML] += 1
        return None
    _, headers, body = http
    ctype = headers.get("content-type")
    if htmlpairs.media_type(ctype) not in htmlpairs.HTML_TYPES:
        drops[NOT_HTML] += 1
        return None
    adds["html_pages"] += 1
    max_html = limits.max_html_bytes
    if not rec.complete or len(body) > max_html:
        drops[HTML_TOO_LARGE] += 1
        return None
    try:
        payload, encoding_ok = htmlpairs.http_payload(headers, body, max_html)
        if not encoding_ok:
            adds["content_encoding_ignored"] += 1
        if len(payload) > max_html:
            raise htmlpairs.PayloadTooLarge()
        html = htmlpairs.parser_input(payload, htmlpairs.page_codec(payload, ctype))
        images, base_href = htmlpairs.html_images(html, limits.max_nesting_work, fields)
    except htmlpairs.PayloadTooLarge:
        drops[HTML_TOO_LARGE] += 1
        return None
    except htmlpairs.HtmlTooDeep:
        drops[HTML_TOO_DEEP] += 1
        return None
    except Exception:
        drops[UNDECODABLE_PAGE] += 1
        return None
    page_url = _target_uri(rec)
    return page_url, page_pairs(images, page_url, base_href, counts, limits.max_text_chars,
                                limits.max_url_chars, keep_dropped, fields)


def _wat_page(rec, stats, source, adds, drops, counts, mt, mu, keep_dropped, fields):
    body = rec.block
    if body is None:
        return None
    if not rec.complete:                         # JSON beyond max_html_bytes + 1 MiB: only a prefix
        if wat.HTML_META_KEY in body:
            adds["html_pages"] += 1
            drops[HTML_TOO_LARGE] += 1
        else:
            adds["wat_no_html_metadata"] += 1
        return None
    kind = wat.classify(body)
    try:     # bodies without IMG@ are only validated: a cut one is malformed, not a page without images
        got = wat.wat_images(body, fields) if kind == wat.HTML else wat.check_json(body)
    except ValueError as exc:
        stats.error(source, "malformed_json", "WAT record %s (member %d): %s"
                    % (rec.headers.get("warc-record-id"), rec.offset, exc))
        return None
    if kind == wat.HTML_NO_IMG:
        adds["html_pages"] += 1
        return None
    if kind == wat.HTML:
        if got is not None:
            adds["html_pages"] += 1
            page_url, images, base_href = got
            if page_url is None:
                page_url = _target_uri(rec)
            return page_url, page_pairs(images, page_url, base_href, counts, mt, mu, keep_dropped, fields)
    adds["wat_no_html_metadata"] += 1
    if wat.is_response(body):
        drops[NOT_HTML] += 1
    return None


_URL, _TEXT, _DROP, _FIELD = itemgetter(0), itemgetter(1), itemgetter(2), itemgetter(3)
BATCH_COLUMNS = ("url", "text", "page_url", "source", "record_id", "record_offset", "drop", "text_field")


def pair_batches(pages: Iterable[Page], n: int) -> Iterator[dict]:
    """The pairs of consecutive pages as column lists (:data:`BATCH_COLUMNS`), cut into
    batches of exactly ``n`` pairs (the last shorter). ``text_field`` is "alt" for the
    ``(url, text, drop)`` candidates of English mode."""
    cols = {k: [] for k in BATCH_COLUMNS}
    url, text, page_url, source, record_id, offset, drop, field = (cols[k] for k in BATCH_COLUMNS)
    for src, purl, rid, off, cands in pages:
        k = len(cands)
        url.extend(map(_URL, cands))
        text.extend(map(_TEXT, cands))
        drop.extend(map(_DROP, cands))
        field.extend(map(_FIELD, cands) if k and len(cands[0]) > 3 else itertools.repeat("alt", k))
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


class Extract(Step):
    """Stage 1's first step: an input file -> pair batches (:func:`pair_batches`, ``n`` pairs
    each). The parsing is in ``formats/``; the drops (page reasons here, image reasons in
    ``formats.pairs.PageCounts``) go to ``stats`` when the file is done. With
    ``keep_dropped`` the candidates of ``drops.CANDIDATE`` come too (``drop`` set)."""

    name = "extract"
    section = "extract"

    def __init__(self, limits: ExtractLimits = ExtractLimits(), batch_size: int = 8192, keep_dropped: bool = False):
        self.limits, self.batch_size, self.keep_dropped = limits, batch_size, keep_dropped

    def batches(self, src, stats: Stats, source: str | None = None) -> Iterator[dict]:
        pages = pages_from_file(src, stats=stats, source=source, limits=self.limits, keep_dropped=self.keep_dropped)
        return pair_batches(pages, self.batch_size)
