"""Page -> pairs rules shared by the HTML and the WAT paths (docs/semantics.md section 2).

Input: the ``(src, alt)`` attribute values of every ``<img>`` of a page that has a ``src``
attribute (``alt`` is None when the attribute is absent), as the parser returned them
(entity-decoded, not stripped, not resolved), plus the page URL and the first
``<base href>``. Output: ``(url, text, drop)`` candidates in document order, where ``drop``
is None for a kept pair. Counts go into a :class:`PageCounts`.

Rules, in the order they are applied to each image (the reasons are the registry's
``drops.IMAGE``, in this order, see :mod:`metaclip_spark.steps.drops`):

1. ``alt`` absent -> ``no_alt``; otherwise the image counts in ``images_with_alt``.
2. ``text = " ".join(alt.split())``; empty -> ``empty_alt``.
3. ``src.strip()`` empty -> ``empty_src``.
4. ``url = urljoin(base, src.strip())``, base = ``urljoin(page_url, base_href)`` when the page
   has a ``<base href>`` (WAT: ``Head.Base``), else the page URL. Not http/https ->
   ``non_http_url`` (data:, javascript:, about:, relative URLs on a page without URL ...);
   urljoin raising ValueError (e.g. ``http://[oops/x.jpg``) -> ``invalid_url``.
5. ``len(text) > max_text_chars`` -> ``text_too_long``; ``len(url) > max_url_chars`` ->
   ``url_too_long``.
6. an identical ``(url, text)`` kept earlier on the same page -> ``duplicate_in_page``.

Drops of rules 1-3 are never candidates; rules 4-6 make candidates with a ``drop`` reason
(returned only when ``keep_dropped``; their url/text are clipped to the limits then, so a
100 kB ``data:`` URI does not travel further).

Texts of an image (semantics section 10; ``fields`` other than ``("alt",)``, in
:data:`TEXT_FIELDS` order): each image is ``(src, value of fields[0], ...)``; every value is
a text candidate of its field, taken in document order, then field order. alt goes through
rules 1-6 exactly as above (``no_alt``, ``images_with_alt``, ``empty_alt`` stay per image). A
``title`` / ``data-image-title`` value that is absent or empty after normalisation is no
text and no drop; a non-empty one counts in ``texts.title`` / ``texts.data_image_title`` and
goes through rules 3-6 under the same reasons (one drop per text: an image with an empty src
and two texts counts ``empty_src`` twice); the dedup of rule 6 is over all fields, so an
identical title after an alt is ``duplicate_in_page``. Kept ones also count in
``pairs.title`` / ``pairs.data_image_title``, and in ``pairs`` as every kept pair. Candidates
are ``(url, text, drop, field)``. Invariants per page (alt among the fields)::

    images = no_alt + images_with_alt
    images_with_alt + texts.title + texts.data_image_title = empty_alt + empty_src + non_http_url
        + invalid_url + text_too_long + url_too_long + duplicate_in_page + pairs
    pairs = (kept alt pairs) + pairs.title + pairs.data_image_title
"""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlparse, urlsplit

from metaclip_spark.kernels import native
from metaclip_spark.steps import drops as registry

# the same rules in one C loop per page (metaclip_spark/kernels/native.py), this module's
# BaseURL doing the URL resolution it does not shortcut
_native_page_pairs = native.get("page_pairs")

TEXT_FIELDS = ("alt", "title", "data-image-title")   # the texts of an <img>, in field order
CANDIDATE_DROPS = registry.CANDIDATE     # rules 4-6: the image is a candidate with a drop reason
(NO_ALT, EMPTY_ALT, EMPTY_SRC, NON_HTTP_URL, INVALID_URL, TEXT_TOO_LONG, URL_TOO_LONG,
 DUPLICATE_IN_PAGE) = registry.IMAGE      # the C loop's counters are in this order too

# Fast, exact shortcuts of urljoin for the common sources (root-relative, absolute http(s),
# protocol-relative and plain relative paths); what the tests below do not vouch for goes
# through urljoin itself. _unsafe: what urlsplit/urlunsplit would alter or reject (removed
# \t\r\n, params, IPv6 brackets, dot segments, empty ? or # components). _NETLOC: an
# ASCII, non-empty netloc (urlsplit checks non-ASCII ones).
_NETLOC = re.compile(r"[\x21\x22\x24-\x2e\x30-\x3e\x40-\x7e]+(?=[/?#]|\Z)")
_ABSOLUTE = re.compile(r"https?://[\x21\x22\x24-\x2e\x30-\x3e\x40-\x7e]+(?=[/?#]|\Z)")


def _unsafe(s: str) -> bool:   # substring tests: ~7x faster than one alternation regex
    return ("/." in s or ";" in s or "?#" in s or "\n" in s or "\t" in s or "\r" in s
            or "[" in s or "]" in s or s[-1] in "?#")


def canonical_fields(fields) -> tuple:
    """``fields`` once each, in :data:`TEXT_FIELDS` order; ValueError for another name or none."""
    fields = tuple(fields)
    unknown = sorted(set(fields) - set(TEXT_FIELDS))
    if unknown or not fields:
        raise ValueError("text fields %s: unknown or none (known: %s)" % (unknown, ", ".join(TEXT_FIELDS)))
    return tuple(f for f in TEXT_FIELDS if f in fields)


def normalize_text(alt: str) -> str:
    """Text normalisation (semantics section 2): every run of Unicode whitespace -> one space, stripped."""
    return " ".join(alt.split())


def resolve_base(page_url: str, base_href: str | None) -> str:
    """The URL relative image sources resolve against."""
    return urljoin(page_url, base_href) if base_href is not None else page_url


# An http(s) base that urlsplit takes apart without altering or checking anything: lower-case
# scheme, an ASCII netloc without brackets (no IPv6 checks), no TAB/CR/LF anywhere (removed
# by urlsplit), a path without ";" (urlparse's params). Group 1 is scheme://netloc, group 2
# the path (urlparse(base).path).
_PLAIN_HTTP_BASE = re.compile(r"(https?://[\x21\x22\x24-\x2e\x30-\x3e\x40-\x5a\x5c\x5e-\x7e]+)(?=[/?#]|\Z)([^?#;\t\r\n]*)(?=[?#]|\Z)")


def _plain_http_base(base: str):
    m = _PLAIN_HTTP_BASE.match(base)
    if m is None or "\t" in base or "\r" in base or "\n" in base:
        return None
    return m


def base_prefix(base: str):
    """``scheme://netloc`` of an http(s) base as urljoin sees it, "" for another base, None
    when urljoin cannot parse the base (it raises ValueError then, whatever the source)."""
    m = _plain_http_base(base)
    if m is not None:
        return m.group(1)
    try:
        parts = urlsplit(base)
    except ValueError:
        return None
    return parts.scheme + "://" + parts.netloc if parts.scheme in ("http", "https") else ""


# A scheme as urlsplit finds it (ASCII letter, then letters, digits, "+-."), then ":".
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")


class BaseURL:
    """``urljoin(base, src)`` for the sources of one page: the same result (and the same
    ValueError), without urljoin's cost for the common cases (tests fuzz the equality).

    Shortcuts, each for sources urljoin would not alter beyond what is written here:
    root-relative, absolute http(s) and protocol-relative sources; plain relative paths
    (the base's directory + src); relative paths with ``.``/``..`` segments (urljoin's
    own segment algorithm, run on the base path parsed once per page); and sources with
    another scheme (``data:``, ``javascript:`` ...), which urljoin returns unchanged."""

    __slots__ = ("base", "prefix", "scheme", "_dir", "_parts")

    def __init__(self, base: str):
        self.base, self.prefix, self._dir, self._parts = base, base_prefix(base), None, None
        self.scheme = self.prefix[:self.prefix.find(":")] if self.prefix else None

    def _base_dir(self) -> str:
        """urljoin(base, "x")[:-1]: the base's resolved directory."""
        parts = self._base_parts()
        if parts is None:
            return urljoin(self.base, "x")[:-1]
        return self.prefix + ("/".join(parts) + "/" if parts != [""] else "/")

    def _base_parts(self):
        """urljoin's ``base_parts`` (the base path's segments without its last one), when
        they need no dot-segment or empty-segment processing; None otherwise."""
        parts = self._parts
        if parts is None:
            m = _plain_http_base(self.base)
            path = m.group(2) if m is not None else urlparse(self.base).path   # as urljoin parses it
            if "/." in path or "//" in path or not path.startswith("/") and path:
                parts = False
            else:
                parts = path.split("/")
                if parts[-1] != "":
                    del parts[-1]
                if parts[-1:] == [""] and len(parts) > 1:
                    del parts[-1]                    # ".../dir/": the same segments as ".../dir"
            self._parts = parts
        return parts or None

    def _join_dots(self, src: str):
        """urljoin for a relative path with dot segments (src starts with "."), or None."""
        parts = self._base_parts()
        if parts is None:
            return None
        k = len(src)
        for sep in "?#":
            i = src.find(sep)
            if 0 <= i < k:
                k = i
        segments = parts + src[:k].split("/")
        resolved = []
        for seg in segments:
            if seg == "..":
                if resolved:
                    resolved.pop()
            elif seg != ".":
                resolved.append(seg)
        if segments[-1] in (".", ".."):
            resolved.append("")
        path = "/".join(resolved) or "/"
        if path[0] != "/":
            path = "/" + path
        return self.prefix + path + src[k:]

    def join(self, src: str) -> str:
        c, prefix = src[:1], self.prefix
        if c == "/":
            if src[1:2] != "/":                                  # root-relative
                if prefix and not _unsafe(src):
                    return prefix + src
            elif prefix and _NETLOC.match(src, 2) is not None and not _unsafe(src):
                return self.scheme + ":" + src                   # protocol-relative
        elif c == "h" and prefix is not None and _ABSOLUTE.match(src) is not None and not _unsafe(src):
            return src                                           # absolute http(s)
        elif prefix and c > " " and c not in "?#.:" and ":" not in src and "//" not in src and not _unsafe(src):
            d = self._dir                                        # relative path, no dot segments
            if d is None:
                d = self._dir = self._base_dir()
            return d + src
        elif (c == "." and prefix and ":" not in src and "//" not in src and ";" not in src
              and "\n" not in src and "\t" not in src and "\r" not in src and "[" not in src and "]" not in src
              and "?#" not in src and src[-1] not in "?#"):
            got = self._join_dots(src)                           # relative path with dot segments
            if got is not None:
                return got
        elif prefix and c.isalpha() and c.isascii():
            m = _SCHEME.match(src)
            if (m is not None and src[:m.end() - 1].lower() not in ("http", "https")
                    and src[m.end():m.end() + 2] != "//" and "\n" not in src and "\t" not in src
                    and "\r" not in src):
                return src                                       # another scheme: returned as is
        return urljoin(self.base, src)


def is_http_url(url: str) -> bool:
    """True for http: and https: URLs (scheme compared case-insensitively)."""
    i = url.find(":")
    return 0 < i < 6 and url[:i].lower() in ("http", "https")


class PageCounts:
    """Plain integer counters, cheaper than a Counter on the per-image path; ``flush``
    moves them into a :class:`metaclip_spark.run.stats.Stats`. Slots: ADDS, then the
    registry's per-image reasons (``kernels/csrc/page_rules.c`` COUNT_NAMES, same order)."""

    ADDS = ("images", "images_with_alt", "pairs")
    DROPS = registry.IMAGE
    __slots__ = ADDS + DROPS

    def __init__(self):
        for name in PageCounts.__slots__:
            setattr(self, name, 0)

    def flush(self, stats) -> None:
        for name in self.ADDS:
            n = getattr(self, name)
            if n:
                stats.add(name, n)
                setattr(self, name, 0)
        for name in self.DROPS:
            n = getattr(self, name)
            if n:
                stats.drop(name, n)
                setattr(self, name, 0)


class FieldCounts(PageCounts):
    """:class:`PageCounts` plus the counters of the texts that are not alt (``texts.<field>``,
    ``pairs.<field>``, "-" written "_"): the counts :func:`page_pairs` needs for ``fields``
    other than ``("alt",)``."""

    __slots__ = ("by_field",)

    def __init__(self):
        super().__init__()
        self.by_field = {}

    def count_text(self, field: str) -> None:
        name = "texts." + field.replace("-", "_")
        self.by_field[name] = self.by_field.get(name, 0) + 1

    def count_pair(self, field: str) -> None:
        name = "pairs." + field.replace("-", "_")
        self.by_field[name] = self.by_field.get(name, 0) + 1

    def flush(self, stats) -> None:
        super().flush(stats)
        for name, n in self.by_field.items():
            if n:
                stats.add(name, n)
        self.by_field = {}


def page_base(page_url: str, base_href: str | None) -> BaseURL:
    """The page's BaseURL (an unparsable page URL or <base href> resolves nothing)."""
    try:
        return BaseURL(resolve_base(page_url or "", base_href))
    except ValueError:
        return BaseURL("")


def page_pairs(images, page_url: str, base_href: str | None, counts: PageCounts,
               max_text_chars: int, max_url_chars: int, keep_dropped: bool = False, fields: tuple = ("alt",)) -> list:
    """Apply the rules above to one page; returns ``[(url, text, drop), ...]`` (``fields`` other
    than ``("alt",)``: ``[(url, text, drop, field), ...]``, see "Texts of an image" above)."""
    if _native_page_pairs is not None and fields == ("alt",):
        got = _native_page_pairs(images, lambda: page_base(page_url, base_href), max_text_chars,
                                 max_url_chars, keep_dropped, counts)
        if got is not NotImplemented:
            return got
    return page_pairs_py(images, page_url, base_href, counts, max_text_chars, max_url_chars, keep_dropped, fields)


def page_pairs_py(images, page_url: str, base_href: str | None, counts: PageCounts,
                  max_text_chars: int, max_url_chars: int, keep_dropped: bool = False, fields: tuple = ("alt",)) -> list:
    """:func:`page_pairs` in Python: the reference the compiled loop is tested against."""
    base = None
    out = []
    seen = set()
    n_img = 0
    tagged = fields != ("alt",)
    fields = tuple(enumerate(fields, 1))
    for image in images:
        n_img += 1
        url = src = None
        for k, field in fields:
            value = image[k]
            if field == "alt":
                if value is None:
                    counts.no_alt += 1
                    continue
                counts.images_with_alt += 1
                text = " ".join(value.split())
                if not text:
                    counts.empty_alt += 1
                    continue
            else:
                if value is None:
                    continue
                text = " ".join(value.split())
                if not text:
                    continue
                counts.count_text(field)
            if src is None:
                src = image[0].strip()
            if not src:
                counts.empty_src += 1
                continue
            if url is None:
                if base is None:
                    base = page_base(page_url, base_href)
                try:
                    url = base.join(src)
                    http = is_http_url(url)
                except ValueError:               # urlsplit rejects it (bad IPv6 brackets ...)
                    url, http = src, None
            if http is None:
                drop = INVALID_URL
            elif not http:
                drop = NON_HTTP_URL
            elif len(text) > max_text_chars:
                drop = TEXT_TOO_LONG
            elif len(url) > max_url_chars:
                drop = URL_TOO_LONG
            elif (url, text) in seen:
                drop = DUPLICATE_IN_PAGE
            else:
                seen.add((url, text))
                out.append((url, text, None, field) if tagged else (url, text, None))
                if field != "alt":
                    counts.count_pair(field)
                continue
            setattr(counts, drop, getattr(counts, drop) + 1)
            if keep_dropped:
                cand = (url[:max_url_chars], text[:max_text_chars], drop)
                out.append(cand + (field,) if tagged else cand)
    counts.images += n_img
    counts.pairs += len(seen)
    return out
