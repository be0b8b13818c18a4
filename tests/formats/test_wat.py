"""WAT metadata JSON -> pairs: JSON navigation, byte triage, records and real samples."""

import gzip
import io

import orjson
import pytest

from metaclip_spark.formats import wat
from metaclip_spark.steps.extract import pairs_from_file, pairs_from_wat
from metaclip_spark.run.stats import Stats
from tests.conftest import shared_path
from tests.formats.test_warc import raw_record


def wat_body(uri, links=None, base=None, html=True, kind="response", warc_type=None, status="200"):
    """A WAT JSON body in the 2023-24 CommonCrawl layout."""
    payload = {"Actual-Content-Type": "application/http; msgtype=%s" % kind}
    if kind == "response":
        resp = {"Response-Message": {"Status": status, "Version": "HTTP/1.1", "Reason": "OK"},
                "Headers": {"Content-Type": "text/html" if html else "image/jpeg"}}
        if html:
            head = {"Title": "t", "Metas": [{"charset": "utf-8"}]}
            if base is not None:
                head["Base"] = base
            resp["HTML-Metadata"] = {"Head": head, "Links": links or []}
        payload["HTTP-Response-Metadata"] = resp
    elif kind == "request":
        payload["HTTP-Request-Metadata"] = {"Request-Message": {"Method": "GET", "Path": "/IMG@x"}}
    env = {"Payload-Metadata": payload, "Format": "WARC",
           "WARC-Header-Metadata": {"WARC-Type": warc_type or kind, "WARC-Target-URI": uri}}
    return orjson.dumps({"Container": {"Filename": "x.warc.gz", "Offset": "0"}, "Envelope": env})


def wat_record(refers_to, uri, body, rid):
    return raw_record("metadata", uri, body, rid=rid, ctype="application/json",
                      extra={"WARC-Refers-To": refers_to})


LINKS = [
    {"path": "A@/href", "url": "/page", "text": "a link"},
    {"path": "IMG@/src", "url": "img/a.jpg", "alt": "Tom &amp; Jerry"},          # literal: never unescaped
    {"path": "IMG@/src", "url": "/b.jpg"},                                        # no alt
    {"path": "IMG@/src", "url": "//cdn.example.net/c.jpg", "alt": " C\u00a0 c "},
    {"path": "IMG@/src", "url": "data:image/png;base64,AA", "alt": "data"},
    {"path": "IMG@/src", "url": "img/a.jpg", "alt": "Tom &amp; Jerry"},          # duplicate
    {"path": "IMG@/srcset", "url": "s.jpg", "alt": "srcset"},
    {"path": "INPUT@/src", "url": "in.jpg", "alt": "input"},
    {"path": "IMG@/src", "alt": "no url"},
    {"path": "IMG@/src", "url": 7, "alt": "url not a string"},
    {"path": "IMG@/src", "url": "/e.jpg", "alt": ""},
]


def test_wat_images():
    got = wat.wat_images(wat_body("http://p.example/dir/page.html", LINKS, base="/base/"))
    assert got == ("http://p.example/dir/page.html",
                   [("img/a.jpg", "Tom &amp; Jerry"), ("/b.jpg", None), ("//cdn.example.net/c.jpg", " C\u00a0 c "),
                    ("data:image/png;base64,AA", "data"), ("img/a.jpg", "Tom &amp; Jerry"), ("/e.jpg", "")],
                   "/base/")


@pytest.mark.parametrize("body", [
    wat_body("http://p/", kind="request"), wat_body("http://p/", html=False), wat_body("", kind="warcinfo"),
    b'{"Envelope": []}', b"[]", b'{"Envelope": {"Payload-Metadata": {"HTTP-Response-Metadata": 5}}}',
    b'{"Envelope": {"Payload-Metadata": {"HTTP-Response-Metadata": {"HTML-Metadata": null}}}}'])
def test_wat_images_without_html_metadata(body):
    assert wat.wat_images(body) is None


def test_wat_images_odd_shapes_do_not_raise():
    body = orjson.dumps({"Envelope": {"Payload-Metadata": {"HTTP-Response-Metadata": {"HTML-Metadata": {
        "Head": [], "Links": [None, 5, "IMG@/src", [], {"path": "IMG@/src", "url": "/x", "alt": 3}]}}}}})
    assert wat.wat_images(body) == (None, [("/x", None)], None)


@pytest.mark.parametrize("body", [b'{"Envelope": ', b"{'a': 1}", b'{"a": NaN}', b"", b'{"a": "\xff"}'])
def test_wat_images_malformed(body):
    with pytest.raises(ValueError):
        wat.wat_images(body)


def test_classify():
    assert wat.classify(wat_body("http://p/", LINKS)) == wat.HTML
    assert wat.classify(wat_body("http://p/", [])) == wat.HTML_NO_IMG
    assert wat.classify(wat_body("http://p/", html=False)) == wat.NO_HTML
    # the key inside a string value is escaped, so it is not mistaken for HTML-Metadata
    assert wat.classify(orjson.dumps({"Title": '"HTML-Metadata"'})) == wat.NO_HTML
    assert wat.is_response(wat_body("http://p/", html=False)) and not wat.is_response(wat_body("", kind="request"))


def build_wat(tmp_path, name="t.warc.wat.gz"):
    page = "http://p.example/dir/page.html"
    raws = [
        raw_record("warcinfo", "", b"software: test\r\n", rid="<urn:uuid:wat-info>", ctype="application/warc-fields"),
        wat_record("<urn:uuid:req>", page, wat_body(page, kind="request"), "<urn:uuid:w1>"),
        wat_record("<urn:uuid:resp>", page, wat_body(page, LINKS, base="/base/"), "<urn:uuid:w2>"),
        wat_record("<urn:uuid:meta>", page, wat_body(page, kind="metadata"), "<urn:uuid:w3>"),
        wat_record("<urn:uuid:jpg>", "http://p.example/x.jpg", wat_body("http://p.example/x.jpg", html=False),
                   "<urn:uuid:w4>"),
        wat_record("<urn:uuid:noimg>", "http://q.example/", wat_body("http://q.example/", []), "<urn:uuid:w5>"),
        wat_record("<urn:uuid:404>", "http://q.example/missing",
                   wat_body("http://q.example/missing", [{"path": "IMG@/src", "url": "/logo.png", "alt": "Logo"}],
                            status="404"), "<urn:uuid:w6>"),
        wat_record("<urn:uuid:broken>", page, b'{"Envelope": {"Links": [{"path": "IMG@/src", ', "<urn:uuid:w7>"),
        wat_record("<urn:uuid:broken2>", page, b"{not json, no images}", "<urn:uuid:w8>"),
        raw_record("metadata", page, b"IMG@: not json\r\n", rid="<urn:uuid:w9>", ctype="application/warc-fields"),
        wat_record("<urn:uuid:resp-b>", "http://r.example/", wat_body("http://r.example/", LINKS[1:2]), "<urn:uuid:w10>"),
    ]
    members = [gzip.compress(r) for r in raws]
    path = tmp_path / name
    path.write_bytes(b"".join(members))
    offsets = [sum(map(len, members[:i])) for i in range(len(members))]
    return path, offsets


def test_pairs_from_wat_records(tmp_path):
    path, off = build_wat(tmp_path)
    st = Stats()
    got = list(pairs_from_wat(path, st, keep_dropped=True))
    src = str(path)
    page = "http://p.example/dir/page.html"
    assert got == [
        {"url": "http://p.example/base/img/a.jpg", "text": "Tom &amp; Jerry", "page_url": page, "source": src,
         "record_id": "<urn:uuid:resp>", "record_offset": off[2], "drop": None},
        {"url": "http://cdn.example.net/c.jpg", "text": "C c", "page_url": page, "source": src,
         "record_id": "<urn:uuid:resp>", "record_offset": off[2], "drop": None},
        {"url": "data:image/png;base64,AA", "text": "data", "page_url": page, "source": src,
         "record_id": "<urn:uuid:resp>", "record_offset": off[2], "drop": "non_http_url"},
        {"url": "http://p.example/base/img/a.jpg", "text": "Tom &amp; Jerry", "page_url": page, "source": src,
         "record_id": "<urn:uuid:resp>", "record_offset": off[2], "drop": "duplicate_in_page"},
        {"url": "http://q.example/logo.png", "text": "Logo", "page_url": "http://q.example/missing", "source": src,
         "record_id": "<urn:uuid:404>", "record_offset": off[6], "drop": None},
        {"url": "http://r.example/img/a.jpg", "text": "Tom &amp; Jerry", "page_url": "http://r.example/",
         "source": src, "record_id": "<urn:uuid:resp-b>", "record_offset": off[10], "drop": None},
    ]
    assert dict(st.counts) == {
        "records_read": 11, "records.warcinfo": 1, "records.metadata": 10, "html_pages": 4,
        "wat_no_html_metadata": 3, "dropped.not_html": 1, "images": 8, "images_with_alt": 7, "pairs": 4,
        "dropped.no_alt": 1, "dropped.empty_alt": 1, "dropped.non_http_url": 1, "dropped.duplicate_in_page": 1,
        "errors.malformed_json": 2}
    assert [e["kind"] for e in st.errors] == ["malformed_json"] * 2
    assert "<urn:uuid:w7>" in st.errors[0]["message"] and "<urn:uuid:w8>" in st.errors[1]["message"]
    assert [r for r in got if r["drop"] is None] == list(pairs_from_wat(path))


def test_pairs_from_file_detects_wat_by_content(tmp_path):
    path, _ = build_wat(tmp_path, name="misnamed.warc.gz")
    assert list(pairs_from_file(path)) == list(pairs_from_wat(path))
    assert len(list(pairs_from_file(path))) == 4


# ------------------------------------------------------------------ real samples (../shared)
@pytest.mark.parametrize("name,lying", [("CC-MAIN-sample.warc.wat.gz", True), ("CC-MAIN-sample2.warc.wat.gz", False),
                                        ("CC-MAIN-sample3.warc.wat.gz", True), ("CC-MAIN-sample4.warc.wat.gz", False)])
def test_real_cc_wat_samples(name, lying):
    """CC-MAIN-2023-06 WAT record of a Russian lyrics page: 27 IMG@/src links, none with an alt,
    so no pair; all four records survive (the member is the truth for the two whose
    Content-Length is too short). Read by Content-Length (warcio) the two are cut JSON."""
    path = shared_path("data", "cc", name)
    st = Stats()
    assert list(pairs_from_wat(path, st, keep_dropped=True)) == []
    assert st["html_pages"] == 1 and st["images"] == 27 and st["dropped.no_alt"] == 27 and st["pairs"] == 0
    assert st["errors.bad_content_length"] == int(lying) and st["errors.malformed_json"] == 0
    st2 = Stats()
    assert list(pairs_from_wat(path, st2, reader="warcio")) == []
    assert st2["errors.malformed_json"] == int(lying) and st2["html_pages"] == 1 - int(lying)


def test_real_whirlwind_wat_has_only_a_request():
    st = Stats()
    assert list(pairs_from_wat(shared_path("data", "cc", "whirlwind.warc.wat.gz"), st)) == []
    assert dict(st.counts) == {"records_read": 2, "records.warcinfo": 1, "records.metadata": 1,
                               "wat_no_html_metadata": 1}


def test_oversized_wat_record_is_counted_not_parsed(tmp_path):
    import random

    from metaclip_spark.steps.extract import ExtractLimits

    rng = random.Random(3)
    huge = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz ") for _ in range(1_200_000))
    links = [{"path": "IMG@/src", "url": "/a.jpg", "alt": huge}]
    raws = [wat_record("<urn:uuid:huge>", "http://h/", wat_body("http://h/", links), "<urn:uuid:w1>"),
            wat_record("<urn:uuid:ok>", "http://ok/", wat_body("http://ok/", LINKS[1:2]), "<urn:uuid:w2>")]
    path = tmp_path / "big.wat.gz"
    path.write_bytes(b"".join(gzip.compress(r) for r in raws))
    st = Stats()
    got = list(pairs_from_wat(path, st, limits=ExtractLimits(max_html_bytes=1000)))
    assert [r["record_id"] for r in got] == ["<urn:uuid:ok>"]
    assert st["dropped.html_too_large"] == 1 and st["html_pages"] == 2 and st.errors == []
    st = Stats()
    got = list(pairs_from_wat(path, st))                       # default limits: parsed, text too long
    assert st["dropped.text_too_long"] == 1 and st["pairs"] == 1


def test_wat_stream_input(tmp_path):
    path, _ = build_wat(tmp_path)
    fh = io.BufferedReader(io.BytesIO(path.read_bytes()))
    got = list(pairs_from_wat(fh, source="s3://bucket/x.wat.gz"))
    assert [r["source"] for r in got] == ["s3://bucket/x.wat.gz"] * 4


# ------------------------------------------------------------------ JSON cut short (issue #13)
@pytest.fixture(params=["native", "python"] if wat.NATIVE else ["python"])
def scanner(request, monkeypatch):
    """Both paths: the compiled scanner (it defers what it cannot prove) and orjson alone."""
    if request.param == "python":
        monkeypatch.setattr(wat, "_scan", None)
    return request.param


def cut_before(body: bytes, key: bytes) -> bytes:
    return body[:body.index(key)]


def test_check_json(scanner):
    for body in (wat_body("http://p/", LINKS), wat_body("http://p/", []), wat_body("", kind="request"), b"[1e5]"):
        assert wat.check_json(body) is None
    for body in (cut_before(wat_body("http://p/", LINKS), b'"Links"'), b"", b"{not json}", b'{"a": NaN}'):
        with pytest.raises(ValueError):
            wat.check_json(body)


def test_json_cut_short_is_malformed_not_a_page(tmp_path, scanner):
    """A body cut before its Links has no IMG@ left: it is malformed JSON, never an HTML page
    without images (nor, cut earlier, a non-HTML response or a record without HTML)."""
    def page(n):
        return "http://c.example/%d" % n

    whole = wat_body(page(0), LINKS)
    raws = [wat_record("<urn:uuid:c%d>" % n, page(n), body, "<urn:uuid:m%d>" % n) for n, body in enumerate([
        cut_before(whole, b'"Links"'), cut_before(whole, b'"HTML-Metadata"'),
        cut_before(whole, b'"HTTP-Response-Metadata"'), cut_before(whole, b'"Links"') + b"  ",
        wat_body(page(4), LINKS[1:2]), wat_body(page(5), []), wat_body(page(6), html=False),
        wat_body(page(7), kind="request")])]
    path = tmp_path / "cut.warc.wat.gz"
    path.write_bytes(b"".join(gzip.compress(r) for r in raws))
    st = Stats()
    got = list(pairs_from_wat(path, st))
    assert [(r["record_id"], r["url"], r["text"]) for r in got] == [("<urn:uuid:c4>", "http://c.example/img/a.jpg",
                                                                    "Tom &amp; Jerry")]
    assert dict(st.counts) == {"records_read": 8, "records.metadata": 8, "errors.malformed_json": 4,
                               "html_pages": 2, "wat_no_html_metadata": 2, "dropped.not_html": 1,
                               "images": 1, "images_with_alt": 1, "pairs": 1}
    assert [e["message"].split(" (")[0] for e in st.errors] == ["WAT record <urn:uuid:m%d>" % n for n in range(4)]


def cut_sample_wat(tmp_path, n_cut=5):
    """The bundled sample WAT with the JSON of its first ``n_cut`` records that have pairs cut
    just before ``"Links"`` (framing valid: Content-Length and gzip members rewritten)."""
    import re
    import zlib

    from metaclip_spark.metadata.defaults import sample_dir

    data = (sample_dir() / "SYNTH-1-00000.warc.wat.gz").read_bytes()
    out, cut, pos = [], [], 0
    while pos < len(data):
        d = zlib.decompressobj(31)
        raw = d.decompress(data[pos:])
        pos = len(data) - len(d.unused_data)
        head_end = raw.index(b"\r\n\r\n") + 4
        body = raw[head_end:-4]
        if len(cut) < n_cut and b'"alt"' in body:
            body = cut_before(body, b'"Links"')
            head = re.sub(rb"Content-Length: \d+", b"Content-Length: %d" % len(body), raw[:head_end])
            raw = head + body + b"\r\n\r\n"
            cut.append(re.search(rb"WARC-Refers-To: (\S+)", raw).group(1).decode())
        out.append(gzip.compress(raw, mtime=0))
    path = tmp_path / "cut-links.warc.wat.gz"
    path.write_bytes(b"".join(out))
    return sample_dir() / "SYNTH-1-00000.warc.wat.gz", path, cut


def test_sample_wat_cut_before_links(tmp_path, scanner):
    """Issue #13 item 4 on real-sized records: 5 pages cut before Links lose their 30 pairs,
    counted as malformed_json, not as HTML pages; every other page gives the same pairs."""
    clean_path, path, cut = cut_sample_wat(tmp_path)
    clean_st, st = Stats(), Stats()
    clean = [(r["record_id"], r["url"], r["text"]) for r in pairs_from_wat(clean_path, clean_st)]
    got = [(r["record_id"], r["url"], r["text"]) for r in pairs_from_wat(path, st)]
    assert len(cut) == 5 and len(clean) == 152 and sum(r[0] in cut for r in clean) == 30
    assert got == [r for r in clean if r[0] not in cut] and len(got) == 122
    assert st["errors.malformed_json"] == 5 and len(st.errors) == 5
    assert (st["html_pages"], clean_st["html_pages"]) == (24, 29)
    assert st["records_read"] == clean_st["records_read"] == 92
    assert st["wat_no_html_metadata"] == clean_st["wat_no_html_metadata"] == 62
