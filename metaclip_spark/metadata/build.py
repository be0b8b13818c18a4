"""Assembling MetaCLIP metadata from its four sources (paper Table 1, semantics sections 1, 8).

Fill order: WordNet (:mod:`metaclip_spark.metadata.wordnet`), then Wikipedia unigrams with
count >= ``unigram_min_count`` (most frequent first), then bigrams with count >=
``bigram_min_count`` and PMI >= ``bigram_min_pmi`` (highest PMI first), then article
titles with views >= ``title_min_views`` (most viewed first), until ``budget`` entries.
Ties break on higher count, then on the string (code-point order), so the result is
deterministic.

Every candidate goes through, in this order: ``never_match`` (not
``steps.match.is_matchable(entry, normalised=True)``, the matcher's rule: empty, a
string that no text can match under docs/semantics.md section 4 (a spacing character ``, . ; : ? !
``` next to a non-space, TAB/LF/CR, ...), or holding a double space (matchable only
where a text keeps a double space, which whitespace-normalised alt texts never do; the
issue lists it as never matching)), ``duplicate`` (already taken, from
an earlier source or earlier in the same one: first source wins), ``over_budget``;
otherwise it is ``added``. Each outcome is counted per source.

PMI (pointwise mutual information) of bigram "a b", natural logarithm:
``log(p(a,b) / (p(a) p(b)))`` with ``p(a,b) = c(a,b) / N_bigrams`` and
``p(a) = c(a) / N_tokens`` over all articles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping

import pyarrow as pa

from metaclip_spark.steps.match import is_matchable

SOURCES = ("wordnet", "unigram", "bigram", "title")
OUTCOMES = ("candidates", "added", "never_match", "duplicate", "over_budget")

PROVENANCE_SCHEMA = pa.schema([
    pa.field("entry_id", pa.int32(), nullable=False),
    pa.field("entry", pa.string(), nullable=False),
    pa.field("source", pa.string(), nullable=False),
    pa.field("count", pa.int64()),      # unigram / bigram occurrences in the articles
    pa.field("pmi", pa.float64()),      # bigrams
    pa.field("views", pa.int64()),      # titles
])


@dataclass(frozen=True)
class Candidate:
    entry: str
    source: str
    count: int | None = None
    pmi: float | None = None
    views: int | None = None


def pmi(c_ab: int, c_a: int, c_b: int, n_tokens: int, n_bigrams: int) -> float:
    return math.log((c_ab / n_bigrams) / ((c_a / n_tokens) * (c_b / n_tokens)))


def unigram_key(tc: tuple[str, int]):
    """Ranking of ``(token, count)``: count descending, then the string."""
    return (-tc[1], tc[0])


def bigram_key(row: tuple[str, int, float]):
    """Ranking of ``(entry, count, pmi)``: PMI descending, then count descending, then the string."""
    return (-row[2], -row[1], row[0])


def title_key(tv: tuple[str, int]):
    """Ranking of ``(title, views)``: views descending, then the string."""
    return (-tv[1], tv[0])


def wordnet_candidates(entries: Iterable[str]) -> list[Candidate]:
    return [Candidate(e, "wordnet") for e in entries]


def unigram_candidates(counts: Iterable[tuple[str, int]], min_count: int) -> list[Candidate]:
    kept = sorted(((t, c) for t, c in counts if c >= min_count), key=unigram_key)
    return [Candidate(t, "unigram", count=c) for t, c in kept]


def bigram_candidates(scored: Iterable[tuple[str, str, int, float]], min_count: int,
                      min_pmi: float) -> list[Candidate]:
    """``scored``: ``(a, b, count, pmi)``; entry ``"a b"``."""
    kept = sorted(((a + " " + b, c, p) for a, b, c, p in scored if c >= min_count and p >= min_pmi),
                  key=bigram_key)
    return [Candidate(e, "bigram", count=c, pmi=p) for e, c, p in kept]


def score_bigrams(bigram_counts: Mapping[tuple[str, str], int], unigram_counts: Mapping[str, int],
                  n_tokens: int, n_bigrams: int) -> list[tuple[str, str, int, float]]:
    """Driver-side PMI for small inputs (the Spark job computes the same with joins)."""
    return [(a, b, c, pmi(c, unigram_counts[a], unigram_counts[b], n_tokens, n_bigrams))
            for (a, b), c in bigram_counts.items()]


def title_candidates(titles: Iterable[str], views: Mapping[str, int], min_views: int) -> list[Candidate]:
    kept = sorted(((t, views.get(t, 0)) for t in set(titles)), key=title_key)
    return [Candidate(t, "title", views=v) for t, v in kept if v >= min_views]


def assemble(candidates: Iterable[Candidate], budget: int) -> tuple[list[str], list[Candidate], dict]:
    """Entries in fill order, their provenance, and per-source outcome counts."""
    stats = {s: dict.fromkeys(OUTCOMES, 0) for s in SOURCES}
    seen: set[str] = set()
    kept: list[Candidate] = []
    for cand in candidates:
        st = stats.setdefault(cand.source, dict.fromkeys(OUTCOMES, 0))
        st["candidates"] += 1
        if not is_matchable(cand.entry, normalised=True):
            st["never_match"] += 1
        elif cand.entry in seen:
            st["duplicate"] += 1
        elif len(kept) >= budget:
            st["over_budget"] += 1
        else:
            seen.add(cand.entry)
            kept.append(cand)
            st["added"] += 1
    return [c.entry for c in kept], kept, stats


def provenance_table(kept: list[Candidate]) -> pa.Table:
    return pa.table({
        "entry_id": pa.array(range(len(kept)), pa.int32()),
        "entry": pa.array([c.entry for c in kept], pa.string()),
        "source": pa.array([c.source for c in kept], pa.string()),
        "count": pa.array([c.count for c in kept], pa.int64()),
        "pmi": pa.array([c.pmi for c in kept], pa.float64()),
        "views": pa.array([c.views for c in kept], pa.int64()),
    }, schema=PROVENANCE_SCHEMA)
