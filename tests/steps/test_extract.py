"""End to end: WARC/WAT files -> pair records, against hand-written pages, the generated
corpus' ground truth (make_cc_corpus.py) and its damaged files. Real WARCs against an
html.parser oracle: test_htmlpairs.py."""

import gzip
import io
import json
import re
import subprocess
import sys
import zlib

import pytest
from warcio.archiveiterator import ArchiveIterator

from metaclip_spark.steps.extract import (ExtractLimits, Page, pages_from_file, pairs_from_file, pairs_from_wat,
                                    pairs_from_warc)
from metaclip_spark.run.stats import Stats
from metaclip_spark.formats.warc import read_records
from tests.conftest import shared_path
from tests.formats.test_warc import html_response, raw_record

MAIN_HTML = """<html><head><title>t</title></head><body>
<img src="rel/a.jpg" alt="Relative">
<img src="/root/b.jpg" alt="Root relative">
<img src="//cdn.example.net/c.jpg" alt="Protocol relative">
<IMG SRC="https://abs.example.org/d.jpg?x=1&amp;y=2" ALT="Upper &amp; entity">
<img src='e.jpg' alt='single'><img src=f.jpg alt=unquoted>
<img src="g.jpg" alt="first" alt="second" src="h.jpg">
<img src="data:image/gif;base64,R0lGODlh" alt="data uri">
<img src="javascript:void(0)" alt="js">
<img src="i.jpg" alt="&nbsp;&nbsp;"><img src="j.jpg" alt="\u3000"><img src="k.jpg" alt="">
<img src="   " alt="blank src">
<img src="l.jpg" alt="  nbsp\u00a0inside\n newline ">
<!-- <img src="comment.jpg" alt="in comment"> -->
<script>document.write('<img src="script.jpg" alt="in script">');</script>
<noscript><img src="ns.jpg" alt="in noscript"></noscript>
<img srcset="set.jpg 2x" alt="srcset only"><img data-src="lazy.jpg" alt="data-src only">
<img src="rel/a.jpg" alt="Relative">
<img src="m.jpg">
</body></html>"""
PAGE = "http://www.example.com/dir/page.html"


def main_expected(source, offset, record_id="<urn:uuid:main>", page=PAGE):
    rows = [("http://www.example.com/dir/rel/a.jpg", "Relative"), ("http://www.example.com/root/b.jpg", "Root relative"),
            ("http://cdn.example.net/c.jpg", "Protocol relative"),
            ("https://abs.example.org/d.jpg?x=1&y=2", "Upper & entity"), ("http://www.example.com/dir/e.jpg", "single"),
            ("http://www.example.com/dir/f.jpg", "unquoted"), ("http://www.example.com/dir/g.jpg", "first"),
            ("http://www.example.com/dir/l.jpg", "nbsp inside newline"),
            ("http://www.example.com/dir/ns.jpg", "in noscript")]
    return [{"url": u, "text": t, "page_url": page, "source": source, "record_id": record_id,
             "record_offset": offset, "drop": None} for u, t in rows]


def build(tmp_path, raws, name="t.warc.gz"):
    members = [gzip.compress(r) for r in raws]
    path = tmp_path / name
    path.write_bytes(b"".join(members))
    return path, [sum(map(len, members[:i])) for i in range(len(members))]


def test_main_page_rules(tmp_path):
    path, off = build(tmp_path, [html_response(PAGE, MAIN_HTML, "<urn:uuid:main>")])
    st = Stats()
    assert list(pairs_from_warc(path, st)) == main_expected(str(path), off[0])
    assert dict(st.counts) == {"records_read": 1, "records.response": 1, "html_pages": 1, "images": 17,
                               "images_with_alt": 16, "pairs": 9, "dropped.no_alt": 1, "dropped.empty_alt": 3,
                               "dropped.empty_src": 1, "dropped.non_http_url": 2, "dropped.duplicate_in_page": 1}
    dropped = [(r["url"][:10], r["text"], r["drop"]) for r in pairs_from_warc(path, keep_dropped=True) if r["drop"]]
    assert dropped == [("data:image", "data uri", "non_http_url"), ("javascript", "js", "non_http_url"),
                       ("http://www", "Relative", "duplicate_in_page")]


def test_pages_statuses_charsets_and_non_html(tmp_path):
    utf8_alt = "Grüße"
    raws = [
        raw_record("warcinfo", "", b"x: y\r\n", rid="<urn:uuid:info>", ctype="application/warc-fields"),
        raw_record("request", PAGE, b"", http=("GET /dir/page.html HTTP/1.1", [("Host", "www.example.com")]),
                   rid="<urn:uuid:req>"),
        html_response(PAGE, MAIN_HTML, "<urn:uuid:main>"),
        html_response("http://two.example/", '<img src="http://www.example.com/dir/rel/a.jpg" alt="Relative">',
                      "<urn:uuid:two>"),                                                       # same pair, 2nd page
        html_response("http://l1.example/", '<img src="/a.jpg" alt="%s">' % utf8_alt, "<urn:uuid:latin1>",
                      content_type="text/html; charset=ISO-8859-1"),                           # header lies
        html_response("http://cy.example/", '<meta charset="windows-1251"><img src="/a.jpg" alt="Привет">'
                      .encode("cp1251"), "<urn:uuid:cp1251>"),                                 # meta only
        html_response("http://unk.example/", '<img src="/a.jpg" alt="naïve">', "<urn:uuid:unknown>",
                      content_type="text/html; charset=x-no-such"),                           # unknown label
        html_response("http://idna.example/", "<img src=/a.jpg alt=x>", "<urn:uuid:idna>",
                      content_type="text/html; charset=idna"),                                 # codec fails
        html_response("http://jpg.example/x.jpg", b"\xff\xd8\xff\xe0<img src=a alt=b>", "<urn:uuid:jpg>",
                      content_type="image/jpeg"),
        html_response("http://r.example/old", '<a href="/new"><img src="/moved.gif" alt="Moved"></a>',
                      "<urn:uuid:301>", status="301 Moved Permanently", headers=[("Location", "/new")]),
        html_response("http://r.example/missing", '<img src="/404.png" alt="Not found">', "<urn:uuid:404>",
                      status="404 Not Found"),
        html_response("http://x.example/p", '<img src="q.png" alt="xhtml"/>', "<urn:uuid:xhtml>",
                      content_type="application/xhtml+xml; charset=utf-8", version="1.1"),
        raw_record("response", "dns:www.example.com", b"20240101 www.example.com. 300 IN A 1.2.3.4\n",
                   rid="<urn:uuid:dns>", ctype="text/dns"),
        raw_record("revisit", PAGE, b"", rid="<urn:uuid:revisit>",
                   extra={"WARC-Profile": "http://netpreserve.org/warc/1.0/revisit/identical-payload-digest"}),
    ]
    path, off = build(tmp_path, raws)
    st = Stats()
    got = [(r["record_id"], r["url"], r["text"], r["page_url"], r["record_offset"]) for r in pairs_from_warc(path, st)]
    main = [(r["record_id"], r["url"], r["text"], r["page_url"], r["record_offset"])
            for r in main_expected(str(path), off[2])]
    assert got == main + [
        ("<urn:uuid:two>", "http://www.example.com/dir/rel/a.jpg", "Relative", "http://two.example/", off[3]),
        ("<urn:uuid:latin1>", "http://l1.example/a.jpg", "GrÃ¼Ã\x9fe", "http://l1.example/", off[4]),
        ("<urn:uuid:cp1251>", "http://cy.example/a.jpg", "Привет", "http://cy.example/", off[5]),
        ("<urn:uuid:unknown>", "http://unk.example/a.jpg", "naïve", "http://unk.example/", off[6]),
        ("<urn:uuid:301>", "http://r.example/moved.gif", "Moved", "http://r.example/old", off[9]),
        ("<urn:uuid:404>", "http://r.example/404.png", "Not found", "http://r.example/missing", off[10]),
        ("<urn:uuid:xhtml>", "http://x.example/q.png", "xhtml", "http://x.example/p", off[11]),
    ]
    assert st["records_read"] == 14 and st["records.response"] == 11 and st["records.revisit"] == 1
    assert st["html_pages"] == 9 and st["dropped.not_html"] == 2 and st["dropped.undecodable_page"] == 1
    assert st["pairs"] == 9 + 7 and st.errors == []


def test_chunked_gzip_deflate_br_and_quirks(tmp_path):
    html = b'<img src="/z.jpg" alt="zipped">'
    gz = gzip.compress(html)
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(gz), gz)
    raws = [
        html_response("http://c.example/", chunked, "<urn:uuid:chunked>",
                      headers=[("Transfer-Encoding", "chunked"), ("Content-Encoding", "gzip")]),
        html_response("http://d.example/", zlib.compress(html), "<urn:uuid:deflate>",
                      headers=[("Content-Encoding", "deflate")]),
        html_response("http://q.example/", html, "<urn:uuid:quirk>", headers=[("Content-Encoding", "gzip")]),
        html_response("http://cc.example/", html, "<urn:uuid:cc>", headers=[("X-Crawler-Content-Encoding", "gzip")]),
    ]
    try:
        import brotli
    except ImportError:                              # optional: only non-CC WARCs use br
        brotli = None
    if brotli is not None:
        raws.append(html_response("http://b.example/", brotli.compress(html), "<urn:uuid:br>",
                                  headers=[("Content-Encoding", "br")]))
    path, _ = build(tmp_path, raws)
    st = Stats()
    assert [(r["record_id"], r["url"]) for r in pairs_from_warc(path, st)] == [
        ("<urn:uuid:chunked>", "http://c.example/z.jpg"), ("<urn:uuid:deflate>", "http://d.example/z.jpg"),
        ("<urn:uuid:quirk>", "http://q.example/z.jpg"), ("<urn:uuid:cc>", "http://cc.example/z.jpg"),
    ] + ([("<urn:uuid:br>", "http://b.example/z.jpg")] if brotli is not None else [])
    assert st["content_encoding_ignored"] == 1


def test_angle_bracket_target_uri(tmp_path):
    raw = html_response("http://old.example/a/", '<img src="b.jpg" alt="B">', "<urn:uuid:old>", version="1.0")
    raw = raw.replace(b"WARC-Target-URI: http://old.example/a/", b"WARC-Target-URI: <http://old.example/a/>")
    path, _ = build(tmp_path, [raw])
    assert [(r["url"], r["page_url"]) for r in pairs_from_warc(path)] == [
        ("http://old.example/a/b.jpg", "http://old.example/a/")]


def test_limits(tmp_path):
    big = '<img src="/a.jpg" alt="big page">' + "x" * 5000
    raws = [html_response("http://big.example/", big, "<urn:uuid:big>"),
            html_response("http://gz.example/", gzip.compress(big.encode()), "<urn:uuid:gzbomb>",
                          headers=[("Content-Encoding", "gzip")]),
            html_response("http://ok.example/", '<img src="/%s.jpg" alt="%s">' % ("u" * 80, "t" * 30), "<urn:uuid:ok>")]
    path, _ = build(tmp_path, raws)
    st = Stats()
    limits = ExtractLimits(max_html_bytes=1000, max_text_chars=20, max_url_chars=60)
    got = [(r["record_id"], r["drop"]) for r in pairs_from_warc(path, st, limits=limits, keep_dropped=True)]
    assert got == [("<urn:uuid:ok>", "text_too_long")]
    assert st["dropped.html_too_large"] == 2 and st["html_pages"] == 3
    st = Stats()
    limits = ExtractLimits(max_html_bytes=1000, max_text_chars=30, max_url_chars=60)
    assert [r["drop"] for r in pairs_from_warc(path, st, limits=limits, keep_dropped=True)] == ["url_too_long"]
    assert [r["url"] for r in pairs_from_warc(path, limits=ExtractLimits())] == [
        "http://big.example/a.jpg", "http://gz.example/a.jpg", "http://ok.example/" + "u" * 80 + ".jpg"]


def test_inputs_and_sources(tmp_path):
    path, off = build(tmp_path, [html_response(PAGE, MAIN_HTML, "<urn:uuid:main>")])
    data = path.read_bytes()

    class NoSeek(io.RawIOBase):
        def __init__(self):
            self.inner = io.BytesIO(data)

        def readable(self):
            return True

        def readinto(self, b):
            chunk = self.inner.read(min(len(b), 333))
            b[:len(chunk)] = chunk
            return len(chunk)

    assert list(pairs_from_warc(NoSeek(), source="s3://b/k.warc.gz")) == main_expected("s3://b/k.warc.gz", 0)
    assert list(pairs_from_warc(str(path), source="name")) == main_expected("name", 0)
    with open(path, "rb") as fh:
        assert list(pairs_from_warc(fh)) == main_expected(str(path), 0)
    assert list(pairs_from_file(path)) == list(pairs_from_warc(path))
    assert list(pairs_from_wat(path)) == []                       # a WARC has no WAT records
    st = Stats()
    assert list(pairs_from_warc(tmp_path / "missing.warc.gz", st)) == [] and st["errors.open_error"] == 1
    for reader in ("warcio", "fastwarc"):
        pytest.importorskip(reader)
        assert list(pairs_from_warc(path, reader=reader)) == main_expected(str(path), 0)


def test_failures_inside_are_counted_not_raised(tmp_path, monkeypatch):
    from metaclip_spark.formats import html as htmlpairs

    path, _ = build(tmp_path, [html_response(PAGE, MAIN_HTML, "<urn:uuid:main>")] * 3)

    def flaky_reader(fh, stats, source, types, max_block):
        for i, rec in enumerate(read_records(fh, stats, source, types, max_block)):
            if i == 2:
                raise RuntimeError("boom")
            yield rec

    st = Stats()
    assert len(list(pairs_from_warc(path, st, reader=flaky_reader))) == 18
    assert st["errors.reader_error"] == 1 and "boom" in st.errors[0]["message"] and st["records_read"] == 2
    real = htmlpairs.split_http
    calls = []

    def split_once_broken(block):
        calls.append(1)
        if len(calls) == 2:
            raise TypeError("unforeseen")
        return real(block)

    monkeypatch.setattr(htmlpairs, "split_http", split_once_broken)
    st = Stats()
    assert len(list(pairs_from_warc(path, st))) == 18
    assert st["errors.bad_record"] == 1 and st["records_read"] == 3 and st["html_pages"] == 2


def test_stats_flush_on_early_close(tmp_path):
    path, _ = build(tmp_path, [html_response(PAGE, MAIN_HTML, "<urn:uuid:main>")] * 2)
    st = Stats()
    it = pairs_from_warc(path, st)
    next(it)
    it.close()
    assert st["records_read"] == 1 and st["html_pages"] == 1 and st["pairs"] == 9


# ------------------------------------------------------------------ generated corpus, ground truth
@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """make_cc_corpus.py --pages 300 --seed 7 --corrupt-rate 0.2 (the main files are
    byte-identical to a run without --corrupt-rate; bad/ is cut from them)."""
    tool = shared_path("tools", "make_cc_corpus.py")
    out = tmp_path_factory.mktemp("cc")
    subprocess.run([sys.executable, str(tool), "--pages", "300", "--seed", "7", "--corrupt-rate", "0.2",
                    "--out", str(out), "--quiet"], check=True, timeout=300)
    truth = [json.loads(line) for line in gzip.open(out / "CC-SYNTH-7-00000.truth.jsonl.gz", "rt", encoding="utf-8")]
    return out, truth


def by_page(rows):
    pages = {}
    for r in rows:
        pages.setdefault(r["record_id"], (r["page_url"], []))[1].append([r["url"], r["text"]])
    return pages


def truth_pages(truth, ids=None):
    return {t["warc_record_id"]: (t["page_url"], t["pairs"]) for t in truth
            if t["pairs"] and (ids is None or t["warc_record_id"] in ids)}


@pytest.mark.parametrize("kind", ["warc", "wat"])
def test_ground_truth(corpus, kind):
    out, truth = corpus
    path = out / ("CC-SYNTH-7-00000.warc.gz" if kind == "warc" else "CC-SYNTH-7-00000.warc.wat.gz")
    fn = pairs_from_warc if kind == "warc" else pairs_from_wat
    st = Stats()
    rows = list(fn(path, st))
    got, want = by_page(rows), truth_pages(truth)
    assert [k for k in want if got.get(k) != want[k]] == [] and set(got) == set(want)
    assert len(truth) == 288 and sum(len(t["pairs"]) for t in truth) == 3258
    assert st["html_pages"] == len(truth) and st["pairs"] == 3258 and st.errors == []
    assert rows == list(pairs_from_file(path))
    kept = [r for r in fn(path, keep_dropped=True) if r["drop"] is None]
    assert kept == rows
    if kind == "warc":                                 # offsets point at the response members
        with open(path, "rb") as fh:
            it = ArchiveIterator(fh)
            offsets = {r.rec_headers.get_header("WARC-Record-ID"): it.offset for r in it}
        assert all(r["record_offset"] == offsets[r["record_id"]] for r in rows)


@pytest.mark.parametrize("keep_dropped", [False, True])
def test_pages_are_the_pairs_grouped_by_page(corpus, keep_dropped):
    out, _ = corpus
    for name in ("CC-SYNTH-7-00000.warc.gz", "CC-SYNTH-7-00000.warc.wat.gz"):
        path = out / name
        st_pairs, st_pages = Stats(), Stats()
        rows = list(pairs_from_file(path, st_pairs, keep_dropped=keep_dropped))
        pages = list(pages_from_file(path, st_pages, keep_dropped=keep_dropped))
        assert all(isinstance(p, Page) and p.pairs for p in pages)
        flat = [{"url": u, "text": t, "page_url": p.page_url, "source": p.source, "record_id": p.record_id,
                 "record_offset": p.record_offset, "drop": d} for p in pages for u, t, d in p.pairs]
        assert flat == rows
        assert len(pages) == len({(r["record_id"], r["record_offset"]) for r in rows})
        assert st_pages.to_dict() == st_pairs.to_dict()
    assert len(rows) >= 3258


def test_ground_truth_other_readers(corpus):
    out, _ = corpus
    path = out / "CC-SYNTH-7-00000.warc.wat.gz"
    native = list(pairs_from_wat(path))
    for reader in ("warcio", "fastwarc"):
        pytest.importorskip(reader)
        assert list(pairs_from_wat(path, reader=reader)) == native


def test_bad_files(corpus):
    out, truth = corpus
    bad = out / "bad"
    exp = json.loads((bad / "EXPECTED.json").read_text())
    # truncated: the complete records before the cut, never the cut one
    st = Stats()
    with open(bad / "truncated.warc.gz", "rb") as fh:
        ids = [r.get("warc-record-id") for r in read_records(fh, st)]
    e = exp["truncated.warc.gz"]
    assert len(ids) == e["complete_records"] and ids[-1] == e["last_complete_record_id"]
    assert st["errors.truncated_gzip"] == 1 and len(st.errors) == 1
    st = Stats()
    assert by_page(pairs_from_warc(bad / "truncated.warc.gz", st)) == truth_pages(truth, set(ids))
    assert st["records_read"] == 179 and st["errors.truncated_gzip"] == 1
    # lying Content-Length: every record, the liars read to their member end
    e = exp["lying-content-length.warc.gz"]
    st = Stats()
    with open(bad / "lying-content-length.warc.gz", "rb") as fh:
        ids = [r.get("warc-record-id") for r in read_records(fh, st)]
    assert len(ids) == e["records"] and st["errors.bad_content_length"] == len(e["lying_records"]) == 12
    assert by_page(pairs_from_warc(bad / "lying-content-length.warc.gz")) == truth_pages(truth, set(ids))
    # malformed JSON: every listed record counted (those without IMG@ too: a body cut before
    # its Links is no page without images), every other page intact
    e = exp["malformed-json.warc.wat.gz"]
    listed = {x["record_id"] for x in e["malformed"]}
    with open(bad / "malformed-json.warc.wat.gz", "rb") as fh:
        recs = list(read_records(fh))
    broken_refs = {r.get("warc-refers-to") for r in recs if r.get("warc-record-id") in listed}
    st = Stats()
    got = by_page(pairs_from_wat(bad / "malformed-json.warc.wat.gz", st))
    assert len(recs) == e["records"] == st["records_read"]
    reported = {re.search(r"<urn:uuid:[^>]+>", x["message"]).group(0) for x in st.errors}
    assert reported == listed and st["errors.malformed_json"] == len(listed) == len(e["malformed"]) > 0
    all_refs = {r.get("warc-refers-to") for r in recs}
    assert got == truth_pages(truth, all_refs - broken_refs)
    # empty and not-gzip
    for name, kind in (("empty.warc.gz", "empty_file"), ("not-gzip.warc.gz", "not_gzip")):
        st = Stats()
        assert list(pairs_from_file(bad / name, st)) == [] and st["errors." + kind] == 1 and len(st.errors) == 1
