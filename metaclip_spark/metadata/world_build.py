"""One language's metadata list (MetaCLIP 2's recipe, SPEC section 10; docs/worldwide.md section
"build-metadata per language"): ``metaclip-spark build-metadata --lang xx`` for ``xx != en``.

List order (MetaCLIP 2's ``build_metadata.py``): the strings ``"0"`` .. ``"99"``, then the
language's WordNet names (:mod:`metaclip_spark.metadata.omw`, sorted), then Wikipedia unigrams
by count, bigrams by PMI, titles by page views, each ranked source filled up to its quota:

- unigrams: ``min(unigram_cap, int(distinct unigrams * unigram_share))`` (0.10, 251,465);
- bigrams: ``min(bigram_cap, distinct bigrams)`` (100,646) among those with count >=
  ``bigram_min_count`` and PMI >= ``bigram_min_pmi`` (:func:`metaclip_spark.metadata.build.pmi`);
  joined without a space in languages written without spaces (:data:`NO_SPACE_LANGUAGES`);
- titles: ``min(title_cap, int(distinct titles * title_share))`` (0.76, 61,235) of the language's
  page-view titles (views > 0, no ``:``).

A quota counts entries *added*: every candidate is stripped, then skipped when empty, over
:data:`MAX_ENTRY_CHARS`, punctuation-only (``languages.is_punctuation_only``) or already in the
list. Ranking ties break deterministically: count (unigrams), PMI then count (bigrams), views
(titles), each descending, then the string in code-point order.

Tokens: spaced languages use the English builder's rule (``wikipedia.tokens``: runs of word
characters joined by an inner ``-``, ``'`` or U+2019; a bigram is two tokens with only spaces
or tabs between them on one line), where word characters also include combining marks
(Mn, Mc, Me) and ZWNJ/ZWJ, so that Devanagari, Tamil or Persian words stay whole. Languages
written without spaces: each line is split at whitespace, each chunk goes through the
language's word segmenter (:mod:`metaclip_spark.metadata.segmenters`); tokens are stripped,
punctuation-only tokens and "weird" ones (first character punctuation, or one bracket of a
pair without the other) are not counted and break bigrams (MetaCLIP 2's ``count_ngrams``);
consecutive tokens of one line form a bigram.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Mapping, Sequence

from metaclip_spark.metadata.build import Candidate, bigram_key, title_key, unigram_key
from metaclip_spark.metadata.languages import MAX_ENTRY_CHARS, NO_SPACE_PUNCTUATION, is_punctuation_only
from metaclip_spark.metadata.segmenters import NO_SPACE_LANGUAGES, get_segmenter, needs_segmenter
from metaclip_spark.metadata.wikipedia import line_bigrams, token_rule
from metaclip_spark.metadata.wordnet import NUMBERS

WORLD_SOURCES = ("number", "wordnet", "unigram", "bigram", "title")
# MetaCLIP 2 count_ngrams check_weird_token (its "『 " with a space read as the bracket it means)
PAIRED = (("(", ")"), ("[", "]"), ("{", "}"), ("“", "”"), ("‘", "’"), ("（", "）"), ("【", "】"),
          ("《", "》"), ("〈", "〉"), ("「", "」"), ("『", "』"))
_BRACKETS = frozenset("".join(a + b for a, b in PAIRED))


@dataclass(frozen=True)
class WorldCaps:
    """Section 10's shares and caps (defaults: MetaCLIP 2's)."""
    unigram_share: float = 0.10
    unigram_cap: int = 251_465
    bigram_cap: int = 100_646
    title_share: float = 0.76
    title_cap: int = 61_235
    bigram_min_count: int = 5
    bigram_min_pmi: float = 30.0

    @classmethod
    def from_config(cls, m: "MetadataBuildConfig") -> "WorldCaps":     # noqa: F821 (run/config_sections.py)
        return cls(m.world_unigram_share, m.world_unigram_cap, m.world_bigram_cap, m.world_title_share,
                   m.world_title_cap, m.bigram_min_count, m.bigram_min_pmi)


def quota(n: int, share: float, cap: int) -> int:
    """MetaCLIP 2's ``min(cap, int(n * share))``."""
    return max(0, min(int(cap), int(n * share)))


# --------------------------------------------------------------------------------------
# Tokens

@functools.lru_cache(maxsize=1)
def _token_re() -> re.Pattern:
    """The English token rule with combining marks and ZWNJ/ZWJ as word characters."""
    ranges, start, prev = [], None, None
    for cp in list(range(0x20000)) + list(range(0xE0000, 0xE1000)):
        if unicodedata.category(chr(cp)) in ("Mn", "Mc", "Me") or cp in (0x200C, 0x200D):
            if start is None or cp != prev + 1:
                if start is not None:
                    ranges.append((start, prev))
                start = cp
            prev = cp
    ranges.append((start, prev))
    marks = "".join(re.escape(chr(a)) + ("-" + re.escape(chr(b)) if b > a else "") for a, b in ranges)
    return token_rule(r"[\w%s]+" % marks)


def spaced_tokens(line: str) -> list[str]:
    return _token_re().findall(line)


def spaced_bigrams(line: str) -> Iterator[tuple[str, str]]:
    """Consecutive tokens of one line with only spaces/tabs between them."""
    return line_bigrams(line, _token_re())


def is_weird_token(tok: str) -> bool:
    """MetaCLIP 2: a token starting with punctuation, or holding one bracket of a pair only."""
    if tok[0] in NO_SPACE_PUNCTUATION:
        return True
    return not _BRACKETS.isdisjoint(tok) and any((a in tok) != (b in tok) for a, b in PAIRED)


def segmented_tokens(line: str, segment: Callable[[str], list]) -> list[str | None]:
    """Tokens of one line of a language written without spaces; None marks a break (a stripped
    punctuation-only token starts with punctuation, so ``is_weird_token`` covers it)."""
    out: list[str | None] = []
    for chunk in line.split():
        for tok in segment(chunk):
            tok = str(tok).strip()
            if tok:
                out.append(None if is_weird_token(tok) else tok)
    return out


class NgramCounter:
    """``counter(text) -> (unigrams, bigrams)`` Counters of one article's plain text in ``lang``
    (bigram keys are ``(a, b)`` token pairs). Builds the segmenter once."""

    def __init__(self, lang: str):
        self.lang = lang
        self.segment = get_segmenter(lang) if needs_segmenter(lang) else None

    def __call__(self, text: str) -> tuple[Counter, Counter]:
        uni: Counter = Counter()
        bi: Counter = Counter()
        for line in text.split("\n"):
            if self.segment is None:
                uni.update(spaced_tokens(line))
                bi.update(spaced_bigrams(line))
                continue
            prev = None
            for tok in segmented_tokens(line, self.segment):
                if tok is not None:
                    uni[tok] += 1
                    if prev is not None:
                        bi[(prev, tok)] += 1
                prev = tok
        return uni, bi


def join_bigram(a: str, b: str, lang: str) -> str:
    return a + b if lang in NO_SPACE_LANGUAGES else a + " " + b


# --------------------------------------------------------------------------------------
# Ranked candidates (the English builder's sort keys, shared with the Spark job's takeOrdered)

def rank_unigrams(counts: Mapping[str, int]) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=unigram_key)


def rank_bigrams(scored: Iterable[tuple[str, str, int, float]], lang: str, caps: WorldCaps) -> list:
    """``scored``: ``(a, b, count, pmi)`` -> ``(entry, count, pmi)`` passing the thresholds, ranked."""
    rows = [(join_bigram(a, b, lang), c, p) for a, b, c, p in scored
            if c >= caps.bigram_min_count and p >= caps.bigram_min_pmi]
    return sorted(rows, key=bigram_key)


def title_views(views: Mapping[str, int]) -> dict[str, int]:
    """MetaCLIP 2's page-view titles: views > 0, no ``:``, stripped (views of equal titles summed)."""
    out: dict[str, int] = {}
    for title, n in views.items():
        if n > 0 and ":" not in title:
            t = title.strip()
            out[t] = out.get(t, 0) + n
    return out


def rank_titles(views: Mapping[str, int]) -> list[tuple[str, int]]:
    return sorted(views.items(), key=title_key)


def as_candidate(source: str, row) -> Candidate:
    if source == "unigram":
        return Candidate(row[0], source, count=row[1])
    if source == "bigram":
        return Candidate(row[0], source, count=row[1], pmi=row[2])
    if source == "title":
        return Candidate(row[0], source, views=row[1])
    return Candidate(row, source)


# --------------------------------------------------------------------------------------
# Assembly

class Assembly:
    """The list being filled: sources in order, de-duplicated, section 10's drops."""

    def __init__(self):
        self.seen: set[str] = set()
        self.kept: list[Candidate] = []
        self.stats: dict[str, dict] = {}

    @property
    def entries(self) -> list[str]:
        return [c.entry for c in self.kept]

    def _outcome(self, entry: str) -> str:
        if not entry:
            return "empty"
        if len(entry) > MAX_ENTRY_CHARS:
            return "dropped_too_long"
        if is_punctuation_only(entry):
            return "dropped_punctuation_only"
        return "duplicate" if entry in self.seen else "added"

    def would_add(self, source: str, rows: Sequence, limit: int | None) -> int:
        """How many of ``rows`` (in order) :meth:`take` would add, stopping at ``limit``."""
        new: set[str] = set()
        for row in rows:
            if limit is not None and len(new) >= limit:
                break
            e = as_candidate(source, row).entry.strip()
            if self._outcome(e) == "added" and e not in new:
                new.add(e)
        return len(new)

    def take(self, source: str, rows: Iterable, limit: int | None = None, distinct: int | None = None) -> int:
        """Add ``rows`` of ``source`` in order until ``limit`` entries were added; returns the number added."""
        st = self.stats.setdefault(source, {"distinct": distinct, "quota": limit, "examined": 0, "added": 0,
                                            "duplicate": 0, "dropped_too_long": 0,
                                            "dropped_punctuation_only": 0, "empty": 0})
        for row in rows:
            if limit is not None and st["added"] >= limit:
                break
            cand = as_candidate(source, row)
            e = cand.entry.strip()
            st["examined"] += 1
            outcome = self._outcome(e)
            st[outcome] += 1
            if outcome == "added":
                self.seen.add(e)
                self.kept.append(dataclasses.replace(cand, entry=e))
        return st["added"]

    def fill(self, source: str, fetch: Callable[[int], Sequence], limit: int, distinct: int) -> int:
        """Add the top ``limit`` new entries of a ranked source too large to list whole: ``fetch(k)``
        gives its first ``k`` rows; ``k`` grows until the quota is met or the source is exhausted."""
        k = limit + len(self.seen) + 1024
        while True:
            rows = fetch(k)
            if len(rows) < k or self.would_add(source, rows, limit) >= limit:
                break
            k *= 4
        return self.take(source, rows, limit, distinct)


def build_world(lang: str, caps: WorldCaps, wordnet: Sequence[str] = (), unigrams: Mapping[str, int] | None = None,
                bigrams: Mapping[tuple[str, str], int] | None = None, views: Mapping[str, int] | None = None,
                numbers: Sequence[str] = NUMBERS) -> Assembly:
    """The whole recipe on driver-side counts (tests, small inputs; the Spark job does the same
    with :meth:`Assembly.fill` over its counts). ``views``: page views per title of the language."""
    from metaclip_spark.metadata.build import score_bigrams

    unigrams, bigrams = dict(unigrams or {}), dict(bigrams or {})
    asm = Assembly()
    asm.take("number", numbers)
    asm.take("wordnet", wordnet)
    asm.take("unigram", rank_unigrams(unigrams), quota(len(unigrams), caps.unigram_share, caps.unigram_cap),
             len(unigrams))
    n_tok, n_bi = sum(unigrams.values()), sum(bigrams.values())
    scored = score_bigrams(bigrams, unigrams, n_tok, n_bi) if n_bi else []
    asm.take("bigram", rank_bigrams(scored, lang, caps), min(caps.bigram_cap, len(bigrams)), len(bigrams))
    tv = title_views(views or {})
    asm.take("title", rank_titles(tv), quota(len(tv), caps.title_share, caps.title_cap), len(tv))
    return asm


def pageview_projects(lang: str, configured: Sequence[str]) -> list[str]:
    """The pageviews projects of ``lang``: the configured ones, else its Wikipedia (``xx``, ``xx.m``;
    language codes with ``_`` are written with ``-`` there)."""
    if configured:
        return list(configured)
    code = lang.replace("_", "-")
    return [code, code + ".m"]
