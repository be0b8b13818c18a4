"""One language's metadata with MetaCLIP 2's recipe (metadata/world_build.py), Spark-free: tokens,
quotas, section 10's drops, and whole lists built from small de/ja/zh/th dumps the tests write
(tests/metadata/world_dumps.py) equal to hand-computed lists."""

import os
from collections import Counter

import pytest

from metaclip_spark.metadata import wikipedia as w
from metaclip_spark.metadata import world_build as wb
from metaclip_spark.metadata.omw import read_omw
from metaclip_spark.metadata.segmenters import NO_SPACE_LANGUAGES, get_segmenter
from metaclip_spark.run.stats import Stats
from tests.metadata import world_dumps as wd


def caps_of(lang):
    return wb.WorldCaps(**{k.replace("world_", ""): v for k, v in wd.CONFIG[lang].items()})


def test_quota_is_metaclip2s_int_of_the_share_under_the_cap():
    assert wb.quota(30, 0.1, 251_465) == 3
    assert wb.quota(25, 0.76, 61_235) == 19
    assert wb.quota(8, 0.76, 61_235) == 6          # int(6.08)
    assert wb.quota(10_000_000, 0.1, 251_465) == 251_465
    assert wb.quota(0, 0.1, 10) == 0 and wb.quota(9, 0.1, 10) == 0
    caps = wb.WorldCaps()
    assert (caps.unigram_share, caps.unigram_cap, caps.bigram_cap, caps.title_share, caps.title_cap) == \
        (0.10, 251_465, 100_646, 0.76, 61_235)


def test_spaced_tokens_keep_marks_and_the_english_rule():
    line = "Die Stadt Zürich, hot-dog l'eau it\u2019s 東京 हिन्दी भाषा தமிழ் می\u200cخواهم x_y"
    assert wb.spaced_tokens(line) == ["Die", "Stadt", "Zürich", "hot-dog", "l'eau", "it\u2019s", "東京", "हिन्दी",
                                      "भाषा", "தமிழ்", "می\u200cخواهم", "x_y"]
    # on text without combining marks the rule is the English builder's
    plain = "The cat's hot-dog, 3.5 stars -- rock-n-roll 'quoted' x\ty"
    assert wb.spaced_tokens(plain) == w.tokens(plain)
    assert list(wb.spaced_bigrams(plain)) == list(w.bigrams(plain))
    assert list(wb.spaced_bigrams("हिन्दी भाषा, नई\tदिल्ली")) == [("हिन्दी", "भाषा"), ("नई", "दिल्ली")]


def test_no_space_languages_and_bigram_join():
    assert NO_SPACE_LANGUAGES >= {"bo", "dz", "ja", "km", "lo", "my", "ryu", "th", "zh"}
    assert wb.join_bigram("東京", "タワー", "ja") == "東京タワー"
    assert wb.join_bigram("New", "York", "de") == "New York"


def test_weird_tokens_and_segmented_breaks():
    assert wb.is_weird_token("(abc") and wb.is_weird_token("abc)") and wb.is_weird_token("「猫")
    assert wb.is_weird_token(".x") and not wb.is_weird_token("a(b)c") and not wb.is_weird_token("猫")
    seg = lambda chunk: {"ab「c": ["ab", "「c"], "d。e": ["d", "。", "e"]}.get(chunk, [chunk])
    assert wb.segmented_tokens("ab「c  d。e f", seg) == ["ab", None, "d", None, "e", "f"]


def test_assembly_drops_dedups_and_fills_quotas_with_new_entries():
    asm = wb.Assembly()
    asm.take("number", ["0", "1"])
    asm.take("wordnet", [" cat ", "cat", "!!!", "—", "x" * 257, "x" * 256, ""])
    assert asm.entries == ["0", "1", "cat", "x" * 256]
    assert asm.stats["wordnet"] == {"distinct": None, "quota": None, "examined": 7, "added": 2, "duplicate": 1,
                                    "dropped_too_long": 1, "dropped_punctuation_only": 2, "empty": 1}
    ranked = wb.rank_unigrams({"cat": 9, "1": 9, "dog": 5, "Dog": 5, "..": 4, "eel": 1})
    assert ranked == [("1", 9), ("cat", 9), ("Dog", 5), ("dog", 5), ("..", 4), ("eel", 1)]
    assert asm.would_add("unigram", ranked, 3) == 3
    assert asm.take("unigram", ranked, 3, 6) == 3          # 1 and cat are taken: the quota counts new entries
    assert asm.entries[4:] == ["Dog", "dog", "eel"]
    assert asm.take("bigram", [], 0, 0) == 0 and asm.stats["bigram"]["quota"] == 0
    kinds = [c.source for c in asm.kept]
    assert kinds == ["number"] * 2 + ["wordnet"] * 2 + ["unigram"] * 3
    assert [c.count for c in asm.kept[4:]] == [5, 5, 1]


def test_fill_fetches_more_until_the_quota_is_met():
    ranked = [("w%03d" % i, 1000 - i) for i in range(600)]
    asm = wb.Assembly()
    asm.take("wordnet", ["w%03d" % i for i in range(0, 2000, 2)])     # every even-numbered word is taken
    asked = []

    def fetch(k):
        asked.append(k)
        return ranked[:k]

    assert asm.fill("unigram", fetch, 200, len(ranked)) == 200
    assert asm.entries[1000:] == ["w%03d" % i for i in range(1, 400, 2)]
    assert asked == [200 + 1000 + 1024]
    # 3000 punctuation-only rows rank first: the first fetch adds nothing, the next one is 4x larger
    punct = [("!" * (1 + i % 60) + "?" * (i // 60), 10_000 - i) for i in range(3000)]
    ranked = punct + [("v%d" % i, 10 - i) for i in range(9)] + [("v%d" % i, 1) for i in range(9, 2000)]
    asm2 = wb.Assembly()
    asked.clear()
    assert asm2.fill("unigram", lambda k: (asked.append(k), ranked[:k])[1], 5, len(ranked)) == 5
    assert asked == [1029, 4116] and asm2.entries == ["v0", "v1", "v2", "v3", "v4"]
    assert asm2.stats["unigram"]["dropped_punctuation_only"] == 3000


def test_titles_come_from_page_views_as_metaclip2_reads_them():
    tv = wb.title_views({"Katze": 60, "Diskussion:Katze": 99, "Null": 0, " Maus": 3, "Maus ": 4})
    assert tv == {"Katze": 60, "Maus": 7}
    assert wb.rank_titles({"b": 2, "a": 2, "c": 9}) == [("c", 9), ("a", 2), ("b", 2)]
    assert wb.pageview_projects("de", []) == ["de", "de.m"]
    assert wb.pageview_projects("zh_yue", []) == ["zh-yue", "zh-yue.m"]
    assert wb.pageview_projects("de", ["de.b"]) == ["de.b"]


def test_bigram_ranking_thresholds_and_ties():
    caps = wb.WorldCaps(bigram_min_count=2, bigram_min_pmi=1.0)
    scored = [("a", "b", 2, 3.0), ("c", "d", 5, 3.0), ("e", "f", 1, 9.0), ("g", "h", 9, 0.5), ("B", "b", 2, 3.0)]
    assert wb.rank_bigrams(scored, "de", caps) == [("c d", 5, 3.0), ("B b", 2, 3.0), ("a b", 2, 3.0)]
    assert [r[0] for r in wb.rank_bigrams(scored, "zh", caps)] == ["cd", "Bb", "ab"]


def count_dump(lang, path):
    stats, uni, bi = Stats(), Counter(), Counter()
    counter = wb.NgramCounter(lang)
    for _title, u, b in w.count_split(path, 0, os.path.getsize(path), stats, counter, w.link_namespaces(path)):
        uni.update(u)
        bi.update(b)
    return stats, uni, bi


@pytest.mark.parametrize("lang", ["de", "ja", "zh", "th"])
def test_lists_from_written_dumps_equal_hand_computed_ones(tmp_path, lang):
    if lang in NO_SPACE_LANGUAGES:
        pytest.importorskip({"ja": "fugashi", "zh": "jieba", "th": "pythainlp"}[lang])
    paths = wd.write_inputs(tmp_path, lang)
    stats, uni, bi = count_dump(lang, paths["dump"])
    assert dict(uni) == wd.UNIGRAMS[lang] and dict(bi) == wd.BIGRAMS[lang]
    assert stats["tokens"] == sum(wd.UNIGRAMS[lang].values()) and stats["bigrams"] == sum(wd.BIGRAMS[lang].values())
    views = w.read_pageviews([paths["pageviews"]], wb.pageview_projects(lang, []), Stats()) \
        if "pageviews" in paths else {}
    wordnet = read_omw(paths["omw"], lang) if "omw" in paths else []
    asm = wb.build_world(lang, caps_of(lang), wordnet, uni, bi, views)
    assert asm.entries == wd.EXPECTED[lang]
    assert len(set(asm.entries)) == len(asm.entries)


def test_dump_namespaces_of_files_and_categories_are_dropped(tmp_path):
    paths = wd.write_inputs(tmp_path, "de")
    assert w.link_namespaces(paths["dump"]) == frozenset({"medium", "datei", "kategorie"})
    _, uni, _ = count_dump("de", paths["dump"])
    assert not {"mini", "Eine", "graue", "Kategorie", "Tiere", "Quelle"} & set(uni)
    # without the dump's own names the German File and Category links leak into the counts
    stats, leaked = Stats(), Counter()
    for _t, u, _b in w.count_split(paths["dump"], 0, os.path.getsize(paths["dump"]), stats, wb.NgramCounter("de")):
        leaked.update(u)
    assert {"mini", "Eine", "graue", "Kategorie", "Tiere"} <= set(leaked)


def test_japanese_segmenter_counts_ngrams_across_whitespace_but_not_punctuation():
    pytest.importorskip("fugashi")
    seg = get_segmenter("ja")
    assert seg("猫が魚を食べる。") == ["猫", "が", "魚", "を", "食べる", "。"]
    uni, bi = wb.NgramCounter("ja")("東京 タワー（東京）\n猫")
    assert uni == Counter({"東京": 2, "タワー": 1, "猫": 1})
    assert bi == Counter({("東京", "タワー"): 1})
