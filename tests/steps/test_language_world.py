"""The worldwide language step (steps/language.py WorldLanguage, world_lid_drops) with the real
lid.176.ftz: every text keeps its top label's metadata language, dropped as
no_metadata_language / lid_low_score; checked against fastText called directly."""

import collections

import fasttext
import numpy as np
import pyarrow.parquet as pq
import pytest

from metaclip_spark.metadata import defaults
from metaclip_spark.metadata.languages import OTHER, load_lid_map
from metaclip_spark.run.config import load_config
from metaclip_spark.run.stats import Stats
from metaclip_spark.steps.language import (Language, LanguageId, WorldLanguage, texts_by_language,
                                           world_lid_drops)
from tests.conftest import shared_path

METADATA_LANGS = ("en", "de", "fr", "ja", "zh", "ru", "es", "it")
THRESHOLDS = {"fr": 0.9, "ja": 0.0}
DEFAULT = 0.5


@pytest.fixture(scope="module")
def model_path():
    return defaults.default_lid_model_path()


@pytest.fixture(scope="module")
def captions():
    """The non-English captions of the img2dataset test file (fastText's own top label != en),
    normalised as extraction does (one space per whitespace run)."""
    path = shared_path("data", "captions", "img2dataset-test_10000.parquet")
    texts = [" ".join(t.split()) for t in pq.read_table(str(path)).column("TEXT").to_pylist()]
    fasttext.FastText.eprint = lambda *args, **kwargs: None
    model = fasttext.load_model(defaults.default_lid_model_path())
    labels, probs = model.predict(texts, k=1)
    rows = [(t, lab[0][len("__label__"):], np.float32(p[0])) for t, lab, p in zip(texts, labels, probs)
            if lab[0] != "__label__en"]
    return rows


def batch_of(texts):
    return {"url": ["http://x/%d.jpg" % i for i in range(len(texts))], "text": list(texts),
            "drop": [None] * len(texts)}


def expected(rows, languages=METADATA_LANGS, default=DEFAULT, thresholds=THRESHOLDS):
    """The rule written out from fastText's own answers: kept when the label's metadata language
    (the map's language, unknown labels: other) has metadata and the float32 score reaches it."""
    lid_map = load_lid_map()
    kept, no_meta, low = collections.Counter(), collections.Counter(), collections.Counter()
    for _, label, score in rows:
        lang = lid_map.get(label, OTHER)
        if lang not in languages:
            no_meta[lang] += 1
        elif score < np.float32(thresholds.get(lang, default)):
            low[lang] += 1
        else:
            kept[lang] += 1
    return kept, no_meta, low


def test_non_english_captions_exact(model_path, captions):
    assert len(captions) == 1109 and len({t for t, _, _ in captions}) == 1109
    kept, no_meta, low = expected(captions)
    assert kept == {"de": 76, "es": 32, "fr": 17, "it": 39, "ja": 37, "ru": 21, "zh": 7}
    assert low == {"de": 107, "es": 70, "fr": 182, "it": 60, "ru": 20, "zh": 17}   # ja's threshold is 0
    assert sum(no_meta.values()) == 424 and len(no_meta) == 66 and (no_meta["pt"], no_meta["nl"]) == (44, 40)

    step = WorldLanguage(LanguageId(model_path, 0.99, batch_size=100), METADATA_LANGS, load_lid_map(),
                         DEFAULT, THRESHOLDS)
    stats = Stats()
    texts = [t for t, _, _ in captions]
    out = step.run(batch_of(texts), stats)
    assert collections.Counter(out["lang"]) == kept
    assert step.kept_by_language == kept
    assert texts_by_language(stats) == dict(sorted(kept.items()))
    assert stats["texts"] == 229
    assert stats.dropped() == {"lid_low_score": 456, "no_metadata_language": 424}
    assert out["lid_score"].dtype == np.float32 and len(out["lid_score"]) == 229
    want = [(t, lab, s) for t, lab, s in captions if lab in step.lid_map and
            step.lid_map[lab] in METADATA_LANGS and s >= np.float32(THRESHOLDS.get(step.lid_map[lab], DEFAULT))]
    assert out["text"] == [t for t, _, _ in want]
    assert out["lid_score"].tolist() == [float(s) for _, _, s in want]
    assert out["url"] == ["http://x/%d.jpg" % texts.index(t) for t, _, _ in want]


def test_mark_mode_and_batches_agree(model_path, captions):
    texts = [t for t, _, _ in captions]
    kept, _, _ = expected(captions)
    lid = LanguageId(model_path, 0.5, batch_size=64)
    stats, marked = Stats(), WorldLanguage(lid, METADATA_LANGS, None, DEFAULT, THRESHOLDS)
    b = batch_of(texts)
    b["drop"][0] = "duplicate_in_page"            # a candidate extraction dropped is left alone
    out = marked.mark(b, stats)
    assert (out["lid_label"][0], out["lid_score"][0], out["lang"][0], out["drop"][0]) == \
        (None, None, None, "duplicate_in_page")
    assert out["lid_label"][1:] == [lab for _, lab, _ in captions[1:]]
    assert out["lid_score"][1:] == [float(s) for _, _, s in captions[1:]]
    assert out["lang"][1:] == [load_lid_map().get(lab, OTHER) for _, lab, _ in captions[1:]]
    kept1, no_meta1, low1 = expected(captions[1:])
    assert collections.Counter(out["drop"][1:]) == {None: sum(kept1.values()),
                                                    "no_metadata_language": sum(no_meta1.values()),
                                                    "lid_low_score": sum(low1.values())}
    assert texts_by_language(stats) == dict(sorted(kept1.items())) and stats["texts"] == sum(kept1.values())
    assert stats.dropped() == {"lid_low_score": sum(low1.values()), "no_metadata_language": sum(no_meta1.values())}

    # filter mode over small batches (one step per file: the memo spans its batches) = one batch
    step, stats2 = WorldLanguage(lid, METADATA_LANGS, None, DEFAULT, THRESHOLDS), Stats()
    langs, scores = [], []
    for start in range(0, len(texts), 100):
        out = step.run(batch_of(texts[start:start + 100]), stats2)
        langs += out["lang"]
        scores += out["lid_score"].tolist()
    assert collections.Counter(langs) == kept and stats2["texts"] == sum(kept.values())
    assert len(step.memo) == len(set(texts))


def test_decision_rules():
    lid_map = {"en": "en", "yue": "zh", "zh": "zh", "lrc": OTHER, "de": "de"}
    labels = ["en", "yue", "zh", "lrc", "xx", "", "de", "de", "en"]
    scores = np.array([0.3, 0.95, 0.5, 0.99, 0.99, 0.99, np.nan, 0.7, np.nextafter(np.float32(0.2), np.float32(0))],
                      np.float32)
    langs, no_meta, low = world_lid_drops(labels, scores, lid_map, {"en", "zh", "de"}, 0.2, {"zh": 0.6, "de": 0.7})
    assert langs == ["en", "zh", "zh", OTHER, OTHER, OTHER, "de", "de", "en"]
    assert no_meta.tolist() == [False, False, False, True, True, True, False, False, False]
    # zh 0.5 < 0.6; NaN never low; de 0.7 >= 0.7 (float32); en just under 0.2 is low
    assert low.tolist() == [False, False, True, False, False, False, False, False, True]
    # other is a language like any other: with other in the metadata, unmapped labels stay
    langs, no_meta, low = world_lid_drops(labels, scores, lid_map, {"en", "zh", "de", OTHER}, 0.0)
    assert not no_meta.any() and not low.any()
    # no_metadata_language wins over a low score (as not_english does in English mode)
    _, no_meta, low = world_lid_drops(["lrc"], np.array([0.01], np.float32), lid_map, {"en"}, 0.5)
    assert no_meta.tolist() == [True] and low.tolist() == [False]
    assert world_lid_drops([], np.zeros(0, np.float32), lid_map, {"en"}, 0.5)[0] == []


def test_default_threshold_zero_keeps_every_text_with_metadata(model_path):
    texts = ["a photo of a dog", "Ein Hund spielt am Strand", "海辺で遊ぶ犬の写真", "犬", "x", "3.5"]
    step, stats = WorldLanguage(LanguageId(model_path, 0.5), ["en", "de", "ja", "zh", OTHER]), Stats()
    labels, scores = LanguageId(model_path, 0.5).predict(texts)
    out = step.run(batch_of(texts), stats)
    assert out["text"] == texts and out["lid_score"].tolist() == scores.tolist()
    assert out["lang"] == [load_lid_map().get(label, OTHER) for label in labels]
    assert out["lang"][:3] == ["en", "de", "ja"]
    assert stats.dropped() == {} and stats["texts"] == 6 and stats["english"] == 0


def test_from_config_reads_the_worldwide_section(model_path, tmp_path):
    p = tmp_path / "map.tsv"
    p.write_text("en\ten\nde\tN/A\n", encoding="utf-8")
    cfg = load_config(sets=["worldwide.lid_map=%s" % p, "worldwide.lid_threshold=0.25",
                            "worldwide.lid_thresholds={en: 0.75}"]).worldwide
    step = WorldLanguage.from_config(LanguageId(model_path, 0.5), cfg, ["en", "de"])
    assert step.lid_map == {"en": "en", "de": OTHER}
    assert (step.threshold, step.thresholds, step.languages) == (0.25, {"en": 0.75}, frozenset({"en", "de"}))
    assert WorldLanguage.from_config(LanguageId(model_path, 0.5), load_config().worldwide, ["en"]).lid_map == \
        load_lid_map()
    assert WorldLanguage.name == Language.name == "language" and WorldLanguage.drops == Language.drops


def test_language_counters_are_apart_from_extraction_counters(model_path):
    stats = Stats({"texts.title": 3, "texts.data_image_title": 2, "pairs.title": 1})
    WorldLanguage(LanguageId(model_path, 0.5), ["de", "en"]).run(batch_of(["Ein Hund spielt am Strand"]), stats)
    assert texts_by_language(stats) == {"de": 1}
    assert stats["lang_texts.de"] == 1 and stats["texts"] == 1 and stats["texts.title"] == 3
