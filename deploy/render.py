#!/usr/bin/env python3
"""Render the EMR / Dataproc submissions of one crawl with your bucket, role and project.

    python deploy/render.py emr-steps      --bucket B --crawl CC-MAIN-2024-10 > steps.json
    python deploy/render.py emr-serverless --bucket B --crawl C --stage match \\
        --application-id 00abc --role-arn arn:aws:iam::123456789012:role/R > job-run.json
    python deploy/render.py dataproc-job   --bucket B --crawl C --stage match --project P \\
        --region us-central1 --cluster metaclip > submit.sh
    python deploy/render.py dataproc-batch --bucket B --crawl C --stage match --project P \\
        --region us-central1 --service-account SA > submit.sh
    python deploy/render.py spark-submit   --root /data/metaclip --crawl C --stage match \\
        --master spark://spark-master:7077 [--deploy-mode cluster --master yarn] > submit.sh
    python deploy/render.py emr-serverless --bucket B --crawl CC-MAIN-2024-18 --stage balance \
        --previous s3://B/metaclip/runs/crawl=CC-MAIN-2024-10/curated > job-run.json
    python deploy/render.py examples       # rewrite deploy/{emr,dataproc}/examples/ (checked in)

``--mode cumulative`` (default): match -> index (merge the crawl into ``<root>/index``) ->
balance of the new release with the diff against ``--previous`` (the last release's curated
folder; none for the first release) -> report. ``--mode per_crawl``: match -> balance of
this crawl alone -> report.

Spark properties and job settings come from conf/emr.yaml or conf/dataproc.yaml
(``--conf PATH`` for another file; ``spark-submit``, for a cluster you run yourself, uses
none unless given one). The templates are in deploy/airflow/metaclip_deploy.py.
"""

from __future__ import annotations

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "airflow"))

from metaclip_deploy import KINDS, STAGE_ORDER, Target, render  # noqa: E402

# The values the checked-in examples (and the README's commands) are rendered with.
EXAMPLE_EMR = dict(platform="emr", bucket="my-bucket", crawl="CC-MAIN-2024-10", region="us-east-1",
                   cluster_id="j-XXXXXXXXXXXXX", application_id="00XXXXXXXXXXXXXX",
                   role_arn="arn:aws:iam::123456789012:role/metaclip-emr-serverless")
EXAMPLE_DATAPROC = dict(platform="dataproc", bucket="my-bucket", crawl="CC-MAIN-2024-10",
                        region="us-central1", project="my-project", cluster="metaclip",
                        service_account="metaclip@my-project.iam.gserviceaccount.com")


def example_files() -> dict[str, str]:
    """Relative path (under deploy/) -> rendered text, for every checked-in example."""
    emr, gcp = Target(**EXAMPLE_EMR), Target(**EXAMPLE_DATAPROC)
    out = {"emr/examples/steps.json": render("emr-steps", emr)}
    for stage in STAGE_ORDER:
        out["emr/examples/serverless-%s.json" % stage] = render("emr-serverless", emr, stage)
        out["dataproc/examples/jobs-%s.sh" % stage] = render("dataproc-job", gcp, stage)
        out["dataproc/examples/batches-%s.sh" % stage] = render("dataproc-batch", gcp, stage)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("kind", choices=KINDS + ("examples",))
    ap.add_argument("--bucket")
    ap.add_argument("--crawl", help="CommonCrawl crawl id, e.g. CC-MAIN-2024-10")
    ap.add_argument("--stage", choices=STAGE_ORDER, default="match")
    ap.add_argument("--prefix", default="metaclip", help="folder in the bucket (default %(default)s)")
    ap.add_argument("--region")
    ap.add_argument("--cluster-id", help="EMR on EC2 cluster id (for aws emr add-steps)")
    ap.add_argument("--application-id", help="EMR Serverless application id")
    ap.add_argument("--role-arn", help="EMR Serverless job execution role ARN")
    ap.add_argument("--project", help="GCP project")
    ap.add_argument("--cluster", help="Dataproc cluster name")
    ap.add_argument("--service-account", help="Dataproc Serverless service account")
    ap.add_argument("--runtime-version", help="Dataproc Serverless runtime version")
    ap.add_argument("--run-id", help="part of the Dataproc batch id (default: manual)")
    ap.add_argument("--conf", dest="conf_path", help="conf YAML (default conf/<platform>.yaml; "
                    "spark-submit: none)")
    ap.add_argument("--input", help="stage-1 input instead of the crawl's wat.paths.gz (files, globs, lists)")
    ap.add_argument("--mode", choices=("cumulative", "per_crawl"),
                    help="cumulative (default): merge into the image index, balance its release; "
                    "per_crawl: balance this crawl alone")
    ap.add_argument("--index", help="cumulative: the image index (default <root>/index)")
    ap.add_argument("--previous", help="cumulative: the last release's curated folder, e.g. "
                    "<root>/runs/crawl=<previous crawl>/curated (default: none, the first release)")
    sm = ap.add_argument_group("spark-submit (a Spark cluster you run yourself)")
    sm.add_argument("--root", help="folder or URI holding code/, data/ and runs/ (/data/metaclip, "
                    "hdfs://nn/metaclip, s3://bucket/metaclip)")
    sm.add_argument("--master", help="spark://host:7077, yarn, k8s://https://host:443, local[4] "
                    "(default spark://spark-master:7077)")
    sm.add_argument("--deploy-mode", choices=("client", "cluster"),
                    help="default client (cluster: YARN and Kubernetes only, for Python)")
    sm.add_argument("--spark-submit", help="the spark-submit to run (default: spark-submit on PATH)")
    sm.add_argument("--driver-python", help="client mode: the driver's python, with metaclip-spark "
                    "installed (default python3)")
    sm.add_argument("--python", help="executors' python when every node has metaclip-spark "
                    "(default: ./environment/bin/python of --archives env.tar.gz)")
    sm.add_argument("--code", help="folder or URI of env.tar.gz and jobs/*.py (default ROOT/code)")
    sm.add_argument("--lid-model", help="default ROOT/data/lid.176.bin")
    sm.add_argument("--metadata", help="default ROOT/data/metadata.json")
    args = ap.parse_args(argv)
    if args.kind == "examples":
        for rel, text in example_files().items():
            path = os.path.join(HERE, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(text)
            print(path)
        return 0
    if args.kind == "spark-submit":
        if not args.root or not args.crawl:
            ap.error("--root and --crawl are required")
    elif not args.bucket or not args.crawl:
        ap.error("--bucket and --crawl are required")
    fields = {k: v for k, v in vars(args).items()
              if v is not None and k not in ("kind", "stage")}
    try:
        target = Target(platform=args.kind.split("-")[0], **fields)
        text = render(args.kind, target, args.stage)
    except ValueError as exc:
        ap.error(str(exc))
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
