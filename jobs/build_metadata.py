"""spark-submit entry file: `metaclip-spark build-metadata` as a cluster job.

MetaCLIP metadata from WordNet and Wikipedia; the job is metaclip_spark/spark/build_metadata.py.
"""

import sys

from metaclip_spark.cli import main

if __name__ == "__main__":
    sys.exit(main(["build-metadata"] + sys.argv[1:]))
