"""Tests of metaclip_spark.online (per-epoch balancing in data loaders)."""

import json
import math

import numpy as np
import pyarrow as pa
import pytest

from metaclip_spark.steps import balance as B
from metaclip_spark.steps import draws as D
from metaclip_spark.online import BalancedIterable, OnlineBalancer, epoch_seed

M64 = (1 << 64) - 1


def make_pool(n=200_000, n_entries=500, seed=1):
    rng = np.random.default_rng(seed)
    w = 1.0 / np.arange(1, n_entries + 1) ** 1.2
    w /= w.sum()
    rows = []
    lens = rng.integers(1, 5, n)
    ids = rng.choice(n_entries, size=int(lens.sum()), p=w)
    pos = 0
    for k in lens:
        rows.append(sorted(set(ids[pos:pos + k].tolist())))
        pos += k
    arr = pa.array(rows, type=pa.list_(pa.int32()))
    keys = rng.integers(-2 ** 63, 2 ** 63 - 1, n, dtype=np.int64)
    counts = np.bincount(np.concatenate(rows), minlength=n_entries)
    return rows, arr, keys, counts


@pytest.fixture(scope="module")
def pool():
    return make_pool()


def test_epoch_seed_definition():
    def fmix(x):
        x ^= x >> 30
        x = (x * 0xBF58476D1CE4E5B9) & M64
        x ^= x >> 27
        x = (x * 0x94D049BB133111EB) & M64
        return x ^ (x >> 31)
    assert epoch_seed(7, 3) == fmix((7 + 4 * 0xD1B54A32D192ED03) & M64)
    seeds = {epoch_seed(0, e) for e in range(10_000)}
    assert len(seeds) == 10_000
    assert epoch_seed(0, 1) != epoch_seed(1, 1)


def test_epoch_masks_reproducible_and_different(pool):
    rows, arr, keys, counts = pool
    t = 500.0
    ob = OnlineBalancer(counts, t, seed=42)
    m0 = ob.epoch_mask(arr, keys, 0)
    np.testing.assert_array_equal(m0, ob.epoch_mask(arr, keys, 0))
    np.testing.assert_array_equal(m0, OnlineBalancer(counts, t, seed=42).epoch_mask(arr, keys, 0))
    # it is exactly the offline kernel with the epoch's seed
    np.testing.assert_array_equal(m0, D.keep_mask(arr, keys, B.probabilities(counts, t), epoch_seed(42, 0)))
    m1 = ob.epoch_mask(arr, keys, 1)
    assert not np.array_equal(m0, m1)
    np.testing.assert_array_equal(ob.epoch_indices(arr, keys, 1), np.flatnonzero(m1))
    # another base seed gives another epoch-0 subset
    assert not np.array_equal(m0, OnlineBalancer(counts, t, seed=43).epoch_mask(arr, keys, 0))

    probs = ob.probs
    kp = B.keep_probability(arr, probs)
    # pairs with a tail entry are used in every epoch; head-only pairs rotate
    sure = kp == 1.0
    assert sure.any() and (~sure).sum() > 10_000
    assert m0[sure].all() and m1[sure].all()
    # keep rate per epoch matches sum of 1 - prod(1 - p) within 4 sd
    for m in (m0, m1):
        assert abs(m.sum() - kp.sum()) < 4 * math.sqrt((kp * (1 - kp)).sum())
    # epochs are independent: overlap ~ sum kp^2
    both = (m0 & m1).sum()
    exp = (kp ** 2).sum()
    var = (kp ** 2 * (1 - kp ** 2)).sum()
    assert abs(both - exp) < 4 * math.sqrt(var)
    # over many epochs more distinct head-only pairs are seen than in one epoch
    seen = np.zeros(len(rows), bool)
    for e in range(5):
        seen |= ob.epoch_mask(arr, keys, e)
    assert seen[~sure].sum() > 1.5 * m0[~sure].sum()


def test_scalar_keep_matches_vectorised(pool):
    rows, arr, keys, counts = pool
    ob = OnlineBalancer(counts, 300, seed=9)
    n = 5000
    for epoch in (0, 4):
        mask = ob.epoch_mask(arr.slice(0, n), keys[:n], epoch)
        got = [ob.keep(int(k), r, epoch) for k, r in zip(keys[:n], rows[:n])]
        assert got == mask.tolist()
    assert ob.keep(int(keys[0]), [], 0) is False
    assert ob.keep_probability(rows[0]) == pytest.approx(float(B.keep_probability(arr.slice(0, 1), ob.probs)[0]))
    # (url, text) key
    url, text = "https://e.com/a.jpg", "a dog"
    k = D.pair_key_hash(url, text)
    for epoch in range(20):
        assert ob.keep((url, text), [0, 3], epoch) == ob.keep(k, [0, 3], epoch)
    with pytest.raises(IndexError):
        ob.keep(1, [len(counts)], 0)


def test_filter_stream_and_wrappers(pool):
    rows, arr, keys, counts = pool
    ob = OnlineBalancer(counts, 300, seed=1)
    n = 3000
    urls = ["https://e.com/%d.jpg" % i for i in range(n)]
    texts = ["text %d" % i for i in range(n)]
    kh = D.key_hashes(pa.array(urls), pa.array(texts))
    samples = [{"url": u, "text": t, "entry_ids": r, "key_hash": int(k), "i": i}
               for i, (u, t, r, k) in enumerate(zip(urls, texts, rows, kh))]
    mask = ob.epoch_mask(arr.slice(0, n), kh, 2)
    kept = list(ob.filter_stream(iter(samples), 2))
    assert [s["i"] for s in kept] == np.flatnonzero(mask).tolist()
    assert kept[0] is samples[kept[0]["i"]]                    # samples pass through unchanged
    # without key_hash (url + text, bytes text, JSON entry ids as in webdataset)
    raw = [{"url": s["url"], "text": s["text"].encode(), "entry_ids": json.dumps(s["entry_ids"]), "i": s["i"]}
           for s in samples]
    assert [s["i"] for s in ob.stage(2)(iter(raw))] == np.flatnonzero(mask).tolist()
    # iterable wrapper with set_epoch
    it = BalancedIterable(samples, ob)
    it.set_epoch(2)
    assert [s["i"] for s in it] == np.flatnonzero(mask).tolist()
    it.set_epoch(3)
    assert [s["i"] for s in it] == np.flatnonzero(ob.epoch_mask(arr.slice(0, n), kh, 3)).tolist()


def test_online_decision_is_the_public_per_sample_draw(pool):
    """online.py has no draw of its own: its per-sample decision is draws.keeps, which equals
    the vectorised draws.keep_mask (the offline stage-2 kernel) on every sample."""
    rows, arr, keys, counts = pool
    n = 30_000
    for t, seed, epoch in ((300.0, 9, 0), (50.0, 123, 7), (5_000.0, -1, 2)):
        ob = OnlineBalancer(counts, t, seed=seed)
        probs = B.probabilities(counts, t)
        s = epoch_seed(seed, epoch)
        mask = D.keep_mask(arr.slice(0, n), keys[:n], probs, s).tolist()
        assert 0 < sum(mask) < n
        thr = D.draw_thresholds(probs)
        by_probs = [D.keeps(r, int(k), probs, s, thr) for k, r in zip(keys[:n], rows[:n])]
        by_list = [D.keeps(r, int(k) & M64, None, s, thr.tolist()) for k, r in zip(keys[:n], rows[:n])]
        online = [ob.keep(int(k), r, epoch) for k, r in zip(keys[:n], rows[:n])]
        assert by_probs == by_list == online == mask
    # without precomputed thresholds, empty and out-of-range ids as in keep_mask
    assert D.keeps(rows[0], int(keys[0]), probs, 5) == bool(D.keep_mask(arr.slice(0, 1), keys[:1], probs, 5)[0])
    assert D.keeps([], 1, probs, 0) is False
    for bad in ([-1], [len(counts)]):
        with pytest.raises(IndexError):
            D.keeps(bad, 1, probs, 0)
        with pytest.raises(IndexError):
            D.keep_mask([bad], np.array([1]), probs, 0)
