"""Kill-and-resume: stage 1 stopped after its first committed chunk, then rerun, gives
byte for byte the pool, entry counts and curated set of an uninterrupted run."""

import json
import os

import pytest

from metaclip_spark import synth
from metaclip_spark.run.config import ConfigError, load_config
from metaclip_spark.spark.stage2 import run_balance
from metaclip_spark.spark.stage1 import run_match


class Killed(Exception):
    pass


def files_bytes(folder):
    out = {}
    for dirpath, _, names in os.walk(folder):
        for n in names:
            if not n.startswith("."):
                p = os.path.join(dirpath, n)
                out[os.path.relpath(p, folder)] = open(p, "rb").read()
    return out


def manifest(out):
    rows = json.loads(open(os.path.join(out, "stats", "match-files.json")).read())
    return [(r["source"], os.path.relpath(r["output"], out), r["rows"], r["failed"]) for r in rows]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus5")
    synth.make_corpus(str(folder), 60, 11, files=5)
    return sorted(str(folder / n) for n in os.listdir(folder) if n.endswith(".warc.wat.gz"))


def test_killed_run_resumes_to_the_uninterrupted_result(spark, inputs, tmp_path):
    assert len(inputs) == 5
    # one crawl label for both runs (else each pool's `crawl` column is its run folder's name)
    conf = {"input.paths": inputs, "input.chunk_size": 2, "balance.t": 3, "input.label": "resume-test"}
    full_out, part_out = str(tmp_path / "full"), str(tmp_path / "part")
    full = run_match(load_config(overrides={**conf, "output": full_out}), spark=spark)
    assert full["chunks"] == 3 and full["chunks_reused"] == 0 and full["pool_rows"] > 0

    def kill_after_first(i):
        if i == 0:
            raise Killed()

    with pytest.raises(Killed):
        run_match(load_config(overrides={**conf, "output": part_out}), spark=spark, after_chunk=kill_after_first)
    assert os.path.exists(os.path.join(part_out, "chunks/match/chunk-00000/_SUCCESS"))
    assert not os.path.exists(os.path.join(part_out, "chunks/match/chunk-00001"))
    assert not os.path.exists(os.path.join(part_out, "_SUCCESS"))
    # a leftover of a killed attempt of chunk 1 (a stale part file) must not survive the rerun
    from metaclip_spark.steps.pipeline import part_name
    stale = os.path.join(part_out, "pool", part_name(inputs[2]))
    open(stale, "wb").write(b"garbage from a killed task")

    with pytest.raises(ConfigError, match="unfinished match run with other"):
        run_match(load_config(overrides={**conf, "input.chunk_size": 3, "output": part_out}), spark=spark)
    resumed = run_match(load_config(overrides={**conf, "output": part_out}), spark=spark)
    assert resumed["chunks"] == 3 and resumed["chunks_reused"] == 1
    assert resumed["counts"] == full["counts"] and resumed["pool_rows"] == full["pool_rows"]
    assert files_bytes(os.path.join(part_out, "pool")) == files_bytes(os.path.join(full_out, "pool"))
    assert files_bytes(os.path.join(part_out, "entry_counts")) == files_bytes(os.path.join(full_out, "entry_counts"))
    assert manifest(part_out) == manifest(full_out)
    for out in (full_out, part_out):
        run_balance(load_config(overrides={**conf, "output": out}), [out], spark=spark)
    curated = files_bytes(os.path.join(part_out, "curated"))
    assert curated and curated == files_bytes(os.path.join(full_out, "curated"))

    # chunk sums: the final counts are the sum of the committed chunks' counts
    total = {}
    for i in range(3):
        doc = json.loads(open(os.path.join(part_out, "chunks/match/chunk-%05d/totals.json" % i)).read())
        for k, v in doc["stats"]["counts"].items():
            total[k] = total.get(k, 0) + v
    assert total == resumed["counts"]


def test_killed_balance_resumes_to_the_uninterrupted_result(spark, tmp_path):
    """Stage 2 in chunks of 2 groups, killed after its first committed chunk, then rerun: the
    curated files and balance counts are byte for byte those of an uninterrupted run."""
    from tests.spark.test_stage2 import write_pool

    pool = str(tmp_path / "pool")
    write_pool(pool, rows=30_000, files=6, seed=3)
    # the per-occurrence stage 2 (dedup none): its groups of pool files and chunks/balance/ markers
    conf = {"balance.t": 300, "balance.rows_per_file": 1_000, "balance.seed": 2, "balance.dedup": "none"}
    full_out, part_out = str(tmp_path / "full"), str(tmp_path / "part")
    full = run_balance(load_config(overrides={**conf, "output": full_out}), [pool], spark=spark, chunk_size=2)
    assert full["groups"] == 6 and full["chunks"] == 3 and full["chunks_reused"] == 0

    def kill_after_first(i):
        if i == 0:
            raise Killed()

    with pytest.raises(Killed):
        run_balance(load_config(overrides={**conf, "output": part_out}), [pool], spark=spark, chunk_size=2,
                    after_chunk=kill_after_first)
    assert os.path.exists(os.path.join(part_out, "chunks/balance/chunk-00000/_SUCCESS"))
    assert not os.path.exists(os.path.join(part_out, "chunks/balance/chunk-00001"))
    assert not os.path.exists(os.path.join(part_out, "curated/_SUCCESS"))
    assert sorted(os.listdir(os.path.join(part_out, "curated"))) == ["part-00000.parquet", "part-00001.parquet"]
    # a leftover of a killed attempt of chunk 1 (a half-written curated file) must not survive the rerun
    open(os.path.join(part_out, "curated", "part-00002.parquet"), "wb").write(b"garbage from a killed task")

    with pytest.raises(ConfigError, match="unfinished balance run with other seed"):
        run_balance(load_config(overrides={**conf, "balance.seed": 3, "output": part_out}), [pool], spark=spark,
                    chunk_size=2)
    resumed = run_balance(load_config(overrides={**conf, "output": part_out}), [pool], spark=spark, chunk_size=2)
    assert resumed["chunks"] == 3 and resumed["chunks_reused"] == 1
    curated = files_bytes(os.path.join(part_out, "curated"))
    assert len(curated) == 7 and curated == files_bytes(os.path.join(full_out, "curated"))   # 6 parts + _SUCCESS
    assert files_bytes(os.path.join(part_out, "balance_counts")) == files_bytes(os.path.join(full_out, "balance_counts"))
    same = ("wall_seconds", "chunks_reused", "pools")
    assert {k: v for k, v in resumed.items() if k not in same} == {k: v for k, v in full.items() if k not in same}
    assert json.load(open(os.path.join(part_out, "stats", "balance.json")))["curated_rows"] == full["curated_rows"]
    assert os.path.exists(os.path.join(part_out, "config-balance.json"))
