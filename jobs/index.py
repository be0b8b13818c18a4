"""spark-submit entry file: `metaclip-spark index` as a cluster job.

Merge finished stage-1 pools into the cumulative image index (a new release); the job is
metaclip_spark/spark/index_job.py.
"""

import sys

from metaclip_spark.cli import main

if __name__ == "__main__":
    sys.exit(main(["index"] + sys.argv[1:]))
