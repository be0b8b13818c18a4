"""Identities of the image index (docs/semantics.md section 9): image id, text hash, bucket,
the image's draw key and the seeded text choice. One copy of each rule; vectorised forms
(numpy / Arrow) and one-value forms give the same values (tests/index/test_ids.py).

- ``image_id(url) = sha224(url without TAB and space, UTF-8).hexdigest()[:24]`` (MetaCLIP's
  uuid, metaclip/curation/parse_wat.py ``gen_uuid``).
- ``text_hash(image_id, text) = pair_key_hash(image_id, text)`` (steps/draws.py: xxh3-64 of the
  length-prefixed UTF-8 bytes, as a signed int64): seed-independent; the index keeps the full
  text of the ``max_texts_per_image`` texts of an image with the smallest text hashes (signed
  int64 order) and remembers every other text by this hash alone.
- ``image_key(image_id)`` = the first 16 hex digits of the id as an unsigned 64-bit integer
  (already a uniform hash): the key of the image's draws, one per (seed, image, entry):
  ``draws.keep_mask(entry_ids, image_key, p, seed)``.
- ``bucket(image_id, B)`` = hex digits 17..24 of the id as an integer, modulo B (other digits
  than the draw key's).
- ``choice_key(text_hash, seed) = fmix(text_hash ^ fmix(seed ^ CHOICE_SALT + GOLDEN))``: the
  image's text is the one with the smallest choice key among its stored texts (a uniform
  choice per seed that stays put when other texts join later).
"""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa

from metaclip_spark.steps.draws import _row_mix, fmix64, key_hashes, pair_key_hash, seed_mix
from metaclip_spark.steps.entry_lists import MASK64

__all__ = ["ID_CHARS", "CHOICE_SALT", "image_id", "image_ids", "text_hash", "text_hashes", "image_key",
           "image_keys", "bucket", "buckets", "bucket_sql", "choice_key", "choice_keys"]

ID_CHARS = 24
CHOICE_SALT = 0x63686F6963650000          # "choice": the text choice's hash differs from the draws'

_HEX = np.full(256, 255, dtype=np.uint8)
for _i, _c in enumerate(b"0123456789abcdef"):
    _HEX[_c] = _i


def image_id(url: str) -> str:
    """MetaCLIP's uuid of an image URL (URLs that differ only by TAB or space are one image)."""
    clean = url.replace("\t", "").replace(" ", "")
    return hashlib.sha224(clean.encode("utf-8", "surrogatepass")).hexdigest()[:ID_CHARS]


def image_ids(urls) -> pa.Array:
    """``image_id`` of every URL of a string column (Arrow array or sequence) -> string array."""
    values = urls.to_pylist() if isinstance(urls, (pa.Array, pa.ChunkedArray)) else list(urls)
    sha = hashlib.sha224
    return pa.array([sha(u.replace("\t", "").replace(" ", "").encode("utf-8", "surrogatepass")).hexdigest()[:ID_CHARS]
                     for u in values], type=pa.string())


def text_hash(image_id_: str, text: str) -> int:
    """The seed-independent 64-bit hash of one of an image's texts (signed int64 value)."""
    return pair_key_hash(image_id_, text)


def text_hashes(ids, texts) -> np.ndarray:
    """``text_hash`` per row of two string columns -> int64 array."""
    return key_hashes(ids, texts)


def _hex_digits(ids, start: int, count: int) -> np.ndarray:
    """Hex digits [start, start + count) of every id (24 lower-case hex characters) as uint64."""
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks()
    if not isinstance(ids, pa.Array):
        ids = pa.array(list(ids), type=pa.string())
    n = len(ids)
    if n == 0:
        return np.zeros(0, dtype=np.uint64)
    if ids.null_count:
        raise ValueError("image ids must be non-null")
    ids = ids.cast(pa.string())
    offsets = np.frombuffer(ids.buffers()[1], dtype=np.int32)[ids.offset:ids.offset + n + 1]
    if not (np.diff(offsets) == ID_CHARS).all():
        raise ValueError("image ids must be %d hex characters" % ID_CHARS)
    data = np.frombuffer(ids.buffers()[2], dtype=np.uint8)[offsets[0]:offsets[-1]].reshape(n, ID_CHARS)
    digits = _HEX[data[:, start:start + count]]
    if (digits == 255).any():
        raise ValueError("image ids must be lower-case hex")
    out = np.zeros(n, dtype=np.uint64)
    for k in range(count):
        out <<= np.uint64(4)
        out |= digits[:, k].astype(np.uint64)
    return out


def image_key(image_id_: str) -> int:
    """The image's draw key (unsigned 64-bit)."""
    return int(image_id_[:16], 16)


def image_keys(ids) -> np.ndarray:
    """``image_key`` of every id -> uint64 array."""
    return _hex_digits(ids, 0, 16)


def bucket(image_id_: str, n_buckets: int) -> int:
    """The index bucket of an image."""
    return int(image_id_[16:24], 16) % n_buckets


def buckets(ids, n_buckets: int) -> np.ndarray:
    """``bucket`` of every id -> int64 array."""
    return (_hex_digits(ids, 16, 8) % np.uint64(n_buckets)).astype(np.int64)


def bucket_sql(column: str, n_buckets: int) -> str:
    """``bucket`` as a Spark SQL expression over a string column (JVM, no Python)."""
    return "CAST(pmod(CAST(conv(substring(%s, 17, 8), 16, 10) AS BIGINT), %d) AS INT)" % (column, int(n_buckets))


def choice_key(text_hash_: int, seed: int) -> int:
    """The seeded choice key of one text (unsigned 64-bit)."""
    return fmix64(((int(text_hash_) & MASK64) ^ seed_mix((int(seed) ^ CHOICE_SALT) & MASK64)))


def choice_keys(text_hashes_, seed: int) -> np.ndarray:
    """``choice_key`` of every text hash (int64 or uint64 array) -> uint64 array."""
    k = np.asarray(text_hashes_)
    k = k.view(np.uint64) if k.dtype == np.int64 else k.astype(np.uint64)
    return _row_mix(k, (int(seed) ^ CHOICE_SALT) & MASK64)
