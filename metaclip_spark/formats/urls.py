"""Image URLs as a browser sends them, for the curated set (img2dataset and other downloaders).

The pool keeps semantics section 2's ``url`` exactly as extracted: matching, provenance and the
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
from urllib.parse import quote, urlsplit

import idna

# URLs that need no change: printable ASCII without space, '"<>\\^`{|}', '#', and no '%'
# (a '%' needs its escape checked) — most of them, so the common case is one regex match.
CLEAN_PATTERN = r"^https?://[a-z0-9.\-]+/[A-Za-z0-9\-._~!$&'()*+,;=:@/?]*"
_CLEAN = re.compile(CLEAN_PATTERN + r"\Z")
CLEAN_PATTERN_RE2 = CLEAN_PATTERN + "$"
_CLEAN_HOST = re.compile(r"^(https?://[a-z0-9.\-]+)(/[^#\t\r\n]*)\Z")
_CLEAN_ANY_CASE_HOST = re.compile(r"^[Hh][Tt][Tt][Pp][Ss]?://[A-Za-z0-9.\-]+/[A-Za-z0-9\-._~!$&'()*+,;=:@/?]*\Z")     # the same test for pyarrow.compute (RE2: $ is the end of the text)


_ESCAPE = re.compile(r"(%[0-9A-Fa-f]{2})")
_SAFE_PATH_STR = "!$&'()*+,;=:@/"        # with quote()'s own letters, digits and "_.-~": _SAFE_PATH
_SAFE_QUERY_STR = _SAFE_PATH_STR + "?"
_SAFE_USER_STR = "!$&'()*+,;="


def _quote(part: str, safe: str) -> str:
    """UTF-8 percent-encoding of every byte outside ``safe`` (and quote()'s letters, digits,
    ``_.-~``); existing ``%XX`` escapes kept, any other ``%`` becomes ``%25``."""
    pieces = _ESCAPE.split(part)
    return "".join(p if i % 2 else quote(p, safe=safe, encoding="utf-8", errors="surrogatepass")
                   for i, p in enumerate(pieces))


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


def request_urls(urls):
    """:func:`request_url` over a pyarrow string array: one vectorised test finds the URLs that
    need no change (most of them); only the others go through Python. Returns (array, ok mask)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(urls, pa.ChunkedArray):
        urls = urls.combine_chunks()
    if pc.any(pc.match_substring(urls, "#")).as_py():    # the fragment is never sent: cut it first
        urls = pc.replace_substring_regex(urls, "(?s)#.*", "", max_replacements=1)
    clean = pc.match_substring_regex(urls, CLEAN_PATTERN_RE2).to_numpy(zero_copy_only=False)
    todo = np.flatnonzero(~clean)
    ok = np.ones(len(urls), dtype=bool)
    if not len(todo):
        return urls, ok
    fixed = [request_url(u) for u in urls.take(pa.array(todo)).to_pylist()]
    ok[todo] = [f is not None for f in fixed]
    mask = np.zeros(len(urls), dtype=bool)
    mask[todo] = True
    out = pc.replace_with_mask(urls, pa.array(mask), pa.array([f if f is not None else "" for f in fixed], pa.string()))
    return out, ok


def request_url(url: str) -> str | None:
    """``url`` as a browser requests it, or None when it cannot be encoded (see module doc)."""
    if _CLEAN.match(url):
        return url
    if _CLEAN_ANY_CASE_HOST.match(url):                 # only scheme/host need lower-casing
        cut = url.index("/", url.index("://") + 3)
        return url[:cut].lower() + url[cut:]
    m = _CLEAN_HOST.match(url)
    if m:                                                 # a plain host: only path and query to encode
        return m.group(1) + _quote(m.group(2), _SAFE_QUERY_STR)
    return _request_url_parsed(url)


def _request_url_parsed(url: str) -> str | None:
    """:func:`request_url` by parsing the URL (the general path, and the reference the
    shortcuts above are tested against)."""
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
        user = _quote(parts.username, _SAFE_USER_STR)
        if parts.password is not None:
            user += ":" + _quote(parts.password, _SAFE_USER_STR)
        netloc = user + "@" + netloc
    path = _quote(parts.path, _SAFE_PATH_STR) or "/"
    out = "%s://%s%s" % (parts.scheme.lower(), netloc, path)
    if parts.query or url.split("#", 1)[0].endswith("?"):
        out += "?" + _quote(parts.query, _SAFE_QUERY_STR)
    return out
