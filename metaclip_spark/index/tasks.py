"""The two task functions of the index merge (Spark-free: Arrow batches in, Arrow batches out;
``spark/index_job.py`` runs them with ``mapInArrow``).

- :func:`file_task`: a pool file -> its rows aggregated by (image_id, text_hash, crawl), cut by
  bucket into one Arrow IPC blob per (file, bucket) (few large binary rows to shuffle).
- :func:`bucket_task`: a partition's blobs, grouped by bucket -> each bucket merged with the
  previous release's file (``merge.merge_bucket``), written under its fixed name, and one result
  row per bucket; the task's entry counts ride on its last row.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from metaclip_spark.index import layout
from metaclip_spark.index.merge import aggregate_file, merge_bucket
from metaclip_spark.index.schema import INDEX_SCHEMA
from metaclip_spark.run import outputs
from metaclip_spark.run.totals import RunTotals

ROW_COLUMNS = ("url", "text", "entry_ids", "page_url", "lid_score", "source", "record_offset", "key_hash",
               "image_id", "text_hash", "crawl", "text_field", "lang")
DICT_COLUMNS = ("source", "crawl", "page_url")       # read as dictionaries (few distinct values)
BLOB_SCHEMA = pa.schema([("bucket", pa.int32()), ("blob", pa.binary())])
STAT_KEYS = ("rows", "images", "occurrences", "texts_stored", "new_pairs", "new_images", "input_pairs",
             "input_images", "input_occurrences")
RESULT_SCHEMA = pa.schema([("bucket", pa.int32()), ("output", pa.string())] + [(k, pa.int64()) for k in STAT_KEYS] + [
    ("pair_ids", pa.list_(pa.int32())), ("pair_counts", pa.list_(pa.int64())), ("occ_ids", pa.list_(pa.int32())),
    ("occ_counts", pa.list_(pa.int64())), ("extra", pa.string())])


def file_task(n_buckets: int):
    """The mapInArrow function over (uri, label) rows: each file's rows aggregated by (image_id,
    text_hash, crawl) (``index.merge.aggregate_file``), then cut by bucket into one Arrow IPC blob
    per (file, bucket): the shuffle moves a few large binary rows per file instead of every row
    (no per-row conversion between Arrow and JVM rows; the bucket task reads the blobs back)."""

    def task(batches):
        for batch in batches:
            for uri, label in zip(batch.column(0).to_pylist(), batch.column(1).to_pylist()):
                fs, path = outputs.resolve(uri)
                names = pq.read_schema(path, filesystem=fs).names
                table = pq.read_table(path, columns=[c for c in ROW_COLUMNS if c in names], filesystem=fs,
                                      read_dictionary=[c for c in DICT_COLUMNS if c in names])
                out = aggregate_file(table, label, n_buckets)
                del table
                yield _blobs(out)

    return task


_ID_RANGE = 1 << 31       # global ids are int32
_IPC = pa.ipc.IpcWriteOptions(compression="lz4")     # ~3x smaller blobs: less for the JVM to copy and shuffle


def _blobs(out: pa.Table) -> pa.RecordBatch:
    """One row per bucket of ``out`` (aggregated rows with their bucket): the bucket and its rows
    (INDEX_SCHEMA) as an Arrow IPC stream."""
    b = out.column("bucket").to_numpy()
    order = np.argsort(b, kind="stable")
    b = b[order]
    rows = out.drop_columns(["bucket"]).cast(INDEX_SCHEMA).take(pa.array(order))
    cuts = np.concatenate([[0], np.flatnonzero(b[1:] != b[:-1]) + 1, [len(b)]]) if len(b) else np.zeros(1, int)
    buckets, blobs = [], []
    for lo, hi in zip(cuts[:-1], cuts[1:]):
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, INDEX_SCHEMA, options=_IPC) as writer:
            writer.write_table(rows.slice(lo, hi - lo))
        buckets.append(int(b[lo]))
        blobs.append(sink.getvalue().to_pybytes())
    return pa.RecordBatch.from_pydict({"bucket": pa.array(buckets, pa.int32()), "blob": pa.array(blobs, pa.binary())},
                                      schema=BLOB_SCHEMA)


class _Sums:
    """A task's entry counts (new pairs, new occurrences) summed over its buckets: the task sends
    them once, on its last result row, so Spark sums one sparse vector per task, not per bucket.
    Kept sparse (run/totals.RunTotals; a dense vector over a worldwide space is 120 MB per task)."""

    def __init__(self):
        self.pair, self.occ = RunTotals(_ID_RANGE), RunTotals(_ID_RANGE)

    def add(self, res) -> None:
        self.pair.add_counts(res.pair_ids, res.pair_counts)
        self.occ.add_counts(res.occ_ids, res.occ_counts)

    def columns(self) -> dict:
        (p, pn), (o, on) = self.pair.sparse_counts(), self.occ.sparse_counts()
        return {"pair_ids": pa.array([p.astype(np.int32)], pa.list_(pa.int32())),
                "pair_counts": pa.array([pn], pa.list_(pa.int64())),
                "occ_ids": pa.array([o.astype(np.int32)], pa.list_(pa.int32())),
                "occ_counts": pa.array([on], pa.list_(pa.int64()))}


_NO_COUNTS = {"pair_ids": pa.array([[]], pa.list_(pa.int32())), "pair_counts": pa.array([[]], pa.list_(pa.int64())),
              "occ_ids": pa.array([[]], pa.list_(pa.int32())), "occ_counts": pa.array([[]], pa.list_(pa.int64()))}


def bucket_task(index: str, prev: int | None, release: int, k: int, top: int, space=None):
    """The mapInArrow function: rows sorted by bucket, one marker row (null blob) per bucket ->
    one result row per bucket; the task's entry counts (global ids of ``space``, a
    LanguageSpace; None: English) ride on its last row (``_Sums``)."""

    def finish(bucket: int, parts: list[pa.Table], sums: _Sums) -> dict:
        new = pa.concat_tables(parts) if parts else INDEX_SCHEMA.empty_table()
        merged, res = merge_bucket(layout.read_bucket(index, prev, bucket), new, k, top, space)
        sink = outputs.ParquetSink(layout.bucket_uri(index, release, bucket), INDEX_SCHEMA)
        try:
            sink.write(merged)
            sink.commit()
        except BaseException:
            sink.abort()
            raise
        sums.add(res)
        extra = json.dumps({"new_images_per_crawl": res.new_images_per_crawl, "top": res.top,
                            "per_crawl": res.per_crawl})
        return {"bucket": pa.array([bucket], pa.int32()), "output": [sink.uri],
                **{key: pa.array([getattr(res, key)], pa.int64()) for key in STAT_KEYS}, "extra": [extra]}

    def task(batches):
        cur, parts, held, sums = None, [], None, _Sums()
        for batch in batches:
            for bucket, blob in zip(batch.column("bucket").to_pylist(), batch.column("blob").to_pylist()):
                if bucket != cur:
                    if cur is not None:
                        if held is not None:
                            yield pa.RecordBatch.from_pydict({**held, **_NO_COUNTS}, schema=RESULT_SCHEMA)
                        held = finish(cur, parts, sums)
                    cur, parts = bucket, []
                if blob is not None:              # the marker row of the bucket has none
                    parts.append(pa.ipc.open_stream(blob).read_all())
        if cur is not None:
            if held is not None:
                yield pa.RecordBatch.from_pydict({**held, **_NO_COUNTS}, schema=RESULT_SCHEMA)
            held = finish(cur, parts, sums)
        if held is not None:
            yield pa.RecordBatch.from_pydict({**held, **sums.columns()}, schema=RESULT_SCHEMA)

    return task
