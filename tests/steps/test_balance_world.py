"""Worldwide balancing (SPEC section 10, docs/worldwide.md "Per-language t and balancing"), Spark-free:
MetaCLIP 2's p_to_t / t_to_p on hand-computed count vectors, one t per language, p over the global
ids, the entry-count reader, and stage 2's group step on a hand-made worldwide pool against a
first-principles recount."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from metaclip_spark.index.ids import image_id, text_hash
from metaclip_spark.metadata.languages import LanguageSpace
from metaclip_spark.run.config import load_config
from metaclip_spark.run.pools import count_columns, read_counts
from metaclip_spark.run.schema import POOL_SCHEMA
from metaclip_spark.steps import balance as B
from metaclip_spark.steps import curated
from metaclip_spark.steps.draws import key_hashes, keeps


def conf(*sets):
    return load_config(sets=list(sets)).balance


# ------------------------------------------------------------------ p_to_t / t_to_p
# sorted [0, 1, 1, 2, 4]: cumulative shares [0, 1/8, 2/8, 4/8, 1] (exact in binary)
C = [4, 0, 2, 1, 1]


@pytest.mark.parametrize("p, t", [
    (0.375, 1.0),      # |s - p| = [3/8, 2/8, 1/8, 1/8, 5/8]: a tie of index 2 (1) and 3 (2), the first wins
    (0.5, 2.0),
    (0.45, 2.0),
    (0.3, 1.0),
    (0.0625, 0.0),     # a tie of index 0 (count 0) and 1 (count 1): the first, 0
    (0.0, 0.0),        # p = 0: the smallest count, a zero
    (1.0, 4.0),        # p = 1: the largest count
    (0.9, 4.0),
])
def test_p_to_t_exact(p, t):
    assert B.p_to_t(C, p) == t
    assert B.p_to_t(np.array(C[::-1], np.int64), p) == t          # order of the input does not matter


def test_p_to_t_single_entry_and_errors():
    assert B.p_to_t([5], 0.0) == B.p_to_t([5], 0.3) == B.p_to_t([5], 1.0) == 5.0
    assert B.p_to_t([0, 7], 0.2) == 0.0 and B.p_to_t([0, 7], 0.6) == 7.0
    for bad in ([], [0], [0, 0, 0]):
        with pytest.raises(ValueError, match="all counts are zero"):
            B.p_to_t(bad, 0.5)
    for p in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="p must be in"):
            B.p_to_t(C, p)


def test_t_to_p_exact():
    assert B.t_to_p(C, 1) == 0.0                  # no count < 1 but the zeros
    assert B.t_to_p(C, 2) == 0.25                 # (1 + 1) / 8
    assert B.t_to_p(C, 2.5) == 0.5                # (1 + 1 + 2) / 8
    assert B.t_to_p(C, 5) == 1.0
    assert B.t_to_p([0, 0], 3) == 0.0             # no match
    # the round trip of MetaCLIP 2: p_to_t(t_to_p(t)) is a count at which the share is nearest p
    assert B.p_to_t(C, B.t_to_p(C, 2.5)) == 2.0


# ------------------------------------------------------------------ one t per language
SPACE = LanguageSpace({"ja": 3, "en": 4, "de": 5})          # order en, de, ja
EN, DE, JA = [6, 2, 0, 2], [0, 1, 1, 2, 4], [0, 0, 0]
COUNTS = np.array(EN + DE + JA, np.int64)


def test_language_ts_from_en_t():
    # p = t_to_p(en, 3) = (2 + 2) / 10 = 0.4; de: |s - 0.4| = [.4, .275, .15, .1, .6] -> index 3, t 2;
    # ja has no match: t_en
    ts, source, p = B.choose_ts(3.0, COUNTS, SPACE)
    assert (ts, source, p) == ({"en": 3.0, "de": 2.0, "ja": 3.0}, "t", 0.4)
    assert B.language_ts(COUNTS, SPACE, conf("balance.t=3")) == ts
    assert B.t_vector(ts, SPACE).tolist() == [3, 3, 3, 3, 2, 2, 2, 2, 2, 3, 3, 3]
    probs = B.probabilities(COUNTS, B.t_vector(ts, SPACE))
    assert probs.tolist() == [0.5, 1, 1, 1, 1, 1, 1, 1, 0.5, 1, 1, 1]


def test_language_ts_from_tail_share_and_default():
    # en: the smallest t with tail share >= 0.5 is 7 (counts 2, 2 hold 0.4, 6 the rest); p = 1.0
    ts, source, p = B.choose_ts(conf("balance.tail_share=0.5"), COUNTS, SPACE)
    assert (ts, source, p) == ({"en": 7.0, "de": 4.0, "ja": 7.0}, "tail_share", 1.0)
    ts, source, p = B.choose_ts(conf("balance.default_t=1"), COUNTS, SPACE)
    assert (ts, source, p) == ({"en": 1.0, "de": 0.0, "ja": 1.0}, "default", 0.0)
    # t_de = 0: de's matched entries get p = 0, its zero-count entry p = 1 (MetaCLIP 2 computes the same t)
    assert B.probabilities(COUNTS, B.t_vector(ts, SPACE))[4:9].tolist() == [1, 0, 0, 0, 0]


def test_english_space_is_todays_t():
    en = LanguageSpace.english(4)
    c = np.array(EN)
    for b in (conf("balance.t=3"), conf("balance.tail_share=0.5"), conf()):
        ts, source, p = B.choose_ts(b, c, en)
        assert (ts["en"], source) == B.choose_t(b, c, None) and p == B.tail_share(c, ts["en"])
        assert B.probabilities(c, B.t_vector(ts, en)).tobytes() == B.probabilities(c, ts["en"]).tobytes()


def test_without_en_the_tail_share_is_p():
    space = LanguageSpace({"de": 5})
    ts, source, p = B.choose_ts(conf("balance.tail_share=0.375"), np.array(DE), space)
    assert (ts, source, p) == ({"de": 1.0}, "tail_share", 0.375)
    for b in (conf("balance.t=3"), conf(), 3.0):
        with pytest.raises(ValueError, match="no en: its tail share fixes every other language's t"):
            B.choose_ts(b, np.array(DE), space)
    # en without any match: the same rule
    zero_en = np.array([0, 0, 0, 0] + DE + JA)
    with pytest.raises(ValueError, match="no English text matched"):
        B.choose_ts(conf("balance.t=3"), zero_en, SPACE)
    ts, _, p = B.choose_ts(conf("balance.tail_share=0.375", "balance.default_t=9"), zero_en, SPACE)
    assert (ts, p) == ({"en": 9.0, "de": 1.0, "ja": 9.0}, 0.375)         # en and ja: no match, t_en = default_t
    with pytest.raises(ValueError, match="counts have 11 entries"):
        B.choose_ts(3.0, COUNTS[:-1], SPACE)


def test_target_size_over_every_language():
    # rows (global ids): the expected size of each t_en sums every language at its own t
    rows = [[0], [0], [0], [0], [0], [0], [1, 3], [1], [3], [6], [7], [8], [8], [8], [8], [5]]
    counts = np.bincount([e for r in rows for e in r], minlength=len(SPACE))
    lists = pa.array(rows, pa.list_(pa.int32()))
    model = B.PoolSizeModel([lists], counts)
    ts, source, p = B.choose_ts(conf("balance.target_size=12"), counts, SPACE, lambda: model)
    assert source == "target_size"
    size = model(B.t_vector(ts, SPACE))
    assert size == pytest.approx(12, rel=1e-9)
    smaller = B.language_ts(counts, SPACE, ts["en"] * (1 - 1e-6))
    assert model(B.t_vector(smaller, SPACE)) < 12
    # the model with a t vector equals the direct sum of keep probabilities
    tv = B.t_vector(ts, SPACE)
    assert size == pytest.approx(float(B.keep_probability(lists, B.probabilities(counts, tv)).sum()), rel=1e-12)


def test_language_stats_exact():
    ts = {"en": 3.0, "de": 2.0, "ja": 3.0}
    got = B.language_stats(COUNTS, SPACE, ts, pool=[10, 8, 0], curated=[7, 6, 0], expected=[7.5, 6.25, 0.0])
    assert got == {
        "en": {"pool": 10, "matches": 10, "t": 3.0, "tail_share": 0.4, "head_entries": 1, "curated": 7,
               "expected": 7.5},
        "de": {"pool": 8, "matches": 8, "t": 2.0, "tail_share": 0.25, "head_entries": 1, "curated": 6,
               "expected": 6.25},
        "ja": {"pool": 0, "matches": 0, "t": 3.0, "tail_share": 0.0, "head_entries": 0, "curated": 0,
               "expected": 0.0}}


# ------------------------------------------------------------------ the entry-count reader
def test_read_counts_worldwide_english_and_gaps():
    t = pa.table({"entry_id": pa.array([1, 0, 0, 2, 1, 0], pa.int32()), "entry": ["b", "a", "x", "z", "y", "k"],
                  "count": pa.array([5, 4, 3, 2, 1, 7], pa.int64()), "lang": ["en", "en", "de", "de", "de", "zh"]})
    got = read_counts(t)
    assert got.space == LanguageSpace({"en": 2, "de": 3, "zh": 1})
    assert got.vector.tolist() == [4, 5, 3, 1, 2, 7]
    assert got.entries.to_pylist() == ["a", "b", "x", "y", "z", "k"]
    old = pa.table({"entry_id": pa.array([0, 2], pa.int32()), "entry": ["a", "c"], "count": pa.array([3, 4])})
    got = read_counts(old)                           # no lang column: an English file; id 1 absent counts 0
    assert got.space == LanguageSpace.english(3) and got.vector.tolist() == [3, 0, 4]
    assert got.entries.to_pylist() == ["a", None, "c"]
    keys = count_columns(LanguageSpace({"en": 2, "de": 3, "zh": 1}))
    assert keys["entry_id"].to_pylist() == [0, 1, 0, 1, 2, 0]
    assert keys["lang"].to_pylist() == ["en", "en", "de", "de", "de", "zh"]


# ------------------------------------------------------------------ stage 2's group step, worldwide
WORLD = LanguageSpace({"en": 6, "de": 4, "zh": 3})


def world_rows(n, seed):
    """Pool rows of three languages with local ids (skewed: entry 0 of each language is a head entry);
    image URLs repeat across languages (the same image with texts in several languages)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        lang = ["en", "de", "zh"][i % 3]
        size = int(WORLD.sizes[WORLD.index[lang]])
        ids = sorted({0 if rng.random() < 0.5 else int(rng.integers(0, size)) for _ in range(int(rng.integers(1, 3)))})
        url, text = "http://img.example/%d.jpg" % (i // 2), "%s text %d" % (lang, i)
        rows.append({"url": url, "text": text, "entry_ids": ids, "page_url": "http://p.example/", "lid_score": 0.5,
                     "source": "w.warc.gz", "record_id": "<urn:%d>" % i, "record_offset": i,
                     "key_hash": int(key_hashes([url], [text])[0]), "image_id": image_id(url),
                     "text_hash": text_hash(image_id(url), text), "crawl": "w",
                     "text_field": ["alt", "title", "data-image-title"][i % 3 if i % 5 else 0], "lang": lang})
    return rows


def global_of(row):
    return [WORLD.offset(row["lang"]) + e for e in row["entry_ids"]]


def test_balance_group_worldwide_equals_recount(tmp_path):
    rows = world_rows(600, 4)
    paths = []
    for k in range(2):
        path = str(tmp_path / ("pool-%d.parquet" % k))
        pq.write_table(pa.Table.from_pylist(rows[k * 300:(k + 1) * 300], schema=POOL_SCHEMA), path)
        paths.append(path)
    counts = np.bincount([g for r in rows for g in global_of(r)], minlength=len(WORLD))
    ts, _, p = B.choose_ts(20.0, counts, WORLD)
    assert ts["en"] == 20.0 and ts["de"] != 20.0                    # another t per language
    probs = B.probabilities(counts, B.t_vector(ts, WORLD))
    assert (probs < 1).sum() >= 3                                   # head entries in every language
    out = str(tmp_path / "part-00000.parquet")
    res = curated.balance_group(0, paths, out, probs, 11, WORLD)

    # first principles: a row is kept iff some global id's draw (seed, pair key, global id) is below p
    kept = [r for r in rows if keeps(global_of(r), r["key_hash"], probs, 11)]
    got = pq.read_table(out).to_pylist()
    assert sorted((r["record_id"], r["lang"], r["text_field"], tuple(r["entry_ids"])) for r in got) == sorted(
        (r["record_id"], r["lang"], r["text_field"], tuple(r["entry_ids"])) for r in kept)   # local ids kept
    langs = list(WORLD.languages)
    assert res.lang_rows == [sum(r["lang"] == k for r in rows) for k in langs] == [200, 200, 200]
    assert res.lang_kept == [sum(r["lang"] == k for r in kept) for k in langs]
    want_exp = [sum(1 - np.prod([1 - probs[g] for g in global_of(r)]) for r in rows if r["lang"] == k) for k in langs]
    assert res.lang_expected == pytest.approx(want_exp, rel=1e-12)
    assert res.expected == pytest.approx(sum(want_exp), rel=1e-12)
    # kept matches counted over global ids
    want_ids, want_counts = np.unique([g for r in kept for g in global_of(r)], return_counts=True)
    assert res.entry_ids.tolist() == want_ids.tolist() and res.counts.tolist() == want_counts.tolist()
    # balance.json's statistics of these results
    files = [{"lang_rows": res.lang_rows, "lang_kept": res.lang_kept, "lang_expected": res.lang_expected}]
    stats = curated.balance_stats(counts, WORLD, ts, p, files)
    assert stats["tail_share_en"] == p == B.t_to_p(counts[WORLD.span("en")], 20.0)
    assert stats["t"] == 20.0 and stats["n_entries"] == 13 and stats["total_matches"] == int(counts.sum())
    for i, k in enumerate(langs):
        c = counts[WORLD.span(k)]
        assert stats["languages"][k] == {
            "pool": 200, "matches": int(c.sum()), "t": ts[k], "tail_share": B.tail_share(c, ts[k]),
            "head_entries": int((c > ts[k]).sum()), "curated": res.lang_kept[i], "expected": res.lang_expected[i]}
    assert stats["head_entries"] == sum(v["head_entries"] for v in stats["languages"].values())


def test_online_balancer_worldwide():
    from metaclip_spark.online import OnlineBalancer, epoch_seed
    from metaclip_spark.steps.draws import keep_mask

    rows = world_rows(300, 6)
    counts = np.bincount([g for r in rows for g in global_of(r)], minlength=len(WORLD))
    bal = OnlineBalancer(counts, 20.0, seed=5, space=WORLD)
    ts = B.language_ts(counts, WORLD, 20.0)
    assert bal.ts == ts and bal.probs.tolist() == B.probabilities(counts, B.t_vector(ts, WORLD)).tolist()
    lists = pa.array([r["entry_ids"] for r in rows], pa.list_(pa.int32()))
    langs = pa.array([r["lang"] for r in rows])
    keys = np.array([r["key_hash"] for r in rows], np.int64)
    for epoch in (0, 3):
        mask = bal.epoch_mask(lists, keys, epoch, langs)
        want = [keeps(global_of(r), r["key_hash"], bal.probs, epoch_seed(5, epoch)) for r in rows]
        assert mask.tolist() == want and 0 < sum(want) < len(rows)
        assert [s["record_id"] for s in bal.filter_stream(rows, epoch)] == [r["record_id"] for r, w in zip(rows, want) if w]
    assert keep_mask(pa.array([global_of(r) for r in rows], pa.list_(pa.int32())), keys, bal.probs,
                     epoch_seed(5, 0)).tolist() == bal.epoch_mask(lists, keys, 0, langs).tolist()
