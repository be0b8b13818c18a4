"""One matchability rule (issue #15): the Matcher, build-metadata and the default
vocabulary all decide with steps.match.is_matchable / is_plain_entry, and each decision
equals the definition it had before (written out here as the reference), on every
string up to length 4 over an alphabet that exercises every branch."""

import itertools

import pytest

from metaclip_spark.metadata import build as mb
from metaclip_spark.steps import match as matching
from metaclip_spark.steps.match import Matcher, is_matchable, is_plain_entry, naive_match

ALPHABET = ["a", "b", " ", ".", ",", "?", "`", "\t", "\n", "\u00a0", "'"]


def strings(max_len=4):
    for n in range(max_len + 1):
        for t in itertools.product(ALPHABET, repeat=n):
            yield "".join(t)


ALL = list(strings())


def old_build_never_match(e):           # metadata/build.py before the rule moved
    return not e or "  " in e or not is_matchable(e)


def old_can_match(e):                    # metadata/defaults.can_match before the rule moved
    return bool(e) and e == " ".join(e.split()) and not any(ch in e for ch in ",.;:?!`")


def test_rules_equal_their_old_definitions_and_nest():
    assert len(ALL) > 15_000
    for e in ALL:
        strict = is_matchable(e, normalised=True)
        assert strict == (not old_build_never_match(e)), repr(e)
        assert is_plain_entry(e) == old_can_match(e), repr(e)
        # each level implies the looser one
        assert not is_plain_entry(e) or strict, repr(e)
        assert not strict or is_matchable(e), repr(e)


def test_build_metadata_never_match_is_the_rule():
    for e in ALL:
        _, _, stats = mb.assemble([mb.Candidate(e, "title", views=1)], budget=10)
        assert stats["title"]["never_match"] == (0 if is_matchable(e, normalised=True) else 1), repr(e)


def test_default_metadata_filter_is_the_rule(monkeypatch):
    import sys
    import types

    from metaclip_spark.metadata import defaults

    fake = types.ModuleType("wordfreq")
    words = [w for w in ALL if w]
    fake.top_n_list = lambda lang, n: words[:n]
    monkeypatch.setitem(sys.modules, "wordfreq", fake)
    got = defaults.build_default_metadata(len(words))
    kept_words = [w for w in got if w in set(words)]
    assert kept_words == [w for w in words if is_plain_entry(w) and "00" not in w]


@pytest.mark.parametrize("native", [True, False])
def test_matcher_leaves_out_exactly_the_unmatchable(monkeypatch, native):
    if not native:
        monkeypatch.setattr(matching, "_native_automaton", None)
    matching.clear_automaton_cache()
    entries = [e for e in ALL if len(e) <= 3]
    m = Matcher(entries, cache_size=0)
    assert m.stats["never_match"] == sum(1 for e in entries if not is_matchable(e))
    texts = ["a. b", "a , b", "a, b", "b?a `a'", "a\tb", "a\u00a0b .", "", " ", "a  b"]
    for t in texts:
        assert m.match(t) == naive_match(t, entries), repr(t)
    matching.clear_automaton_cache()
