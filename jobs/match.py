"""spark-submit entry file: `metaclip-spark match` as a cluster job.

Stage 1 (extract, LID, match: pool + entry counts); the job is metaclip_spark/spark/stage1.py.
"""

import sys

from metaclip_spark.cli import main

if __name__ == "__main__":
    sys.exit(main(["match"] + sys.argv[1:]))
