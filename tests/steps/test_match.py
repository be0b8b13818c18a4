"""MetaCLIP v1 substring matching (docs/semantics.md section 4): spacing, the naive reference, the
Aho-Corasick Matcher (exactly equal to the reference), pickling, real-data check."""

import bisect
import itertools
import json
import pickle
import random
import time
from collections import defaultdict

import pytest

from metaclip_spark.steps import match as matching
from metaclip_spark.kernels import native
from metaclip_spark.steps.match import (Matcher, build_count, clear_automaton_cache,
                                     is_matchable, naive_match, spacing)
from metaclip_spark.metadata.load import metadata_digest
from tests.conftest import shared_path

PUNCT = ",.;:?!`"


@pytest.fixture(autouse=True, params=["native", "pyahocorasick"] if native.ENABLED else ["pyahocorasick"])
def automaton_kind(request, monkeypatch):
    """Every case on both automata: the compiled one (csrc/ac_match.c) and pyahocorasick's
    (the fallback without the extension, and the reference)."""
    if request.param == "pyahocorasick":
        monkeypatch.setattr(matching, "_native_automaton", None)
    clear_automaton_cache()  # the per-process cache holds one kind or the other
    yield request.param
    clear_automaton_cache()


def reference_spacing(text):
    """MetaCLIP's own loop, restated: wrap the seven characters, then TAB/LF/CR."""
    spaced = f" {text} "
    for p in [",", ".", ";", ":", "?", "!", "`"]:
        spaced = spaced.replace(p, f" {p} ")
    for c in ["\t", "\n", "\r"]:
        spaced = spaced.replace(c, " ")
    return spaced


def check(entries, texts, **kw):
    """Matcher.match and match_many equal naive_match on every text; returns results."""
    m = Matcher(entries, **kw)
    expected = [naive_match(t, entries) for t in texts]
    assert [m.match(t) for t in texts] == expected
    assert m.match_many(texts) == expected
    assert [m.match(t) for t in texts] == expected  # again, now from the text cache
    return expected


def ids(entries, text):
    m = Matcher(entries)
    got = m.match(text)
    assert got == naive_match(text, entries)
    return got


# --------------------------------------------------------------------------- spacing

def test_spacing_exact_strings():
    assert spacing("") == "  "
    assert spacing("a") == " a "
    assert spacing("a,b") == " a , b "
    assert spacing("3.5 stars") == " 3 . 5 stars "
    assert spacing("x;y:z?w!v`u") == " x ; y : z ? w ! v ` u "
    assert spacing("a\tb\nc\rd") == " a b c d "
    assert spacing("a\r\nb") == " a  b "
    assert spacing("a, b") == " a ,  b "
    assert spacing("..") == "  .  .  "
    # nothing else changes
    assert spacing("Hot-Dog's (x) \"y\" / & \u00a0 \u2003 é") == \
        " Hot-Dog's (x) \"y\" / & \u00a0 \u2003 é "


def test_spacing_equals_reference_loop_on_random_text():
    rnd = random.Random(7)
    alphabet = "ab ,.;:?!`\t\n\r\u00a0é'-"
    for _ in range(3000):
        t = "".join(rnd.choice(alphabet) for _ in range(rnd.randrange(0, 20)))
        assert spacing(t) == reference_spacing(t)


def test_translate_table_is_equivalent_but_not_used():
    # The replacements do not interact, so one translate() gives the same result.
    table = {ord(p): " %s " % p for p in PUNCT}
    table.update({9: " ", 10: " ", 13: " "})
    rnd = random.Random(3)
    for _ in range(1000):
        t = "".join(rnd.choice("a ,.;:?!`\t\n\r") for _ in range(rnd.randrange(12)))
        assert (" " + t + " ").translate(table) == spacing(t)


# ------------------------------------------------------------------ consequences of semantics section 4

def test_case_hot_dog_matches_dog_not_lowercase_hot_dog():
    entries = ["Dog", "hot dog", "Hot Dog", "dog", "hot", "Hot"]
    assert ids(entries, "Hot Dog") == [0, 2, 5]


def test_hyphen_is_not_a_separator():
    entries = ["hot", "dog", "hot-dog"]
    assert ids(entries, "hot-dog") == [2]
    assert ids(entries, "a hot-dog stand") == [2]


def test_decimal_number_matches_its_digits():
    entries = ["3", "5", "3.5", "stars", "3.5 stars", "5 stars"]
    assert ids(entries, "3.5 stars") == [0, 1, 3, 5]


@pytest.mark.parametrize("entry", ["3.5", "hot dog.", "St. Louis", ",x", "x,", "a.b.c",
                                   "Dr.", "a\tb", "a\nb", "a\rb", "\t", "\n", ". .",
                                   "a , , b", "x?!"])
def test_entries_that_can_never_match(entry):
    assert not is_matchable(entry)
    texts = [entry, entry + " x", "x " + entry, entry.replace(".", " . "), "3.5", "St. Louis",
             "hot dog.", "a\tb", "a b", ". .", "..", "a , , b", "x?!", ",x,"]
    entries = [entry, "x", "dog"]
    for t in texts:
        got = ids(entries, t)
        assert 0 not in got


@pytest.mark.parametrize("entry,text", [
    (".", "Hello."), (".", "3.5"), (",", "a,b"), ("!", "Wow!"), ("`", "x`y"),
    ("a .", "a."), ("a . b", "a.b"), (". b", "x.b"), (".  .", ".."), ("?  !", "?!"),
    (",  b", "a, b"), ("a  b", "a  b"), (" x", "a  x"), ("x ", "x  y")])
def test_entries_that_can_match(entry, text):
    assert is_matchable(entry)
    assert ids([entry], text) == [0]


def test_punctuation_only_entries_follow_the_reference():
    # Documented behaviour: an entry "." matches every text that contains a "."
    # (the reference wraps "." in spaces), same for the other six characters.
    entries = [".", ",", ";", ":", "?", "!", "`"]
    assert ids(entries, "Hello world.") == [0]
    assert ids(entries, "3.5, ok; a:b? yes! `x`") == [0, 1, 2, 3, 4, 5, 6]
    assert ids(entries, "no punctuation - here") == []


def test_double_space_entry_never_matches_normalised_text():
    entries = ["hot  dog", "hot dog", "a  b", "x   y"]
    texts = ["hot  dog", "hot   dog", "a\t b", "hot dog", "a  b  x   y", "x \t y"]
    for t in texts:
        norm = " ".join(t.split())
        got = ids(entries, norm)
        assert not {0, 2, 3} & set(got), (t, got)
    # but the reference does match un-normalised texts ...
    assert ids(entries, "hot  dog") == [0]
    assert ids(entries, "hot\t\tdog") == [0]
    # ... and a double space next to one of the seven characters exists even in a
    # normalised text: "a, b" spaces to " a ,  b ". semantics section 4's "never matches" is about
    # double spaces between other characters.
    assert ids([",  b"], "a, b") == [0]


def test_empty_entry_follows_reference_semantics():
    # load_metadata rejects "", but the Matcher still equals the reference: the key is
    # two spaces, present when the spaced text has a double space.
    entries = ["", "a"]
    assert ids(entries, "a b") == [1]
    assert ids(entries, "a, b") == [0, 1]
    assert ids(entries, "a  b") == [0, 1]
    assert ids(entries, "") == [0]


def test_nested_and_overlapping_entries_all_match():
    entries = ["hot dog", "hot", "dog", "dog.", "hot dog.", "og", "hot dog stand"]
    assert ids(entries, "hot dog.") == [0, 1, 2]
    assert ids(["a b", "b c", "a b c", "b", "c d"], "a b c d") == [0, 1, 2, 3, 4]
    assert ids(["la la", "la"], "la la la") == [0, 1]


def test_duplicate_entries_both_ids_match():
    entries = ["dog", "cat", "dog", "3.5", "3.5", "dog"]
    assert ids(entries, "a dog and a cat") == [0, 1, 2, 5]
    assert ids(entries, "3.5") == []
    m = Matcher(entries)
    assert m.match_many(["dog", "cat", "x"]) == [[0, 2, 5], [1], []]
    assert m.stats["duplicate_strings"] == 1
    assert m.stats["never_match"] == 2  # ids 3 and 4


def test_unicode_composed_and_decomposed_do_not_match_each_other():
    composed, decomposed = "caf\u00e9", "cafe\u0301"
    entries = [composed, decomposed, "cafe"]
    assert ids(entries, "un " + composed) == [0]
    assert ids(entries, "un " + decomposed) == [1]


def test_unicode_other_cases():
    entries = ["🐶", "dog", "日本", "straße", "hot", "Ω"]
    assert ids(entries, "🐶 dog") == [0, 1]
    assert ids(entries, "日本 語") == [2]
    assert ids(entries, "日本語") == []
    assert ids(entries, "Straße strasse") == []
    assert ids(entries, "hot\u00a0dog") == []  # NBSP is not a separator for spacing
    assert ids(entries, "Ω, 🐶.") == [0, 5]


def test_case_sensitivity():
    entries = ["the", "The", "THE", "photo"]
    assert ids(entries, "The photo") == [1, 3]
    assert ids(entries, "the PHOTO") == [0]


def test_long_text():
    rnd = random.Random(11)
    words = ["alpha", "beta", "gamma", "delta", "eps"]
    text = " ".join(rnd.choice(words) for _ in range(4000)) + " omega end."
    assert len(text) > 20000
    text = "start " + text
    entries = ["start", "omega end", "end", "beta gamma", "zeta", "alpha alpha alpha", "end."]
    got = ids(entries, text)
    assert got == naive_match(text, entries)
    assert {0, 1, 2}.issubset(got) and 4 not in got and 6 not in got


def test_no_match_and_empty_text():
    entries = ["dog"]
    assert ids(entries, "") == []
    assert ids(entries, "cat") == []
    assert Matcher(entries).match_many([]) == []


# ------------------------------------------------------------- exhaustive / random

def test_is_matchable_is_exact_exhaustively():
    """Over the alphabet {a, space, ., ,}: an entry of length <= 4 matches some text iff
    is_matchable says so. Texts up to length 6 suffice (the witness in the proof has at
    most len(entry) + 2 characters)."""
    alphabet = "a .,"
    spaced = set()
    for n in range(7):
        for t in itertools.product(alphabet, repeat=n):
            spaced.add(spacing("".join(t)))
    for n in range(5):
        for e in itertools.product(alphabet, repeat=n):
            e = "".join(e)
            key = " " + e + " "
            can = any(key in s for s in spaced)
            assert can == is_matchable(e), repr(e)


def test_random_property_matcher_equals_naive():
    rnd = random.Random(20240601)
    alphabet = ["a", "b", "ab", " ", " ", "  ", "\t", "\n", "\r", "é", "e\u0301", "\u00a0",
                "😀", "X"] + list(PUNCT)

    def rand_str(max_parts):
        return "".join(rnd.choice(alphabet) for _ in range(rnd.randrange(0, max_parts)))

    total_texts = 0
    for round_ in range(60):
        entries = [rand_str(4) for _ in range(rnd.randrange(1, 40))]
        entries += rnd.sample(entries, min(3, len(entries)))  # duplicates
        texts = [rand_str(12) for _ in range(80)]
        texts += [" ".join(t.split()) for t in texts[:20]]  # normalised variants
        texts += [rnd.choice(entries) for _ in range(5)]  # texts equal to entries
        cache = 0 if round_ % 3 == 0 else 16
        check(entries, texts, cache_size=cache)
        total_texts += len(texts)
    assert total_texts >= 6000


def test_guard_keys_never_report(automaton_kind):
    # Guard keys " c<LF>" only order pyahocorasick's automaton; spacing() removes every LF.
    entries = ["zzz"]
    m = Matcher(entries)
    assert (m.prepare()._built.native is not None) == (automaton_kind == "native")
    texts = [",", ".", " ", "-", "|", "a\nb", ", \n.", "\n", "T\n", "\u2013\n", ""]
    assert m.match_many(texts) == [[] for _ in texts]
    assert m.stats == {"entries": 1, "keys": 1, "never_match": 0, "duplicate_strings": 0}


def test_match_many_and_bounded_cache():
    entries = ["dog", "hot dog", "logo"]
    m = Matcher(entries, cache_size=2)
    texts = ["logo", "hot dog", "logo", "a dog", "x" * 50, "logo"] * 5
    expected = [naive_match(t, entries) for t in texts]
    assert m.match_many(texts) == expected
    assert m.match_many(iter(texts)) == expected
    out = m.match("logo")
    out.append(99)  # callers may modify the returned lists (misses and hits)
    hit = m.match("logo")
    assert hit == [2]
    hit.append(97)
    assert m.match("logo") == [2]
    many = m.match_many(["logo", "logo"])
    many[0].append(98)
    assert many[1] == [2] and m.match("logo") == [2]
    assert len(m._cache) <= 2
    for i in range(50):
        m.match("text %d" % i)
        assert len(m._cache) <= 2
    long_text = "dog " * 300
    m2 = Matcher(entries, cache_max_len=100)
    assert m2.match(long_text) == [0] and m2.match_many([long_text]) == [[0]]
    assert m2._cache == {}
    m3 = Matcher(entries, cache_size=0)
    assert m3.match("logo") == [2] and m3.match_many(["logo"]) == [[2]] and m3._cache == {}


def test_matcher_basic_api():
    entries = ["a", "b", "a"]
    m = Matcher(entries)
    assert len(m) == 3
    assert m.digest == metadata_digest(entries)
    assert m.entries == entries
    assert m("a b") == [0, 1, 2]
    assert "3 entries" in repr(m)
    with pytest.raises(TypeError):
        Matcher(["a", 3])


# ------------------------------------------------------------------------- pickling

def test_pickle_round_trip_and_single_build_per_process():
    entries = ["hot dog", "hot", "dog", "3.5", "dog", "é"]
    texts = ["hot dog.", "Hot dog", "3.5 dogs", "a dog", "é!"]
    m = Matcher(entries)
    expected = [naive_match(t, entries) for t in texts]
    data = pickle.dumps(m)
    clear_automaton_cache()
    before = build_count()
    copies = [pickle.loads(data) for _ in range(5)]
    for c in copies:
        assert c._entries is None  # compact form only until a build needs the entries
        assert len(c) == len(entries) and c.digest == m.digest
        assert [c.match(t) for t in texts] == expected
        assert c.match_many(texts) == expected
    assert build_count() - before == 1
    # the original shares the same per-process automaton
    assert m.match_many(texts) == expected
    assert build_count() - before == 1
    assert pickle.loads(pickle.dumps(copies[0])).entries == entries
    # the pickle holds no automaton: small even though built
    assert len(pickle.dumps(copies[0])) < 1000


def test_pickle_with_lone_surrogates():
    entries = ["a\ud800b", "x"]
    m = pickle.loads(pickle.dumps(Matcher(entries)))
    assert m.entries == entries
    assert m.match("a\ud800b x") == [0, 1]


def test_corrupt_pickle_is_detected():
    m = Matcher(["a", "b"])
    state = m.__getstate__()
    state = dict(state, blob=matching._pack(["a", "c"]))
    clear_automaton_cache()
    c = Matcher.__new__(Matcher)
    c.__setstate__(state)
    with pytest.raises(ValueError, match="corrupt"):
        c.match("a")


# --------------------------------------------------------------- real data (shared)

def _token_oracle(entries, texts):
    """Naive semantics ("entry e matches t iff ' e ' in spacing(t)"), evaluated only on
    texts that could contain the key: if " e " is a substring of S = spacing(t), every
    piece of e.split(" ") is bounded by spaces in S, so it is an element of
    S.split(" "). Candidates are the texts holding the rarest piece; the test on each
    candidate is the reference predicate itself. Independent of Aho-Corasick and of the
    never-match proof (entries with TAB, "3.5", ... are evaluated like any other)."""
    spaced = [spacing(t) for t in texts]
    postings = defaultdict(set)
    for i, s in enumerate(spaced):
        for tok in set(s.split(" ")):
            postings[tok].add(i)
    result = [[] for _ in texts]
    empty = set()
    for e_id, e in enumerate(entries):
        pieces = e.split(" ")
        cands = min((postings.get(p, empty) for p in pieces), key=len)
        if not cands:
            continue
        key = " " + e + " "
        for i in cands:
            if key in spaced[i]:
                result[i].append(e_id)
    return result


def test_real_captions_with_500k_metadata():
    pq = pytest.importorskip("pyarrow.parquet")
    meta_path = shared_path("data", "metadata", "metadata-standin-500k.json")
    cap_path = shared_path("data", "captions", "img2dataset-test_10000.parquet")
    entries = json.loads(meta_path.read_bytes())
    texts = pq.read_table(str(cap_path), columns=["TEXT"]).column("TEXT").to_pylist()
    assert len(entries) == 500_000 and len(texts) == 10_000
    t0 = time.perf_counter()
    m = Matcher(entries)
    try:
        got_many = m.match_many(texts)
        got_one = [m.match(t) for t in texts]
    finally:
        clear_automaton_cache()  # do not keep 170 MB for the rest of the session
    oracle = _token_oracle(entries, texts)
    assert got_many == oracle
    assert got_one == oracle
    # the oracle itself agrees with the plain reference loop on a sample
    for i in range(0, 10_000, 2000):
        assert naive_match(texts[i], entries) == oracle[i]
    total = sum(map(len, oracle))
    assert total == 36612  # pinned: 3.66 matches per caption
    assert sum(1 for r in oracle if r) == 8388
    assert time.perf_counter() - t0 < 60
