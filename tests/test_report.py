"""HTML run report: built from a hand-made run folder (no Spark)."""

import html
import json
import os
import pathlib
import shutil
import subprocess
from html.parser import HTMLParser

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from metaclip_spark import report

COUNTS = [0, 0, 3, 1, 50, 7, 7, 12, 0, 2, 40, 5, 9, 30, 1, 0, 22, 6, 4, 15, 8, 11, 60, 2, 25, 3, 18, 0, 10, 35]
NAMES = ["e%02d" % i for i in range(len(COUNTS))]
NAMES[22], NAMES[4], NAMES[10] = "of", "in", "and"
NAMES[13] = "<img src=x onerror=alert(2)>"
T = 10
POOL_FILES = (25, 15)           # rows per pool file
HOSTILE_TEXT = "<script>alert(1)</script>"
HOSTILE_URL = 'http://x.test/a.jpg?"><script>alert(4)</script>'
MATCH_COUNTS = {
    "records_read": 1000, "records.response": 400, "html_pages": 380, "images": 5000,
    "images_with_alt": 3000, "pairs": 2600, "english": 1300, "matched": 40, "pool_rows": 40,
    "dropped.not_html": 20, "dropped.no_alt": 2000, "dropped.empty_alt": 150, "dropped.non_http_url": 200,
    "dropped.duplicate_in_page": 50, "dropped.not_english": 1200, "dropped.lid_low_score": 100,
    "dropped.no_match": 1260, "errors.truncated_record": 2,
}
FAILED = [{"source": "s3://bucket/bad<1>.warc.gz", "error": "EOFError: truncated <gzip>"}]


def _pool_row(i):
    text = HOSTILE_TEXT if i == 0 else ("fish & \"chips\" %d" % i if i == 1 else "sample text %d" % i)
    return {"url": HOSTILE_URL if i == 2 else "http://img.test/%d.jpg" % i, "text": text,
            "entry_ids": sorted({22, i % 30, (3 * i) % 30}), "page_url": "http://page.test/%d" % i,
            "lid_score": 0.9, "source": "crawl.warc.gz", "record_id": "<urn:uuid:%d>" % i,
            "record_offset": 100 * i, "key_hash": i * 7919 - 50000}


POOL_SCHEMA = pa.schema([("url", pa.string()), ("text", pa.string()), ("entry_ids", pa.list_(pa.int32())),
                         ("page_url", pa.string()), ("lid_score", pa.float32()), ("source", pa.string()),
                         ("record_id", pa.string()), ("record_offset", pa.int64()), ("key_hash", pa.int64())])


def _kept(i):
    return i % 3 != 0


def balanced_counts():
    return [max(min(c, T) - (i % 2), 0) for i, c in enumerate(COUNTS)]


def make_run(root: pathlib.Path, stage2: bool) -> pathlib.Path:
    (root / "stats").mkdir(parents=True)
    match = {"stage": "match", "inputs": 12, "inputs_failed": 1, "failed_inputs": FAILED, "counts": MATCH_COUNTS,
             "dropped": {k[8:]: v for k, v in MATCH_COUNTS.items() if k.startswith("dropped.")},
             "errors": [], "entries": 30, "entries_zero_count": 5, "matches": sum(COUNTS), "pool_rows": 40,
             "metadata": "conf/metadata<test>.json", "lid_model": "lid.176.ftz"}
    (root / "stats" / "match.json").write_text(json.dumps(match))
    (root / "entry_counts").mkdir()
    ids = pa.array(range(len(COUNTS)), pa.int32())
    pq.write_table(pa.table({"entry_id": ids, "entry": NAMES, "count": pa.array(COUNTS, pa.int64())}),
                   root / "entry_counts" / "entry_counts.parquet")
    rows = [_pool_row(i) for i in range(sum(POOL_FILES))]
    (root / "pool").mkdir()
    pq.write_table(pa.Table.from_pylist(rows[:POOL_FILES[0]], POOL_SCHEMA), root / "pool" / "part-00000.parquet")
    pq.write_table(pa.Table.from_pylist(rows[POOL_FILES[0]:], POOL_SCHEMA), root / "pool" / "part-00001.parquet")
    if stage2:
        kept = [r for i, r in enumerate(rows) if _kept(i)]
        (root / "curated").mkdir()
        # kept rows spread over two files in reverse so the report must scan both
        pq.write_table(pa.Table.from_pylist(kept[13:], POOL_SCHEMA), root / "curated" / "part-00000.parquet")
        pq.write_table(pa.Table.from_pylist(kept[:13], POOL_SCHEMA), root / "curated" / "part-00001.parquet")
        p = [T / max(c, T) for c in COUNTS]
        (root / "balance_counts").mkdir()
        pq.write_table(pa.table({"entry_id": ids, "entry": NAMES, "count": pa.array(COUNTS, pa.int64()),
                                 "p": pa.array(p, pa.float64()),
                                 "balanced_count": pa.array(balanced_counts(), pa.int64())}),
                       root / "balance_counts" / "balance_counts.parquet")
        bal = {"stage": "balance", "pools": [str(root)], "t": float(T), "t_source": "tail_share", "seed": 7,
               "pool_rows": 40, "curated_rows": len(kept), "expected_size": 25.5, "files": [], "groups": 1,
               "n_entries": 30, "total_matches": sum(COUNTS), "zero_count_entries": 5, "head_entries": 11,
               "head_share": 0.0, "tail_share": 0.0, "keep_rate": len(kept) / 40}
        (root / "stats" / "balance.json").write_text(json.dumps(bal))
    return root


class Page(HTMLParser):
    """Checks nesting of the main elements and collects tables per section, images and text."""

    CHECKED = {"html", "head", "body", "header", "section", "table", "thead", "tbody", "tr", "td", "th",
               "dl", "dt", "dd", "h1", "h2", "h3", "p", "details", "summary", "code", "span", "style", "title"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.errors, self.imgs, self.scripts = [], [], [], 0
        self.section, self.tables, self.cell, self.text = None, {}, None, []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in self.CHECKED:
            self.stack.append(tag)
        if tag == "script":
            self.scripts += 1
        if tag == "img":
            self.imgs.append(a.get("src"))
        if tag == "section":
            self.section = a.get("id")
        if tag == "table":
            self.tables.setdefault(self.section, []).append([])
        if tag == "tr":
            self.tables[self.section][-1].append([])
        if tag in ("td", "th"):
            self.cell = []

    def handle_endtag(self, tag):
        if tag in self.CHECKED:
            if not self.stack or self.stack[-1] != tag:
                self.errors.append("unexpected </%s> with open %s" % (tag, self.stack[-3:]))
            else:
                self.stack.pop()
        if tag in ("td", "th"):
            self.tables[self.section][-1][-1].append("".join(self.cell).strip())
            self.cell = None

    def handle_data(self, data):
        self.text.append(data)
        if self.cell is not None:
            self.cell.append(data)


def parse(path):
    raw = pathlib.Path(path).read_text(encoding="utf-8")
    page = Page()
    page.feed(raw)
    page.close()
    assert not page.errors, page.errors
    assert not page.stack, "unclosed: %s" % page.stack
    return raw, page


def rows_of(table):
    return table[1:]   # without the header row


@pytest.fixture
def run2(tmp_path):
    return make_run(tmp_path / "run2", stage2=True)


@pytest.fixture
def run1(tmp_path):
    return make_run(tmp_path / "run1", stage2=False)


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
    assert page.imgs and all(not s.startswith(("http", "/", "data:")) for s in page.imgs)
    assert "http://" not in raw.split("<body>")[0]   # no external resources in <head>


def _check_pngs(folder, srcs):
    from PIL import Image

    assert srcs
    for src in srcs:
        path = pathlib.Path(folder) / src
        assert path.is_file(), src
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        with Image.open(path) as im:
            im.load()
            assert im.size[0] > 100 and im.size[1] > 100
        assert b"Software" not in data and b"tIME" not in data


def test_images_exist_and_are_png_and_deterministic(run2):
    out = report.write_report(str(run2))
    _, page = parse(out)
    assert sorted(page.imgs) == ["count_distribution.png", "cumulative_counts.png", "funnel.png"]
    folder = pathlib.Path(out).parent
    _check_pngs(folder, page.imgs)
    first = {s: (folder / s).read_bytes() for s in page.imgs}
    report.write_report(str(run2))
    assert first == {s: (folder / s).read_bytes() for s in page.imgs}


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
    _check_pngs(tmp_path / "elsewhere", page.imgs)


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
    _check_pngs(pathlib.Path(out).parent, page.imgs)
