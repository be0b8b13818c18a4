"""Stage 2 for one group of pool files (steps/curated.py), Spark-free: the driver's group
plan, and balance_group on a tiny pool whose draws are certain (probabilities 0 or 1), so
that every output row, its order and every count are known exactly."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from metaclip_spark.run.schema import POOL_SCHEMA
from metaclip_spark.index.ids import image_id, text_hash
from metaclip_spark.steps import curated
from metaclip_spark.steps.draws import key_hashes, order_keys


# ------------------------------------------------------------------ plan_groups
def test_plan_groups_packs_consecutive_files():
    files = [("a", 5), ("b", 0), ("c", 3), ("d", 10), ("e", 1), ("f", 1), ("g", -1), ("h", 6)]
    # a+c fill 8 exactly; d is larger than a group (alone); e+f+h = 8; b and g hold no rows
    assert curated.plan_groups(files, 8) == [["a", "c"], ["d"], ["e", "f", "h"]]
    assert curated.plan_groups(files, 7) == [["a"], ["c"], ["d"], ["e", "f"], ["h"]]
    assert curated.plan_groups(files, 1) == [["a"], ["c"], ["d"], ["e"], ["f"], ["h"]]
    assert curated.plan_groups(files, 10 ** 9) == [["a", "c", "d", "e", "f", "h"]]


def test_plan_groups_without_rows():
    assert curated.plan_groups([], 100) == []
    assert curated.plan_groups([("a", 0), ("b", 0)], 100) == []


# ------------------------------------------------------------------ balance_group
# entry 0 and 2 are always kept (p = 1), entry 1 never (p = 0)
PROBS = np.array([1.0, 0.0, 1.0])
SEED = 7


def pool_rows(prefix, items):
    """Pool rows from (url, entry ids) pairs, the other columns derived from the index."""
    rows = []
    for i, (url, ids) in enumerate(items):
        text = "%s alt %d" % (prefix, i)
        rows.append({"url": url, "text": text, "entry_ids": ids, "page_url": "http://page.example/%s" % prefix,
                     "lid_score": 0.5, "source": "%s.warc.gz" % prefix, "record_id": "<urn:%s:%d>" % (prefix, i),
                     "record_offset": 100 * i, "key_hash": int(key_hashes([url], [text])[0]),
                     "image_id": image_id(url), "text_hash": text_hash(image_id(url), text), "crawl": prefix,
                     "text_field": "alt", "lang": "en"})
    return rows


FILE_A = pool_rows("a", [("http://img.example/1.jpg", [0]),           # kept
                         ("http://img.example/2.jpg", [1]),           # never drawn
                         ("http://img.example/3.jpg", [1, 2]),        # kept (entry 2)
                         ("http://img.example:99999/4.jpg", [2]),     # kept, but no request form
                         ("http://img.example/5.jpg", [])])           # no entry: never drawn
FILE_B = pool_rows("b", [("http://IMG.example/6.jpg", [0, 2]),        # kept, host lower-cased
                         ("http://img.example/7 x.jpg", [2]),         # kept, space percent-encoded
                         ("http://img.example/8.jpg", [1])])          # never drawn


@pytest.fixture
def pool(tmp_path):
    paths = []
    for name, rows in (("a", FILE_A), ("b", FILE_B)):
        path = str(tmp_path / ("pool-%s.parquet" % name))
        pq.write_table(pa.Table.from_pylist(rows, schema=POOL_SCHEMA), path)
        paths.append(path)
    return paths


def test_balance_group_exact_rows_order_and_counts(pool, tmp_path):
    out = str(tmp_path / "curated-00003.parquet")
    res = curated.balance_group(3, pool, out, PROBS, SEED)

    kept = [FILE_A[0], FILE_A[2], FILE_B[0], FILE_B[1]]              # drawn, with a request form
    want = [dict(r) for r in kept]
    want[2]["url"] = "http://img.example/6.jpg"
    want[3]["url"] = "http://img.example/7%20x.jpg"
    # the curated order: order_keys of the pair keys (seeded), ties in pool order
    keys = order_keys(pa.array([r["key_hash"] for r in kept], pa.int64()), SEED)
    want = [want[i] for i in np.lexsort((np.arange(len(kept)), keys))]

    table = pq.read_table(out)
    assert table.schema.equals(POOL_SCHEMA)
    got = table.to_pylist()
    for row in got:
        row["lid_score"] = round(row["lid_score"], 3)
    assert got == want
    assert res.group == 3 and res.output == out
    assert (res.rows_in, res.rows_out) == (8, 4)
    assert res.file_rows == [5, 3]
    assert res.url_unencodable == 1                                   # :99999 is drawn, then left out
    assert res.expected == 5.0                                        # rows with entry 0 or 2: sum of p = 1
    # kept matches of the written rows: entry 0 twice (1.jpg, 6.jpg), 1 once (3.jpg), 2 three times
    assert res.entry_ids.tolist() == [0, 1, 2] and res.counts.tolist() == [2, 1, 3]
    assert res.entry_ids.dtype == np.int32 and res.counts.dtype == np.int64


def test_balance_group_same_bytes_for_the_same_seed_other_order_for_another(pool, tmp_path):
    first = curated.balance_group(0, pool, str(tmp_path / "x.parquet"), PROBS, SEED)
    again = curated.balance_group(0, pool, str(tmp_path / "y.parquet"), PROBS, SEED)
    assert (tmp_path / "x.parquet").read_bytes() == (tmp_path / "y.parquet").read_bytes()
    assert first.rows_out == again.rows_out == 4
    orders = {tuple(pq.read_table(curated.balance_group(0, pool, str(tmp_path / ("s%d.parquet" % s)),
                                                        PROBS, s).output).column("url").to_pylist())
              for s in range(8)}
    assert len(orders) > 1                                            # the seed shuffles the order


def test_balance_group_that_keeps_nothing_writes_no_file(pool, tmp_path):
    out = tmp_path / "empty.parquet"
    res = curated.balance_group(1, pool, str(out), np.zeros(3), SEED)
    assert res.output is None and not out.exists()
    assert (res.rows_in, res.rows_out, res.url_unencodable, res.expected) == (8, 0, 0, 0.0)
    assert res.file_rows == [5, 3] and res.entry_ids.tolist() == [] and res.counts.tolist() == []
