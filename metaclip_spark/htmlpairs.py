"""HTTP response block -> HTML text -> ``<img>`` (src, alt) values, with selectolax/Lexbor.

What counts as HTML: the media type of the HTTP ``Content-Type`` header (the first one
when repeated; parameters and case ignored) is ``text/html`` or ``application/xhtml+xml``.
A response without that header is not HTML (SPEC: "whose HTTP Content-Type is HTML"),
whatever its bytes or the WARC-Identified-Payload-Type say.

Payload: the body after the HTTP headers; ``Transfer-Encoding: chunked`` is undone and
``Content-Encoding`` gzip/x-gzip/deflate/br is decompressed (non-CC WARCs; CC renames
those headers ``X-Crawler-*`` and stores the decoded body). Data that does not decode is
used as stored (ClueWeb09 stored decoded bodies under ``Content-Encoding: gzip``).

Charset (SPEC, as the corpus truth): the HTTP Content-Type ``charset``, else a
``<meta ... charset=X>`` within the first 4096 bytes, else UTF-8; a label Python does not
know, or that names no text encoding (``base64``, ``rot13`` ...), falls through to the
next rule; decoding uses ``errors="replace"``.

Images: every ``<img>`` element of the Lexbor DOM (scripting off, so ``<noscript>``
content is markup; comments, ``<script>``, ``<style>``, ``<textarea>``, ``<title>`` and
``<template>`` contents are not elements). Lexbor keeps the first of repeated attributes,
lower-cases names and decodes entities; a valueless ``alt`` is "".
"""

from __future__ import annotations

import codecs
import re
import zlib
from functools import lru_cache

from selectolax.lexbor import LexborHTMLParser

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
    """SPEC charset rule: HTTP charset, else <meta> charset in the first 4096 bytes, else UTF-8."""
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


def html_images(html) -> tuple[list, str | None]:
    """``([(src, alt), ...], base_href)``: every <img> with a src attribute, in document order
    (alt None when absent, "" when valueless), and the first <base href> (None if none)."""
    tree = LexborHTMLParser(html)
    images = []
    for node in tree.css("img"):
        attrs = node.attributes
        src = attrs.get("src", False)
        if src is False:
            continue
        alt = attrs.get("alt", False)
        images.append((src or "", None if alt is False else (alt or "")))
    base = tree.css_first("base[href]")
    base_href = None
    if base is not None:
        base_href = base.attributes.get("href") or ""
    return images, base_href
