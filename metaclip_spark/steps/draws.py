"""The seeded draws of balancing (docs/semantics.md section 6): the pair key, one uniform draw per
(pair, entry), the keep decision (vectorised and per sample) and the curated order.

Entry ``e`` of a pair is *drawn* iff ``u_e < p_e`` (``p_e`` from
:func:`metaclip_spark.steps.balance.probabilities`); the pair is kept iff at least one
of its entries is drawn.  :func:`keep_mask` decides whole Arrow batches,
:func:`keeps` one sample (data loaders, :mod:`metaclip_spark.online`); both give the
same answer for every pair.  Input forms: :mod:`metaclip_spark.steps.entry_lists`.

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
"""

from __future__ import annotations

import functools
import struct

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

from metaclip_spark.steps.entry_lists import MASK64, key_array, list_parts

__all__ = [
    "GOLDEN", "MIX1", "MIX2", "ENTRY_MULT", "ORDER_SALT", "pair_key_hash", "key_hashes",
    "fmix64", "seed_mix", "uniforms", "draw_thresholds", "entry_draws", "keep_mask", "keeps",
    "order_keys", "sample_batch",
]

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
# Deterministic draws
# ---------------------------------------------------------------------------------------

def fmix64(x: int) -> int:
    """The splitmix64 finaliser ``fmix`` on one Python int (taken modulo 2**64)."""
    x &= MASK64
    x ^= x >> 30
    x = (x * MIX1) & MASK64
    x ^= x >> 27
    x = (x * MIX2) & MASK64
    x ^= x >> 31
    return x


@functools.lru_cache(maxsize=1024)
def seed_mix(seed: int) -> int:
    """``S = fmix(seed + GOLDEN)``: the per-seed value of every draw of that seed."""
    return fmix64((int(seed) + GOLDEN) & MASK64)


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
    r = keys_u64 ^ _U64(seed_mix(seed))
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


def _draw_chunks(offsets: np.ndarray, values: np.ndarray, keys: np.ndarray,
                 thr: np.ndarray, seed: int):
    """Yield (row_start, row_end, drawn-per-element bool) over row chunks."""
    n = offsets.size - 1
    s = _U64(seed_mix(seed))
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
        keys_all = key_array(key_hash, len(entry_ids))
        out, pos = [], 0
        for ch in entry_ids.chunks:
            out.append(entry_draws(ch, keys_all[pos:pos + len(ch)], probs, seed))
            pos += len(ch)
        return np.concatenate(out) if out else np.zeros(0, dtype=bool)
    offsets, values = list_parts(entry_ids)
    n = offsets.size - 1
    keys = key_array(key_hash, n)
    thr = draw_thresholds(probs)
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
    """The per-entry integer thresholds ``ceil(p * 2**53)`` (uint64) of the draws, from
    validated ``probs``: ``(h >> 11) < T  <=>  u < p``, exactly.  Pass them as
    ``thresholds=`` to :func:`keep_mask` / :func:`sample_batch` / :func:`keeps` to reuse
    them across batches or samples."""
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError("probs must be a 1-d vector indexed by entry id")
    if p.size and (np.isnan(p).any() or p.min() < 0 or p.max() > 1):
        raise ValueError("probabilities must lie in [0, 1]")
    return np.ceil(p * 2.0 ** 53).astype(np.uint64)


def keep_mask(entry_ids, key_hash, probs, seed: int, thresholds: np.ndarray | None = None) -> np.ndarray:
    """Boolean keep mask: row kept iff some entry has ``u_e < p_e``; empty/null lists are
    never kept.  ``entry_ids`` may be a (sliced) list array, a chunked array, an
    ``(offsets, values)`` pair or a list of lists; ``key_hash`` has one value per row.
    ``thresholds``: ``draw_thresholds(probs)``, computed once by callers with many batches."""
    thr = draw_thresholds(probs) if thresholds is None else thresholds
    if isinstance(entry_ids, pa.ChunkedArray):
        keys_all = key_array(key_hash, len(entry_ids))
        out, pos = [], 0
        for ch in entry_ids.chunks:
            out.append(keep_mask(ch, keys_all[pos:pos + len(ch)], probs, seed, thr))
            pos += len(ch)
        return np.concatenate(out) if out else np.zeros(0, dtype=bool)
    offsets, values = list_parts(entry_ids)
    n = offsets.size - 1
    keys = key_array(key_hash, n)
    out = np.empty(n, dtype=bool)
    for r0, r1, o, drawn in _draw_chunks(offsets, values, keys, thr, seed):
        out[r0:r1] = _row_any(drawn, o)
    return out


def keeps(entry_ids, key_hash: int, probs, seed: int, thresholds=None) -> bool:
    """The keep decision for one sample: ``keep_mask`` of a one-row batch, in pure Python.

    ``entry_ids``: the pair's entry ids (an iterable of ints; empty: never kept);
    ``key_hash``: its ``pair_key_hash`` (signed or unsigned 64-bit int).  ``thresholds``:
    ``draw_thresholds(probs)`` (or its ``.tolist()``, fastest), computed once by callers
    that decide many samples; ``probs`` is then not read.  An id outside
    ``[0, len(probs))`` raises ``IndexError`` as in :func:`keep_mask`."""
    thr = draw_thresholds(probs) if thresholds is None else thresholds
    r = fmix64((int(key_hash) & MASK64) ^ seed_mix(seed))
    for e in entry_ids:
        e = int(e)
        if e < 0:
            raise IndexError("entry id %d < 0" % e)
        if (fmix64((r + (e + 1) * ENTRY_MULT) & MASK64) >> 11) < thr[e]:
            return True
    return False


ORDER_SALT = 0x6F72646572000000    # "order": the curated order's hash differs from the draws'


def order_keys(key_hash, seed: int) -> np.ndarray:
    """The curated set's row order: rows sorted by ``fmix(key ^ mix(seed ^ ORDER_SALT))``
    (uint64), a seeded shuffle that depends only on each row's key (not on the file or
    partition the row sits in), independent of the keep draws."""
    keys = key_array(key_hash, len(key_hash))
    return _row_mix(keys, int(seed) ^ ORDER_SALT)


def sample_batch(batch, probs, seed: int, *, entry_ids_column: str = "entry_ids",
                 key_column: str = "key_hash", thresholds: np.ndarray | None = None, entry_ids=None):
    """The kept rows of a ``pa.RecordBatch`` (or ``pa.Table``), columns unchanged.

    Uses the ``key_hash`` column; when it is absent the key is computed from ``url`` and
    ``text`` (slower). ``entry_ids``: the lists drawn with instead of the column (worldwide: the
    rows' global ids, ``LanguageSpace.globalize``; the rows keep their own column)."""
    names = batch.schema.names
    if key_column in names:
        keys = batch.column(key_column)
    else:
        keys = key_hashes(batch.column("url"), batch.column("text"))
    lists = batch.column(entry_ids_column) if entry_ids is None else entry_ids
    mask = keep_mask(lists, keys, probs, seed, thresholds)
    return batch.filter(pa.array(mask, type=pa.bool_()))
