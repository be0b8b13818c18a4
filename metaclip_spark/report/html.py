"""HTML pieces of the run report: escaping helpers, embedded images, and the sections
built from :mod:`metaclip_spark.report.data` (time per stage, image hosts and duplicates,
the input sample's dropped texts and LID scores)."""

from __future__ import annotations

import base64
import html

from metaclip_spark.report.data import ENGLISH_LID
from metaclip_spark.steps import drops as drop_registry


class Markup(str):
    """Already-safe HTML (everything else is escaped)."""


def _e(x) -> str:
    return x if isinstance(x, Markup) else html.escape(str(x), quote=True)


def _n(x) -> str:
    if x is None:
        return "n/a"
    return format(int(x), ",") if float(x).is_integer() else format(float(x), ",.2f")


def _pct(x) -> str:
    return "n/a" if x is None else "%.2f%%" % (100.0 * x)


def _table(headers, rows, numeric=(), classes=None) -> str:
    """Every cell is escaped unless it is :class:`Markup`; ``classes``: {column: css class}."""
    cls = {j: "n" for j in numeric}
    cls.update(classes or {})
    out = ["<table><thead><tr>", "".join("<th>%s</th>" % _e(h) for h in headers), "</tr></thead><tbody>"]
    for row in rows:
        out.append("<tr>")
        out.extend("<td%s>%s</td>" % (' class="%s"' % cls[j] if j in cls else "", _e(c)) for j, c in enumerate(row))
        out.append("</tr>")
    return "".join(out) + "</tbody></table>"


def img(png: bytes, alt: str) -> str:
    """An ``<img>`` holding its PNG as a data: URI, so the page is one self-contained file."""
    return '<img src="data:image/png;base64,%s" alt="%s">' % (base64.b64encode(png).decode("ascii"), _e(alt))


def _secs(x) -> str:
    return "n/a" if x is None else "%.2f s" % x


def timing_section(tm: dict) -> str:
    rows = [("stage 1: input files timed", _n(tm["files"])),
            ("stage 1: sum of per-file seconds (task time, all workers)", _secs(tm["sum"])),
            ("stage 1: mean / max seconds per file", "%s / %s" % (_secs(tm["mean"]), _secs(tm["max"]))),
            ("stage 1: pool rows per task-second",
             "%.0f" % (tm["rows"] / tm["sum"]) if tm["sum"] else "n/a")]
    rows += [("%s: %s" % (stage, key), _secs(v)) for stage, key, v in tm["stages"]]
    slow = _table(["input (slowest first)", "pool rows", "seconds"],
                  [(f.get("source", "?"), _n(f.get("rows") or 0), "%.3f" % float(f["seconds"])) for f in tm["slowest"]],
                  numeric=(1, 2), classes={0: "url"}) if tm["slowest"] else ""
    more = ("" if tm["stages"] else
            "<p class=\"muted\">The stage summaries hold no wall times; stage 1's per-file seconds "
            "(<code>stats/match-files.json</code>) are what the run folder records. Stage 2 is one "
            "map-only pass over the pool.</p>")
    return ('<section id="timing"><h2>Time per stage</h2>%s%s%s</section>'
            % (_table(["quantity", "value"], rows, numeric=(1,)), slow, more))


def hosts_section(ov: dict | None, pool_rows: int) -> str:
    if ov is None:
        return '<section id="hosts"><h2>Image hosts and duplicates</h2><p>The pool is empty.</p></section>'
    d = ov["dup"]
    scope = ("the whole pool (%s rows, %d file%s)" % (_n(d["rows"]), ov["files"], "s" * (ov["files"] != 1))
             if d["rows"] >= pool_rows else
             "the first %s of %s pool rows (%d of %d files)" % (_n(d["rows"]), _n(pool_rows), ov["files_read"],
                                                                 ov["files"]))
    rows = [("pool rows read", _n(d["rows"])),
            ("distinct (url, text) pairs", _n(d["distinct_pairs"])),
            ("duplicate pairs (rows repeating an earlier (url, text))", "%s (%s)" % (
                _n(d["rows"] - d["distinct_pairs"]), _pct(d["pair_dup_rate"]))),
            ("distinct images (URL without TAB/space, SPEC 9)", _n(d["distinct_images"])),
            ("rows whose image appeared in an earlier row", "%s (%s)" % (
                _n(d["rows"] - d["distinct_images"]), _pct(d["image_dup_rate"]))),
            ("distinct image hosts", _n(ov["n_hosts"]))]
    cd = ov.get("curated_dup")
    if cd:
        rows += [("curated rows read", _n(cd["rows"])),
                 ("curated: rows whose image appeared in an earlier row", "%s (%s)" % (
                     _n(cd["rows"] - cd["distinct_images"]), _pct(cd["image_dup_rate"])))]
    has_cur = ov.get("curated_rows_read") is not None
    hrows = [(k + 1, h["host"], _n(h["rows"]), _pct(h["rows"] / d["rows"]), _n(h["images"]))
             + ((_n(h["curated"]),) if has_cur else ()) for k, h in enumerate(ov["hosts"])]
    hdr = ["#", "host", "pool rows", "share of pool rows", "distinct images"] + (["curated rows"] if has_cur else [])
    return ('<section id="hosts"><h2>Image hosts and duplicates</h2><p>Computed on %s. The pool holds one '
            'row per occurrence (an image on a page); many pages link the same image.</p>%s'
            '<h3>Top %d image hosts</h3>%s</section>'
            % (_e(scope), _table(["quantity", "value"], rows, numeric=(1,)), len(hrows),
               _table(hdr, hrows, numeric=(0, 2, 3, 4, 5))))


LID_DROPS = ENGLISH_LID + drop_registry.MATCH   # the outcomes of a pair that reached English LID
LABELS = {**{k: drop_registry.BY_NAME[k].meaning for k in LID_DROPS}, "matched": "English and matched (pool)"}


def lid_section(smp: dict, counts: dict, hist_png: bytes | None) -> str:
    head = '<section id="dropped"><h2>Dropped texts and LID scores (input sample)</h2>'
    if smp.get("error"):
        return head + ('<p class="note">Not available: %s. The section re-reads a sample of the inputs; '
                       'run the report where they are readable.</p></section>' % _e(smp["error"]))
    files = ", ".join("%s (%s pairs)" % (f["source"], _n(f["pairs"])) for f in smp["files"])
    lead = ("Stage 1 keeps no dropped text, so the report re-read the first %s pairs of %d of the run's %d "
            "input files (%s) with the same extraction, LID model and threshold %.2f, and calls a pair matched "
            "when it is in that input's pool file. %s pairs were LID-scored."
            % (_n(smp["max_pairs"]), len(smp["files"]), smp["files_total"], files, smp["threshold"],
               _n(smp["scored"])))
    total = smp["scored"]
    full = {k: counts.get("dropped." + k) for k in LID_DROPS}
    full["matched"] = counts.get("matched")
    run_total = sum(v for v in full.values() if v) or None
    crows = [(LABELS[c], _n(smp["classes"][c]), _pct(smp["classes"][c] / total if total else None),
              _n(full[c]), _pct(full[c] / run_total if run_total and full[c] is not None else None))
             for c in LID_DROPS + ("matched",)]
    out = [head, "<p>%s</p>" % _e(lead),
           _table(["outcome", "sample pairs", "share of sample", "whole run", "share of run"], crows,
                  numeric=(1, 2, 3, 4))]
    if hist_png:
        out.append(img(hist_png, "histogram of LID scores"))
    krows = [("%.2f%s" % (t, " (this run)" if abs(t - smp["threshold"]) < 1e-12 else ""), _n(k),
              _pct(k / total if total else None)) for t, k in smp["kept_at"]]
    brows = [("%.2f - %.2f" % (lo, hi), _n(a), _n(b)) for lo, hi, a, b in
             zip(smp["edges"][:-1], smp["edges"][1:], smp["hist_en"], smp["hist_other"])]
    out.append("<h3>Choosing the threshold</h3><p>English-labelled sample pairs that a threshold would keep "
               "(score &ge; threshold):</p>%s<details><summary>Histogram bins (%d)</summary>%s</details>"
               % (_table(["threshold", "English pairs kept", "share of scored pairs"], krows, numeric=(1, 2)),
                  len(brows), _table(["score", "top label English", "other language"], brows, numeric=(1, 2))))
    for c in LID_DROPS:
        rows = [(s["text"], s["label"], "%.3f" % s["score"], _n(s["count"]), s["url"]) for s in smp["samples"][c]]
        out.append('<h3 id="drop-%s">%s: %d sample text%s</h3>%s' % (
            c, _e(LABELS[c]), len(rows), "s" * (len(rows) != 1),
            _table(["text", "LID label", "score", "times in sample", "image URL"], rows, numeric=(2, 3),
                   classes={0: "text", 4: "url"}) if rows else "<p>None in the sample.</p>"))
    out.append('<p class="muted">Distinct texts, a fixed pseudo-random pick (smallest SHA-1 of the text). '
               'Texts are untrusted web content, shown escaped.</p>')
    if smp.get("errors"):
        out.append("<p>Inputs skipped: %s</p>" % _e("; ".join(smp["errors"])))
    return "".join(out) + "</section>"
