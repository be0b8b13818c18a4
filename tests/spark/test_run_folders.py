"""Run-folder safety of the stages on real Spark (issue: data safety): relative outputs on a
real cluster, self-contained (copied, moved) run folders, stale temporaries, user files,
finished curated sets and concurrent writers."""

import glob
import json
import os
import shutil
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

from metaclip_spark.metadata import defaults
from metaclip_spark.run import runfolder
from metaclip_spark.run.config import ConfigError, load_config
from metaclip_spark.spark.stage2 import run_balance
from metaclip_spark.spark.stage1 import run_match

CLI = os.path.join(os.path.dirname(sys.executable), "metaclip-spark")


def cfg(out, **over):
    return load_config(overrides={"output": str(out), **over})


def pool_rows(folder) -> int:
    return sum(pq.read_metadata(p).num_rows for p in glob.glob(os.path.join(folder, "pool", "*.parquet")))


def tree(folder) -> dict:
    out = {}
    for d, _, names in os.walk(folder):
        for n in names:
            p = os.path.join(d, n)
            out[os.path.relpath(p, folder)] = open(p, "rb").read()
    return out


def test_relative_output_on_a_local_cluster_lands_where_asked(tmp_path, spark_work_cleanup):
    """`match --master local-cluster[...] --output runs/relx`: executors run in their own
    working folders; the pool must still be under ./runs/relx (it was under pyspark/work/)."""
    from metaclip_spark.spark.session import ensure_java

    env = dict(os.environ, JAVA_HOME=ensure_java(), SPARK_LOCAL_IP="127.0.0.1")
    env.pop("PYSPARK_GATEWAY_PORT", None)
    proc = subprocess.run([CLI, "match", "--master", "local-cluster[1,1,1024]", "--output", "runs/relx"],
                          cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    run = tmp_path / "runs" / "relx"
    summary = json.loads((run / "stats" / "match.json").read_text())
    manifest = json.loads((run / "stats" / "match-files.json").read_text())
    assert summary["pool_rows"] == pool_rows(run) > 0
    assert sorted(f["output"] for f in manifest) == sorted(
        "pool/" + os.path.basename(p) for p in glob.glob(str(run / "pool" / "*.parquet")))
    assert (run / "_SUCCESS").exists()


def test_copied_and_moved_run_folders_are_self_contained(spark, tmp_path, monkeypatch):
    a = tmp_path / "runs" / "a"
    first = run_match(cfg(a), spark=spark)
    copy = tmp_path / "runs" / "a_copy"
    shutil.copytree(a, copy)
    # rerun a with other settings: its pool changes under the same file names
    second = run_match(cfg(a, **{"lid.threshold": 0.9, "overwrite": True}), spark=spark)
    assert second["pool_rows"] != first["pool_rows"]
    bal = run_balance(cfg(tmp_path / "bal", **{"balance.t": 3}), [str(copy)], spark=spark)
    assert bal["pool_rows"] == first["pool_rows"] == pool_rows(copy)
    # moved elsewhere and balanced by a relative path from another working folder
    moved = tmp_path / "elsewhere" / "moved"
    shutil.move(str(copy), str(moved))
    monkeypatch.chdir(tmp_path / "elsewhere")
    again = run_balance(cfg("bal2", **{"balance.t": 3}), ["moved"], spark=spark)
    assert again["pool_rows"] == first["pool_rows"]
    assert tree(tmp_path / "elsewhere" / "bal2" / "curated") == tree(tmp_path / "bal" / "curated")
    # a pool whose files no longer match its counts is refused before Spark
    manifest_uri = moved / "stats" / "match-files.json"
    manifest = json.loads(manifest_uri.read_text())
    victim = next(f for f in manifest if f["rows"])
    victim["rows"] += 1
    manifest_uri.write_text(json.dumps(manifest))
    with pytest.raises(ConfigError, match="not the ones its entry counts came from"):
        run_balance(cfg("bal3", **{"balance.t": 3}), ["moved"], spark=spark)
    victim["rows"] -= 1
    manifest_uri.write_text(json.dumps(manifest))
    os.remove(moved / victim["output"])
    with pytest.raises(ConfigError, match=r"1 pool file\(s\) of its manifest are missing \(%s\)" % victim["output"]):
        run_balance(cfg("bal3", **{"balance.t": 3}), ["moved"], spark=spark)


class Killed(Exception):
    pass


def test_user_files_are_never_deleted_and_stale_temporaries_are(spark, tmp_path):
    inputs = defaults.sample_inputs()
    # a non-empty folder that is not a run folder: refused, untouched (with or without --overwrite)
    user = tmp_path / "user"
    (user / "stats").mkdir(parents=True)
    (user / "pool").mkdir()
    (user / "stats" / "notes.txt").write_text("notes")
    (user / "pool" / "mine.parquet").write_bytes(b"mine")
    (user / "config.json").write_text("{\"mine\": 1}")
    before = tree(user)
    for over in ({}, {"overwrite": True}):
        with pytest.raises(ConfigError, match="is not empty .* not a metaclip-spark run folder"):
            run_match(cfg(user, **over), spark=spark)
        assert tree(user) == before
    # the output folder = the input folder
    data = tmp_path / "data"
    data.mkdir()
    for p in inputs:
        shutil.copy(p, data)
    with pytest.raises(ConfigError, match="it is the input folder"):
        run_match(cfg(data, **{"input.paths": [str(data)]}), spark=spark)
    with pytest.raises(ConfigError, match="holds the input"):
        run_match(cfg(data, **{"input.paths": [str(data / os.path.basename(p)) for p in inputs]}), spark=spark)
    assert sorted(os.listdir(data)) == sorted(os.path.basename(p) for p in inputs)
    # a run folder with the user's files inside: --overwrite replaces only what runs wrote
    run = tmp_path / "run"
    full = run_match(cfg(run), spark=spark)
    (run / "stats" / "notes.txt").write_text("notes")
    (run / "pool" / "mine.parquet").write_bytes(b"mine")

    def kill(i):
        raise Killed()

    with pytest.raises(Killed):
        run_match(cfg(run, **{"overwrite": True}), spark=spark, after_chunk=kill)
    stale = [run / "pool" / ".tmp-0123456789ab-x-0123456789ab.parquet", run / "stats" / ".tmp-0123456789ab-match.json"]
    for p in stale:
        p.write_bytes(b"half-written by a killed task")
    resumed = run_match(cfg(run), spark=spark)
    assert resumed["pool_rows"] == full["pool_rows"] and resumed["chunks_reused"] == 1
    assert not any(p.exists() for p in stale)
    assert (run / "stats" / "notes.txt").read_text() == "notes"
    assert (run / "pool" / "mine.parquet").read_bytes() == b"mine"
    assert not (run / runfolder.LOCK).exists()


def test_root_output_is_refused_before_spark(tmp_path):
    proc = subprocess.run([CLI, "match", "--output", "/"], cwd=str(tmp_path), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2
    assert "refusing --output /: a filesystem root or home folder" in proc.stderr
    assert not os.path.exists("/pool") and not os.path.exists("/" + runfolder.MARKER)


def test_finished_curated_set_needs_overwrite_and_one_writer_at_a_time(spark, tmp_path):
    run = tmp_path / "run"
    run_match(cfg(run), spark=spark)
    first = run_balance(cfg(run, **{"balance.t": 3}), [str(run)], spark=spark)
    curated = tree(run / "curated")
    with pytest.raises(ConfigError, match="already holds a finished curated set"):
        run_balance(cfg(run, **{"balance.t": 5}), [str(run)], spark=spark)
    assert tree(run / "curated") == curated
    # another process is writing into the folder: a second balance is refused, clearly
    code = ("import sys; from metaclip_spark.run import runfolder\n"
            "with runfolder.RunLock(sys.argv[1], 'balance'):\n"
            "    print('held', flush=True); sys.stdin.read()\n")
    holder = subprocess.Popen([sys.executable, "-c", code, str(run)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(ConfigError, match=r"is in use by another run \(balance on host"):
            run_balance(cfg(run, **{"balance.t": 5, "overwrite": True}), [str(run)], spark=spark)
    finally:
        holder.stdin.close()
        holder.wait(30)
    assert tree(run / "curated") == curated
    second = run_balance(cfg(run, **{"balance.t": 5, "overwrite": True}), [str(run)], spark=spark)
    assert second["t"] == 5 and first["t"] == 3
    assert json.loads((run / "stats" / "balance.json").read_text())["t"] == 5
