"""Stage 1 (Spark) writes the image index's pool columns (docs/index.md): image_id, text_hash
and the crawl label resolved on the driver per input file (inputs/labels.crawl_label)."""

import hashlib
import json
import shutil

import pyarrow.parquet as pq

from metaclip_spark.index import ids
from metaclip_spark.metadata import defaults
from metaclip_spark.run import outputs
from metaclip_spark.run.config import load_config
from metaclip_spark.run.schema import POOL_SCHEMA
from metaclip_spark.spark.stage1 import run_match


def pool_rows(run) -> list[dict]:
    rows = []
    for uri in outputs.list_files(str(run / "pool"), ".parquet"):
        table = pq.read_table(uri)
        assert table.schema.equals(POOL_SCHEMA)
        rows.extend(table.to_pylist())
    return rows


def check_ids(rows):
    for r in rows:
        want = hashlib.sha224(r["url"].replace("\t", "").replace(" ", "").encode("utf-8")).hexdigest()[:24]
        assert r["image_id"] == want
        assert r["text_hash"] == ids.text_hash(want, r["text"])


def test_stage1_pool_has_image_id_text_hash_and_crawl(spark, tmp_path):
    warc, wat = defaults.sample_inputs()
    cc = tmp_path / "in" / "crawl-data" / "CC-MAIN-2021-04" / "segments" / "1" / "warc"
    cc.mkdir(parents=True)
    shutil.copy(warc, cc / "SYNTH-1-00000.warc.gz")                     # a crawl id in its path
    plain = tmp_path / "in" / "plain"
    plain.mkdir()
    shutil.copy(wat, plain / "SYNTH-1-00001.warc.wat.gz")                # none: the run folder's name
    inputs = [str(cc / "SYNTH-1-00000.warc.gz"), str(plain / "SYNTH-1-00001.warc.wat.gz")]

    run = tmp_path / "run-2026"
    summary = run_match(load_config(overrides={"input.paths": inputs, "output": str(run)}), spark=spark)
    assert summary["inputs_failed"] == 0
    rows = pool_rows(run)
    assert len(rows) == summary["pool_rows"] > 0
    check_ids(rows)
    by_source = {}
    for r in rows:
        by_source.setdefault(r["source"], set()).add(r["crawl"])
    assert by_source == {inputs[0]: {"CC-MAIN-2021-04"}, inputs[1]: {"run-2026"}}
    plan = json.loads((run / "chunks" / "match" / "plan.json").read_text())
    assert plan["label"] == ""

    # an explicit label (input.label) names every row, whatever the paths say
    labelled = tmp_path / "labelled"
    run_match(load_config(overrides={"input.paths": inputs, "output": str(labelled), "input.label": "release-A"}),
              spark=spark)
    again = pool_rows(labelled)
    assert {r["crawl"] for r in again} == {"release-A"}
    strip = [{k: v for k, v in r.items() if k != "crawl"} for r in rows]
    assert [{k: v for k, v in r.items() if k != "crawl"} for r in again] == strip
