"""The image index in worldwide mode, Spark-free: index rows keep local entry ids with their lang
(and text_field), the merge counts over global ids, a balance over the index draws each image with its
chosen text's language (p from t_lang), and rows written before worldwide mode read as en/alt."""

from __future__ import annotations

import itertools
import math
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from metaclip_spark.index import ids, layout, select
from metaclip_spark.index.merge import aggregate_file, aggregate_occurrences, merge_bucket
from metaclip_spark.index.schema import CURATED_INDEX_SCHEMA, INDEX_SCHEMA
from metaclip_spark.metadata.languages import LanguageSpace
from metaclip_spark.run.pools import read_counts
from metaclip_spark.steps import draws
from metaclip_spark.steps.balance import choose_ts, probabilities, t_vector
from tests.index.releases import build_release

ENTRIES = {"en": ["e%d" % i for i in range(5)], "de": ["d%d" % i for i in range(4)], "zh": ["z%d" % i for i in range(3)]}
SPACE = LanguageSpace({k: len(v) for k, v in ENTRIES.items()})          # en, de, zh: offsets 0, 5, 9
FIELDS = ("alt", "title", "data-image-title")


def world_rows(n_images: int, seed: int) -> list[dict]:
    """Images with 1..4 texts in en / de / zh (an image often has texts of several languages);
    entry 0 of each language is frequent (a head entry)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_images):
        for k in range(int(rng.integers(1, 5))):
            lang = ("en", "de", "zh")[int(rng.integers(0, 3))]
            n = len(ENTRIES[lang])
            eids = sorted({0 if rng.random() < 0.6 else int(rng.integers(0, n)) for _ in range(int(rng.integers(1, 3)))})
            rows.append({"url": "https://h.example/%d.jpg" % i, "text": "%s text %d of %d" % (lang, k, i),
                         "entry_ids": eids, "lang": lang, "text_field": FIELDS[k % 3], "occurrences": 1 + k % 2,
                         "record_offset": 10 * i + k})
    return rows


def global_of(row):
    return [SPACE.offset(row["lang"]) + e for e in row["entry_ids"]]


def recount(rows, probs, seed):
    """Kept (image_id, text, lang) from first principles: per image its chosen text (smallest choice key
    of its text hashes), kept iff draws.keeps(the text's global ids, image key, p, seed)."""
    by_image = {}
    for r in rows:
        by_image.setdefault(ids.image_id(r["url"]), []).append(r)
    kept, expected = [], {k: 0.0 for k in SPACE.languages}
    candidates = {k: 0 for k in SPACE.languages}
    for iid, group in by_image.items():
        hashes = {ids.text_hash(iid, r["text"]): r for r in group}
        row = hashes[min(hashes, key=lambda h: ids.choice_key(h, seed))]
        candidates[row["lang"]] += 1
        expected[row["lang"]] += 1 - math.prod(1 - probs[g] for g in global_of(row))
        if draws.keeps(global_of(row), int(iid[:16], 16), probs, seed):
            kept.append((iid, row["text"], row["lang"], row["text_field"], tuple(row["entry_ids"])))
    return sorted(kept), candidates, expected


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    rows = world_rows(400, 3)
    rel = build_release(tmp_path_factory.mktemp("world") / "INDEX", 1, rows, ENTRIES, buckets=3)
    return rows, rel


def test_release_counts_are_per_language(release):
    rows, rel = release
    got = read_counts(pq.read_table(os.path.join(rel, "entry_counts", "entry_counts.parquet")))
    assert got.space == SPACE
    want = np.zeros(len(SPACE), np.int64)
    for r in rows:
        want[global_of(r)] += 1
    assert got.vector.tolist() == want.tolist()
    assert got.entries.to_pylist() == ENTRIES["en"] + ENTRIES["de"] + ENTRIES["zh"]


@pytest.mark.parametrize("seed", [0, 5])
def test_curate_files_worldwide_equals_recount(release, tmp_path, seed):
    rows, rel = release
    counts = read_counts(pq.read_table(os.path.join(rel, "entry_counts", "entry_counts.parquet"))).vector
    ts, _, _ = choose_ts(60.0, counts, SPACE)
    assert len(set(ts.values())) > 1                                    # one t per language
    probs = probabilities(counts, t_vector(ts, SPACE))
    assert (probs < 1).sum() >= 2
    files = layout.bucket_files(rel)
    out = str(tmp_path / "part-00000.parquet")
    res = select.curate_files(0, files, out, "image", probs, seed, SPACE)
    want, candidates, expected = recount(rows, probs, seed)
    table = pq.read_table(out)
    assert table.schema == CURATED_INDEX_SCHEMA
    got = sorted((r["image_id"], r["text"], r["lang"], r["text_field"], tuple(r["entry_ids"])) for r in table.to_pylist())
    assert got == want and 0 < len(want) < sum(candidates.values())
    langs = list(SPACE.languages)
    assert res.lang_rows == [candidates[k] for k in langs]
    assert res.lang_kept == [sum(1 for w in want if w[2] == k) for k in langs]
    assert res.lang_expected == pytest.approx([expected[k] for k in langs], rel=1e-12)
    assert res.candidates == sum(candidates.values()) == 400
    kept_ids, kept_counts = np.unique([SPACE.offset(w[2]) + e for w in want for e in w[4]], return_counts=True)
    assert res.entry_ids.tolist() == kept_ids.tolist() and res.counts.tolist() == kept_counts.tolist()


def test_pair_mode_draws_global_ids(release):
    rows, rel = release
    counts = read_counts(pq.read_table(os.path.join(rel, "entry_counts", "entry_counts.parquet"))).vector
    probs = probabilities(counts, t_vector(choose_ts(60.0, counts, SPACE)[0], SPACE))
    table = pa.concat_tables([select.read_bucket(f) for f in layout.bucket_files(rel)])
    sel = select.select(table, "pair", probs, 2, space=SPACE)
    want = sorted((r["url"], r["text"]) for r in rows
                  if draws.keeps(global_of(r), draws.pair_key_hash(r["url"], r["text"]), probs, 2))
    assert sorted(zip(sel.rows.column("url").to_pylist(), sel.rows.column("text").to_pylist())) == want


def pool_table(rows):
    n = len(rows)
    urls, texts = [r["url"] for r in rows], [r["text"] for r in rows]
    return pa.table({
        "url": urls, "text": texts, "entry_ids": pa.array([r["entry_ids"] for r in rows], pa.list_(pa.int32())),
        "page_url": ["http://p/"] * n, "lid_score": pa.array([0.9] * n, pa.float32()),
        "source": ["crawl-data/CC-MAIN-2024-10/w.warc.gz"] * n, "record_id": ["r%d" % k for k in range(n)],
        "record_offset": pa.array([r["record_offset"] for r in rows], pa.int64()),
        "key_hash": pa.array(draws.key_hashes(urls, texts)),
        "text_field": [r["text_field"] for r in rows], "lang": [r["lang"] for r in rows]})


def test_merge_counts_global_ids_and_keeps_lang():
    rows = world_rows(60, 8)
    occ_rows = rows + rows[:25]                      # 25 texts seen twice: counted once, occurring twice
    table = pool_table(occ_rows)
    merged, res = merge_bucket(None, aggregate_occurrences(table, "x"), 64, space=SPACE)
    assert merged.schema == INDEX_SCHEMA
    got = {(r["image_id"], r["text"]): (r["lang"], r["text_field"], r["entry_ids"], r["occurrences"])
           for r in merged.to_pylist()}
    assert got == {(ids.image_id(r["url"]), r["text"]): (r["lang"], r["text_field"], r["entry_ids"],
                                                         2 if k < 25 else 1) for k, r in enumerate(rows)}
    pair = np.zeros(len(SPACE), np.int64)
    occ = np.zeros(len(SPACE), np.int64)
    for r in rows:
        pair[global_of(r)] += 1
    for r in occ_rows:
        occ[global_of(r)] += 1
    assert dict(zip(res.pair_ids.tolist(), res.pair_counts.tolist())) == {i: int(c) for i, c in enumerate(pair) if c}
    assert dict(zip(res.occ_ids.tolist(), res.occ_counts.tolist())) == {i: int(c) for i, c in enumerate(occ) if c}
    # the per-file aggregation carries lang and text_field too (the merge's Spark path)
    per_file = aggregate_file(table, "x")
    assert sorted(per_file.column("lang").to_pylist()) == sorted(r["lang"] for r in occ_rows[:len(rows)])


def test_rows_written_before_worldwide_mode_read_as_en_alt(tmp_path):
    old_schema = pa.schema([f for f in INDEX_SCHEMA if f.name not in ("text_field", "lang")])
    rows = [{"image_id": "a" * 24, "text_hash": 1, "text": "x", "url": "http://i/1.jpg", "key_hash": 5,
             "entry_ids": [0, 2], "lid_score": 0.9, "occurrences": 3, "crawls": ["c"], "first_crawl": "c",
             "first_source": "s", "first_record_offset": 0, "first_page_url": "http://p/"}]
    path = str(tmp_path / "bucket-00000.parquet")
    pq.write_table(pa.Table.from_pylist(rows, schema=old_schema), path)
    table = layout.read_bucket_file(path)
    assert table.column("lang").to_pylist() == ["en"] and table.column("text_field").to_pylist() == ["alt"]
    part = layout.read_bucket_file(path, ["image_id", "lang", "entry_ids"])
    assert part.column_names == ["image_id", "lang", "entry_ids"]
    merged, res = merge_bucket(pa.Table.from_pylist(rows, schema=old_schema), INDEX_SCHEMA.empty_table(), 64)
    assert merged.column("lang").to_pylist() == ["en"] and merged.schema == INDEX_SCHEMA
    assert list(itertools.chain(select.curated_rows(table).column("lang").to_pylist())) == ["en"]


def test_metadata_sha256_ties_entries_and_languages():
    en = LanguageSpace.english(3)
    assert layout.metadata_sha256(["a", "b", "c"], en) == layout.entries_sha256(["a", "b", "c"])
    assert layout.metadata_sha256(pa.array(["a", "b", "c"]), en) == layout.entries_sha256(["a", "b", "c"])
    two = LanguageSpace({"en": 1, "de": 2})
    other = LanguageSpace({"en": 2, "de": 1})
    sha = layout.metadata_sha256(pa.array(["a", "b", "c"]), two)
    assert sha == layout.metadata_sha256(["a", "b", "c"], two)                  # list or Arrow: one digest
    assert sha == layout.metadata_sha256(pa.array(["x", "a", "b", "c"]).slice(1), two)
    assert len({sha, layout.metadata_sha256(["a", "b", "c"], other), layout.metadata_sha256(["a", "bc", ""], two),
                layout.metadata_sha256(["a", "b", None], two), layout.entries_sha256(["a", "b", "c"])}) == 5


def test_online_index_balancer_worldwide_equals_recount(release):
    from metaclip_spark.online import OnlineIndexBalancer

    rows, rel = release
    bal = OnlineIndexBalancer(rel, 60.0, seed=5)
    assert bal.space == SPACE
    want, _, _ = recount(rows, bal.probs, 5)
    got = sorted((r["image_id"], r["text"], r["lang"]) for r in bal.iter_kept(batch_size=7))
    assert got == [(w[0], w[1], w[2]) for w in want] and len(got) > 0
    counts = read_counts(pq.read_table(os.path.join(rel, "entry_counts", "entry_counts.parquet"))).vector
    assert bal.probs.tolist() == probabilities(counts, t_vector(choose_ts(60.0, counts, SPACE)[0], SPACE)).tolist()
