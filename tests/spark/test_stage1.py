"""Stage 1 on a real local Spark session against generated corpora with ground truth.

Two generators: ../shared/tools/make_cc_corpus.py (skipped where ../shared is absent)
and the project's own metaclip_spark.synth (always runs). For both, `extract` must give
exactly the truth pairs from the WARC files and from the WAT files, and the pool must be
exactly the English (same LID model), matching (naive docs/semantics.md section 4 matcher) subset.
"""

import glob
import gzip
import json
import os
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest

from metaclip_spark import synth
from metaclip_spark.metadata import defaults
from metaclip_spark.run import outputs
from metaclip_spark.run.config import load_config
from metaclip_spark.spark.stage1 import run_extract, run_match
from metaclip_spark.steps.language import LanguageId
from metaclip_spark.steps.match import naive_match
from tests.conftest import shared_path

LID_DROPS = {"not_english", "lid_low_score"}


def truth_of(corpus: str) -> dict:
    """{file stem: [(record_id, page_url, url, text), ...]} in file order."""
    out = {}
    for path in sorted(glob.glob(os.path.join(corpus, "*.truth.jsonl.gz"))):
        stem = os.path.basename(path)[: -len(".truth.jsonl.gz")]
        rows = []
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            for line in fh:
                t = json.loads(line)
                rows.extend((t["warc_record_id"], t["page_url"], u, x) for u, x in t["pairs"])
        out[stem] = rows
    return out


def rows_by_source(folder: str, columns: list[str]) -> dict:
    out = {}
    for uri in outputs.list_files(folder, ".parquet"):
        t = pq.read_table(uri)
        for row in t.select(columns).to_pylist():
            out.setdefault(row["source"], []).append(row)
    return out


def stem(source: str) -> str:
    base = os.path.basename(source)
    return base.split(".warc")[0]


@pytest.fixture(scope="module")
def metadata_file(tmp_path_factory):
    entries = json.load(open(defaults.default_metadata_path()))[:3000] + ["photo of", "red car", "New York"]
    path = tmp_path_factory.mktemp("meta") / "metadata.json"
    path.write_text(json.dumps(entries))
    return str(path), entries


def check_corpus(spark, corpus, metadata_file, tmp_path):
    truth = truth_of(corpus)
    assert sum(len(v) for v in truth.values()) > 100
    for kind, pattern in (("warc", "*[0-9].warc.gz"), ("wat", "*.warc.wat.gz")):
        inputs = sorted(glob.glob(os.path.join(corpus, pattern)))
        out = tmp_path / ("extract-" + kind)
        summary = run_extract(load_config(overrides={"input.paths": inputs, "output": str(out)}), spark=spark)
        assert summary["inputs"] == len(inputs) and summary["inputs_failed"] == 0
        got = rows_by_source(str(out / "pairs"), ["source", "record_id", "page_url", "url", "text", "drop"])
        assert sorted(stem(s) for s in got) == sorted(truth)
        for source, rows in got.items():
            kept = [(r["record_id"], r["page_url"], r["url"], r["text"]) for r in rows
                    if r["drop"] is None or r["drop"] in LID_DROPS]
            assert kept == truth[stem(source)], (kind, source)

    # stage 1 on the WAT files: the pool is the English, matching subset of the truth
    path, entries = metadata_file
    inputs = sorted(glob.glob(os.path.join(corpus, "*.warc.wat.gz")))
    out = tmp_path / "match"
    cfg = load_config(overrides={"input.paths": inputs, "output": str(out), "match.metadata": path})
    summary = run_match(cfg, spark=spark)
    lid = LanguageId(defaults.default_lid_model_path(), cfg.lid.threshold)
    expected_counts = np.zeros(len(entries), dtype=np.int64)
    got = rows_by_source(str(out / "pool"), ["source", "record_id", "url", "text", "entry_ids", "page_url"])
    n_rows = 0
    for source, rows in got.items():
        pairs = truth[stem(source)]
        labels, scores = lid.predict([p[3] for p in pairs])
        expected = []
        for (rid, page, url, text), label, score in zip(pairs, labels, scores):
            if label == "en" and score >= cfg.lid.threshold:
                ids = naive_match(text, entries)
                if ids:
                    expected.append((rid, page, url, text, ids))
                    expected_counts[ids] += 1
        assert [(r["record_id"], r["page_url"], r["url"], r["text"], r["entry_ids"]) for r in rows] == expected
        n_rows += len(rows)
    counts = pq.read_table(out / "entry_counts" / "entry_counts.parquet")
    assert counts.column("entry").to_pylist() == entries
    assert counts.column("count").to_numpy().tolist() == expected_counts.tolist()
    assert summary["pool_rows"] == n_rows == summary["counts"]["matched"] > 0
    assert summary["entries_zero_count"] == int((expected_counts == 0).sum())
    c = summary["counts"]
    assert c["pairs"] == c["english"] + c["dropped.not_english"] + c["dropped.lid_low_score"]
    assert c["english"] == c["matched"] + c["dropped.no_match"]
    saved = json.loads(open(out / "config-match.json").read())
    assert saved["match"]["metadata"] == path and saved["input"]["paths"] == inputs
    assert os.path.exists(out / "_SUCCESS")
    return summary


def test_project_synth_corpus(spark, metadata_file, tmp_path):
    corpus = tmp_path / "corpus"
    synth.make_corpus(str(corpus), 120, 4, files=2)
    check_corpus(spark, str(corpus), metadata_file, tmp_path)


@pytest.fixture(scope="module")
def cc_corpus(tmp_path_factory):
    tool = shared_path("tools", "make_cc_corpus.py")
    out = tmp_path_factory.mktemp("cc")
    subprocess.run([sys.executable, str(tool), "--pages", "400", "--seed", "5", "--files", "2",
                    "--out", str(out), "--quiet"], check=True)
    return str(out)


def test_shared_generator_corpus(spark, cc_corpus, metadata_file, tmp_path):
    summary = check_corpus(spark, cc_corpus, metadata_file, tmp_path)
    assert summary["counts"]["html_pages"] > 300


def test_bad_metadata_and_model_fail_before_spark(tmp_path):
    from metaclip_spark.steps.language import ModelError
    from metaclip_spark.metadata.load import MetadataError

    bad = tmp_path / "m.json"
    bad.write_text('["ok", ""]')
    with pytest.raises(MetadataError):
        run_match(load_config(overrides={"output": str(tmp_path / "o"), "match.metadata": str(bad)}),
                  spark="not used: the check must fail first")
    with pytest.raises(ModelError):
        run_match(load_config(overrides={"output": str(tmp_path / "o"), "lid.model": str(tmp_path / "none.bin")}),
                  spark="not used")


def test_rerun_into_finished_output_needs_overwrite(spark, tmp_path):
    from metaclip_spark.run.config import ConfigError

    out = tmp_path / "run"
    cfg = load_config(overrides={"output": str(out)})
    run_match(cfg, spark=spark)
    with pytest.raises(ConfigError, match="--overwrite"):
        run_match(cfg, spark=spark)
    again = run_match(load_config(overrides={"output": str(out), "overwrite": True}), spark=spark)
    assert again["inputs"] == 2 and again["pool_rows"] > 0
