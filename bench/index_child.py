"""The index merge and the balance over the index through Spark with one master, in their own
process: ``python -m bench.index_child MASTER INDEX OUT POOL...`` (prints BENCH-RESULT).

Merges every POOL into a fresh index INDEX (one merge per pool, in order: the first builds the
index, the next ones are monthly updates that read the previous release), then balances the last
two releases into OUT (dedup image, the second with the diff against the first's curated set). CPU is the sum over the whole process tree (the
driver, the JVM and its Python workers, read from /proc), so JVM work counts, after an untimed
warm-up merge (JIT, worker start); t comes from a 30% tail share (no size model); peak RSS is the
largest resident set any Python worker reached, sampled every 0.2 s."""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
import time

TICK = os.sysconf("SC_CLK_TCK")


def _tree(root: int) -> list[int]:
    kids: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open("/proc/%s/stat" % name) as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            kids.setdefault(ppid, []).append(int(name))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def tree_cpu(root: int) -> float:
    """CPU seconds of ``root`` and its descendants (their reaped children included)."""
    total = 0
    for pid in _tree(root):
        try:
            with open("/proc/%d/stat" % pid) as fh:
                f = fh.read().rsplit(")", 1)[1].split()
            total += int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])
        except OSError:
            pass
    return total / TICK


class PeakRss(threading.Thread):
    """Largest RSS of a Python worker (a python process under the JVM) while running."""

    def __init__(self, root: int):
        super().__init__(daemon=True)
        self.root, self.peak, self.stop = root, 0, False

    def run(self):
        while not self.stop:
            for pid in _tree(self.root)[1:]:
                try:
                    with open("/proc/%d/cmdline" % pid, "rb") as fh:
                        cmd = fh.read()
                    if b"pyspark" not in cmd and b"python" not in cmd.split(b"\0")[0]:
                        continue
                    with open("/proc/%d/status" % pid) as fh:
                        for line in fh:
                            if line.startswith("VmRSS:"):
                                self.peak = max(self.peak, int(line.split()[1]) * 1024)
                except OSError:
                    pass
            time.sleep(0.2)


def main(argv: list[str]) -> int:
    master, index, out, pools = argv[0], argv[1], argv[2], argv[3:]
    from metaclip_spark.run.config import load_config
    from metaclip_spark.spark.index_balance import run_balance_index
    from metaclip_spark.spark.index_job import build_index
    from metaclip_spark.spark.session import get_spark

    shutil.rmtree(index, ignore_errors=True)
    cfg = load_config([], [], {"spark.master": master, "index.path": index, "progress_seconds": 0})
    spark = get_spark(cfg.spark)
    spark.sparkContext.parallelize([0], 1).count()           # JVM and one Python worker up
    me = os.getpid()
    res = {"master": master, "merges": []}
    # warm-up, not timed: one merge of the first pool into a scratch index, so that the timed runs see
    # executors as a crawl-long job has them (JIT-compiled JVM, Python workers started and imported)
    scratch = index + "-warmup"
    shutil.rmtree(scratch, ignore_errors=True)
    build_index(cfg, pools[:1], scratch, spark)
    shutil.rmtree(scratch, ignore_errors=True)
    for pool in pools:
        rss = PeakRss(me)
        rss.start()
        c0, w0 = tree_cpu(me), time.perf_counter()
        s = build_index(cfg, [pool], index, spark)
        wall, cpu = time.perf_counter() - w0, tree_cpu(me) - c0
        rss.stop = True
        rss.join()
        m = s["merge"]
        images_dir = os.path.join(index, "releases", "%05d" % s["release"], "images")
        size = sum(os.path.getsize(os.path.join(images_dir, f)) for f in os.listdir(images_dir))
        res["merges"].append({"pool": os.path.basename(pool), "wall": wall, "cpu": cpu,
                              "occurrences": m["occurrences"], "pairs": m["pairs"], "images": m["images"],
                              "new_images": m["new_images"], "index_pairs": s["totals"]["pairs"],
                              "index_images": s["totals"]["images"], "worker_peak_rss_mb": rss.peak / 2**20,
                              "release_bytes": size})
    curated = []
    for k, release in enumerate(range(max(1, len(pools) - 1), len(pools) + 1)):
        target = os.path.join(out, "r%d" % release)
        shutil.rmtree(target, ignore_errors=True)
        bcfg = load_config([], [], {"spark.master": master, "output": target, "progress_seconds": 0,
                                    "balance.tail_share": 0.3, "balance.previous": curated[-1] if curated else None})
        c0, w0 = tree_cpu(me), time.perf_counter()
        b = run_balance_index(bcfg, index, release, spark=spark)
        res.setdefault("balances", []).append({
            "release": release, "wall": time.perf_counter() - w0, "cpu": tree_cpu(me) - c0,
            "index_rows": b["pool_rows"], "images": b.get("images"), "curated_rows": b["curated_rows"],
            "diff": b.get("diff")})
        curated.append(os.path.join(target, "curated"))
    spark.stop()
    print("BENCH-RESULT " + json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
