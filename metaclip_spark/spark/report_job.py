"""The report as a cluster job (jobs/report.py, `metaclip-spark report --run DIR` under
spark-submit).

The report needs no Spark, but a cluster-mode driver that never starts a SparkContext
is failed by YARN ("User did not initialize spark context"), so under spark-submit a
session is started first.
"""

from __future__ import annotations


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
