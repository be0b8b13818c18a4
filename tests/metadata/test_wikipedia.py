"""Wikipedia dump reading: bz2 block splitting, page filters, plain text, tokens, page views.

The dumps here are written by the tests (standard export XML, bz2-compressed as single-
and multistream files); the real dump sample in ../shared is used by test_jobs_build_metadata.
"""

import bz2
import gzip
import io
import random
import re
import xml.etree.ElementTree as ET
from collections import Counter
from xml.sax.saxutils import escape

import mwparserfromhell
import pytest

from metaclip_spark.metadata import wikipedia as w
from metaclip_spark.metadata.bz2blocks import iter_blocks
from metaclip_spark.run.stats import Stats

WORDS = ("the The of and in a New York city river Paris is was red car dog Dog hot photo "
         "image 1 2019 rock-n-roll don't l'eau Zürich 東京").split()


def page_xml(title, text, ns=0, redirect=None):
    red = '    <redirect title="%s" />\n' % escape(redirect) if redirect else ""
    return ("  <page>\n    <title>%s</title>\n    <ns>%d</ns>\n    <id>1</id>\n%s"
            "    <revision>\n      <id>2</id>\n      <text xml:space=\"preserve\">%s</text>\n"
            "    </revision>\n  </page>\n" % (escape(title), ns, red, escape(text)))


def article(rng, n_words):
    out = []
    for i in range(n_words):
        wd = rng.choice(WORDS)
        r = rng.random()
        if r < 0.05:
            wd = "[[%s|%s]]" % (wd.upper(), wd)
        elif r < 0.08:
            wd = "'''%s'''" % wd
        elif r < 0.10:
            wd = wd + "<ref>cite %s</ref>" % rng.choice(WORDS)
        elif r < 0.12:
            wd = wd + ","
        elif r < 0.13:
            wd = "{{cn|%s}}" % wd
        out.append(wd)
        if i % 40 == 39:
            out.append("\n\n== Section ==\n")
    return " ".join(out) + "\n[[Category:Things]]\n[[File:X.jpg|thumb|caption words]]"


def make_dump_xml(n_pages=150, seed=1, words=400):
    rng = random.Random(seed)
    pages = []
    for i in range(n_pages):
        pages.append(page_xml("Article %d" % i, article(rng, words)))
        if i % 10 == 3:
            pages.append(page_xml("Old %d" % i, "#REDIRECT [[Article %d]]" % i, redirect="Article %d" % i))
        if i % 25 == 7:
            pages.append(page_xml("Talk:Article %d" % i, "the the the talk", ns=1))
        if i % 30 == 11:
            pages.append(page_xml("Thing %d" % i, "'''Thing''' may refer to:\n* [[A]]\n{{disambiguation}}"))
    return ('<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/" version="0.10">\n'
            "  <siteinfo>\n    <sitename>Wikipedia</sitename>\n  </siteinfo>\n"
            + "".join(pages) + "</mediawiki>\n").encode("utf-8")


def write_dump(path, xml, multistream=False, level=1):
    if multistream:   # like Wikimedia's *-multistream files: a bz2 stream per 100 KB
        data = b"".join(bz2.compress(xml[i:i + 100_000], level) for i in range(0, len(xml), 100_000))
    else:
        data = bz2.compress(xml, level)
    path.write_bytes(data)
    return str(path)


def reference_pages(xml: bytes):
    """(title, ns, redirect, text) of every page, straight from ElementTree."""
    root = ET.fromstring(xml)
    out = []
    for el in root.iter():
        if el.tag.endswith("}page") or el.tag == "page":
            get = lambda name: el.find("{*}" + name)
            text = el.find("{*}revision/{*}text")
            out.append((get("title").text, int(get("ns").text), get("redirect") is not None,
                        text.text or ""))
    return out


def pages_of(uri, size, split_bytes):
    stats, titles = Stats(), []
    for u, s, e in w.plan_splits(uri, size, split_bytes):
        titles.extend(t for t, _, _ in w.count_split(u, s, e, stats))
    return titles, stats


@pytest.fixture(scope="module")
def dump_xml():
    return make_dump_xml()


@pytest.mark.parametrize("multistream", [False, True])
def test_blocks_rebuild_the_file(tmp_path, dump_xml, multistream):
    uri = write_dump(tmp_path / "d.xml.bz2", dump_xml, multistream)
    raw = open(uri, "rb").read()
    for chunk in (1 << 20, 9_999):
        blocks = list(iter_blocks(io.BytesIO(raw), 0, chunk))
        assert len(blocks) >= 4 and all(d is not None for _, d in blocks)
        assert b"".join(d for _, d in blocks) == dump_xml
    mid = len(raw) // 2
    fh = io.BytesIO(raw)
    fh.seek(mid)
    tail = list(iter_blocks(fh, mid))
    assert tail[0][0] >= mid * 8 and dump_xml.endswith(b"".join(d for _, d in tail))


@pytest.mark.parametrize("multistream", [False, True])
def test_splits_own_each_page_once(tmp_path, dump_xml, multistream):
    uri = write_dump(tmp_path / "d.xml.bz2", dump_xml, multistream)
    size = w.check_dump(uri)
    ref = [t for t, ns, red, _ in reference_pages(dump_xml) if ns == 0 and not red
           and not t.startswith("Thing")]
    assert len(ref) == 150
    for split_bytes in (size, 50_000, 7_001, 1_000):
        titles, stats = pages_of(uri, size, split_bytes)
        assert titles == ref, split_bytes
        assert stats["pages"] == 150 + 15 + 6 + 5
        assert stats.dropped() == {"page_redirect": 15, "page_not_main_namespace": 6,
                                   "page_disambiguation": 5}
        assert stats["bz2_blocks"] == len(list(iter_blocks(open(uri, "rb"))))


def test_damaged_block_is_counted_not_fatal(tmp_path, dump_xml):
    uri = write_dump(tmp_path / "d.xml.bz2", dump_xml)
    raw = bytearray(open(uri, "rb").read())
    raw[len(raw) // 2] ^= 0xFF
    (tmp_path / "bad.xml.bz2").write_bytes(bytes(raw))
    titles, stats = pages_of(str(tmp_path / "bad.xml.bz2"), len(raw), 30_000)
    assert stats["errors.bad_block"] == 1 and 100 < len(titles) < 150


def test_not_bzip2(tmp_path):
    (tmp_path / "x.xml.bz2").write_bytes(b"<mediawiki/>")
    with pytest.raises(w.WikipediaError, match="not a bzip2 file"):
        w.check_dump(str(tmp_path / "x.xml.bz2"))
    with pytest.raises(w.WikipediaError, match="not found"):
        w.check_dump(str(tmp_path / "missing.bz2"))


def test_plain_text():
    text = ("'''Anarchism''' is a [[political philosophy]]<ref>cite {{x}}</ref> and "
            "[[Category:Foo]][[fr:Anarchisme]][[File:A.jpg|thumb|A [[caption]]]] "
            "[[:Category:Bar|bars]] {{Infobox|name=x}}<math>x^2</math> [http://x.org link text].\n"
            "== History<ref>h</ref> ==\n* item &amp; one")
    assert w.plain_text(mwparserfromhell.parse(text)) == (
        "Anarchism is a political philosophy and  bars  link text.\n History \n item & one")


def test_tokens_and_bigrams():
    line = "The the rock-n-roll don't, Zürich 東京\tcity  x_y.\nNew York 3.5"
    assert w.tokens(line) == ["The", "the", "rock-n-roll", "don't", "Zürich", "東京", "city",
                              "x_y", "New", "York", "3", "5"]
    assert list(w.bigrams(line)) == [("The", "the"), ("the", "rock-n-roll"), ("rock-n-roll", "don't"),
                                     ("Zürich", "東京"), ("東京", "city"), ("city", "x_y"),
                                     ("New", "York"), ("York", "3")]


def test_disambiguation():
    for text, title in (("{{disambiguation}}", "X"), ("{{Dab}}", "X"), ("{{hndis|Smith}}", "X"),
                        ("{{Disambiguation|geo}}", "X"), ("", "Mercury (disambiguation)")):
        assert w.is_disambiguation(title, mwparserfromhell.parse(text))
    assert not w.is_disambiguation("X", mwparserfromhell.parse("{{disambiguation needed}} text"))


def test_read_pageviews(tmp_path):
    lines = ("en Main_Page 5 0\nen.m Main_Page 3 0\nde Main_Page 9 0\nen New_York 70 123\n"
             "en broken\nen Paris x 0\nen.m New_York 1 0\n")
    (tmp_path / "pv.gz").write_bytes(gzip.compress(lines.encode()))
    (tmp_path / "pv2").write_text("en Main_Page 2 0\n")
    (tmp_path / "pv3.bz2").write_bytes(bz2.compress(b"en Paris 4 0\n"))
    stats = Stats()
    views = w.read_pageviews([str(tmp_path / "pv.gz"), str(tmp_path / "pv2"), str(tmp_path / "pv3.bz2")],
                             ["en", "en.m"], stats)
    assert views == Counter({"Main Page": 10, "New York": 71, "Paris": 4})
    assert stats.dropped() == {"pageviews_bad_line": 2}
