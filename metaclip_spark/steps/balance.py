"""Part 2 of MetaCLIP curation: balancing (SPEC section 6). Spark-free numpy/Arrow kernels.

Every pool pair matched a set S of metadata entries.  Entry ``e`` is *drawn* with
probability ``p_e = t / max(count_e, t)`` and the pair is kept iff at least one of its
entries is drawn, i.e. with probability ``1 - prod_{e in S} (1 - p_e)``.

Determinism
-----------
There is one uniform draw ``u`` per (pair, entry), a pure function of
``(seed, key_hash(url, text), entry id)``; the pair is kept iff some ``u_e < p_e``.  A
retried Spark task, a re-run, or another partitioning therefore gives the same output,
and another seed gives an independent sample.

Pair key (stored in the pool column ``key_hash``, computed once in stage 1)::

    msg  = le64(len(U)) + U + le64(len(T)) + T      # U, T = UTF-8 bytes of url, text;
                                                    # le64 = 8-byte little-endian unsigned
    key  = xxh3_64(msg, seed=0)                     # xxHash XXH3 64-bit
    key_hash = key - 2**64 if key >= 2**63 else key # the same 64 bits as a signed int64

Uniform draw (all arithmetic on unsigned 64-bit integers, modulo 2**64)::

    fmix(x): x ^= x >> 30; x *= 0xBF58476D1CE4E5B9
             x ^= x >> 27; x *= 0x94D049BB133111EB
             x ^= x >> 31                            # splitmix64 / Stafford "Mix13" finaliser
    S = fmix(seed + 0x9E3779B97F4A7C15)              # seed taken modulo 2**64
    r = fmix(key ^ S)                                # key = key_hash as unsigned 64 bits
    h = fmix(r + (e + 1) * 0xC2B2AE3D27D4EB4F)       # e = entry id (0-based, >= 0)
    u = (h >> 11) * 2**-53                           # exactly representable, in [0, 1)

``r`` is a per-row value, so the kernel computes it once per row and only the last
``fmix`` per (row, entry).  ``u < p`` is evaluated exactly as the integer comparison
``(h >> 11) < ceil(p * 2**53)`` (identical to the float comparison, since
``(h >> 11)`` and ``p * 2**53`` are both exact in float64).

Arrow inputs
------------
Entry-id lists may be ``pa.ListArray``/``pa.LargeListArray`` (sliced arrays with a
non-zero offset are fine), ``pa.ChunkedArray`` of those, an ``(offsets, values)`` pair of
numpy arrays, or a Python list of lists.  A null list is treated as an empty list: the
row is never kept (keep probability 0).  A null entry id inside a list is an error
(``ValueError``), and so is an id outside ``[0, len(probs))`` (``IndexError``).
Key hashes must be non-null.
"""

from __future__ import annotations

import struct
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

__all__ = [
    "pair_key_hash", "key_hashes", "probabilities", "tail_share", "solve_t_for_tail_share",
    "keep_probability", "expected_size", "expected_sizes", "PoolSizeModel",
    "solve_t_for_target_size", "uniforms", "entry_draws", "keep_mask", "sample_batch",
    "BalanceSummary",
]

_MASK64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15       # seed increment (splitmix64 gamma)
MIX1 = 0xBF58476D1CE4E5B9
MIX2 = 0x94D049BB133111EB
ENTRY_MULT = 0xC2B2AE3D27D4EB4F   # odd multiplier of (entry id + 1) (xxHash PRIME64_2)

_U64 = np.uint64
_MIX1 = _U64(MIX1)
_MIX2 = _U64(MIX2)
_ENTRY_MULT = _U64(ENTRY_MULT)
_S30, _S27, _S31, _S11 = _U64(30), _U64(27), _U64(31), _U64(11)

# Rows per chunk in the sampling kernel: ~3.5 ids/row keeps the per-chunk arrays in L2.
_CHUNK_ROWS = 16384


# ---------------------------------------------------------------------------------------
# Pair key
# ---------------------------------------------------------------------------------------

def _to_signed(h: int) -> int:
    return h - (1 << 64) if h >= (1 << 63) else h


def pair_key_hash(url: str, text: str) -> int:
    """The pair's 64-bit key (see module docstring) as a signed int64 value."""
    u = url.encode("utf-8", "surrogatepass")
    t = text.encode("utf-8", "surrogatepass")
    msg = struct.pack("<Q", len(u)) + u + struct.pack("<Q", len(t)) + t
    return _to_signed(xxhash.xxh3_64_intdigest(msg))


def _string_chunks(a) -> list:
    if isinstance(a, pa.ChunkedArray):
        return [c for c in a.chunks]
    if isinstance(a, pa.Array):
        return [a]
    return [pa.array(list(a), type=pa.string())]


def _len_prefix(strings: pa.Array) -> pa.Array:
    lens = pc.binary_length(strings).to_numpy(zero_copy_only=False).astype("<u8")
    fsb = pa.FixedSizeBinaryArray.from_buffers(pa.binary(8), len(lens), [None, pa.py_buffer(lens.tobytes())])
    return fsb.cast(pa.large_binary())


def key_hashes(urls, texts) -> np.ndarray:
    """``pair_key_hash`` for every row of two string columns (Arrow arrays, chunked arrays
    or Python sequences) -> int64 numpy array.

    The length-prefixed messages are built by Arrow in one vectorised call; only the
    xxh3 call itself runs per row in Python (stage 1 computes the key once per pair).
    Null url or text raises ``ValueError``."""
    uc, tc = _string_chunks(urls), _string_chunks(texts)
    u = pa.chunked_array(uc, type=uc[0].type if uc else pa.string()).combine_chunks() if len(uc) != 1 else uc[0]
    t = pa.chunked_array(tc, type=tc[0].type if tc else pa.string()).combine_chunks() if len(tc) != 1 else tc[0]
    if len(u) != len(t):
        raise ValueError("urls and texts differ in length: %d != %d" % (len(u), len(t)))
    if u.null_count or t.null_count:
        raise ValueError("key_hashes: url and text must be non-null")
    n = len(u)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    # large_binary: the joined messages may exceed 2 GiB for big batches.
    ub, tb = u.cast(pa.large_binary()), t.cast(pa.large_binary())
    msgs = pc.binary_join_element_wise(_len_prefix(ub), ub, _len_prefix(tb), tb,
                                       pa.scalar(b"", pa.large_binary()))
    bufs = msgs.buffers()
    offs = np.frombuffer(bufs[1], dtype=np.int64)[msgs.offset:msgs.offset + n + 1].tolist()
    mv = memoryview(bufs[2]) if bufs[2] is not None else memoryview(b"")
    h = xxhash.xxh3_64_intdigest
    out = np.fromiter((h(mv[a:b]) for a, b in zip(offs, offs[1:])), dtype=np.uint64, count=n)
    return out.view(np.int64)


# ---------------------------------------------------------------------------------------
# Probabilities and the choice of t
# ---------------------------------------------------------------------------------------

def _check_t(t: float) -> float:
    t = float(t)
    if not (t > 0) or not np.isfinite(t):
        raise ValueError("t must be a finite number > 0, got %r" % t)
    return t


def _counts(counts) -> np.ndarray:
    c = np.asarray(counts)
    if c.ndim != 1:
        raise ValueError("counts must be a 1-d vector indexed by entry id")
    if c.size and c.dtype.kind not in "iu":
        if not np.all(c == np.floor(c)):
            raise ValueError("counts must be integers")
        c = c.astype(np.int64)
    c = c.astype(np.int64, copy=False)
    if c.size and c.min() < 0:
        raise ValueError("counts must be >= 0")
    return c


def probabilities(counts, t: float) -> np.ndarray:
    """``p_e = t / max(count_e, t)`` as float64, one slot per entry.

    Tail entries (``count_e <= t``) get exactly 1.0, head entries exactly ``t / count_e``.
    Zero-count entries fall under the same formula and get 1.0: they never occur in the
    pool the counts came from, so their value cannot change that pool's sample, and if the
    probabilities are applied to other data (another crawl, a sample, an online loader)
    an entry that was never seen is by definition in the tail and must not be
    down-sampled."""
    t = _check_t(t)
    c = _counts(counts)
    return t / np.maximum(c.astype(np.float64), t)


def tail_share(counts, t: float) -> float:
    """``sum_{count_e < t} count_e / sum_e count_e`` (0.0 when there is no match at all)."""
    t = _check_t(t)
    c = _counts(counts)
    total = int(c.sum())
    if total == 0:
        return 0.0
    return int(c[c < t].sum()) / total


def solve_t_for_tail_share(counts, share: float) -> float:
    """The smallest integer ``t >= 1`` whose ``tail_share(counts, t) >= share``.

    ``tail_share`` is a non-decreasing step function of t; at integer t it equals
    ``sum_{count_e <= t-1} count_e / total``, so the answer is ``c* + 1`` where ``c*`` is
    the smallest count value whose cumulative mass (all counts <= c*) reaches the share.
    Every smaller t has a tail share below ``share``.  ``0 < share <= 1``; share 1 gives
    ``max(counts) + 1``.  Returned as a float (``probabilities`` takes any real t)."""
    share = float(share)
    if not (0.0 < share <= 1.0):
        raise ValueError("share must be in (0, 1], got %r" % share)
    c = _counts(counts)
    c = c[c > 0]
    if c.size == 0:
        raise ValueError("all counts are zero: the tail share is undefined")
    vals, mult = np.unique(c, return_counts=True)
    cum = np.cumsum(vals * mult)
    total = int(cum[-1])
    ok = cum.astype(np.float64) / np.float64(total) >= share   # same rounding as tail_share
    idx = int(np.argmax(ok))                                    # ok[-1] is True (1.0 >= share)
    return float(int(vals[idx]) + 1)


# ---------------------------------------------------------------------------------------
# Arrow list access
# ---------------------------------------------------------------------------------------

_UNSIGNED = {np.dtype(np.int8): np.uint8, np.dtype(np.int16): np.uint16,
             np.dtype(np.int32): np.uint32, np.dtype(np.int64): np.uint64}


def _list_parts(entry_ids) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, values) of one list array: offsets start at 0 and have n+1 slots, values
    are the flat non-negative ids viewed as unsigned integers (a negative id becomes a
    huge value that the bounds-checked gather rejects)."""
    if isinstance(entry_ids, tuple) and len(entry_ids) == 2:
        offsets = np.asarray(entry_ids[0])
        values = np.asarray(entry_ids[1])
        if offsets.ndim != 1 or offsets.size == 0:
            raise ValueError("offsets must be a 1-d array with n+1 slots")
        if offsets.dtype.kind not in "iu" or np.any(np.diff(offsets) < 0):
            raise ValueError("offsets must be non-decreasing integers")
        if int(offsets[-1]) > values.size:
            raise ValueError("offsets point past the end of values")
        values = values[int(offsets[0]):int(offsets[-1])]
        offsets = offsets - offsets[0]
    else:
        arr = entry_ids
        if not isinstance(arr, pa.Array):
            arr = pa.array(list(arr), type=pa.list_(pa.int32()))
        if not (pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type)):
            raise TypeError("entry ids must be a list<int> array, got %s" % arr.type)
        if not pa.types.is_integer(arr.type.value_type):
            raise TypeError("entry ids must be integers, got %s" % arr.type.value_type)
        if arr.null_count:
            # Null rows count as empty lists; flatten() skips the values behind null slots.
            lens = pc.fill_null(pc.list_value_length(arr), 0).to_numpy().astype(np.int64)
            offsets = np.zeros(len(arr) + 1, dtype=np.int64)
            np.cumsum(lens, out=offsets[1:])
            flat = arr.flatten()
        else:
            offsets = np.asarray(arr.offsets)          # honours the slice offset
            flat = arr.values.slice(int(offsets[0]), int(offsets[-1]) - int(offsets[0]))
            if offsets[0] != 0:
                offsets = offsets - offsets[0]
        if flat.null_count:
            raise ValueError("null entry id inside an entry_ids list")
        values = flat.to_numpy()
    if values.dtype.kind not in "iu":
        raise TypeError("entry ids must be integers, got %s" % values.dtype)
    if values.dtype.kind == "i":
        values = values.view(_UNSIGNED[values.dtype])
    return offsets, values


def _iter_lists(entry_ids):
    """Yield list arrays from one array, a chunked array, or an iterable of either."""
    if isinstance(entry_ids, pa.ChunkedArray):
        yield from entry_ids.chunks
    elif isinstance(entry_ids, (pa.Array, tuple)):
        yield entry_ids
    elif isinstance(entry_ids, list) and (not entry_ids or not isinstance(entry_ids[0], (pa.Array, pa.ChunkedArray, tuple))):
        yield entry_ids                       # a Python list of lists
    else:
        for a in entry_ids:
            if isinstance(a, pa.ChunkedArray):
                yield from a.chunks
            else:
                yield a


def _key_array(key_hash, n: int) -> np.ndarray:
    if isinstance(key_hash, pa.ChunkedArray):
        key_hash = key_hash.combine_chunks() if key_hash.num_chunks != 1 else key_hash.chunk(0)
    if isinstance(key_hash, pa.Array):
        if key_hash.null_count:
            raise ValueError("key_hash must be non-null")
        key_hash = key_hash.to_numpy()
    k = np.asarray(key_hash)
    if k.ndim != 1 or k.size != n:
        raise ValueError("key_hash must have one value per row (%d), got shape %s" % (n, k.shape))
    if k.dtype == np.int64:
        return k.view(np.uint64)
    if k.dtype == np.uint64:
        return k
    if k.dtype.kind in "iu":
        return k.astype(np.int64).view(np.uint64)
    if k.dtype == object:
        return np.array([int(x) & _MASK64 for x in k], dtype=np.uint64)
    raise TypeError("key_hash must be an integer array, got %s" % k.dtype)


# ---------------------------------------------------------------------------------------
# Deterministic draws
# ---------------------------------------------------------------------------------------

def _fmix_py(x: int) -> int:
    x &= _MASK64
    x ^= x >> 30
    x = (x * MIX1) & _MASK64
    x ^= x >> 27
    x = (x * MIX2) & _MASK64
    x ^= x >> 31
    return x


def _seed_mix(seed: int) -> int:
    return _fmix_py((int(seed) + GOLDEN) & _MASK64)


def _fmix_inplace(x: np.ndarray, tmp: np.ndarray | None = None) -> np.ndarray:
    """splitmix64 finaliser on a uint64 array, in place (wraparound multiply)."""
    if tmp is None:
        tmp = np.empty_like(x)
    np.right_shift(x, _S30, out=tmp)
    x ^= tmp
    x *= _MIX1
    np.right_shift(x, _S27, out=tmp)
    x ^= tmp
    x *= _MIX2
    np.right_shift(x, _S31, out=tmp)
    x ^= tmp
    return x


def _row_mix(keys_u64: np.ndarray, seed: int) -> np.ndarray:
    """r = fmix(key ^ S) per row (a new array)."""
    r = keys_u64 ^ _U64(_seed_mix(seed))
    return _fmix_inplace(r)


def _elem_hash(r_rep: np.ndarray, e: np.ndarray) -> np.ndarray:
    """h = fmix(r + (e + 1) * ENTRY_MULT), elementwise; r_rep is consumed (modified)."""
    x = e.astype(np.uint64)
    x += _U64(1)
    x *= _ENTRY_MULT
    x += r_rep
    return _fmix_inplace(x, r_rep)


def uniforms(key_hash, entry_ids, seed: int) -> np.ndarray:
    """The draw ``u`` in [0, 1) for each (key_hash, entry id) element pair (numpy
    broadcasting applies; key_hash int64 or uint64, entry ids >= 0)."""
    k = np.asarray(key_hash)
    if k.dtype == np.int64:
        k = k.view(np.uint64)
    elif k.dtype != np.uint64:
        k = np.asarray(k, dtype=np.int64).view(np.uint64)
    e = np.asarray(entry_ids)
    if e.dtype.kind not in "iu":
        raise TypeError("entry ids must be integers")
    if e.size and e.dtype.kind == "i" and e.min() < 0:
        raise ValueError("entry ids must be >= 0")
    k, e = np.broadcast_arrays(k, e)
    r = _row_mix(np.ascontiguousarray(k), seed)
    h = _elem_hash(r, np.ascontiguousarray(e))
    h >>= _S11
    return h.astype(np.float64) * (2.0 ** -53)


def _thresholds(probs) -> np.ndarray:
    """ceil(p * 2**53) as uint64: (h >> 11) < T  <=>  u < p, exactly."""
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError("probs must be a 1-d vector indexed by entry id")
    if p.size and (np.isnan(p).any() or p.min() < 0 or p.max() > 1):
        raise ValueError("probabilities must lie in [0, 1]")
    return np.ceil(p * 2.0 ** 53).astype(np.uint64)


def _draw_chunks(offsets: np.ndarray, values: np.ndarray, keys: np.ndarray,
                 thr: np.ndarray, seed: int):
    """Yield (row_start, row_end, drawn-per-element bool) over row chunks."""
    n = offsets.size - 1
    s = _U64(_seed_mix(seed))
    for r0 in range(0, n, _CHUNK_ROWS):
        r1 = min(n, r0 + _CHUNK_ROWS)
        o = offsets[r0:r1 + 1]
        e0, e1 = int(o[0]), int(o[-1])
        e = values[e0:e1]
        lens = np.diff(o).astype(np.intp)
        r = keys[r0:r1] ^ s
        _fmix_inplace(r)
        r_rep = np.repeat(r, lens)
        h = _elem_hash(r_rep, e)
        h >>= _S11
        drawn = h < thr[e]            # bounds-checked gather (IndexError on bad ids)
        yield r0, r1, o, drawn


def entry_draws(entry_ids, key_hash, probs, seed: int) -> np.ndarray:
    """Per-element "drawn" flags (``u_e < p_e``), aligned with the flattened entry ids of
    one list array (null lists contribute no element)."""
    if isinstance(entry_ids, pa.ChunkedArray):
        keys_all = _key_array(key_hash, len(entry_ids))
        out, pos = [], 0
        for ch in entry_ids.chunks:
            out.append(entry_draws(ch, keys_all[pos:pos + len(ch)], probs, seed))
            pos += len(ch)
        return np.concatenate(out) if out else np.zeros(0, dtype=bool)
    offsets, values = _list_parts(entry_ids)
    n = offsets.size - 1
    keys = _key_array(key_hash, n)
    thr = _thresholds(probs)
    out = np.empty(int(offsets[-1]), dtype=bool)
    for _, _, o, drawn in _draw_chunks(offsets, values, keys, thr, seed):
        out[int(o[0]):int(o[-1])] = drawn
    return out


def _row_any(drawn: np.ndarray, o: np.ndarray) -> np.ndarray:
    """Per-row OR of the elements between consecutive offsets o (o[0] is the base):
    a running count of drawn elements, compared at row ends; empty rows give False."""
    cs = np.empty(drawn.size + 1, dtype=np.int64)
    cs[0] = 0
    np.cumsum(drawn, out=cs[1:])
    rel = o - o[0]
    return cs[rel[1:]] > cs[rel[:-1]]


def draw_thresholds(probs) -> np.ndarray:
    """The per-entry integer thresholds of the draws (validated ``probs``): pass them as
    ``thresholds=`` to :func:`keep_mask` / :func:`sample_batch` to reuse them across batches."""
    return _thresholds(probs)


def keep_mask(entry_ids, key_hash, probs, seed: int, thresholds: np.ndarray | None = None) -> np.ndarray:
    """Boolean keep mask: row kept iff some entry has ``u_e < p_e``; empty/null lists are
    never kept.  ``entry_ids`` may be a (sliced) list array, a chunked array, an
    ``(offsets, values)`` pair or a list of lists; ``key_hash`` has one value per row.
    ``thresholds``: ``draw_thresholds(probs)``, computed once by callers with many batches."""
    thr = _thresholds(probs) if thresholds is None else thresholds
    if isinstance(entry_ids, pa.ChunkedArray):
        keys_all = _key_array(key_hash, len(entry_ids))
        out, pos = [], 0
        for ch in entry_ids.chunks:
            out.append(keep_mask(ch, keys_all[pos:pos + len(ch)], probs, seed, thr))
            pos += len(ch)
        return np.concatenate(out) if out else np.zeros(0, dtype=bool)
    offsets, values = _list_parts(entry_ids)
    n = offsets.size - 1
    keys = _key_array(key_hash, n)
    out = np.empty(n, dtype=bool)
    for r0, r1, o, drawn in _draw_chunks(offsets, values, keys, thr, seed):
        out[r0:r1] = _row_any(drawn, o)
    return out


ORDER_SALT = 0x6F72646572000000    # "order": the curated order's hash differs from the draws'


def order_keys(key_hash, seed: int) -> np.ndarray:
    """The curated set's row order: rows sorted by ``fmix(key ^ mix(seed ^ ORDER_SALT))``
    (uint64), a seeded shuffle that depends only on each row's key (not on the file or
    partition the row sits in), independent of the keep draws."""
    keys = _key_array(key_hash, len(key_hash))
    return _row_mix(keys, int(seed) ^ ORDER_SALT)


def sample_batch(batch, probs, seed: int, *, entry_ids_column: str = "entry_ids",
                 key_column: str = "key_hash", thresholds: np.ndarray | None = None):
    """The kept rows of a ``pa.RecordBatch`` (or ``pa.Table``), columns unchanged.

    Uses the ``key_hash`` column; when it is absent the key is computed from ``url`` and
    ``text`` (slower)."""
    names = batch.schema.names
    if key_column in names:
        keys = batch.column(key_column)
    else:
        keys = key_hashes(batch.column("url"), batch.column("text"))
    mask = keep_mask(batch.column(entry_ids_column), keys, probs, seed, thresholds)
    return batch.filter(pa.array(mask, type=pa.bool_()))


# ---------------------------------------------------------------------------------------
# Expected size and t from a target size
# ---------------------------------------------------------------------------------------

def _row_sum(x: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    lens = np.diff(offsets)
    nonempty = lens > 0
    out = np.zeros(lens.size, dtype=np.float64)
    if x.size:
        out[nonempty] = np.add.reduceat(x, offsets[:-1][nonempty].astype(np.intp))
    return out


def log_miss(probs) -> np.ndarray:
    """``log1p(-p_e)`` per entry: :func:`keep_probability`'s table, reusable across batches."""
    with np.errstate(divide="ignore"):
        return np.log1p(-np.asarray(probs, dtype=np.float64))


def keep_probability(entry_ids, probs, log_q: np.ndarray | None = None) -> np.ndarray:
    """Per-row ``1 - prod_{e in S} (1 - p_e)`` (0 for an empty or null list), computed as
    ``-expm1(sum log1p(-p_e))`` for accuracy at small p. ``log_q``: ``log_miss(probs)``,
    when the caller keeps it across batches (the same values, without a log per element)."""
    if log_q is None:
        log_q = log_miss(probs)
    if isinstance(entry_ids, pa.ChunkedArray):
        parts = [keep_probability(c, None, log_q) for c in entry_ids.chunks]
        return np.concatenate(parts) if parts else np.zeros(0)
    offsets, values = _list_parts(entry_ids)
    return -np.expm1(_row_sum(log_q[values], offsets))


def expected_size(entry_id_arrays, probs) -> float:
    """Expected curated size ``sum_pairs 1 - prod (1 - p_e)`` over one list array, a
    chunked array, or an iterable of list arrays (one pass; distributed use: each task
    returns its partial sum, the driver adds them)."""
    log_q = log_miss(probs)
    return float(sum(float(keep_probability(a, None, log_q).sum()) for a in _iter_lists(entry_id_arrays)))


def expected_sizes(entry_id_arrays, counts, ts) -> np.ndarray:
    """Expected curated size for each threshold in ``ts``, in one pass over the data
    (distributed use: each task returns its vector, the driver adds them; the driver
    then brackets the target on a grid and refines with a second grid if needed)."""
    c = _counts(counts)
    ts = np.atleast_1d(np.asarray(ts, dtype=np.float64))
    log_qs = [log_miss(probabilities(c, t)) for t in ts]
    out = np.zeros(ts.size)
    for a in _iter_lists(entry_id_arrays):
        for i, lq in enumerate(log_qs):
            out[i] += float(keep_probability(a, None, lq).sum())
    return out


class PoolSizeModel:
    """A sufficient summary of a pool (or a sample of it) for the expected curated size
    as a function of t: for every element the count of its entry (float64), plus the
    row offsets.  Built once from an iterable of entry-id list arrays (one pass), it
    evaluates ``E(t)`` without touching the data again, so bisection is cheap.

    ``scale`` multiplies every evaluation: for a Bernoulli sample with fraction f of the
    pool, use ``scale = 1/f`` (``counts`` must always be the full-pool counts).
    Memory: 8 bytes per match + 8 bytes per row (a 1% sample of a 1.6B-pair pool with
    3.5 matches/pair: ~0.6 GB)."""

    def __init__(self, entry_id_arrays, counts, scale: float = 1.0):
        c = _counts(counts).astype(np.float64)
        offs, vals = [np.zeros(1, dtype=np.int64)], []
        base = 0
        for a in _iter_lists(entry_id_arrays):
            o, v = _list_parts(a)
            vals.append(c[v])
            offs.append(o[1:].astype(np.int64) + base)
            base += int(o[-1])
        self.offsets = np.concatenate(offs)
        self.elem_counts = np.concatenate(vals) if vals else np.zeros(0)
        if self.elem_counts.size and self.elem_counts.min() <= 0:
            raise ValueError("an entry id in the pool has count 0: counts and pool disagree")
        self.scale = float(scale)
        self.n_rows = self.offsets.size - 1
        self.n_nonempty = int(np.count_nonzero(np.diff(self.offsets)))
        self.max_count = float(self.elem_counts.max()) if self.elem_counts.size else 0.0

    def expected_size(self, t: float) -> float:
        t = _check_t(t)
        with np.errstate(divide="ignore"):
            lq = np.log1p(-(t / np.maximum(self.elem_counts, t)))
        return self.scale * float((-np.expm1(_row_sum(lq, self.offsets))).sum())

    __call__ = expected_size


def solve_t_for_target_size(counts, pool, target: float, *, scale: float = 1.0,
                            rel_tol: float = 1e-12, max_iter: int = 200) -> float:
    """The threshold t whose expected curated size ``E(t)`` equals ``target``.

    ``E(t)`` is continuous and non-decreasing in t (every ``p_e`` is), from 0 at t -> 0
    to the number of non-empty rows at ``t = max count``.  Bisection on t until the
    bracket ``[lo, hi]`` (``E(lo) < target <= E(hi)``) is narrower than ``rel_tol * hi``;
    returns ``hi``, i.e. (to that tolerance) the smallest t with ``E(t) >= target``.

    ``pool`` is one of:
      * a ``PoolSizeModel`` (or anything callable as ``pool(t) -> expected size``, e.g.
        a Spark job summing ``expected_size`` over partitions);
      * entry-id list arrays (one, chunked, or an iterable): summarised once into a
        ``PoolSizeModel(pool, counts, scale)``.
    If the target exceeds the size at ``t = max count`` (everything kept), that t is
    returned."""
    target = float(target)
    if not (target > 0):
        raise ValueError("target must be > 0")
    c = _counts(counts)
    if callable(pool) and not isinstance(pool, (pa.Array, pa.ChunkedArray)):
        f: Callable[[float], float] = pool
    else:
        f = PoolSizeModel(pool, c, scale)
    t_max = float(c.max()) if c.size else 0.0
    if t_max <= 0:
        raise ValueError("all counts are zero")
    if f(t_max) < target:
        return t_max
    lo, hi = 0.0, t_max
    for _ in range(max_iter):
        if hi - lo <= rel_tol * hi:
            break
        mid = 0.5 * (lo + hi)
        if mid <= lo or mid >= hi:
            break
        if f(mid) >= target:
            hi = mid
        else:
            lo = mid
    return hi


# ---------------------------------------------------------------------------------------
# Summary
# ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BalanceSummary:
    """Statistics of a count vector at threshold t (SPEC sections 6 and 7).

    ``head_entries``: entries with count > t (the only ones down-sampled);
    ``head_share``: their share of all matches; ``tail_share``: share of matches in
    entries with count < t (entries with count == t are in neither; they keep p = 1)."""

    t: float
    n_entries: int
    total_matches: int
    zero_count_entries: int
    head_entries: int
    head_share: float
    tail_share: float

    @classmethod
    def from_counts(cls, counts, t: float) -> "BalanceSummary":
        t = _check_t(t)
        c = _counts(counts)
        total = int(c.sum())
        head = c > t
        return cls(
            t=t,
            n_entries=int(c.size),
            total_matches=total,
            zero_count_entries=int(np.count_nonzero(c == 0)),
            head_entries=int(np.count_nonzero(head)),
            head_share=(int(c[head].sum()) / total) if total else 0.0,
            tail_share=tail_share(c, t),
        )

    def to_dict(self) -> dict:
        return asdict(self)
