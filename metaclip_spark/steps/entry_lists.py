"""Entry-id lists and key hashes as the balancing kernels take them (docs/semantics.md section 6).

Entry-id lists may be ``pa.ListArray``/``pa.LargeListArray`` (sliced arrays with a
non-zero offset are fine), ``pa.ChunkedArray`` of those, an ``(offsets, values)`` pair of
numpy arrays, or a Python list of lists.  A null list is treated as an empty list: the
row is never kept (keep probability 0).  A null entry id inside a list is an error
(``ValueError``), and so is an id outside ``[0, len(probs))`` (``IndexError``).
Key hashes must be non-null.

Used by :mod:`metaclip_spark.steps.balance` (probabilities, expected sizes) and
:mod:`metaclip_spark.steps.draws` (the seeded draws).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["MASK64", "list_parts", "iter_lists", "key_array"]

MASK64 = (1 << 64) - 1

_UNSIGNED = {np.dtype(np.int8): np.uint8, np.dtype(np.int16): np.uint16,
             np.dtype(np.int32): np.uint32, np.dtype(np.int64): np.uint64}


def list_parts(entry_ids) -> tuple[np.ndarray, np.ndarray]:
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


def iter_lists(entry_ids):
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


def key_array(key_hash, n: int) -> np.ndarray:
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
        return np.array([int(x) & MASK64 for x in k], dtype=np.uint64)
    raise TypeError("key_hash must be an integer array, got %s" % k.dtype)

