"""Run folders (metaclip_spark/run/runfolder.py), Spark-free: where a run may write, what it
may delete, one writer at a time, and the driver's check of what tasks wrote."""

import json
import os
import subprocess
import sys
import time

import pyarrow as pa
import pytest

from metaclip_spark.run import outputs
from metaclip_spark.run import runfolder
from metaclip_spark.run.config import ConfigError
from metaclip_spark.run.totals import RunTotals


def test_absolute_relative_inside(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert runfolder.absolute("runs/a/") == str(tmp_path / "runs" / "a")
    assert runfolder.absolute("s3://b/runs/a/") == "s3://b/runs/a"
    assert runfolder.absolute("file:///x/y") == "/x/y"
    assert runfolder.relative("runs/a", str(tmp_path / "runs/a/pool/f.parquet")) == "pool/f.parquet"
    assert runfolder.relative("s3://b/r", "s3://b/r/pool/f.parquet") == "pool/f.parquet"
    with pytest.raises(ValueError):
        runfolder.relative("runs/a", "runs/b/pool/f.parquet")
    assert runfolder.inside("s3://b/r", "pool/f.parquet") == "s3://b/r/pool/f.parquet"
    for bad in ("/abs/pool/f.parquet", "s3://other/pool/f.parquet", "pool/../../x.parquet"):
        with pytest.raises(ConfigError, match="older version"):
            runfolder.inside("s3://b/r", bad)


def test_pool_digest_binds_names_and_rows():
    d = runfolder.pool_digest([("pool/b.parquet", 2), ("pool/a.parquet", 1)])
    assert d == runfolder.pool_digest([("pool/a.parquet", 1), ("pool/b.parquet", 2)])
    assert d != runfolder.pool_digest([("pool/a.parquet", 1), ("pool/b.parquet", 3)])
    assert d != runfolder.pool_digest([("pool/a.parquet", 1), ("pool/c.parquet", 2)])


def test_roots_home_and_input_folders_are_refused(tmp_path):
    for bad in ("/", os.path.expanduser("~"), "s3://bucket", "s3://bucket/"):
        with pytest.raises(ConfigError, match="refusing --output"):
            runfolder.check_location(bad)
    data = tmp_path / "data"
    data.mkdir()
    (data / "x.warc.gz").write_bytes(b"")
    inp = str(data / "x.warc.gz")
    with pytest.raises(ConfigError, match="holds the input"):          # output = the input's folder
        runfolder.check_location(str(data), [inp], [inp])
    with pytest.raises(ConfigError, match="inside the input folder"):  # output inside an input folder
        runfolder.check_location(str(data / "run"), [str(data)], [inp])
    with pytest.raises(ConfigError, match="holds the input"):          # an input below the output
        runfolder.check_location(str(tmp_path), [inp], [inp])
    runfolder.check_location(str(tmp_path / "run"), [inp], [inp])     # a sibling folder is fine
    runfolder.check_location(str(data / "run"), [inp], [inp])         # beside an input file is fine


def test_claim_accepts_new_empty_and_run_folders_only(tmp_path):
    new = tmp_path / "new"
    runfolder.claim(str(new))
    assert json.loads((new / runfolder.MARKER).read_text())["tool"] == "metaclip-spark"
    runfolder.claim(str(new))                                          # a run folder: accepted again
    empty = tmp_path / "empty"
    empty.mkdir()
    runfolder.claim(str(empty))
    assert os.listdir(empty) == [runfolder.MARKER]
    user = tmp_path / "user"
    (user / "stats").mkdir(parents=True)
    (user / "stats" / "notes.txt").write_text("mine")
    (user / "config.json").write_text("{}")
    with pytest.raises(ConfigError, match=r"is not empty \(config.json, stats\) and is not a metaclip-spark run"):
        runfolder.claim(str(user))
    assert sorted(os.listdir(user)) == ["config.json", "stats"]        # nothing written, nothing deleted
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        runfolder.claim(str(f))


def test_remove_owned_deletes_only_what_a_stage_writes(tmp_path):
    pool = tmp_path / "pool"
    (pool / "sub").mkdir(parents=True)
    ours = ["x-0123456789ab.parquet", ".tmp-0123456789ab-x-0123456789ab.parquet"]
    theirs = ["mine.parquet", "notes.txt", "_x.parquet", ".tmp-x.parquet", "x-0123456789ab.parquet.bak"]
    for n in ours + theirs:
        (pool / n).write_bytes(b"1")
    (pool / "sub" / "y-ffffffffffff.parquet").write_bytes(b"1")
    assert runfolder.remove_owned(str(pool), patterns=(runfolder.POOL_PART_RE,)) == 2
    assert sorted(os.listdir(pool)) == sorted(theirs + ["sub"])
    assert runfolder.remove_owned(str(pool), patterns=(runfolder.POOL_PART_RE,), recursive=True) == 1
    assert sorted(os.listdir(pool)) == sorted(theirs)                   # sub/ was left empty by us: gone
    only = tmp_path / "curated"
    only.mkdir()
    (only / "part-00000.parquet").write_bytes(b"1")
    (only / "_SUCCESS").write_bytes(b"")
    assert runfolder.remove_owned(str(only), names=("_SUCCESS",), patterns=(runfolder.CURATED_PART_RE,)) == 2
    assert not only.exists()                                          # emptied by us: removed
    keep = tmp_path / "keep"
    keep.mkdir()
    assert runfolder.remove_owned(str(keep)) == 0 and keep.exists()    # an empty folder we did not touch stays


def _hold_lock(folder: str, stage: str) -> subprocess.Popen:
    """Another process holding the run folder's lock until its stdin closes."""
    code = ("import sys; from metaclip_spark.run import runfolder\n"
            "with runfolder.RunLock(sys.argv[1], sys.argv[2]):\n"
            "    print('held', flush=True); sys.stdin.read()\n")
    p = subprocess.Popen([sys.executable, "-c", code, folder, stage], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True)
    assert p.stdout.readline().strip() == "held"
    return p


def test_lock_refuses_a_second_writer_and_takes_over_dead_ones(tmp_path):
    out = str(tmp_path / "run")
    holder = _hold_lock(out, "balance")
    try:
        with pytest.raises(ConfigError, match=r"is in use by another run \(balance on host .*, pid %d\)" % holder.pid):
            with runfolder.RunLock(out, "balance"):
                pass
    finally:
        holder.stdin.close()
        holder.wait(30)
    assert not os.path.exists(os.path.join(out, runfolder.LOCK))      # released by its holder
    # a holder killed with SIGKILL leaves its lock behind: the next run takes it over
    holder = _hold_lock(out, "match")
    holder.kill()
    holder.wait(30)
    assert os.path.exists(os.path.join(out, runfolder.LOCK))
    with runfolder.RunLock(out, "match"):
        with runfolder.RunLock(out, "balance"):                       # re-entrant in one process (curate)
            assert json.loads(open(os.path.join(out, runfolder.LOCK)).read())["pid"] == os.getpid()
    assert not os.path.exists(os.path.join(out, runfolder.LOCK))
    # another host's lock: refused while its heartbeat is fresh, taken over once stale
    doc = {"token": "t", "host": "elsewhere.example", "pid": 1, "stage": "match", "heartbeat": time.time()}
    outputs.write_text(os.path.join(out, runfolder.LOCK), json.dumps(doc))
    with pytest.raises(ConfigError, match="in use by another run"):
        with runfolder.RunLock(out, "match"):
            pass
    doc["heartbeat"] = time.time() - runfolder.STALE_SECONDS - 1
    outputs.write_text(os.path.join(out, runfolder.LOCK), json.dumps(doc))
    with runfolder.RunLock(out, "match"):
        pass


def test_driver_refuses_files_tasks_reported_but_it_cannot_see(tmp_path):
    run = str(tmp_path)
    outputs.write_table(os.path.join(run, "pool", "a-0123456789ab.parquet"), pa.table({"x": [1, 2, 3]}))
    runfolder.verify_parquet_files(run, [("pool/a-0123456789ab.parquet", 3)])
    with pytest.raises(runfolder.OutputMissing, match=r"2 output file\(s\) .*a-0123456789ab.parquet: 3 rows, task "
                                                      r"reported 4; pool/b.parquet: missing"):
        runfolder.verify_parquet_files(run, [("pool/a-0123456789ab.parquet", 4), ("pool/b.parquet", 1)])


def test_a_chunk_is_not_committed_when_its_files_are_not_visible(tmp_path):
    """The stage runner checks a chunk's files before its marker: a task that 'wrote' where the
    driver cannot see (an executor's own disk) fails the run instead of committing the chunk.
    (The run_chunk here stands in for the Spark job: it reports a file it did not write.)"""
    from metaclip_spark.run import runner
    from metaclip_spark.steps.pipeline import FileResult
    from metaclip_spark.run.stats import Stats

    out = str(tmp_path / "run")
    runfolder.claim(out)

    def stage(run_chunk):
        return runner.Stage(name="match", output=out, plan={"stage": "match"}, items=["in-1.warc.gz"],
                            chunk_size=1, run_chunk=run_chunk, finish=lambda totals, info: {}, n_entries=1)

    def run_chunk(i, part):
        totals = RunTotals(1)
        for uri in part:
            totals.add_file(FileResult(uri, outputs.join("/elsewhere/pool", "f.parquet"), 5, Stats()))
        return totals

    with pytest.raises(ValueError, match="not inside the run folder"):
        runner.run_chunks(stage(run_chunk))

    def run_chunk_unseen(i, part):
        totals = RunTotals(1)
        for uri in part:
            totals.add_file(FileResult(uri, outputs.join(out, "pool", "in-1-0123456789ab.parquet"), 5, Stats()))
        return totals

    with pytest.raises(runfolder.OutputMissing, match="pool/in-1-0123456789ab.parquet: missing"):
        runner.run_chunks(stage(run_chunk_unseen))
    assert not os.path.exists(os.path.join(out, "chunks", "match", "chunk-00000", "_SUCCESS"))
