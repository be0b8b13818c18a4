"""metaclip_monthly on Dataproc Serverless: weekly, process the next CommonCrawl crawl that
has no report yet (oldest first in cumulative mode, newest first per crawl) (or the ``crawl_id`` param) with stage 1 -> index merge -> stage 2 -> report
(``METACLIP_MODE``: cumulative, default; per_crawl: stage 1 -> stage 2 -> report).

Batch ids are unique per crawl, DAG run, stage and try (a failed batch's id cannot be
reused): see ``metaclip_crawls.dataproc_batch_id``.

Fill in (environment of the Airflow workers, or edit the defaults below):
METACLIP_MODE [cumulative] or per_crawl (metaclip_dag.py),
METACLIP_BUCKET, METACLIP_GCP_PROJECT, METACLIP_REGION, METACLIP_SERVICE_ACCOUNT and the
connection ``google_cloud_default``. Upload ``dist/`` and the data files first
(README: "Run on EMR / Dataproc / Airflow").
"""

from __future__ import annotations

from airflow.providers.google.cloud.operators.dataproc import DataprocCreateBatchOperator
from airflow.sdk import DAG

from metaclip_crawls import dataproc_batch_id
from metaclip_dag import (DAG_KWARGS, DAG_STAGES, JOB_STAGES, MODE, PLACEHOLDER, PREVIOUS_PLACEHOLDER, TASK_IDS,
                          crawl_tasks, dag_params,
                          env, fail_fast, run_after, split_uri, templated, wire)
from metaclip_deploy import Target, dataproc_batch, stage_job

TARGET = Target(platform="dataproc", crawl=PLACEHOLDER, mode=MODE, previous=PREVIOUS_PLACEHOLDER,
                bucket=env("METACLIP_BUCKET", "my-bucket"),
                region=env("METACLIP_REGION", "us-central1"),
                project=env("METACLIP_GCP_PROJECT", "my-project"),
                service_account=env("METACLIP_SERVICE_ACCOUNT", "metaclip@my-project.iam.gserviceaccount.com"))
GCP_CONN_ID = env("METACLIP_GCP_CONN_ID", "google_cloud_default")
BATCH_ID = ("{{ metaclip_batch_id(ti.xcom_pull(task_ids='find_crawl'), run_id, '%s', ti.try_number) }}")


def gcs_exists():
    """No GCP credentials or no connection (e.g. under ``airflow dags test`` on a laptop): fail
    now, no retries."""
    from airflow.exceptions import AirflowNotFoundException
    from airflow.providers.google.cloud.hooks.gcs import GCSHook
    from google.auth.exceptions import DefaultCredentialsError

    def make_exists():
        hook = GCSHook(gcp_conn_id=GCP_CONN_ID)
        return lambda uri: hook.exists(*split_uri(uri))

    return fail_fast(make_exists, (DefaultCredentialsError, AirflowNotFoundException),
                     "no usable GCP credentials for connection %r (set it up, or "
                     "GOOGLE_APPLICATION_CREDENTIALS, before running this DAG)" % GCP_CONN_ID)


with DAG(dag_id="metaclip_monthly_dataproc_serverless", params=dag_params(), doc_md=__doc__,
         user_defined_macros={"metaclip_batch_id": dataproc_batch_id}, **DAG_KWARGS) as dag:
    plan, previous = crawl_tasks(TARGET.output_root, gcs_exists)
    stages = {}
    for stage in DAG_STAGES:
        job = stage_job(TARGET, JOB_STAGES[stage])
        stages[stage] = DataprocCreateBatchOperator(
            task_id=TASK_IDS[stage],
            project_id=TARGET.project,
            region=TARGET.region,
            batch=templated(dataproc_batch(TARGET, job)),
            batch_id=BATCH_ID % JOB_STAGES[stage],
            gcp_conn_id=GCP_CONN_ID,
            **run_after(stage))
    wire(plan, stages, previous)
