"""spark-submit entry file: `metaclip-spark balance` as a cluster job.

Stage 2 (balance pools into a curated set); the job is metaclip_spark/spark/stage2.py.
"""

import sys

from metaclip_spark.cli import main

if __name__ == "__main__":
    sys.exit(main(["balance"] + sys.argv[1:]))
