"""Stage 1 through Spark with one master, in its own process:
``python -m bench.spark_child MASTER OUTPUT METADATA [--warm] INPUT...`` (prints BENCH-RESULT).

``--warm``: before the timed run, one stage-1 run on the bundled sample WATs, one file per
core, so that every Python worker is started and has built its automaton and loaded its
LID model (workers are reused; the automaton is cached per process by the metadata digest):
the timed run then measures the steady state of a long crawl, where those one-off costs are
paid once per worker and spread over thousands of files."""

from __future__ import annotations

import json
import sys
import time


def _config(master, output, metadata, inputs):
    from metaclip_spark.run.config import load_config

    overrides = {"spark.master": master, "input.paths": inputs, "output": output, "overwrite": True}
    if metadata:
        overrides["match.metadata"] = metadata
    return load_config([], [], overrides)


def main(argv: list[str]) -> int:
    master, output, metadata, inputs = argv[0], argv[1], argv[2], argv[3:]
    warm = bool(inputs) and inputs[0] == "--warm"
    inputs = inputs[1:] if warm else inputs
    from metaclip_spark.metadata import defaults
    from metaclip_spark.spark.stage1 import run_match
    from metaclip_spark.spark.session import get_spark

    cfg = _config(master, output, metadata, inputs)
    spark = get_spark(cfg.spark)
    sc = spark.sparkContext
    sc.parallelize([0], 1).count()                      # JVM and one Python worker up
    if warm:
        samples = sorted(str(p) for p in defaults.sample_dir().glob("*.warc.wat.gz"))
        warm_inputs = _distinct(samples, sc.defaultParallelism, output + "-warm-inputs")
        run_match(_config(master, output + "-warm", metadata, warm_inputs), spark)
    w0 = time.perf_counter()
    summary = run_match(cfg, spark)
    wall = time.perf_counter() - w0
    spark.stop()
    print("BENCH-RESULT " + json.dumps({"master": master, "wall": wall, "pool_rows": summary["pool_rows"],
                                        "inputs": summary["inputs"], "failed": summary["inputs_failed"],
                                        "warm": warm}))
    return 0


def _distinct(paths: list[str], n: int, folder: str) -> list[str]:
    """``n`` distinct names (symlinks in ``folder``, made afresh) cycling over ``paths``: one task each."""
    import os
    import shutil

    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    out = []
    for i in range(n):
        src = paths[i % len(paths)]
        out.append(os.path.join(folder, "warm%d-%s" % (i, os.path.basename(src))))
        os.symlink(src, out[-1])
    return out


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
