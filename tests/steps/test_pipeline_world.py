"""Stage 1 on one file in worldwide mode (steps/pipeline.py, Spark-free), real lid.176: every text
of an image (alt, title, data-image-title) gets its language, is matched against that language's
list with section 10's boundary rule, and the file's counts come back in global ids."""

import functools

import numpy as np
import pyarrow.parquet as pq
import pytest

from metaclip_spark.metadata import defaults
from metaclip_spark.metadata.languages import load_lid_map
from metaclip_spark.metadata.world import world_metadata_from_lists
from metaclip_spark.run.schema import POOL_SCHEMA
from metaclip_spark.steps import pipeline
from metaclip_spark.steps.extract import ExtractLimits
from metaclip_spark.steps.language import LanguageId, WorldLanguage, texts_by_language
from tests.formats.test_warc import html_response, write_members

LISTS = {"en": ["red car", "road", "x" * 300, "!!", "C++"],       # 2: too long, 3: punctuation-only
         "de": ["rotes Auto", "Straße", "Stadt"],
         "fr": ["chat noir", "maison"],
         "ja": ["夜景", "猫"],
         "zh": ["汽车", "路"]}
PAGE = """<html><body>
<img src="/a.jpg" alt="a red car on the road" title="Ein rotes Auto auf der Straße">
<img src="/b.jpg" alt="東京の夜景と猫の写真" data-image-title="un chat noir sur le toit de la maison">
<img src="/c.jpg" title="a red car on the road">
<img src="/a.jpg" alt="a red car on the road">
<img src="/d.jpg" alt="un coche rojo en la carretera" title="a blue boat on the lake">
<img src="/e.jpg" alt="Programming in C++11 is fun" data-image-title="wow !! what a great photo">
<img src="/f.jpg" alt="红色的汽车在路上" title="Straßenbahn in der Stadt">
</body></html>"""
U = "http://w.example/"


def world_matcher(world, tmp_path):
    """H3's WorldMatcher over automata built into ``tmp_path`` (the job's way)."""
    from metaclip_spark.steps.world_automata import build_automata
    from metaclip_spark.steps.world_match import WorldMatcher

    where = str(tmp_path / "automata")
    return WorldMatcher(where, world, manifest=build_automata(world, where))


@pytest.fixture
def page_file(tmp_path):
    path = tmp_path / "page.warc.gz"
    write_members(str(path), [html_response(U, PAGE, "<urn:uuid:p1>")])
    return str(path)


def test_match_file_worldwide(page_file, tmp_path):
    world = world_metadata_from_lists(LISTS)
    lid = LanguageId(defaults.default_lid_model_path(), 0.5)
    language = functools.partial(WorldLanguage, lid, world.languages, load_lid_map(), 0.0, {"en": 0.6})
    task = pipeline.WorldTask(world.space, language)
    limits = ExtractLimits(text_fields=("alt", "title", "data-image-title"))
    r = pipeline.match_file(page_file, str(tmp_path / "pool"), world_matcher(world, tmp_path), lid, limits,
                            crawl="CC-TEST", world=task)
    assert r.failed is None
    table = pq.read_table(r.output)
    assert table.schema.remove_metadata() == POOL_SCHEMA
    rows = [(x["url"][len(U):], x["text_field"], x["lang"], x["entry_ids"], x["text"])
            for x in table.select(["url", "text_field", "lang", "entry_ids", "text"]).to_pylist()]
    assert rows == [
        ("a.jpg", "alt", "en", [0, 1], "a red car on the road"),
        ("a.jpg", "title", "de", [0, 1], "Ein rotes Auto auf der Straße"),
        ("b.jpg", "alt", "ja", [0, 1], "東京の夜景と猫の写真"),
        ("b.jpg", "data-image-title", "fr", [0, 1], "un chat noir sur le toit de la maison"),
        ("c.jpg", "title", "en", [0, 1], "a red car on the road"),
        ("e.jpg", "alt", "en", [4], "Programming in C++11 is fun"),
        ("f.jpg", "alt", "zh", [0, 1], "红色的汽车在路上"),
        ("f.jpg", "title", "de", [2], "Straßenbahn in der Stadt"),
    ]
    assert set(table.column("crawl").to_pylist()) == {"CC-TEST"}
    # counts in global ids: en 0-4, de 5-7, fr 8-9, ja 10-11, zh 12-13
    assert world.space.languages == ("en", "de", "fr", "ja", "zh")
    assert dict(zip(r.entry_ids.tolist(), r.counts.tolist())) == {
        0: 2, 1: 2, 4: 1, 5: 1, 6: 1, 7: 1, 8: 1, 9: 1, 10: 1, 11: 1, 12: 1, 13: 1}
    s = r.stats
    assert texts_by_language(s) == {"de": 2, "en": 4, "fr": 1, "ja": 1, "zh": 1}
    assert pipeline.matched_by_language(s) == {"de": 2, "en": 3, "fr": 1, "ja": 1, "zh": 1}
    assert s.dropped() == {"duplicate_in_page": 1, "lid_low_score": 1, "no_match": 1, "no_metadata_language": 1,
                           "no_alt": 1}
    assert (s["texts"], s["matched"], s["pool_rows"]) == (9, 8, 8)


def test_english_mode_rows_are_alt_en(page_file, tmp_path):
    from metaclip_spark.steps.match import Matcher

    lid = LanguageId(defaults.default_lid_model_path(), 0.5)
    r = pipeline.match_file(page_file, str(tmp_path / "pool"), Matcher(["red car", "road", "C++"]), lid,
                            ExtractLimits(), crawl="CC-TEST")
    table = pq.read_table(r.output)
    assert table.select(["url", "text_field", "lang", "entry_ids"]).to_pylist() == [
        {"url": U + "a.jpg", "text_field": "alt", "lang": "en", "entry_ids": [0, 1]}]
    assert dict(zip(r.entry_ids.tolist(), r.counts.tolist())) == {0: 1, 1: 1}
    assert pipeline.matched_by_language(r.stats) == {} and texts_by_language(r.stats) == {}


def test_extract_file_worldwide_marks(page_file, tmp_path):
    """``extract`` in worldwide mode: every candidate with its LID label and the worldwide drops."""
    world = world_metadata_from_lists(LISTS)
    lid = LanguageId(defaults.default_lid_model_path(), 0.5)
    language = functools.partial(WorldLanguage, lid, world.languages, load_lid_map(), 0.0, {"en": 0.6})
    r = pipeline.extract_file(page_file, str(tmp_path / "pairs"), lid,
                              ExtractLimits(text_fields=("alt", "title", "data-image-title")), language=language)
    rows = [(x["url"][len(U):], x["text_field"], x["lid_label"], x["drop"])
            for x in pq.read_table(r.output).to_pylist()]
    assert rows == [("a.jpg", "alt", "en", None), ("a.jpg", "title", "de", None), ("b.jpg", "alt", "ja", None),
                    ("b.jpg", "data-image-title", "fr", None), ("c.jpg", "title", "en", None),
                    ("a.jpg", "alt", None, "duplicate_in_page"), ("d.jpg", "alt", "es", "no_metadata_language"), ("d.jpg", "title", "en", None),
                    ("e.jpg", "alt", "en", None), ("e.jpg", "data-image-title", "en", "lid_low_score"),
                    ("f.jpg", "alt", "zh", None), ("f.jpg", "title", "de", None)]
    assert texts_by_language(r.stats) == {"de": 2, "en": 4, "fr": 1, "ja": 1, "zh": 1}
