"""The compiled page rules (page_pairs in metaclip_spark/kernels/csrc/page_rules.c) against
pairs.page_pairs_py: same candidates, same counts, same exceptions, on edge cases, fuzzed
pages and every page of a generated WAT."""

import glob
import random

import pytest

from metaclip_spark.kernels import native
from metaclip_spark.formats import pairs
from metaclip_spark.formats import wat
from metaclip_spark.formats.warc import read_records
from tests.formats.test_pairs import EDGE_BASES, EDGE_SRCS

pytestmark = pytest.mark.skipif(not native.ENABLED, reason="metaclip_spark._speedups not built")

ALTS = [None, "", " ", "a", "a b", " a", "a ", "a  b", "a\tb", "a\u00a0b", "\u3000x\u3000", "x\x1fy", "x\x1cy",
        "Tom &amp; Jerry", "é ü", "\U0001f600 ok", "a\nb\r\nc", "x" * 30, "\u2028", "logo"]
SRCS = EDGE_SRCS + [" /a.jpg ", "\u00a0/b.jpg", "/c.jpg\u3000", "\t\n", "", " ", "http://h/x.jpg", "/x.jpg",
                    "img/a.jpg", "//cdn.example/c.jpg", "/a\x00//b", "a\x00//b", "h\x00//x", "hx/y//z",
                    "HTTP://H/P", "http://h/" + "p" * 40, "\u00e9/x", "h"]
PAGES = [(p, None) for p in EDGE_BASES] + [
    (None, None), ("", "/b/"), ("http://p.example/d/page", "../base/"), ("http://p.example/", "http://[x"),
    ("http://[oops", None), ("http://p.example/", "\u00e9/"), ("HTTPS://P.example/a/b", "c/")]


def run(fn, images, page, mt, mu, keep):
    counts = pairs.PageCounts()
    try:
        out = fn(images, page[0], page[1], counts, mt, mu, keep)
    except Exception as exc:             # both must raise the same
        return ("raised", type(exc).__name__, str(exc))
    return out, [getattr(counts, n) for n in pairs.PageCounts.__slots__]


def check(images, page, mt=2000, mu=2048, keep=False):
    want = run(pairs.page_pairs_py, images, page, mt, mu, keep)
    got = run(pairs.page_pairs, images, page, mt, mu, keep)
    assert got == want, (images, page, mt, mu, keep)
    return want


def test_every_edge_source_on_every_base():
    for page in PAGES:
        images = [(s, a) for s in SRCS for a in ("alt", None)]
        for keep in (False, True):
            check(images, page, keep=keep)


def test_limits_duplicates_and_dropped_clipping():
    images = [("/a.jpg", "x" * 30), ("/" + "u" * 40, "t"), ("/a.jpg", "dup"), ("/a.jpg", "dup"),
              ("data:x", "d"), ("http://[::1/x", "bad"), ("/a.jpg", "dup")]
    for keep in (False, True):
        out, counts = check(images, ("http://p.example/", None), mt=10, mu=25, keep=keep)
    assert counts == [7, 7, 1, 0, 0, 0, 1, 1, 1, 1, 2]
    assert [d for _, _, d in out] == ["text_too_long", "url_too_long", None, "duplicate_in_page", "non_http_url",
                                      "invalid_url", "duplicate_in_page"]
    assert out[0] == ("http://p.example/a.jpg", "x" * 10, "text_too_long")


def test_fuzzed_pages():
    rng = random.Random(1130)
    for _ in range(4000):
        images = [(rng.choice(SRCS), rng.choice(ALTS)) for _ in range(rng.randint(0, 12))]
        check(images, rng.choice(PAGES), mt=rng.choice([5, 2000]), mu=rng.choice([12, 2048]), keep=rng.random() < 0.5)


def test_inputs_it_does_not_take_go_to_python():
    page = ("http://p.example/", None)
    for images in ([["/a", "x"]], [("/a", "x", 1)], [(b"/a", "x")], [("/a", 5)], (("/a", "x"),), iter([("/a", "x")])):
        assert native.speedups.page_pairs(images, lambda: pairs.page_base(*page), 10, 10, False,
                                          pairs.PageCounts()) is NotImplemented
    assert check([["/a", "x"]], page)[0] == [("http://p.example/a", "x", None)]


def test_errors_propagate_like_python():
    class Boom(str):
        pass

    page = ("http://p.example/", None)
    with pytest.raises(ZeroDivisionError):
        native.speedups.page_pairs([("/a", "x")], lambda: 1 / 0, 10, 10, False, pairs.PageCounts())
    for images, mt in (([("/a", "x")], -1), ([(Boom("/a"), "x")], 9)):
        assert native.speedups.page_pairs(images, lambda: pairs.page_base(*page), mt, 9, False,
                                          pairs.PageCounts()) is NotImplemented


def test_generated_wat_pages(tmp_path):
    from metaclip_spark.synth import make_corpus

    make_corpus(str(tmp_path), pages=200, seed=5)
    (path,) = glob.glob(str(tmp_path / "*.wat.gz"))
    n = 0
    with open(path, "rb") as fh:
        for rec in read_records(fh, types={"metadata"}):
            if rec.block and wat.HAS_IMG in rec.block:
                got = wat.wat_images(rec.block)
                if got:
                    page_url, images, base = got
                    n += len(check(images, (page_url, base), keep=True)[0])
    assert n > 1000
