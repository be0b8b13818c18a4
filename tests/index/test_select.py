"""Balancing over an index release, Spark-free (metaclip_spark/index/select.py): the vectorised
selection equals the one-image pure-Python reference; hand-made buckets with exact outcomes."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from metaclip_spark.index import ids, select
from metaclip_spark.index.schema import CURATED_INDEX_SCHEMA, INDEX_SCHEMA
from metaclip_spark.steps import draws
from metaclip_spark.steps.balance import keep_probability, probabilities
from tests.index.releases import build_release, index_rows, random_rows

ENTRIES = ["e%d" % i for i in range(12)]


def table_of(rows, max_texts=64):
    return pa.Table.from_pylist(index_rows(rows, max_texts), schema=INDEX_SCHEMA)


def reference(table: pa.Table, probs, seed: int, dedup: str):
    """Kept (image_id, text_hash) and the expected size, one image / one row at a time."""
    kept, expected, candidates = [], 0.0, 0
    rows = [r for r in table.to_pylist() if r["text"] is not None]
    if dedup == "pair":
        for r in rows:
            candidates += 1
            expected += 1 - math.prod(1 - probs[e] for e in r["entry_ids"])
            if draws.keeps(r["entry_ids"], r["key_hash"], probs, seed):
                kept.append((r["image_id"], r["text_hash"]))
        return kept, expected, candidates
    for iid, group in itertools.groupby(rows, key=lambda r: r["image_id"]):
        group = list(group)
        th = select.choose_text([r["text_hash"] for r in group], seed)
        row = next(r for r in group if r["text_hash"] == th)
        candidates += 1
        expected += 1 - math.prod(1 - probs[e] for e in row["entry_ids"])
        if select.keep_image(row["entry_ids"], iid, probs, seed):
            kept.append((iid, th))
    return kept, expected, candidates


def pairs_of(sel):
    return list(zip(sel.rows.column("image_id").to_pylist(), sel.rows.column("text_hash").to_pylist()))


@pytest.mark.parametrize("dedup", ["image", "pair"])
@pytest.mark.parametrize("seed", [0, 7])
@pytest.mark.parametrize("max_texts", [2, 64])
def test_vectorised_equals_reference_on_random_data(dedup, seed, max_texts):
    rows = random_rows(300, len(ENTRIES), seed=seed + max_texts, max_texts=5)
    table = table_of(rows, max_texts)
    count = np.bincount([e for r in rows for e in set(r["entry_ids"])], minlength=len(ENTRIES))
    probs = probabilities(count, 20.0)
    assert 0 < probs.min() < 1
    sel = select.select(table, dedup, probs, seed)
    want, expected, candidates = reference(table, probs, seed, dedup)
    assert pairs_of(sel) == want
    assert sel.candidates == candidates
    assert sel.expected == pytest.approx(expected, rel=1e-12)
    assert 0 < len(want) < candidates
    assert sel.rows.schema == CURATED_INDEX_SCHEMA


def test_choose_text_is_smallest_choice_key_and_stays_put():
    hashes = [5, -3, 1 << 40, -(1 << 62), 17]
    for seed in range(5):
        keys = [ids.choice_key(h, seed) for h in hashes]
        assert select.choose_text(hashes, seed) == hashes[keys.index(min(keys))]
    chosen = select.choose_text(hashes[:3], 1)
    grown = hashes[:3] + [h for h in hashes[3:] if ids.choice_key(h, 1) > ids.choice_key(chosen, 1)]
    assert select.choose_text(grown, 1) == chosen          # texts joining with larger keys change nothing
    assert len({select.choose_text(hashes, s) for s in range(40)}) > 1   # the choice depends on the seed


def hand_bucket():
    """Image A: three texts, B: one text, C: two texts."""
    rows = [
        {"url": "https://a.example/a.jpg", "text": "a one", "entry_ids": [0]},
        {"url": "https://a.example/a.jpg", "text": "a two", "entry_ids": [1]},
        {"url": "https://a.example/a.jpg", "text": "a three", "entry_ids": [2]},
        {"url": "https://b.example/b.jpg", "text": "b", "entry_ids": [0, 3]},
        {"url": "https://c.example/c.jpg", "text": "c one", "entry_ids": [1]},
        {"url": "https://c.example/c.jpg", "text": "c two", "entry_ids": [2]},
    ]
    return rows


def test_hand_bucket_all_kept_each_image_once():
    rows = hand_bucket()
    table = table_of(rows)
    ones = np.ones(len(ENTRIES))
    sel = select.select_images(table, ones, seed=3)
    got = sel.rows.to_pylist()
    assert sorted(r["url"] for r in got) == ["https://a.example/a.jpg", "https://b.example/b.jpg",
                                             "https://c.example/c.jpg"]
    assert sel.candidates == 3 and sel.expected == 3.0
    for r in got:                                       # the chosen text, by hand: min choice key
        texts = [x["text"] for x in rows if x["url"] == r["url"]]
        by_key = min(texts, key=lambda t: ids.choice_key(ids.text_hash(r["image_id"], t), 3))
        assert r["text"] == by_key
        assert r["image_id"] == ids.image_id(r["url"])
        assert r["key_hash"] == draws.pair_key_hash(r["url"], r["text"])
        assert r["crawl"] == "CC-MAIN-2024-10" and r["page_url"] == "https://page.example/"
    assert select.select_images(table, np.zeros(len(ENTRIES)), seed=3).rows.num_rows == 0
    pairs = select.select_pairs(table, ones, seed=3)
    assert pairs.rows.num_rows == 6 and pairs.candidates == 6


def test_hand_bucket_draws_exact():
    """p = 0.5 on every entry: kept iff the image's one draw per entry is below 0.5 (computed with
    draws.uniforms on the image key), and the expected size is 1 - 0.5^|S| per image."""
    table = table_of(hand_bucket())
    probs = np.full(len(ENTRIES), 0.5)
    for seed in range(6):
        sel = select.select_images(table, probs, seed)
        chosen = {}
        for r in table.to_pylist():
            th = select.choose_text([x["text_hash"] for x in table.to_pylist() if x["image_id"] == r["image_id"]],
                                    seed)
            if r["text_hash"] == th:
                chosen[r["image_id"]] = r
        want = [iid for iid, r in sorted(chosen.items())
                if (draws.uniforms(np.uint64(ids.image_key(iid)), np.array(r["entry_ids"]), seed) < 0.5).any()]
        assert sel.rows.column("image_id").to_pylist() == want
        assert sel.expected == pytest.approx(sum(1 - 0.5 ** len(r["entry_ids"]) for r in chosen.values()))


def test_stored_texts_only():
    """With max_texts 1 only each image's smallest text hash keeps its text: it is the only candidate,
    whatever the choice keys of the hash-only texts."""
    rows = hand_bucket()
    table = table_of(rows, max_texts=1)
    stored = [r for r in table.to_pylist() if r["text"] is not None]
    assert len(stored) == 3
    for seed in range(5):
        sel = select.select_images(table, np.ones(len(ENTRIES)), seed)
        assert sorted(pairs_of(sel)) == sorted((r["image_id"], r["text_hash"]) for r in stored)
    only_hash = table.filter(pa.array([r["text"] is None for r in table.to_pylist()]))
    for fn in (select.select_images, select.select_pairs):
        sel = fn(only_hash, np.ones(len(ENTRIES)), 0)
        assert sel.rows.num_rows == 0 and sel.candidates == 0 and sel.expected == 0.0


def test_pair_mode_is_section_6():
    rows = random_rows(200, len(ENTRIES), seed=5)
    table = table_of(rows)
    probs = np.linspace(0.05, 0.9, len(ENTRIES))
    sel = select.select_pairs(table, probs, seed=11)
    want = [(r["image_id"], r["text_hash"]) for r in table.to_pylist()
            if draws.keeps(r["entry_ids"], draws.pair_key_hash(r["url"], r["text"]), probs, 11)]
    assert pairs_of(sel) == want
    assert sel.expected == pytest.approx(float(keep_probability(table.column("entry_ids"), probs).sum()))


def test_curated_form_orders_by_image_key_and_drops_unencodable():
    rows = random_rows(50, len(ENTRIES), seed=2, max_texts=1)
    rows.append({"url": "http://a.com:99999/x.jpg", "text": "bad", "entry_ids": [0]})
    table = table_of(rows)
    sel = select.select_images(table, np.ones(len(ENTRIES)), seed=4)
    assert sel.rows.num_rows == 51
    out, bad = select.curated_form(sel.rows, "image", seed=4)
    assert bad == 1 and out.num_rows == 50
    keys = draws.order_keys(ids.image_keys(out.column("image_id")), 4)
    assert (np.diff(keys.astype(np.float64)) >= 0).all() and list(keys) == sorted(keys)


def test_curate_files_writes_one_file(tmp_path):
    rows = random_rows(120, len(ENTRIES), seed=9)
    rel = build_release(tmp_path / "idx", 1, rows, ENTRIES, buckets=3)
    files = [str(tmp_path / "idx" / "releases" / "00001" / "images" / ("bucket-%05d.parquet" % b)) for b in range(3)]
    probs = np.full(len(ENTRIES), 0.4)
    res = select.curate_files(0, files, str(tmp_path / "out" / "part-00000.parquet"), "image", probs, 1)
    got = pq.read_table(res.output)
    assert got.schema == CURATED_INDEX_SCHEMA and got.num_rows == res.rows_out == res.images
    assert len(set(got.column("image_id").to_pylist())) == got.num_rows
    want = set()
    for f in files:
        want.update(reference(pq.read_table(f), probs, 1, "image")[0])
    assert set(zip(got.column("image_id").to_pylist(), got.column("text_hash").to_pylist())) == want
    assert res.rows_in == len(rows) and res.candidates == 120 and rel.endswith("00001")
    assert sum(res.counts) == len(pa.compute.list_flatten(got.column("entry_ids")))


def test_pool_size_model_weighted_by_occurrences():
    from metaclip_spark.steps.balance import PoolSizeModel
    table = table_of(random_rows(150, len(ENTRIES), seed=4))
    lists = table.column("entry_ids")
    count = np.bincount([e for r in lists.to_pylist() for e in set(r)], minlength=len(ENTRIES))
    occ = table.column("occurrences").to_numpy()
    plain = PoolSizeModel([lists], count)
    weighted = PoolSizeModel([lists], count, scale=2.0, weights=[occ])
    for t in (1.0, 10.0, 33.3, float(count.max())):
        assert plain(t) == pytest.approx(PoolSizeModel([lists], count)(t), rel=1e-12)
        keep = keep_probability(lists, probabilities(count, t))
        assert weighted(t) == pytest.approx(2.0 * float((keep * occ).sum()), rel=1e-12)
