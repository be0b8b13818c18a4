"""outputs.ParquetSink buffering and parquet_options (bench/OPTIMISATIONS.md #2, #3)."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from metaclip_spark.run import outputs
from metaclip_spark.run.schema import EXTRACT_SCHEMA, POOL_SCHEMA

SCHEMA = pa.schema([("url", pa.string()), ("n", pa.int64()), ("ids", pa.list_(pa.int32()))])


def _batch(start, n):
    return pa.RecordBatch.from_pydict({"url": ["u%d" % i for i in range(start, start + n)],
                                       "n": list(range(start, start + n)),
                                       "ids": [[i, i + 1] for i in range(start, start + n)]}, schema=SCHEMA)


def test_sink_writes_full_row_groups_in_order(tmp_path):
    path = str(tmp_path / "x.parquet")
    sink = outputs.ParquetSink(path, SCHEMA, row_group_size=4)
    for k in range(5):
        sink.write(_batch(3 * k, 3))
    sink.write(_batch(15, 0))
    assert sink.rows == 15
    sink.commit()
    f = pq.ParquetFile(path)
    assert [f.metadata.row_group(i).num_rows for i in range(f.metadata.num_row_groups)] == [4, 4, 4, 3]
    t = f.read()
    assert t.column("n").to_pylist() == list(range(15))
    assert t.column("ids").to_pylist()[14] == [14, 15]
    assert t.schema.equals(SCHEMA, check_metadata=False)


def test_sink_rejects_another_schema_and_abort_leaves_nothing(tmp_path):
    path = str(tmp_path / "y.parquet")
    sink = outputs.ParquetSink(path, SCHEMA, row_group_size=4)
    sink.write(_batch(0, 2))
    with pytest.raises(ValueError, match="schema"):
        sink.write(pa.table({"url": ["a"]}))
    sink.abort()
    assert list(tmp_path.iterdir()) == []


def test_parquet_options_skip_dictionary_and_stats_of_unique_strings(tmp_path):
    opts = outputs.parquet_options(POOL_SCHEMA)
    assert opts["compression"] == "zstd"
    assert opts["use_dictionary"] == ["text", "entry_ids.list.element", "page_url", "lid_score", "source",
                                      "record_id", "record_offset", "key_hash", "image_id", "text_hash",
                                      "crawl", "text_field", "lang"]
    assert opts["write_statistics"] == ["entry_ids.list.element", "lid_score", "source", "record_offset",
                                        "key_hash", "image_id", "text_hash", "crawl", "text_field", "lang"]
    assert "url" not in outputs.parquet_options(EXTRACT_SCHEMA)["use_dictionary"]
    assert outputs.parquet_options(SCHEMA.remove(0))["use_dictionary"] is True
    # the options are accepted by the writer and leave the url column without a dictionary
    path = str(tmp_path / "z.parquet")
    sink = outputs.ParquetSink(path, SCHEMA)
    sink.write(_batch(0, 10))
    sink.commit()
    md = pq.ParquetFile(path).metadata.row_group(0)
    assert not md.column(0).has_dictionary_page and md.column(1).has_dictionary_page
    assert md.column(0).statistics is None and md.column(1).statistics.max == 9
