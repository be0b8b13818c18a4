"""Hand-made image index releases for tests (docs/index.md "Layout"), built with pyarrow alone:
bucket files sorted by (image_id, text_hash) in INDEX_SCHEMA, entry_counts/entry_counts.parquet in
INDEX_COUNTS_SCHEMA, stats/index.json, _SUCCESS, then CURRENT.

A row is a dict with ``url``, ``text``, ``entry_ids`` and optionally ``occurrences`` (default 1),
``crawl``, ``source``, ``record_offset``, ``page_url``, ``lid_score``, ``lang`` (default en; the
entry ids are positions in its list) and ``text_field`` (default alt). ``entries``: a list (English)
or {lang: list} (worldwide). Rows with the same
(image_id, text_hash) must not repeat (the merge's job); a release's ``count_e`` is the number of
its (image, text) rows whose entry ids hold e, ``occurrences_e`` the sum of their occurrences.
"""

from __future__ import annotations

import json
import os
import random

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from metaclip_spark.index import ids
from metaclip_spark.metadata.languages import LanguageSpace
from metaclip_spark.index.schema import (CURRENT, INDEX_COUNTS_SCHEMA, INDEX_MARKER, INDEX_SCHEMA, bucket_name,
                                         release_name)
from metaclip_spark.steps.draws import pair_key_hash


def index_rows(rows: list[dict], max_texts: int = 64) -> list[dict]:
    """Rows completed to INDEX_SCHEMA dicts (texts beyond the image's ``max_texts`` smallest text
    hashes set to null), sorted by (image_id, text_hash)."""
    out, seen = [], set()
    for r in rows:
        iid = ids.image_id(r["url"])
        th = ids.text_hash(iid, r["text"])
        if (iid, th) in seen:
            raise ValueError("(image, text) twice: %r" % ((r["url"], r["text"]),))
        seen.add((iid, th))
        crawl = r.get("crawl", "CC-MAIN-2024-10")
        out.append({"image_id": iid, "text_hash": th, "text": r["text"], "url": r["url"],
                    "key_hash": pair_key_hash(r["url"], r["text"]), "entry_ids": list(r["entry_ids"]),
                    "lid_score": float(r.get("lid_score", 0.9)), "occurrences": int(r.get("occurrences", 1)),
                    "crawls": [crawl], "first_crawl": crawl, "first_source": r.get("source", "s3://x/w.warc.gz"),
                    "first_record_offset": int(r.get("record_offset", 0)),
                    "first_page_url": r.get("page_url", "https://page.example/"),
                    "text_field": r.get("text_field", "alt"), "lang": r.get("lang", "en")})
    out.sort(key=lambda r: (r["image_id"], r["text_hash"]))
    rank = 0
    for i, r in enumerate(out):
        rank = rank + 1 if i and out[i - 1]["image_id"] == r["image_id"] else 0
        if rank >= max_texts:
            r["text"] = None
    return out


def entry_counts(rows: list[dict], entries) -> pa.Table:
    """One row per (lang, entry) in LanguageSpace order (en first, then sorted), counted per row."""
    lists = entries if isinstance(entries, dict) else {"en": list(entries)}
    space = LanguageSpace({k: len(v) for k, v in lists.items()})
    count = np.zeros(len(space), np.int64)
    occ = np.zeros(len(space), np.int64)
    for r in rows:
        off = space.offset(r.get("lang", "en"))
        for e in set(r["entry_ids"]):
            count[off + e] += 1
            occ[off + e] += int(r.get("occurrences", 1))
    return pa.table({"entry_id": np.concatenate([np.arange(len(lists[k]), dtype=np.int32) for k in space.languages]),
                     "entry": [e for k in space.languages for e in lists[k]], "count": count,
                     "lang": [k for k in space.languages for _ in lists[k]], "occurrences": occ},
                    schema=INDEX_COUNTS_SCHEMA)


def build_release(index_dir, release: int, rows: list[dict], entries: list[str], buckets: int = 4,
                  max_texts: int = 64, current: bool = True, finished: bool = True) -> str:
    """Write release ``release`` of ``index_dir`` holding ``rows``; returns the release folder."""
    index_dir = str(index_dir)
    rel = os.path.join(index_dir, "releases", release_name(release))
    os.makedirs(os.path.join(rel, "images"), exist_ok=True)
    os.makedirs(os.path.join(rel, "entry_counts"), exist_ok=True)
    os.makedirs(os.path.join(rel, "stats"), exist_ok=True)
    with open(os.path.join(index_dir, INDEX_MARKER), "w") as f:
        json.dump({"buckets": buckets, "max_texts_per_image": max_texts}, f)
    full = index_rows(rows, max_texts)
    for b in range(buckets):
        part = [r for r in full if ids.bucket(r["image_id"], buckets) == b]
        table = pa.Table.from_pylist(part, schema=INDEX_SCHEMA) if part else INDEX_SCHEMA.empty_table()
        pq.write_table(table, os.path.join(rel, "images", bucket_name(b)))
    pq.write_table(entry_counts(full, entries), os.path.join(rel, "entry_counts", "entry_counts.parquet"))
    stats = {"stage": "index", "release": release, "buckets": buckets, "max_texts_per_image": max_texts,
             "totals": {"occurrences": sum(r["occurrences"] for r in full), "pairs": len(full),
                        "images": len({r["image_id"] for r in full})}}
    with open(os.path.join(rel, "stats", "index.json"), "w") as f:
        json.dump(stats, f)
    if finished:
        open(os.path.join(rel, "_SUCCESS"), "w").close()
        if current:
            with open(os.path.join(index_dir, CURRENT), "w") as f:
                f.write(release_name(release) + "\n")
    return rel


def random_rows(n_images: int, n_entries: int, seed: int = 0, max_texts: int = 4, prefix: str = "img") -> list[dict]:
    """``n_images`` images with 1..max_texts distinct texts each, 1..3 entry ids per text drawn with a
    skewed distribution (a few head entries), occurrences 1..5."""
    rng = random.Random(seed)
    weights = [1.0 / (e + 1) for e in range(n_entries)]
    rows = []
    for i in range(n_images):
        url = "https://h%d.example/%s/%d.jpg" % (i % 7, prefix, i)
        for k in range(rng.randint(1, max_texts)):
            eids = sorted(set(rng.choices(range(n_entries), weights, k=rng.randint(1, 3))))
            rows.append({"url": url, "text": "text %d of %s %d" % (k, prefix, i), "entry_ids": eids,
                         "occurrences": rng.randint(1, 5), "record_offset": i * 10 + k})
    return rows
