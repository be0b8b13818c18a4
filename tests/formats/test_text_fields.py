"""Texts of an image (SPEC section 10): alt, title and data-image-title from WARC HTML and WAT
links, one candidate per non-empty value with its attribute, deduplicated per page over all
fields; the counters and their invariants (formats/pairs.py); the config rule
(steps/extract.text_fields); real WARCs against an html.parser oracle, real CC WATs."""

import gzip
from urllib.parse import urljoin

import orjson
import pytest

from metaclip_spark.formats import html as hp
from metaclip_spark.formats import pairs, wat
from metaclip_spark.run.config import ConfigError, from_dict
from metaclip_spark.run.stats import Stats
from metaclip_spark.steps.extract import (BATCH_COLUMNS, Extract, ExtractLimits, Page, pair_batches, pairs_from_wat,
                                          pairs_from_warc, text_fields)
from tests.conftest import shared_path
from tests.formats.html_oracle import html_pages
from tests.formats.test_warc import html_response
from tests.formats.test_wat import wat_body, wat_record

F = ("alt", "title", "data-image-title")
WORLD = ExtractLimits(text_fields=F)
PAGE_URL = "http://p.example/dir/page.html"
B = "http://p.example/b/"

PAGE_HTML = """<html><head><base href="/b/"><title>t</title></head><body>
<img src="a.jpg" alt="Cat" title="A cat &amp; mouse" data-image-title="cat-photo">
<img src="a.jpg" alt="A cat &amp; mouse">
<img src="c.jpg" alt="Dog" title="Dog" data-image-title="dog">
<IMG SRC="d.jpg" TITLE="first" title="second" DATA-IMAGE-TITLE="Upper">
<img src="e.jpg" alt title data-image-title="  ">
<img src="   " alt="x" title="y">
<img src="data:image/png;base64,AA" title="inline">
<!-- <img src="comment.jpg" title="in comment"> -->
<script>document.write('<img src="s.jpg" title="in script">')</script>
<noscript><img src="ns.jpg" title="in noscript" data-image-title="ns"></noscript>
<img data-src="lazy.jpg" title="no src">
<img src="f.jpg" data-image-title="Dog">
</body></html>"""

IMAGES = [("a.jpg", "Cat", "A cat & mouse", "cat-photo"), ("a.jpg", "A cat & mouse", None, None),
          ("c.jpg", "Dog", "Dog", "dog"), ("d.jpg", None, "first", "Upper"), ("e.jpg", "", "", "  "),
          ("   ", "x", "y", None), ("data:image/png;base64,AA", None, "inline", None),
          ("ns.jpg", None, "in noscript", "ns"), ("f.jpg", None, None, "Dog")]

KEPT = [(B + "a.jpg", "Cat", None, "alt"), (B + "a.jpg", "A cat & mouse", None, "title"),
        (B + "a.jpg", "cat-photo", None, "data-image-title"), (B + "c.jpg", "Dog", None, "alt"),
        (B + "c.jpg", "dog", None, "data-image-title"), (B + "d.jpg", "first", None, "title"),
        (B + "d.jpg", "Upper", None, "data-image-title"), (B + "ns.jpg", "in noscript", None, "title"),
        (B + "ns.jpg", "ns", None, "data-image-title"), (B + "f.jpg", "Dog", None, "data-image-title")]
WITH_DROPPED = (KEPT[:3] + [(B + "a.jpg", "A cat & mouse", "duplicate_in_page", "alt")] + KEPT[3:4]
                + [(B + "c.jpg", "Dog", "duplicate_in_page", "title")] + KEPT[4:7]
                + [("data:image/png;base64,AA", "inline", "non_http_url", "title")] + KEPT[7:])
COUNTS = {"images": 9, "images_with_alt": 5, "pairs": 10, "dropped.no_alt": 4, "dropped.empty_alt": 1,
          "dropped.empty_src": 2, "dropped.non_http_url": 1, "dropped.duplicate_in_page": 2,
          "texts.title": 6, "texts.data_image_title": 5, "pairs.title": 3, "pairs.data_image_title": 5}
IMAGE_DROPS = ("empty_alt", "empty_src", "non_http_url", "invalid_url", "text_too_long", "url_too_long",
               "duplicate_in_page")


def check_invariants(st: Stats) -> None:
    """formats/pairs.py's invariants (alt among the fields)."""
    assert st["images"] == st["dropped.no_alt"] + st["images_with_alt"]
    assert (st["images_with_alt"] + st["texts.title"] + st["texts.data_image_title"]
            == sum(st["dropped." + r] for r in IMAGE_DROPS) + st["pairs"])
    assert st["pairs.title"] <= st["texts.title"] and st["pairs.data_image_title"] <= st["texts.data_image_title"]


def flush(counts) -> Stats:
    st = Stats()
    counts.flush(st)
    return st


# ------------------------------------------------------------------ config rule
def test_text_fields_from_config():
    assert text_fields(from_dict({})) == ("alt",)
    assert text_fields(from_dict({"worldwide": {"enabled": True}})) == F
    assert text_fields(from_dict({"extract": {"text_fields": ["data-image-title", "alt", "alt"]}})) == (
        "alt", "data-image-title")
    assert text_fields(from_dict({"extract": {"text_fields": ["title"]}, "worldwide": {"enabled": True}})) == ("title",)
    assert ExtractLimits().text_fields == ("alt",)
    with pytest.raises(ValueError, match="unknown"):
        pairs.canonical_fields(["alt", "longdesc"])
    with pytest.raises(ValueError):
        pairs.canonical_fields([])
    with pytest.raises(ConfigError, match="longdesc"):
        from_dict({"extract": {"text_fields": ["longdesc"]}}).validate()


# ------------------------------------------------------------------ HTML
def test_html_images_every_requested_attribute():
    assert hp.html_images(PAGE_HTML, fields=F) == (IMAGES, "/b/")
    assert hp.html_images(PAGE_HTML, fields=("title",))[0] == [(img[0], img[2]) for img in IMAGES]
    assert hp.html_images(PAGE_HTML)[0] == [(img[0], img[1]) for img in IMAGES]     # English mode: (src, alt)


def test_page_pairs_all_fields_counts_and_order():
    counts = pairs.FieldCounts()
    assert pairs.page_pairs(IMAGES, PAGE_URL, "/b/", counts, 2000, 2048, False, F) == KEPT
    st = flush(counts)
    assert dict(st.counts) == COUNTS
    check_invariants(st)
    counts = pairs.FieldCounts()
    assert pairs.page_pairs(IMAGES, PAGE_URL, "/b/", counts, 2000, 2048, True, F) == WITH_DROPPED
    assert dict(flush(counts).counts) == COUNTS


def test_page_pairs_one_field_and_limits():
    counts = pairs.FieldCounts()
    titles = [(img[0], img[2]) for img in IMAGES]
    got = pairs.page_pairs(titles, PAGE_URL, "/b/", counts, 2000, 2048, True, ("title",))
    assert got == [(B + "a.jpg", "A cat & mouse", None, "title"), (B + "c.jpg", "Dog", None, "title"),
                   (B + "d.jpg", "first", None, "title"),
                   ("data:image/png;base64,AA", "inline", "non_http_url", "title"),
                   (B + "ns.jpg", "in noscript", None, "title")]
    assert dict(flush(counts).counts) == {"images": 9, "pairs": 4, "texts.title": 6, "pairs.title": 4,
                                          "dropped.empty_src": 1, "dropped.non_http_url": 1}
    counts = pairs.FieldCounts()
    got = pairs.page_pairs([("a.jpg", "ok", "a long title", "x" * 6)], PAGE_URL, None, counts, 6, 2048, True, F)
    assert got == [("http://p.example/dir/a.jpg", "ok", None, "alt"),
                   ("http://p.example/dir/a.jpg", "a long", "text_too_long", "title"),
                   ("http://p.example/dir/a.jpg", "xxxxxx", None, "data-image-title")]
    st = flush(counts)
    assert st["dropped.text_too_long"] == 1 and st["pairs"] == 2
    check_invariants(st)


def test_english_mode_is_alt_only_and_a_subset():
    """("alt",) takes the compiled loop and today's (url, text, drop) tuples; its kept pairs
    are a subset of the worldwide ones (an earlier title can take an alt's (url, text))."""
    alts = [(img[0], img[1]) for img in IMAGES]
    a, b = pairs.PageCounts(), pairs.PageCounts()
    english = pairs.page_pairs(alts, PAGE_URL, "/b/", a, 2000, 2048, True)
    assert english == pairs.page_pairs_py(alts, PAGE_URL, "/b/", b, 2000, 2048, True)
    assert dict(flush(a).counts) == dict(flush(b).counts) == {
        "images": 9, "images_with_alt": 5, "pairs": 3, "dropped.no_alt": 4, "dropped.empty_alt": 1,
        "dropped.empty_src": 1}
    assert english == [(B + "a.jpg", "Cat", None), (B + "a.jpg", "A cat & mouse", None), (B + "c.jpg", "Dog", None)]
    assert {c[:2] for c in english} <= {c[:2] for c in KEPT}


def test_warc_end_to_end_dicts_batches_and_stats(tmp_path):
    path = tmp_path / "t.warc.gz"
    path.write_bytes(gzip.compress(html_response(PAGE_URL, PAGE_HTML, "<urn:uuid:p>")))
    st = Stats()
    rows = list(pairs_from_warc(path, st, limits=WORLD))
    assert [(r["url"], r["text"], r["text_field"]) for r in rows] == [(u, t, f) for u, t, _, f in KEPT]
    assert {r["page_url"] for r in rows} == {PAGE_URL} and all(r["drop"] is None for r in rows)
    assert dict(st.counts) == dict(COUNTS, records_read=1, **{"records.response": 1, "html_pages": 1})
    english = list(pairs_from_warc(path))
    assert [(r["url"], r["text"]) for r in english] == [(B + "a.jpg", "Cat"), (B + "a.jpg", "A cat & mouse"),
                                                      (B + "c.jpg", "Dog")]
    assert all("text_field" not in r for r in english)
    batches = list(Extract(WORLD, batch_size=4, keep_dropped=True).batches(str(path), Stats()))
    assert [len(b["url"]) for b in batches] == [4, 4, 4, 1] and set(batches[0]) == set(BATCH_COLUMNS)
    assert [f for b in batches for f in b["text_field"]] == [c[3] for c in WITH_DROPPED]
    assert [d for b in batches for d in b["drop"]] == [c[2] for c in WITH_DROPPED]
    english = list(Extract(ExtractLimits(), batch_size=100).batches(str(path), Stats()))
    assert english[0]["text_field"] == ["alt"] * 3


def test_pair_batches_text_field_column():
    pages = [Page("f", "p1", "r1", 0, [("u1", "t1", None)]),
             Page("f", "p2", "r2", 9, [("u2", "t2", None, "title"), ("u3", "t3", None, "data-image-title")]),
             Page("f", "p3", "r3", 20, [])]
    (b,) = pair_batches(iter(pages), 10)
    assert b["text_field"] == ["alt", "title", "data-image-title"] and b["url"] == ["u1", "u2", "u3"]
    assert b["page_url"] == ["p1", "p2", "p2"]


# ------------------------------------------------------------------ WAT
WAT_LINKS = [
    {"path": "A@/href", "url": "/x", "title": "a link title"},
    {"path": "IMG@/src", "url": "a.jpg", "alt": "Cat", "title": "Tom &amp; Jerry", "data-image-title": "cat"},
    {"path": "IMG@/src", "url": "a.jpg", "alt": "Tom &amp; Jerry"},              # same (url, text): duplicate
    {"path": "IMG@/src", "url": "b.jpg", "title": 7, "data-image-title": " B\u00a0b "},   # non-string: absent
    {"path": "IMG@/src", "url": "c.jpg", "alt": "", "title": "", "data-image-title": "\u3000"},
    {"path": "IMG@/src", "url": "d.jpg"},
]


def test_wat_images_all_fields():
    body = wat_body(PAGE_URL, WAT_LINKS)
    want = (PAGE_URL, [("a.jpg", "Cat", "Tom &amp; Jerry", "cat"), ("a.jpg", "Tom &amp; Jerry", None, None),
                       ("b.jpg", None, None, " B\u00a0b "), ("c.jpg", "", "", "\u3000"), ("d.jpg", None, None, None)],
            None)
    assert wat.wat_images(body, F) == wat.wat_images_py(body, F) == want
    assert wat.wat_images(body, ("data-image-title",)) == (PAGE_URL, [(i[0], i[3]) for i in want[1]], None)
    assert wat.wat_images(body) == wat.wat_images_py(body) == (PAGE_URL, [i[:2] for i in want[1]], None)


def test_wat_fast_path_without_title_keys(monkeypatch):
    """A body none of whose keys is title/data-image-title: the compiled scanner's answer, padded."""
    links = [{"path": "IMG@/src", "url": "a.jpg", "alt": "Cat"}, {"path": "IMG@/src", "url": "b.jpg"}]
    body = wat_body(PAGE_URL, links, base="/b/")
    want = wat.wat_images_py(body, F)
    assert want == (PAGE_URL, [("a.jpg", "Cat", None, None), ("b.jpg", None, None, None)], "/b/")
    assert wat.wat_images_py(body, ("title", "alt")) == (PAGE_URL, [("a.jpg", None, "Cat"), ("b.jpg", None, None)], "/b/")
    if not wat.NATIVE:
        pytest.skip("compiled scanner not built")
    monkeypatch.setattr(wat, "wat_images_py", None)          # the scanner alone must answer
    assert wat.wat_images(body, F) == want
    assert wat.wat_images(body, ("title", "alt")) == (PAGE_URL, [("a.jpg", None, "Cat"), ("b.jpg", None, None)], "/b/")
    assert wat.wat_images(wat_body(PAGE_URL, html=False), F) is None


def test_wat_end_to_end(tmp_path):
    path = tmp_path / "t.warc.wat.gz"
    path.write_bytes(gzip.compress(wat_record("<urn:uuid:p>", PAGE_URL, wat_body(PAGE_URL, WAT_LINKS), "<urn:uuid:m>")))
    st = Stats()
    rows = [(r["url"], r["text"], r["text_field"], r["drop"]) for r in pairs_from_wat(path, st, limits=WORLD,
                                                                                      keep_dropped=True)]
    d = "http://p.example/dir/"
    assert rows == [(d + "a.jpg", "Cat", "alt", None), (d + "a.jpg", "Tom &amp; Jerry", "title", None),
                    (d + "a.jpg", "cat", "data-image-title", None),
                    (d + "a.jpg", "Tom &amp; Jerry", "alt", "duplicate_in_page"),
                    (d + "b.jpg", "B b", "data-image-title", None)]
    assert {k: v for k, v in st.counts.items() if not k.startswith("records")} == {
        "html_pages": 1, "images": 5, "images_with_alt": 3, "dropped.no_alt": 2, "dropped.empty_alt": 1,
        "dropped.duplicate_in_page": 1, "pairs": 4, "texts.title": 1, "texts.data_image_title": 2,
        "pairs.title": 1, "pairs.data_image_title": 2}
    check_invariants(st)


# ------------------------------------------------------------------ real data: html.parser oracle
def oracle_pages(path):
    """{record id: (page url, base, images, [(url, text, field), ...])}: SPEC 10's texts of
    each image with html.parser, records read by warcio."""
    pages = {}
    for record_id, page_url, base_href, imgs in html_pages(path, F):
        imgs = [img for img in imgs if img[0] is not None]
        base = urljoin(page_url, base_href) if base_href is not None else page_url
        texts, seen = [], set()
        for src, *values in imgs:
            for field, value in zip(F, values):
                text = " ".join((value or "").split())
                if not text or not src.strip():
                    continue
                url = urljoin(base, src.strip())
                if url.split(":", 1)[0].lower() in ("http", "https") and (url, text) not in seen:
                    seen.add((url, text))
                    texts.append((url, text, field))
        pages[record_id] = (page_url, base_href, imgs, texts)
    return pages


# (file, title texts, kept title pairs, data-image-title texts, kept data-image-title pairs, pairs)
REAL = [("web/aut-example.warc.gz", 343, 0, 0, 0, 377), ("web/sample-0000.warc.gz", 8, 8, 6, 2, 67),
        ("cc/resiliparse-warcfile.warc.gz", 9, 5, 0, 0, 35), ("web/gowarc-test.warc.gz", 1, 0, 0, 0, 208),
        ("web/sample-0001.warc.gz", 0, 0, 0, 0, 105), ("web/clueweb-quirk.warc.gz", 0, 0, 0, 0, 440)]


@pytest.mark.parametrize("name,titles,title_pairs,dits,dit_pairs,n_pairs", REAL)
def test_real_warcs_all_fields_match_oracle(name, titles, title_pairs, dits, dit_pairs, n_pairs):
    path = shared_path("data", *name.split("/"))
    st = Stats()
    got = {}
    for r in pairs_from_warc(path, st, limits=WORLD):
        got.setdefault(r["record_id"], []).append((r["url"], r["text"], r["text_field"]))
    pages = oracle_pages(path)
    assert got == {rid: texts for rid, (_, _, _, texts) in pages.items() if texts}
    n_title = sum(1 for *_, imgs, _ in pages.values() for img in imgs if " ".join((img[2] or "").split()))
    n_dit = sum(1 for *_, imgs, _ in pages.values() for img in imgs if " ".join((img[3] or "").split()))
    assert (n_title, n_dit) == (titles, dits)
    assert (st["texts.title"], st["pairs.title"], st["texts.data_image_title"], st["pairs.data_image_title"],
            st["pairs"]) == (titles, title_pairs, dits, dit_pairs, n_pairs)
    assert st.errors == []
    check_invariants(st)
    english = Stats()
    kept_en = {(r["record_id"], r["url"], r["text"]) for r in pairs_from_warc(path, english)}
    assert kept_en <= {(rid, u, t) for rid, rows in got.items() for u, t, _ in rows}
    for name_ in ("images", "images_with_alt", "dropped.no_alt", "dropped.empty_alt"):
        assert english[name_] == st[name_]                  # alt's per-image counters are unchanged


def test_real_pages_as_wat_links_equal_the_html_path(tmp_path):
    """sample-0000's pages (titles and data-image-titles) written as WAT IMG@/src links with
    html.parser's decoded values: the WAT path gives the HTML path's texts, page by page."""
    path = shared_path("data", "web", "sample-0000.warc.gz")
    pages = oracle_pages(path)
    raws = []
    for i, (rid, (page_url, base, imgs, _)) in enumerate(pages.items()):
        links = [dict({"path": "IMG@/src", "url": src}, **{f: v for f, v in zip(F, values) if v is not None})
                 for src, *values in imgs]
        raws.append(wat_record(rid, page_url, wat_body(page_url, links, base=base), "<urn:uuid:w%d>" % i))
    wat_path = tmp_path / "s.warc.wat.gz"
    wat_path.write_bytes(b"".join(gzip.compress(r) for r in raws))
    st_wat, st_html = Stats(), Stats()
    by = {}
    for r in pairs_from_wat(wat_path, st_wat, limits=WORLD):
        by.setdefault(r["record_id"], []).append((r["url"], r["text"], r["text_field"]))
    html_by = {}
    for r in pairs_from_warc(path, st_html, limits=WORLD):
        html_by.setdefault(r["record_id"], []).append((r["url"], r["text"], r["text_field"]))
    assert by == html_by and len(by) == 10 and st_wat["html_pages"] == 22
    for k in ("images", "pairs", "texts.title", "texts.data_image_title", "pairs.title", "pairs.data_image_title"):
        assert st_wat[k] == st_html[k]
    assert (st_wat["texts.title"], st_wat["texts.data_image_title"], st_wat["pairs"]) == (8, 6, 67)


@pytest.mark.parametrize("name", ["CC-MAIN-sample.warc.wat.gz", "CC-MAIN-sample2.warc.wat.gz",
                                  "CC-MAIN-sample3.warc.wat.gz", "CC-MAIN-sample4.warc.wat.gz"])
def test_real_cc_wats(name):
    """The CC samples' IMG@/src links carry only path and url (an orjson walk counts every key):
    27 images, no alt, no title, no data-image-title, so no text in either mode. Each sample is
    one metadata record (two of them with a wrong Content-Length, so the JSON is cut out of the
    decompressed file here, from the first "{" after the headers to the last "}")."""
    path = shared_path("data", "cc", name)
    data = gzip.decompress(path.read_bytes())
    assert data.count(b"WARC-Type: metadata") == 1
    doc = orjson.loads(data[data.index(b"\n{") + 1:data.rindex(b"}") + 1])
    keys, n_img = {}, 0
    for link in doc["Envelope"]["Payload-Metadata"]["HTTP-Response-Metadata"]["HTML-Metadata"]["Links"]:
        if link.get("path") == "IMG@/src":
            n_img += 1
            for k in link:
                keys[k] = keys.get(k, 0) + 1
    assert n_img == 27 and keys == {"path": 27, "url": 27}
    st = Stats()
    assert list(pairs_from_wat(path, st, limits=WORLD)) == []
    assert st["images"] == 27 and st["dropped.no_alt"] == 27 and st["pairs"] == 0
    assert st["texts.title"] == st["texts.data_image_title"] == 0

