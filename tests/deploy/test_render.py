"""Rendered EMR / Dataproc submissions (deploy/render.py, deploy/airflow/metaclip_deploy.py)
equal the checked-in files under deploy/*/examples/, and the README shows those commands."""

import json
import os
import re
import subprocess
import sys

import pytest

from metaclip_spark.run.config import ConfigError, load_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "deploy", "airflow"))
sys.path.insert(0, os.path.join(ROOT, "deploy"))

import render as render_cli  # noqa: E402
from metaclip_deploy import Target, load_conf, split_conf, stage_job  # noqa: E402


def test_examples_equal_checked_in_files():
    files = render_cli.example_files()
    assert len(files) == 13          # steps.json + 3 files for each of match, index, balance, report
    for rel, text in files.items():
        with open(os.path.join(ROOT, "deploy", rel), encoding="utf-8") as fh:
            assert fh.read() == text, "deploy/%s is stale: run `make deploy-examples`" % rel


@pytest.mark.parametrize("argv,rel", [
    (["emr-steps", "--bucket", "my-bucket", "--crawl", "CC-MAIN-2024-10"], "emr/examples/steps.json"),
    (["emr-serverless", "--bucket", "my-bucket", "--crawl", "CC-MAIN-2024-10", "--stage", "balance",
      "--application-id", "00XXXXXXXXXXXXXX", "--role-arn",
      "arn:aws:iam::123456789012:role/metaclip-emr-serverless"], "emr/examples/serverless-balance.json"),
    (["dataproc-job", "--bucket", "my-bucket", "--crawl", "CC-MAIN-2024-10", "--stage", "match",
      "--project", "my-project", "--region", "us-central1", "--cluster", "metaclip"], "dataproc/examples/jobs-match.sh"),
    (["dataproc-batch", "--bucket", "my-bucket", "--crawl", "CC-MAIN-2024-10", "--stage", "report",
      "--project", "my-project", "--region", "us-central1", "--service-account",
      "metaclip@my-project.iam.gserviceaccount.com"], "dataproc/examples/batches-report.sh"),
])
def test_cli_renders_the_examples(argv, rel):
    out = subprocess.run([sys.executable, os.path.join(ROOT, "deploy", "render.py")] + argv,
                         capture_output=True, text=True, check=True).stdout
    assert out == open(os.path.join(ROOT, "deploy", rel), encoding="utf-8").read()
    assert "python deploy/render.py " + " ".join(argv) in readme_commands()


def readme_commands() -> str:
    """README.md with shell line continuations joined (commands as a shell reads them)."""
    text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    return re.sub(r" *\\\n *", " ", text)


def test_emr_step_content():
    steps = json.load(open(os.path.join(ROOT, "deploy", "emr", "examples", "steps.json")))
    assert [s["Name"] for s in steps] == ["metaclip-%s-CC-MAIN-2024-10" % s
                                          for s in ("match", "index", "balance", "report")]
    args = steps[0]["Args"]
    assert args[:3] == ["spark-submit", "--deploy-mode", "cluster"]
    assert args[args.index("--archives") + 1] == "s3://my-bucket/metaclip/code/env.tar.gz#environment"
    assert args[args.index("--files") + 1] == \
        "s3://my-bucket/metaclip/data/lid.176.bin,s3://my-bucket/metaclip/data/metadata.json"
    i = args.index("s3://my-bucket/metaclip/code/jobs/match.py")
    assert args[i + 1:i + 9] == ["--input", "s3://commoncrawl/crawl-data/CC-MAIN-2024-10/wat.paths.gz",
                                 "--metadata", "s3://my-bucket/metaclip/data/metadata.json",
                                 "--lid-model", "s3://my-bucket/metaclip/data/lid.176.bin",
                                 "--output", "s3://my-bucket/metaclip/runs/crawl=CC-MAIN-2024-10"]
    confs = [args[j + 1] for j in range(i) if args[j] == "--conf"]
    assert "spark.yarn.appMasterEnv.PYSPARK_PYTHON=./environment/bin/python" in confs
    assert "spark.executorEnv.PYSPARK_PYTHON=./environment/bin/python" in confs
    assert "spark.task.maxFailures=8" in confs and "spark.locality.wait=0s" in confs
    assert "data_files=sparkfiles" in args[i:]


def test_serverless_parameters():
    run = json.load(open(os.path.join(ROOT, "deploy", "emr", "examples", "serverless-match.json")))
    params = run["jobDriver"]["sparkSubmit"]["sparkSubmitParameters"].split(" ")
    confs = dict(p.split("=", 1) for p in params if p != "--conf")
    assert confs["spark.archives"] == "s3://my-bucket/metaclip/code/env.tar.gz#environment"
    assert confs["spark.emr-serverless.driverEnv.PYSPARK_PYTHON"] == "./environment/bin/python"
    assert confs["spark.emr-serverless.driverEnv.PYSPARK_DRIVER_PYTHON"] == "./environment/bin/python"
    assert confs["spark.executorEnv.PYSPARK_PYTHON"] == "./environment/bin/python"
    assert confs["spark.dynamicAllocation.maxExecutors"] == "100"
    assert confs["spark.files"] == "s3://my-bucket/metaclip/data/lid.176.bin,s3://my-bucket/metaclip/data/metadata.json"
    assert run["executionRoleArn"] == "arn:aws:iam::123456789012:role/metaclip-emr-serverless"


@pytest.mark.parametrize("platform", ["emr", "dataproc"])
def test_conf_files_are_valid_project_configs(platform):
    cfg = load_config([os.path.join(ROOT, "conf", platform + ".yaml")])
    assert cfg.data_files == "sparkfiles" and cfg.balance.t == 20000
    assert cfg.spark.conf["spark.task.maxFailures"] == "8"
    props, sets = split_conf(load_conf(Target(platform=platform, bucket="b", crawl="CC-MAIN-2024-10")))
    assert props == cfg.spark.conf
    # every --set the renderer emits is accepted by the job's config loader
    assert load_config([], sets).to_dict() == {**cfg.to_dict(), "spark": load_config().to_dict()["spark"]}


def test_bad_targets_fail_fast():
    with pytest.raises(ValueError):
        Target(platform="emr", bucket="b", crawl="CC-MAIN-24-10")
    with pytest.raises(ValueError):
        Target(platform="emr", bucket="s3://b", crawl="CC-MAIN-2024-10")
    with pytest.raises(ValueError):
        Target(platform="k8s", bucket="b", crawl="CC-MAIN-2024-10")
    with pytest.raises(ValueError):
        stage_job(Target(platform="emr", bucket="b", crawl="CC-MAIN-2024-10"), "extract")
    with pytest.raises(ConfigError):
        load_config([], ["data_files=ftp"])
