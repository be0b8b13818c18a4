"""HTTP response block -> HTML text -> ``<img>`` (src, alt) values, with selectolax/Lexbor.

What counts as HTML: the media type of the HTTP ``Content-Type`` header (the first one
when repeated; parameters and case ignored) is ``text/html`` or ``application/xhtml+xml``.
A response without that header is not HTML (semantics section 2: "whose HTTP Content-Type is HTML"),
whatever its bytes or the WARC-Identified-Payload-Type say.

Payload: the body after the HTTP headers; ``Transfer-Encoding: chunked`` is undone and
``Content-Encoding`` gzip/x-gzip/deflate/br is decompressed (non-CC WARCs; CC renames
those headers ``X-Crawler-*`` and stores the decoded body). Data that does not decode is
used as stored (ClueWeb09 stored decoded bodies under ``Content-Encoding: gzip``).

Charset (semantics section 2, as the corpus truth): the HTTP Content-Type ``charset``, else a
``<meta ... charset=X>`` within the first 4096 bytes, else UTF-8; a label Python does not
know, or that names no text encoding (``base64``, ``rot13`` ...), falls through to the
next rule; decoding uses ``errors="replace"``.

Nesting: a page whose estimated tree-building work (the sum, over tags, of the elements
open at that tag; quadratic in nesting depth) exceeds ``max_nesting_work`` is not parsed
(:class:`HtmlTooDeep`; see :func:`check_nesting`).

Images: every ``<img>`` element of the Lexbor DOM (scripting off, so ``<noscript>``
content is markup; comments, ``<script>``, ``<style>``, ``<textarea>``, ``<title>`` and
``<template>`` contents are not elements). Lexbor keeps the first of repeated attributes,
lower-cases names and decodes entities; a valueless ``alt`` is "". The same rules give the
other text attributes (``title``, ``data-image-title``: :func:`html_images` ``fields``).
"""

from __future__ import annotations

import codecs
import re
import zlib
from functools import lru_cache

import numpy as np
from selectolax.lexbor import LexborHTMLParser

from metaclip_spark.kernels import native

HTML_TYPES = frozenset(("text/html", "application/xhtml+xml"))
META_PRESCAN_BYTES = 4096

_CT_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9_.:-]+)", re.I)
_META_CHARSET = re.compile(rb"<meta[^>]{0,200}?charset\s*=\s*[\"']?\s*([A-Za-z0-9_.:-]+)", re.I)
_HTTP_END = re.compile(rb"\r?\n\r?\n")
_CHUNK_LINE = re.compile(rb"[ \t]*([0-9A-Fa-f]+)[^\r\n]*\r?\n")


class PayloadError(ValueError):
    """The HTTP body cannot be decoded (bad gzip/deflate/br data)."""


class PayloadTooLarge(ValueError):
    """The decoded HTTP body exceeds the size limit."""


class HtmlTooDeep(ValueError):
    """The page nests elements so deeply that parsing it would take too long."""


# --- Nesting pre-check (issue #13 item 11) ---------------------------------------------------
# Lexbor's tree builder, like the HTML standard's algorithm, walks the stack of open elements
# for its scope checks (a <div> start tag looks for an open <p>, a stray end tag for its
# element), so parsing costs about the sum, over tags, of the elements open at that tag:
# quadratic in nesting depth (100k nested <div>: ~15 s; 200k: ~200 s). ``nesting_work``
# estimates that sum on the bytes, in one linear pass, before parsing: a stack of open
# elements as the tree builder keeps it, closely enough (void elements, comments and
# raw text/SVG/MathML never nest; an end tag closes up to its open element if in scope, a
# stray one closes nothing; <p>, <li>, <dd>/<dt>, <option>, <td>/<th>/<tr>, <a>, headings
# close an open one of their kind as the parser does). ``check_nesting`` skips the pass when
# the page has too few tags to reach the limit (tags x start tags <= limit), i.e. on nearly
# every page.

_NEST_TOKENS = re.compile(
    rb"<!--.*?(?:-->|\Z)"
    + b"".join(rb"|<%s[\s/>].*?(?:</%s|\Z)" % (n, n) for n in
               (b"script", b"style", b"textarea", b"title", b"xmp", b"iframe", b"noembed", b"noframes",
                b"svg", b"math"))
    + rb"|<(/?[a-z][a-z0-9]*)", re.S)
_VOID = frozenset(b"area base br col embed hr img input link meta param source track wbr keygen basefont "
                  b"bgsound frame image menuitem html head body".split())   # never pushed here
_BOUNDARY = frozenset(b"applet caption html table td th marquee object template button".split())
_TABLE_PARTS = frozenset(b"td th tr tbody thead tfoot caption table".split())
_CLOSES_P = frozenset(b"address article aside blockquote center details dialog dir div dl fieldset figcaption "
                      b"figure footer header hgroup main menu nav ol p search section summary ul h1 h2 h3 h4 h5 h6 "
                      b"pre listing form table xmp plaintext li dd dt".split())
_HEADINGS = frozenset(b"h1 h2 h3 h4 h5 h6".split())
# start tag -> (open elements it closes when one is in scope, scope kind)
_IMPLIED = {b"li": ((b"li",), b"list"), b"dd": ((b"dd", b"dt"), b"list"), b"dt": ((b"dd", b"dt"), b"list"),
            b"td": ((b"td", b"th"), b"table"), b"th": ((b"td", b"th"), b"table"),
            b"tr": ((b"tr",), b"table"), b"tbody": ((b"tbody", b"thead", b"tfoot"), b"table"),
            b"thead": ((b"tbody", b"thead", b"tfoot"), b"table"), b"tfoot": ((b"tbody", b"thead", b"tfoot"), b"table"),
            b"a": ((b"a",), b"default"), b"nobr": ((b"nobr",), b"default")}


_SPECIAL = _CLOSES_P | frozenset(_IMPLIED) | frozenset((b"option", b"optgroup", b"form"))

# the same scan in one C pass (csrc/nesting.c, metaclip_spark/kernels/native.py); nesting_work_py
# stays the reference (tests/kernels/test_native_nesting.py)
_native_nesting_work = native.get("nesting_work")   # None: no (or an older) build


def nesting_work(html, stop_above: int | None = None) -> int:
    """The estimated tree-building work of a page: the sum, over its tags, of the number of
    elements open at that tag (see above). With ``stop_above``, counting may stop once the
    sum exceeds it (the value returned is then > stop_above, not the full sum)."""
    if _native_nesting_work is not None:
        got = _native_nesting_work(html, stop_above)
        if got is not NotImplemented:
            return got
    return nesting_work_py(html, stop_above)


def nesting_work_py(html, stop_above: int | None = None) -> int:
    """:func:`nesting_work` in Python: the reference the compiled scan is tested against."""
    if isinstance(html, str):
        html = html.encode("utf-8", "replace")
    stack = []
    where = {}
    bounds, tables = [-1], [-1]
    work, stop = 0, stop_above if stop_above is not None else float("inf")

    def pop_to(i):
        while len(stack) > i:
            name = stack.pop()
            where[name].pop()
            if name in _BOUNDARY:
                bounds.pop()
                if name == b"table":
                    tables.pop()

    depth = 0
    for tag in _NEST_TOKENS.findall(html.lower()):
        if not tag:
            continue
        work += depth
        if tag[0] == 47:
            name = tag[1:]
            if depth and stack[-1] == name and name not in _BOUNDARY:   # the common case
                stack.pop()
                where[name].pop()
                depth -= 1
                continue
            at = where.get(name)
            if at and at[-1] >= (tables[-1] if name in _TABLE_PARTS else bounds[-1]):
                pop_to(at[-1])
                depth = len(stack)
            continue
        if tag in _VOID:
            continue
        if tag in _SPECIAL:
            if work > stop:
                return work
            if tag in _CLOSES_P:
                at = where.get(b"p")
                if at and at[-1] > bounds[-1]:
                    pop_to(at[-1])
                if tag in _HEADINGS and stack and stack[-1] in _HEADINGS:
                    pop_to(len(stack) - 1)
            implied = _IMPLIED.get(tag)
            if implied is not None:
                names, scope = implied
                floor = tables[-1] if scope == b"table" else bounds[-1]
                if scope == b"list":
                    for lst in (b"ol", b"ul", b"dl"):
                        at = where.get(lst)
                        if at and at[-1] > floor:
                            floor = at[-1]
                for name in names:
                    at = where.get(name)
                    if at and at[-1] > floor:
                        pop_to(at[-1])
            elif tag == b"option" or tag == b"optgroup":
                while stack and (stack[-1] == b"option" or (tag == b"optgroup" and stack[-1] == b"optgroup")):
                    pop_to(len(stack) - 1)
            elif tag == b"form" and where.get(b"form"):
                depth = len(stack)
                continue
            depth = len(stack)
        elif work > stop:
            return work
        at = where.get(tag)
        if at is None:
            where[tag] = [depth]
        else:
            at.append(depth)
        stack.append(tag)
        if tag in _BOUNDARY:
            bounds.append(depth)
            if tag == b"table":
                tables.append(depth)
        depth += 1
    return work


def check_nesting(html, limit: int) -> None:
    """Raise :class:`HtmlTooDeep` when ``nesting_work(html)`` exceeds ``limit``. Linear in the
    page; nearly free on pages whose tag count bounds the work below the limit (work <= tags
    x start tags): one vectorised count of ``<`` (numpy: ~4x faster than bytes.count)."""
    if isinstance(html, bytes):
        lt = int(np.count_nonzero(np.frombuffer(html, np.uint8) == 60))
        if lt * lt <= limit:
            return
        ends = html.count(b"</")
    else:
        lt = html.count("<")
        if lt * lt <= limit:
            return
        ends = html.count("</")
    if lt * (lt - ends) <= limit:
        return
    work = nesting_work(html, limit)
    if work > limit:
        raise HtmlTooDeep("nesting work over %d (elements open at once x tags)" % limit)


def split_http(block: bytes):
    """``(status, headers, body)`` of an HTTP response block, or None when the block is not
    an HTTP response. ``headers``: lower-case names -> first value; ``status``: int or None."""
    if not block.startswith(b"HTTP/"):
        block = block.lstrip()
        if not block.startswith(b"HTTP/"):
            return None
    i = block.find(b"\r\n\r\n")
    if i >= 0 and block.find(b"\n\n", 0, i) < 0:          # the common case, without a regex
        head, body = block[:i], block[i + 4:]
    else:
        m = _HTTP_END.search(block)
        head, body = (block[:m.start()], block[m.end():]) if m else (block, b"")
    lines = head.decode("latin-1").splitlines()
    parts = lines[0].split(None, 2)
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers.setdefault(name.strip().lower(), value.strip())
    return status, headers, body


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def dechunk(body: bytes) -> bytes:
    """Undo chunked transfer coding; a body that does not start like a chunk stream is
    returned as it is (servers lie), a broken stream is cut at the damage."""
    out, pos, n = [], 0, len(body)
    while pos < n:
        m = _CHUNK_LINE.match(body, pos)
        if m is None:
            return body if not out else b"".join(out)
        size = int(m.group(1), 16)
        if size == 0:
            break
        start = m.end()
        out.append(body[start:start + size])
        pos = start + size
        while body[pos:pos + 1] in (b"\r", b"\n") and pos < n:
            pos += 1
    return b"".join(out)


def _inflate(data: bytes, wbits: int, limit: int) -> bytes:
    d = zlib.decompressobj(wbits)
    out = d.decompress(data, limit + 1)
    if len(out) > limit:
        raise PayloadTooLarge("decoded body exceeds %d bytes" % limit)
    return out


def decode_content(body: bytes, encoding: str, limit: int) -> bytes:
    """Undo a Content-Encoding (a comma list, applied in reverse order). Raises
    PayloadError on bad data or an unknown coding, PayloadTooLarge beyond ``limit`` bytes."""
    for enc in reversed([e.strip().lower() for e in encoding.split(",") if e.strip()]):
        if enc in ("identity", "none"):
            continue
        try:
            if enc in ("gzip", "x-gzip"):
                body = _inflate(body, 47, limit)
            elif enc == "deflate":
                try:
                    body = _inflate(body, 15, limit)
                except zlib.error:
                    body = _inflate(body, -15, limit)
            elif enc == "br":
                import brotli

                body = brotli.Decompressor().process(body, output_buffer_limit=limit + 1)
                if len(body) > limit:
                    raise PayloadTooLarge("decoded body exceeds %d bytes" % limit)
            else:
                raise PayloadError("unknown Content-Encoding %r" % enc)
        except (PayloadTooLarge, PayloadError):
            raise
        except Exception as exc:  # zlib.error, brotli.error
            raise PayloadError("bad %s data: %s" % (enc, exc)) from None
    return body


def http_payload(headers: dict, body: bytes, limit: int) -> tuple[bytes, bool]:
    """``(entity body, encoding_ok)``: transfer coding and content coding undone. When the
    Content-Encoding data does not decode, the body is used as stored and ``encoding_ok``
    is False (some crawlers, e.g. ClueWeb09, stored decoded bodies under the original
    header; warcio falls back the same way)."""
    te = headers.get("transfer-encoding")
    if te and "chunked" in te.lower():
        body = dechunk(body)
    ce = headers.get("content-encoding")
    if ce:
        try:
            return decode_content(body, ce, limit), True
        except PayloadError:
            return body, False
    return body, True


@lru_cache(maxsize=256)
def codec_for(label: str | None) -> str | None:
    """Python text codec for a charset label, or None (unknown or not a text encoding)."""
    if not label:
        return None
    try:
        info = codecs.lookup(label.strip().lower())
    except LookupError:
        return None
    if not getattr(info, "_is_text_encoding", True):
        return None
    return info.name


def page_codec(payload: bytes, content_type: str | None) -> str:
    """Charset rule (semantics section 2): HTTP charset, else <meta> charset in the first 4096 bytes, else UTF-8."""
    m = _CT_CHARSET.search(content_type or "")
    codec = codec_for(m.group(1)) if m else None
    if codec is None:
        m = _META_CHARSET.search(payload, 0, META_PRESCAN_BYTES)
        if m:
            codec = codec_for(m.group(1).decode("ascii", "replace"))
    return codec or "utf-8"


def parser_input(payload: bytes, codec: str):
    """What to hand to Lexbor: the bytes themselves when they are valid UTF-8 (Lexbor parses
    bytes as UTF-8, and skipping the str round trip is ~15% faster), else the decoded text."""
    if codec == "utf-8":
        if payload.isascii():
            return payload
        try:
            payload.decode("utf-8")
            return payload
        except UnicodeDecodeError:
            pass
    return payload.decode(codec, "replace")


def html_images(html, max_nesting_work: int | None = None, fields: tuple = ("alt",)) -> tuple[list, str | None]:
    """``([(src, alt), ...], base_href)``: every <img> with a src attribute, in document order
    (alt None when absent, "" when valueless), and the first <base href> (None if none).
    With ``max_nesting_work``, a page over it raises :class:`HtmlTooDeep` before parsing.
    ``fields`` (attribute names, e.g. ``("alt", "title", "data-image-title")``): each image is
    ``(src, value of fields[0], value of fields[1], ...)`` under alt's rules (None when absent,
    "" when valueless, the first of repeated attributes, entities decoded)."""
    if max_nesting_work is not None:
        check_nesting(html, max_nesting_work)
    tree = LexborHTMLParser(html)
    images = []
    if fields == ("alt",):
        for node in tree.css("img"):
            attrs = node.attributes
            src = attrs.get("src", False)
            if src is False:
                continue
            alt = attrs.get("alt", False)
            images.append((src or "", None if alt is False else (alt or "")))
    else:
        for node in tree.css("img"):
            attrs = node.attributes
            src = attrs.get("src", False)
            if src is False:
                continue
            values = [attrs.get(name, False) for name in fields]
            images.append((src or "", *[None if v is False else (v or "") for v in values]))
    base = tree.css_first("base[href]")
    base_href = None
    if base is not None:
        base_href = base.attributes.get("href") or ""
    return images, base_href
