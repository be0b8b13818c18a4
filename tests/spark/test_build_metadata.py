"""`build-metadata` on a real local Spark session: counts and PMI equal a plain Python
counter (on a dump the test writes, and on the real dump sample in ../shared), and the
metadata it writes loads in stage 1 and matches as docs/semantics.md section 4 says."""

import bz2
import json
import math
import os
import re
import subprocess
import sys
from collections import Counter

import mwparserfromhell
import pyarrow.parquet as pq
import pytest

from metaclip_spark import cli
from metaclip_spark.metadata import wikipedia as w
from metaclip_spark.run.config import load_config
from metaclip_spark.spark.build_metadata import run_build_metadata
from metaclip_spark.steps.match import Matcher, naive_match
from metaclip_spark.metadata.load import load_metadata
from tests.conftest import ROOT, shared_path
from tests.metadata.test_wikipedia import make_dump_xml, reference_pages, write_dump
from tests.metadata.test_wordnet import write_dict

SAMPLE = ("data", "wikipedia", "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2")
TOKEN = re.compile(r"\w+(?:[-'\u2019]\w+)*")


def python_counts(xml: bytes):
    """Unigrams, bigrams (tokens with only spaces/tabs between) and titles, counted plainly."""
    uni, bi, titles = Counter(), Counter(), []
    for title, ns, redirect, text in reference_pages(xml):
        if ns != 0 or redirect:
            continue
        code = mwparserfromhell.parse(text)
        if w.is_disambiguation(title, code):
            continue
        titles.append(title)
        for line in w.plain_text(code).split("\n"):
            toks = [(m.group(), m.start(), m.end()) for m in TOKEN.finditer(line)]
            uni.update(t for t, _, _ in toks)
            for (a, _, end), (b, start, _) in zip(toks, toks[1:]):
                gap = line[end:start]
                if gap and not gap.strip(" \t"):
                    bi[(a, b)] += 1
    return uni, bi, titles


def expected(xml, min_uni, min_bi, min_pmi):
    uni, bi, titles = python_counts(xml)
    n_tok, n_bi = sum(uni.values()), sum(bi.values())
    unigrams = sorted(((t, c) for t, c in uni.items() if c >= min_uni), key=lambda x: (-x[1], x[0]))
    bigrams = {}
    for (a, b), c in bi.items():
        p = math.log(c * n_tok * n_tok / (n_bi * uni[a] * uni[b]))
        if c >= min_bi and p >= min_pmi:
            bigrams[a + " " + b] = (c, p)
    return unigrams, bigrams, titles, n_tok, n_bi


def build(spark, out, dump, extra=()):
    sets = ["metadata_build.wordnet=", "metadata_build.unigram_min_count=20",
            "metadata_build.bigram_min_count=3", "metadata_build.bigram_min_pmi=2.0",
            "metadata_build.title_min_views=0", "metadata_build.split_bytes=40000"] + list(extra)
    cfg = load_config([os.path.join(ROOT, "conf", "default.yaml")], sets,
                      {"output": str(out), "metadata_build.wikipedia": [dump]})
    summary = run_build_metadata(cfg, spark)
    rows = pq.read_table(str(out / "provenance" / "provenance.parquet")).to_pylist()
    return summary, rows


def check_against_python(summary, rows, xml, min_pmi=2.0):
    unigrams, bigrams, titles, n_tok, n_bi = expected(xml, 20, 3, min_pmi)
    assert summary["wikipedia"]["tokens"] == n_tok and summary["wikipedia"]["bigrams"] == n_bi
    got_uni = [(r["entry"], r["count"]) for r in rows if r["source"] == "unigram"]
    assert got_uni == unigrams
    got_bi = {r["entry"]: (r["count"], r["pmi"]) for r in rows if r["source"] == "bigram"}
    # unigrams come first, so a bigram equal to a unigram string would be a duplicate: none here
    assert set(got_bi) == set(bigrams) and len(bigrams) > 10
    for e, (c, p) in bigrams.items():
        assert got_bi[e][0] == c and got_bi[e][1] == pytest.approx(p, rel=1e-12)
    pmis = [r["pmi"] for r in rows if r["source"] == "bigram"]
    assert pmis == sorted(pmis, reverse=True)
    got_titles = [r["entry"] for r in rows if r["source"] == "title"]
    taken = {e for e, _ in got_uni} | set(got_bi)
    assert sorted(got_titles) == sorted(t for t in set(titles) if t not in taken)
    assert summary["added"] == {"wordnet": 0, "unigram": len(unigrams), "bigram": len(bigrams),
                                "title": len(got_titles)}


def test_counts_equal_python_counter_on_written_dump(spark, tmp_path):
    xml = make_dump_xml(n_pages=100, words=400)
    dump = write_dump(tmp_path / "enwiki-test-pages-articles.xml.bz2", xml)
    # words are drawn independently here, so PMI is near 0: keep the bigrams above 0.01
    split = os.path.getsize(dump) // 4 + 1
    summary, rows = build(spark, tmp_path / "out", dump, ["metadata_build.split_bytes=%d" % split,
                                                          "metadata_build.bigram_min_pmi=0.01"])
    assert summary["splits"] == 4 and summary["wikipedia"]["bz2_blocks"] >= 3
    check_against_python(summary, rows, xml, min_pmi=0.01)
    assert summary["dropped"] == {"page_disambiguation": 3, "page_not_main_namespace": 4, "page_redirect": 10}
    entries = json.load(open(tmp_path / "out" / "metadata.json", encoding="utf-8"))
    assert entries == [r["entry"] for r in rows] and os.path.exists(tmp_path / "out" / "_SUCCESS")


def test_counts_equal_python_counter_on_dump_sample(spark, tmp_path):
    path = shared_path(*SAMPLE)
    xml = bz2.decompress(path.read_bytes())
    summary, rows = build(spark, tmp_path / "out", str(path), ["metadata_build.split_bytes=400000"])
    assert summary["splits"] == 5
    check_against_python(summary, rows, xml)
    assert summary["wikipedia"]["articles"] == 98 and summary["wikipedia"]["pages"] == 206
    assert summary["dropped"] == {"page_disambiguation": 8, "page_not_main_namespace": 1, "page_redirect": 99}


def test_metadata_loads_in_stage1_and_matches(spark, tmp_path):
    wn = tmp_path / "wn"
    wn.mkdir()
    write_dict(wn, {"data.noun": [["dog"], ["hot_dog"], ["St._Louis"]], "data.adj": [["red(a)"]]})
    xml = make_dump_xml(n_pages=20, words=200)
    dump = write_dump(tmp_path / "d.xml.bz2", xml)
    (tmp_path / "pv").write_text("en Article_3 500 0\nen.m Article_3 20 0\nen Article_4 69 0\n"
                                 "en Article_5 90 0\nde Article_6 900 0\n")
    summary, rows = build(spark, tmp_path / "out", dump, [
        "metadata_build.wordnet=%s" % wn, "metadata_build.title_min_views=70",
        "metadata_build.pageviews=[%s]" % (tmp_path / "pv"), "metadata_build.budget=130"])
    entries = load_metadata(str(tmp_path / "out" / "metadata.json"))
    assert entries[:104] == ["dog", "hot dog", "st", "red"] + [str(i) for i in range(100)]
    assert len(entries) == 130 and summary["added"]["title"] in (0, 1, 2)
    srcs = [r["source"] for r in rows]
    assert srcs == sorted(srcs, key=["wordnet", "unigram", "bigram", "title"].index)
    by_id = {e: i for i, e in enumerate(entries)}
    text = "A hot dog, 3 red cars in New York."
    ids = Matcher(entries).match(text)
    assert ids == naive_match(text, entries)
    assert {by_id[e] for e in ("dog", "hot dog", "red", "3", "in", "New", "York")} <= set(ids)
    assert by_id["st"] not in ids and by_id["the"] not in ids


def test_fails_fast_before_spark(tmp_path, capsys):
    rc = cli.main(["build-metadata", "--wordnet", str(tmp_path / "none"), "--output", str(tmp_path / "o")])
    assert rc == 2 and "lacks data.noun" in capsys.readouterr().err
    (tmp_path / "x.bz2").write_bytes(b"not bz2")
    rc = cli.main(["build-metadata", "--wordnet", "", "--wikipedia", str(tmp_path / "x.bz2"),
                   "--output", str(tmp_path / "o")])
    assert rc == 2 and "not a bzip2 file" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "o")
