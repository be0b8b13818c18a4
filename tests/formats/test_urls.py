"""Curated URLs in their request form (metaclip_spark/formats/urls.py) and the curated order."""

import http.server
import threading
import urllib.parse
import urllib.request

import numpy as np
import pyarrow as pa
import pytest

from metaclip_spark.steps.draws import key_hashes
from metaclip_spark.steps.curated import downloadable
from metaclip_spark.run.schema import POOL_SCHEMA
from metaclip_spark.steps.pipeline import index_columns
from metaclip_spark.formats.urls import request_url

CASES = [
    ("http://a.com/ok.jpg", "http://a.com/ok.jpg"),                                  # unchanged (fast path)
    ("http://a.com/my photo 45.jpg", "http://a.com/my%20photo%2045.jpg"),
    ("https://straße.de/straße.jpg?q=ä b#frag", "https://xn--strae-oqa.de/stra%C3%9Fe.jpg?q=%C3%A4%20b"),
    ("http://A.Example.COM/Img.JPG", "http://a.example.com/Img.JPG"),                # host lower-cased only
    ("http://a.com/x%20y%zz%4.jpg", "http://a.com/x%20y%25zz%254.jpg"),              # escapes kept, stray % escaped
    ("http://a.com", "http://a.com/"),
    ("http://a.com:8080/a b?x=1&y=<2>", "http://a.com:8080/a%20b?x=1&y=%3C2%3E"),
    ("http://[::1]:80/x y", "http://[::1]:80/x%20y"),
    ("http://u:p w@h.com/x", "http://u:p%20w@h.com/x"),
    ("http://h.com/a?b", "http://h.com/a?b"),
    ("http://h.com/?", "http://h.com/?"),
    ("http://h.com/\x01\x7f\"{|}", "http://h.com/%01%7F%22%7B%7C%7D"),
    ("http://h.com/\U0001F600.png", "http://h.com/%F0%9F%98%80.png"),
    ("http://h.com/\ud800.png", "http://h.com/%ED%A0%80.png"),                        # a lone surrogate: its bytes
    ("http://bücher.example/x", "http://xn--bcher-kva.example/x"),
]


@pytest.mark.parametrize("raw,want", CASES)
def test_request_form(raw, want):
    assert request_url(raw) == want
    assert request_url(want) == want                                                 # idempotent


@pytest.mark.parametrize("raw", ["http://a.com:99999/x", "ftp://h.com/x", "http:///x", "http://a\u200b\u0000.com/x",
                                 "http://xn--a-.com\u00e9/x"])
def test_unencodable_urls_give_none(raw):
    assert request_url(raw) is None


class _Images(http.server.BaseHTTPRequestHandler):
    seen: list = []

    def do_GET(self):
        _Images.seen.append(urllib.parse.unquote(self.path, errors="surrogatepass"))
        body = b"\x89PNG\r\n\x1a\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_python_http_clients_fetch_the_request_form_and_not_the_raw_url():
    """urllib (img2dataset's client) refuses raw URLs with spaces or non-ASCII ("URL can't
    contain control characters", 'ascii' codec errors); their request form is fetched, and the
    server sees the original path."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Images)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = "http://127.0.0.1:%d" % server.server_port
    paths = ["/my photo 45.jpg", "/straße.jpg", "/a b/c?x=é d"]
    try:
        failed = 0
        for p in paths:
            try:
                urllib.request.urlopen(base + p, timeout=10).read()
            except (UnicodeError, ValueError, http.client.InvalidURL):
                failed += 1
        assert failed == 3
        _Images.seen.clear()
        for p in paths:
            assert urllib.request.urlopen(request_url(base + p), timeout=10).read() == b"\x89PNG\r\n\x1a\n"
        assert _Images.seen == paths
    finally:
        server.shutdown()


def _kept(urls, pages):
    texts = ["caption %d" % i for i in range(len(urls))]
    n = len(urls)
    return pa.table({
        "url": urls, "text": texts, "entry_ids": pa.array([[0]] * n, pa.list_(pa.int32())), "page_url": pages,
        "lid_score": pa.array(np.full(n, 0.9, np.float32)), "source": ["s"] * n, "record_id": ["r"] * n,
        "record_offset": pa.array(np.zeros(n, np.int64)), "key_hash": pa.array(key_hashes(urls, texts)),
        **index_columns(urls, texts, "c"), "text_field": ["alt"] * n, "lang": ["en"] * n,
    }, schema=POOL_SCHEMA)


def test_curated_form_encodes_counts_and_shuffles_deterministically():
    # 40 pages of 10 images each, in page order (as stage 1 writes them)
    urls = ["http://host%d.example/img %d.jpg" % (p, i) for p in range(40) for i in range(10)]
    pages = ["http://host%d.example/page" % p for p in range(40) for _ in range(10)]
    urls[7] = "http://a.com:99999/x.jpg"
    table, bad = downloadable(_kept(urls, pages), seed=0)
    assert bad == 1 and table.num_rows == 399
    assert sorted(table.column("url").to_pylist()) == sorted(request_url(u) for u in urls if request_url(u))
    same_page = lambda t: float(np.mean([a == b for a, b in zip(t.column("page_url").to_pylist()[:-1],
                                                                 t.column("page_url").to_pylist()[1:])]))
    assert same_page(_kept(urls, pages)) == 360 / 399                   # before: 9 of 10 neighbours share a page
    assert same_page(table) < 0.1
    again, _ = downloadable(_kept(urls, pages).slice(0, 200).take(pa.array(np.arange(199, -1, -1))), seed=0)
    firsts = [u for u in table.column("url").to_pylist() if u in set(again.column("url").to_pylist())]
    assert again.column("url").to_pylist() == firsts                   # order depends on the rows' keys only
    other, _ = downloadable(_kept(urls, pages), seed=1)
    assert other.column("url").to_pylist() != table.column("url").to_pylist()


def test_shortcuts_equal_the_parsed_path():
    """request_url's shortcuts (clean URL, upper-case host, plain host) give what parsing gives,
    on generated URLs mixing every case the shortcuts must tell apart."""
    import random

    from metaclip_spark.formats.urls import _request_url_parsed, request_urls

    rng = random.Random(5)
    parts = ["a", "Z", "0", " ", "%20", "%", "%zz", "ß", "é", "\U0001F600", "?", "&", "=", "#", "/", ".", "..", "~",
             "\t", "\n", "\x01", "\"", "<", "|", "{", "'", "(", "+", ":", "@", "!", "$", "*", ",", ";", "[", "]", "\\"]
    hosts = ["a.com", "A.Com", "xn--bcher-kva.example", "bücher.example", "h.example:8080", "u:p@h.com", "[::1]", "1.2.3.4"]
    urls = []
    for _ in range(4000):
        path = "".join(rng.choice(parts) for _ in range(rng.randint(0, 8)))
        urls.append("%s://%s/%s" % (rng.choice(["http", "https", "HTTP", "Https"]), rng.choice(hosts), path))
    for u in urls:
        assert request_url(u) == _request_url_parsed(u), u
    got, ok = request_urls(pa.array(urls))
    assert [g if k else None for g, k in zip(got.to_pylist(), ok)] == [request_url(u) for u in urls]
