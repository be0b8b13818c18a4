"""bench/RESULTS.md from the measurements of bench/run.py."""

from __future__ import annotations

import importlib.metadata as md
import os
import platform

from bench import index_report
from bench.corpus import ROOT

CRAWL_FILES = 90_000
LOG = os.path.join(ROOT, "bench", "OPTIMISATIONS.md")


def _machine() -> str:
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), "?")
        with open("/proc/meminfo") as fh:
            mem = int(fh.readline().split()[1]) / 2**20
    except OSError:
        mem = 0
    return "%s, %d cores, %.0f GB RAM, %s, Python %s" % (cpu, os.cpu_count() or 0, mem, platform.platform(),
                                                      platform.python_version())


def _versions() -> str:
    out = []
    for p in ("pyspark", "pyarrow", "numpy", "pyahocorasick", "isal", "zlib-ng", "orjson", "fasttext-numpy2",
              "xxhash", "warcio", "fastwarc"):
        try:
            out.append("%s %s" % (p, md.version(p)))
        except md.PackageNotFoundError:
            pass
    from metaclip_spark.kernels import native

    out.append("compiled speed-ups (metaclip_spark._speedups): %s" % ("on" if native.ENABLED else "OFF"))
    return ", ".join(out)


def _f(x, fmt="%.2f"):
    return "n/a" if x is None else fmt % x


def _goal(value, target, higher_better: bool) -> str:
    if value is None:
        return "not measured"
    ok = value >= target if higher_better else value <= target
    return "**met**" if ok else "missed"


def spark_key(n_files: int, master: str, warm: bool) -> str:
    """Where a Spark scaling run sits in the results ("spark_local[2]", "spark4_local[1]", ..._warm)."""
    return "spark%s_%s%s" % ("" if n_files == 2 else n_files, master, "_warm" if warm else "")


def goals(res: dict) -> list[tuple[str, str, str, str]]:
    """(goal, measured, ratio/target, verdict) rows."""
    files = res.get("files", {})
    wat = files.get("wat", {})
    cc = res.get("cc2dataset", {}).get("cpu")
    ex = wat.get("extract", {}).get("cpu")
    s1 = wat.get("stage1", {}).get("cpu")
    floor = min((wat[k]["cpu"] for k in ("floor_isal", "floor_zlib-ng") if k in wat), default=None)
    rows = []
    r = ex / cc if ex and cc else None
    rows.append(("WAT extraction <= 1/3 of cc2dataset", "%s s vs %s s" % (_f(ex), _f(cc)),
                 "%s (target <= 0.33)" % _f(r), _goal(r, 1 / 3, False)))
    r = ex / floor if ex and floor else None
    rows.append(("WAT extraction <= 3x fastest decompressor", "%s s vs %s s" % (_f(ex), _f(floor)),
                 "%sx (target <= 3)" % _f(r), _goal(r, 3, False)))
    r = s1 / cc if s1 and cc else None
    rows.append(("full stage 1 on a WAT <= cc2dataset extraction", "%s s vs %s s" % (_f(s1), _f(cc)),
                 "%s (target <= 1)" % _f(r), _goal(r, 1, False)))
    m = res.get("matcher", {})
    best = max(m.get("ours_tps", 0), m.get("many_tps", 0)) or None
    r = best / m["plain_tps"] if best and m.get("plain_tps") else None
    rows.append(("matcher >= 1.5x plain pyahocorasick loop", "%s vs %s texts/s" % (_f(best, "%.0f"),
                 _f(m.get("plain_tps"), "%.0f")), "%sx (target >= 1.5)" % _f(r), _goal(r, 1.5, True)))
    b = res.get("balance", {}).get("rows_per_s")
    rows.append(("stage 2 >= 1M pool rows/s/core end to end (25% kept, as in the paper)", "%s rows/s" % _f(b, "%.0f"),
                 "%s M (target >= 1)" % _f(b and b / 1e6), _goal(b, 1e6, True)))
    k = res.get("kernel", {}).get("rows_per_s")
    rows.append(("sampling kernel >= 10M rows/s/core", "%s rows/s" % _f(k, "%.0f"),
                 "%s M (target >= 10)" % _f(k and k / 1e6), _goal(k, 1e7, True)))
    rss = max((files[x]["stage1"]["maxrss_mb"] for x in files if "stage1" in files[x]), default=None)
    rows.append(("<= 1.5 GB peak RSS per Python worker", "%s MB" % _f(rss, "%.0f"),
                 "%s GB (target <= 1.5)" % _f(rss and rss / 1024), _goal(rss and rss / 1024, 1.5, False)))
    for warm, what in ((True, "2 files, workers warm (a crawl's steady state)"),
                       (False, "2 files, cold start (one-off worker costs included)")):
        s1w = res.get(spark_key(2, "local[1]", warm), {}).get("wall")
        s2w = res.get(spark_key(2, "local[2]", warm), {}).get("wall")
        if s1w is None and warm:
            continue
        r = s1w / s2w if s1w and s2w else None
        rows.append(("local[2] / local[1] throughput >= 1.8, %s" % what, "%s s vs %s s" % (_f(s2w), _f(s1w)),
                     "%sx (target >= 1.8)" % _f(r), _goal(r, 1.8, True)))
    return rows + index_report.goals(res)


def table(res: dict) -> str:
    lines = ["| goal | measured | ratio | verdict |", "|---|---|---|---|"]
    lines += ["| %s | %s | %s | %s |" % row for row in goals(res)]
    return "\n".join(lines)


def _file_rows(res: dict) -> list[str]:
    out = ["| file | what | CPU s | wall s | records/s (CPU) | pairs or rows | peak RSS MB |",
           "|---|---|---|---|---|---|---|"]
    for kind, f in res.get("files", {}).items():
        name = "%s (%.0f MB)" % (kind.upper(), f["mb"])
        recs = f.get("extract", {}).get("records")
        for label, key in (("`zcat > /dev/null`", "zcat"), ("Python gzip (zlib)", "floor_zlib"),
                           ("isal igzip", "floor_isal"), ("zlib-ng gzip_ng", "floor_zlib-ng")):
            if key in f:
                out.append("| %s | floor: %s | %.2f | %.2f | | | |" % (name, label, f[key]["cpu"], f[key]["wall"]))
        if kind == "wat" and "cc2dataset" in res:
            c = res["cc2dataset"]
            out.append("| %s | cc2dataset `process_wat` (extraction only) | %.2f | %.2f | %s | %d links | %.0f |" % (
                name, c["cpu"], c["wall"], _f(recs and recs / c["cpu"], "%.0f"), c["links"], c["maxrss_mb"]))
        if "extract" in f:
            e = f["extract"]
            out.append("| %s | ours: extraction only (`extract.pages_from_file`) | %.2f | %.2f | %.0f | %d pairs | %.0f |" % (
                name, e["cpu"], e["wall"], e["records"] / e["cpu"], e["pairs"], e["maxrss_mb"]))
        if "extract_py" in f:
            e = f["extract_py"]
            out.append("| %s | ours: extraction only, pure Python (`METACLIP_NATIVE=0`) | %.2f | %.2f | %.0f | "
                       "%d pairs | %.0f |" % (name, e["cpu"], e["wall"], e["records"] / e["cpu"], e["pairs"],
                                              e["maxrss_mb"]))
        if "stage1" in f:
            s = f["stage1"]
            out.append("| %s | ours: full stage 1 (extract + LID + match + Parquet) | %.2f | %.2f | %.0f | "
                       "%d pool rows | %.0f |" % (name, s["cpu"], s["wall"], s["records"] / s["cpu"],
                                                   s["pool_rows"], s["maxrss_mb"]))
    return out


def _projection(res: dict) -> list[str]:
    out = ["| crawl (90,000 files) | CPU s per file | core-hours | per-worker peak RSS |", "|---|---|---|---|"]
    for kind, f in res.get("files", {}).items():
        if "stage1" in f:
            s = f["stage1"]
            out.append("| %s, our full stage 1 (%.0f MB per file, as generated) | %.1f | %.0f | %.2f GB |" % (
                kind.upper(), f["mb"], s["cpu"], s["cpu"] * CRAWL_FILES / 3600, s["maxrss_mb"] / 1024))
            out.append("| %s, scaled to real CC sizes (WAT ~%d MB, WARC ~%d MB; linear in bytes) | %.1f | %.0f | |" % (
                kind.upper(), 300, 1100, s["cpu"] * (300 if kind == "wat" else 1100) / f["mb"],
                s["cpu"] * (300 if kind == "wat" else 1100) / f["mb"] * CRAWL_FILES / 3600))
    if "cc2dataset" in res:
        c = res["cc2dataset"]
        out.append("| WAT, cc2dataset extraction only (same file) | %.1f | %.0f | %.2f GB |" % (
            c["cpu"], c["cpu"] * CRAWL_FILES / 3600, c["maxrss_mb"] / 1024))
    b = res.get("balance")
    if b and "wat" in res.get("files", {}):
        s = res["files"]["wat"]["stage1"]
        rows = s["pool_rows"] * CRAWL_FILES
        out.append("| stage 2 over the pool of 90,000 WATs (%.2g rows at %.2g rows/s/core) | | %.1f | |" % (
            rows, b["rows_per_s"], rows / b["rows_per_s"] / 3600))
    return out


def render(res: dict) -> str:
    L = ["# Benchmark results", "",
         "Written by `make bench` (`python -m bench.run%s`). Do not edit by hand; the optimisation log "
         "below is kept in bench/OPTIMISATIONS.md." % (" --quick" if res.get("quick") else ""), "",
         "- date: %s; whole benchmark %.0f s" % (res.get("started"), res.get("bench_seconds", 0)),
         "- machine: %s" % _machine(), "- versions: %s" % _versions()]
    if "cc2dataset" in res:
        L.append("- cc2dataset venv (bench/work/cc2d-venv): %s" % ", ".join(
            "%s %s" % kv for kv in res["cc2dataset"].get("versions", {}).items()))
    c = res.get("corpus", {})
    L += ["- corpus: %s, %d captures (%s), metadata: %s" % (c.get("generator"), res.get("pages", 0),
                                                            c.get("dir", "?").replace(ROOT + "/", ""),
                                                            res.get("metadata")),
          "- method: every measurement in a fresh process on one core; times are **CPU seconds** "
          "(process_time / getrusage) of the best of 2 repetitions (WARC extraction and stage 1: 1 in full mode), because the machine has 2 cores "
          "shared with other work and wall time is noisy (+-25%%); wall time is shown for reference. "
          "Stage 1 excludes the one-off automaton build (%s s CPU) and model load, paid once per worker."
          % _f(res.get("files", {}).get("wat", {}).get("stage1", {}).get("automaton_build_cpu")), ""]
    load = [x for x in (res.get("load_start"), res.get("load_end")) if x]
    if load or res.get("load_note"):
        if L[-1] == "":
            L.pop()
        # judged by the load before the run: the end value includes the bench's own local[2] runs
        busy = (res.get("load_start") or (0,))[0] > (os.cpu_count() or 1)
        L += ["- machine load (1/5/15-min load average) at start / end: %s%s%s" % (
            " / ".join("%.1f, %.1f, %.1f" % tuple(x) for x in load) or "not recorded",
            "; " + res["load_note"] if res.get("load_note") else "",
            ". **The machine was busy with other work: CPU times are inflated (cache and memory "
            "contention) and the Spark scaling ratio is not meaningful; re-run on an idle machine.**"
            if busy or res.get("load_busy") else ""), ""]
    if "correctness_error" in res:
        L += ["**CORRECTNESS FAILURE**: `%s`" % res["correctness_error"][-500:], ""]
    L += ["## Goals", "", table(res), "", "## Stage 1 per file (one core)", ""] + _file_rows(res) + [""]
    m = res.get("matcher")
    if m:
        L += ["## Matcher and LID (10,000 real captions, 500k stand-in metadata)", "",
              "| what | texts/s (CPU) |", "|---|---|",
              "| naive SPEC section 4 matcher (sample of %d) | %.1f |" % (m["naive_sample"], m["naive_tps"]),
              "| plain pyahocorasick loop | %.0f |" % m["plain_tps"],
              "| ours, `Matcher.match` per text, text cache off | %.0f |" % m["ours_tps"],
              "| ours, `Matcher.match_many` (distinct texts once), cache off | %.0f |" % m["many_tps"],
              "| ours, texts seen before (text cache) | %.0f |" % m["warm_tps"]]
        if "lid" in res:
            L.append("| LID alone (fastText lid.176.ftz, batches of 4096) | %.0f |" % res["lid"]["tps"])
        L += ["", "Output of ours, the plain loop and (on the sample) the naive matcher asserted identical: "
              "%d matches over %d texts. Automaton build: ours %.1f s, plain %.1f s CPU." % (
                  m["matches"], m["texts"], m["ours_build_cpu"], m["plain_build_cpu"]), ""]
    if "balance" in res:
        b, k = res["balance"], res.get("kernel", {})
        L += ["## Stage 2", "",
              "Pool: %d rows in files of 1M rows (real stage-1 rows of the WAT, tiled with unique URLs), "
              "%.0f MB. The goal is measured at the paper's operating point: t = %.1f, solved so that the "
              "expected curated size is 25%% of the pool (MetaCLIP: 400M of 1.6B). Writing dominates, so "
              "a larger t (more rows kept) costs more: see the p90 row." % (b["rows_in"], b["pool_mb"], b["t"]), "",
              "| what | CPU s | rows/s/core |", "|---|---|---|",
              "| `curated.balance_group` end to end, paper point (read, sample, write %d rows, %.0f MB) "
              "| %.2f | %.0f |" % (b["rows_out"], b["curated_mb"], b["cpu"], b["rows_per_s"])]
        p = res.get("balance_p90")
        if p:
            L.append("| `curated.balance_group` end to end, t = %.0f = 90th percentile of the counts "
                     "(write %d rows, %.0f MB) | %.2f | %.0f |" % (p["t"], p["rows_out"], p["curated_mb"],
                                                                 p["cpu"], p["rows_per_s"]))
        L += ["| `balancing.keep_mask` alone (%d rows in memory) | %.3f | %.0f |" % (
                  k.get("rows", 0), k.get("cpu", 0), k.get("rows_per_s", 0)), ""]
    if spark_key(2, "local[1]", False) in res:
        L += ["## Spark scaling (stage 1, WAT files, run_match, wall time after session start)", "",
              "Cold: the timed run_match is the first Spark work that needs the Python workers' stage-1 "
              "resources, so it pays their start, imports, automaton build and LID model load once per "
              "worker. Warm: a run on the bundled sample WATs (one file per core) comes first, so the "
              "timed run sees workers as they are after their first file of a crawl.", "",
              "| files | workers | local[1] wall s | local[2] wall s | local[2] / local[1] throughput | pool rows |",
              "|---|---|---|---|---|---|"]
        for n, warm in ((2, False), (2, True), (4, False)):
            a, b = res.get(spark_key(n, "local[1]", warm)), res.get(spark_key(n, "local[2]", warm))
            if a and b:
                L.append("| %d | %s | %.1f | %.1f | %.2fx | %d |" % (n, "warm" if warm else "cold", a["wall"],
                                                                    b["wall"], a["wall"] / b["wall"], b["pool_rows"]))
        L.append("")
    L += index_report.section(res)
    L += ["## Projection: one monthly crawl", ""] + _projection(res) + [""]
    if os.path.exists(LOG):
        with open(LOG) as fh:
            L += [fh.read().strip(), ""]
    return "\n".join(L) + "\n"
