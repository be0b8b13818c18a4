"""Stage 1 through Spark in English or worldwide mode, in its own process (issue #17's bench rows):
``python -m bench.world_child MODE MASTER OUTPUT METADATA [--warm] INPUT...`` (prints BENCH-RESULT).

MODE ``english`` (METADATA: the English list, match.metadata) or ``worldwide`` (METADATA: the
folder of {lang}.json lists, worldwide.metadata). As bench/spark_child.py: the JVM and one Python
worker are started before the clock runs; the timed part is ``run_match`` from the driver's
checks (metadata load) to the written entry counts.
- cold (default): OUTPUT is removed first, so a worldwide run builds its automata (once per
  job, on the driver) inside the timed part, and every Python worker starts, imports, loads the
  LID model and maps (worldwide) or builds (English) its automaton inside it too;
- ``--prebuilt``: cold workers as above, but OUTPUT's ``automata/`` folder (of an earlier run
  with the same metadata) is kept, so the job reuses it as a resumed job does: the per-worker
  cold start without the once-per-job build;
- ``--warm``: an untimed stage-1 run on the bundled sample WATs (one file per core) into the
  same OUTPUT first: the workers are up, the LID model loaded, the English automaton built, the
  worldwide automata built and mapped (the timed run finds the job's automata folder of the
  same digest and reuses it, as a resumed job does): the steady state of a crawl-long job.
Measured: wall; CPU of the whole process tree (driver, JVM, Python workers, read from /proc);
the driver-side metadata load and automata build (wall and CPU of the driver thread), by
wrapping the functions stage 1 calls; per Python worker (python processes under the JVM, the
pyspark daemon included) the peak RSS, PSS and USS (/proc/PID/smaps_rollup: the automata are
shared file pages, so RSS counts them in every worker, PSS divides them among the mappers and
USS leaves them out, but counts file pages only this process maps, e.g. under local[1]; Anonymous
is the worker's own heap) and the peak of the workers' summed PSS (what the node really holds),
sampled every 0.25 s; the driver's own peak RSS (ru_maxrss)."""

from __future__ import annotations

import json
import os
import resource
import shutil
import sys
import threading
import time

from bench.index_child import _tree, tree_cpu


def _rollup(pid: int) -> dict | None:
    try:
        with open("/proc/%d/smaps_rollup" % pid) as fh:
            vals = {}
            for line in fh:
                parts = line.split()
                if len(parts) >= 3 and parts[0].endswith(":"):
                    vals[parts[0][:-1]] = int(parts[1]) * 1024
    except OSError:
        return None
    return {"rss": vals.get("Rss", 0), "pss": vals.get("Pss", 0),
            "uss": vals.get("Private_Clean", 0) + vals.get("Private_Dirty", 0), "anon": vals.get("Anonymous", 0)}


class WorkerMemory(threading.Thread):
    """Peak RSS / PSS / USS of any Python worker and the peak of their summed PSS."""

    def __init__(self, root: int, period: float = 0.25):
        super().__init__(daemon=True)
        self.root, self.period, self.stop = root, period, False
        self.peak = {"rss": 0, "pss": 0, "uss": 0, "anon": 0, "sum_pss": 0, "sum_rss": 0, "workers": 0}

    def run(self):
        while not self.stop:
            s_pss = s_rss = n = 0
            for pid in _tree(self.root)[1:]:
                try:
                    with open("/proc/%d/cmdline" % pid, "rb") as fh:
                        cmd = fh.read()
                except OSError:
                    continue
                if b"pyspark" not in cmd and b"python" not in cmd.split(b"\0")[0]:
                    continue
                m = _rollup(pid)
                if m is None:
                    continue
                n += 1
                s_pss += m["pss"]
                s_rss += m["rss"]
                for k in ("rss", "pss", "uss", "anon"):
                    self.peak[k] = max(self.peak[k], m[k])
            self.peak["sum_pss"] = max(self.peak["sum_pss"], s_pss)
            self.peak["sum_rss"] = max(self.peak["sum_rss"], s_rss)
            self.peak["workers"] = max(self.peak["workers"], n)
            time.sleep(self.period)


class Timed:
    """Wrap ``module.name`` so its calls' wall and driver-thread CPU are summed (the function is
    looked up at call time by stage 1, so the wrapper is what it calls)."""

    def __init__(self, module: str, name: str):
        import importlib

        self.mod, self.name = importlib.import_module(module), name
        self.fn = getattr(self.mod, name)
        self.wall = self.cpu = 0.0
        self.calls = 0
        for m in list(sys.modules.values()):       # also where it was imported by name
            if getattr(m, name, None) is self.fn:
                setattr(m, name, self)

    def __call__(self, *a, **k):
        c0, w0 = time.thread_time(), time.perf_counter()
        try:
            return self.fn(*a, **k)
        finally:
            self.wall += time.perf_counter() - w0
            self.cpu += time.thread_time() - c0
            self.calls += 1

    def result(self) -> dict:
        return {"wall": self.wall, "cpu": self.cpu, "calls": self.calls}


def stage1(mode: str, path: str, metadata: str, out: str, reps: int = 2) -> dict:
    """Stage 1 on one file in one process (``python -m bench.tasks world_child.stage1 JSON``):
    pipeline.match_file as a Spark task runs it, after the one-off setup stage 1's driver and a
    worker do (English: metadata load + automaton build; worldwide: metadata load + the automata
    built into flat files, which the matcher then maps), measured apart as ``setup_cpu``."""
    from metaclip_spark.spark import stage1 as s1
    from metaclip_spark.steps.pipeline import match_file

    _clean(out, keep_automata=True)
    cfg = _config(mode, "local[1]", out, metadata, [path])
    c0 = time.process_time()
    prepared = s1.prepare(cfg)
    lid = prepared["lid"]
    world = None
    if mode == "worldwide":
        from metaclip_spark.spark import stage1_world

        world, matcher = stage1_world.world_task(cfg, prepared["world"], lid)
    else:
        from metaclip_spark.steps.match import Matcher

        matcher = Matcher(prepared["entries"]).prepare()
    lid.predict(["warm up"])
    setup = time.process_time() - c0
    pool_dir = os.path.join(out, "pool")
    os.makedirs(pool_dir, exist_ok=True)
    best = None
    for _ in range(max(1, reps)):
        for cache in ("_cache",):                  # every repetition starts with a cold text cache
            if isinstance(getattr(matcher, cache, None), dict):
                getattr(matcher, cache).clear()
        c0, w0 = time.process_time(), time.perf_counter()
        res = match_file(path, pool_dir, matcher, lid, prepared["limits"], cfg.match.batch_size, None, world)
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        if res.failed:
            raise RuntimeError("stage 1 failed: %s" % res.failed)
        if best is None or cpu < best[1]:
            best = (res, cpu, wall)
    res, cpu, wall = best
    st = dict(res.stats.counts)
    return {"mode": mode, "pool_rows": res.rows, "pairs": st.get("pairs"), "records": st.get("records_read"),
            "cpu": cpu, "wall": wall, "setup_cpu": setup, "reps": reps, "load": os.getloadavg(),
            "counts": st}


def mapping(location: str, captions: str = "", langs: str = "en,de,fr,ja,zh,hi") -> dict:
    """One process maps every automaton of a job's folder (``WorldMatcher.prepare()``, what a
    worker does lazily per language it meets) and matches the captions as each of ``langs``:
    time and the process's RSS / PSS / anonymous memory after each step."""
    from metaclip_spark.steps.world_match import WorldMatcher

    def mem():
        m = _rollup(os.getpid())
        return {k: v / 2**20 for k, v in m.items()}

    out = {"start": mem()}
    wm = WorldMatcher(location)
    c0 = time.process_time()
    wm.prepare()
    out["map_all_cpu"], out["languages"] = time.process_time() - c0, len(wm.languages)
    out["mapped_all"] = mem()
    if captions:
        import pyarrow.parquet as pq

        texts = [t for t in pq.read_table(captions, columns=["TEXT"]).column("TEXT").to_pylist() if t]
        out["texts"] = len(texts)
        for lang in langs.split(","):
            c0 = time.process_time()
            wm.match_many(texts, [lang] * len(texts))
            out["match_" + lang] = {"cpu": time.process_time() - c0, **mem()}
    out["cpu"], out["wall"] = 0.0, 0.0
    return out


def _clean(output: str, keep_automata: bool) -> None:
    """Remove ``output``; with ``keep_automata`` everything but the job's automata folder (a job
    of the same metadata digest reuses it, as a resumed job does)."""
    if not keep_automata or not os.path.isdir(output):
        shutil.rmtree(output, ignore_errors=True)
        return
    for name in os.listdir(output):
        if name not in ("automata", "_metaclip_run.json"):      # the run-folder mark stays with it
            p = os.path.join(output, name)
            shutil.rmtree(p) if os.path.isdir(p) else os.unlink(p)


def _config(mode, master, output, metadata, inputs):
    from metaclip_spark.run.config import load_config

    overrides = {"spark.master": master, "input.paths": inputs, "output": output, "overwrite": True,
                 "progress_seconds": 0}
    if mode == "worldwide":
        overrides.update({"worldwide.enabled": True, "worldwide.metadata": metadata})
    elif metadata:
        overrides["match.metadata"] = metadata
    return load_config([], [], overrides)


def main(argv: list[str]) -> int:
    mode, master, output, metadata, inputs = argv[0], argv[1], argv[2], argv[3], argv[4:]
    flags = set()
    while inputs and inputs[0].startswith("--"):
        flags.add(inputs.pop(0))
    warm, prebuilt = "--warm" in flags, "--prebuilt" in flags
    from metaclip_spark.metadata import defaults
    from metaclip_spark.spark.session import get_spark
    from metaclip_spark.spark.stage1 import run_match
    from bench.spark_child import _distinct

    _clean(output, keep_automata=prebuilt or warm)
    cfg = _config(mode, master, output, metadata, inputs)
    spark = get_spark(cfg.spark)
    sc = spark.sparkContext
    sc.parallelize([0], 1).count()                      # JVM and one Python worker up
    if warm:
        samples = sorted(str(p) for p in defaults.sample_dir().glob("*.warc.wat.gz"))
        warm_inputs = _distinct(samples, sc.defaultParallelism, output + "-warm-inputs")
        run_match(_config(mode, master, output, metadata, warm_inputs), spark)
    import metaclip_spark.spark.stage1  # noqa: F401  (imports the modules whose functions are wrapped)

    wraps = {}
    if mode == "worldwide":
        wraps["metadata_load"] = Timed("metaclip_spark.metadata.world", "load_world_metadata")
        wraps["automata_build"] = Timed("metaclip_spark.steps.world_automata", "build_automata")
    else:
        wraps["metadata_load"] = Timed("metaclip_spark.spark.stage1", "load_metadata")
    me = os.getpid()
    mem = WorkerMemory(me)
    mem.start()
    c0, w0 = tree_cpu(me), time.perf_counter()
    summary = run_match(cfg, spark)
    wall, cpu = time.perf_counter() - w0, tree_cpu(me) - c0
    mem.stop = True
    mem.join()
    spark.stop()
    stats = {}
    try:
        with open(os.path.join(output, "stats", "match.json")) as fh:
            st = json.load(fh)
        stats = {"mode": st.get("mode"), "counts": st.get("counts"), "dropped": st.get("dropped"),
                 "languages": st.get("languages")}
    except (OSError, ValueError):
        pass
    automata = os.path.join(output, "automata")
    ac_bytes = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(automata) for f in fs)
    print("BENCH-RESULT " + json.dumps({
        "mode": mode, "master": master, "warm": warm, "prebuilt": prebuilt, "wall": wall, "cpu": cpu,
        "pool_rows": summary["pool_rows"], "inputs": summary["inputs"], "failed": summary["inputs_failed"],
        "matches": summary.get("matches"), "entries": summary.get("entries"),
        "worker_peak_mb": {k: v / 2**20 for k, v in mem.peak.items() if k != "workers"},
        "workers_seen": mem.peak["workers"], "automata_bytes": ac_bytes,
        "driver_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        **{k: t.result() for k, t in wraps.items()}, "stats": stats, "load": os.getloadavg()}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
