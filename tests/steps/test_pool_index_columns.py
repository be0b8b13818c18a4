"""The image index's pool columns (docs/index.md, SPEC section 9): image_id, text_hash and
crawl, computed per file in stage 1 (pipeline.index_columns, pipeline.match_file)."""

import hashlib

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from metaclip_spark.index import ids
from metaclip_spark.metadata import defaults
from metaclip_spark.run.schema import POOL_SCHEMA
from metaclip_spark.steps import pipeline
from metaclip_spark.steps.draws import pair_key_hash
from metaclip_spark.steps.extract import ExtractLimits
from metaclip_spark.steps.language import LanguageId
from metaclip_spark.steps.match import Matcher


def sha_id(url: str) -> str:
    return hashlib.sha224(url.replace("\t", "").replace(" ", "").encode("utf-8")).hexdigest()[:24]


def test_pool_schema_ends_with_the_index_columns():
    assert POOL_SCHEMA.names == ["url", "text", "entry_ids", "page_url", "lid_score", "source", "record_id",
                                 "record_offset", "key_hash", "image_id", "text_hash", "crawl", "text_field", "lang"]
    assert [POOL_SCHEMA.field(n).type for n in ("image_id", "text_hash", "crawl")] == [
        pa.string(), pa.int64(), pa.string()]


def test_image_id_and_text_hash_exact_values():
    url = "http://example.com/images/red car.jpg"
    want = hashlib.sha224(b"http://example.com/images/redcar.jpg").hexdigest()[:24]
    assert ids.image_id(url) == want == sha_id(url)
    assert ids.image_id("http://example.com/a.jpg") == hashlib.sha224(b"http://example.com/a.jpg").hexdigest()[:24]
    # URLs that differ only by spaces or TABs: one image id
    same = ["http://x.org/a b.jpg", "http://x.org/ab.jpg", "http://x.org/a\tb.jpg", " http://x.org/a \t b.jpg\t"]
    assert len({ids.image_id(u) for u in same}) == 1
    assert ids.image_ids(same).to_pylist() == [ids.image_id(same[0])] * 4
    assert ids.image_id("http://x.org/a_b.jpg") != ids.image_id(same[0])
    cols = pipeline.index_columns(same + [url], ["t1", "t1", "t2", "t1", "red car"], "CC-MAIN-2020-45")
    assert cols["image_id"].to_pylist() == [sha_id(u) for u in same + [url]]
    assert cols["text_hash"].dtype == np.int64
    assert cols["text_hash"].tolist() == [ids.text_hash(sha_id(u), t) for u, t in
                                          zip(same + [url], ["t1", "t1", "t2", "t1", "red car"])]
    assert cols["text_hash"][-1] == pair_key_hash(want, "red car")
    assert cols["text_hash"][0] == cols["text_hash"][1] == cols["text_hash"][3] != cols["text_hash"][2]
    assert cols["crawl"].to_pylist() == ["CC-MAIN-2020-45"] * 5
    empty = pipeline.index_columns([], [], "x")
    assert len(empty["image_id"]) == len(empty["text_hash"]) == len(empty["crawl"]) == 0


def _sample_pool(tmp_path, out_dir, crawl=None):
    uri = defaults.sample_inputs()[0]
    entries = ["photo", "red", "car", "the", "of", "and", "image", "new"]
    lid = LanguageId(defaults.default_lid_model_path(), 0.5)
    res = pipeline.match_file(uri, str(out_dir), Matcher(entries), lid, ExtractLimits(), 100, crawl)
    assert res.failed is None and res.rows > 0
    return pq.read_table(res.output)


def test_match_file_writes_the_index_columns(tmp_path):
    table = _sample_pool(tmp_path, tmp_path / "run-7" / "pool", crawl="CC-MAIN-2022-05")
    assert table.schema.names == POOL_SCHEMA.names and table.schema.equals(POOL_SCHEMA)
    rows = table.to_pylist()
    assert [r["image_id"] for r in rows] == [sha_id(r["url"]) for r in rows]
    assert [r["text_hash"] for r in rows] == [ids.text_hash(sha_id(r["url"]), r["text"]) for r in rows]
    assert [r["key_hash"] for r in rows] == [pair_key_hash(r["url"], r["text"]) for r in rows]
    assert {r["crawl"] for r in rows} == {"CC-MAIN-2022-05"}
    # without a label from the driver: the run folder's name (no crawl id in the sample's path)
    default = _sample_pool(tmp_path, tmp_path / "run-8" / "pool")
    assert set(default.column("crawl").to_pylist()) == {"run-8"}
    assert default.drop_columns(["crawl"]).equals(table.drop_columns(["crawl"]))


def test_stage2_balances_a_pool_written_before_the_index_columns(tmp_path):
    """A pool of the 9 earlier columns still balances; its curated rows get the index columns
    (crawl: the id in the source, else the run folder's name)."""
    from metaclip_spark.steps import curated
    from metaclip_spark.steps.draws import key_hashes

    urls, texts = ["http://a.example/1 .jpg", "http://a.example/2.jpg"], ["one", "two"]
    sources = ["s3://commoncrawl/crawl-data/CC-MAIN-2019-09/x.warc.gz", "/local/x.warc.gz"]
    old = pa.table({"url": urls, "text": texts, "entry_ids": pa.array([[0], [0]], pa.list_(pa.int32())),
                    "page_url": ["p", "p"], "lid_score": pa.array([0.9, 0.9], pa.float32()), "source": sources,
                    "record_id": ["r1", "r2"], "record_offset": pa.array([0, 1], pa.int64()),
                    "key_hash": pa.array(key_hashes(urls, texts))}, schema=pa.schema(list(POOL_SCHEMA)[:9]))
    (tmp_path / "old-run" / "pool").mkdir(parents=True)
    path = str(tmp_path / "old-run" / "pool" / "part-00000.parquet")
    pq.write_table(old, path)
    out = str(tmp_path / "curated.parquet")
    res = curated.balance_group(0, [path], out, np.array([1.0]), 3)
    assert res.rows_out == 2
    got = pq.read_table(out)
    assert got.schema.equals(POOL_SCHEMA)
    rows = sorted(got.to_pylist(), key=lambda r: r["record_id"])
    assert [r["image_id"] for r in rows] == [sha_id(u) for u in urls]
    assert [r["text_hash"] for r in rows] == [ids.text_hash(sha_id(u), t) for u, t in zip(urls, texts)]
    assert [r["crawl"] for r in rows] == ["CC-MAIN-2019-09", "old-run"]
