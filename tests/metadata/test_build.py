"""Fill order, budget, de-duplication and the never-matching filter (exact lists)."""

import math

import pytest

from metaclip_spark.metadata import build as mb


def stats_of(s):
    return {k: s[k] for k in ("added", "never_match", "duplicate", "over_budget")}


def candidates():
    return (mb.wordnet_candidates(["dog", "hot dog", "st", "3"])
            + mb.unigram_candidates([("The", 50), ("dog", 40), ("the", 90), ("cat", 40), ("rare", 2),
                                     ("3.5", 30), ("", 99)], min_count=10)
            + mb.bigram_candidates([("New", "York", 20, 9.5), ("hot", "dog", 30, 4.0),
                                    ("Los", "Angeles", 12, 9.5), ("of", "the", 900, 0.5),
                                    ("Big", "Apple", 1, 20.0)], min_count=2, min_pmi=1.0)
            + mb.title_candidates(["Paris", "St. Louis", "Dog", "Rome", "New York", "Nobody"],
                                  {"Paris": 500, "St. Louis": 900, "Dog": 80, "Rome": 500,
                                   "New York": 1000, "Nobody": 3}, min_views=70))


def test_fill_order_dedup_and_never_match():
    entries, kept, stats = mb.assemble(candidates(), budget=100)
    assert entries == ["dog", "hot dog", "st", "3",
                       "the", "The", "cat",
                       "New York", "Los Angeles",
                       "Paris", "Rome", "Dog"]
    assert [c.source for c in kept] == ["wordnet"] * 4 + ["unigram"] * 3 + ["bigram"] * 2 + ["title"] * 3
    assert stats_of(stats["wordnet"]) == {"added": 4, "never_match": 0, "duplicate": 0, "over_budget": 0}
    # "", "3.5" never match; "dog" is WordNet's already
    assert stats_of(stats["unigram"]) == {"added": 3, "never_match": 2, "duplicate": 1, "over_budget": 0}
    assert stats_of(stats["bigram"]) == {"added": 2, "never_match": 0, "duplicate": 1, "over_budget": 0}
    # "St. Louis" never matches, "New York" came from the bigrams
    assert stats_of(stats["title"]) == {"added": 3, "never_match": 1, "duplicate": 1, "over_budget": 0}
    assert kept[4] == mb.Candidate("the", "unigram", count=90)
    assert kept[7] == mb.Candidate("New York", "bigram", count=20, pmi=9.5)
    assert kept[9] == mb.Candidate("Paris", "title", views=500)


def test_budget_cuts_in_fill_order():
    entries, kept, stats = mb.assemble(candidates(), budget=6)
    assert entries == ["dog", "hot dog", "st", "3", "the", "The"]
    assert stats["unigram"]["over_budget"] == 1 and stats["bigram"]["over_budget"] == 2
    # "New York" is no duplicate here: its bigram did not fit either
    assert stats["title"]["over_budget"] == 4 and stats["title"]["never_match"] == 1
    entries, _, stats = mb.assemble(candidates(), budget=2)
    assert entries == ["dog", "hot dog"] and stats["wordnet"]["over_budget"] == 2


def test_never_match_cases():
    bad = ["a,b", "end.", "x;y", "a:b", "why?", "hi!", "`q", "a\tb", "a\nb", "a\rb", "a  b", ""]
    good = ["hot-dog", "rock 'n' roll", "C++", "AT&T", "(film)"]
    entries, _, stats = mb.assemble(mb.unigram_candidates([(e, 5) for e in bad + good], 1), 100)
    assert sorted(entries) == sorted(good)
    assert stats["unigram"]["never_match"] == len(bad)


def test_pmi_and_scoring():
    assert mb.pmi(2, 4, 5, 100, 80) == pytest.approx(math.log((2 / 80) / ((4 / 100) * (5 / 100))))
    scored = mb.score_bigrams({("a", "b"): 2, ("b", "c"): 1}, {"a": 4, "b": 5, "c": 1}, 100, 80)
    assert [(a, b, c) for a, b, c, _ in scored] == [("a", "b", 2), ("b", "c", 1)]
    assert scored[1][3] == pytest.approx(math.log((1 / 80) / ((5 / 100) * (1 / 100))))


def test_provenance_table():
    _, kept, _ = mb.assemble(candidates(), budget=100)
    t = mb.provenance_table(kept)
    assert t.schema == mb.PROVENANCE_SCHEMA
    rows = t.to_pylist()
    assert rows[0] == {"entry_id": 0, "entry": "dog", "source": "wordnet", "count": None, "pmi": None, "views": None}
    assert rows[8] == {"entry_id": 8, "entry": "Los Angeles", "source": "bigram", "count": 12, "pmi": 9.5, "views": None}
    assert rows[11] == {"entry_id": 11, "entry": "Dog", "source": "title", "count": None, "pmi": None, "views": 80}
