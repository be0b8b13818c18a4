"""semantics section 2 rules shared by the HTML and WAT paths: text, URL, dedup, caps, counts."""

import random
from urllib.parse import urljoin

import pytest

from metaclip_spark.formats.pairs import BaseURL, PageCounts, is_http_url, normalize_text, page_pairs, resolve_base
from metaclip_spark.run.stats import Stats

PAGE = "https://www.example.com/blog/2024/post.html?x=1"


def run(images, page_url=PAGE, base_href=None, keep_dropped=False, max_text=2000, max_url=2048):
    counts = PageCounts()
    out = page_pairs(images, page_url, base_href, counts, max_text, max_url, keep_dropped)
    st = Stats()
    counts.flush(st)
    return out, dict(st.counts)


@pytest.mark.parametrize("alt,text", [
    ("  a  b ", "a b"),
    ("a\u00a0b", "a b"),                     # NBSP inside
    ("\u00a0\u00a0", ""),                    # &nbsp;&nbsp;
    ("\u3000", ""),                          # ideographic space only
    ("x\u3000y", "x y"),
    ("line1\nline2\r\n\tline3", "line1 line2 line3"),
    ("a\u2003b\u200bc", "a b\u200bc"),       # em space splits; zero-width space is not whitespace
    ("\x1cfs\x1d", "fs"),                    # str.split() whitespace includes \x1c-\x1f
])
def test_normalize_text(alt, text):
    assert normalize_text(alt) == text


@pytest.mark.parametrize("src,url", [
    ("img/a.jpg", "https://www.example.com/blog/2024/img/a.jpg"),              # relative
    ("../a.jpg", "https://www.example.com/blog/a.jpg"),
    ("a.jpg", "https://www.example.com/blog/2024/a.jpg"),
    ("/static/a.jpg", "https://www.example.com/static/a.jpg"),                  # root-relative
    ("//cdn.example.net/a.jpg", "https://cdn.example.net/a.jpg"),               # protocol-relative
    ("http://other.org/a.jpg?q=1&r=2", "http://other.org/a.jpg?q=1&r=2"),       # absolute
    ("HTTPS://Other.org/A.jpg", "https://Other.org/A.jpg"),                     # same scheme: re-joined
    ("  /pad.jpg \n", "https://www.example.com/pad.jpg"),                       # src stripped
    ("?v=2", "https://www.example.com/blog/2024/post.html?v=2"),
    ("/a b/é.jpg", "https://www.example.com/a b/é.jpg"),                        # not quoted
])
def test_url_resolution(src, url):
    out, counts = run([(src, "alt")])
    assert out == [(url, "alt", None)]
    assert counts == {"images": 1, "images_with_alt": 1, "pairs": 1}


@pytest.mark.parametrize("base_href,src,url", [
    ("http://static.example.org/assets/", "a.jpg", "http://static.example.org/assets/a.jpg"),    # absolute
    ("media/", "a.jpg", "https://www.example.com/blog/2024/media/a.jpg"),                       # relative
    ("/root/", "a.jpg", "https://www.example.com/root/a.jpg"),                                  # root-relative
    ("/root/", "/b.jpg", "https://www.example.com/b.jpg"),
    ("//cdn.example.net/x/y", "a.jpg", "https://cdn.example.net/x/a.jpg"),
    ("", "a.jpg", "https://www.example.com/blog/2024/a.jpg"),                                   # empty href
    ("#top", "a.jpg", "https://www.example.com/blog/2024/a.jpg"),                               # target-only
])
def test_base_href(base_href, src, url):
    assert run([(src, "t")], base_href=base_href)[0] == [(url, "t", None)]


def test_drops_and_counts():
    images = [
        ("a.jpg", None),                      # no alt attribute
        ("b.jpg", ""),                        # empty alt
        ("c.jpg", " \u00a0\u3000 "),          # whitespace-only alt
        ("", "empty src"),
        ("   ", "blank src"),
        ("data:image/png;base64,AAAA", "data uri"),
        ("javascript:void(0)", "js"),
        ("about:blank", "about"),
        ("mailto:x@example.com", "mail"),
        ("d.jpg", "dup"),
        ("d.jpg", " dup "),                   # same (url, text) after normalisation
        ("/blog/2024/d.jpg", "dup"),          # same resolved URL
        ("d.jpg", "Dup"),                     # different text: kept
        ("http://[::1/x.jpg", "bad ipv6"),    # urljoin raises ValueError
    ]
    out, counts = run(images)
    assert out == [("https://www.example.com/blog/2024/d.jpg", "dup", None),
                   ("https://www.example.com/blog/2024/d.jpg", "Dup", None)]
    assert counts == {"images": 14, "images_with_alt": 13, "pairs": 2, "dropped.no_alt": 1,
                      "dropped.empty_alt": 2, "dropped.empty_src": 2, "dropped.non_http_url": 4,
                      "dropped.duplicate_in_page": 2, "dropped.invalid_url": 1}
    out, counts2 = run(images, keep_dropped=True)
    assert counts2 == counts
    assert [(u[:12], t, d) for u, t, d in out] == [
        ("data:image/p", "data uri", "non_http_url"), ("javascript:v", "js", "non_http_url"),
        ("about:blank", "about", "non_http_url"), ("mailto:x@exa", "mail", "non_http_url"),
        ("https://www.", "dup", None), ("https://www.", "dup", "duplicate_in_page"),
        ("https://www.", "dup", "duplicate_in_page"), ("https://www.", "Dup", None),
        ("http://[::1/", "bad ipv6", "invalid_url")]


def test_caps_and_clipping_of_dropped_candidates():
    long_text = "word " * 30                  # 149 chars after normalisation
    long_src = "/" + "p" * 100
    images = [("a.jpg", long_text), (long_src, "fine"), ("b.jpg", "x" * 20), ("data:" + "A" * 500, "d")]
    out, counts = run(images, keep_dropped=True, max_text=20, max_url=60)
    assert out == [("https://www.example.com/blog/2024/a.jpg", "word word word word ", "text_too_long"),
                   (("https://www.example.com" + long_src)[:60], "fine", "url_too_long"),
                   ("https://www.example.com/blog/2024/b.jpg", "x" * 20, None),
                   ("data:" + "A" * 55, "d", "non_http_url")]
    assert counts["dropped.text_too_long"] == 1 and counts["dropped.url_too_long"] == 1 and counts["pairs"] == 1


def test_relative_src_without_page_url_is_not_http():
    assert run([("a.jpg", "x"), ("http://ok.example/a.jpg", "y")], page_url="")[0] == [
        ("http://ok.example/a.jpg", "y", None)]


def test_entities_are_not_decoded_again():
    # the parser (or the WAT writer) already decoded entities: "&amp;" here is literal text
    assert run([("/a?x=1&amp;y=2", "Tom &amp; Jerry")])[0] == [
        ("https://www.example.com/a?x=1&amp;y=2", "Tom &amp; Jerry", None)]


def test_resolve_base_and_is_http():
    assert resolve_base(PAGE, None) == PAGE
    assert resolve_base(PAGE, "../") == "https://www.example.com/blog/"
    assert [is_http_url(u) for u in ("http://a", "HTTPS://a", "ftp://a", "data:x", "http", "/a", ":http")] == [
        True, True, False, False, False, False, False]


# ------------------------------------------------------------------ BaseURL.join == urljoin
EDGE_SRCS = [
    "/a", "/a/", "/", "//h/p", "///p", "/a;p", "/a;", "/a?", "/a#", "/a?#f", "/a?q#", "/a#f?", "/./a", "/a/../b",
    "/a/.", "/a//b", "/a\tb", "/a\nb", "/[x]", "/a b", "/é", "/a?x=//y", "http://h", "http://h/", "http://h?q",
    "http://h#f", "http://h:80/p", "http://u@h/p", "http:///p", "http://", "http://h/p;x", "http://h/./a",
    "http://[::1]/p", "http://[::1/p", "http://h]/p", "http://hé/p", "http://h\u2100/p", "https://h/p?q#f",
    "http://h/p?", "http://h/p#", "HTTP://h/p", "http:/h/p", "http:h", "h", "hx://h/p", "http://h /p",
    "//", "/\x01", "http://h/\x7f", "http://h\x7f/p", "?q", "#f", "../..", ".", "a/./b/../c", "javascript:x",
    "a.jpg", "img/a.jpg", "a/b/", "a?x=1", "a#f", "a b.jpg", "é.jpg", "hello.jpg", "h", "a:b", "a//b", "a/../b",
    ".hidden", "..x", "\x01a", " a", "//h", "//h:80/p?q#f", "//h?q", "//h#f", "//é/p", "//[::1]/p", "//h/p;x",
    "//h/./p", "///x", "//h\t/p", "%2e%2e/a", "a\\b", "a?", "a#", "a?#",
    # other schemes (returned as is) and dot segments (urljoin's segment algorithm)
    "data:image/gif;base64,R0lG", "DATA:x", "javascript:void(0)", "mailto:a@b", "about:blank", "x1+.-:y",
    "1a:b", "a_b:c", "data://[x", "data://h/p", "ht\ttp://h/p", "da\nta:x", "ftp:x;y", "sip:a;b=c", "é:x",
    "./a", "../a", "../../a", "../../../../../a", "./", "../", "..", "./.", "./..", "../a/", "../a/..",
    "../a?x=/./b", "../a#f/../g", "../a?q#f", "./a?", "./a#", "./a?#", "../a;p", "..//a", "./a//b", "../a:b",
    "./[x]", "./a\tb", "../é/ü.jpg", "./a b", ".././.././a", "../.hidden/a", "./...", "..../a",
]
EDGE_BASES = [PAGE, "http://h.example", "http://h.example/dir/", "HTTPS://H.example/x", "ftp://f.example/d/",
              "", "about:blank", "http://[::1]/p/", "http://[::1/p", "http://u:p@h:8080/a;b?c#d",
              "http://h.example/a\tb/", "https:///nohost/", "//no-scheme/x", "http://h/a//b/c", "http://h/a/../",
              "http://h/a;p/b;q?x#y", "http://h", "https://h?q", "http://h/a/./b/..", "http://h/..", "http://h/a/b/",
              "http://h/a/b;p", "http://h/a/;p", "http://h/", "http:/x/y", "http:x", "http:///a/b", "http://h/a/b/c/d",
              "http://h?q/a/b", "http://h#/a/b", "http://h/a.b/c"]


def _same(base, src):
    try:
        want = ("ok", urljoin(base, src))
    except ValueError:
        want = ("err",)
    try:
        got = ("ok", BaseURL(base).join(src))
    except ValueError:
        got = ("err",)
    return want == got


def test_base_url_join_equals_urljoin_on_edge_cases():
    bad = [(b, s) for b in EDGE_BASES for s in EDGE_SRCS if not _same(b, s)]
    assert bad == []


def test_base_url_join_equals_urljoin_fuzzed():
    rng = random.Random(7)
    pieces = ["/", "//", ".", "..", "./", "?", "#", "?#", ";", ":", "[", "]", "@", " ", "\t", "\n", "%2F", "é",
              "a", "Z", "9", "-", "http://", "https://", "h.example", "\x00", "\u3000", "&amp;", "../", "./",
              "data:", "x:", "mailto:", "+"]
    bad = []
    for _ in range(60000):
        src = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 8)))
        base = rng.choice(EDGE_BASES)
        if not _same(base, src):
            bad.append((base, src))
    assert bad == []


def test_plain_http_base_equals_urlsplit():
    """The regex shortcut for http(s) bases gives urlsplit's scheme://netloc and urlparse's
    path wherever it matches; fuzzed."""
    from urllib.parse import urlparse, urlsplit

    from metaclip_spark.formats.pairs import _plain_http_base

    rng = random.Random(11)
    pieces = ["http://", "https://", "HTTP://", "h.example", ":80", "@", "[", "]", "/", "//", "?", "#", ";", "a",
              ".", "..", " ", "\t", "\n", "é", "%2F", "\x00", "\x7f", "=", "&", "~", "|", "\\"]
    matched = 0
    for n in range(40000):
        base = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 9)))
        if n % 3 == 0:
            base = rng.choice(["http://", "https://"]) + base
        m = _plain_http_base(base)
        if m is None:
            continue
        matched += 1
        parts = urlsplit(base)
        assert m.group(1) == parts.scheme + "://" + parts.netloc, base
        assert m.group(2) == urlparse(base).path, base
    assert matched > 3000
