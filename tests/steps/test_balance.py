"""Tests of metaclip_spark.steps.balance (docs/semantics.md section 6)."""

import math
import struct

import numpy as np
import pyarrow as pa
import pytest
import xxhash

from metaclip_spark.steps import balance as B
from metaclip_spark.steps import draws as D
from metaclip_spark.run.schema import POOL_SCHEMA
from metaclip_spark.steps.pipeline import index_columns

M64 = (1 << 64) - 1


# --------------------------------------------------------------------------------------
# An independent, per-row pure-Python reference of the documented hash/draw definition.
# --------------------------------------------------------------------------------------

def ref_fmix(x):
    x &= M64
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & M64
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & M64
    x ^= x >> 31
    return x


def ref_u(key, e, seed):
    s = ref_fmix((seed + 0x9E3779B97F4A7C15) & M64)
    r = ref_fmix((key & M64) ^ s)
    h = ref_fmix(r + (e + 1) * 0xC2B2AE3D27D4EB4F)
    return (h >> 11) * 2.0 ** -53


def ref_keep(rows, keys, probs, seed):
    return np.array([any(ref_u(int(k), e, seed) < probs[e] for e in (row or []))
                     for row, k in zip(rows, keys)], dtype=bool)


def random_rows(rng, n, n_entries, max_len=6, empty_frac=0.0):
    rows = []
    for _ in range(n):
        k = int(rng.integers(1, max_len + 1))
        if rng.random() < empty_frac:
            k = 0
        rows.append(sorted(rng.choice(n_entries, size=min(k, n_entries), replace=False).tolist()))
    return rows


def list_array(rows):
    return pa.array(rows, type=pa.list_(pa.int32()))


# --------------------------------------------------------------------------------------
# Pair key
# --------------------------------------------------------------------------------------

def test_pair_key_hash_definition_and_pinned_values():
    msg = struct.pack("<Q", 2) + b"ab" + struct.pack("<Q", 1) + b"c"
    raw = xxhash.xxh3_64_intdigest(msg)
    expect = raw - (1 << 64) if raw >= (1 << 63) else raw
    assert D.pair_key_hash("ab", "c") == expect
    # pinned (any change of the encoding or the hash breaks stored pools)
    assert D.pair_key_hash("ab", "c") == 7218511453731369902
    assert D.pair_key_hash("a", "bc") == -851496030439325967
    assert D.pair_key_hash("", "") == -3411922682318255768
    assert D.pair_key_hash("https://a.com/x.jpg", "a dog") == 5699263238775475782
    # unambiguous encoding, signed int64 range, UTF-8 bytes lengths
    assert D.pair_key_hash("ab", "c") != D.pair_key_hash("a", "bc")
    uni = D.pair_key_hash("https://x.org/é.jpg", "chien 🐕")
    u, t = "https://x.org/é.jpg".encode(), "chien 🐕".encode()
    raw = xxhash.xxh3_64_intdigest(struct.pack("<Q", len(u)) + u + struct.pack("<Q", len(t)) + t)
    assert uni == (raw - (1 << 64) if raw >= (1 << 63) else raw)
    assert -(1 << 63) <= uni < (1 << 63)


def test_key_hashes_matches_scalar_and_handles_slices_and_chunks():
    urls = ["https://e.com/%d.jpg" % i for i in range(1000)] + ["", "https://x/é"]
    texts = ["text %d ü" % i for i in range(1000)] + ["", "🐕 dog"]
    expect = np.array([D.pair_key_hash(u, t) for u, t in zip(urls, texts)], dtype=np.int64)
    got = D.key_hashes(pa.array(urls), pa.array(texts))
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, expect)
    # sliced Arrow arrays (non-zero offset), chunked arrays, Python lists, large_string
    np.testing.assert_array_equal(D.key_hashes(pa.array(urls).slice(17, 300), pa.array(texts).slice(17, 300)),
                                  expect[17:317])
    cu = pa.chunked_array([pa.array(urls[:400]), pa.array(urls[400:])])
    ct = pa.chunked_array([pa.array(texts[:10]), pa.array(texts[10:])])
    np.testing.assert_array_equal(D.key_hashes(cu, ct), expect)
    np.testing.assert_array_equal(D.key_hashes(urls, texts), expect)
    np.testing.assert_array_equal(D.key_hashes(pa.array(urls, pa.large_string()), pa.array(texts)), expect)
    assert D.key_hashes(pa.array([], pa.string()), pa.array([], pa.string())).shape == (0,)
    with pytest.raises(ValueError):
        D.key_hashes(pa.array(["a", None]), pa.array(["b", "c"]))
    with pytest.raises(ValueError):
        D.key_hashes(pa.array(["a"]), pa.array(["b", "c"]))


# --------------------------------------------------------------------------------------
# Probabilities and t
# --------------------------------------------------------------------------------------

def test_probabilities_exact():
    counts = np.array([0, 1, 5, 10, 11, 20, 1000, 3], dtype=np.int64)
    p = B.probabilities(counts, 10)
    assert p.dtype == np.float64
    assert p.tolist() == [1.0, 1.0, 1.0, 1.0, 10.0 / 11.0, 0.5, 0.01, 1.0]
    assert p[4] == np.float64(10) / np.float64(11)
    # non-integer t, zero-count entry still 1.0
    p = B.probabilities([0, 7, 2], 2.5)
    assert p.tolist() == [1.0, 2.5 / 7, 1.0]
    for bad in (0, -1, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            B.probabilities(counts, bad)
    with pytest.raises(ValueError):
        B.probabilities([1, -2], 5)


COUNTS = np.array([0, 1, 2, 2, 5, 10, 100], dtype=np.int64)   # total 120


def test_tail_share_exact():
    assert B.tail_share(COUNTS, 1) == 0.0
    assert B.tail_share(COUNTS, 2) == 1 / 120
    assert B.tail_share(COUNTS, 5) == 5 / 120          # count == t is not in the tail
    assert B.tail_share(COUNTS, 6) == 10 / 120
    assert B.tail_share(COUNTS, 100) == 20 / 120
    assert B.tail_share(COUNTS, 101) == 1.0
    assert B.tail_share([0, 0], 3) == 0.0


def test_solve_t_for_tail_share_exact():
    assert B.solve_t_for_tail_share(COUNTS, 0.001) == 2.0
    assert B.solve_t_for_tail_share(COUNTS, 1 / 120) == 2.0
    assert B.solve_t_for_tail_share(COUNTS, 0.05) == 6.0
    assert B.solve_t_for_tail_share(COUNTS, 10 / 120) == 6.0        # reached exactly at t = 6
    assert B.solve_t_for_tail_share(COUNTS, 10 / 120 + 1e-9) == 11.0
    assert B.solve_t_for_tail_share(COUNTS, 0.5) == 101.0
    assert B.solve_t_for_tail_share(COUNTS, 1.0) == 101.0
    for bad in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError):
            B.solve_t_for_tail_share(COUNTS, bad)
    with pytest.raises(ValueError):
        B.solve_t_for_tail_share([0, 0], 0.5)


def test_solve_t_for_tail_share_is_smallest_integer_reaching_share():
    rng = np.random.default_rng(3)
    counts = (rng.pareto(1.2, 3000) * 20).astype(np.int64)
    for share in (0.01, 0.06, 0.2, 0.5, 0.9):
        t = B.solve_t_for_tail_share(counts, share)
        assert t == int(t)
        assert B.tail_share(counts, t) >= share
        assert B.tail_share(counts, t - 1) < share if t > 1 else True
        # brute force over all integers
        brute = next(x for x in range(1, int(counts.max()) + 2) if B.tail_share(counts, x) >= share)
        assert t == brute


def test_keep_probability_and_expected_size_exact():
    p = np.array([0.5, 0.25, 1.0])
    arr = list_array([[0], [0, 1], [], None, [1, 2]])
    kp = B.keep_probability(arr, p)
    np.testing.assert_allclose(kp, [0.5, 0.625, 0.0, 0.0, 1.0], rtol=0, atol=1e-15)
    assert B.expected_size(arr, p) == pytest.approx(2.125, abs=1e-12)
    # iterable of arrays and a chunked array give the same sum
    assert B.expected_size([arr.slice(0, 2), arr.slice(2)], p) == pytest.approx(2.125, abs=1e-12)
    assert B.expected_size(pa.chunked_array([arr.slice(0, 1), arr.slice(1)]), p) == pytest.approx(2.125, abs=1e-12)
    # tiny probabilities: no cancellation
    tiny = np.array([1e-12, 2e-12])
    np.testing.assert_allclose(B.keep_probability(list_array([[0, 1]]), tiny), [3e-12], rtol=1e-9)


def test_solve_t_for_target_size_exact():
    # single-entry rows: entry 0 in 100 rows, entry 1 in 10 rows: E(t) = 10 + t on [10, 100]
    rows = [[0]] * 100 + [[1]] * 10
    counts = np.array([100, 10])
    arr = list_array(rows)
    assert B.solve_t_for_target_size(counts, arr, 50) == pytest.approx(40.0, rel=1e-10)
    assert B.solve_t_for_target_size(counts, arr, 5) == pytest.approx(2.5, rel=1e-10)      # E = 2t below 10
    assert B.solve_t_for_target_size(counts, arr, 110) == 100.0
    assert B.solve_t_for_target_size(counts, arr, 500) == 100.0
    # a sample scaled up: 50 rows {0, 1} with full-pool counts 200 each, sample fraction 1/4:
    # E(t) = 4 * 50 * (1 - (1 - t/200)^2) = 150  <=>  t = 100
    t = B.solve_t_for_target_size([200, 200], [list_array([[0, 1]] * 30), list_array([[0, 1]] * 20)],
                                  150, scale=4.0)
    assert t == pytest.approx(100.0, rel=1e-10)
    # a callable E(t) (e.g. a distributed evaluation)
    assert B.solve_t_for_target_size(counts, lambda t: 10 + t, 50) == pytest.approx(40.0, rel=1e-10)
    with pytest.raises(ValueError):
        B.solve_t_for_target_size(counts, arr, 0)


def test_pool_size_model_and_expected_sizes_agree():
    rng = np.random.default_rng(5)
    rows = random_rows(rng, 3000, 50, empty_frac=0.05)
    arr = list_array(rows)
    counts = np.bincount(np.concatenate([r for r in rows if r]), minlength=50)
    model = B.PoolSizeModel(arr, counts)
    ts = [1.0, 7.5, 40.0, 300.0]
    got = B.expected_sizes([arr.slice(0, 1000), arr.slice(1000)], counts, ts)
    for t, g in zip(ts, got):
        direct = B.expected_size(arr, B.probabilities(counts, t))
        assert model(t) == pytest.approx(direct, rel=1e-12)
        assert g == pytest.approx(direct, rel=1e-12)
    t = B.solve_t_for_target_size(counts, model, 1000)
    assert model(t) == pytest.approx(1000, rel=1e-9)


def test_balance_summary():
    s = B.BalanceSummary.from_counts([0, 0, 1, 5, 10, 20, 100], 10)
    assert s.to_dict() == {"t": 10.0, "n_entries": 7, "total_matches": 136, "zero_count_entries": 2,
                           "head_entries": 2, "head_share": 120 / 136, "tail_share": 6 / 136}


# --------------------------------------------------------------------------------------
# Uniform draws
# --------------------------------------------------------------------------------------

def test_uniforms_pinned_values():
    k = np.array([0, 1, -1, 5699263238775475782], dtype=np.int64)
    e = np.array([0, 5, 499999, 123], dtype=np.int32)
    assert D.uniforms(k, e, 0).tolist() == [0.8322810698353548, 0.4997128817637173,
                                           0.06550080177534301, 0.6940245258357365]
    assert (D.uniforms(k, e, 1) * 2 ** 53).astype(np.int64).tolist() == [
        3032673670699364, 5609678740791257, 8919309179197659, 8764341516725032]
    # the independent reference agrees
    for s in (0, 1, 12345, -7):
        assert D.uniforms(k, e, s).tolist() == [ref_u(int(a), int(b), s) for a, b in zip(k, e)]
    # uint64 keys are the same bits as int64 keys
    assert D.uniforms(k.view(np.uint64), e, 3).tolist() == D.uniforms(k, e, 3).tolist()
    with pytest.raises(ValueError):
        D.uniforms(k, np.array([0, -1, 2, 3], dtype=np.int32), 0)


def test_uniforms_distribution_and_seed_independence():
    n = 1_000_000
    # deliberately structured inputs: consecutive keys, few consecutive entry ids
    keys = np.arange(n, dtype=np.int64)
    ents = (np.arange(n) % 7).astype(np.int32)
    u = D.uniforms(keys, ents, 0)
    assert u.min() >= 0.0 and u.max() < 1.0
    assert abs(u.mean() - 0.5) < 4 * math.sqrt(1 / 12 / n)
    assert abs(u.var() - 1 / 12) < 0.002
    us = np.sort(u)
    grid = np.arange(1, n + 1) / n
    d = max(np.max(grid - us), np.max(us - (grid - 1 / n)))
    assert d < 1.63 / math.sqrt(n)           # KS at the 1% level
    # another seed: different and uncorrelated; same seed: identical
    u1 = D.uniforms(keys, ents, 1)
    assert np.count_nonzero(u == u1) < 5
    assert abs(np.corrcoef(u, u1)[0, 1]) < 4 / math.sqrt(n)
    np.testing.assert_array_equal(u, D.uniforms(keys, ents, 0))
    # two entries of the same pair are uncorrelated
    ua = D.uniforms(keys, np.zeros(n, np.int32), 0)
    ub = D.uniforms(keys, np.ones(n, np.int32), 0)
    assert abs(np.corrcoef(ua, ub)[0, 1]) < 4 / math.sqrt(n)
    # low bits of the key alone drive a fair split
    assert abs((ua < 0.3).mean() - 0.3) < 4 * math.sqrt(0.21 / n)


# --------------------------------------------------------------------------------------
# keep_mask
# --------------------------------------------------------------------------------------

def test_keep_mask_equals_slow_reference():
    rng = np.random.default_rng(11)
    n_entries = 40
    rows = random_rows(rng, 4000, n_entries, empty_frac=0.1)
    keys = rng.integers(-2 ** 63, 2 ** 63 - 1, len(rows), dtype=np.int64)
    probs = rng.random(n_entries)
    probs[:5] = 1.0
    probs[5:8] = 0.0
    arr = list_array(rows)
    for seed in (0, 99):
        ref = ref_keep(rows, keys, probs, seed)
        got = D.keep_mask(arr, keys, probs, seed)
        assert got.dtype == np.bool_
        np.testing.assert_array_equal(got, ref)
    # (offsets, values) input, Python list input, int64 values, tiny chunks
    offs = np.asarray(arr.offsets)
    vals = arr.values.to_numpy()
    np.testing.assert_array_equal(D.keep_mask((offs, vals), keys, probs, 0), ref_keep(rows, keys, probs, 0))
    np.testing.assert_array_equal(D.keep_mask(rows, keys, probs, 0), ref_keep(rows, keys, probs, 0))
    big = pa.array(rows, type=pa.large_list(pa.int64()))
    np.testing.assert_array_equal(D.keep_mask(big, keys, probs, 0), ref_keep(rows, keys, probs, 0))


def test_keep_mask_rules_exact():
    keys = np.array([1, 2, 3, 4, 5], dtype=np.int64)
    arr = list_array([[0], [1], [], None, [0, 1]])
    # p = 1: always kept; p = 0: never; empty and null lists never
    assert D.keep_mask(arr, keys, np.array([1.0, 0.0]), 0).tolist() == [True, False, False, False, True]
    assert D.keep_mask(arr, keys, np.array([0.0, 0.0]), 0).tolist() == [False] * 5
    assert D.keep_mask(arr, keys, np.array([1.0, 1.0]), 0).tolist() == [True, True, False, False, True]
    # threshold exactness: u < p is strict, u equal to p is not kept
    u = D.uniforms(np.array([1]), np.array([0]), 0)[0]
    assert D.keep_mask(list_array([[0]]), [1], np.array([u]), 0).tolist() == [False]
    assert D.keep_mask(list_array([[0]]), [1], np.array([np.nextafter(u, 1)]), 0).tolist() == [True]


def test_keep_mask_errors():
    keys = np.array([1, 2], dtype=np.int64)
    with pytest.raises(IndexError):
        D.keep_mask(list_array([[0], [5]]), keys, np.ones(5), 0)
    with pytest.raises(IndexError):
        D.keep_mask(list_array([[0], [-1]]), keys, np.ones(5), 0)
    with pytest.raises(ValueError):
        D.keep_mask(list_array([[0], [1, None]]), keys, np.ones(5), 0)
    with pytest.raises(ValueError):
        D.keep_mask(list_array([[0], [1]]), keys[:1], np.ones(5), 0)
    with pytest.raises(ValueError):
        D.keep_mask(list_array([[0], [1]]), pa.array([1, None], pa.int64()), np.ones(5), 0)
    with pytest.raises(ValueError):
        D.keep_mask(list_array([[0], [1]]), keys, np.array([0.5, 1.5]), 0)


def test_keep_mask_sliced_and_chunked_arrays(monkeypatch):
    rng = np.random.default_rng(12)
    rows = random_rows(rng, 3000, 30, empty_frac=0.1)
    rows[100] = None
    keys = rng.integers(-2 ** 63, 2 ** 63 - 1, len(rows), dtype=np.int64)
    probs = rng.random(30)
    arr = list_array(rows)
    full = D.keep_mask(arr, keys, probs, 4)
    np.testing.assert_array_equal(full, ref_keep(rows, keys, probs, 4))
    for a, b in [(37, 500), (0, 1), (2999, 1), (95, 10), (1000, 2000)]:
        sl = arr.slice(a, b)
        assert sl.offset == a
        np.testing.assert_array_equal(D.keep_mask(sl, keys[a:a + b], probs, 4), full[a:a + b])
        np.testing.assert_array_equal(B.keep_probability(sl, probs), B.keep_probability(arr, probs)[a:a + b])
    # null rows backed by a non-empty range of values are empty rows (never kept)
    offs = pa.array([0, 2, 4, 5, 7], pa.int32())
    vals = pa.array([0, 1, 2, 3, 4, 5, 6], pa.int32())
    backed = pa.ListArray.from_arrays(offs, vals, mask=pa.array([False, True, False, False]))
    assert backed.to_pylist() == [[0, 1], None, [4], [5, 6]]
    k4 = keys[:4]
    ones = np.ones(7)
    assert D.keep_mask(backed, k4, ones, 0).tolist() == [True, False, True, True]
    assert D.keep_mask(backed.slice(1), k4[1:], ones, 0).tolist() == [False, True, True]
    np.testing.assert_array_equal(B.keep_probability(backed, ones), [1.0, 0.0, 1.0, 1.0])
    assert D.entry_draws(backed, k4, ones, 0).tolist() == [True] * 5
    p7 = rng.random(7)
    np.testing.assert_array_equal(D.keep_mask(backed, k4, p7, 1),
                                  ref_keep([[0, 1], None, [4], [5, 6]], k4, p7, 1))
    chunked = pa.chunked_array([arr.slice(0, 700), arr.slice(700, 1), arr.slice(701)])
    np.testing.assert_array_equal(D.keep_mask(chunked, pa.chunked_array([keys[:5], keys[5:]]), probs, 4), full)
    np.testing.assert_array_equal(D.entry_draws(chunked, keys, probs, 4), D.entry_draws(arr, keys, probs, 4))
    # the result does not depend on the kernel's internal chunking
    monkeypatch.setattr(D, "_CHUNK_ROWS", 7)
    np.testing.assert_array_equal(D.keep_mask(arr, keys, probs, 4), full)
    np.testing.assert_array_equal(D.keep_mask(arr.slice(37, 500), keys[37:537], probs, 4), full[37:537])


def make_pool(n, n_entries, seed):
    """n pairs, 1..6 distinct ascending entry ids each, zipf-like entry popularity."""
    rng = np.random.default_rng(seed)
    w = 1.0 / np.arange(1, n_entries + 1) ** 1.1
    w /= w.sum()
    lens = rng.integers(1, 7, n)
    row = np.repeat(np.arange(n), lens)
    ids = rng.choice(n_entries, size=row.size, p=w).astype(np.int32)
    order = np.lexsort((ids, row))
    row, ids = row[order], ids[order]
    dup = np.zeros(row.size, bool)
    dup[1:] = (row[1:] == row[:-1]) & (ids[1:] == ids[:-1])
    row, ids = row[~dup], ids[~dup]
    offs = np.zeros(n + 1, np.int32)
    np.cumsum(np.bincount(row, minlength=n), out=offs[1:])
    arr = pa.ListArray.from_arrays(pa.array(offs), pa.array(ids))
    keys = rng.integers(-2 ** 63, 2 ** 63 - 1, n, dtype=np.int64)
    counts = np.bincount(ids, minlength=n_entries)
    return arr, keys, counts


@pytest.fixture(scope="module")
def big_pool():
    return make_pool(1_000_000, 2000, seed=2024)


def test_statistics_per_entry_draw_rate_and_pair_keep_rate(big_pool):
    arr, keys, counts = big_pool
    t = 2000.0
    probs = B.probabilities(counts, t)
    draws = D.entry_draws(arr, keys, probs, seed=17)
    ids = arr.values.to_numpy()
    assert draws.size == ids.size
    drawn = np.bincount(ids, weights=draws, minlength=counts.size)
    # tail entries are always drawn
    tail = (counts > 0) & (counts <= t)
    np.testing.assert_array_equal(drawn[tail], counts[tail])
    # head entries: Binomial(count_e, p_e), each within 4 sd
    head = counts > t
    assert head.sum() >= 100
    n, p = counts[head].astype(float), probs[head]
    sd = np.sqrt(n * p * (1 - p))
    z = (drawn[head] - n * p) / sd
    assert np.all(np.abs(z) < 4), np.abs(z).max()
    assert abs(z.mean()) < 4 / math.sqrt(z.size)      # no systematic bias across entries
    # drawn count of a head entry is ~t
    assert np.all(np.abs(drawn[head] - t) < 4 * sd)
    # pairs: kept iff any entry drawn; keep rate vs the mean of 1 - prod(1 - p)
    mask = D.keep_mask(arr, keys, probs, seed=17)
    offs = np.asarray(arr.offsets)
    any_drawn = np.add.reduceat(draws.astype(np.int64), offs[:-1]) > 0
    np.testing.assert_array_equal(mask, any_drawn)
    kp = B.keep_probability(arr, probs)
    exp, var = kp.sum(), (kp * (1 - kp)).sum()
    assert abs(mask.sum() - exp) < 4 * math.sqrt(var)
    assert B.expected_size(arr, probs) == pytest.approx(exp, rel=1e-12)
    assert 0.05 < mask.mean() < 0.95                 # a meaningful balancing regime


def test_determinism_and_seed_and_batch_split(big_pool):
    arr, keys, counts = big_pool
    probs = B.probabilities(counts, 2000.0)
    n = 200_000
    a, k = arr.slice(0, n), keys[:n]
    m1 = D.keep_mask(a, k, probs, 5)
    np.testing.assert_array_equal(m1, D.keep_mask(a, k, probs, 5))
    m2 = D.keep_mask(a, k, probs, 6)
    assert not np.array_equal(m1, m2)
    assert abs(m1.mean() - m2.mean()) < 0.01
    # split into batches in several ways: the concatenated masks are identical
    table = pa.table({"entry_ids": a, "key_hash": pa.array(k)})
    for size in (1, 999, 16384, 65536, 100_000):
        if size == 1:
            batches = [table.slice(i, 1).to_batches()[0] for i in range(0, 3000)]
            got = np.concatenate([D.keep_mask(b.column("entry_ids"), b.column("key_hash"), probs, 5)
                                  for b in batches])
            np.testing.assert_array_equal(got, m1[:3000])
            continue
        got = np.concatenate([D.keep_mask(b.column("entry_ids"), b.column("key_hash"), probs, 5)
                              for b in table.to_batches(max_chunksize=size)])
        np.testing.assert_array_equal(got, m1)
    # a reversed partitioning of the same rows keeps the same rows
    perm = np.random.default_rng(0).permutation(n)
    mp = D.keep_mask(a.take(pa.array(perm)), k[perm], probs, 5)
    np.testing.assert_array_equal(mp, m1[perm])


def test_sample_batch_keeps_rows_and_columns():
    rng = np.random.default_rng(8)
    rows = random_rows(rng, 5000, 20, empty_frac=0.05)
    urls = ["https://e.com/%d.jpg" % i for i in range(len(rows))]
    texts = ["t %d" % i for i in range(len(rows))]
    kh = D.key_hashes(pa.array(urls), pa.array(texts))
    n = len(rows)
    index = index_columns(urls, texts, "c")
    batch = pa.RecordBatch.from_arrays([
        pa.array(urls), pa.array(texts), list_array(rows), pa.array(["p"] * n), pa.array(np.ones(n, np.float32)),
        pa.array(["s"] * n), pa.array([str(i) for i in range(n)]), pa.array(np.arange(n)), pa.array(kh),
        index["image_id"], pa.array(index["text_hash"]), index["crawl"], pa.array(["alt"] * n), pa.array(["en"] * n),
    ], schema=POOL_SCHEMA)
    probs = rng.random(20)
    out = D.sample_batch(batch, probs, 3)
    mask = ref_keep(rows, kh, probs, 3)
    assert out.schema == POOL_SCHEMA
    assert out.num_rows == int(mask.sum())
    assert out.column("record_id").to_pylist() == [str(i) for i in np.flatnonzero(mask)]
    # a Table split into batches: concatenated output equals the single-batch output
    table = pa.Table.from_batches([batch]).combine_chunks()
    parts = [D.sample_batch(b, probs, 3) for b in table.to_batches(max_chunksize=777)]
    assert pa.Table.from_batches(parts, schema=POOL_SCHEMA).equals(pa.Table.from_batches([out]))
    assert D.sample_batch(table, probs, 3).equals(pa.Table.from_batches([out]))
    # without the key_hash column the key is computed from url and text
    nokey = batch.drop_columns(["key_hash"])
    assert D.sample_batch(nokey, probs, 3).column("record_id").equals(out.column("record_id"))
