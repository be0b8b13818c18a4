"""Part 2 of MetaCLIP curation: balancing (semantics section 6). Spark-free numpy/Arrow kernels.

Every pool pair matched a set S of metadata entries.  Entry ``e`` is *drawn* with
probability ``p_e = t / max(count_e, t)`` and the pair is kept iff at least one of its
entries is drawn, i.e. with probability ``1 - prod_{e in S} (1 - p_e)``.

This module: the probabilities, the choice of t (a tail share, a target size; worldwide one t
per language, SPEC section 10), the expected curated size and the statistics. The seeded draws
are in :mod:`metaclip_spark.steps.draws`, the forms of entry-id lists in ``steps.entry_lists``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np
import pyarrow as pa

from metaclip_spark.steps.entry_lists import iter_lists, list_parts

if TYPE_CHECKING:                                   # annotation only: steps never import the config
    from metaclip_spark.run.config import BalanceConfig

__all__ = [
    "probabilities", "tail_share", "solve_t_for_tail_share", "log_miss", "keep_probability",
    "expected_size", "expected_sizes", "PoolSizeModel", "solve_t_for_target_size",
    "BalanceSummary", "p_to_t", "t_to_p", "t_vector", "language_ts", "choose_ts", "language_stats",
]


# --- probabilities and the choice of t ---------------------------------------------------

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


def probabilities(counts, t) -> np.ndarray:
    """``p_e = t / max(count_e, t)`` as float64, one slot per entry. ``t``: one number, or one per
    entry (worldwide: :func:`t_vector`; a language's t may be 0, see :func:`p_to_t`, and then its
    entries with count > 0 get p = 0, those with count 0 get 1).

    Tail entries (``count_e <= t``) get exactly 1.0, head entries exactly ``t / count_e``.
    Zero-count entries fall under the same formula and get 1.0: they never occur in the
    pool the counts came from, so their value cannot change that pool's sample, and if the
    probabilities are applied to other data (another crawl, a sample, an online loader)
    an entry that was never seen is by definition in the tail and must not be
    down-sampled."""
    c = _counts(counts)
    if np.ndim(t):
        tv = np.asarray(t, np.float64)
        if tv.shape != c.shape or not np.all(np.isfinite(tv)) or (tv.size and tv.min() < 0):
            raise ValueError("a t vector needs one finite t >= 0 per entry")
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(c > 0, tv / np.maximum(c.astype(np.float64), tv), 1.0)
    t = _check_t(t)
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


# --- expected size and t from a target size ---------------------------------------------

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
    """Per-row ``1 - prod_{e in S} (1 - p_e)`` (0 for an empty or null list) as ``-expm1(sum
    log1p(-p_e))``; ``log_q``: ``log_miss(probs)``, kept by callers across batches."""
    if log_q is None:
        log_q = log_miss(probs)
    if isinstance(entry_ids, pa.ChunkedArray):
        parts = [keep_probability(c, None, log_q) for c in entry_ids.chunks]
        return np.concatenate(parts) if parts else np.zeros(0)
    offsets, values = list_parts(entry_ids)
    return -np.expm1(_row_sum(log_q[values], offsets))


def expected_size(entry_id_arrays, probs) -> float:
    """Expected curated size ``sum_pairs 1 - prod (1 - p_e)`` over one list array, a
    chunked array, or an iterable of list arrays (one pass; distributed use: each task
    returns its partial sum, the driver adds them)."""
    log_q = log_miss(probs)
    return float(sum(float(keep_probability(a, None, log_q).sum()) for a in iter_lists(entry_id_arrays)))


def expected_sizes(entry_id_arrays, counts, ts) -> np.ndarray:
    """Expected curated size for each threshold in ``ts``, in one pass over the data
    (distributed use: each task returns its vector, the driver adds them; the driver
    then brackets the target on a grid and refines with a second grid if needed)."""
    c = _counts(counts)
    ts = np.atleast_1d(np.asarray(ts, dtype=np.float64))
    log_qs = [log_miss(probabilities(c, t)) for t in ts]
    out = np.zeros(ts.size)
    for a in iter_lists(entry_id_arrays):
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

    def __init__(self, entry_id_arrays, counts, scale: float = 1.0, weights=None):
        """``weights``: one array per list array, one weight per row (e.g. the occurrences of an
        image index's rows, for E(t) without de-duplication); None: every row weighs 1."""
        c = _counts(counts).astype(np.float64)
        offs, vals, ids = [np.zeros(1, dtype=np.int64)], [], []
        base = 0
        for a in iter_lists(entry_id_arrays):
            o, v = list_parts(a)
            vals.append(c[v])
            ids.append(v)
            offs.append(o[1:].astype(np.int64) + base)
            base += int(o[-1])
        self.offsets = np.concatenate(offs)
        self.elem_counts = np.concatenate(vals) if vals else np.zeros(0)
        self.elem_ids = np.concatenate(ids) if ids else np.zeros(0, np.int32)    # for a t vector
        if self.elem_counts.size and self.elem_counts.min() <= 0:
            raise ValueError("an entry id in the pool has count 0: counts and pool disagree")
        self.scale = float(scale)
        self.weights = None if weights is None else np.concatenate([np.asarray(w, np.float64) for w in weights])
        self.n_rows = self.offsets.size - 1
        self.n_nonempty = int(np.count_nonzero(np.diff(self.offsets)))
        self.max_count = float(self.elem_counts.max()) if self.elem_counts.size else 0.0

    def expected_size(self, t) -> float:
        """E(t); ``t`` one number or one per entry id (worldwide: ``t_vector``)."""
        t = np.asarray(t, np.float64)[self.elem_ids] if np.ndim(t) else _check_t(t)
        with np.errstate(divide="ignore"):
            lq = np.log1p(-(t / np.maximum(self.elem_counts, t)))
        keep = -np.expm1(_row_sum(lq, self.offsets))
        return self.scale * float(keep.sum() if self.weights is None else (keep * self.weights).sum())

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


# --- summary ---------------------------------------------------------------------------

@dataclass(frozen=True)
class BalanceSummary:
    """Statistics of a count vector at threshold t (docs/semantics.md sections 6 and 7).

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


def choose_t(b: "BalanceConfig", counts, model) -> tuple[float, str]:
    """t and where it came from, for a balance config section ``b`` (run/config.BalanceConfig):
    ``b.t``, else solved from ``b.tail_share`` or ``b.target_size`` (``model()``: the size model
    E(t), built only when needed), else ``b.default_t``."""
    if b.t is not None:
        return float(b.t), "t"
    if b.tail_share is not None:
        return solve_t_for_tail_share(counts, b.tail_share), "tail_share"
    if b.target_size is not None:
        return solve_t_for_target_size(counts, model(), b.target_size), "target_size"
    return float(b.default_t), "default"


# --- worldwide: one t per language (SPEC section 10; MetaCLIP 2's t_to_p / p_to_t) ------

def t_to_p(counts, t: float) -> float:
    """MetaCLIP 2's ``t_to_p``: a language's tail share at t, ``sum_{c_e < t} c_e / sum_e c_e``
    (:func:`tail_share`; 0.0 for a language without matches)."""
    return tail_share(counts, t)


def _share_curve(counts):
    """(counts sorted ascending, zeros included; their cumulative share, None without matches)."""
    c = np.sort(_counts(counts))
    total = int(c.sum())
    return c, (np.cumsum(c) / total if total else None)


def _t_at(curve, p: float) -> float:
    c, share = curve
    return float(c[int(np.argmin(np.abs(share - p)))])     # argmin: the first index on ties


def p_to_t(counts, p: float) -> float:
    """MetaCLIP 2's ``p_to_t``: sort the counts ascending (zeros included), take their cumulative
    share s_i, ``t = count_(i*)`` with ``i* = argmin_i |s_i - p|`` (the first on ties). ``p`` in
    [0, 1]; p = 1 gives the largest count. The result is 0 when the language has zero-count
    entries and 0 is nearer to p than its first positive share (MetaCLIP 2 computes the same;
    :func:`probabilities` then gives its matched entries p = 0). No match: ValueError."""
    p = float(p)
    if not (0.0 <= p <= 1.0):
        raise ValueError("p must be in [0, 1], got %r" % p)
    curve = _share_curve(counts)
    if curve[1] is None:
        raise ValueError("all counts are zero: p_to_t is undefined")
    return _t_at(curve, p)


def t_vector(ts: dict, space) -> np.ndarray:
    """One t per global id of ``space`` (metadata/languages.LanguageSpace): ``ts[lang]`` over the
    language's span, so that ``probabilities(counts, t_vector(ts, space))`` is ``p_e = t_lang /
    max(c_e, t_lang)`` for every entry of every language."""
    return np.repeat(np.array([float(ts[k]) for k in space.languages], np.float64), space.sizes)


def choose_ts(b, counts, space, model=None) -> tuple[dict, str, float]:
    """(t per language, where en's t came from, p) for the global count vector ``counts`` over
    ``space``. ``b``: a balance config section (run/config.BalanceConfig) or en's t (a number).

    - en with matches: t_en as :func:`choose_t` on en's counts (English mode: exactly today's t;
      worldwide ``target_size``: t_en solved so that the expected size over all languages, each at
      its own t, meets the target; ``model()`` must then take a t vector, see PoolSizeModel);
      p = ``t_to_p(en, t_en)``.
    - no en (or en without matches): p cannot come from en; ``balance.tail_share`` is then p itself
      (required: ValueError otherwise), and t_en is ``balance.default_t``.
    - every other language with matches: ``p_to_t(its counts, p)``; a language without matches
      (nothing of it to balance): t_en."""
    c = _counts(counts)
    if c.size != len(space):
        raise ValueError("counts have %d entries, the language space %d" % (c.size, len(space)))
    curves = {k: _share_curve(c[space.span(k)]) for k in space.languages}
    en = c[space.span("en")] if "en" in space.index else None
    number = not hasattr(b, "default_t")

    def ts_at(p, t_en):
        return {k: (t_en if k == "en" or curves[k][1] is None else _t_at(curves[k], p)) for k in space.languages}

    if en is not None and en.sum() > 0:
        if number:
            t_en, source = _check_t(b), "t"
        elif b.t is None and b.tail_share is None and b.target_size is not None and len(space.languages) > 1:
            f = lambda t: model()(t_vector(ts_at(t_to_p(en, t), t), space))     # noqa: E731
            t_en, source = solve_t_for_target_size(en, f, b.target_size), "target_size"
        else:
            t_en, source = choose_t(b, en, model)
        p = t_to_p(en, t_en)
        return ts_at(p, t_en), source, p
    if number or b.tail_share is None:
        raise ValueError("the metadata has %s: its tail share fixes every other language's t (SPEC section 10); "
                         "give balance.tail_share (then the share itself) or match English texts too"
                         % ("no en" if en is None else "en, but no English text matched"))
    t_en = float(b.default_t)
    return ts_at(float(b.tail_share), t_en), "tail_share", float(b.tail_share)


def language_ts(counts, space, b, model=None) -> dict:
    """t per language (:func:`choose_ts`'s first value)."""
    return choose_ts(b, counts, space, model)[0]


def language_stats(counts, space, ts: dict, pool=None, curated=None, expected=None) -> dict:
    """stats/balance.json ``languages``: per language its rows considered (``pool``), matches,
    t, tail share at t, head entries (count > t), rows kept (``curated``) and expected kept;
    ``pool``/``curated``/``expected``: one value per language of ``space`` (None: 0)."""
    c = _counts(counts)
    out = {}
    for i, k in enumerate(space.languages):
        ck, t = c[space.span(k)], float(ts[k])
        out[k] = {"pool": int(pool[i]) if pool is not None else 0, "matches": int(ck.sum()), "t": t,
                  "tail_share": tail_share(ck, t) if t > 0 else 0.0, "head_entries": int(np.count_nonzero(ck > t)),
                  "curated": int(curated[i]) if curated is not None else 0,
                  "expected": float(expected[i]) if expected is not None else 0.0}
    return out
