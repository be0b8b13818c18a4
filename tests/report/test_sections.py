"""The report's data sections (issue #14): Fig. 2 over matched entries, the self-contained
page, image hosts and duplicates, time per stage, dropped texts and LID scores from a
bounded re-read of the inputs."""

import base64
import html
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from metaclip_spark.report import data as report_data
from metaclip_spark.report import page as report
from metaclip_spark.report import plots as report_plots
from metaclip_spark.steps import drops
from tests.report.runs import COUNTS, T, POOL_SCHEMA, balanced_counts, parse, rows_of, _check_pngs


def test_fig2_curve_has_one_point_per_matched_entry():
    c = np.array(COUNTS)
    d = report_plots.fig2_curves(COUNTS, T, balanced_counts())
    nz = np.sort(c[c > 0], kind="stable")
    assert d["order"].size == d["raw"].size == int((c > 0).sum()) == 25 and d["never"] == 5
    assert d["raw"].tolist() == np.cumsum(nz).tolist() and d["raw"][-1] == 386
    assert d["expected"].tolist() == np.cumsum(np.minimum(nz, T)).tolist()
    assert d["balanced"][-1] == sum(balanced_counts())
    assert d["cross"] == int(((c > 0) & (c <= T)).sum()) == 14
    assert (c[d["order"]] > 0).all()
    # a run much smaller than its metadata: 207 of 40,904 entries matched (the old demo)
    big = np.zeros(40_904, np.int64)
    big[np.arange(0, 40_904, 197)[:207]] = np.arange(1, 208)
    d = report_plots.fig2_curves(big)
    assert d["raw"].size == 207 and d["never"] == 40_697 and d["expected"] is None and d["cross"] is None


def test_fig2_text_states_never_matched(run2):
    raw, _ = parse(report.write_report(str(run2), input_files=0))
    assert ('<p id="fig2-entries">The curves show the <b>25 entries that matched at least once</b>; '
            '<b>5 of the 30 metadata entries never matched</b>') in raw


def test_page_is_self_contained(run2):
    raw, page = parse(report.write_report(str(run2)))
    assert page.refs and all(v.startswith("data:image/png;base64,") for tag, k, v in page.refs), \
        [r[:2] + (r[2][:60],) for r in page.refs if not r[2].startswith("data:")]
    assert all(tag == "img" and k == "src" for tag, k, _ in page.refs)
    assert len(page.imgs) == 3
    for needle in ("<link", "url(", "@import", "<iframe", "<object", "<embed"):
        assert needle not in raw


HAND_POOL = [  # (url, text): hosts and duplicates counted by hand below
    ("http://A.example/1.jpg", "one"), ("http://a.example/1.jpg", "one"),          # 2 images (path case differs not, host does)
    ("http://a.example/1.jpg", "one"),                                             # duplicate pair of row 2
    ("http://a.example/1.jpg", "uno"),                                             # same image, other text
    ("https://user:pw@a.example:8443/2.jpg", "two"),                               # host without user info / port
    ("http://b.example/x y.jpg", "space"), ("http://b.example/xy.jpg", "space"),   # one image (semantics section 9 key)
    ("http://b.example/x\ty.jpg", "tab"),                                          # same image again
    ("http://c.example/3.jpg", "three"),
]


def _write_pool(folder, rows, per_file):
    folder.mkdir(parents=True)
    full = [{"url": u, "text": t, "entry_ids": [0], "page_url": "http://p/", "lid_score": 0.9, "source": "s",
             "record_id": None, "record_offset": i, "key_hash": i} for i, (u, t) in enumerate(rows)]
    for k in range(0, len(full), per_file):
        pq.write_table(pa.Table.from_pylist(full[k:k + per_file], POOL_SCHEMA), folder / ("part-%05d.parquet" % (k // per_file)))


def test_top_hosts_and_duplicates_hand_count(tmp_path):
    urls = [u for u, _ in HAND_POOL]
    hosts = report_data.top_hosts(urls, top=10, curated_urls=[urls[0], urls[5], urls[8], urls[8]])
    assert hosts == [{"host": "a.example", "rows": 5, "images": 3, "curated": 1},
                     {"host": "b.example", "rows": 3, "images": 1, "curated": 1},
                     {"host": "c.example", "rows": 1, "images": 1, "curated": 2}]
    assert [h["host"] for h in report_data.top_hosts(urls, top=2)] == ["a.example", "b.example"]
    d = report_data.duplicates(urls, [t for _, t in HAND_POOL])
    # distinct pairs: row 3 repeats row 2 -> 8; images: A/1, a/1, a:8443/2, b/xy, c/3 -> 5
    assert d == {"rows": 9, "distinct_pairs": 8, "distinct_images": 5, "pair_dup_rate": 1 / 9,
                 "image_dup_rate": 4 / 9}
    run = tmp_path / "run"
    _write_pool(run / "pool", HAND_POOL, per_file=4)          # 3 files: 4 + 4 + 1 rows
    _write_pool(run / "curated", HAND_POOL[:2], per_file=10)
    ov = report_data.pool_overview(str(run))
    assert ov["dup"] == d and ov["files_read"] == ov["files"] == 3 and ov["n_hosts"] == 3
    assert ov["curated_rows_read"] == 2 and ov["hosts"][0]["curated"] == 2
    cut = report_data.pool_overview(str(run), max_rows=5)     # bounded: whole files until 5 rows, cut
    assert cut["dup"]["rows"] == 5 and cut["files_read"] == 2 and cut["dup"]["distinct_pairs"] == 4


def test_hosts_and_duplicates_in_report(run2):
    raw, page = parse(report.write_report(str(run2), input_files=0))
    tables = page.tables["hosts"]
    q = dict(tuple(r) for r in rows_of(tables[0]))
    assert q["pool rows read"] == "40" and q["distinct (url, text) pairs"] == "40"
    assert q["duplicate pairs (rows repeating an earlier (url, text))"] == "0 (0.00%)"
    assert q["curated rows read"] == "26"
    # pool urls: row 2 is on x.test, the 39 others on img.test; kept rows: i % 3 != 0 (row 2 kept)
    assert rows_of(tables[1]) == [["1", "img.test", "39", "97.50%", "39", "25"],
                                  ["2", "x.test", "1", "2.50%", "1", "1"]]
    assert "Computed on the whole pool (40 rows, 2 files)" in raw


def test_time_per_stage(run2):
    files = [{"source": "s3://b/a.warc.gz", "output": "pool/a.parquet", "rows": 10, "failed": None, "seconds": 1.5},
             {"source": "s3://b/b.warc.gz", "output": "pool/b.parquet", "rows": 20, "failed": None, "seconds": 0.25},
             {"source": "s3://b/c.warc.gz", "output": None, "rows": 0, "failed": "EOFError", "seconds": 2.0}]
    (run2 / "stats" / "match-files.json").write_text(json.dumps(files))
    bal = json.loads((run2 / "stats" / "balance.json").read_text())
    bal["wall_seconds"] = 12.5
    (run2 / "stats" / "balance.json").write_text(json.dumps(bal))
    tm = report_data.timing(str(run2), {}, bal)
    assert (tm["files"], tm["sum"], tm["mean"], tm["max"], tm["rows"]) == (3, 3.75, 1.25, 2.0, 30)
    assert [f["source"] for f in tm["slowest"]] == ["s3://b/c.warc.gz", "s3://b/a.warc.gz", "s3://b/b.warc.gz"]
    assert tm["stages"] == [("balance", "wall_seconds", 12.5)]
    _, page = parse(report.write_report(str(run2), input_files=0))
    q = dict(tuple(r) for r in rows_of(page.tables["timing"][0]))
    assert q["stage 1: sum of per-file seconds (task time, all workers)"] == "3.75 s"
    assert q["stage 1: mean / max seconds per file"] == "1.25 s / 2.00 s"
    assert q["balance: wall_seconds"] == "12.50 s"
    assert [r[2] for r in rows_of(page.tables["timing"][1])] == ["2.000", "1.500", "0.250"]


SAMPLE_META = ["the", "a", "of", "in", "and", "with", "dog", "cat", "photo", "red", "car", "on"]


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory):
    """Stage 1 (Spark-free, pipeline.match_file) on the bundled sample's two files with a small
    metadata list; manifest names relative to the run folder, as jobs/match.py writes them."""
    from metaclip_spark.metadata import defaults
    from metaclip_spark.steps import pipeline
    from metaclip_spark.steps.extract import ExtractLimits
    from metaclip_spark.steps.language import LanguageId
    from metaclip_spark.steps.match import Matcher

    root = tmp_path_factory.mktemp("sample") / "run"
    (root / "stats").mkdir(parents=True)
    model = defaults.default_lid_model_path()
    lid, matcher = LanguageId(model, 0.5), Matcher(SAMPLE_META)
    inputs = [str(defaults.sample_dir() / n) for n in ("SYNTH-1-00000.warc.gz", "SYNTH-1-00001.warc.wat.gz")]
    results = [pipeline.match_file(u, str(root / "pool"), matcher, lid, ExtractLimits()) for u in inputs]
    assert all(r.failed is None for r in results)
    counts, per_entry = {}, np.zeros(len(SAMPLE_META), np.int64)
    for r in results:
        for k, v in r.stats.counts.items():
            counts[k] = counts.get(k, 0) + v
        np.add.at(per_entry, r.entry_ids, r.counts)
    files = [{"source": r.source, "output": "pool/" + r.output.rsplit("/", 1)[-1], "rows": r.rows,
              "failed": None, "seconds": r.seconds} for r in results]
    (root / "stats" / "match-files.json").write_text(json.dumps(files))
    (root / "stats" / "match.json").write_text(json.dumps({
        "stage": "match", "inputs": 2, "inputs_failed": 0, "counts": counts, "pool_rows": counts["pool_rows"],
        "metadata": "test", "lid_model": model}))
    (root / "config-match.json").write_text(json.dumps({"lid": {"model": "", "threshold": 0.5}, "extract": {}}))
    (root / "entry_counts").mkdir()
    pq.write_table(pa.table({"entry_id": pa.array(range(len(SAMPLE_META)), pa.int32()), "entry": SAMPLE_META,
                             "count": per_entry}), root / "entry_counts" / "entry_counts.parquet")
    return root, counts, results


def test_input_sample_agrees_with_stage1(sample_run):
    root, counts, _ = sample_run
    match = json.loads((root / "stats" / "match.json").read_text())
    smp = report_data.input_sample(str(root), match, max_files=2, max_pairs=10**6)
    assert not smp["errors"] and len(smp["files"]) == 2
    # every pair stage 1 sent to LID is re-read and classified as stage 1 did
    assert smp["scored"] == counts["pairs"] == 310
    assert smp["classes"] == {"matched": counts["matched"], "no_match": counts["dropped.no_match"],
                              "lid_low_score": counts["dropped.lid_low_score"],
                              "not_english": counts["dropped.not_english"]}
    assert sum(smp["hist_en"]) + sum(smp["hist_other"]) == smp["scored"]
    assert len(smp["hist_en"]) == len(smp["edges"]) - 1 == report_data.HIST_BINS
    assert sum(smp["hist_en"]) == smp["scored"] - counts["dropped.not_english"]
    assert dict(smp["kept_at"])[0.5] == counts["english"] == counts["matched"] + counts["dropped.no_match"]
    for c in ("not_english", "lid_low_score", "no_match"):
        got = smp["samples"][c]
        assert 0 < len(got) <= 12 and len({s["text"] for s in got}) == len(got)
        for s in got:
            assert (s["label"] != "en") if c == "not_english" else (s["label"] == "en")
            assert (s["score"] < 0.5) if c == "lid_low_score" else True
    # bounded: one file, its first 40 pairs
    one = report_data.input_sample(str(root), match, max_files=1, max_pairs=40)
    assert one["scored"] == 40 and sum(one["classes"].values()) == 40 and len(one["files"]) == 1
    assert one["files"][0]["source"].endswith("SYNTH-1-00000.warc.gz")
    # a model that is not here is not replaced by another one: the section says why
    gone = report_data.input_sample(str(root), dict(match, lid_model="s3://models/lid.176.bin"))
    assert "not a local file" in gone["error"]


def test_dropped_section_in_report(sample_run):
    root, counts, _ = sample_run
    raw, page = parse(report.write_report(str(root), out_path=str(root / "r" / "index.html")))
    tables = page.tables["dropped"]
    outcome = {r[0]: r[1:] for r in rows_of(tables[0])}
    meaning = {k: drops.BY_NAME[k].meaning for k in ("no_match", "not_english")}   # the registry's wording
    assert outcome[meaning["no_match"]][0] == _n(counts["dropped.no_match"])
    assert outcome[meaning["no_match"]][2] == _n(counts["dropped.no_match"])
    assert outcome[meaning["not_english"]][0] == _n(counts["dropped.not_english"])
    bins = rows_of(tables[2])
    assert len(bins) == 20 and sum(int(b[1]) + int(b[2]) for b in bins) == 310
    assert "310 pairs were LID-scored" in raw
    for c in ("not_english", "lid_low_score", "no_match"):
        assert 'id="drop-%s"' % c in raw
    assert len(page.imgs) == 4 and all(s.startswith("data:image/png;base64,") for s in page.imgs)
    _check_pngs(page.imgs)
    # inputs gone: the section says why, the rest of the report is there
    files = json.loads((root / "stats" / "match-files.json").read_text())
    moved = [dict(f, source=str(root / "gone" / f["source"].rsplit("/", 1)[-1])) for f in files]
    (root / "stats" / "match-files.json").write_text(json.dumps(moved))
    try:
        raw, page = parse(report.write_report(str(root), out_path=str(root / "r2" / "index.html")))
    finally:
        (root / "stats" / "match-files.json").write_text(json.dumps(files))
    assert "Not available:" in raw and "could not be opened" in raw and "summary" in page.tables


def _n(x):
    return format(int(x), ",")
