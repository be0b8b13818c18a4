"""HTML run report: built from a hand-made run folder (no Spark)."""

import base64
import html
import io
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

from metaclip_spark.report import page as report
from metaclip_spark.steps import drops

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
        self.stack, self.errors, self.imgs, self.alts, self.scripts = [], [], [], [], 0
        self.refs = []   # (tag, attribute, value) of every src / href
        self.section, self.tables, self.cell, self.text = None, {}, None, []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in self.CHECKED:
            self.stack.append(tag)
        if tag == "script":
            self.scripts += 1
        if tag == "img":
            self.imgs.append(a.get("src"))
            self.alts.append(a.get("alt"))
        self.refs.extend((tag, k, v) for k, v in attrs if k in ("src", "href", "srcset", "data", "poster"))
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


def _png_of(src):
    assert src.startswith("data:image/png;base64,"), src[:40]
    return base64.b64decode(src.split(",", 1)[1], validate=True)


def _check_pngs(srcs):
    from PIL import Image

    assert srcs
    for src in srcs:
        data = _png_of(src)
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            assert im.size[0] > 100 and im.size[1] > 100
        assert b"Software" not in data and b"tIME" not in data


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


# --- issue #14 items 5 and 6: Fig. 2 over matched entries, self-contained page, hosts,
# duplicates, time per stage, dropped texts and LID scores from a re-read of the inputs ---

from metaclip_spark.report import plots as report_plots  # noqa: E402
from metaclip_spark.report import data as report_data


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
