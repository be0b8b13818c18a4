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

from metaclip_spark.index import ids
from metaclip_spark.index import schema
from metaclip_spark.report import page as report
from metaclip_spark.steps.draws import pair_key_hash

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


# --- image index (docs/index.md): INDEX/_metaclip_index.json, CURRENT, releases/NNNNN/ --------------------------
OCC_EXTRA = {22: 40, 4: 25, 13: 5, 7: 3, 2: 1}      # matches that repeated images add (occurrences - count)
OCCURRENCES = [c + OCC_EXTRA.get(i, 0) for i, c in enumerate(COUNTS)]
T_WITHOUT = 14
LOGO_URL = "http://site.test/logo.png"
CRAWLS = ("CC-MAIN-2024-10", "CC-MAIN-2024-18", "CC-MAIN-2024-22")
HISTORY = [  # (release, crawls, occurrences, pairs, images, new_pairs, new_images) of each merge's input
    (1, [CRAWLS[0]], 900, 250, 200, 250, 200),
    (2, [CRAWLS[1], CRAWLS[2]], 700, 200, 140, 170, 100)]
PER_CRAWL = {1: {CRAWLS[0]: {"occurrences": 900, "pairs": 250, "images": 200, "new_images": 200}},
             2: {CRAWLS[1]: {"occurrences": 500, "pairs": 150, "images": 110, "new_images": 80},
                 CRAWLS[2]: {"occurrences": 200, "pairs": 60, "images": 45, "new_images": 20}}}


def _index_rows(urls_texts):
    """INDEX_SCHEMA rows of (url, text, entry_ids), sorted by (image_id, text_hash)."""
    rows = []
    for url, text, entry_ids in urls_texts:
        iid = ids.image_id(url)
        rows.append({"image_id": iid, "text_hash": ids.text_hash(iid, text), "text": text, "url": url,
                     "key_hash": pair_key_hash(url, text), "entry_ids": entry_ids, "lid_score": 0.9,
                     "occurrences": 3, "crawls": [CRAWLS[0]], "first_crawl": CRAWLS[0], "first_source": "s.warc.gz",
                     "first_record_offset": 0, "first_page_url": "http://page.test/"})
    return sorted(rows, key=lambda r: (r["image_id"], r["text_hash"]))


def _index_stats(release):
    hist = [h for h in HISTORY if h[0] <= release]
    occ, pairs, images = (sum(h[k] for h in hist) for k in (2, 5, 6))
    _, crawls, m_occ, m_pairs, m_images, new_pairs, new_images = hist[-1]
    pools = [{"pool": "/runs/pool-%d" % h[0], "digest": "digest-%d" % h[0], "rows": h[2], "crawls": h[1],
              "release": h[0]} for h in hist]
    top = [{"image_id": "0" * 24, "url": LOGO_URL, "text": "Site logo", "occurrences": 120, "pairs": 1},
           {"image_id": "1" * 24, "url": HOSTILE_URL, "text": HOSTILE_TEXT, "occurrences": 45, "pairs": 3}]
    return {"stage": "index", "release": release, "previous": release - 1 or None, "buckets": 2,
            "max_texts_per_image": 64, "entries_sha256": "ab" * 32, "pools": pools,
            "totals": {"occurrences": occ, "pairs": pairs, "images": images, "texts_stored": pairs - 10,
                       "texts_hash_only": 10},
            "merge": {"pools": 1, "occurrences": m_occ, "pairs": m_pairs, "images": m_images, "new_pairs": new_pairs,
                      "new_images": new_images, "duplicate_factor": m_occ / m_images},
            "per_crawl": PER_CRAWL[release],
            "history": [{"release": r, "occurrences": o, "pairs": p, "images": i, "new_pairs": npa,
                         "new_images": ni, "crawls": c} for r, c, o, p, i, npa, ni in hist],
            "top_repeated": top[:release], "entries": len(COUNTS), "entries_zero_count": 5, "wall_seconds": 3.5,
            "chunks": 1, "chunks_reused": 0}


def make_index(root: pathlib.Path, releases: int = 2) -> pathlib.Path:
    """A hand-made image index with ``releases`` releases (release 1: half of every count)."""
    root.mkdir(parents=True)
    (root / schema.INDEX_MARKER).write_text(json.dumps({"buckets": 2, "max_texts_per_image": 64,
                                                        "entries_sha256": "ab" * 32}))
    for release in range(1, releases + 1):
        rel = root / "releases" / schema.release_name(release)
        (rel / "images").mkdir(parents=True)
        rows = _index_rows([("http://img.test/%d.jpg" % i, "sample text %d" % i, [22, i % 30]) for i in range(6)])
        for b in range(2):
            pq.write_table(pa.Table.from_pylist(rows[3 * b:3 * b + 3], schema.INDEX_SCHEMA),
                           rel / "images" / schema.bucket_name(b))
        (rel / "entry_counts").mkdir()
        count = COUNTS if release == releases else [c // 2 for c in COUNTS]
        occ = OCCURRENCES if release == releases else [o // 2 for o in OCCURRENCES]
        pq.write_table(pa.table({"entry_id": pa.array(range(len(COUNTS)), pa.int32()), "entry": NAMES,
                                 "count": pa.array(count, pa.int64()), "lang": ["en"] * len(COUNTS),
                                 "occurrences": pa.array(occ, pa.int64())},
                                schema=schema.INDEX_COUNTS_SCHEMA), rel / "entry_counts" / "entry_counts.parquet")
        (rel / "stats").mkdir()
        (rel / "stats" / "index.json").write_text(json.dumps(_index_stats(release)))
        (rel / "stats" / "index-files.json").write_text("[]")
        (rel / "config-index.json").write_text("{}")
        (rel / "_SUCCESS").write_text("")
    (root / schema.CURRENT).write_text(schema.release_name(releases) + "\n")
    return root


def make_index_run(root: pathlib.Path, t_without: bool = True) -> pathlib.Path:
    """A ``curate`` run folder: stage 1 + stage 2 with the index it built in RUN/index/."""
    make_run(root, stage2=True)
    make_index(root / "index")
    bal = json.loads((root / "stats" / "balance.json").read_text())
    bal["dedup"] = "image"
    if t_without:
        bal["t_without_dedup"] = float(T_WITHOUT)
    (root / "stats" / "balance.json").write_text(json.dumps(bal))
    return root


DIFF = {"added": 12, "removed": 3, "kept": 14, "text_changed": 2}


def make_index_balance(root: pathlib.Path, index: pathlib.Path, release: int | None = 2) -> pathlib.Path:
    """A ``balance --index INDEX --release N --previous ...`` output folder: no stage-1 outputs."""
    (root / "stats").mkdir(parents=True)
    (root / "curated").mkdir()
    bal = {"stage": "balance", "pools": [], "index": str(index), "release": release, "dedup": "image",
           "t": float(T), "t_source": "tail_share", "t_without_dedup": float(T_WITHOUT), "seed": 7,
           "curated_rows": 26, "expected_size": 25.5, "diff": DIFF}
    (root / "stats" / "balance.json").write_text(json.dumps(bal))
    return root
