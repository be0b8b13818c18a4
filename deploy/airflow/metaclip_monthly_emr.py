"""metaclip_monthly on EMR Serverless: weekly, process the next CommonCrawl crawl that
has no report yet (oldest first in cumulative mode, newest first per crawl) (or the ``crawl_id`` param) with stage 1 -> index merge -> stage 2 -> report
(``METACLIP_MODE``: cumulative, default; per_crawl: stage 1 -> stage 2 -> report).

Fill in (environment of the Airflow workers, or edit the defaults below):
METACLIP_MODE [cumulative] or per_crawl (metaclip_dag.py),
METACLIP_BUCKET, METACLIP_EMR_APPLICATION_ID, METACLIP_EMR_ROLE_ARN, METACLIP_REGION,
and the connection ``aws_default``. Upload ``dist/`` and the data files first
(README: "Run on EMR / Dataproc / Airflow").
"""

from __future__ import annotations

from airflow.providers.amazon.aws.operators.emr import EmrServerlessStartJobOperator
from airflow.sdk import DAG

from metaclip_dag import (DAG_KWARGS, DAG_STAGES, JOB_STAGES, MODE, PLACEHOLDER, PREVIOUS_PLACEHOLDER, TASK_IDS,
                          crawl_tasks, dag_params,
                          env, fail_fast, run_after, split_uri, templated, wire)
from metaclip_deploy import Target, emr_serverless_job_driver, emr_serverless_overrides, stage_job

TARGET = Target(platform="emr", crawl=PLACEHOLDER, mode=MODE, previous=PREVIOUS_PLACEHOLDER,
                bucket=env("METACLIP_BUCKET", "my-bucket"),
                region=env("METACLIP_REGION", "us-east-1"),
                application_id=env("METACLIP_EMR_APPLICATION_ID", "00XXXXXXXXXXXXXX"),
                role_arn=env("METACLIP_EMR_ROLE_ARN", "arn:aws:iam::123456789012:role/metaclip-emr-serverless"))
AWS_CONN_ID = env("METACLIP_AWS_CONN_ID", "aws_default")


def s3_exists():
    """No AWS credentials (e.g. under ``airflow dags test`` on a laptop): fail now, no retries."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook
    from botocore.exceptions import NoCredentialsError, NoRegionError, PartialCredentialsError

    def make_exists():
        hook = S3Hook(aws_conn_id=AWS_CONN_ID)
        return lambda uri: hook.check_for_key(split_uri(uri)[1], split_uri(uri)[0])

    return fail_fast(make_exists,
                     (NoCredentialsError, PartialCredentialsError, NoRegionError),
                     "no usable AWS credentials for connection %r (set it up, or the AWS_* environment, "
                     "before running this DAG)" % AWS_CONN_ID)


with DAG(dag_id="metaclip_monthly_emr_serverless", params=dag_params(), doc_md=__doc__, **DAG_KWARGS) as dag:
    plan, previous = crawl_tasks(TARGET.output_root, s3_exists)
    stages = {}
    for stage in DAG_STAGES:
        job = stage_job(TARGET, JOB_STAGES[stage])
        stages[stage] = EmrServerlessStartJobOperator(
            task_id=TASK_IDS[stage],
            application_id=TARGET.application_id,
            execution_role_arn=TARGET.role_arn,
            name=templated(job["name"]),
            job_driver=templated(emr_serverless_job_driver(job)),
            configuration_overrides=emr_serverless_overrides(TARGET),
            aws_conn_id=AWS_CONN_ID,
            region_name=TARGET.region,
            wait_for_completion=True,
            waiter_delay=60,
            waiter_max_attempts=24 * 60,      # a stage may run for hours
            **run_after(stage))
    wire(plan, stages, previous)
