"""Stage 1, stage 2 and the report in one job (spark-submit entry file for
`metaclip-spark curate`): for one-off runs; the monthly DAG runs the stages separately."""

from __future__ import annotations

import sys

if __name__ == "__main__":
    from metaclip_spark.cli import main

    sys.exit(main(["curate"] + sys.argv[1:]))
