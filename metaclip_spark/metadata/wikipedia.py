"""Wikipedia dump -> unigram / bigram counts and article titles (metadata sources).

Input: standard ``pages-articles*.xml.bz2`` dumps (single- or multistream), local,
``s3://`` or ``http(s)://``. A dump is cut into byte ranges (``plan_splits``); a task
reads its range at compressed-block boundaries (:mod:`metaclip_spark.metadata.bz2blocks`) and
owns every page whose ``<page>`` tag starts in its blocks, reading past the range end
to finish the last one. (In the XML, ``<`` inside article text is escaped, so the
``<page>`` / ``</page>`` tags cannot occur in text.)

Per page (``parse_page``): main namespace (``<ns>0</ns>``) only; redirects (a
``<redirect>`` element) are skipped; disambiguation pages (a disambiguation template
such as ``{{disambiguation}}``/``{{dab}}``/``{{hndis}}``, or a title ending in
``(disambiguation)``) give neither text nor title. Text: mwparserfromhell parses the
wikitext; references, math and similar tags, files/images, categories and
interlanguage links are removed, then ``strip_code`` keeps the visible text (link
labels, not templates).

Tokens (``tokens``): maximal runs of word characters (``\\w``: letters, digits,
underscore, any script) joined by single inner ``-``, ``'`` or U+2019; case kept
("The" and "the" are different entries). Bigrams (``bigrams``): two consecutive tokens
separated only by spaces or tabs, the form in which MetaCLIP matching (docs/semantics.md section 4)
can find them; a newline or any other character between them breaks the pair.

Other languages (``build-metadata --lang xx``) count with ``world_build.NgramCounter`` (word
segmenters for languages written without spaces) and also drop links to the dump's own names of
the File, Media and Category namespaces (``link_namespaces``: ``Datei:``, ``Kategorie:`` ...).

Pageviews (``read_pageviews``): lines ``project title views [bytes]`` of Wikimedia's
hourly ``pageviews-*`` / older ``pagecounts-*`` files (plain, gzip or bz2); views of
the chosen projects (default ``en`` and ``en.m``) are summed per title; ``_`` in titles
becomes a space as in dump titles.
"""

from __future__ import annotations

import bz2
import gzip
import io
import os
import re
import urllib.request
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass
from typing import BinaryIO, Iterable, Iterator

from metaclip_spark.metadata.bz2blocks import iter_blocks
from metaclip_spark.inputs.io import Prepend, open_binary, s3_client, scheme, _split_s3
from metaclip_spark.run.stats import Stats

DEFAULT_SPLIT_BYTES = 64 << 20
_GAP = re.compile(r"[ \t]+")
_DROP_TAGS = {"ref", "references", "math", "chem", "ce", "gallery", "imagemap", "timeline",
              "score", "syntaxhighlight", "source", "pre", "hiero", "graph", "mapframe",
              "maplink", "templatedata", "templatestyles", "inputbox", "categorytree"}
_LINK_NS = {"file", "image", "media", "category"}
_NAMESPACE = re.compile(r'<namespace key="(-?\d+)"[^>]*>([^<]*)</namespace>')
_LANG_PREFIX = re.compile(r"[a-z]{2,3}(?:-[a-z]+)*$")
_DISAMBIG = {"disambiguation", "disambig", "dab", "disamb", "hndis", "geodis", "numberdis",
             "letter-numbercombdisambig", "schooldis", "hospitaldis", "mil-unit-dis",
             "shipindex", "roaddis", "airport disambiguation", "disambiguation cleanup",
             "mathdab", "species latin name disambiguation", "call sign disambiguation"}


class WikipediaError(ValueError):
    """A dump or pageviews input that cannot be used (raised before Spark starts)."""


# --------------------------------------------------------------------------------------
# Files and splits

def size_of(uri: str) -> int:
    s = scheme(uri)
    if s in ("s3", "s3a", "s3n"):
        bucket, key = _split_s3(uri)
        return int(s3_client().head_object(Bucket=bucket, Key=key)["ContentLength"])
    if s in ("http", "https"):
        req = urllib.request.Request(uri, method="HEAD", headers={"User-Agent": "metaclip-spark"})
        with urllib.request.urlopen(req, timeout=60) as resp:
            n = resp.headers.get("Content-Length")
        if n is None:
            raise WikipediaError("%s: server gives no Content-Length" % uri)
        return int(n)
    path = uri[len("file://"):] if uri.startswith("file://") else uri
    if not os.path.isfile(path):
        raise WikipediaError("Wikipedia dump not found: %s" % uri)
    return os.path.getsize(path)


def open_at(uri: str, offset: int) -> BinaryIO:
    """A stream of ``uri`` from byte ``offset`` (ranged GET for s3 and https)."""
    s = scheme(uri)
    if offset and s in ("s3", "s3a", "s3n"):
        bucket, key = _split_s3(uri)
        body = s3_client().get_object(Bucket=bucket, Key=key, Range="bytes=%d-" % offset)["Body"]
        return body._raw_stream if hasattr(body, "_raw_stream") else body
    if offset and s in ("http", "https"):
        req = urllib.request.Request(uri, headers={"User-Agent": "metaclip-spark",
                                                   "Range": "bytes=%d-" % offset})
        return urllib.request.urlopen(req, timeout=60)
    fh = open_binary(uri)
    if offset:
        fh.seek(offset)
    return fh


def check_dump(uri: str) -> int:
    """Size of a dump after checking it starts like a bzip2 file."""
    size = size_of(uri)
    with open_binary(uri) as fh:
        head = fh.read(4)
    if head[:3] != b"BZh" or not head[3:4].isdigit():
        raise WikipediaError("%s is not a bzip2 file (expected a pages-articles*.xml.bz2 dump)" % uri)
    return size


def plan_splits(uri: str, size: int, split_bytes: int = DEFAULT_SPLIT_BYTES) -> list[tuple[str, int, int]]:
    """``(uri, start, end)`` byte ranges covering the file; the last one ends at ``size``."""
    n = max(1, -(-size // split_bytes))
    return [(uri, i * split_bytes, size if i == n - 1 else (i + 1) * split_bytes) for i in range(n)]


# --------------------------------------------------------------------------------------
# Pages of one split

def iter_page_xml(fh: BinaryIO, start: int, end: int, stats: Stats) -> Iterator[bytes]:
    """The ``<page>...</page>`` byte strings owned by the split [start, end) of a dump
    (``fh`` positioned at ``start``)."""
    buf = b""
    own_left = 0          # page tags starting before this index of buf are ours
    own = True
    for bitpos, data in iter_blocks(fh, start):
        if own and bitpos >= end * 8:
            own = False
        if data is None:
            stats.error("bz2", "bad_block", "block at bit %d does not decompress" % bitpos)
            if own:
                buf, own_left = b"", 0      # text around the bad block is lost
                continue
            return
        buf += data
        if own:
            stats.add("bz2_blocks")
            own_left = len(buf)
        while True:
            i = buf.find(b"<page>")
            if i < 0 or i >= own_left:
                break
            j = buf.find(b"</page>", i)
            if j < 0:
                break
            yield buf[i:j + 7]
            buf = buf[j + 7:]
            own_left -= j + 7
        i = buf.find(b"<page>")
        if i >= 0:
            buf, own_left = buf[i:], own_left - i
        else:
            cut = max(0, len(buf) - 5)          # a tag may straddle the block end
            buf, own_left = buf[cut:], own_left - cut
        if not own and (i >= own_left or (i < 0 and own_left <= 0)):
            return
    if own_left > 0 and b"<page>" in buf[:own_left]:
        stats.drop("page_truncated")


@dataclass
class Page:
    title: str
    ns: int
    redirect: bool
    text: str


def parse_page(xml: bytes) -> Page:
    el = ET.fromstring(xml)
    ns_text = el.findtext("ns")
    text = el.findtext("revision/text") or ""
    return Page(title=el.findtext("title") or "", ns=int(ns_text) if ns_text else 0,
                redirect=el.find("redirect") is not None, text=text)


def is_disambiguation(title: str, code) -> bool:
    if title.endswith("(disambiguation)"):
        return True
    for t in code.ifilter_templates(recursive=False):
        name = str(t.name).strip().lower().replace("_", " ")
        if name in _DISAMBIG or "disambiguation" in name and "needed" not in name:
            return True
    return False


def _dropped(node, link_ns: frozenset = frozenset()) -> bool:
    from mwparserfromhell.nodes import Tag, Wikilink

    if isinstance(node, Tag):
        return str(node.tag).strip().lower() in _DROP_TAGS
    if isinstance(node, Wikilink):
        title = str(node.title).strip()
        if ":" in title and not title.startswith(":"):
            prefix = title.split(":", 1)[0].strip().lower()
            return prefix in _LINK_NS or prefix in link_ns or bool(_LANG_PREFIX.match(prefix))
    return False


def _strip_non_text(code, link_ns: frozenset = frozenset()) -> None:
    """Remove dropped nodes at any depth (editing node lists directly: Wikicode.remove
    searches the whole tree per node and is ~50x slower)."""
    from mwparserfromhell.nodes import ExternalLink, Heading, Tag, Wikilink

    kept = []
    for node in code.nodes:
        if _dropped(node, link_ns):
            continue
        if isinstance(node, Tag):
            children = (node.contents,)
        elif isinstance(node, Wikilink):
            children = (node.text,)
        elif isinstance(node, (Heading, ExternalLink)):
            children = (node.title,)
        else:
            children = ()
        for child in children:
            if child is not None:
                _strip_non_text(child, link_ns)
        kept.append(node)
    if len(kept) != len(code.nodes):
        code.nodes = kept


def plain_text(code, link_ns: frozenset = frozenset()) -> str:
    """Visible text of parsed wikitext (mwparserfromhell Wikicode), see module doc. ``link_ns``:
    more lower-case namespace names whose links are dropped (a dump's own names of File, Media
    and Category, :func:`link_namespaces`)."""
    _strip_non_text(code, link_ns)
    return code.strip_code(normalize=True, collapse=True)


def token_rule(word: str = r"\w+") -> re.Pattern:
    """The token rule: runs of ``word`` joined by single inner ``-``, ``'`` or U+2019 (the English
    one; ``world_build`` widens ``word`` for other languages)."""
    return re.compile(r"%s(?:[-'\u2019]%s)*" % (word, word))


_TOKEN = token_rule()


def tokens(line: str) -> list[str]:
    return _TOKEN.findall(line)


def line_bigrams(line: str, token: re.Pattern = _TOKEN) -> Iterator[tuple[str, str]]:
    """Consecutive ``token`` pairs of one line separated only by spaces/tabs."""
    prev_end, prev = -1, None
    for m in token.finditer(line):
        if prev is not None and _GAP.fullmatch(line, prev_end, m.start()):
            yield prev, m.group()
        prev, prev_end = m.group(), m.end()


def bigrams(text: str) -> Iterator[tuple[str, str]]:
    """Consecutive token pairs separated only by spaces/tabs."""
    for line in text.split("\n"):
        yield from line_bigrams(line)


# --------------------------------------------------------------------------------------
# Counting one split

def count_split(uri: str, start: int, end: int, stats: Stats, counter=None,
                link_ns: frozenset = frozenset()) -> Iterator[tuple[str, Counter, Counter]]:
    """Parse the pages of one split; yields ``(title, unigrams, bigrams)`` per main-namespace
    article (Counters), counting skipped pages in ``stats``. ``counter(text) -> (unigrams,
    bigrams)`` counts an article's plain text (default: the English rule, :func:`tokens` and
    :func:`bigrams`; other languages: ``world_build.NgramCounter``)."""
    import mwparserfromhell

    with open_at(uri, start) as fh:
        for xml in iter_page_xml(fh, start, end, stats):
            stats.add("pages")
            try:
                page = parse_page(xml)
            except (ET.ParseError, ValueError) as exc:
                stats.drop("page_bad_xml")
                stats.error(uri, "page_bad_xml", str(exc))
                continue
            if page.ns != 0:
                stats.drop("page_not_main_namespace")
                continue
            if page.redirect:
                stats.drop("page_redirect")
                continue
            try:
                code = mwparserfromhell.parse(page.text)
                if is_disambiguation(page.title, code):
                    stats.drop("page_disambiguation")
                    continue
                text = plain_text(code, link_ns)
            except Exception as exc:  # a parser failure costs one page, never the task
                stats.drop("page_parse_error")
                stats.error(uri, "page_parse_error", "%s: %s: %s" % (page.title, type(exc).__name__, exc))
                continue
            stats.add("articles")
            if counter is None:
                uni, bi = Counter(tokens(text)), Counter(bigrams(text))
            else:
                uni, bi = counter(text)
            stats.add("tokens", sum(uni.values()))
            stats.add("bigrams", sum(bi.values()))
            yield page.title, uni, bi


def link_namespaces(uri: str, max_bytes: int = 1 << 20) -> frozenset:
    """Lower-case names of the Media (-2), File (6) and Category (14) namespaces in the dump's
    ``<siteinfo>`` (``Datei``, ``Kategorie``, ``ファイル`` ...), read from its first bytes; empty
    when the header has none."""
    dec = bz2.BZ2Decompressor()
    head = b""
    with open_binary(uri) as fh:
        while b"</siteinfo>" not in head and len(head) < max_bytes:
            data = fh.read(1 << 16)
            if not data:
                break
            try:
                head += dec.decompress(data)
            except (OSError, EOFError):
                break
            if dec.eof:
                break
    names = _NAMESPACE.findall(head.split(b"</siteinfo>", 1)[0].decode("utf-8", "replace"))
    return frozenset(name.strip().lower() for key, name in names if key in ("-2", "6", "14") and name.strip())


# --------------------------------------------------------------------------------------
# Page views

def _text_lines(uri: str) -> Iterator[str]:
    raw = open_binary(uri)
    head = raw.read(3)
    stream = io.BufferedReader(Prepend(head, raw))
    if head[:2] == b"\x1f\x8b":
        stream = gzip.GzipFile(fileobj=stream)
    elif head[:3] == b"BZh":
        stream = bz2.BZ2File(stream)
    with io.TextIOWrapper(stream, encoding="utf-8", errors="replace") as text:
        yield from text


def read_pageviews(uris: Iterable[str], projects: Iterable[str], stats: Stats) -> Counter:
    """Views per title (spaces, not underscores) summed over the given files."""
    keep = set(projects)
    views: Counter = Counter()
    for uri in uris:
        try:
            lines = _text_lines(uri)
            for line in lines:
                parts = line.split()
                if len(parts) < 3:
                    stats.drop("pageviews_bad_line")
                    continue
                if parts[0] not in keep:
                    continue
                try:
                    n = int(parts[2])
                except ValueError:
                    stats.drop("pageviews_bad_line")
                    continue
                views[parts[1].replace("_", " ")] += n
                stats.add("pageviews_lines")
        except OSError as exc:
            raise WikipediaError("cannot read pageviews file %s: %s" % (uri, exc)) from exc
    return views
