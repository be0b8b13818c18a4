"""The image index's rows of bench/RESULTS.md: goals, measurements and the monthly projection.

Cost model of a monthly update (merge + balance + diff), from the two merges of the bench (the
first builds the index from crawl A, the second merges crawl B into it):
- merge CPU = a * new occurrences + b * rows of the previous release (read and rewritten);
  a from the first merge (no previous release), b from the second (its CPU minus a * its
  occurrences, over the rows of release 1);
- balance + diff CPU = c * index rows, c from the Spark balance of release 2 with the diff.
A crawl of 90,000 WATs brings (stage-1 pool rows per WAT) x 90,000 occurrences; the index holds
10^10 images at the bench's rows per image."""

from __future__ import annotations

CRAWL_FILES = 90_000
INDEX_IMAGES = 1e10


def _f(x, fmt="%.2f"):
    return "n/a" if x is None else fmt % x


def _goal(value, target, higher_better: bool) -> str:
    if value is None:
        return "not measured"
    return "**met**" if (value >= target if higher_better else value <= target) else "missed"


def model(res: dict) -> dict | None:
    ix = res.get("index_spark")
    if not ix or len(ix.get("merges", [])) < 2 or not ix.get("balances"):
        return None
    m1, m2 = ix["merges"][0], ix["merges"][1]
    a = m1["cpu"] / m1["occurrences"]
    b = max(0.0, (m2["cpu"] - a * m2["occurrences"]) / m1["index_pairs"])
    bal = ix["balances"][-1]
    c = bal["cpu"] / bal["index_rows"]
    rows_per_image = m2["index_pairs"] / m2["index_images"]
    wat = res.get("files", {}).get("wat", {})
    s1 = wat.get("stage1")
    out = {"a": a, "b": b, "c": c, "rows_per_image": rows_per_image}
    if s1:
        scale = 300 / wat["mb"]                                    # real CC WAT ~300 MB
        occ = s1["pool_rows"] * scale * CRAWL_FILES
        rows = INDEX_IMAGES * rows_per_image
        out.update({
            "crawl_occurrences": occ, "index_rows": rows,
            "merge_h": (a * occ + b * rows) / 3600, "balance_h": c * rows / 3600,
            "stage1_h": s1["cpu"] * scale * CRAWL_FILES / 3600,
            # bytes: the previous release read + the new one written (~ the same size)
            "index_bytes": rows * m2.get("release_bytes", 0) / max(1, m2["index_pairs"]),
        })
        out["share"] = (out["merge_h"] + out["balance_h"]) / out["stage1_h"]
    return out


def goals(res: dict) -> list[tuple[str, str, str, str]]:
    ix = res.get("index_spark")
    if not ix:
        return []
    rows = []
    m1 = ix["merges"][0]
    r = m1["occurrences"] / m1["cpu"]
    rows.append(("index merge >= 1M occurrences/s/core (Spark local[1], all-process CPU)",
                 "%.0f occ/s" % r, "%s M (target >= 1)" % _f(r / 1e6), _goal(r, 1e6, True)))
    b = res.get("index_balance")
    if b:
        rows.append(("balance over the index >= 1M images/s/core end to end (Spark-free task path)",
                     "%.0f images/s" % b["images_per_s"], "%s M (target >= 1)" % _f(b["images_per_s"] / 1e6),
                     _goal(b["images_per_s"], 1e6, True)))
    m = model(res)
    if m and "share" in m:
        rows.append(("monthly update (merge + balance + diff) <= 25% of stage-1 core-hours (90k WATs, 1e10 images)",
                     "%.1f vs %.0f core-hours" % (m["merge_h"] + m["balance_h"], m["stage1_h"]),
                     "%s%% (target <= 25%%)" % _f(100 * m["share"], "%.1f"), _goal(m["share"], 0.25, False)))
    return rows


def section(res: dict) -> list[str]:
    ix = res.get("index_spark")
    if not ix:
        return []
    L = ["## Image index (issue #16)", "",
         "Two finished stage-1 run folders tiled from the WAT's real pool rows (bench/index_pools.py): every "
         "distinct pair occurs 4 times, half of the images are shared by the two crawls, and crawl A also holds "
         "one image repeated %d times (1,000 texts): the boilerplate case. Spark local[1] in its own process, after "
         "an untimed warm-up merge; CPU is the whole process tree's (driver, JVM, Python workers). Balances: t from a "
         "30%% tail share." % ix.get("logo_rows", 0), "",
         "| step | occurrences | distinct pairs | images | index rows after | wall s | CPU s | per core/s | "
         "peak RSS of a Python worker |", "|---|---|---|---|---|---|---|---|---|"]
    for k, m in enumerate(ix["merges"]):
        L.append("| merge %d (%s) | %d | %d | %d | %d | %.1f | %.1f | %.0f occ | %.0f MB |" % (
            k + 1, "new index" if k == 0 else "into release %d" % k, m["occurrences"], m["pairs"], m["images"],
            m["index_pairs"], m["wall"], m["cpu"], m["occurrences"] / m["cpu"], m["worker_peak_rss_mb"]))
    for b in ix.get("balances", []):
        L.append("| balance release %d (dedup image%s) | | | %s | %d | %.1f | %.1f | %.0f rows | |" % (
            b["release"], ", diff" if b.get("diff") else "", b.get("images"), b["index_rows"], b["wall"], b["cpu"],
            b["index_rows"] / b["cpu"]))
    sb = res.get("index_balance")
    if sb:
        L += ["", "Balance over release 2 without Spark (index/select.curate_files per bucket: read, choose, draw, "
              "curated form, write), one process: %d index rows, %d images, %d curated, %.2f s CPU: "
              "**%.0f images/s/core** (%.0f rows/s)." % (sb["index_rows"], sb["images"], sb["curated"], sb["cpu"],
                                                        sb["images_per_s"], sb["rows_per_s"])]
    m = model(res)
    if m and "share" in m:
        L += ["", "### Projection: a monthly update at crawl scale", "",
              "| quantity | value |", "|---|---|",
              "| CPU per new occurrence (a, merge 1) | %.2f us |" % (m["a"] * 1e6),
              "| CPU per previous index row (b, merge 2) | %.2f us |" % (m["b"] * 1e6),
              "| CPU per index row, balance + diff (c) | %.2f us |" % (m["c"] * 1e6),
              "| occurrences of a 90,000-WAT crawl (stage-1 pool rows per WAT at 300 MB) | %.3g |" % m["crawl_occurrences"],
              "| index rows at 10^10 images (%.2f rows per image) | %.3g |" % (m["rows_per_image"], m["index_rows"]),
              "| merge core-hours | %.1f |" % m["merge_h"],
              "| balance + diff core-hours | %.1f |" % m["balance_h"],
              "| stage 1 core-hours (same crawl) | %.0f |" % m["stage1_h"],
              "| monthly update / stage 1 | %.1f%% |" % (100 * m["share"])]
        if m.get("index_bytes"):
            L.append("| bytes read + written per merge (previous release + new one) | %.2f TB |" % (2 * m["index_bytes"] / 1e12))
    return L + [""]
