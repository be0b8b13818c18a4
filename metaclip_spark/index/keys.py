"""Numeric sort keys of index rows (docs/index.md): sorting without Arrow string sorts.

- :func:`id_keys`: an image id is 24 lower-case hex digits = 96 bits, i.e. exactly
  (hi = digits 1..16 as uint64 = ``ids.image_keys``, lo = digits 17..24 as uint64 < 2**32), so
  ordering by (hi, lo) orders ids as strings.
- :func:`ranks`: a string column as the rank of each value among its sorted distinct values
  (byte order, as Arrow and Spark compare strings), nulls 0 (nulls first).
- :func:`nullable`: an int column as (valid flag, value) keys (nulls first).
- :func:`sort_order`: the stable lexicographic order of rows by such keys: a sort by the first
  key, then only the runs of rows still tied are sorted by the next key (a key can be a function
  of the tied rows, for string tie-breakers computed on those rows only).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from metaclip_spark.index.ids import ID_CHARS

__all__ = ["id_keys", "ranks", "nullable", "sort_order", "mix", "starts", "group_of"]

_HEX = np.full(256, 255, dtype=np.uint8)
for _i, _c in enumerate(b"0123456789abcdef"):
    _HEX[_c] = _i


def _array(values) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    return values


def id_keys(image_ids) -> tuple[np.ndarray, np.ndarray]:
    """(hi uint64, lo uint64) of every image id (24 lower-case hex characters, non-null)."""
    a = _array(image_ids)
    if pa.types.is_large_string(a.type) or pa.types.is_dictionary(a.type):
        a = a.cast(pa.string())
    n = len(a)
    if n == 0:
        return np.zeros(0, np.uint64), np.zeros(0, np.uint64)
    if a.null_count:
        raise ValueError("image ids must be non-null")
    offsets = np.frombuffer(a.buffers()[1], dtype=np.int32)[a.offset:a.offset + n + 1]
    if offsets[-1] - offsets[0] != n * ID_CHARS or not (np.diff(offsets) == ID_CHARS).all():
        raise ValueError("image ids must be %d hex characters" % ID_CHARS)
    data = np.frombuffer(a.buffers()[2], dtype=np.uint8)[offsets[0]:offsets[-1]].reshape(n, ID_CHARS)
    digits = _HEX[data]
    if (digits == 255).any():
        raise ValueError("image ids must be lower-case hex")
    packed = (digits[:, 0::2] << 4) | digits[:, 1::2]          # (n, 12) bytes, big-endian
    hi = np.ascontiguousarray(packed[:, :8]).view(">u8").ravel().astype(np.uint64)
    lo = np.ascontiguousarray(packed[:, 8:]).view(">u4").ravel().astype(np.uint64)
    return hi, lo


def ranks(values) -> tuple[np.ndarray, pa.Array]:
    """(rank per row: 1.. in byte order of the distinct values, 0 for nulls; the sorted distinct
    non-null values, so ``values[i] == sorted[rank[i] - 1]``)."""
    if isinstance(values, pa.ChunkedArray) and pa.types.is_dictionary(values.type) and values.num_chunks > 1:
        values = values.unify_dictionaries()
    a = _array(values)
    if pa.types.is_dictionary(a.type) and len(pc.unique(a.dictionary)) != len(a.dictionary):
        a = a.cast(a.type.value_type)
    enc = a if pa.types.is_dictionary(a.type) else pc.dictionary_encode(a)
    dictionary = enc.dictionary
    order = pc.sort_indices(dictionary).to_numpy()
    rank_of = np.empty(len(dictionary) + 1, np.int64)
    rank_of[order] = np.arange(1, len(dictionary) + 1)
    rank_of[len(dictionary)] = 0
    idx = pc.fill_null(enc.indices, len(dictionary)).to_numpy(zero_copy_only=False).astype(np.int64)
    return rank_of[idx], dictionary.take(pa.array(order)).cast(pa.string())


def nullable(values) -> list[np.ndarray]:
    """[valid flag (0 for nulls), value (0 for nulls)] of an integer column: nulls first."""
    a = _array(values)
    if not a.null_count:
        return [a.to_numpy()]
    valid = a.is_valid().to_numpy(zero_copy_only=False).astype(np.int8)
    return [valid, pc.fill_null(a, 0).to_numpy()]


def _sort_runs(rid: np.ndarray, kv: np.ndarray) -> np.ndarray:
    """Stable order of rows by (rid ascending, kv): rid sorted, a non-negative run number."""
    if len(kv) and kv.dtype.kind in "iub":
        lo_v, hi_v = int(kv.min()), int(kv.max())
        span = hi_v - lo_v
        bits = max(1, span.bit_length())
        if int(rid[-1]).bit_length() + bits <= 62:
            packed = (rid.astype(np.int64) << bits) | (kv.astype(np.int64) - lo_v if kv.dtype != np.uint64
                                                        else (kv - np.uint64(lo_v)).astype(np.int64))
            return np.argsort(packed, kind="stable")
    return np.lexsort((kv, rid))


def sort_order(keys: list, groups: int | None = None) -> np.ndarray:
    """Stable row order by ``keys`` (most significant first): numpy arrays, or functions
    ``key(rows, run)`` of the row numbers tied on the keys before (and their run numbers, runs
    contiguous) returning those rows' key (only its order within each run matters).

    ``groups=k``: only the first row of each group of rows equal on ``keys[:k]`` must be right
    (the smallest by the other keys): rows after a group's first tied run are left in any order."""
    first = keys[0]
    n = len(first)
    order = np.argsort(first, kind="stable")
    if n < 2:
        return order
    ks = first[order]
    same = ks[1:] == ks[:-1]
    pos = np.arange(n)
    rid = np.zeros(n, np.int64)
    gstart = None
    if groups == 1:
        gstart = np.concatenate([[True], ~same])
    for level, key in enumerate(keys[1:], 1):
        keep = np.zeros(len(pos), bool)                      # positions still tied with a neighbour
        keep[1:] |= same
        keep[:-1] |= same
        rid = np.concatenate([[0], np.cumsum(~same)])[keep]
        pos = pos[keep]
        if gstart is not None and len(pos):                  # groups: their first run only
            head = np.concatenate([[True], rid[1:] != rid[:-1]])
            keep = gstart[pos[head]][np.cumsum(head) - 1]
            pos, rid = pos[keep], rid[keep]
        if not len(pos):
            break
        sub = order[pos]
        kv = np.asarray(key(sub, rid) if callable(key) else key[sub])
        same_run = rid[1:] == rid[:-1]
        if (kv[1:][same_run] >= kv[:-1][same_run]).all():      # already in order in every run
            kvs = kv
        else:
            so = _sort_runs(rid, kv)
            order[pos] = sub[so]
            kvs = kv[so]
        same = same_run & (kvs[1:] == kvs[:-1])
        if groups is not None and level == groups - 1:       # keys[:groups] done: mark group starts
            gstart = np.ones(n, bool)
            gstart[pos[1:][same]] = False
    return order


def mix(*columns: np.ndarray) -> np.ndarray:
    """A 64-bit hash (uint64) of each row's values of integer ``columns``: rows with equal values
    get equal hashes; sorting by it first groups such rows (other keys then order the ties)."""
    x = np.zeros(len(columns[0]), np.uint64)
    for c in columns:
        x = (x ^ np.asarray(c).astype(np.uint64, copy=False)) * np.uint64(0x9E3779B97F4A7C15)
        x ^= x >> np.uint64(29)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(32)
    return x


def starts(keys: list, order: np.ndarray | None = None) -> np.ndarray:
    """Row numbers (in ``order``) where the values of numeric ``keys`` change."""
    n = len(keys[0])
    if n == 0:
        return np.zeros(0, np.int64)
    change = np.zeros(n, bool)
    change[0] = True
    for k in keys:
        ks = k if order is None else k[order]
        change[1:] |= ks[1:] != ks[:-1]
    return np.flatnonzero(change)


def group_of(starts_: np.ndarray, n: int) -> np.ndarray:
    mark = np.zeros(n, dtype=np.int64)
    mark[starts_] = 1
    return np.cumsum(mark) - 1
