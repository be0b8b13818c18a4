#!/usr/bin/env python3
"""Render the EMR / Dataproc submissions of one crawl with your bucket, role and project.

    python deploy/render.py emr-steps      --bucket B --crawl CC-MAIN-2024-10 > steps.json
    python deploy/render.py emr-serverless --bucket B --crawl C --stage match \\
        --application-id 00abc --role-arn arn:aws:iam::123456789012:role/R > job-run.json
    python deploy/render.py dataproc-job   --bucket B --crawl C --stage match --project P \\
        --region us-central1 --cluster metaclip > submit.sh
    python deploy/render.py dataproc-batch --bucket B --crawl C --stage match --project P \\
        --region us-central1 --service-account SA > submit.sh
    python deploy/render.py examples       # rewrite deploy/{emr,dataproc}/examples/ (checked in)

Spark properties and job settings come from conf/emr.yaml or conf/dataproc.yaml
(``--conf PATH`` for another file). The templates are in deploy/airflow/metaclip_deploy.py.
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
    ap.add_argument("--conf", dest="conf_path", help="conf YAML (default conf/<platform>.yaml)")
    args = ap.parse_args(argv)
    if args.kind == "examples":
        for rel, text in example_files().items():
            path = os.path.join(HERE, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(text)
            print(path)
        return 0
    if not args.bucket or not args.crawl:
        ap.error("--bucket and --crawl are required")
    fields = {k: v for k, v in vars(args).items()
              if v is not None and k not in ("kind", "stage")}
    target = Target(platform=args.kind.split("-")[0], **fields)
    sys.stdout.write(render(args.kind, target, args.stage))
    return 0


if __name__ == "__main__":
    sys.exit(main())
