"""Stage 1 through Spark with one master, in its own process:
``python -m bench.spark_child MASTER OUTPUT METADATA INPUT...`` (prints BENCH-RESULT)."""

from __future__ import annotations

import json
import sys
import time


def main(argv: list[str]) -> int:
    master, output, metadata, inputs = argv[0], argv[1], argv[2], argv[3:]
    from metaclip_spark.config import load_config
    from metaclip_spark.jobs.match import run_match
    from metaclip_spark.jobs.session import get_spark

    overrides = {"spark.master": master, "input.paths": inputs, "output": output, "overwrite": True}
    if metadata:
        overrides["match.metadata"] = metadata
    cfg = load_config([], [], overrides)
    spark = get_spark(cfg.spark)
    spark.sparkContext.parallelize([0], 1).count()     # JVM and one Python worker up
    w0 = time.perf_counter()
    summary = run_match(cfg, spark)
    wall = time.perf_counter() - w0
    spark.stop()
    print("BENCH-RESULT " + json.dumps({"master": master, "wall": wall, "pool_rows": summary["pool_rows"],
                                        "inputs": summary["inputs"], "failed": summary["inputs_failed"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
