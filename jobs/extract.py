"""spark-submit entry file: `metaclip-spark extract` as a cluster job.

Every extracted pair with its LID label/score and drop reason; the job is metaclip_spark/spark/stage1.py.
"""

import sys

from metaclip_spark.cli import main

if __name__ == "__main__":
    sys.exit(main(["extract"] + sys.argv[1:]))
