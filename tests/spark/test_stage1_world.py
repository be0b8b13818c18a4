"""The driver's part of worldwide stage 1 (spark/stage1_world.py, Spark-free): the checks made
before Spark starts, the automata folder, the entry-count rows and the per-language statistics."""

import json

import numpy as np
import pytest

from metaclip_spark.metadata.load import MetadataError
from metaclip_spark.run.config import ConfigError, load_config
from metaclip_spark.run.stats import Stats
from metaclip_spark.spark import stage1_world

LISTS = {"en": ["dog", "x" * 300, "cat"], "de": ["Hund"], "zh": ["狗", "。"]}


@pytest.fixture
def folder(tmp_path):
    for lang, entries in LISTS.items():
        (tmp_path / ("%s.json" % lang)).write_text(json.dumps(entries, ensure_ascii=False))
    return str(tmp_path)


def cfg(**over):
    return load_config(overrides={"output": "/tmp/out-never-written", **over})


def test_checks_before_spark(folder, tmp_path):
    assert stage1_world.prepare_world(cfg()) is None                                   # English mode
    with pytest.raises(ConfigError, match=r"^--worldwide needs the metadata folder: --metadata DIR"):
        stage1_world.prepare_world(cfg(**{"worldwide.enabled": True}))
    with pytest.raises(MetadataError, match="no such folder or file"):
        stage1_world.prepare_world(cfg(**{"worldwide.enabled": True, "worldwide.metadata": str(tmp_path / "no")}))
    with pytest.raises(ConfigError, match=r"^worldwide.lid_thresholds names language\(s\) without metadata: fr, ru "
                                          r"\(metadata languages: en, de, zh\)$"):
        stage1_world.prepare_world(cfg(**{"worldwide.enabled": True, "worldwide.metadata": folder,
                                          "worldwide.lid_thresholds": {"ru": 0.1, "fr": 0.2, "en": 0.5}}))
    got = stage1_world.prepare_world(cfg(**{"worldwide.enabled": True, "worldwide.metadata": folder}))
    assert got["world"].languages == ("en", "de", "zh") and got["lid_map"]["yue"] == "zh"
    c = cfg(**{"worldwide.enabled": True, "worldwide.metadata": folder})
    assert stage1_world.automata_dir(c, got["world"]) == "/tmp/out-never-written/automata/" + got["world"].digest[:12]


def test_entry_counts_and_language_stats(folder):
    world = stage1_world.prepare_world(cfg(**{"worldwide.enabled": True, "worldwide.metadata": folder}))["world"]
    counts = np.array([4, 0, 1, 2, 5, 0], np.int64)         # en 0-2, de 3, zh 4-5 (global ids)
    table = stage1_world.entry_counts_table(world, counts, "abc")
    assert table.to_pylist() == [
        {"entry_id": 0, "entry": "dog", "count": 4, "lang": "en"},
        {"entry_id": 1, "entry": "x" * 300, "count": 0, "lang": "en"},
        {"entry_id": 2, "entry": "cat", "count": 1, "lang": "en"},
        {"entry_id": 0, "entry": "Hund", "count": 2, "lang": "de"},
        {"entry_id": 0, "entry": "狗", "count": 5, "lang": "zh"},
        {"entry_id": 1, "entry": "。", "count": 0, "lang": "zh"}]
    assert table.schema.metadata == {b"pool_digest": b"abc"}
    stats = Stats({"lang_texts.en": 7, "lang_texts.zh": 3, "lang_texts.de": 2, "lang_matched.en": 4,
                   "lang_matched.zh": 3, "lang_matched.de": 2, "texts.title": 9})
    assert stage1_world.language_stats(world.space, counts, stats) == {
        "en": {"texts": 7, "matched": 4, "entries": 3, "entries_matched": 2},
        "de": {"texts": 2, "matched": 2, "entries": 1, "entries_matched": 1},
        "zh": {"texts": 3, "matched": 3, "entries": 2, "entries_matched": 1}}
    assert world.report() == {"en": {"entries": 3, "dropped_too_long": 1, "dropped_punctuation_only": 0},
                              "de": {"entries": 1, "dropped_too_long": 0, "dropped_punctuation_only": 0},
                              "zh": {"entries": 2, "dropped_too_long": 0, "dropped_punctuation_only": 1}}
