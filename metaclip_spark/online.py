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
"""

from __future__ import annotations

import json
from typing import Any, Iterable, Iterator, Mapping

import numpy as np

from metaclip_spark.steps import balance, draws

__all__ = ["OnlineBalancer", "BalancedIterable", "epoch_seed"]

EPOCH_MULT = 0xD1B54A32D192ED03   # odd: (epoch + 1) * EPOCH_MULT is injective mod 2**64


def epoch_seed(seed: int, epoch: int) -> int:
    """Seed of one epoch: ``fmix((seed + (epoch + 1) * 0xD1B54A32D192ED03) mod 2**64)``
    (fmix = the splitmix64 finaliser of :mod:`metaclip_spark.steps.draws`).  Injective in
    the epoch for a fixed seed, so two epochs never share a draw."""
    return draws.fmix64(int(seed) + (int(epoch) + 1) * EPOCH_MULT)


class OnlineBalancer:
    """Per-epoch MetaCLIP balancing: ``p_e = t / max(count_e, t)``, a pair is kept in
    epoch k iff some entry's draw under ``epoch_seed(seed, k)`` is below ``p_e``."""

    def __init__(self, entry_counts, t: float, seed: int = 0, *,
                 entry_ids_key: str = "entry_ids", key_hash_key: str = "key_hash",
                 url_key: str = "url", text_key: str = "text"):
        self.t = float(t)
        self.seed = int(seed)
        self.probs = balance.probabilities(entry_counts, t)
        self._thr = draws.draw_thresholds(self.probs)
        self._thr_list = self._thr.tolist()          # Python ints for the scalar path
        self.entry_ids_key, self.key_hash_key = entry_ids_key, key_hash_key
        self.url_key, self.text_key = url_key, text_key

    # -- seeds ----------------------------------------------------------------------
    def epoch_seed(self, epoch: int) -> int:
        return epoch_seed(self.seed, epoch)

    # -- one sample -------------------------------------------------------------------
    def keep(self, key, entry_ids: Iterable[int], epoch: int) -> bool:
        """Whether the pair is used in ``epoch``.  ``key`` is the pair's ``key_hash``
        (int) or a ``(url, text)`` tuple.  Same answer as the vectorised kernel."""
        if isinstance(key, tuple):
            key = draws.pair_key_hash(key[0], key[1])
        return draws.keeps(entry_ids, key, self.probs, self.epoch_seed(epoch), self._thr_list)

    def keep_probability(self, entry_ids: Iterable[int]) -> float:
        """``1 - prod (1 - p_e)``: the chance that the pair is used in a given epoch."""
        q = 1.0
        for e in entry_ids:
            q *= 1.0 - float(self.probs[int(e)])
        return 1.0 - q

    # -- a whole pool ---------------------------------------------------------------
    def epoch_mask(self, pool_entry_ids, key_hashes, epoch: int) -> np.ndarray:
        """Boolean mask over the pool rows for ``epoch`` (vectorised kernel)."""
        return draws.keep_mask(pool_entry_ids, key_hashes, self.probs, self.epoch_seed(epoch), self._thr)

    def epoch_indices(self, pool_entry_ids, key_hashes, epoch: int) -> np.ndarray:
        """Indices (int64, ascending) of the pool rows used in ``epoch``."""
        return np.flatnonzero(self.epoch_mask(pool_entry_ids, key_hashes, epoch))

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
            if self.keep(self._sample_key(s), self._sample_entries(s), epoch):
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
