"""A hand-made run folder for the report tests (no Spark) and the helpers that read the page."""

import base64
import html
import io
import json
import pathlib
from html.parser import HTMLParser

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from metaclip_spark.report import page as report

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
