"""A self-contained HTML report of a run folder (stage 1 alone, or stage 1 + stage 2).

``write_report(run_dir)`` reads the statistics and Parquet outputs through
:mod:`metaclip_spark.run.outputs` (local paths, s3://, gs://) and writes one file,
``<run_dir>/report/index.html``: inline CSS, the PNG figures embedded as data: URIs, no
script and no reference to any other file, so a copy of that one file shows everything.
Every piece of text from the run (alt texts, URLs, entry strings, error messages) is
HTML-escaped.

Beyond the statistics, the report reads (bounded, see :mod:`metaclip_spark.report.data`)
the first ``pool_rows`` rows of the pool and of the curated set (image hosts, duplicates)
and re-reads the first ``input_pairs`` pairs of ``input_files`` inputs (dropped texts, LID
score histogram); ``input_files=0`` skips the inputs.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys

import numpy as np

from metaclip_spark.run import outputs
from metaclip_spark.steps import drops as drop_registry
from metaclip_spark.report import data as data
from metaclip_spark.report import images as images
from metaclip_spark.report import languages as languages
from metaclip_spark.report import plots as plots
from metaclip_spark.report.html import Markup, _e, _n, _pct, _table, hosts_section, img, lid_section, timing_section  # noqa: F401

FUNNEL = [  # (counter, label, unit)
    ("records_read", "WARC/WAT records read", "record"), ("html_pages", "HTML pages", "record"),
    ("images", "images (<img> / IMG@/src)", "item"), ("images_with_alt", "images with alt", "item"),
    ("pairs", "(url, text) pairs", "item"), ("english", "English pairs", "item"),
    ("matched", "matched pairs (pool)", "item"), ("curated", "curated pairs (balanced)", "item")]
# reason: (funnel step, meaning), in funnel order: the registry's run reasons (not build-metadata's)
DROPS = {d.name: (d.funnel, d.meaning) for d in drop_registry.REGISTRY if d.step != "build_metadata"}
(NOT_DRAWN,) = (d.name for d in drop_registry.REGISTRY if d.derived)
T_SOURCES = {"t": "given explicitly (--t)", "tail_share": "solved for a tail share (--tail-share)",
             "target_size": "solved for a target curated size (--target-size)",
             "default": "default value (no --t / --tail-share / --target-size)"}
CSS = """body{font-family:system-ui,-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:0 auto;
max-width:1240px;padding:16px 24px;color:#222;line-height:1.45}h1{margin-bottom:4px}
h2{border-bottom:2px solid #ddd;padding-bottom:4px;margin-top:36px}
table{border-collapse:collapse;margin:8px 0 16px;font-size:14px}th,td{border:1px solid #ddd;padding:4px 8px;
vertical-align:top;text-align:left}th{background:#f3f3f3}td.n{text-align:right;font-variant-numeric:tabular-nums}
tr.sum td{font-weight:bold;background:#fafafa}dl{display:grid;grid-template-columns:max-content auto;gap:2px 16px}
dt{font-weight:bold}dd{margin:0;word-break:break-all}img{max-width:100%;border:1px solid #eee}
.note{background:#fff6d6;border:1px solid #e8c95a;padding:8px 12px;border-radius:4px}
.kept{color:#1a7f37;font-weight:bold}.dropped{color:#b42318;font-weight:bold}.muted{color:#777}
code{background:#f3f3f3;padding:0 3px;border-radius:3px}code.head{background:#fde2e1}
td.text{max-width:520px;word-break:break-word}td.url{max-width:260px;word-break:break-all;font-size:12px}"""


def _json(run_dir: str, name: str) -> dict | None:
    uri = outputs.join(run_dir, "stats", name)
    return json.loads(outputs.read_text(uri)) if outputs.exists(uri) else None


def _by_id(table, n_ids: np.ndarray, column: str, fill) -> np.ndarray:
    """``column`` of ``table`` aligned to the sorted entry ids ``n_ids``."""
    ids = table.column("entry_id").to_numpy()
    vals = table.column(column).to_numpy(zero_copy_only=False)
    out = np.full(n_ids.size, fill, dtype=vals.dtype)
    pos = np.searchsorted(n_ids, ids)
    ok = (pos < n_ids.size) & (n_ids[np.minimum(pos, n_ids.size - 1)] == ids)
    out[pos[ok]] = vals[ok]
    return out


def _no_stage1(run_dir: str) -> str:
    """Why ``run_dir`` (which has no stats/match.json) cannot be reported, on one line."""
    if not outputs.exists(run_dir):
        return "cannot report on %s: no such folder" % run_dir
    balance = _json(run_dir, "balance.json")
    if balance is not None:
        pools = [str(p) for p in balance.get("pools") or []]
        return ("cannot report on %s: it holds stage-2 outputs only (stats/balance.json, curated/); the report also "
                "needs the stage-1 outputs (stats/match.json, entry_counts/, pool/), which are in the pool folder%s %s. "
                "Report on the pool (metaclip-spark report --run %s), or balance into the pool's own folder "
                "(--output equal to --pool) to report both stages"
                % (run_dir, "s" if len(pools) > 1 else "", ", ".join(pools) or "(not recorded)",
                   pools[0] if pools else "POOL"))
    return "cannot report on %s: not a metaclip-spark run folder (no stats/match.json)" % run_dir


def load_run(run_dir: str, samples: int = 20) -> dict:
    match = _json(run_dir, "match.json")
    if match is None:
        raise FileNotFoundError(_no_stage1(run_dir))
    ec = outputs.read_tables(outputs.list_files(outputs.join(run_dir, "entry_counts"), ".parquet"))
    if ec is None:
        raise FileNotFoundError("no entry_counts/*.parquet in run folder %s" % run_dir)
    ec, space = languages.space_order(ec)          # worldwide: (lang, entry_id) -> global ids
    r = {"match": match, "balance": _json(run_dir, "balance.json"), "ids": ec.column("entry_id").to_numpy(),
         "space": space, "worldwide": languages.is_worldwide(match, space),
         "entries": ec.column("entry").to_pylist(), "counts": ec.column("count").to_numpy().astype(np.int64)}
    r["p"] = r["balanced"] = None
    if r["balance"] is not None:
        bc = outputs.read_tables(outputs.list_files(outputs.join(run_dir, "balance_counts"), ".parquet"))
        if bc is not None:
            bc = languages.globalize_ids(bc, space)
            r["p"] = _by_id(bc, r["ids"], "p", 1.0)
            r["balanced"] = _by_id(bc, r["ids"], "balanced_count", 0).astype(np.int64)
    r["samples"] = _samples(run_dir, r, samples)
    return r


def _samples(run_dir: str, r: dict, n: int) -> list[dict]:
    rows = []
    for uri in outputs.list_files(outputs.join(run_dir, "pool"), ".parquet"):
        if len(rows) >= n:
            break
        t = outputs.read_tables([uri], ["url", "text", "entry_ids", "key_hash"] + ["lang"] * r["worldwide"])
        rows.extend(languages.globalize_rows(t.slice(0, n - len(rows)), r["space"] if r["worldwide"] else None)
                    .to_pylist())
    if r["balance"] is not None and rows:
        want, found = np.array([s["key_hash"] for s in rows], dtype=np.int64), set()
        for uri in outputs.list_files(outputs.join(run_dir, "curated"), ".parquet"):
            keys = outputs.read_tables([uri], ["key_hash"]).column("key_hash").to_numpy()
            found.update(want[np.isin(want, keys)].tolist())
            if len(found) == len(set(want.tolist())):
                break
        for s in rows:
            s["kept"] = s["key_hash"] in found
    return rows


def _entry_index(r: dict, e: int) -> int | None:
    i = int(np.searchsorted(r["ids"], e))
    return i if i < r["ids"].size and r["ids"][i] == e else None


def _sections(r: dict, run_dir: str) -> tuple[list[str], tuple]:
    """The page's HTML sections, and the (stages, drops) rows of the funnel chart."""
    m, b, c = r["match"], r["balance"], r["counts"]
    counts = m.get("counts", {})
    t = float(b["t"]) if b else None
    total = int(c.sum())
    pool_rows = int(m.get("pool_rows", counts.get("pool_rows", counts.get("matched", 0))))
    curated = int(b["curated_rows"]) if b else None
    tv = languages.entry_t(r)                      # worldwide: each entry's t_lang (English: t)
    tv = t if tv is None else tv
    head = c > tv if b else None
    out = []
    # (1) header ---------------------------------------------------------------------------
    t_desc = "n/a (stage 2 not run)"
    if b:
        src = b.get("t_source", "?")
        t_desc = Markup("<b>%s</b> &mdash; %s" % (_n(t), _e(T_SOURCES.get(src, src))))
    info = [("Run folder", run_dir),
            ("Report generated", datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")),
            ("Inputs", "%s files read, %s failed" % (_n(m.get("inputs", 0)), _n(m.get("inputs_failed", 0)))),
            ("Metadata", languages.header_metadata(m)), ("LID model", m.get("lid_model", "?")),
            ("Threshold t", t_desc), ("Seed", b.get("seed", "?") if b else "n/a"),
            ("Stages", "1 (match) + 2 (balance)" if b else "1 (match) only")]
    if b and b.get("pools"):
        info.append(("Balanced pools", ", ".join(map(str, b["pools"]))))
    out.append("<header><h1>MetaCLIP curation report</h1><p>CommonCrawl image alt-texts were parsed "
               "into (image URL, text) pairs, kept if English and if the text contains at least one "
               "metadata entry (stage 1, the <i>pool</i>), then balanced so that no entry has more than "
               "about t matches (stage 2, the <i>curated</i> set, ready for img2dataset with "
               "<code>--url_col url --caption_col text</code>). No image was downloaded.</p><dl>%s</dl>"
               % "".join("<dt>%s</dt><dd>%s</dd>" % (_e(k), _e(v)) for k, v in info))
    if r["worldwide"]:                  # MetaCLIP 2: every language, t per language
        out[-1] = out[-1].replace("image alt-texts", "image texts (extract.text_fields)").replace(
            "kept if English and if the text contains at least one metadata entry",
            "kept if the text contains at least one metadata entry of its language").replace(
            "about t matches", "about its language's t_lang matches")
    if b:
        out.append('<p><b>Result:</b> %s curated pairs out of %s pool pairs (%s kept) in <code>curated/</code>.'
                   '</p></header>' % (_n(curated), _n(pool_rows), _pct(curated / pool_rows if pool_rows else None)))
    else:
        out.append('<p class="note" id="stage1-only"><b>Stage 2 (balancing) has not been run on this folder</b> '
                   '(no <code>stats/balance.json</code>): the page shows the pool and its entry counts only; '
                   'balanced curves, curated sizes and kept/dropped samples are skipped. Run '
                   '<code>metaclip-spark balance --pool %s</code> to create the curated set.</p></header>' % _e(run_dir))
    # (2) figures --------------------------------------------------------------------------
    n_match = int((c > 0).sum())
    out.append('<section id="figures"><h2>Entry counts (paper Fig. 2)</h2><p>Each metadata entry counts the '
               'pool texts that contain it. Sorted from the rarest (tail) to the most frequent (head) entry, '
               'the cumulative sum shows how few head entries hold most matches. Balancing caps every entry '
               'at t: the expected curve is <code>min(count, t)</code>; the actual curve counts matches among '
               'the curated pairs.</p><p id="fig2-entries">The curves show the <b>%s entries that matched at '
               'least once</b>; <b>%s of the %s metadata entries never matched</b> and are left out (they add '
               'nothing to a cumulative sum and would squeeze the curves against the right edge).</p>'
               '<!--IMG:cumulative_counts--><!--IMG:count_distribution--></section>'
               % (_n(n_match), _n(c.size - n_match), _n(c.size)))
    # (3) Table-2-style summary ------------------------------------------------------------
    rows = [("metadata entries", _n(c.size)), ("entries with count 0 (never matched)", _n((c == 0).sum())),
            ("total matches (sum of counts)", _n(total)),
            ("matches per pool pair", "%.3f" % (total / pool_rows) if pool_rows else "n/a"),
            ("pool size (matched pairs)", _n(pool_rows))]
    if b:
        hs = int(c[head].sum())
        rows += [("t", _n(t)), ("head entries (count > t)", _n(head.sum())),
                 ("share of matches in head entries", _pct(hs / total if total else 0.0)),
                 ("tail share (matches in entries with count < t)", _pct(c[c < tv].sum() / total if total else 0.0)),
                 ("curated size (actual)", _n(curated)), ("curated size (expected)", _n(round(b["expected_size"], 2))),
                 ("keep rate (curated / pool)", _pct(curated / pool_rows if pool_rows else None)),
                 ("balanced matches (sum of balanced counts)", _n(r["balanced"].sum()) if r["balanced"] is not None else "n/a")]
    out.append('<section id="summary"><h2>Summary (paper Table 2)</h2>%s</section>'
               % _table(["quantity", "value"], rows, numeric=(1,)))
    # (4) top-20 ---------------------------------------------------------------------------
    order = np.lexsort((r["ids"], -c))[:20]
    top = [(k + 1, int(r["ids"][i]), r["entries"][i], _n(c[i]), _pct(c[i] / total if total else 0.0))
           + ((("%.6f" % r["p"][i]) if r["p"] is not None else "n/a", _n(min(c[i], tv if np.ndim(tv) == 0 else tv[i])),
               _n(r["balanced"][i]) if r["balanced"] is not None else "n/a") if b else ())
           for k, i in enumerate(order)]
    hdr = ["#", "entry id", "entry", "count", "share of matches"] + (["p", "min(count, t)", "balanced count"] if b else [])
    out.append('<section id="top-entries"><h2>Top-20 entries by count (paper Table 3)</h2>%s</section>'
               % _table(hdr, top, numeric=(0, 1, 3, 4, 5, 6, 7)))
    # (5) funnel ---------------------------------------------------------------------------
    vals = dict(counts)
    vals["matched"] = counts.get("matched", pool_rows)
    if b:
        vals["curated"] = curated
    stages, frows, prev = [], [], None
    for key, label, unit in FUNNEL:
        if key not in vals:
            continue
        v = int(vals[key])
        rel = "" if prev is None else ("%.2f per page" % (v / prev[1]) if unit != prev[2] and prev[1]
                                       else _pct(v / prev[1]) if prev[1] else "n/a")
        frows.append((label, _n(v), rel))
        stages.append((label, v))
        prev = (key, v, unit)
    drops = m.get("dropped") or {k[8:]: v for k, v in counts.items() if k.startswith("dropped.")}
    rank = {k: i for i, k in enumerate(DROPS)}   # funnel order, unknown reasons last
    drops = sorted(drops.items(), key=lambda kv: (rank.get(kv[0], len(rank)), kv[0]))
    if b:   # stage 2: its counted drops (stats/balance.json "dropped"), then the rows not drawn
        balance = {k: int(v) for k, v in (b.get("dropped") or {}).items() if v}
        drops += sorted(balance.items(), key=lambda kv: (rank.get(kv[0], len(rank)), kv[0]))
        drops.append((NOT_DRAWN, pool_rows - curated - sum(balance.values())))
    drows = [(k, DROPS.get(k, ("other", ""))[0], DROPS.get(k, ("", "?"))[1], _n(v)) for k, v in drops]
    errs = sorted((k[7:], v) for k, v in counts.items() if k.startswith("errors."))
    failed = m.get("failed_inputs") or []
    out.append('<section id="funnel"><h2>Per-stage funnel</h2><p>Units change along the way: records &rarr; '
               'pages &rarr; images &rarr; pairs. Percentages are relative to the previous stage.</p>%s'
               '<h3>Drop reasons</h3>%s<!--IMG:funnel-->'
               '<h3>Input errors</h3>%s<h3>Failed inputs (%d)</h3>%s</section>'
               % (_table(["stage", "count", "vs previous"], frows, numeric=(1, 2)),
                  _table(["reason", "step", "meaning", "count"], drows, numeric=(3,)) if drows else "<p>No drops.</p>",
                  _table(["kind", "count"], errs, numeric=(1,)) if errs else "<p>None.</p>", len(failed),
                  _table(["source", "error"], [(f.get("source", "?"), f.get("error", "?")) for f in failed])
                  if failed else "<p>None: every input was read.</p>"))
    plot_data = (stages, drops)
    # (6) samples --------------------------------------------------------------------------
    srows, nk = [], 0
    for s in r["samples"]:
        ents, keep_q = [], 1.0
        for e in s["entry_ids"] or []:
            i = _entry_index(r, e)
            name = r["entries"][i] if i is not None else "#%d" % e
            hot = b is not None and i is not None and c[i] > (tv if np.ndim(tv) == 0 else tv[i])
            ents.append('<code%s title="count %s">%s</code>' % (' class="head"' if hot else "",
                                                                 _n(c[i]) if i is not None else "?", _e(name)))
            if r["p"] is not None and i is not None:
                keep_q *= 1.0 - float(r["p"][i])
        row = [s["text"], Markup(" ".join(ents)), s["url"]]
        if b:
            nk += bool(s.get("kept"))
            row = [Markup('<span class="kept">kept</span>' if s.get("kept") else '<span class="dropped">dropped</span>'),
                   "%.3f" % (1.0 - keep_q)] + row
        srows.append(row)
    hdr = (["balancing", "keep prob."] if b else []) + ["text", "matched entries", "image URL"]
    k = 2 if b else 0
    table = (_table(hdr, srows, numeric=(1,) if b else (), classes={k: "text", k + 2: "url"}) if srows
             else "<p>The pool is empty.</p>")
    lead = ("%d of these %d pool pairs were kept by balancing. " % (nk, len(srows)) if b else
            "Stage 2 was not run, so no pair is marked kept or dropped. ")
    out.append('<section id="samples"><h2>Sample pairs</h2><p>%sThe first %d rows of the first pool file(s), '
               'in file order. Matched entries with count &gt; t (down-sampled) are highlighted; hover an entry '
               'to see its count. Texts are untrusted web content, shown escaped.</p>%s</section>'
               % (lead, len(srows), table))
    allc = sorted(counts.items())
    out.append('<section id="counters"><details><summary>All stage counters (%d)</summary>%s</details></section>'
               % (len(allc), _table(["counter", "value"], [(k, _n(v)) for k, v in allc], numeric=(1,))))
    return out, plot_data


IMAGES = {"cumulative_counts": "cumulative matches over the matched entries sorted by count",
          "count_distribution": "entries per count, log-log", "funnel": "funnel and drop reasons"}


def write_report(run_dir: str, out_path: str | None = None, samples: int = 20, input_files: int = 2,
                 input_pairs: int = 20_000, pool_rows: int = 1_000_000) -> str:
    """Write the self-contained HTML report of ``run_dir``; returns the HTML path.

    ``input_files``/``input_pairs``: inputs re-read for the dropped texts and the LID
    histogram, and pairs read from each (0 files: skipped); ``pool_rows``: pool and curated
    rows read for the image hosts and duplicates."""
    out_path = out_path or outputs.join(run_dir, "report", "index.html")
    if _json(run_dir, "match.json") is None and outputs.exists(run_dir):   # a balance over an image index?
        bal = _json(run_dir, "balance.json")
        ix = images.load(run_dir, bal) if bal is not None else None
        if ix is not None:
            return _write_page(out_path, run_dir, images.index_only_sections(run_dir, bal, ix), {})
    r = load_run(run_dir, samples)
    body, funnel_rows = _sections(r, run_dir)
    b = r["balance"]
    t = float(b["t"]) if b else None
    pngs = {"cumulative_counts": plots.cumulative_counts(r["counts"], t, r["balanced"]),
            "count_distribution": plots.count_distribution(r["counts"], t),
            "funnel": plots.funnel(*funnel_rows)}
    m = r["match"]
    counts = m.get("counts", {})
    n_pool = int(m.get("pool_rows", counts.get("pool_rows", counts.get("matched", 0))))
    extra = [timing_section(data.timing(run_dir, m, b)),
             hosts_section(data.pool_overview(run_dir, pool_rows, curated=b is not None), n_pool)]
    ix = images.section(images.load(run_dir, b))
    if ix:
        extra.append(ix)
    if r["worldwide"]:
        extra.insert(0, languages.LID_NOTE)
    elif input_files > 0:
        smp = data.input_sample(run_dir, m, input_files, input_pairs)
        hist = (plots.lid_histogram(smp["edges"], smp["hist_en"], smp["hist_other"], smp["threshold"])
                if not smp.get("error") else None)
        extra.insert(0, lid_section(smp, counts, hist))
    else:
        extra.insert(0, '<section id="dropped"><h2>Dropped texts and LID scores</h2><p>Skipped '
                        '(no input re-read was asked for).</p></section>')
    at = next(i for i, sec in enumerate(body) if sec.startswith('<section id="samples"'))
    body[at:at] = extra
    if r["worldwide"]:                   # the per-language view, after the summary
        at = next(i for i, sec in enumerate(body) if sec.startswith('<section id="top-entries"'))
        body[at:at] = [languages.section(languages.load(r))]
    return _write_page(out_path, run_dir, body, pngs)


def _write_page(out_path: str, run_dir: str, body: list[str], pngs: dict) -> str:
    page = ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>MetaCLIP curation report: %s'
            '</title><style>%s</style></head><body>\n%s\n</body></html>\n' % (_e(run_dir), CSS, "\n".join(body)))
    for name, png in pngs.items():
        page = page.replace("<!--IMG:%s-->" % name, img(png, IMAGES[name]))
    outputs.write_text(out_path, page)
    return out_path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="metaclip-spark report", description="HTML report of a run folder")
    ap.add_argument("--run", required=True, metavar="DIR", help="run folder (local path, s3:// or gs://)")
    ap.add_argument("--out", metavar="PATH", help="HTML path (default: DIR/report/index.html)")
    ap.add_argument("--samples", type=int, default=20, help="pool rows shown as samples (default 20)")
    ap.add_argument("--input-files", type=int, default=2, metavar="N",
                    help="inputs re-read for dropped texts and LID scores (default 2; 0: skip)")
    ap.add_argument("--input-pairs", type=int, default=20_000, metavar="N",
                    help="pairs read from each of those inputs (default 20000)")
    ap.add_argument("--pool-rows", type=int, default=1_000_000, metavar="N",
                    help="pool / curated rows read for image hosts and duplicates (default 1000000)")
    args = ap.parse_args(argv)
    print(write_report(args.run, args.out, args.samples, args.input_files, args.input_pairs, args.pool_rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
