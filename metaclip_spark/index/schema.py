"""Arrow schemas and file layout of the image index (docs/index.md, docs/semantics.md section 9)."""

import re

import pyarrow as pa

from metaclip_spark.run.schema import ENTRY_COUNTS_SCHEMA

# One row per distinct (image_id, text_hash) ever merged; a bucket file is sorted by
# (image_id, text_hash). `text` is null for texts beyond the image's max_texts_per_image
# smallest text hashes (remembered by their hash; their entry ids still count).
INDEX_SCHEMA = pa.schema([
    ("image_id", pa.string()),            # ids.image_id(url)
    ("text_hash", pa.int64()),            # ids.text_hash(image_id, text)
    ("text", pa.string()),                # null beyond max_texts_per_image
    ("url", pa.string()),                 # url of the text's first occurrence
    ("key_hash", pa.int64()),             # section 6 pair key of (url, text) of that occurrence
    ("entry_ids", pa.list_(pa.int32())),
    ("lid_score", pa.float32()),
    ("occurrences", pa.int64()),          # pool rows of this (image, text), over every merged pool
    ("crawls", pa.list_(pa.string())),    # distinct crawl labels it was seen in, sorted
    ("first_crawl", pa.string()),         # first provenance: the smallest (crawl, source, record_offset)
    ("first_source", pa.string()),
    ("first_record_offset", pa.int64()),
    ("first_page_url", pa.string()),
    ("text_field", pa.string()),          # of the first provenance row (alt, title, data-image-title)
    ("lang", pa.string()),                # the text's metadata language: entry_ids index its list
])

# Entry counts of a release: `count` per docs/semantics.md section 9 (distinct (image, text)),
# `occurrences` per section 5 (pool rows; dedup none); one row per (lang, entry) in LanguageSpace order.
INDEX_COUNTS_SCHEMA = ENTRY_COUNTS_SCHEMA.append(pa.field("occurrences", pa.int64()))

# Curated rows of a balance over the index (dedup image or pair): img2dataset reads url + text.
CURATED_INDEX_SCHEMA = pa.schema([
    ("url", pa.string()),
    ("text", pa.string()),
    ("entry_ids", pa.list_(pa.int32())),
    ("image_id", pa.string()),
    ("page_url", pa.string()),
    ("lid_score", pa.float32()),
    ("crawl", pa.string()),
    ("source", pa.string()),
    ("record_offset", pa.int64()),
    ("occurrences", pa.int64()),
    ("key_hash", pa.int64()),
    ("text_hash", pa.int64()),
    ("text_field", pa.string()),
    ("lang", pa.string()),                # entry_ids are positions in this language's list
])

RELEASE_DIGITS = 5
RELEASE_RE = re.compile(r"^\d{%d}$" % RELEASE_DIGITS)
BUCKET_RE = re.compile(r"^bucket-\d{5}\.parquet$")
CURRENT = "CURRENT"                       # DIR/CURRENT: the last finished release number, moved last
INDEX_MARKER = "_metaclip_index.json"     # DIR/_metaclip_index.json: buckets, max_texts_per_image, entries


def release_name(number: int) -> str:
    return "%0*d" % (RELEASE_DIGITS, number)


def bucket_name(bucket: int) -> str:
    return "bucket-%05d.parquet" % bucket
