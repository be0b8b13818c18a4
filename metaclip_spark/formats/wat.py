"""WAT metadata JSON -> ``<img>`` (src, alt) values (docs/semantics.md section 2, WAT source).

A WAT ``metadata`` record (``Content-Type: application/json``) describes one record of
the WARC it was made from (``WARC-Refers-To``). For an HTML response its JSON holds
``Envelope.Payload-Metadata.HTTP-Response-Metadata.HTML-Metadata`` with ``Head.Base`` and
``Links``; the ``Links`` entries with ``path == "IMG@/src"`` are the page's ``<img src>``
in document order, ``url`` and ``alt`` already entity-decoded (never unescaped again). The
other text attributes of an image are the same link's keys ``title`` and ``data-image-title``
(MetaCLIP 2's parse_wat reads those three keys), also decoded already.

Byte-level triage keeps the hot path cheap: JSON without ``IMG@`` is never walked
(``"HTML-Metadata"`` / ``"HTTP-Response-Metadata"`` byte tests classify it instead). Inside
JSON text every ``"`` of a string value is escaped, so ``"HTML-Metadata"`` with both
quotes bare can only be the key itself. It is still validated (:func:`check_json`: 8 ms of
the 0.8 s extraction of a 2,000-capture WAT with the compiled scanner, 24 ms with orjson): a
body cut before its ``Links`` has no ``IMG@`` left, and must count as malformed, not as an
HTML page without images.

:func:`wat_images` runs the compiled one-pass scanner ``wat_scan`` of
:mod:`metaclip_spark.kernels.native` and falls back to :func:`wat_images_py` (orjson + a walk over
the parsed links) for anything the scanner cannot prove equal, or everywhere when the
extension is missing or ``METACLIP_NATIVE=0`` is set. Both give identical results
(tests/kernels/test_native_wat.py); the scanner skips building Python objects for everything
but the few fields used (bench/OPTIMISATIONS.md).
"""

from __future__ import annotations

import orjson

from metaclip_spark.kernels import native

_scan = native.get("wat_scan")
# `needle in body`, memchr on the needle's rarest byte (3x faster than bytes.__contains__ here)
_contains = native.get("contains") or bytes.__contains__
NATIVE = _scan is not None

HAS_IMG = b"IMG@"
HTML_META_KEY = b'"HTML-Metadata"'
RESPONSE_META_KEY = b'"HTTP-Response-Metadata"'

# classification of one WAT JSON body
NO_HTML = 0        # request, warcinfo, metadata, non-HTML response ...
HTML_NO_IMG = 1    # an HTML response without any IMG@ link
HTML = 2           # parse it


def classify(body: bytes) -> int:
    if _contains(body, HAS_IMG):
        return HTML
    return HTML_NO_IMG if _contains(body, HTML_META_KEY) else NO_HTML


def is_response(body: bytes) -> bool:
    return _contains(body, RESPONSE_META_KEY)


def wat_images(body: bytes, fields: tuple = ("alt",)):
    """:func:`wat_images_py`'s result, from the compiled scanner when it is sure. The scanner
    reads ``url`` and ``alt`` only; for other ``fields`` its answer is used when no link can
    hold them (the body has no ``"<key>"`` of theirs: an escaped key in a link makes the
    scanner defer anyway), else the Python path reads them."""
    if _scan is not None:
        if fields == ("alt",):
            got = _scan(body)
            if got is not NotImplemented:
                return got
        elif not any(_contains(body, b'"%s"' % f.encode()) for f in fields if f != "alt"):
            got = _scan(body)
            if got is None:
                return None
            if got is not NotImplemented:
                return got[0], [(src, *[alt if f == "alt" else None for f in fields]) for src, alt in got[1]], got[2]
    return wat_images_py(body, fields)


def check_json(body: bytes) -> None:
    """Raise ValueError (orjson.JSONDecodeError) unless ``body`` is well-formed JSON, exactly
    as :func:`wat_images` would; the compiled scanner answers where it can prove it."""
    if _scan is not None and _scan(body) is not NotImplemented:
        return
    orjson.loads(body)


def wat_images_py(body: bytes, fields: tuple = ("alt",)):
    """Parse one WAT JSON body (bytes).

    Returns ``(page_url, images, base_href)`` for an HTML response -- ``images`` as
    ``[(src, alt), ...]`` for every IMG@/src link (alt None when absent; with ``fields``,
    ``(src, value of fields[0], ...)``, each None unless a string), page_url from
    ``Envelope.WARC-Header-Metadata.WARC-Target-URI`` (None when absent) -- or None when the
    record has no HTML-Metadata. Raises ValueError (orjson.JSONDecodeError) on malformed JSON;
    well-formed JSON of an unexpected shape never raises (wrong types count as absent).
    """
    doc = orjson.loads(body)
    env = doc.get("Envelope") if isinstance(doc, dict) else None
    if not isinstance(env, dict):
        return None
    pm = env.get("Payload-Metadata")
    resp = pm.get("HTTP-Response-Metadata") if isinstance(pm, dict) else None
    html = resp.get("HTML-Metadata") if isinstance(resp, dict) else None
    if not isinstance(html, dict):
        return None
    whm = env.get("WARC-Header-Metadata")
    page_url = whm.get("WARC-Target-URI") if isinstance(whm, dict) else None
    head = html.get("Head")
    base = head.get("Base") if isinstance(head, dict) else None
    if base is not None and not isinstance(base, str):
        base = None
    images = []
    links = html.get("Links")
    if isinstance(links, list):
        for link in links:
            try:
                if link["path"] != "IMG@/src":
                    continue
                src = link["url"]
            except (KeyError, TypeError, IndexError):
                continue
            if isinstance(src, str):
                if fields == ("alt",):
                    alt = link.get("alt")
                    images.append((src, alt if isinstance(alt, str) else None))
                else:
                    values = [link.get(name) for name in fields]
                    images.append((src, *[v if isinstance(v, str) else None for v in values]))
    return page_url if isinstance(page_url, str) else None, images, base
