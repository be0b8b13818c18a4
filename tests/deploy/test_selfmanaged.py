"""A Spark cluster users run themselves: `deploy/render.py spark-submit` prints complete
client- and cluster-mode lines, and `airflow dags test metaclip_monthly_spark_submit`
(deploy/airflow/metaclip_monthly_spark.py, BashOperator spark-submit) runs stage 1, stage 2
and the report for real on the bundled sample, then resumes a crawl where it stopped.

The DAG run uses a `local[2]` master through the project venv's spark-submit, with the venv's
python as PYSPARK_PYTHON and PYSPARK_DRIVER_PYTHON and the repository's jobs/*.py as entry
files: no archive build (tests/deploy/test_archive.py covers --archives on a local-cluster).
Airflow runs from .venv-airflow (`make airflow`) in a subprocess, with AIRFLOW_HOME and its
SQLite database under tmp, no cloud credentials and no network (the crawl_id param is given,
so collinfo.json is never fetched).

Also here, sharing that Airflow home: without credentials the EMR and Dataproc variants fail
at once with a clear message instead of retrying every 10 minutes.

Slow: ~3 minutes on a shared 2-core machine (measured: the full DAG run 82-95 s, the resume
34-40 s, each cloud variant 15-18 s).
"""

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from metaclip_spark.metadata import defaults

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DAGS = os.path.join(ROOT, "deploy", "airflow")
RENDER = os.path.join(ROOT, "deploy", "render.py")
sys.path.insert(0, DAGS)

from metaclip_deploy import Target, spark_submit_command  # noqa: E402

CRAWL = "CC-MAIN-2024-18"
DAG_ID = "metaclip_monthly_spark_submit"
STAGE_TASKS = ["stage1_match", "stage2_balance", "report"]


def render(*argv):
    return subprocess.run([sys.executable, RENDER, "spark-submit"] + list(argv),
                          capture_output=True, text=True)


# ------------------------------------------------------------------ rendered lines


def test_client_mode_standalone_s3():
    out = render("--root", "s3://my-bucket/metaclip", "--crawl", "CC-MAIN-2024-10",
                 "--master", "spark://host:7077")
    assert out.returncode == 0, out.stderr
    assert out.stdout == (
        "PYSPARK_DRIVER_PYTHON=python3 PYSPARK_PYTHON=./environment/bin/python spark-submit \\\n"
        "    --master spark://host:7077 \\\n"
        "    --deploy-mode client \\\n"
        "    --archives 's3://my-bucket/metaclip/code/env.tar.gz#environment' \\\n"
        "    --files s3://my-bucket/metaclip/data/lid.176.bin,s3://my-bucket/metaclip/data/metadata.json \\\n"
        "    s3://my-bucket/metaclip/code/jobs/match.py \\\n"
        "    --input https://data.commoncrawl.org/crawl-data/CC-MAIN-2024-10/wat.paths.gz \\\n"
        "    --metadata s3://my-bucket/metaclip/data/metadata.json \\\n"
        "    --lid-model s3://my-bucket/metaclip/data/lid.176.bin \\\n"
        "    --output s3://my-bucket/metaclip/runs/crawl=CC-MAIN-2024-10 \\\n"
        "    --set data_files=sparkfiles \\\n"
        "    --set input.label=CC-MAIN-2024-10\n")


def test_client_mode_standalone_local_paths_balance():
    out = render("--root", "/data/metaclip", "--crawl", "CC-MAIN-2024-10", "--stage", "balance", "--mode", "per_crawl",
                 "--master", "spark://host:7077", "--driver-python", "/opt/metaclip/bin/python")
    assert out.returncode == 0, out.stderr
    assert out.stdout == (
        "PYSPARK_DRIVER_PYTHON=/opt/metaclip/bin/python PYSPARK_PYTHON=./environment/bin/python spark-submit \\\n"
        "    --master spark://host:7077 \\\n"
        "    --deploy-mode client \\\n"
        "    --archives '/data/metaclip/code/env.tar.gz#environment' \\\n"
        "    --files /data/metaclip/data/lid.176.bin,/data/metaclip/data/metadata.json \\\n"
        "    /data/metaclip/code/jobs/balance.py \\\n"
        "    --pool /data/metaclip/runs/crawl=CC-MAIN-2024-10 \\\n"
        "    --output /data/metaclip/runs/crawl=CC-MAIN-2024-10 \\\n"
        "    --set data_files=sparkfiles\n")


def test_cumulative_index_and_balance_with_diff():
    out = render("--root", "/data/metaclip", "--crawl", "CC-MAIN-2024-18", "--stage", "index", "--python", "/opt/py")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split(" \\\n    ")[-4:] == ["/data/metaclip/code/jobs/index.py",
                                                  "--pool /data/metaclip/runs/crawl=CC-MAIN-2024-18",
                                                  "--index /data/metaclip/index", "--set data_files=sparkfiles\n"]
    out = render("--root", "/data/metaclip", "--crawl", "CC-MAIN-2024-18", "--stage", "balance", "--python", "/opt/py",
                 "--index", "s3://b/idx", "--previous", "/data/metaclip/runs/crawl=CC-MAIN-2024-10/curated")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split(" \\\n    ")[-6:] == [
        "/data/metaclip/code/jobs/balance.py", "--index s3://b/idx", "--dedup image",
        "--output /data/metaclip/runs/crawl=CC-MAIN-2024-18", "--set data_files=sparkfiles",
        "--set balance.previous=/data/metaclip/runs/crawl=CC-MAIN-2024-10/curated\n"]
    out = render("--root", "/data/metaclip", "--crawl", "CC-MAIN-2024-18", "--stage", "index", "--mode", "per_crawl")
    assert out.returncode == 2 and "unknown stage 'index' (per_crawl mode" in out.stderr


def test_cluster_mode_yarn_s3_report():
    out = render("--root", "s3://my-bucket/metaclip", "--crawl", "CC-MAIN-2024-10", "--stage", "report",
                 "--master", "yarn", "--deploy-mode", "cluster")
    assert out.returncode == 0, out.stderr
    # the driver runs in the cluster: both pythons are Spark properties, no client environment
    assert out.stdout == (
        "spark-submit \\\n"
        "    --master yarn \\\n"
        "    --deploy-mode cluster \\\n"
        "    --archives 's3://my-bucket/metaclip/code/env.tar.gz#environment' \\\n"
        "    --files s3://my-bucket/metaclip/data/lid.176.bin,s3://my-bucket/metaclip/data/metadata.json \\\n"
        "    --conf spark.pyspark.driver.python=./environment/bin/python \\\n"
        "    --conf spark.pyspark.python=./environment/bin/python \\\n"
        "    s3://my-bucket/metaclip/code/jobs/report.py \\\n"
        "    --run s3://my-bucket/metaclip/runs/crawl=CC-MAIN-2024-10\n")


def test_cluster_mode_kubernetes_with_conf_file():
    out = render("--root", "gs://my-bucket/metaclip", "--crawl", "CC-MAIN-2024-10",
                 "--master", "k8s://https://k8s.example.com:443", "--deploy-mode", "cluster",
                 "--conf", os.path.join(ROOT, "conf", "dataproc.yaml"))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.split(" \\\n    ")
    assert lines[:5] == ["spark-submit", "--master k8s://https://k8s.example.com:443", "--deploy-mode cluster",
                         "--archives 'gs://my-bucket/metaclip/code/env.tar.gz#environment'",
                         "--files gs://my-bucket/metaclip/data/lid.176.bin,gs://my-bucket/metaclip/data/metadata.json"]
    # the conf file's Spark properties join the two pythons, sorted; its settings become --set
    assert "--conf spark.dynamicAllocation.maxExecutors=100" in lines
    assert "--conf spark.pyspark.python=./environment/bin/python" in lines
    assert lines[-5:] == ["--set balance.t=20000", "--set data_files=sparkfiles",
                          "--set input.cc_root=https://data.commoncrawl.org/",
                          "--set input.max_failed_fraction=0.001", "--set input.label=CC-MAIN-2024-10\n"]


def test_cluster_mode_refused_where_spark_refuses_python_drivers():
    for master in ("spark://host:7077", "local[2]"):
        out = render("--root", "/data/metaclip", "--crawl", "CC-MAIN-2024-10",
                     "--master", master, "--deploy-mode", "cluster")
        assert out.returncode == 2 and out.stdout == ""
        assert "cluster deploy mode runs Python drivers on YARN or Kubernetes only" in out.stderr
    out = render("--root", "data/metaclip", "--crawl", "CC-MAIN-2024-10")
    assert out.returncode == 2 and "root must be an absolute path or a URI" in out.stderr
    out = render("--root", "s3a://my-bucket/metaclip", "--crawl", "CC-MAIN-2024-10")
    assert out.returncode == 2 and "pyarrow, which reads s3:// only" in out.stderr
    out = render("--crawl", "CC-MAIN-2024-10")
    assert out.returncode == 2 and "--root and --crawl are required" in out.stderr


def test_node_local_python_drops_the_archive():
    target = Target(platform="spark", crawl=CRAWL, root="/srv/mc", master="local[2]", code="/opt/mc",
                    python="/opt/venv/bin/python", driver_python="/opt/venv/bin/python",
                    spark_submit="/opt/venv/bin/spark-submit", input="/srv/wat/*.wat.gz",
                    lid_model="/srv/lid.176.ftz", metadata="/srv/meta.json")
    assert spark_submit_command(target, "match") == (
        "PYSPARK_DRIVER_PYTHON=/opt/venv/bin/python PYSPARK_PYTHON=/opt/venv/bin/python /opt/venv/bin/spark-submit \\\n"
        "    --master 'local[2]' \\\n"
        "    --deploy-mode client \\\n"
        "    --files /srv/lid.176.ftz,/srv/meta.json \\\n"
        "    /opt/mc/jobs/match.py \\\n"
        "    --input '/srv/wat/*.wat.gz' \\\n"
        "    --metadata /srv/meta.json \\\n"
        "    --lid-model /srv/lid.176.ftz \\\n"
        "    --output /srv/mc/runs/crawl=CC-MAIN-2024-18 \\\n"
        "    --set data_files=sparkfiles \\\n"
        "    --set input.label=CC-MAIN-2024-18\n")


# ------------------------------------------------------------- airflow dags test


@pytest.fixture(scope="module")
def airflow(tmp_path_factory):
    """``run(*args, env=...)``: the Airflow CLI of .venv-airflow with AIRFLOW_HOME (a migrated
    SQLite database) under tmp, no METACLIP_*/cloud settings and no cloud credentials."""
    venv = os.path.join(ROOT, os.environ.get("AIRFLOW_VENV", ".venv-airflow"))
    if not os.path.exists(os.path.join(venv, "bin", "python")):
        subprocess.run(["make", "-s", "airflow"], cwd=ROOT, check=True)
    home = tmp_path_factory.mktemp("airflow-home")
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("AIRFLOW", "METACLIP_", "AWS_", "GOOGLE_", "CLOUDSDK_", "PYSPARK_"))}
    base.update(AIRFLOW_HOME=str(home), AIRFLOW__CORE__LOAD_EXAMPLES="False", AIRFLOW__CORE__DAGS_FOLDER=DAGS,
                AWS_SHARED_CREDENTIALS_FILE=str(home / "no-aws-credentials"),
                AWS_CONFIG_FILE=str(home / "no-aws-config"), AWS_EC2_METADATA_DISABLED="true",
                CLOUDSDK_CONFIG=str(home / "no-gcloud"), NO_GCE_CHECK="True")

    def run(*args, env=None, timeout=900):
        proc = subprocess.run([os.path.join(venv, "bin", "airflow")] + list(args), env={**base, **(env or {})},
                              cwd=str(home), capture_output=True, text=True, timeout=timeout)
        return proc

    proc = run("db", "migrate")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run.db = str(home / "airflow.db")
    assert os.path.isfile(run.db)
    return run


def task_states(airflow, dag_id):
    """task id -> state of the DAG's latest run, read from the Airflow home's SQLite database
    (the tables `airflow tasks states-for-dag-run` reads; its CLI costs ~10 s per call here)."""
    import sqlite3

    with sqlite3.connect(airflow.db) as db:
        (run_id,) = db.execute("SELECT run_id FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1",
                               (dag_id,)).fetchone()
        return dict(db.execute("SELECT task_id, state FROM task_instance WHERE dag_id = ? AND run_id = ?",
                               (dag_id, run_id)).fetchall())


def test_dags_test_runs_the_self_managed_variant_and_resumes(airflow, tmp_path):
    from metaclip_spark.spark.session import ensure_java

    root = tmp_path / "metaclip"
    run_dir = root / "runs" / ("crawl=" + CRAWL)
    venv_bin = os.path.dirname(sys.executable)
    env = dict(METACLIP_ROOT=str(root), METACLIP_SPARK_MASTER="local[2]",
               METACLIP_SPARK_SUBMIT=os.path.join(venv_bin, "spark-submit"),
               METACLIP_DRIVER_PYTHON=sys.executable, METACLIP_PYTHON=sys.executable, METACLIP_CODE=ROOT,
               METACLIP_LID_MODEL=defaults.default_lid_model_path(),
               METACLIP_METADATA=defaults.default_metadata_path(),
               METACLIP_INPUT=str(defaults.sample_dir() / "*.warc.wat.gz"),
               METACLIP_RETRIES="0", JAVA_HOME=ensure_java(), SPARK_LOCAL_IP="127.0.0.1",
               # the per-crawl shape: the index job's real run is the cumulative test's
               METACLIP_MODE="per_crawl")
    conf = json.dumps({"crawl_id": CRAWL})

    start = time.monotonic()
    proc = airflow("dags", "test", DAG_ID, "-c", conf, env=env)
    first = time.monotonic() - start
    (tmp_path / "dags-test-1.log").write_text(proc.stdout + proc.stderr)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    assert task_states(airflow, DAG_ID) == {"find_crawl": "success", "plan": "success",
                                                  "stage1_match": "success", "stage2_balance": "success",
                                                  "report": "success"}
    assert (run_dir / "_SUCCESS").is_file() and (run_dir / "curated" / "_SUCCESS").is_file()
    assert (run_dir / "report" / "index.html").is_file()
    stats = json.loads((run_dir / "stats" / "match.json").read_text())
    assert stats["inputs"] == 2 and stats["inputs_failed"] == 0 and stats["pool_rows"] > 0
    balance = json.loads((run_dir / "stats" / "balance.json").read_text())
    assert balance["pool_rows"] == stats["pool_rows"] and balance["curated_rows"] > 0

    # the report is lost: a re-run branches to it alone, the finished stages are skipped
    markers = {p: os.stat(run_dir / p).st_mtime_ns for p in ("_SUCCESS", "curated/_SUCCESS")}
    shutil.rmtree(run_dir / "report")
    start = time.monotonic()
    proc = airflow("dags", "test", DAG_ID, "-c", conf, env=env)
    second = time.monotonic() - start
    (tmp_path / "dags-test-2.log").write_text(proc.stdout + proc.stderr)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    assert task_states(airflow, DAG_ID) == {"find_crawl": "success", "plan": "success",
                                                  "stage1_match": "skipped", "stage2_balance": "skipped",
                                                  "report": "success"}
    assert (run_dir / "report" / "index.html").is_file()
    assert {p: os.stat(run_dir / p).st_mtime_ns for p in markers} == markers
    print("airflow dags test %s: full run %.0f s, resume (report only) %.0f s" % (DAG_ID, first, second))


@pytest.mark.parametrize("dag_id,message", [
    ("metaclip_monthly_emr_serverless",
     "AirflowFailException: no usable AWS credentials for connection 'aws_default'"),
    ("metaclip_monthly_dataproc_serverless",
     "AirflowFailException: no usable GCP credentials for connection 'google_cloud_default'"),
])
def test_cloud_variants_fail_fast_without_credentials(airflow, dag_id, message):
    """Under `dags test` with no credentials: plan fails once, no retry (default retries=2
    with a 10-minute delay, which looped before), and the log says why."""
    start = time.monotonic()
    proc = airflow("dags", "test", dag_id, "-c", json.dumps({"crawl_id": CRAWL}), timeout=300)
    elapsed = time.monotonic() - start
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert message in proc.stdout + proc.stderr
    assert "up_for_retry" not in proc.stdout + proc.stderr
    # the default (cumulative) shape: find_previous checks the store too, and fails the same way
    assert task_states(airflow, dag_id) == {"find_crawl": "success", "plan": "failed", "find_previous": "failed",
                                                "stage1_match": "upstream_failed", "index_merge": "upstream_failed",
                                                "stage2_balance": "upstream_failed",
                                                "report": "upstream_failed"}
    assert elapsed < 240
