"""Image URLs as a browser sends them, for the curated set (img2dataset and other downloaders).

The pool keeps SPEC section 2's ``url`` exactly as extracted: matching, provenance and the
pair key are computed from it. Downloaders need the request form instead (HTTP clients
refuse spaces, control characters and non-ASCII): :func:`request_url` gives it, following
what browsers do with an ``<img src>`` (WHATWG URL):

- the host is lower-cased and a non-ASCII host IDNA-encoded as browsers do (UTS 46,
  non-transitional: ``straße.de`` -> ``xn--strae-oqa.de``); userinfo and port are kept;
- path and query are UTF-8 percent-encoded: every byte outside the characters a URL may
  hold literally (ASCII letters, digits, ``-._~!$&'()*+,;=:@/`` and, in the query, ``?``)
  becomes ``%XX``; existing escapes ``%XX`` are kept as they are, a ``%`` not followed by
  two hex digits becomes ``%25``;
- the fragment is dropped (browsers never send it).

A URL that cannot be put in this form (a host IDNA refuses, an invalid port) gives None;
stage 2 counts it (``dropped.url_unencodable``) and leaves the row out of the curated set.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import idna

_SAFE_PATH = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:@/")
_SAFE_QUERY = _SAFE_PATH | frozenset(b"?")
_HEX = frozenset(b"0123456789abcdefABCDEF")
# URLs that need no change: printable ASCII without space, '"<>\\^`{|}', '#', and no '%'
# (a '%' needs its escape checked) — most of them, so the common case is one regex match.
_CLEAN = re.compile(r"^https?://[a-z0-9.\-]+/[A-Za-z0-9\-._~!$&'()*+,;=:@/?]*\Z")


def _quote(part: str, safe: frozenset) -> str:
    data = part.encode("utf-8", "surrogatepass")
    out = []
    n = len(data)
    i = 0
    while i < n:
        b = data[i]
        if b in safe:
            out.append(chr(b))
        elif b == 0x25 and i + 2 < n and data[i + 1] in _HEX and data[i + 2] in _HEX:   # '%XX' kept
            out.append("%")
        else:
            out.append("%%%02X" % b)
        i += 1
    return "".join(out)


def _host(host: str) -> str | None:
    """Lower-cased ASCII host; non-ASCII hosts by UTS 46 non-transitional IDNA, as current
    browsers do (``ß`` stays ``ß``: ``xn--strae-oqa``, not ``strasse``)."""
    host = host.lower()
    if host.isascii():
        return host
    try:
        return idna.encode(host, uts46=True, transitional=False).decode("ascii")
    except (idna.IDNAError, UnicodeError, ValueError):
        return None


def request_url(url: str) -> str | None:
    """``url`` as a browser requests it, or None when it cannot be encoded (see module doc)."""
    if _CLEAN.match(url):
        return url
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    host = _host(parts.hostname)
    if host is None or not host:
        return None
    netloc = host if ":" not in host else "[%s]" % host
    if port is not None:
        netloc += ":%d" % port
    if parts.username is not None:
        user = _quote(parts.username, _SAFE_PATH - frozenset(b":@/"))
        if parts.password is not None:
            user += ":" + _quote(parts.password, _SAFE_PATH - frozenset(b":@/"))
        netloc = user + "@" + netloc
    path = _quote(parts.path, _SAFE_PATH) or "/"
    out = "%s://%s%s" % (parts.scheme.lower(), netloc, path)
    if parts.query or url.split("#", 1)[0].endswith("?"):
        out += "?" + _quote(parts.query, _SAFE_QUERY)
    return out
