"""Render the spark-submit of each stage for EMR (EC2 steps, Serverless job runs),
Dataproc (cluster jobs, Serverless batches) and a Spark cluster you run yourself
(a plain ``spark-submit`` line: standalone, YARN, Kubernetes or ``local[N]``).

One template per stage, ``stage_job()``: entry file, arguments, archive, data files and
Spark properties of stage 1 (match), the index merge (cumulative mode), stage 2 (balance)
and the report.

Two modes (``Target.mode``):

- ``cumulative`` (default): match (``input.label`` = the crawl id) -> ``index --pool RUN
  --index INDEX`` (a new release of the one cumulative image index) -> ``balance --index INDEX
  --dedup image`` with ``balance.previous`` = the last release's curated folder (``diff/added/``
  and ``diff/removed/``; empty for the first release) -> report;
- ``per_crawl``: match -> ``balance --pool RUN`` (this crawl alone) -> report.

Either way stage 2 and the report write into the crawl's run folder, and t comes from the conf
file's ``balance.*`` settings (``balance.t``, or ``balance.tail_share`` re-solved per release). Each target is a
formatter of that one job: ``emr_steps()`` (``aws emr add-steps --steps file://...``),
``emr_serverless_job_run()`` (``aws emr-serverless start-job-run --cli-input-json
file://...``; its ``jobDriver`` is what the EMR Serverless DAG passes to its operator),
``dataproc_job_command()`` / ``dataproc_batch_command()`` (gcloud), ``dataproc_batch()``
(the Dataproc Serverless DAG's batch body) and ``spark_submit_command()`` (platform ``spark``:
the line the self-managed DAG runs).

Used by ``deploy/render.py`` and by the ``metaclip_monthly_*`` DAGs (this folder is the
DAGs folder). Needs only the standard library and PyYAML (both environments have it).

Layout under ``<scheme>://<bucket>/<prefix>/`` (prefix default ``metaclip``):
``code/env.tar.gz`` and ``code/jobs/{match,index,balance,report}.py`` (``make archive`` builds
them into ``dist/``), ``data/metadata.json`` and ``data/lid.176.bin`` (shipped to every
node with ``--files``), ``runs/crawl=<crawl>/`` (outputs), ``index/`` (the cumulative image index), ``logs/``. A self-managed cluster uses the same layout under
any folder or URI (``root``: ``/data/metaclip``, ``hdfs://nn/metaclip``, ``s3://b/metaclip``; the
jobs write outputs with pyarrow, which knows ``s3://`` but not ``s3a://``: on a plain Hadoop
Spark map ``s3://`` to S3A with ``spark.hadoop.fs.s3.impl`` in the conf file's ``spark.conf``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
from dataclasses import dataclass

import yaml

from metaclip_crawls import crawl_root, validate_crawl_id

HERE = os.path.dirname(os.path.abspath(__file__))
STAGE_ENTRY = {"match": "match.py", "index": "index.py", "balance": "balance.py", "report": "report.py"}
MODES = ("cumulative", "per_crawl")
STAGE_ORDERS = {"cumulative": ("match", "index", "balance", "report"), "per_crawl": ("match", "balance", "report")}
STAGE_ORDER = STAGE_ORDERS["cumulative"]       # every stage
ENV_PYTHON = "./environment/bin/python"
PLATFORMS = ("emr", "dataproc", "spark")
# a self-managed cluster without a conf file: the project's defaults, the data files by --files
SPARK_CONF = {"data_files": "sparkfiles"}


@dataclass
class Target:
    """Where and how to run: filled from the user's bucket, role, project, ..."""
    platform: str                      # "emr", "dataproc" or "spark" (a cluster you run yourself)
    bucket: str = ""                   # emr / dataproc
    crawl: str = ""
    prefix: str = "metaclip"
    region: str = "us-east-1"
    cluster_id: str = "j-XXXXXXXXXXXXX"            # EMR on EC2 cluster (add-steps)
    application_id: str = "00XXXXXXXXXXXXXX"       # EMR Serverless application
    role_arn: str = ""                             # EMR Serverless job execution role
    project: str = "my-project"                    # GCP project
    cluster: str = "metaclip"                      # Dataproc cluster (jobs submit)
    service_account: str = ""                      # Dataproc Serverless batches
    runtime_version: str = "2.3"                   # Dataproc Serverless runtime
    run_id: str = "manual"                         # part of Dataproc batch ids
    conf_path: str = ""                            # default: conf/<platform>.yaml
    input: str = ""                                # stage-1 input instead of the crawl's wat.paths.gz
    mode: str = "cumulative"                       # or "per_crawl" (module docstring)
    index: str = ""                                # cumulative: the image index (default <root>/index)
    previous: str = ""                             # cumulative: the last release's curated folder
                                                   # ("": the first release, no diff)
    # platform "spark" only: spark-submit to a cluster you run yourself
    root: str = ""                                 # holds code/, data/, runs/: a path or any URI
    master: str = "spark://spark-master:7077"      # spark://, yarn, k8s://..., local[N]
    deploy_mode: str = "client"
    spark_submit: str = "spark-submit"
    driver_python: str = "python3"                 # client mode: the driver's python (metaclip-spark installed)
    python: str = ""                               # "": ./environment/bin/python of the --archives env.tar.gz;
                                                   # else a python with metaclip-spark on every node (no archive)
    code: str = ""                                 # default <root>/code (env.tar.gz, jobs/*.py)
    lid_model: str = ""                            # default <root>/data/lid.176.bin
    metadata: str = ""                             # default <root>/data/metadata.json

    def __post_init__(self):
        if self.platform not in PLATFORMS:
            raise ValueError("platform must be one of %s, got %r" % (", ".join(PLATFORMS), self.platform))
        validate_crawl_id(self.crawl)
        if self.mode not in MODES:
            raise ValueError("mode must be one of %s, got %r" % (", ".join(MODES), self.mode))
        if self.platform == "spark":
            for name in ("root", "code"):
                value = getattr(self, name)
                if (value or name == "root") and not (value.startswith("/") or "://" in value):
                    raise ValueError("%s must be an absolute path or a URI (spark-submit and the driver "
                                     "run in other folders), got %r" % (name, value))
            if self.root.startswith(("s3a://", "s3n://")):
                raise ValueError("root: the jobs write outputs with pyarrow, which reads s3:// only; use "
                                 "s3://... (and spark.hadoop.fs.s3.impl=org.apache.hadoop.fs.s3a.S3AFileSystem "
                                 "in the conf file's spark.conf if your Spark needs it), got %r" % self.root)
            if self.deploy_mode not in ("client", "cluster"):
                raise ValueError("deploy_mode must be client or cluster, got %r" % self.deploy_mode)
            if self.deploy_mode == "cluster" and not self.master.startswith(("yarn", "k8s://")):
                raise ValueError("cluster deploy mode runs Python drivers on YARN or Kubernetes only (Spark "
                                 "refuses it for Python on standalone spark:// masters and local): use "
                                 "client mode with master %r" % self.master)
        elif not self.bucket or "/" in self.bucket or ":" in self.bucket:
            raise ValueError("bucket must be a bare bucket name, got %r" % self.bucket)

    @property
    def scheme(self) -> str:
        return "s3" if self.platform == "emr" else "gs"

    def uri(self, *parts: str) -> str:
        if self.platform == "spark":
            return "/".join([self.root.rstrip("/")] + list(parts))
        return "/".join(["%s://%s" % (self.scheme, self.bucket), self.prefix.strip("/")] + list(parts))

    def code_uri(self, *parts: str) -> str:
        if self.code:
            return "/".join([self.code.rstrip("/")] + list(parts))
        return self.uri("code", *parts)

    @property
    def output_root(self) -> str:
        return self.uri("runs")

    @property
    def run_dir(self) -> str:
        return crawl_root(self.output_root, self.crawl)

    @property
    def index_uri(self) -> str:
        return self.index.rstrip("/") if self.index else self.uri("index")

    @property
    def stages(self) -> tuple[str, ...]:
        return STAGE_ORDERS[self.mode]

    @property
    def archive(self) -> str:
        return self.code_uri("env.tar.gz")

    def entry(self, stage: str) -> str:
        return self.code_uri("jobs", STAGE_ENTRY[stage])

    @property
    def data_files(self) -> list[str]:
        return [self.lid_model or self.uri("data", "lid.176.bin"), self.metadata or self.uri("data", "metadata.json")]


def find_conf_dir() -> str:
    """``$METACLIP_CONF_DIR``, else ``conf/`` beside this file (a deployed DAGs folder), else
    the repository's ``conf/``."""
    for d in (os.environ.get("METACLIP_CONF_DIR", ""), os.path.join(HERE, "conf"),
              os.path.join(HERE, "..", "..", "conf")):
        if d and os.path.isdir(d):
            return os.path.abspath(d)
    raise FileNotFoundError("no conf/ folder found: set METACLIP_CONF_DIR")


def load_conf(target: Target) -> dict:
    if target.platform == "spark" and not target.conf_path:
        return dict(SPARK_CONF)
    path = target.conf_path or os.path.join(find_conf_dir(), target.platform + ".yaml")
    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
    if not isinstance(data, dict):
        raise ValueError("%s must hold a mapping" % path)
    return data


def _scalar(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return str(value)


def split_conf(conf: dict) -> tuple[dict[str, str], list[str]]:
    """(Spark properties, ``--set key=value`` job settings) of a conf/*.yaml mapping.
    ``spark.conf`` becomes properties; every other leaf a ``--set`` (``spark.master`` and
    ``spark.app_name`` are left to the submitter)."""
    props, sets = {}, []

    def walk(node: dict, path: str) -> None:
        for key in sorted(node):
            value, dotted = node[key], (path + "." + key if path else key)
            if dotted == "spark.conf":
                props.update({str(k): _scalar(v) for k, v in (value or {}).items()})
            elif dotted in ("spark.master", "spark.app_name"):
                continue
            elif isinstance(value, dict):
                walk(value, dotted)
            else:
                sets.append("%s=%s" % (dotted, _scalar(value)))

    walk(conf, "")
    return props, sets


def input_paths_list(target: Target, conf: dict) -> str:
    root = (conf.get("input") or {}).get("cc_root") or "https://data.commoncrawl.org/"
    return "%scrawl-data/%s/wat.paths.gz" % (root.rstrip("/") + "/", target.crawl)


def stage_job(target: Target, stage: str, conf: dict | None = None) -> dict:
    """The one template: entry file, arguments, archive, files and Spark properties of a stage."""
    conf = load_conf(target) if conf is None else conf
    props, sets = split_conf(conf)
    run, cumulative = target.run_dir, target.mode == "cumulative"
    if stage not in target.stages:
        raise ValueError("unknown stage %r (%s mode: one of %s)" % (stage, target.mode, ", ".join(target.stages)))
    if stage == "match":
        args = ["--input", target.input or input_paths_list(target, conf), "--metadata", target.data_files[1],
                "--lid-model", target.data_files[0], "--output", run]
    elif stage == "index":
        args = ["--pool", run, "--index", target.index_uri]
    elif stage == "balance" and cumulative:
        args = ["--index", target.index_uri, "--dedup", "image", "--output", run]
    elif stage == "balance":
        args = ["--pool", run, "--output", run]
    else:
        args = ["--run", run]
    if stage != "report":
        for s in sets:
            args += ["--set", s]
    if cumulative and stage == "match":        # the pool rows' crawl label: the index's provenance
        args += ["--set", "input.label=" + target.crawl]
    if cumulative and stage == "balance":      # set last: wins over a conf file's balance.previous
        args += ["--set", "balance.previous=" + target.previous]
    return {"stage": stage, "name": "metaclip-%s-%s" % (stage, target.crawl), "entry": target.entry(stage),
            "args": args, "archive": target.archive + "#environment", "files": list(target.data_files),
            "properties": props}


# ---------------------------------------------------------------------------------- EMR


def emr_steps(target: Target, conf: dict | None = None) -> list[dict]:
    """EMR on EC2: one command-runner.jar spark-submit step per stage (YARN cluster mode: the
    driver runs in a container that has the archive). Later steps are cancelled when one fails."""
    steps = []
    for stage in target.stages:
        job = stage_job(target, stage, conf)
        cmd = ["spark-submit", "--deploy-mode", "cluster", "--archives", job["archive"],
               "--files", ",".join(job["files"]),
               "--conf", "spark.yarn.appMasterEnv.PYSPARK_PYTHON=" + ENV_PYTHON,
               "--conf", "spark.executorEnv.PYSPARK_PYTHON=" + ENV_PYTHON]
        for k, v in sorted(job["properties"].items()):
            cmd += ["--conf", "%s=%s" % (k, v)]
        steps.append({"Type": "CUSTOM_JAR", "Name": job["name"], "ActionOnFailure": "CANCEL_AND_WAIT",
                      "Jar": "command-runner.jar", "Args": cmd + [job["entry"]] + job["args"]})
    return steps


def emr_serverless_params(job: dict) -> str:
    """``sparkSubmitParameters`` of an EMR Serverless job run."""
    conf = {"spark.archives": job["archive"], "spark.files": ",".join(job["files"]),
            "spark.emr-serverless.driverEnv.PYSPARK_DRIVER_PYTHON": ENV_PYTHON,
            "spark.emr-serverless.driverEnv.PYSPARK_PYTHON": ENV_PYTHON,
            "spark.executorEnv.PYSPARK_PYTHON": ENV_PYTHON}
    conf.update(job["properties"])
    return " ".join("--conf %s=%s" % (k, conf[k]) for k in sorted(conf))


def emr_serverless_job_driver(job: dict) -> dict:
    return {"sparkSubmit": {"entryPoint": job["entry"], "entryPointArguments": job["args"],
                            "sparkSubmitParameters": emr_serverless_params(job)}}


def emr_serverless_overrides(target: Target) -> dict:
    return {"monitoringConfiguration": {"s3MonitoringConfiguration": {"logUri": target.uri("logs") + "/"}}}


def emr_serverless_job_run(target: Target, stage: str, conf: dict | None = None) -> dict:
    job = stage_job(target, stage, conf)
    return {"applicationId": target.application_id, "executionRoleArn": target.role_arn,
            "name": job["name"], "jobDriver": emr_serverless_job_driver(job),
            "configurationOverrides": emr_serverless_overrides(target)}


# ----------------------------------------------------------------------------- Dataproc


def dataproc_properties(job: dict, serverless: bool) -> dict[str, str]:
    props = {"spark.pyspark.python": ENV_PYTHON, "spark.pyspark.driver.python": ENV_PYTHON}
    if not serverless:
        props["spark.submit.deployMode"] = "cluster"   # the driver needs the archive too
    props.update(job["properties"])
    return props


def _gcloud(head: list[str], job: dict, flags: list[str], serverless: bool) -> str:
    props = dataproc_properties(job, serverless)
    parts = head + [job["entry"]] + flags + [
        "--archives=" + job["archive"], "--files=" + ",".join(job["files"]),
        "--properties=" + ",".join("%s=%s" % (k, props[k]) for k in sorted(props)), "--"] + job["args"]
    lines, line = [], []
    for p in parts:           # one option per line, its value kept with it
        if p.startswith("--") and line:
            lines.append(" ".join(line))
            line = []
        line.append(shlex.quote(p))
    lines.append(" ".join(line))
    return " \\\n    ".join(lines) + "\n"


def dataproc_job_command(target: Target, stage: str, conf: dict | None = None) -> str:
    """``gcloud dataproc jobs submit pyspark`` on a Dataproc cluster (2.2+)."""
    job = stage_job(target, stage, conf)
    return _gcloud(["gcloud", "dataproc", "jobs", "submit", "pyspark"], job,
                   ["--cluster=" + target.cluster, "--region=" + target.region, "--project=" + target.project],
                   serverless=False)


def dataproc_batch_id(target: Target, stage: str, try_number: int = 1) -> str:
    from metaclip_crawls import dataproc_batch_id as make_id
    return make_id(target.crawl, target.run_id, stage, try_number)


def dataproc_batch_command(target: Target, stage: str, conf: dict | None = None) -> str:
    """``gcloud dataproc batches submit pyspark`` (Dataproc Serverless)."""
    job = stage_job(target, stage, conf)
    flags = ["--batch=" + dataproc_batch_id(target, stage), "--region=" + target.region,
             "--project=" + target.project, "--version=" + target.runtime_version]
    if target.service_account:
        flags.append("--service-account=" + target.service_account)
    return _gcloud(["gcloud", "dataproc", "batches", "submit", "pyspark"], job, flags, serverless=True)


def dataproc_batch(target: Target, job: dict) -> dict:
    """The Dataproc Serverless ``Batch`` body (DataprocCreateBatchOperator ``batch=``)."""
    body = {"pyspark_batch": {"main_python_file_uri": job["entry"], "args": job["args"],
                              "archive_uris": [job["archive"]], "file_uris": job["files"]},
            "runtime_config": {"version": target.runtime_version,
                               "properties": dataproc_properties(job, serverless=True)}}
    if target.service_account:
        body["environment_config"] = {"execution_config": {"service_account": target.service_account}}
    return body


# ------------------------------------------------------- a Spark cluster you run yourself


def spark_submit_argv(target: Target, job: dict) -> tuple[dict[str, str], list[str]]:
    """(environment, argv) of the spark-submit of one stage on a self-managed cluster.

    Client mode: the driver runs where spark-submit runs, with ``PYSPARK_DRIVER_PYTHON``
    (a python that has metaclip-spark: ``pip install dist/metaclip_spark-*.whl``); executors
    run ``PYSPARK_PYTHON``. Cluster mode (YARN, Kubernetes): the driver runs in the cluster
    too, so both pythons are Spark properties (``spark.pyspark.driver.python`` /
    ``spark.pyspark.python``; a client-side environment would not reach it). The python is
    the archive's ``./environment/bin/python`` (``--archives env.tar.gz#environment``,
    unpacked in every container's working folder) unless ``target.python`` names one that
    every node has, e.g. ``local[N]`` with the project's venv."""
    python = target.python or ENV_PYTHON
    argv = [target.spark_submit, "--master", target.master, "--deploy-mode", target.deploy_mode]
    if not target.python:
        argv += ["--archives", job["archive"]]
    argv += ["--files", ",".join(job["files"])]
    props, env = dict(job["properties"]), {}
    if target.deploy_mode == "client":
        env = {"PYSPARK_DRIVER_PYTHON": target.driver_python, "PYSPARK_PYTHON": python}
    else:
        props.update({"spark.pyspark.driver.python": python, "spark.pyspark.python": python})
    for k in sorted(props):
        argv += ["--conf", "%s=%s" % (k, props[k])]
    return env, argv + [job["entry"]] + job["args"]


def spark_submit_command(target: Target, stage: str, conf: dict | None = None) -> str:
    """The shell line (one option per line) of one stage's spark-submit on a self-managed cluster."""
    env, argv = spark_submit_argv(target, stage_job(target, stage, conf))
    head = ["%s=%s" % (k, shlex.quote(env[k])) for k in sorted(env)] + [shlex.quote(argv[0])]
    lines, i = [" ".join(head)], 1
    while i < len(argv):       # an option with its value on one line; the entry file alone
        if argv[i].startswith("--") and i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            lines.append("%s %s" % (shlex.quote(argv[i]), shlex.quote(argv[i + 1])))
            i += 2
        else:
            lines.append(shlex.quote(argv[i]))
            i += 1
    return " \\\n    ".join(lines) + "\n"


# ------------------------------------------------------------------------------ rendering

KINDS = ("emr-steps", "emr-serverless", "dataproc-job", "dataproc-batch", "spark-submit")


def render(kind: str, target: Target, stage: str | None = None) -> str:
    """The text of one rendered file: JSON for EMR, a shell command for Dataproc."""
    conf = load_conf(target)
    if kind == "emr-steps":
        return json.dumps(emr_steps(target, conf), indent=2) + "\n"
    if kind == "emr-serverless":
        return json.dumps(emr_serverless_job_run(target, stage or "match", conf), indent=2) + "\n"
    if kind == "dataproc-job":
        return dataproc_job_command(target, stage or "match", conf)
    if kind == "dataproc-batch":
        return dataproc_batch_command(target, stage or "match", conf)
    if kind == "spark-submit":
        return spark_submit_command(target, stage or "match", conf)
    raise ValueError("unknown kind %r (one of %s)" % (kind, ", ".join(KINDS)))


def target_fields() -> list[str]:
    return [f.name for f in dataclasses.fields(Target)]
