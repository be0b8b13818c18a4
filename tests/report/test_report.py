"""HTML run report: the page built from a hand-made run folder (no Spark): numbers, samples,
escaping, embedded images, stage-1-only and empty runs, the CLI and a real browser."""

import base64
import html
import json
import os
import pathlib
import shutil
import subprocess

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from metaclip_spark.report import page as report
from metaclip_spark.steps import drops
from tests.report.runs import (COUNTS, NAMES, T, HOSTILE_TEXT, HOSTILE_URL, balanced_counts, make_run, parse, rows_of,
                               _pool_row, _kept, _check_pngs)


def test_funnel_reads_the_drop_registry(run2):
    """The funnel's drop table: every reason with the registry's step and meaning; stage 2's
    url_unencodable (stats/balance.json "dropped") is its own row, not part of not_drawn."""
    bal = json.loads((run2 / "stats" / "balance.json").read_text())
    bal["dropped"] = {"url_unencodable": 3}
    (run2 / "stats" / "balance.json").write_text(json.dumps(bal))
    _, page = parse(report.write_report(str(run2)))
    rows = rows_of(page.tables["funnel"][1])
    for name, step, meaning, _ in rows:
        assert (step, meaning) == (drops.BY_NAME[name].funnel, drops.BY_NAME[name].meaning)
    got = {r[0]: r[3] for r in rows}
    assert got["url_unencodable"] == "3" and got["not_drawn"] == "11"      # 40 pool - 26 curated - 3
    assert [r[0] for r in rows][-2:] == ["url_unencodable", "not_drawn"]
    assert report.DROPS == {d.name: (d.funnel, d.meaning) for d in drops.REGISTRY if d.step != "build_metadata"}


def test_stage2_report_numbers(run2):
    out = report.write_report(str(run2))
    assert out == str(run2 / "report" / "index.html")
    raw, page = parse(out)
    assert page.scripts == 0
    assert "stage1-only" not in raw
    summary = dict(tuple(r) for r in rows_of(page.tables["summary"][0]))
    c = np.array(COUNTS)
    assert summary["metadata entries"] == "30"
    assert summary["entries with count 0 (never matched)"] == "5"
    assert summary["head entries (count > t)"] == "11"
    assert summary["total matches (sum of counts)"] == format(int(c.sum()), ",") == "386"
    assert summary["share of matches in head entries"] == "%.2f%%" % (100 * c[c > T].sum() / c.sum())
    assert summary["tail share (matches in entries with count < t)"] == "%.2f%%" % (100 * c[c < T].sum() / c.sum())
    assert summary["pool size (matched pairs)"] == "40"
    assert summary["matches per pool pair"] == "%.3f" % (386 / 40)
    assert summary["curated size (actual)"] == "26"
    assert summary["curated size (expected)"] == "25.50"
    assert summary["keep rate (curated / pool)"] == "65.00%"
    assert summary["t"] == "10"

    top = rows_of(page.tables["top-entries"][0])
    order = sorted(range(30), key=lambda i: (-COUNTS[i], i))[:20]
    assert len(top) == 20
    assert [r[2] for r in top] == [NAMES[i] for i in order]
    assert [r[2] for r in top[:3]] == ["of", "in", "and"]
    assert [r[3] for r in top] == [str(COUNTS[i]) for i in order]
    assert [r[7] for r in top] == [str(balanced_counts()[i]) for i in order]
    assert top[0][5] == "%.6f" % (10 / 60)
    # ties (7, 7) keep entry-id order
    assert [r[1] for r in top if r[3] == "7"] == ["5", "6"]

    funnel = rows_of(page.tables["funnel"][0])
    assert [(r[0], r[1]) for r in funnel] == [
        ("WARC/WAT records read", "1,000"), ("HTML pages", "380"), ("images (<img> / IMG@/src)", "5,000"),
        ("images with alt", "3,000"), ("(url, text) pairs", "2,600"), ("English pairs", "1,300"),
        ("matched pairs (pool)", "40"), ("curated pairs (balanced)", "26")]
    assert funnel[2][2] == "13.16 per page" and funnel[3][2] == "60.00%"
    drops = {r[0]: r[3] for r in rows_of(page.tables["funnel"][1])}
    assert drops == {"duplicate_in_page": "50", "empty_alt": "150", "lid_low_score": "100", "no_alt": "2,000",
                     "no_match": "1,260", "non_http_url": "200", "not_english": "1,200", "not_html": "20",
                     "not_drawn": "14"}
    assert [r for r in rows_of(page.tables["funnel"][2])] == [["truncated_record", "2"]]
    assert rows_of(page.tables["funnel"][3]) == [["s3://bucket/bad<1>.warc.gz", "EOFError: truncated <gzip>"]]

    header = "".join(page.text)
    for needle in ("tail share", "Seed", "lid.176.ftz", "conf/metadata<test>.json", str(run2)):
        assert needle in header
    assert "solved for a tail share" in raw


def test_samples_kept_and_dropped(run2):
    raw, page = parse(report.write_report(str(run2), samples=20))
    rows = rows_of(page.tables["samples"][0])
    assert len(rows) == 20
    assert [r[0] for r in rows] == ["kept" if _kept(i) else "dropped" for i in range(20)]
    assert [r[2] for r in rows] == [_pool_row(i)["text"] for i in range(20)]
    assert "13 of these 20 pool pairs were kept" in raw
    # matched entry strings, in entry-id order
    assert rows[3][3] == " ".join(NAMES[e] for e in _pool_row(3)["entry_ids"])
    # keep probability 1 - prod(1 - p) of row 5: entries {5, 15, 22}
    p = [T / max(c, T) for c in COUNTS]
    assert rows[5][1] == "%.3f" % (1 - np.prod([1 - p[e] for e in _pool_row(5)["entry_ids"]]))
    # more samples than the first file holds: continue into the second file, in order
    _, page = parse(report.write_report(str(run2), samples=30))
    rows = rows_of(page.tables["samples"][0])
    assert [r[2] for r in rows] == [_pool_row(i)["text"] for i in range(30)]


def test_hostile_text_is_escaped(run2):
    raw, page = parse(report.write_report(str(run2)))
    assert page.scripts == 0
    assert HOSTILE_TEXT not in raw and html.escape(HOSTILE_TEXT) in raw
    assert NAMES[13] not in raw and html.escape(NAMES[13]) in raw
    assert HOSTILE_URL not in raw and html.escape(HOSTILE_URL) in raw
    assert "bad<1>" not in raw and "bad&lt;1&gt;" in raw
    assert html.escape('fish & "chips" 1') in raw
    assert page.imgs and all(s.startswith("data:image/png;base64,") for s in page.imgs)
    assert "http://" not in raw.split("<body>")[0]   # no external resources in <head>


def test_images_embedded_png_and_deterministic(run2):
    out = report.write_report(str(run2))
    raw, page = parse(out)
    assert [a for a in page.alts] == [report.IMAGES[k] for k in ("cumulative_counts", "count_distribution",
                                                                  "funnel")]
    _check_pngs(page.imgs)
    # one self-contained file: nothing else is written beside it
    assert sorted(os.listdir(pathlib.Path(out).parent)) == ["index.html"]
    _, again = parse(report.write_report(str(run2)))
    assert again.imgs == page.imgs


def test_stage1_only(run1, tmp_path):
    out = report.write_report(str(run1), out_path=str(tmp_path / "elsewhere" / "r.html"))
    raw, page = parse(out)
    assert "stage1-only" in raw and "Stage 2 (balancing) has not been run" in raw
    summary = dict(tuple(r) for r in rows_of(page.tables["summary"][0]))
    assert summary["pool size (matched pairs)"] == "40"
    assert "curated size (actual)" not in summary and "head entries (count > t)" not in summary
    top = rows_of(page.tables["top-entries"][0])
    assert [r[2] for r in top[:3]] == ["of", "in", "and"] and len(top[0]) == 5
    funnel = rows_of(page.tables["funnel"][0])
    assert funnel[-1][:2] == ["matched pairs (pool)", "40"]
    assert "not_drawn" not in {r[0] for r in rows_of(page.tables["funnel"][1])}
    samples = rows_of(page.tables["samples"][0])
    assert len(samples) == 20 and len(samples[0]) == 3 and samples[0][0] == HOSTILE_TEXT
    _check_pngs(page.imgs)


def test_not_a_run_folder(tmp_path):
    with pytest.raises(FileNotFoundError):
        report.write_report(str(tmp_path))


def test_cli_main(run2, tmp_path, capsys):
    out = tmp_path / "cli" / "index.html"
    assert report.main(["--run", str(run2), "--out", str(out), "--samples", "5"]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    _, page = parse(out)
    assert len(rows_of(page.tables["samples"][0])) == 5


CHROMIUM = "/usr/bin/chromium"


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="chromium not installed (/usr/bin/chromium)")
@pytest.mark.parametrize("stage2", [True, False])
def test_chromium_renders(tmp_path, stage2):
    run = make_run(tmp_path / "run", stage2=stage2)
    out = pathlib.Path(report.write_report(str(run))).resolve()
    shot = tmp_path / "shot.png"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run",
           "--user-data-dir=%s" % (tmp_path / "profile"), "--screenshot=%s" % shot,
           "--window-size=1200,3000", out.as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "ERR_FILE_NOT_FOUND" not in proc.stderr
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10000
    from PIL import Image

    with Image.open(shot) as im:
        assert im.size == (1200, 3000)
    keep = os.environ.get("METACLIP_REPORT_SCREENSHOT")
    if keep:
        shutil.copy(shot, "%s.%s.png" % (keep, "stage2" if stage2 else "stage1"))


def test_empty_run(tmp_path):
    """No match at all: zero counts, no pool file, nothing curated."""
    run = make_run(tmp_path / "empty", stage2=True)
    for folder in ("pool", "curated"):
        shutil.rmtree(run / folder)
    for name in ("entry_counts", "balance_counts"):
        t = pq.read_table(run / name / ("%s.parquet" % name))
        for col in ("count", "balanced_count"):
            if col in t.column_names:
                t = t.set_column(t.column_names.index(col), col, pa.array([0] * t.num_rows, pa.int64()))
        pq.write_table(t, run / name / ("%s.parquet" % name))
    bal = json.loads((run / "stats" / "balance.json").read_text())
    bal.update(pool_rows=0, curated_rows=0, expected_size=0.0)
    (run / "stats" / "balance.json").write_text(json.dumps(bal))
    match = json.loads((run / "stats" / "match.json").read_text())
    match.update(pool_rows=0, counts={"records_read": 3, "matched": 0, "pool_rows": 0}, dropped={})
    (run / "stats" / "match.json").write_text(json.dumps(match))
    out = report.write_report(str(run))
    raw, page = parse(out)
    summary = dict(tuple(r) for r in rows_of(page.tables["summary"][0]))
    assert summary["entries with count 0 (never matched)"] == "30"
    assert summary["pool size (matched pairs)"] == "0" and summary["keep rate (curated / pool)"] == "n/a"
    assert "The pool is empty." in raw
    _check_pngs(page.imgs)
