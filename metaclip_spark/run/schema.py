"""Arrow schemas of the pipeline's tables (docs/semantics.md section 7)."""

import pyarrow as pa

# One row per kept (image URL, alt text) pair after matching.
POOL_SCHEMA = pa.schema([
    ("url", pa.string()),
    ("text", pa.string()),
    ("entry_ids", pa.list_(pa.int32())),
    ("page_url", pa.string()),
    ("lid_score", pa.float32()),
    ("source", pa.string()),          # input file the pair came from
    ("record_id", pa.string()),       # WARC-Record-ID of the HTML response
    ("record_offset", pa.int64()),    # byte offset of the record in `source`
    ("key_hash", pa.int64()),         # balancing.pair_key_hash(url, text), as signed int64
    ("image_id", pa.string()),        # index.ids.image_id(url): MetaCLIP's uuid (docs/index.md)
    ("text_hash", pa.int64()),        # index.ids.text_hash(image_id, text), as signed int64
    ("crawl", pa.string()),           # crawl or run label (input.label; inputs/labels.crawl_label)
    ("text_field", pa.string()),      # the <img> attribute the text came from: alt, title, data-image-title
    ("lang", pa.string()),            # metadata language of the text (English mode: "en"); entry_ids index its list
])

# One row per extracted pair candidate (``metaclip-spark extract``); `drop` is null for kept pairs.
EXTRACT_SCHEMA = pa.schema([
    ("url", pa.string()),
    ("text", pa.string()),
    ("page_url", pa.string()),
    ("lid_label", pa.string()),
    ("lid_score", pa.float32()),
    ("drop", pa.string()),
    ("source", pa.string()),
    ("record_id", pa.string()),
    ("record_offset", pa.int64()),
    ("text_field", pa.string()),
])

ENTRY_COUNTS_SCHEMA = pa.schema([
    ("entry_id", pa.int32()),
    ("entry", pa.string()),
    ("count", pa.int64()),
    ("lang", pa.string()),            # entry_id is the position in this language's list (English mode: "en")
])
