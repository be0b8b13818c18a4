"""Issue #17's bench rows (worldwide vs English stage 1, side by side in one run) as Markdown:
bench/RESULTS-world.md (written by ``python -m bench.run`` unless ``--skip world``; ``--render``
re-writes it from bench/work/results-*.json).

Cost model of a month (90,000 WATs, one stage-1 job): core-hours = files x CPU per file at real
CC size (the bench WAT's CPU scaled linearly in bytes to a 300 MB WAT) + the job's one-off
driver work (metadata load and, worldwide, the automata build: once per job, not per worker)."""

from __future__ import annotations

from bench.index_report import _f, _goal   # the same number format and goal verdict as the index rows

CRAWL_FILES = 90_000
CC_WAT_MB = 300
GB = 1024.0            # MB per GB




def _load(x) -> str:
    return "n/a" if not x else "%.1f" % x[0]


START = {"cold": "cold", "prebuilt": "cold workers, automata prebuilt", "warm": "warm"}


def _spark(w: dict, mode: str, master: str, start: str) -> dict | None:
    """One Spark row: start "cold" (worldwide: the job's automata build included), "prebuilt"
    (cold workers, the job's automata folder reused; English has no such build: its cold row)
    or "warm"."""
    runs = w.get("spark", {}).get(mode, {})
    if start == "prebuilt" and mode == "english":
        start = "cold"
    return runs.get("%s-%s" % (master, start))


def _per_file(w: dict, mode: str) -> tuple[float | None, str]:
    """CPU seconds per file in the steady state: the single-process stage 1 (one-off build and
    model load excluded), else the warm Spark local[1] run's all-process CPU per file."""
    s = w.get("stage1", {}).get(mode)
    if s:
        return s["cpu"], "one process, best of %d" % s.get("reps", 1)
    r = _spark(w, mode, "local[1]", "warm")
    if r:
        return r["cpu"] / max(1, r["inputs"]), "Spark local[1] warm, all processes"
    return None, "not measured"


def model(w: dict) -> dict:
    out = {}
    mb = w.get("wat", {}).get("mb")
    for mode in ("english", "worldwide"):
        cpu, how = _per_file(w, mode)
        if cpu is None or not mb:
            continue
        scale = CC_WAT_MB / mb
        cold = _spark(w, mode, "local[1]", "cold") or {}
        runs = list(w.get("spark", {}).get(mode, {}).values())
        load = max([(r.get("metadata_load") or {}).get("cpu", 0.0) for r in runs] or [0.0])   # a row that timed it
        one_off = load + (cold.get("automata_build") or {}).get("cpu", 0.0)
        out[mode] = {"cpu_file": cpu, "how": how, "cpu_file_cc": cpu * scale,
                     "core_hours": cpu * scale * CRAWL_FILES / 3600, "job_one_off_cpu": one_off,
                     "build_wall": (cold.get("automata_build") or {}).get("wall")}
    return out


def goals(w: dict) -> list[tuple[str, str, str, str]]:
    rows = []
    en, ww = w.get("stage1", {}).get("english"), w.get("stage1", {}).get("worldwide")
    if en and ww:
        r = ww["cpu"] / en["cpu"]
        rows.append(("worldwide stage 1 <= 1.3x English stage 1, same WAT (CPU per file, one process)",
                     "%.2f s vs %.2f s" % (ww["cpu"], en["cpu"]), "%.2fx (target <= 1.3)" % r, _goal(r, 1.3, False)))
    a, b = _spark(w, "worldwide", "local[1]", "warm"), _spark(w, "english", "local[1]", "warm")
    if a and b:
        r = a["cpu"] / b["cpu"]
        rows.append(("same, Spark local[1], 2 files, warm workers (all-process CPU)",
                     "%.1f s vs %.1f s" % (a["cpu"], b["cpu"]), "%.2fx (target <= 1.3)" % r, _goal(r, 1.3, False)))
    for start, what in (("prebuilt", "cold workers, the job's automata prebuilt"),
                        ("cold", "cold start, the job's automata build included")):
        a, b = _spark(w, "worldwide", "local[1]", start), _spark(w, "english", "local[1]", "cold")
        if a and b:
            r = a["wall"] / b["wall"]
            rows.append(("same, Spark local[1], 2 files, %s (wall)" % what,
                         "%.1f s vs %.1f s" % (a["wall"], b["wall"]), "%.2fx (target <= 1.3)" % r,
                         _goal(r, 1.3, False)))
    peaks = [r for r in w.get("spark", {}).get("worldwide", {}).values() if r.get("worker_peak_mb")]
    if peaks:
        top = max(peaks, key=lambda r: r["worker_peak_mb"]["rss"])["worker_peak_mb"]
        rows.append(("<= 1.5 GB peak RSS per Python worker, worldwide (30 languages, 15M entries)",
                     "RSS %.0f MB (PSS %.0f, USS %.0f, anonymous %.0f)" % (top["rss"], top["pss"], top["uss"],
                                                                          top.get("anon", 0)),
                     "%.2f GB (target <= 1.5)" % (top["rss"] / GB), _goal(top["rss"] / GB, 1.5, False)))
    elif w.get("components", {}).get("mapping"):
        mp = w["components"]["mapping"]
        m = max((v for k, v in mp.items() if k.startswith("match_") or k == "mapped_all"), key=lambda v: v["rss"])
        rows.append(("<= 1.5 GB peak RSS per Python worker, worldwide (one process mapping all %d automata and "
                     "matching)" % mp["languages"],
                     "RSS %.0f MB (PSS %.0f, anonymous %.0f)" % (m["rss"], m["pss"], m["anon"]),
                     "%.2f GB (target <= 1.5)" % (m["rss"] / GB), _goal(m["rss"] / GB, 1.5, False)))
    for mode, start in (("english", "cold"), ("worldwide", "prebuilt"), ("worldwide", "cold")):
        one, two = _spark(w, mode, "local[1]", start), _spark(w, mode, "local[2]", start)
        if one and two:
            r = one["wall"] / two["wall"]
            rows.append(("local[2] / local[1] throughput >= 1.8, 2 files, %s, %s" % (
                             "cold start" if mode == "english" else START[start], mode),
                         "%.1f s vs %.1f s" % (two["wall"], one["wall"]), "%.2fx (target >= 1.8)" % r,
                         _goal(r, 1.8, True)))
    return rows


def render(w: dict) -> str:
    man = w.get("metadata", {}).get("manifest", {})
    langs = man.get("languages", {})
    L = ["# Worldwide curation: bench results (issue #17)", "",
         "Written by `python -m bench.run` (the `world` part; `--skip world` leaves it out). Do not edit by hand.", "",
         "- date: %s; this part %.0f s" % (w.get("started", "?"), w.get("seconds", 0)),
         "- machine: %s" % w.get("machine", "?"),
         "- WAT: %s (%.0f MB), the same file for both modes" % (w.get("wat", {}).get("path"), w.get("wat", {}).get("mb", 0)),
         "- English metadata: %s; worldwide metadata: %s (bench/world_metadata.py: %d languages, %s entries, "
         "generated in %.0f s)" % (w.get("english_metadata"), w.get("metadata", {}).get("folder"), len(langs),
                                   "{:,}".format(sum(langs.values())) if langs else "?", man.get("seconds", 0)),
         "- machine load (1-min load average) at start / end of this part: %s / %s. The VM has 2 cores "
         "shared with other work; every row below gives the load average when it ended." % (
             _load(w.get("load_start")), _load(w.get("load_end"))), ""]
    if w.get("note"):
        L += [w["note"], ""]
    for e in w.get("errors", []):
        L += ["**Failed:** " + " ".join(e.split())[:600], ""]
    L += ["## Goals", "", "| goal | measured | ratio | verdict |", "|---|---|---|---|"]
    L += ["| %s | %s | %s | %s |" % g for g in goals(w)]
    s1 = w.get("stage1", {})
    if s1:
        L += ["", "## Stage 1 per file, one process (extract + LID + match + Parquet)", "",
              "CPU seconds of the best of the repetitions; the one-off setup (English: the automaton build; "
              "worldwide: metadata load and the automata build into flat files) is measured apart and excluded, "
              "as a crawl-long worker pays it once (worldwide: once per job).", "",
              "| mode | CPU s | wall s | pairs / texts | pool rows | one-off setup CPU s | process peak RSS MB (worldwide: "
              "with the 15M entries loaded, as a driver) | load |",
              "|---|---|---|---|---|---|---|---|"]
        for mode in ("english", "worldwide"):
            r = s1.get(mode)
            if r:
                L.append("| %s | %.2f | %.2f | %s | %d | %.1f | %.0f | %s |" % (
                    mode, r["cpu"], r["wall"], r.get("pairs"), r["pool_rows"], r.get("setup_cpu", 0),
                    r.get("maxrss_mb", 0), _load(r.get("load"))))
    sp = w.get("spark", {})
    if sp:
        L += ["", "## Stage 1 through Spark, 2 files (two names of the WAT)", "",
              "Each run in its own process (bench/world_child.py); cold: the output folder removed, the clock "
              "starts with the JVM and one Python worker up, so the worldwide run's automata build (once, on the "
              "driver) and every worker's start, imports, LID model load and automaton build (English) or mapping "
              "(worldwide) are inside it; cold workers, automata prebuilt: the same, but the job finds the automata "
              "folder an earlier run of the same metadata built (as a resumed job does), so only the per-worker "
              "cold start is inside; warm: after an untimed run on the bundled sample WATs into the same "
              "folder (workers up, automata built and mapped). CPU: all processes (driver, JVM, Python workers). "
              "Worker memory from /proc/PID/smaps_rollup every 0.25 s: RSS counts the memory-mapped automata in "
              "every worker, PSS divides shared pages among the processes mapping them, USS counts the pages only "
              "this process maps (file pages too: under local[1] the one worker's mapped automata are all USS), "
              "anonymous is the worker's own heap.", "",
              "| mode | master | start | wall s | CPU s | pool rows | metadata load s | automata build s (CPU) | "
              "worker peak RSS / PSS / USS / anonymous MB | workers' summed PSS MB | driver RSS MB | load |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for mode in ("english", "worldwide"):
            for key in ("local[1]-cold", "local[2]-cold", "local[1]-prebuilt", "local[2]-prebuilt",
                        "local[1]-warm", "local[2]-warm"):
                r = sp.get(mode, {}).get(key)
                if not r:
                    continue
                p = r["worker_peak_mb"]
                b = r.get("automata_build") or {}
                L.append("| %s | %s | %s | %.1f | %.1f | %d | %.1f | %s | %.0f / %.0f / %.0f / %s | %.0f | %.0f | %s |" % (
                    mode, r["master"], START[key.split("-", 1)[1]], r["wall"], r["cpu"], r["pool_rows"],
                    (r.get("metadata_load") or {}).get("wall", 0),
                    "%.1f (%.1f)" % (b["wall"], b["cpu"]) if b.get("calls") else "-",
                    p["rss"], p["pss"], p["uss"], _f(p.get("anon"), "%.0f"), p["sum_pss"], r.get("driver_maxrss_mb", 0), _load(r.get("load"))))
        ww = next((r for r in sp.get("worldwide", {}).values() if r.get("stats", {}).get("languages")), None)
        if ww:
            langs_st = ww["stats"]["languages"]
            L += ["", "Per language, the worldwide run (stats/match.json of %s %s): texts kept by the language "
                  "step, pool rows, entries, entries matched; %d languages; automata files %.0f MB." % (
                      ww["master"], "warm" if ww["warm"] else "cold", len(langs_st), ww.get("automata_bytes", 0) / 2**20),
                  "", "| lang | texts | pool rows | entries | entries matched |", "|---|---|---|---|---|"]
            for lang, v in sorted(langs_st.items(), key=lambda kv: -kv[1].get("texts", 0)):
                L.append("| %s | %s | %s | %s | %s |" % (lang, v.get("texts"), v.get("matched"), v.get("entries"),
                                                        v.get("entries_matched")))
    comp = w.get("components") or {}
    mp = comp.get("mapping")
    if mp or comp.get("lines"):
        L += ["", "## Components, measured directly", ""] + ["- %s" % x for x in comp.get("lines", [])]
    if mp:
        a, b = mp["start"], mp["mapped_all"]
        L.append("- One process (bench/world_child.mapping) maps all %d automata of the job's folder "
                 "(`WorldMatcher.prepare()`): %.2f s CPU, RSS %.0f -> %.0f MB, PSS %.0f -> %.0f, anonymous %.0f -> "
                 "%.0f (the files are mapped, not read: pages come in as walks touch them)." % (
                     mp["languages"], mp["map_all_cpu"], a["rss"], b["rss"], a["pss"], b["pss"], a["anon"], b["anon"]))
        for k, v in mp.items():
            if k.startswith("match_"):
                L.append("- then the %d captions matched as `%s`: %.2f s CPU (%.0f texts/s), RSS %.0f MB, PSS %.0f, "
                         "anonymous %.0f" % (mp["texts"], k[6:], v["cpu"], mp["texts"] / max(v["cpu"], 1e-9),
                                             v["rss"], v["pss"], v["anon"]))
    m = model(w)
    if m:
        L += ["", "## Projection: one month, %s WATs, one stage-1 job" % "{:,}".format(CRAWL_FILES), "",
              "Per-file CPU from the rows above (%s), scaled linearly in bytes to a %d MB CC WAT; the job's "
              "one-off driver work (metadata load, worldwide: the automata build) from the cold local[1] run, paid "
              "once per job (a resumed job reuses the automata of the same metadata digest); the metadata load from the "
              "rows that timed it." % (
                  "; ".join("%s: %s" % (k, v["how"]) for k, v in m.items()), CC_WAT_MB), "",
              "| mode | CPU s per bench WAT | CPU s per %d MB WAT | core-hours per month | one-off per job, CPU s |" % CC_WAT_MB,
              "|---|---|---|---|---|"]
        for mode, v in m.items():
            L.append("| %s | %.2f | %.2f | %.0f | %.1f |" % (mode, v["cpu_file"], v["cpu_file_cc"], v["core_hours"],
                                                           v["job_one_off_cpu"]))
        if "english" in m and "worldwide" in m:
            e, x = m["english"], m["worldwide"]
            L += ["", "Worldwide costs %.0f core-hours more per month than English (%.2fx); the automata build is "
                  "%.1f CPU s per job, %.4f%% of the month's worldwide core-hours." % (
                      x["core_hours"] - e["core_hours"], x["core_hours"] / e["core_hours"], x["job_one_off_cpu"],
                      100 * x["job_one_off_cpu"] / 3600 / x["core_hours"])]
    return "\n".join(L) + "\n"
