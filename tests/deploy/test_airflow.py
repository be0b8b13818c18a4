"""The monthly DAGs (deploy/airflow/) load through a real Airflow 3 DagBag with zero import
errors; their task graph, settings and rendered operator payloads are as designed.

Airflow and its providers live in a separate venv (.venv-airflow, built by `make airflow`,
which `make test` runs; built here when missing): the probe tests/deploy/airflow_probe.py runs
there in a subprocess and reports JSON (~20 s per DAG shape).

Two shapes, chosen by METACLIP_MODE when the DAG files are parsed: cumulative (default: stage 1
-> index merge -> balance of the index release with the diff against the last release ->
report) and per_crawl (stage 1 -> balance of the crawl alone -> report, the earlier DAGs)."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DAGS = os.path.join(ROOT, "deploy", "airflow")
sys.path.insert(0, DAGS)

from metaclip_crawls import dataproc_batch_id  # noqa: E402
from metaclip_dag import PLACEHOLDER  # noqa: E402
from metaclip_deploy import (Target, dataproc_batch, emr_serverless_job_run, spark_submit_command,  # noqa: E402
                             stage_job)

CRAWL = "CC-MAIN-2024-18"
PREVIOUS = "CC-MAIN-2024-10"        # find_previous's answer in the rendered payloads
RUN_ID = "scheduled__2024-05-06T00:00:00+00:00"
TRY = 2
EMR_DAG, GCP_DAG = "metaclip_monthly_emr_serverless", "metaclip_monthly_dataproc_serverless"
SPARK_DAG = "metaclip_monthly_spark_submit"


def run_probe(tmp_path_factory, mode: str | None, previous: dict) -> dict:
    python = os.path.join(ROOT, os.environ.get("AIRFLOW_VENV", ".venv-airflow"), "bin", "python")
    if not os.path.exists(python):
        subprocess.run(["make", "-s", "airflow"], cwd=ROOT, check=True)
    home = tmp_path_factory.mktemp("airflow-home")
    out = home / "probe.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "METACLIP_"))}
    env.update(AIRFLOW_HOME=str(home), AIRFLOW__CORE__LOAD_EXAMPLES="False",
               AIRFLOW__CORE__DAGS_FOLDER=DAGS)
    if mode:
        env["METACLIP_MODE"] = mode
    proc = subprocess.run([python, os.path.join(ROOT, "tests", "deploy", "airflow_probe.py"), DAGS, CRAWL, RUN_ID,
                           str(TRY), str(out), json.dumps(previous)], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    """The per_crawl DAGs (METACLIP_MODE=per_crawl): each crawl curated on its own."""
    return run_probe(tmp_path_factory, "per_crawl", {})


@pytest.fixture(scope="module")
def cumulative(tmp_path_factory):
    """The default DAGs (no METACLIP_MODE: cumulative), rendered with find_previous answering
    the curated folder of PREVIOUS's release."""
    return run_probe(tmp_path_factory, None, {dag_id: "%s/runs/crawl=%s/curated" % (prefix, PREVIOUS) for dag_id, prefix in (
        (EMR_DAG, "s3://my-bucket/metaclip"), (GCP_DAG, "gs://my-bucket/metaclip"), (SPARK_DAG, "/data/metaclip"))})


def test_dagbag_has_no_import_errors(probe, cumulative):
    for bag in (probe, cumulative):
        assert bag["import_errors"] == {}
        assert sorted(bag["dags"]) == [GCP_DAG, EMR_DAG, SPARK_DAG]
        assert bag["dags"][SPARK_DAG]["fileloc"] == os.path.join(DAGS, "metaclip_monthly_spark.py")


@pytest.mark.parametrize("dag_id,operator", [(EMR_DAG, "EmrServerlessStartJobOperator"),
                                             (GCP_DAG, "DataprocCreateBatchOperator"),
                                             (SPARK_DAG, "BashOperator")])
def test_task_graph(probe, dag_id, operator):
    dag = probe["dags"][dag_id]
    assert dag["schedule"] == "@weekly" and dag["max_active_runs"] == 1 and dag["catchup"] is False
    assert dag["params"]["crawl_id"] == {"type": ["null", "string"], "pattern": r"^CC-MAIN-(\d{4})-(\d{2})$"}
    graph = {t: (e["type"], e["upstream"], e["trigger_rule"]) for t, e in dag["tasks"].items()}
    assert graph == {
        "find_crawl": ("_PythonDecoratedOperator", [], "TriggerRule.ALL_SUCCESS"),
        "plan": ("_BranchPythonDecoratedOperator", ["find_crawl"], "TriggerRule.ALL_SUCCESS"),
        "stage1_match": (operator, ["plan"], "TriggerRule.ALL_SUCCESS"),
        "stage2_balance": (operator, ["plan", "stage1_match"], "TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS"),
        "report": (operator, ["plan", "stage2_balance"], "TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS"),
    }
    assert {t: e["downstream"] for t, e in dag["tasks"].items()} == {
        "find_crawl": ["plan"], "plan": ["report", "stage1_match", "stage2_balance"],
        "stage1_match": ["stage2_balance"], "stage2_balance": ["report"], "report": []}
    assert {e["retries"] for e in dag["tasks"].values()} == {2}


@pytest.mark.parametrize("dag_id,operator", [(EMR_DAG, "EmrServerlessStartJobOperator"),
                                             (GCP_DAG, "DataprocCreateBatchOperator"),
                                             (SPARK_DAG, "BashOperator")])
def test_task_graph_cumulative(cumulative, dag_id, operator):
    """match -> index_merge -> stage2_balance -> report, every stage a branch target of plan
    (resume), and find_previous (the last release's curated folder) before the balance."""
    dag = cumulative["dags"][dag_id]
    assert dag["schedule"] == "@weekly" and dag["max_active_runs"] == 1 and dag["catchup"] is False
    graph = {t: (e["type"], e["upstream"], e["trigger_rule"]) for t, e in dag["tasks"].items()}
    assert graph == {
        "find_crawl": ("_PythonDecoratedOperator", [], "TriggerRule.ALL_SUCCESS"),
        "plan": ("_BranchPythonDecoratedOperator", ["find_crawl"], "TriggerRule.ALL_SUCCESS"),
        "find_previous": ("_PythonDecoratedOperator", ["find_crawl"], "TriggerRule.ALL_SUCCESS"),
        "stage1_match": (operator, ["plan"], "TriggerRule.ALL_SUCCESS"),
        "index_merge": (operator, ["plan", "stage1_match"], "TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS"),
        "stage2_balance": (operator, ["find_previous", "index_merge", "plan"],
                           "TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS"),
        "report": (operator, ["plan", "stage2_balance"], "TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS"),
    }
    assert {t: e["downstream"] for t, e in dag["tasks"].items()} == {
        "find_crawl": ["find_previous", "plan"], "find_previous": ["stage2_balance"],
        "plan": ["index_merge", "report", "stage1_match", "stage2_balance"],
        "stage1_match": ["index_merge"], "index_merge": ["stage2_balance"], "stage2_balance": ["report"],
        "report": []}
    assert {e["retries"] for e in dag["tasks"].values()} == {2}


def _cumulative_target(platform, **kw):
    prefix = {"emr": "s3://my-bucket/metaclip", "dataproc": "gs://my-bucket/metaclip"}.get(platform, "/data/metaclip")
    return Target(platform=platform, crawl=CRAWL, previous="%s/runs/crawl=%s/curated" % (prefix, PREVIOUS), **kw)


def test_emr_serverless_cumulative_payloads(cumulative):
    """The index and balance-with-diff job runs, argument by argument."""
    tasks = cumulative["dags"][EMR_DAG]["tasks"]
    target = _cumulative_target("emr", bucket="my-bucket", application_id="00XXXXXXXXXXXXXX",
                                role_arn="arn:aws:iam::123456789012:role/metaclip-emr-serverless")
    for task_id, stage in (("stage1_match", "match"), ("index_merge", "index"), ("stage2_balance", "balance"),
                           ("report", "report")):
        r = tasks[task_id]["rendered"]
        expected = emr_serverless_job_run(target, stage)
        assert r["job_driver"] == expected["jobDriver"] and r["name"] == "metaclip-%s-%s" % (stage, CRAWL)
        assert PLACEHOLDER not in json.dumps(r) and "metaclip-previous-release" not in json.dumps(r)
    conf_sets = ["--set", "balance.t=20000", "--set", "data_files=sparkfiles", "--set", "input.cc_root=s3://commoncrawl/",
                 "--set", "input.max_failed_fraction=0.001"]
    sub = tasks["index_merge"]["rendered"]["job_driver"]["sparkSubmit"]
    assert sub["entryPoint"] == "s3://my-bucket/metaclip/code/jobs/index.py"
    assert sub["entryPointArguments"] == ["--pool", "s3://my-bucket/metaclip/runs/crawl=CC-MAIN-2024-18",
                                          "--index", "s3://my-bucket/metaclip/index"] + conf_sets
    sub = tasks["stage2_balance"]["rendered"]["job_driver"]["sparkSubmit"]
    assert sub["entryPoint"] == "s3://my-bucket/metaclip/code/jobs/balance.py"
    assert sub["entryPointArguments"] == [
        "--index", "s3://my-bucket/metaclip/index", "--dedup", "image",
        "--output", "s3://my-bucket/metaclip/runs/crawl=CC-MAIN-2024-18"] + conf_sets + [
        "--set", "balance.previous=s3://my-bucket/metaclip/runs/crawl=CC-MAIN-2024-10/curated"]
    args = tasks["stage1_match"]["rendered"]["job_driver"]["sparkSubmit"]["entryPointArguments"]
    assert args[-2:] == ["--set", "input.label=CC-MAIN-2024-18"]


def test_dataproc_serverless_cumulative_payloads(cumulative):
    tasks = cumulative["dags"][GCP_DAG]["tasks"]
    target = _cumulative_target("dataproc", bucket="my-bucket", region="us-central1", project="my-project",
                                service_account="metaclip@my-project.iam.gserviceaccount.com")
    ids = set()
    for task_id, stage in (("stage1_match", "match"), ("index_merge", "index"), ("stage2_balance", "balance"),
                           ("report", "report")):
        r = tasks[task_id]["rendered"]
        assert r["batch"] == dataproc_batch(target, stage_job(target, stage))
        assert r["batch_id"] == dataproc_batch_id(CRAWL, RUN_ID, stage, TRY)
        ids.add(r["batch_id"])
    assert len(ids) == 4
    conf_sets = ["--set", "balance.t=20000", "--set", "data_files=sparkfiles",
                 "--set", "input.cc_root=https://data.commoncrawl.org/", "--set", "input.max_failed_fraction=0.001"]
    b = tasks["index_merge"]["rendered"]["batch"]["pyspark_batch"]
    assert b["main_python_file_uri"] == "gs://my-bucket/metaclip/code/jobs/index.py"
    assert b["args"] == ["--pool", "gs://my-bucket/metaclip/runs/crawl=CC-MAIN-2024-18",
                         "--index", "gs://my-bucket/metaclip/index"] + conf_sets
    b = tasks["stage2_balance"]["rendered"]["batch"]["pyspark_batch"]
    assert b["main_python_file_uri"] == "gs://my-bucket/metaclip/code/jobs/balance.py"
    assert b["args"] == ["--index", "gs://my-bucket/metaclip/index", "--dedup", "image",
                         "--output", "gs://my-bucket/metaclip/runs/crawl=CC-MAIN-2024-18"] + conf_sets + [
                         "--set", "balance.previous=gs://my-bucket/metaclip/runs/crawl=CC-MAIN-2024-10/curated"]
    assert tasks["index_merge"]["rendered"]["batch_id"].startswith("mc-cc-main-2024-18-index-")


def test_spark_submit_cumulative_commands(cumulative):
    tasks = cumulative["dags"][SPARK_DAG]["tasks"]
    target = _cumulative_target("spark", root="/data/metaclip")
    for task_id, stage in (("stage1_match", "match"), ("index_merge", "index"), ("stage2_balance", "balance"),
                           ("report", "report")):
        assert tasks[task_id]["rendered"]["bash_command"] == spark_submit_command(target, stage).rstrip("\n")
    head = ("PYSPARK_DRIVER_PYTHON=python3 PYSPARK_PYTHON=./environment/bin/python spark-submit \\\n"
            "    --master spark://spark-master:7077 \\\n"
            "    --deploy-mode client \\\n"
            "    --archives '/data/metaclip/code/env.tar.gz#environment' \\\n"
            "    --files /data/metaclip/data/lid.176.bin,/data/metaclip/data/metadata.json \\\n")
    assert tasks["index_merge"]["rendered"]["bash_command"] == head + (
        "    /data/metaclip/code/jobs/index.py \\\n"
        "    --pool /data/metaclip/runs/crawl=CC-MAIN-2024-18 \\\n"
        "    --index /data/metaclip/index \\\n"
        "    --set data_files=sparkfiles")
    assert tasks["stage2_balance"]["rendered"]["bash_command"] == head + (
        "    /data/metaclip/code/jobs/balance.py \\\n"
        "    --index /data/metaclip/index \\\n"
        "    --dedup image \\\n"
        "    --output /data/metaclip/runs/crawl=CC-MAIN-2024-18 \\\n"
        "    --set data_files=sparkfiles \\\n"
        "    --set balance.previous=/data/metaclip/runs/crawl=CC-MAIN-2024-10/curated")


def test_emr_serverless_payloads(probe):
    tasks = probe["dags"][EMR_DAG]["tasks"]
    target = Target(platform="emr", mode="per_crawl", bucket="my-bucket", crawl=CRAWL)
    for task_id, stage in (("stage1_match", "match"), ("stage2_balance", "balance"), ("report", "report")):
        r = tasks[task_id]["rendered"]
        expected = emr_serverless_job_run(
            Target(platform="emr", mode="per_crawl", bucket="my-bucket", crawl=CRAWL, application_id="00XXXXXXXXXXXXXX",
                   role_arn="arn:aws:iam::123456789012:role/metaclip-emr-serverless"), stage)
        # the same template as `deploy/render.py emr-serverless` (checked against examples)
        assert r["job_driver"] == expected["jobDriver"]
        assert r["configuration_overrides"] == expected["configurationOverrides"]
        assert (r["application_id"], r["execution_role_arn"], r["name"]) == (
            expected["applicationId"], expected["executionRoleArn"], "metaclip-%s-%s" % (stage, CRAWL))
        sub = r["job_driver"]["sparkSubmit"]
        assert sub["entryPoint"] == "s3://my-bucket/metaclip/code/jobs/%s.py" % stage
        assert "--conf spark.archives=s3://my-bucket/metaclip/code/env.tar.gz#environment" in sub["sparkSubmitParameters"]
        assert "--conf spark.files=s3://my-bucket/metaclip/data/lid.176.bin," in sub["sparkSubmitParameters"]
        assert "--conf spark.dynamicAllocation.maxExecutors=100" in sub["sparkSubmitParameters"]
        assert target.run_dir == "s3://my-bucket/metaclip/runs/crawl=" + CRAWL
        assert target.run_dir in sub["entryPointArguments"]
        assert PLACEHOLDER not in json.dumps(r)
    args = tasks["stage1_match"]["rendered"]["job_driver"]["sparkSubmit"]["entryPointArguments"]
    assert args[:2] == ["--input", "s3://commoncrawl/crawl-data/%s/wat.paths.gz" % CRAWL]


def test_dataproc_serverless_payloads(probe):
    tasks = probe["dags"][GCP_DAG]["tasks"]
    target = Target(platform="dataproc", mode="per_crawl", bucket="my-bucket", crawl=CRAWL, region="us-central1",
                    project="my-project", service_account="metaclip@my-project.iam.gserviceaccount.com")
    ids = set()
    for task_id, stage in (("stage1_match", "match"), ("stage2_balance", "balance"), ("report", "report")):
        r = tasks[task_id]["rendered"]
        assert r["batch"] == dataproc_batch(target, stage_job(target, stage))
        assert r["batch_id"] == dataproc_batch_id(CRAWL, RUN_ID, stage, TRY)
        assert r["batch_id"].startswith("mc-cc-main-2024-18-%s-" % stage) and r["batch_id"].endswith("-t2")
        ids.add(r["batch_id"])
        assert (r["project_id"], r["region"]) == ("my-project", "us-central1")
        b = r["batch"]
        assert b["pyspark_batch"]["main_python_file_uri"] == "gs://my-bucket/metaclip/code/jobs/%s.py" % stage
        assert b["pyspark_batch"]["archive_uris"] == ["gs://my-bucket/metaclip/code/env.tar.gz#environment"]
        assert b["pyspark_batch"]["file_uris"] == ["gs://my-bucket/metaclip/data/lid.176.bin",
                                                   "gs://my-bucket/metaclip/data/metadata.json"]
        assert b["runtime_config"]["properties"]["spark.pyspark.python"] == "./environment/bin/python"
        assert b["runtime_config"]["properties"]["spark.task.maxFailures"] == "8"
    assert len(ids) == 3
    args = tasks["stage1_match"]["rendered"]["batch"]["pyspark_batch"]["args"]
    assert args[:2] == ["--input", "https://data.commoncrawl.org/crawl-data/%s/wat.paths.gz" % CRAWL]
    assert args[args.index("--output") + 1] == "gs://my-bucket/metaclip/runs/crawl=" + CRAWL


def test_spark_submit_commands(probe):
    """The self-managed variant's BashOperators run `deploy/render.py spark-submit`'s lines
    with the crawl filled in (defaults: no METACLIP_* set; Jinja drops the final newline)."""
    tasks = probe["dags"][SPARK_DAG]["tasks"]
    target = Target(platform="spark", mode="per_crawl", crawl=CRAWL, root="/data/metaclip")
    for task_id, stage in (("stage1_match", "match"), ("stage2_balance", "balance"), ("report", "report")):
        r = tasks[task_id]["rendered"]
        assert r["bash_command"] == spark_submit_command(target, stage).rstrip("\n")
        assert (r["env"], r["cwd"]) == (None, None)      # the worker's environment (JAVA_HOME, ...)
    assert tasks["stage1_match"]["rendered"]["bash_command"] == (
        "PYSPARK_DRIVER_PYTHON=python3 PYSPARK_PYTHON=./environment/bin/python spark-submit \\\n"
        "    --master spark://spark-master:7077 \\\n"
        "    --deploy-mode client \\\n"
        "    --archives '/data/metaclip/code/env.tar.gz#environment' \\\n"
        "    --files /data/metaclip/data/lid.176.bin,/data/metaclip/data/metadata.json \\\n"
        "    /data/metaclip/code/jobs/match.py \\\n"
        "    --input https://data.commoncrawl.org/crawl-data/CC-MAIN-2024-18/wat.paths.gz \\\n"
        "    --metadata /data/metaclip/data/metadata.json \\\n"
        "    --lid-model /data/metaclip/data/lid.176.bin \\\n"
        "    --output /data/metaclip/runs/crawl=CC-MAIN-2024-18 \\\n"
        "    --set data_files=sparkfiles")
