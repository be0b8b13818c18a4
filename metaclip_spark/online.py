"""Online balancing for training-time data loaders (MetaCLIP paper, Table 6).

Instead of fixing one balanced subset offline, the loader reads the matched pool (with
its ``entry_ids`` and ``key_hash`` columns) and re-draws the head entries every epoch:
epoch ``k`` keeps exactly the pairs that ``draws.keep_mask`` keeps with the seed
``epoch_seed(seed, k)``.  Tail pairs (any entry with ``count <= t``) are kept in every
epoch; head-only pairs rotate, so over several epochs the model sees more distinct
head pairs than one offline sample holds.  Draws are deterministic, so every worker,
restart and re-run agrees on an epoch's subset without communication.

``entry_counts`` must be the per-entry counts of the data the loader actually reads
(the stage-1 count vector, or a recount after image download if many downloads failed).

Usage (no torch import here; plug it into a PyTorch ``IterableDataset`` or a webdataset
pipeline)::

    import numpy as np, pyarrow.parquet as pq
    from metaclip_spark.online import OnlineBalancer

    counts = pq.read_table("counts/").sort_by("entry_id")["count"].to_numpy()
    balancer = OnlineBalancer(counts, t=20_000, seed=0)

    # 1) index-based: the pool's rows to use in this epoch
    pool = pq.read_table("pool/", columns=["entry_ids", "key_hash"])
    idx = balancer.epoch_indices(pool["entry_ids"], pool["key_hash"], epoch=3)

    # 2) streaming: samples are dicts with 'entry_ids' and 'key_hash' (or 'url' + 'text')
    class Balanced(torch.utils.data.IterableDataset):
        def __init__(self, source):
            self.source, self.epoch = source, 0
        def set_epoch(self, epoch):
            self.epoch = epoch
        def __iter__(self):
            return balancer.filter_stream(iter(self.source), self.epoch)

    # 3) webdataset: a pipeline stage is a callable iterator -> iterator
    #    wds.DataPipeline(..., wds.decode(), balancer.stage(epoch), wds.to_tuple("jpg", "txt"))

An image index release (docs/index.md) is balanced image by image with
:class:`OnlineIndexBalancer`: it loads the release's ``entry_counts`` once (``count``, the
de-duplicated counts of section 9), and per image chooses among its stored texts the one with
the smallest ``ids.choice_key(text_hash, seed)`` and keeps the image iff
``draws.keeps(entry_ids, ids.image_key(image_id), p, seed)``: with ``epoch=None`` exactly the
images (and texts) of ``balance --index --dedup image`` with that seed (the vectorised path is
``metaclip_spark.index.select``); with an epoch, ``epoch_seed(seed, epoch)`` re-draws both::

    from metaclip_spark.online import OnlineIndexBalancer

    bal = OnlineIndexBalancer("s3://bucket/index", t=20_000, seed=0)     # CURRENT, or release=N
    for sample in bal.iter_kept(buckets=range(worker, bal.n_buckets, workers)):
        sample["url"], sample["text"], sample["image_id"], sample["entry_ids"]
"""

from __future__ import annotations

import json
from typing import Any, Iterable, Iterator, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from metaclip_spark.index import ids, layout
from metaclip_spark.index import schema as index_schema
from metaclip_spark.run import outputs
from metaclip_spark.run.pools import read_counts
from metaclip_spark.steps import balance, draws

__all__ = ["OnlineBalancer", "BalancedIterable", "epoch_seed", "OnlineIndexBalancer", "release_dir",
           "release_counts", "iter_images"]

EPOCH_MULT = 0xD1B54A32D192ED03   # odd: (epoch + 1) * EPOCH_MULT is injective mod 2**64


def epoch_seed(seed: int, epoch: int) -> int:
    """Seed of one epoch: ``fmix((seed + (epoch + 1) * 0xD1B54A32D192ED03) mod 2**64)``
    (fmix = the splitmix64 finaliser of :mod:`metaclip_spark.steps.draws`).  Injective in
    the epoch for a fixed seed, so two epochs never share a draw."""
    return draws.fmix64(int(seed) + (int(epoch) + 1) * EPOCH_MULT)


def _probabilities(counts, t: float, space):
    """p over global ids: English (``space`` None or only en) ``t / max(c, t)``; worldwide each
    language at its t (``balance.language_ts`` with en's t = ``t``)."""
    if space is None or space.languages == ("en",):
        return balance.probabilities(counts, t), {"en": float(t)}
    ts = balance.language_ts(counts, space, float(t))
    return balance.probabilities(counts, balance.t_vector(ts, space)), ts


class OnlineBalancer:
    """Per-epoch MetaCLIP balancing: ``p_e = t / max(count_e, t)``, a pair is kept in
    epoch k iff some entry's draw under ``epoch_seed(seed, k)`` is below ``p_e``.

    Worldwide: ``entry_counts`` over the global ids of ``space`` (``run.pools.read_counts``),
    ``t`` is en's and every other language's t follows (SPEC section 10); samples carry ``lang``
    (``lang_key``; absent: en) and their language's local ``entry_ids``."""

    def __init__(self, entry_counts, t: float, seed: int = 0, *,
                 entry_ids_key: str = "entry_ids", key_hash_key: str = "key_hash",
                 url_key: str = "url", text_key: str = "text", space=None, lang_key: str = "lang"):
        self.t = float(t)
        self.seed = int(seed)
        self.space, self.lang_key = space, lang_key
        self.probs, self.ts = _probabilities(entry_counts, t, space)
        self._thr = draws.draw_thresholds(self.probs)
        self._thr_list = self._thr.tolist()          # Python ints for the scalar path
        self.entry_ids_key, self.key_hash_key = entry_ids_key, key_hash_key
        self.url_key, self.text_key = url_key, text_key

    # -- seeds ----------------------------------------------------------------------
    def epoch_seed(self, epoch: int) -> int:
        return epoch_seed(self.seed, epoch)

    # -- one sample -------------------------------------------------------------------
    def keep(self, key, entry_ids: Iterable[int], epoch: int, lang: str | None = None) -> bool:
        """Whether the pair is used in ``epoch``.  ``key`` is the pair's ``key_hash``
        (int) or a ``(url, text)`` tuple; ``lang``: the entry ids' language (worldwide; None: en).
        Same answer as the vectorised kernel."""
        if isinstance(key, tuple):
            key = draws.pair_key_hash(key[0], key[1])
        return draws.keeps(_globalised(self.space, entry_ids, lang), key, self.probs, self.epoch_seed(epoch),
                           self._thr_list)

    def keep_probability(self, entry_ids: Iterable[int], lang: str | None = None) -> float:
        """``1 - prod (1 - p_e)``: the chance that the pair is used in a given epoch."""
        q = 1.0
        for e in _globalised(self.space, entry_ids, lang):
            q *= 1.0 - float(self.probs[int(e)])
        return 1.0 - q

    # -- a whole pool ---------------------------------------------------------------
    def epoch_mask(self, pool_entry_ids, key_hashes, epoch: int, langs=None) -> np.ndarray:
        """Boolean mask over the pool rows for ``epoch`` (vectorised kernel); worldwide ``langs``:
        the rows' ``lang`` column (their ``entry_ids`` are local to it)."""
        if self.space is not None and langs is not None:
            pool_entry_ids = self.space.globalize(langs, pool_entry_ids)
        return draws.keep_mask(pool_entry_ids, key_hashes, self.probs, self.epoch_seed(epoch), self._thr)

    def epoch_indices(self, pool_entry_ids, key_hashes, epoch: int, langs=None) -> np.ndarray:
        """Indices (int64, ascending) of the pool rows used in ``epoch``."""
        return np.flatnonzero(self.epoch_mask(pool_entry_ids, key_hashes, epoch, langs))

    # -- streams --------------------------------------------------------------------
    def _sample_key(self, sample: Mapping[str, Any]) -> int:
        k = sample.get(self.key_hash_key)
        if k is not None:
            if isinstance(k, (bytes, str)):
                k = int(k)
            return int(k)
        url, text = sample[self.url_key], sample[self.text_key]
        if isinstance(url, bytes):
            url = url.decode("utf-8")
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        return draws.pair_key_hash(url, text)

    def _sample_entries(self, sample: Mapping[str, Any]):
        ids = sample[self.entry_ids_key]
        if isinstance(ids, (bytes, str)):                 # e.g. a webdataset .json field
            ids = json.loads(ids)
        return ids

    def filter_stream(self, samples: Iterable[Mapping[str, Any]], epoch: int) -> Iterator:
        """Yield the samples (dicts with ``entry_ids`` and ``key_hash`` or ``url`` +
        ``text``) that are used in ``epoch``, in order, unchanged."""
        for s in samples:
            if self.keep(self._sample_key(s), self._sample_entries(s), epoch, s.get(self.lang_key)):
                yield s

    def stage(self, epoch: int):
        """A pipeline stage ``iterator -> iterator`` (webdataset style) for ``epoch``."""
        def _stage(samples):
            return self.filter_stream(samples, epoch)
        return _stage


class BalancedIterable:
    """Wrap an iterable of samples; iterating yields the samples kept in the current
    epoch.  Call ``set_epoch`` between epochs (mirrors ``DistributedSampler``)."""

    def __init__(self, source: Iterable[Mapping[str, Any]], balancer: OnlineBalancer, epoch: int = 0):
        self.source, self.balancer, self.epoch = source, balancer, int(epoch)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator:
        return self.balancer.filter_stream(iter(self.source), self.epoch)


def _globalised(space, entry_ids, lang):
    """Local ``entry_ids`` of ``lang`` as global ids of ``space`` (English: unchanged)."""
    if space is None or len(space.languages) == 1:
        return entry_ids
    off = space.offset(lang or "en")
    return [int(e) + off for e in entry_ids]


# -- an image index release, image by image -------------------------------------------------
INDEX_COLUMNS = ["image_id", "text_hash", "text", "url", "entry_ids", "lang"]


def release_dir(path: str, release: int | None = None) -> str:
    """The release folder: ``path`` itself when it is one (has ``entry_counts/``) and no
    release is named, else ``path/releases/NNNNN`` of ``release`` or of ``path/CURRENT``."""
    if release is None and outputs.exists(outputs.join(path, "entry_counts")):
        return path
    if release is None:
        release = layout.current(path)
        if release is None:
            raise FileNotFoundError("%s: neither an index release nor an index with a %s" % (path, index_schema.CURRENT))
    return layout.release_dir(path, int(release))


def release_counts(rdir: str, column: str = "count", with_space: bool = False):
    """The release's entry counts (``count``: section 9; ``occurrences``: section 5) as an
    int64 vector indexed by global id (English: entry id; ids absent from the file count 0);
    ``with_space``: (vector, LanguageSpace) (``run.pools.read_counts``)."""
    files = outputs.list_files(outputs.join(rdir, "entry_counts"), ".parquet")
    t = outputs.read_tables(files) if files else None
    if t is None:
        raise FileNotFoundError("no entry_counts/*.parquet in index release %s" % rdir)
    got = read_counts(t, column)
    return (got.vector, got.space) if with_space else got.vector


bucket_files = layout.bucket_files           # the release's bucket files, in bucket order


def iter_images(files: Iterable[str], columns=INDEX_COLUMNS, batch_size: int = 8192) -> Iterator:
    """``(image_id, rows)`` of every image of the bucket files, in file order: each file is read
    batch by batch and consecutive rows of one image (files are sorted by image_id) grouped,
    across batch boundaries; ``rows`` are dicts of ``columns``."""
    for uri in files:
        fs, path = outputs.resolve(uri)
        with fs.open_input_file(path) as fh:
            current, rows = None, []
            f = pq.ParquetFile(fh)
            names = f.schema_arrow.names
            for batch in f.iter_batches(batch_size=batch_size, columns=[c for c in columns if c in names]):
                if "lang" in columns and "lang" not in batch.schema.names:    # written before worldwide mode
                    batch = batch.append_column("lang", pa.array(["en"] * batch.num_rows, pa.string()))
                for row in batch.to_pylist():
                    if row["image_id"] != current:
                        if rows:
                            yield current, rows
                        current, rows = row["image_id"], []
                    rows.append(row)
            if rows:
                yield current, rows


class OnlineIndexBalancer:
    """Balancing of an image index release, one image at a time (dedup ``image``).

    ``path``: a release folder, or an index folder with ``release`` (None: its CURRENT).
    ``entry_counts``: counts to use instead of the release's ``count`` column (e.g. a recount
    after download). ``epoch=None`` in the methods uses ``seed`` (the offline selection);
    an epoch uses ``epoch_seed(seed, epoch)`` for the text choice and the draws."""

    def __init__(self, path: str, t: float, seed: int = 0, release: int | None = None, entry_counts=None):
        self.release_dir = release_dir(path, release)
        self.t, self.seed = float(t), int(seed)
        counts, self.space = release_counts(self.release_dir, with_space=True)
        if entry_counts is not None:
            counts = entry_counts
        self.probs, self.ts = _probabilities(counts, t, self.space)
        self._thr_list = draws.draw_thresholds(self.probs).tolist()
        self.files = bucket_files(self.release_dir)
        self.n_buckets = len(self.files)

    def seed_of(self, epoch: int | None = None) -> int:
        return self.seed if epoch is None else epoch_seed(self.seed, epoch)

    def choose(self, rows: Iterable[Mapping[str, Any]], epoch: int | None = None):
        """The image's text: of its rows with a stored text (``text`` not None), the one with
        the smallest ``ids.choice_key(text_hash, seed)``; None when no text is stored."""
        s = self.seed_of(epoch)
        best, best_key = None, None
        for r in rows:
            if r.get("text") is None:
                continue
            k = ids.choice_key(r["text_hash"], s)
            if best_key is None or k < best_key:
                best, best_key = r, k
        return best

    def keep(self, image_id: str, entry_ids: Iterable[int], epoch: int | None = None, lang: str | None = None) -> bool:
        """Whether the image is kept with this text's entry ids (local to ``lang``; None: en): one
        draw per (seed, image, global id)."""
        return draws.keeps(_globalised(self.space, entry_ids, lang), ids.image_key(image_id), self.probs,
                           self.seed_of(epoch), self._thr_list)

    def keep_probability(self, entry_ids: Iterable[int], lang: str | None = None) -> float:
        """``1 - prod (1 - p_e)`` over the chosen text's entry ids."""
        q = 1.0
        for e in _globalised(self.space, entry_ids, lang):
            q *= 1.0 - float(self.probs[int(e)])
        return 1.0 - q

    def decide(self, rows: Iterable[Mapping[str, Any]], epoch: int | None = None):
        """The image's chosen row if the image is kept, else None (``rows``: the image's index
        rows, with ``image_id``, ``text_hash``, ``text`` and ``entry_ids``)."""
        row = self.choose(rows, epoch)
        if row is None or not self.keep(row["image_id"], row["entry_ids"] or (), epoch, row.get("lang")):
            return None
        return row

    def iter_kept(self, epoch: int | None = None, buckets: Iterable[int] | None = None,
                  batch_size: int = 8192) -> Iterator[dict]:
        """The kept images of the release (or of the ``buckets`` given, e.g. one worker's
        share), one by one in bucket and image id order: dicts with ``url`` (as stored: the
        url of the text's first occurrence), ``text``, ``image_id`` and ``entry_ids``."""
        files = self.files if buckets is None else [self.files[int(b)] for b in buckets]
        for _, rows in iter_images(files, batch_size=batch_size):
            row = self.decide(rows, epoch)
            if row is not None:
                yield {"url": row["url"], "text": row["text"], "image_id": row["image_id"],
                       "entry_ids": row["entry_ids"], "lang": row.get("lang") or "en"}
