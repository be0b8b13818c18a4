"""Worldwide matching (SPEC section 10): naive_world_match (the definition) == WorldMatcher on both
automata (the compiled one from mapped flat files, and pyahocorasick built in-process: the
reference path, constructed directly), on the non-English captions of ../shared/data/captions
grouped by fastText lid.176 with a metadata built from them, and on hand-made cases."""

import hashlib
import json
import os
import pickle
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

from metaclip_spark.metadata.defaults import default_lid_model_path
from metaclip_spark.metadata.world import world_metadata_from_lists
from metaclip_spark.metadata.languages import NO_SPACE_PUNCTUATION, is_cjk_or_similar, world_key
from metaclip_spark.steps import world_automata
from metaclip_spark.steps.language import LanguageId
from metaclip_spark.steps.world_match import WorldMatcher, naive_world_match
from tests.conftest import shared_path
from tests.servers import FaultServer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KINDS = [pytest.param("native", marks=pytest.mark.skipif(not world_automata.native_available(),
                                                         reason="compiled WorldAutomaton not built")), "python"]


def matcher(kind, lists, tmp_path):
    meta = world_metadata_from_lists(lists)
    return WorldMatcher.build(meta, str(tmp_path / ("automata-" + kind)), native=kind == "native"), meta


def oracle(meta, texts, langs):
    lists = {lang: (meta.entries(lang), meta.matchable(lang)) for lang in set(langs)}
    return [naive_world_match(t, *lists[lang]) for t, lang in zip(texts, langs)]


# ------------------------------------------------------------------------------ hand-made cases
HAND = {
    "en": ["C++", "C", "11", "hot dog", "hot", "dog", "Dog", "a" * 300, "**", "a", "——", "hot dog"],
    "zh": ["猫", "小猫", "猫咪", "狗", "猫", "（株）", "!!"],
    "th": ["ภูเก็ต", "ขวด", "ปี", "สวย"],
    "ja": ["（株）", "「猫」", "【新品】", "東京", "画像1:", "猫"],
}
HAND_CASES = [
    ("en", "C++11", [0]),                                   # " C++" in " C++11 ", " C " and " 11 " not
    ("en", "I like C++ and C", [0, 1]),
    ("en", "Hot Dog", [6]),                                 # letters keep section 4's spaces
    ("en", "hot-dog", []),
    ("en", "hot dog.", [3, 4, 5, 11]),                      # nested, and both copies of "hot dog"
    ("en", "a " + "a" * 300, [9]),                          # the 300-char entry is dropped
    ("en", "a**b a——b", []),                                # punctuation-only entries are dropped
    ("zh", "我的小猫咪很可爱", [0, 1, 2, 4]),                 # inside unspaced text; duplicate "猫"
    ("zh", "猫", [0, 4]),                                   # an entry that is one CJK char
    ("zh", "ACME（株）", [5]),
    ("zh", "狗!!", [3]),
    ("th", "ทะเลภูเก็ตสวย", [0, 3]),
    ("th", "Refresh Extra Care Deodorant Spray 1 ขวด 60 ml", [1]),
    ("ja", "ACME（株）東京", [0, 3]),                          # full-width marks at both ends
    ("ja", "新しい「猫」と【新品】", [1, 2, 5]),
    ("ja", "画像1: 1900-10's Mini Tin Case", []),            # ":" is spaced: " 画像1 : " has no "画像1:"
    ("ja", "xx東京yy", [3]),
]


def test_oracle_on_hand_cases():
    meta = world_metadata_from_lists(HAND)
    for lang, text, want in HAND_CASES:
        assert naive_world_match(text, meta.entries(lang), meta.matchable(lang)) == want, (lang, text)
    assert naive_world_match("hot dog.", HAND["en"]) == [3, 4, 5, 11]        # matchable=None: every entry


@pytest.mark.parametrize("kind", KINDS)
def test_hand_cases(kind, tmp_path):
    m, meta = matcher(kind, HAND, tmp_path)
    assert m.kind == kind and m.languages == ["en", "ja", "th", "zh"]
    texts, langs, want = [c[1] for c in HAND_CASES], [c[0] for c in HAND_CASES], [c[2] for c in HAND_CASES]
    assert m.match_many(texts, langs) == want
    assert [m.match(t, l) for t, l in zip(texts, langs)] == want
    # the same text in two languages, and a text repeated: fresh lists, every one right
    got = m.match_many(["猫", "猫", "猫", "C++11"], ["zh", "ja", "zh", "en"])
    assert got == [[0, 4], [5], [0, 4], [0]] and got[0] is not got[2]
    with pytest.raises(KeyError, match="'de' has no automaton"):
        m.match_many(["x"], ["de"])
    with pytest.raises(ValueError, match="2 texts but 1 languages"):
        m.match_many(["x", "y"], ["en"])


def test_manifest_and_files(tmp_path):
    meta = world_metadata_from_lists(HAND)
    py = world_automata.build_automata(meta, str(tmp_path / "py"), native=False)
    assert sorted(os.listdir(tmp_path / "py")) == ["manifest.json"]
    assert py == json.loads((tmp_path / "py" / "manifest.json").read_text())
    assert (py["format"], py["kind"], py["digest"]) == (1, "python", meta.digest)
    assert py["languages"] == {
        "en": {"entries": 12, "dropped": 3, "keys": 8, "duplicates": 1},
        "ja": {"entries": 6, "dropped": 0, "keys": 6, "duplicates": 0},
        "th": {"entries": 4, "dropped": 0, "keys": 4, "duplicates": 0},
        "zh": {"entries": 7, "dropped": 1, "keys": 5, "duplicates": 1}}
    if not world_automata.native_available():
        pytest.skip("compiled WorldAutomaton not built")
    nat = world_automata.build_automata(meta, str(tmp_path / "nat"))
    assert nat["kind"] == "native"
    assert sorted(os.listdir(tmp_path / "nat")) == ["en.ac", "en.dups.json", "ja.ac", "manifest.json",
                                                     "th.ac", "zh.ac", "zh.dups.json"]
    for lang, info in nat["languages"].items():
        data = (tmp_path / "nat" / info["file"]).read_bytes()
        assert (info["bytes"], info["sha256"]) == (len(data), hashlib.sha256(data).hexdigest())
        assert {k: info[k] for k in ("entries", "dropped", "keys", "duplicates")} == py["languages"][lang]
    assert json.loads((tmp_path / "nat" / "en.dups.json").read_text()) == {"3": [3, 11]}
    assert json.loads((tmp_path / "nat" / "zh.dups.json").read_text()) == {"0": [0, 4]}
    # a rebuild writes the same bytes (the manifest's checksums name the files), one language at a
    # time or several in threads
    assert world_automata.build_automata(meta, str(tmp_path / "again"), threads=1) == nat
    assert world_automata.build_automata(meta, str(tmp_path / "again3"), threads=3) == nat


def test_current_manifest(tmp_path):
    meta = world_metadata_from_lists(HAND)
    where = str(tmp_path / "a")
    assert world_automata.current_manifest(where, meta.digest) is None            # nothing there yet
    built = world_automata.build_automata(meta, where)
    native = world_automata.native_available()
    assert built["kind"] == ("native" if native else "python")
    assert world_automata.current_manifest(where, meta.digest) == built
    assert world_automata.current_manifest(where, "0" * 64) is None               # other metadata
    if native:
        assert built["automaton_version"] == world_automata.automaton_version() == 3
        stale = dict(built, automaton_version=2)                                  # an older layout
        (tmp_path / "a" / "manifest.json").write_text(json.dumps(stale))
        assert world_automata.current_manifest(where, meta.digest) is None
        world_automata.build_automata(meta, where, native=False)                  # python kind: rebuild
        assert world_automata.current_manifest(where, meta.digest) is None
    (tmp_path / "a" / "manifest.json").write_text("{")
    assert world_automata.current_manifest(where, meta.digest) is None


@pytest.mark.parametrize("kind", KINDS)
def test_rebuilt_folder_is_read_again(kind, tmp_path):
    where = str(tmp_path / "same")
    first = WorldMatcher.build(world_metadata_from_lists({"zh": ["猫", "狗"]}), where, native=kind == "native")
    assert first.match_many(["小猫", "狗"], ["zh", "zh"]) == [[0], [1]]
    second = WorldMatcher.build(world_metadata_from_lists({"zh": ["狗", "猫咪"]}), where, native=kind == "native")
    assert second.match_many(["小猫", "狗", "猫咪"], ["zh", "zh", "zh"]) == [[], [0], [1]]
    assert first.match("狗", "zh") == [1]                 # a matcher keeps what it loaded


def test_digest_checked_and_python_kind_needs_entries(tmp_path):
    meta = world_metadata_from_lists(HAND)
    world_automata.build_automata(meta, str(tmp_path / "py"), native=False)
    with pytest.raises(ValueError, match="pass world_metadata"):
        WorldMatcher(str(tmp_path / "py"))
    with pytest.raises(ValueError, match="was built for metadata"):
        WorldMatcher(str(tmp_path / "py"), world_metadata_from_lists({"en": ["x"]}))


# ------------------------------------------------------------------------------ the captions
def unspaced(word):
    return any(is_cjk_or_similar(c) and c not in NO_SPACE_PUNCTUATION for c in word)


def ngram_entries(texts):
    """Word uni/bigrams, character 1-3-grams of the words with CJK-or-similar characters, the
    words with punctuation at an edge stripped of it, a dropped entry and a duplicate."""
    out = []
    for t in texts:
        words = t.split()
        out += words + [a + " " + b for a, b in zip(words, words[1:])]
        out += [w.strip("".join(NO_SPACE_PUNCTUATION)) for w in words
                if w[0] in NO_SPACE_PUNCTUATION or w[-1] in NO_SPACE_PUNCTUATION]
        for w in filter(unspaced, words):
            out += [w[i:i + k] for k in (1, 2, 3) for i in range(len(w) - k + 1)]
    out = [e for e in dict.fromkeys(out) if e]
    return out + ["x" * 300, "——", out[0]]


@pytest.fixture(scope="module")
def captions():
    path = shared_path("data", "captions", "img2dataset-test_10000.parquet")
    texts = pq.read_table(path, columns=["TEXT"]).column("TEXT").to_pylist()
    texts = [t for t in texts if t]
    labels, _ = LanguageId(default_lid_model_path(), 0.0).predict([t.replace("\n", " ") for t in texts])
    keep = ("ja", "zh", "th", "ko", "fr", "de", "ru", "es", "el", "ar")
    rows = [(t, l) for t, l in zip(texts, labels) if l in keep]
    lists = {lang: ngram_entries([t for t, l in rows if l == lang]) for lang in keep}
    texts, langs = [t for t, _ in rows], [l for _, l in rows]
    return texts, langs, lists, oracle(world_metadata_from_lists(lists), texts, langs)


def test_caption_metadata(captions):
    texts, langs, lists, want = captions
    assert len(texts) == 614
    assert {k: langs.count(k) for k in sorted(set(langs))} == {
        "ar": 8, "de": 183, "el": 12, "es": 102, "fr": 199, "ja": 37, "ko": 5, "ru": 41, "th": 3, "zh": 24}
    assert {k: len(v) for k, v in lists.items()} == {
        "ja": 793, "zh": 364, "th": 93, "ko": 82, "fr": 2372, "de": 2061, "ru": 638, "es": 1448, "el": 147, "ar": 132}
    per_lang = {k: sum(len(w) for w, l in zip(want, langs) if l == k) for k in sorted(lists)}
    assert per_lang == {"ar": 124, "de": 1972, "el": 120, "es": 1368, "fr": 2382, "ja": 579, "ko": 71,
                        "ru": 578, "th": 90, "zh": 315}
    assert sum(1 for w in want if w) == 598
    # matches of keys without a leading space (CJK-or-similar or punctuation first): section 10's part
    assert sum(1 for w, l in zip(want, langs) for i in w if not world_key(lists[l][i]).startswith(" ")) == 483


@pytest.mark.parametrize("kind", KINDS)
def test_captions_equal_the_oracle(kind, captions, tmp_path):
    texts, langs, lists, want = captions
    m, meta = matcher(kind, lists, tmp_path)
    assert m.match_many(texts, langs) == want
    assert sum(map(len, want)) == 7599


# ------------------------------------------------------------------------------ pickles and files
CHILD = """
import json, pickle, sys
from metaclip_spark.steps import world_automata
m = pickle.loads(open(sys.argv[1], "rb").read())
texts, langs = json.loads(open(sys.argv[2]).read())
print(json.dumps({"ids": m.match_many(texts, langs), "mapped": world_automata.mapped_count()}))
"""


@pytest.mark.parametrize("kind", KINDS)
def test_pickled_matcher_in_a_subprocess(kind, tmp_path):
    m, meta = matcher(kind, HAND, tmp_path)
    texts, langs = [c[1] for c in HAND_CASES], [c[0] for c in HAND_CASES]
    blob = pickle.dumps(m)
    if kind == "native":
        assert len(blob) < 2000                     # the folder and the manifest only
    (tmp_path / "m.pkl").write_bytes(blob)
    (tmp_path / "in.json").write_text(json.dumps([texts, langs]))
    out = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / "m.pkl"), str(tmp_path / "in.json")],
                         cwd=ROOT, capture_output=True, text=True, check=True)
    child = json.loads(out.stdout)
    assert child["ids"] == m.match_many(texts, langs) == [c[2] for c in HAND_CASES]
    assert child["mapped"] == (4 if kind == "native" else 0)


def test_remote_folder_copied_once_per_node(tmp_path):
    if not world_automata.native_available():
        pytest.skip("compiled WorldAutomaton not built")
    meta = world_metadata_from_lists(HAND)
    manifest = world_automata.build_automata(meta, str(tmp_path / "served"))
    server = FaultServer(root=str(tmp_path / "served"))
    try:
        cache = tmp_path / "cache"
        m = WorldMatcher(server.url + "/", cache_dir=str(cache))
        assert m.manifest == manifest
        assert m.match_many(["我的小猫咪很可爱", "hot dog."], ["zh", "en"]) == [[0, 1, 2, 4], [3, 4, 5, 11]]
        folder = cache / "metaclip-automata" / meta.digest
        sha = {n: manifest["languages"][n[:2]]["dups_sha256" if "dups" in n else "sha256"][:16]
               for n in ("zh.ac", "zh.dups.json", "en.ac", "en.dups.json")}
        assert sorted(p for p in os.listdir(folder) if not p.endswith(".lock")) == \
            sorted("%s.%s" % (sha[n], n) for n in sha)
        # a second matcher (a task unpickling it) maps nothing new and downloads nothing
        before = len(server.log)
        m2 = pickle.loads(pickle.dumps(m))
        assert m2.match_many(["ACME（株）東京", "猫"], ["ja", "zh"]) == [[0, 3], [0, 4]]
        assert [r[1] for r in server.log[before:]] == ["/ja.ac"]
        # a file whose bytes differ from the manifest's sha256 is refused
        bad = json.loads(json.dumps(manifest))
        bad["languages"]["th"]["sha256"] = "0" * 64
        with pytest.raises(ValueError, match="sha256"):
            WorldMatcher(server.url + "/", manifest=bad, cache_dir=str(cache)).match("ขวด", "th")
        assert not [p for p in os.listdir(folder) if "tmp" in p]
    finally:
        server.stop()
