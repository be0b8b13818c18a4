"""metaclip_spark._speedups.Automaton (csrc/ac_match.c) against pyahocorasick on the same keys.

tests/steps/test_match.py runs every Matcher case on both automata and against naive_match;
this file checks the compiled type itself: every occurrence (nested, overlapping, many per
text), any code point (non-BMP, lone surrogates), and its errors."""

import random

import ahocorasick
import pytest

from metaclip_spark.kernels import native
from metaclip_spark.steps.match import spacing

pytestmark = pytest.mark.skipif(not native.ENABLED, reason="metaclip_spark._speedups not built")


def pyaho_find(entries, ids, text):
    a = ahocorasick.Automaton(ahocorasick.STORE_INTS)
    for e, i in zip(entries, ids):
        a.add_word(" " + e + " ", i)
    a.make_automaton()
    return sorted({v for _, v in a.iter(spacing(text))})


def test_every_occurrence_nested_and_overlapping():
    entries = ["a", "a a", "a a a", "b", "a b", "é", "😀", "x y"]
    ids = [10, 11, 12, 13, 14, 15, 16, 17]
    a = native.speedups.Automaton(entries, ids)
    assert a.find("a a a") == [10, 11, 12]
    assert a.find("a, a.a") == [10]                    # spaced " a ,  a . a ": no " a a "
    assert a.find("a b é 😀") == [10, 13, 14, 15, 16]
    assert a.find("x\ty") == [17]                      # TAB becomes a space
    assert a.find("xy") == [] and a.find("") == []
    # " ab " and " a " share root -> " " -> "a": 6 nodes with the root
    assert native.speedups.Automaton(["ab", "a"], [0, 1]).size()["nodes"] == 6


def test_many_matches_in_one_text():
    # more than the 64 ids kept on the stack, and more than the 16 sorted by insertion
    entries = ["w%d" % i for i in range(300)]
    a = native.speedups.Automaton(entries, list(range(300)))
    text = " ".join(reversed(entries)) + " w5 w5"
    assert a.find(text) == list(range(300))


def test_random_against_pyahocorasick():
    rnd = random.Random(7)
    alphabet = ["a", "b", " ", "  ", ",", ".", "`", "\t", "\n", "é", "\u00a0", "😀", "\ud800",
                "\udfff", "\u20ac", "ab", "ba"]

    def rand_str(k):
        return "".join(rnd.choice(alphabet) for _ in range(rnd.randrange(0, k)))

    checked = 0
    for _ in range(40):
        entries = list(dict.fromkeys(rand_str(5) for _ in range(rnd.randrange(1, 60))))
        ids = rnd.sample(range(1000), len(entries))
        a = native.speedups.Automaton(entries, ids)
        for _ in range(60):
            text = rand_str(30)
            assert a.find(text) == pyaho_find(entries, ids, text), (entries, text)
            checked += 1
    assert checked == 2400


def test_errors():
    A = native.speedups.Automaton
    with pytest.raises(ValueError, match="distinct"):
        A(["a", "b", "a"], [0, 1, 2])
    with pytest.raises(ValueError, match="differ in length"):
        A(["a"], [0, 1])
    with pytest.raises(ValueError, match=r"\[0, 2\*\*31\)"):
        A(["a"], [-1])
    with pytest.raises(TypeError, match="must be str"):
        A(["a", b"b"], [0, 1])
    with pytest.raises(TypeError):
        A(("a",), [0])
    a = A([], [])
    assert a.find("anything") == [] and a.size()["keys"] == 0
    with pytest.raises(TypeError, match="needs a str"):
        a.find(b"a")
