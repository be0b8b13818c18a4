"""Stage 2 in worldwide mode on a real local Spark session, over a worldwide pool the test writes by
hand (POOL_SCHEMA rows with lang and local entry ids, entry counts per (lang, entry)): per occurrence
and over the image index, the curated set equals a first-principles recount with p from t_lang of each
row's / chosen text's language, and stats/balance.json's languages are exact."""

import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from metaclip_spark.index import ids
from metaclip_spark.metadata.languages import LanguageSpace
from metaclip_spark.run import outputs, runfolder
from metaclip_spark.run.config import ConfigError, load_config
from metaclip_spark.run.pools import read_counts
from metaclip_spark.run.schema import ENTRY_COUNTS_SCHEMA, POOL_SCHEMA
from metaclip_spark.spark.stage2 import run_balance
from metaclip_spark.steps import balance as B
from metaclip_spark.steps.draws import key_hashes, keeps
from metaclip_spark.steps.pipeline import index_columns

SIZES = {"en": 8, "de": 6, "ja": 5, "zh": 4}
SPACE = LanguageSpace(SIZES)                    # en, de, ja, zh
T = 15.0
FIELDS = ("alt", "title", "data-image-title")


def pool_rows(n: int, seed: int, langs=("en", "de", "ja", "zh")) -> list[dict]:
    """Occurrences: images with texts of several languages, (url, text) pairs repeated on other pages;
    entry 0 of each language frequent (a head entry)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        img = int(rng.integers(0, n // 3))
        lang = langs[int(rng.integers(0, len(langs)))]
        k = int(rng.integers(0, 3))
        size = SIZES[lang]
        # a text's language and entries are functions of the text: derive them from (img, lang, k)
        r = np.random.default_rng(img * 1000 + k * 10 + len(lang) + ord(lang[0]))
        eids = sorted({0 if r.random() < 0.5 else int(r.integers(0, size)) for _ in range(int(r.integers(1, 3)))})
        rows.append({"url": "http://img.example/%d.jpg" % img, "text": "%s caption %d of %d" % (lang, k, img),
                     "entry_ids": eids, "page_url": "http://page.example/%d" % i, "lid_score": 0.5,
                     "source": "w-%d.warc.gz" % (i % 2), "record_id": "<urn:%d>" % i, "record_offset": i,
                     "text_field": FIELDS[k], "lang": lang})
    return rows


def global_of(row):
    return [SPACE.offset(row["lang"]) + e for e in row["entry_ids"]]


def write_pool(folder: str, rows: list[dict], space=SPACE) -> np.ndarray:
    """A finished worldwide stage-1 folder: pool/*.parquet, entry_counts/ per (lang, entry), manifest,
    stats/match.json with the pool digest, _SUCCESS. Returns the occurrence counts (global ids)."""
    manifest, half = [], len(rows) // 2
    for f, part in enumerate((rows[:half], rows[half:])):
        urls, texts = [r["url"] for r in part], [r["text"] for r in part]
        table = pa.Table.from_pylist([{**r, "key_hash": int(k)} for r, k in zip(part, key_hashes(urls, texts))])
        table = table.append_column("image_id", index_columns(urls, texts, "w")["image_id"])
        cols = index_columns(urls, texts, "w")
        table = table.append_column("text_hash", pa.array(cols["text_hash"])).append_column("crawl", cols["crawl"])
        name = "pool/part-%05d.parquet" % f
        outputs.write_table(os.path.join(folder, name), table.select(POOL_SCHEMA.names).cast(POOL_SCHEMA))
        manifest.append({"source": "w-%d" % f, "output": name, "rows": len(part), "failed": None})
    counts = np.zeros(len(space), np.int64)
    for r in rows:
        counts[[space.offset(r["lang"]) + e for e in r["entry_ids"]]] += 1
    digest = runfolder.pool_digest([(m["output"], m["rows"]) for m in manifest])
    outputs.write_table(os.path.join(folder, "entry_counts", "entry_counts.parquet"), pa.table({
        "entry_id": pa.array(np.concatenate([np.arange(n) for n in space.sizes]).astype(np.int32)),
        "entry": ["%s-%d" % (k, e) for k, n in zip(space.languages, space.sizes) for e in range(n)],
        "count": pa.array(counts), "lang": [k for k, n in zip(space.languages, space.sizes) for _ in range(n)]},
        schema=ENTRY_COUNTS_SCHEMA.with_metadata({"pool_digest": digest})))
    outputs.write_text(os.path.join(folder, "stats", "match-files.json"), json.dumps(manifest))
    outputs.write_text(os.path.join(folder, "stats", "match.json"), json.dumps({"pool_digest": digest,
                                                                               "mode": "worldwide"}))
    outputs.write_text(os.path.join(folder, "_SUCCESS"), "")
    return counts


def cfg(out, **over):
    return load_config(overrides={"output": str(out), "balance.t": T, "balance.seed": 3, "index.buckets": 4, **over})


def curated(out) -> list[dict]:
    return outputs.read_tables(outputs.list_files(os.path.join(str(out), "curated"), ".parquet")).to_pylist()


@pytest.fixture(scope="module")
def world_pool(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("world-pool"))
    rows = pool_rows(900, 1)
    return folder, rows, write_pool(folder, rows)


def check_languages(stats, counts, ts, pool, kept, expected):
    for k in SPACE.languages:
        c = counts[SPACE.span(k)]
        assert stats["languages"][k] == {
            "pool": pool[k], "matches": int(c.sum()), "t": ts[k], "tail_share": B.tail_share(c, ts[k]),
            "head_entries": int((c > ts[k]).sum()), "curated": kept[k], "expected": pytest.approx(expected[k], rel=1e-9)}
    assert stats["tail_share_en"] == B.t_to_p(counts[SPACE.span("en")], T)


def test_per_occurrence_equals_recount(spark, world_pool, tmp_path):
    folder, rows, counts = world_pool
    summary = run_balance(cfg(tmp_path / "out", **{"balance.dedup": "none"}), [folder], spark=spark)
    ts = B.language_ts(counts, SPACE, T)
    assert len(set(ts.values())) > 1
    probs = B.probabilities(counts, B.t_vector(ts, SPACE))
    want = [r for r in rows if keeps(global_of(r), int(key_hashes([r["url"]], [r["text"]])[0]), probs, 3)]
    got = curated(tmp_path / "out")
    key = lambda r: (r["record_id"], r["lang"], r["text_field"], tuple(r["entry_ids"]))      # noqa: E731
    assert sorted(map(key, got)) == sorted(map(key, want)) and 0 < len(want) < len(rows)
    stats = json.load(open(tmp_path / "out" / "stats" / "balance.json"))
    assert stats["t"] == T and stats["curated_rows"] == len(want) == summary["curated_rows"]
    langs = SPACE.languages
    check_languages(stats, counts, ts, {k: sum(r["lang"] == k for r in rows) for k in langs},
                    {k: sum(r["lang"] == k for r in want) for k in langs},
                    {k: sum(1 - np.prod([1 - probs[g] for g in global_of(r)]) for r in rows if r["lang"] == k)
                     for k in langs})
    bc = read_counts(pq.read_table(tmp_path / "out" / "balance_counts" / "balance_counts.parquet"))
    assert bc.space == SPACE and bc.vector.tolist() == counts.tolist()
    balanced = read_counts(pq.read_table(tmp_path / "out" / "balance_counts" / "balance_counts.parquet"),
                           "balanced_count").vector
    assert balanced.tolist() == np.bincount([g for r in want for g in global_of(r)], minlength=len(SPACE)).tolist()


def test_over_the_index_equals_recount(spark, world_pool, tmp_path):
    folder, rows, _ = world_pool
    summary = run_balance(cfg(tmp_path / "out"), [folder], spark=spark)          # dedup image (the default)
    # section 9 counts: distinct (image, text) per global id
    texts = {}
    for r in rows:
        texts[(ids.image_id(r["url"]), r["text"])] = r
    counts = np.zeros(len(SPACE), np.int64)
    for r in texts.values():
        counts[global_of(r)] += 1
    rel = os.path.join(str(tmp_path / "out"), "index", "releases", "00001", "entry_counts", "entry_counts.parquet")
    got_counts = read_counts(pq.read_table(rel))
    assert got_counts.space == SPACE and got_counts.vector.tolist() == counts.tolist()
    ts = B.language_ts(counts, SPACE, T)
    probs = B.probabilities(counts, B.t_vector(ts, SPACE))
    # per image: its chosen text (smallest choice key), kept iff the draws of its global ids keep it
    images = {}
    for (iid, text), r in texts.items():
        images.setdefault(iid, []).append(r)
    want, pool, expected = [], {k: 0 for k in SPACE.languages}, {k: 0.0 for k in SPACE.languages}
    multi = 0
    for iid, group in images.items():
        multi += len({r["lang"] for r in group}) > 1
        row = min(group, key=lambda r: ids.choice_key(ids.text_hash(iid, r["text"]), 3))
        pool[row["lang"]] += 1
        expected[row["lang"]] += 1 - np.prod([1 - probs[g] for g in global_of(row)])
        if keeps(global_of(row), ids.image_key(iid), probs, 3):
            want.append((iid, row["text"], row["lang"], tuple(row["entry_ids"])))
    assert multi > 20                                                  # images with texts in several languages
    got = sorted((r["image_id"], r["text"], r["lang"], tuple(r["entry_ids"])) for r in curated(tmp_path / "out"))
    assert got == sorted(want) and 0 < len(want) < len(images)
    stats = json.load(open(tmp_path / "out" / "stats" / "balance.json"))
    assert stats["images"] == len(want) == summary["curated_rows"] and stats["candidates"] == len(images)
    check_languages(stats, counts, ts, pool, {k: sum(w[2] == k for w in want) for k in SPACE.languages}, expected)


def test_english_mode_stats_have_one_language(spark, tmp_path):
    space = LanguageSpace.english(8)
    rows = pool_rows(120, 2, langs=("en",))
    folder = str(tmp_path / "pool")
    counts = write_pool(folder, rows, space)
    run_balance(cfg(tmp_path / "out", **{"balance.dedup": "none"}), [folder], spark=spark)
    stats = json.load(open(tmp_path / "out" / "stats" / "balance.json"))
    assert list(stats["languages"]) == ["en"] and stats["languages"]["en"]["t"] == T
    assert stats["languages"]["en"]["pool"] == 120 and stats["languages"]["en"]["curated"] == stats["curated_rows"]
    assert stats["tail_share_en"] == stats["tail_share"] == B.tail_share(counts, T)


def test_without_en_needs_a_tail_share(spark, tmp_path):
    space = LanguageSpace({"de": 6, "ja": 5})
    folder = str(tmp_path / "pool")
    rows = pool_rows(90, 3, langs=("de", "ja"))
    for r in rows:
        r["entry_ids"] = [e for e in r["entry_ids"] if e < 5] or [0]
    counts = write_pool(folder, rows, space)
    with pytest.raises(ConfigError, match="no en: its tail share fixes every other language's t"):
        run_balance(cfg(tmp_path / "out", **{"balance.dedup": "none"}), [folder], spark=spark)
    over = {"balance.dedup": "none", "balance.t": None, "balance.tail_share": 0.5}
    summary = run_balance(cfg(tmp_path / "out2", **over), [folder], spark=spark)
    assert summary["t"] is None and summary["tail_share_en"] == 0.5
    assert {k: v["t"] for k, v in summary["languages"].items()} == {
        k: B.p_to_t(counts[space.span(k)], 0.5) for k in space.languages}
