"""HTTP block parsing, content/charset decoding and <img> extraction with Lexbor; real WARCs
(../shared) end to end against an independent html.parser oracle (check_cc_corpus.py's rules)."""

import gzip
import zlib
from urllib.parse import urljoin

import pytest

from metaclip_spark.formats import html as hp
from metaclip_spark.steps.extract import ExtractLimits, pairs_from_warc
from metaclip_spark.run.stats import Stats
from tests.conftest import shared_path
from tests.formats.html_oracle import html_pages
from tests.formats.test_warc import html_response

PAGE_HTML = """<html><head><base target="_blank"><base href="/b/"><base href="/c/"></head><body>
<img src="a.jpg?x=1&amp;y=2" alt="Tom &amp; Jerry&nbsp;&#x263A;">
<img src=" spaced.jpg " alt=&nbsp;>
<img src='q.jpg' alt='it&apos;s "q"'/>
<IMG SRC=U.JPG ALT=Upper>
<img srcset="s1.jpg 1x" alt="srcset only">
<img data-src="lazy.jpg" alt="data-src only">
<img src="data:image/gif;base64,R0lGOD" data-src="real.jpg" alt="lazy">
<picture><source srcset="p.webp"><img src="p.jpg" alt="pic"></picture>
<input type="image" src="in.jpg" alt="input">
<!-- <img src="c.jpg" alt="comment"> -->
<script>var s='<img src="s.jpg" alt="script">';</script>
<style>/* <img src="st.jpg" alt="style"> */</style>
<noscript><img src="ns.jpg" alt="noscript"></noscript>
<img src="r1.jpg" alt="first" src="r2.jpg" alt="second">
<img src alt="valueless src">
<img src="v.jpg" alt>
<img src="noalt.jpg">
</body></html>"""


def test_html_images_rules():
    images, base = hp.html_images(PAGE_HTML)
    assert images == [
        ("a.jpg?x=1&y=2", "Tom & Jerry\u00a0\u263a"),     # entities decoded once, NBSP kept for split()
        (" spaced.jpg ", "\u00a0"),                        # not stripped here (pairs.py does it)
        ("q.jpg", "it's \"q\""),                           # single quotes, self-closing
        ("U.JPG", "Upper"),                                # upper-case tag and attribute names, unquoted
        ("data:image/gif;base64,R0lGOD", "lazy"),          # srcset/data-src alone do not count
        ("p.jpg", "pic"),
        ("ns.jpg", "noscript"),                            # <noscript> content is markup
        ("r1.jpg", "first"),                               # first of repeated attributes
        ("", "valueless src"),
        ("v.jpg", ""),                                     # valueless alt = ""
        ("noalt.jpg", None),                               # no alt attribute
    ]
    assert base == "/b/"                                   # first <base> with href


def test_html_images_base_variants():
    assert hp.html_images("<img src=x alt=y>")[1] is None
    assert hp.html_images("<base href><img src=x alt=y>")[1] == ""
    assert hp.html_images('<body><img src=x alt=y><base href="late/">')[1] == "late/"   # anywhere in the tree
    assert hp.html_images('<!-- <base href="/no/"> --><img src=x alt=y>')[1] is None


def test_html_images_accepts_utf8_bytes():
    assert hp.html_images('<img src="é.jpg" alt="café">'.encode("utf-8")) == ([("é.jpg", "café")], None)


# ------------------------------------------------------------------ HTTP
def test_split_http():
    block = b"HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\ncontent-type: text/plain\r\nX: a: b\r\n\r\n<p>x"
    assert hp.split_http(block) == (404, {"content-type": "text/html", "x": "a: b"}, b"<p>x")
    assert hp.split_http(b"HTTP/1.0 200 OK\nContent-Type: text/html\n\nbody\r\n\r\nmore") == (
        200, {"content-type": "text/html"}, b"body\r\n\r\nmore")
    assert hp.split_http(b"HTTP/1.1 301\r\nLocation: /x") == (301, {"location": "/x"}, b"")
    assert hp.split_http(b"HTTP/1.1 abc\r\n\r\n") == (None, {}, b"")
    assert hp.split_http(b"\r\nHTTP/1.1 200 OK\r\n\r\nx") == (200, {}, b"x")
    assert hp.split_http(b"<html>not http</html>") is None
    assert hp.split_http(b"") is None


@pytest.mark.parametrize("ctype,is_html", [
    ("text/html", True), ("TEXT/HTML; charset=UTF-8", True), (" text/html ;charset=x", True),
    ("application/xhtml+xml", True), ("text/plain", False), ("application/xml", False), ("", False),
    (None, False), ("text/htmlx", False), ("image/jpeg", False)])
def test_media_type(ctype, is_html):
    assert (hp.media_type(ctype) in hp.HTML_TYPES) is is_html


def test_dechunk():
    assert hp.dechunk(b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n") == b"hello world"
    assert hp.dechunk(b"a\r\n0123456789\r\n0\r\n") == b"0123456789"
    assert hp.dechunk(b"<html>not chunked</html>") == b"<html>not chunked</html>"     # server lied
    assert hp.dechunk(b"5\r\nhello\r\nzz\r\nrest") == b"hello"                         # cut at the damage
    assert hp.dechunk(b"") == b""


def test_decode_content():
    body = b"<img src=x alt=y>" * 50
    assert hp.decode_content(gzip.compress(body), "gzip", 10_000) == body
    assert hp.decode_content(gzip.compress(body), "x-gzip", 10_000) == body
    assert hp.decode_content(zlib.compress(body), "deflate", 10_000) == body
    raw = zlib.compressobj(wbits=-15)
    assert hp.decode_content(raw.compress(body) + raw.flush(), "deflate", 10_000) == body     # raw deflate
    assert hp.decode_content(body, "identity", 10_000) == body
    with pytest.raises(hp.PayloadError):
        hp.decode_content(body, "gzip", 10_000)
    with pytest.raises(hp.PayloadError):
        hp.decode_content(body, "compress", 10_000)
    with pytest.raises(hp.PayloadTooLarge):
        hp.decode_content(gzip.compress(body), "gzip", 100)


def test_decode_content_brotli():
    brotli = pytest.importorskip("brotli")
    body = b"<img src=x alt=y>" * 50
    assert hp.decode_content(brotli.compress(body), "br", 10_000) == body
    assert hp.decode_content(brotli.compress(gzip.compress(body)), "gzip, br", 10_000) == body
    with pytest.raises(hp.PayloadError):
        hp.decode_content(body, "br", 10_000)
    with pytest.raises(hp.PayloadTooLarge):
        hp.decode_content(brotli.compress(body), "br", 100)


def test_http_payload():
    body = b"<p>hi</p>"
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(gzip.compress(body)), gzip.compress(body))
    assert hp.http_payload({"transfer-encoding": "chunked", "content-encoding": "gzip"}, chunked, 1000) == (body, True)
    # ClueWeb09 quirk: Content-Encoding: gzip over a stored decoded body -> used as stored
    assert hp.http_payload({"content-encoding": "gzip"}, body, 1000) == (body, False)
    # CommonCrawl renames the headers: X-Crawler-* are not decoded
    assert hp.http_payload({"x-crawler-content-encoding": "gzip"}, body, 1000) == (body, True)


# ------------------------------------------------------------------ charsets
@pytest.mark.parametrize("label,codec", [
    ("utf-8", "utf-8"), ("UTF8", "utf-8"), (" latin-1 ", "iso8859-1"), ("ISO-8859-1", "iso8859-1"),
    ("windows-1251", "cp1251"), ("cp1251", "cp1251"), ("shift_jis", "shift_jis"), ("EUC-JP", "euc_jp"),
    ("gb2312", "gb2312"), ("no-such-charset", None), ("x-user-defined", None), ("base64", None),
    ("rot13", None), ("zip", None), ("", None), (None, None)])
def test_codec_for(label, codec):
    assert hp.codec_for(label) == codec


@pytest.mark.parametrize("ctype,payload,codec", [
    ("text/html; charset=ISO-8859-1", b"<meta charset=utf-8>", "iso8859-1"),          # HTTP wins
    ("text/html;charset=\"windows-1251\"", b"", "cp1251"),
    ("text/html", b'<meta http-equiv="Content-Type" content="text/html; charset=windows-1251">', "cp1251"),
    ("text/html", b"<META CHARSET='Shift_JIS'>", "shift_jis"),
    ("text/html; charset=bogus", b'<meta charset="cp1251">', "cp1251"),                 # unknown label falls through
    ("text/html; charset=bogus", b'<meta charset="bogus2">', "utf-8"),
    ("text/html; charset=base64", b"", "utf-8"),                                        # not a text codec
    ("text/html", b" " * 4100 + b'<meta charset="cp1251">', "utf-8"),                  # beyond 4096 bytes
    ("text/html", b" " * 4000 + b'<meta charset="cp1251">', "cp1251"),
    (None, b"<p>", "utf-8"),
])
def test_page_codec(ctype, payload, codec):
    assert hp.page_codec(payload, ctype) == codec


def test_parser_input():
    assert hp.parser_input(b"ascii", "utf-8") == b"ascii"
    assert hp.parser_input("é".encode(), "utf-8") == "é".encode()           # valid UTF-8: bytes as they are
    assert hp.parser_input(b"a\xffb", "utf-8") == "a\ufffdb"                # invalid: Python's replacement
    assert hp.parser_input("é".encode(), "iso8859-1") == "Ã©"              # header says latin-1, body is UTF-8
    assert hp.parser_input("Привет".encode("cp1251"), "cp1251") == "Привет"


def test_charset_traps_end_to_end():
    html = '<img src="/ü.jpg" alt="Grüße">'.encode("utf-8")
    lat = hp.parser_input(html, hp.page_codec(html, "text/html; charset=latin-1"))
    assert hp.html_images(lat)[0] == [("/Ã¼.jpg", "GrÃ¼Ã\x9fe")]           # ß = C3 9F
    cyr = '<meta charset="windows-1251"><img src="a.jpg" alt="Привет мир">'.encode("cp1251")
    assert hp.html_images(hp.parser_input(cyr, hp.page_codec(cyr, "text/html")))[0] == [("a.jpg", "Привет мир")]
    unk = '<img src="a.jpg" alt="naïve">'.encode("utf-8")
    assert hp.html_images(hp.parser_input(unk, hp.page_codec(unk, "text/html; charset=x-unknown")))[0] == [
        ("a.jpg", "naïve")]


# ------------------------------------------------------------------ real WARCs: html.parser oracle
def by_page(rows):
    pages = {}
    for r in rows:
        pages.setdefault(r["record_id"], (r["page_url"], []))[1].append([r["url"], r["text"]])
    return pages


def oracle(path):
    """check_cc_corpus.py's rules with html.parser, records read by warcio (decoded bodies)."""
    pages = {}
    for record_id, page_url, base, imgs in html_pages(path):
        base = urljoin(page_url, base) if base is not None else page_url
        pairs = []
        for src, alt in imgs:
            if src is None or alt is None or not src.strip() or not " ".join(alt.split()):
                continue
            url, text = urljoin(base, src.strip()), " ".join(alt.split())
            if ":" in url and url.split(":", 1)[0].lower() in ("http", "https") and [url, text] not in pairs:
                pairs.append([url, text])
        if pairs:
            pages[record_id] = (page_url, pairs)
    return pages


@pytest.mark.parametrize("name,html_pages,pairs", [
    ("cc/resiliparse-warcfile.warc.gz", 16, 30), ("cc/tika-cc.warc.gz", 1, 6), ("cc/whirlwind.warc.gz", 1, 7),
    ("web/aut-example.warc.gz", 140, 377), ("web/clueweb-quirk.warc.gz", 29, 440),
    ("web/gowarc-test.warc.gz", 7, 208), ("web/sample-0000.warc.gz", 22, 57), ("web/sample-0001.warc.gz", 15, 105)])
def test_real_warcs_match_html_parser_oracle(name, html_pages, pairs):
    path = shared_path("data", *name.split("/"))
    st = Stats()
    got = by_page(pairs_from_warc(path, st))
    assert got == oracle(path)
    assert st["html_pages"] == html_pages and st["pairs"] == pairs and st.errors == []


def test_real_clipped_warc_yields_nothing():
    st = Stats()
    assert list(pairs_from_warc(shared_path("data", "web", "clipped.warc.gz"), st)) == []
    assert st["errors.truncated_gzip"] == 1 and st["records_read"] == 0


# ------------------------------------------------------------------ nesting pre-check (issue #13 item 11)
def _nested(n, tag="div"):
    """``n`` nested elements around one image: nesting work n*n + n (start tags see 0..n-1
    open elements, the image n, the end tags n..1)."""
    return "<%s>" % tag * n + '<img src="deep.jpg" alt="deep image">' + "</%s>" % tag * n


def test_nesting_work_counts_open_elements_per_tag():
    assert hp.nesting_work(_nested(3)) == 12 and hp.nesting_work(_nested(200).encode()) == 200 * 200 + 200
    # void elements, comments, raw text never nest; <p>/<li>/<option>/<td> close their kind
    assert hp.nesting_work("<br><img src=a><!-- <div><div> --><script>'<div><div>'</script><div></div>") == 1
    assert hp.nesting_work("<ul><li>a<li>b<li>c</ul>") == 0 + 1 + 2 + 2 + 2
    assert hp.nesting_work("<p>a<p>b<div>c</div>") == 0 + 1 + 1 + 1
    assert hp.nesting_work("<select>" + "<option>x" * 1000 + "</select>") == 1 + 999 * 2 + 2
    assert hp.nesting_work("<div><span></div></span><div>") == 0 + 1 + 2 + 0 + 0    # stray </span>: nothing


def test_deep_page_dropped_beside_normal_pages(tmp_path):
    """The issue's page: 100k nested <div> (1.1 MB, under the 5 MB cap; ~15 s in Lexbor) is
    skipped before parsing with its own drop reason; the pages around it keep their pairs."""
    raws = [html_response("http://a.example/", '<img src="/a.jpg" alt="before">', "<urn:uuid:a>"),
            html_response("http://deep.example/", _nested(100_000), "<urn:uuid:deep>"),
            html_response("http://b.example/", _nested(50) + '<img src="/b.jpg" alt="after">', "<urn:uuid:b>")]
    path = tmp_path / "deep.warc.gz"
    path.write_bytes(b"".join(gzip.compress(r) for r in raws))
    st = Stats()
    got = [(r["record_id"], r["url"], r["text"]) for r in pairs_from_warc(path, st)]
    assert got == [("<urn:uuid:a>", "http://a.example/a.jpg", "before"),
                   ("<urn:uuid:b>", "http://b.example/deep.jpg", "deep image"),
                   ("<urn:uuid:b>", "http://b.example/b.jpg", "after")]
    assert st["dropped.html_too_deep"] == 1 and st["html_pages"] == 3 and st["pairs"] == 3
    assert st.dropped() == {"html_too_deep": 1}


def test_page_at_the_nesting_limit_still_parses(tmp_path):
    raws = [html_response("http://deep.example/", _nested(200), "<urn:uuid:deep>")]
    path = tmp_path / "edge.warc.gz"
    path.write_bytes(b"".join(gzip.compress(r) for r in raws))
    work = 200 * 200 + 200
    st = Stats()
    got = list(pairs_from_warc(path, st, limits=ExtractLimits(max_nesting_work=work)))
    assert [(r["url"], r["text"]) for r in got] == [("http://deep.example/deep.jpg", "deep image")]
    assert st["dropped.html_too_deep"] == 0
    st = Stats()
    assert list(pairs_from_warc(path, st, limits=ExtractLimits(max_nesting_work=work - 1))) == []
    assert st["dropped.html_too_deep"] == 1 and st["html_pages"] == 1
    with pytest.raises(hp.HtmlTooDeep):
        hp.html_images(_nested(200), max_nesting_work=work - 1)
    assert hp.html_images(_nested(200), max_nesting_work=work)[0] == [("deep.jpg", "deep image")]
