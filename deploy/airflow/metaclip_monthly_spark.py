"""metaclip_monthly on a Spark cluster you run yourself (standalone ``spark://``, YARN,
Kubernetes, or ``local[N]`` on the Airflow worker): weekly, process the next CommonCrawl
crawl that has no report yet (oldest first in cumulative mode, newest first per crawl) (or the ``crawl_id`` param) with stage 1 -> index merge -> stage 2 -> report
(``METACLIP_MODE``: cumulative, default; per_crawl: stage 1 -> stage 2 -> report),
each stage one ``spark-submit`` run by a BashOperator (no Spark provider needed).

The lines are ``deploy/render.py spark-submit``'s (``metaclip_deploy.spark_submit_command``).
Outputs and markers go to ``<METACLIP_ROOT>/runs/crawl=<id>/``; ``find_crawl`` and ``plan``
check the markers with ``metaclip_spark.run.outputs`` run by the driver's python (the library
that writes them: local paths, ``s3://``, ``gs://``, ``hdfs://`` with the same credentials),
local paths directly.

Fill in (environment of the Airflow workers; defaults in brackets):
METACLIP_ROOT [/data/metaclip] folder or URI holding code/, data/, runs/, index/;
METACLIP_MODE [cumulative] or per_crawl (metaclip_dag.py);
METACLIP_SPARK_MASTER [spark://spark-master:7077]; METACLIP_DEPLOY_MODE [client];
METACLIP_SPARK_SUBMIT [spark-submit]; METACLIP_DRIVER_PYTHON [python3] (client mode: a python
with metaclip-spark installed); METACLIP_PYTHON [empty: the archive's ./environment/bin/python];
METACLIP_CODE, METACLIP_LID_MODEL, METACLIP_METADATA [under METACLIP_ROOT]; METACLIP_INPUT
[empty: the crawl's wat.paths.gz]; METACLIP_CONF [empty: no conf file]. JAVA_HOME and
SPARK_HOME as spark-submit needs them.
"""

from __future__ import annotations

import os
import subprocess

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

from metaclip_dag import (DAG_KWARGS, DAG_STAGES, JOB_STAGES, MODE, PLACEHOLDER, PREVIOUS_PLACEHOLDER, TASK_IDS,
                          crawl_tasks, dag_params,
                          env, run_after, templated, wire)
from metaclip_deploy import Target, spark_submit_command

TARGET = Target(platform="spark", crawl=PLACEHOLDER, mode=MODE, previous=PREVIOUS_PLACEHOLDER,
                root=env("METACLIP_ROOT", "/data/metaclip"),
                master=env("METACLIP_SPARK_MASTER", "spark://spark-master:7077"),
                deploy_mode=env("METACLIP_DEPLOY_MODE", "client"),
                spark_submit=env("METACLIP_SPARK_SUBMIT", "spark-submit"),
                driver_python=env("METACLIP_DRIVER_PYTHON", "python3"),
                python=env("METACLIP_PYTHON", ""),
                code=env("METACLIP_CODE", ""),
                lid_model=env("METACLIP_LID_MODEL", ""),
                metadata=env("METACLIP_METADATA", ""),
                input=env("METACLIP_INPUT", ""),
                conf_path=env("METACLIP_CONF", ""))

# exit 0: exists, 10: missing; anything else is an error (a traceback on stderr)
EXISTS_SCRIPT = ("import sys\nfrom metaclip_spark.run import outputs\n"
                 "sys.exit(0 if outputs.exists(sys.argv[1]) else 10)\n")


def marker_exists():
    """``exists(uri)`` for the markers: a local path directly, a URI with the project's own
    filesystem layer in the driver's python. An error fails the task without retries."""
    from airflow.sdk.exceptions import AirflowFailException

    def exists(uri: str) -> bool:
        if "://" not in uri or uri.startswith("file://"):
            return os.path.exists(uri[len("file://"):] if uri.startswith("file://") else uri)
        proc = subprocess.run([TARGET.driver_python, "-c", EXISTS_SCRIPT, uri],
                              capture_output=True, text=True, timeout=300)
        if proc.returncode in (0, 10):
            return proc.returncode == 0
        raise AirflowFailException("cannot check %s with %s (METACLIP_DRIVER_PYTHON, needs metaclip-spark "
                                   "and the store's credentials): %s"
                                   % (uri, TARGET.driver_python, proc.stderr.strip()[-2000:]))

    return exists


with DAG(dag_id="metaclip_monthly_spark_submit", params=dag_params(), doc_md=__doc__, **DAG_KWARGS) as dag:
    plan, previous = crawl_tasks(TARGET.output_root, marker_exists)
    stages = {}
    for stage in DAG_STAGES:
        stages[stage] = BashOperator(
            task_id=TASK_IDS[stage],
            bash_command=templated(spark_submit_command(TARGET, JOB_STAGES[stage])),
            **run_after(stage))
    wire(plan, stages, previous)
