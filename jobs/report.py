"""Report (spark-submit entry file): `metaclip-spark report --run DIR` as a cluster job.

The job is metaclip_spark/spark/report_job.py (it starts a Spark session first: YARN fails a
cluster-mode driver that never starts one).
"""

import sys

from metaclip_spark.spark.report_job import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
