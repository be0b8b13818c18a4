"""`build-metadata --lang xx` on a real local Spark session: {lang}.json of small de/ja/zh/th dumps
the tests write equals the hand-computed lists (tests/metadata/world_dumps.py; the Spark-free
build in tests/metadata/test_world_build.py gives the same), checks before Spark, English kept."""

import json
import os

import pyarrow.parquet as pq
import pytest

from metaclip_spark import cli
from metaclip_spark.metadata.load import load_metadata
from metaclip_spark.run.config import load_config
from metaclip_spark.spark.build_metadata import run_build_metadata
from tests.conftest import ROOT
from tests.metadata import world_dumps as wd
from tests.metadata.test_wikipedia import make_dump_xml, write_dump
from tests.spark.test_build_metadata import check_against_python

MODULE = {"ja": "fugashi", "zh": "jieba", "th": "pythainlp"}


def world_config(tmp_path, lang, paths, extra=()):
    split = os.path.getsize(paths["dump"]) // 2 + 1                 # two tasks
    sets = ["metadata_build.%s=%s" % kv for kv in wd.CONFIG[lang].items()] + ["metadata_build.split_bytes=%d" % split]
    flags = {"output": str(tmp_path / "out"), "metadata_build.lang": lang,
             "metadata_build.wikipedia": [paths["dump"]]}
    if "pageviews" in paths:
        flags["metadata_build.pageviews"] = [paths["pageviews"]]
    if "omw" in paths:
        flags["metadata_build.wordnet_omw"] = paths["omw"]
    return load_config([os.path.join(ROOT, "conf", "default.yaml")], sets + list(extra), flags)


@pytest.mark.parametrize("lang", ["de", "ja", "zh", "th"])
def test_lang_json_equals_hand_computed_list(spark, tmp_path, lang):
    if lang in MODULE:
        pytest.importorskip(MODULE[lang])
    paths = wd.write_inputs(tmp_path, lang)
    summary = run_build_metadata(world_config(tmp_path, lang, paths), spark)
    out = tmp_path / "out"
    entries = json.loads((out / ("%s.json" % lang)).read_text(encoding="utf-8"))
    assert entries == wd.EXPECTED[lang]
    assert load_metadata(str(out / ("%s.json" % lang))) == entries
    assert not (out / "metadata.json").exists() and (out / "_SUCCESS").exists()
    rows = pq.read_table(str(out / "provenance" / "provenance.parquet")).to_pylist()
    assert [r["entry"] for r in rows] == entries
    sources = [r["source"] for r in rows]
    assert sources == sorted(sources, key=["number", "wordnet", "unigram", "bigram", "title"].index)
    assert summary["lang"] == lang and summary["entries"] == len(entries) and summary["splits"] == 2
    assert summary["wikipedia"]["tokens"] == sum(wd.UNIGRAMS[lang].values())
    assert summary["wikipedia"]["bigrams"] == sum(wd.BIGRAMS[lang].values())
    assert summary["sources"]["unigram"]["distinct"] == len(wd.UNIGRAMS[lang])
    assert summary["sources"]["bigram"]["distinct"] == len(wd.BIGRAMS[lang])
    unigram_counts = {r["entry"]: r["count"] for r in rows if r["source"] == "unigram"}
    assert unigram_counts == {e: wd.UNIGRAMS[lang][e] for e in unigram_counts}
    stats = json.loads((out / "stats" / "build_metadata.json").read_text())
    assert stats["added"] == summary["added"] and stats["segmenter"] == summary["segmenter"]
    if lang == "de":
        assert summary["link_namespaces"] == ["datei", "kategorie", "medium"] and summary["segmenter"] is None
        assert summary["dropped"] == {"page_not_main_namespace": 1, "page_redirect": 1}
        assert summary["sources"]["title"] == {"distinct": 8, "quota": 3, "examined": 7, "added": 3, "duplicate": 2,
                                               "dropped_too_long": 1, "dropped_punctuation_only": 1, "empty": 0}
        assert summary["pageviews_projects"] == ["de", "de.m"]
    if lang == "ja":
        assert summary["segmenter"] == "fugashi+unidic-lite"
        assert summary["added"] == {"number": 100, "wordnet": 3, "unigram": 6, "bigram": 3, "title": 1}
        assert summary["sources"]["wordnet"]["dropped_too_long"] == 1


def test_cli_flags_reach_the_config(tmp_path):
    args = cli.build_parser().parse_args(["build-metadata", "--lang", "ja", "--wikipedia", "d.bz2",
                                          "--wordnet-omw", "wn-data-jpn.tab", "--output", str(tmp_path / "o")])
    cfg = cli.config_from_args(args)
    assert (cfg.metadata_build.lang, cfg.metadata_build.wordnet_omw) == ("ja", "wn-data-jpn.tab")
    cfg = cli.config_from_args(cli.build_parser().parse_args(["build-metadata", "--output", "o"]))
    assert (cfg.metadata_build.lang, cfg.metadata_build.wordnet_omw) == ("en", "")


def test_fails_before_spark(tmp_path, capsys):
    paths = {lang: wd.write_inputs(tmp_path, lang) for lang in ("de", "ja")}
    out = str(tmp_path / "o")
    # Burmese: no offline segmenter; Tibetan: botok is not installed here (it downloads its data pack)
    rc = cli.main(["build-metadata", "--lang", "my", "--wikipedia", paths["de"]["dump"], "--output", out])
    assert rc == 2 and "'my' (written without spaces) need a word segmenter" in capsys.readouterr().err
    try:
        import botok  # noqa: F401
    except ImportError:
        rc = cli.main(["build-metadata", "--lang", "bo", "--wikipedia", paths["de"]["dump"], "--output", out])
        assert rc == 2 and "pip install botok" in capsys.readouterr().err
    rc = cli.main(["build-metadata", "--lang", "de", "--output", out])
    assert rc == 2 and "nothing to build de.json from" in capsys.readouterr().err
    rc = cli.main(["build-metadata", "--lang", "fr", "--wordnet-omw", paths["ja"]["omw"], "--output", out])
    assert rc == 2 and "has no lemmas of fra (OMW code of 'fr'); it holds cmn, jpn" in capsys.readouterr().err
    rc = cli.main(["build-metadata", "--lang", "de", "--wikipedia", paths["de"]["dump"], "--output", out,
                   "--set", "metadata_build.world_title_share=1.5"])
    assert rc == 2 and "world_title_share must be in [0, 1]" in capsys.readouterr().err
    rc = cli.main(["build-metadata", "--lang", "../de", "--wikipedia", paths["de"]["dump"], "--output", out])
    assert rc == 2 and "must be a metadata language code" in capsys.readouterr().err
    assert not os.path.exists(out)


def test_omw_and_page_views_alone(tmp_path):
    paths = wd.write_inputs(tmp_path, "ja")
    del paths["dump"]
    cfg = load_config([os.path.join(ROOT, "conf", "default.yaml")], [],
                      {"output": str(tmp_path / "out"), "metadata_build.lang": "ja",
                       "metadata_build.wordnet_omw": paths["omw"], "metadata_build.pageviews": [paths["pageviews"]]})
    summary = run_build_metadata(cfg)          # no dump: no Spark session is started
    # no dump, no segmenter needed; titles: int(3 * 0.76) = 2 of 猫 (dup of WordNet), 犬, 東京タワー
    assert json.loads((tmp_path / "out" / "ja.json").read_text()) == wd.NUMBERS + ["ネコ科", "犬 小屋", "猫", "犬",
                                                                                     "東京タワー"]
    assert summary["splits"] == 0 and summary["segmenter"] is None


def test_lang_en_is_the_english_builder(spark, tmp_path):
    xml = make_dump_xml(n_pages=30, words=200)
    dump = write_dump(tmp_path / "enwiki-test.xml.bz2", xml)
    sets = ["metadata_build.wordnet=", "metadata_build.unigram_min_count=20", "metadata_build.bigram_min_count=3",
            "metadata_build.bigram_min_pmi=0.01", "metadata_build.title_min_views=0",
            "metadata_build.split_bytes=40000", "metadata_build.lang=en"]
    cfg = load_config([os.path.join(ROOT, "conf", "default.yaml")], sets,
                      {"output": str(tmp_path / "out"), "metadata_build.wikipedia": [dump]})
    summary = run_build_metadata(cfg, spark)
    rows = pq.read_table(str(tmp_path / "out" / "provenance" / "provenance.parquet")).to_pylist()
    check_against_python(summary, rows, xml, min_pmi=0.01)
    assert "lang" not in summary and (tmp_path / "out" / "metadata.json").exists()
    assert not (tmp_path / "out" / "en.json").exists()


def test_large_sources_take_the_head_of_a_sort(spark, tmp_path, monkeypatch):
    """Above TAKE_ORDERED_MAX rows a ranked source is sorted on the executors and only its head is
    collected: the same list as takeOrdered."""
    from metaclip_spark.spark import build_metadata as bm

    monkeypatch.setattr(bm, "TAKE_ORDERED_MAX", 0)
    paths = wd.write_inputs(tmp_path, "de")
    summary = run_build_metadata(world_config(tmp_path, "de", paths), spark)
    assert json.loads((tmp_path / "out" / "de.json").read_text(encoding="utf-8")) == wd.EXPECTED["de"]
    assert summary["added"] == {"number": 100, "wordnet": 0, "unigram": 4, "bigram": 2, "title": 3}
