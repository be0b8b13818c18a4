"""Report (spark-submit entry file): `metaclip-spark report --run DIR` as a cluster job.

The report needs no Spark, but a cluster-mode driver that never starts a SparkContext
is failed by YARN ("User did not initialize spark context"), so under spark-submit a
session is started first.
"""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    from metaclip_spark.cli import main as cli_main
    from metaclip_spark.run.config import SparkConfig
    from metaclip_spark.spark.session import get_spark, under_spark_submit

    spark = get_spark(SparkConfig(app_name="metaclip-spark-report")) if under_spark_submit() else None
    try:
        return cli_main(["report"] + argv)
    finally:
        if spark is not None:
            spark.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
