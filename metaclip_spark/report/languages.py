"""The report's worldwide view (SPEC section 10, docs/worldwide.md "Statistics and the report").

A run is *worldwide* when ``stats/match.json`` says ``"mode": "worldwide"`` or its entry counts
hold more than one language. Its entry counts have one row per (lang, entry) with ``entry_id``
the position in that language's list; :func:`space_order` puts them in the language-space
order (``en`` first, then sorted; ``metadata/languages.LanguageSpace``) and turns the ids into
global ids, so the page's other sections see one id range (English runs: unchanged).

The section itself (:func:`section`) shows, per language: texts kept by the language step,
pool rows, metadata entries, entries matched, matches, t_lang, head entries (count > t_lang),
tail share at t_lang, curated and expected curated sizes, from ``stats/match.json``
``languages`` and ``stats/balance.json`` ``languages`` (values computed from the entry counts
where the JSON has none); the cumulative share of matches per language for the
:data:`TOP_CURVES` languages with the most matches; and the metadata check per language
(``stats/match.json`` ``metadata``: entries, dropped as longer than 256 characters, dropped as
punctuation-only).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from metaclip_spark.metadata.languages import MAX_ENTRY_CHARS, LanguageSpace
from metaclip_spark.report.html import _e, _n, _pct, _table, img
from metaclip_spark.report.plots import _human, _png, _thin
from metaclip_spark.run import pools
from metaclip_spark.steps import balance as balancing

TOP_CURVES = 8             # languages drawn in the cumulative-share figure (most matches first)
WORLDWIDE = "worldwide"    # stats/match.json "mode" of a worldwide run


# --- the run's entry counts in language-space order --------------------------------------------------------------

def space_order(ec: pa.Table) -> tuple[pa.Table, LanguageSpace | None]:
    """Entry counts as ``entry_id`` (global id), ``entry``, ``count`` sorted by global id, and
    their language space (None without a ``lang`` column: the table sorted by entry id, as
    English runs always were). With ``lang``: read by the one entry-count reader
    (:func:`metaclip_spark.run.pools.read_counts`); one language ``en`` keeps the English ids."""
    if "lang" not in ec.column_names:
        return ec.sort_by("entry_id"), None
    c = pools.read_counts(ec)
    return pa.table({"entry_id": pa.array(np.arange(len(c.space), dtype=np.int32)),
                     "entry": pa.array(c.entries, pa.string()), "count": pa.array(c.vector, pa.int64())}), c.space


def globalize_ids(table: pa.Table, space: LanguageSpace | None) -> pa.Table:
    """A per-entry table (e.g. ``balance_counts``) with global ``entry_id`` when it carries
    ``lang`` (else as it is: its ids are global already)."""
    if space is None or "lang" not in table.column_names:
        return table
    ids = pa.ListArray.from_arrays(pa.array(np.arange(table.num_rows + 1, dtype=np.int32)),
                                   table.column("entry_id").combine_chunks().cast(pa.int32()))
    glob = pc.list_flatten(space.globalize(table.column("lang"), ids))
    return table.set_column(table.column_names.index("entry_id"), "entry_id", glob)


def globalize_rows(table: pa.Table, space: LanguageSpace | None) -> pa.Table:
    """Pool rows with ``entry_ids`` as global ids (``LanguageSpace.globalize`` of ``lang``)."""
    if space is None:
        return table
    glob = space.globalize(table.column("lang"), table.column("entry_ids"))
    return table.set_column(table.column_names.index("entry_ids"), "entry_ids", glob)


def entry_t(r: dict) -> np.ndarray | None:
    """Per entry (global order) its language's t_lang from balance.json ``languages`` (the run's
    t where a language has none); None for an English run or without per-language t."""
    space, bl = r.get("space"), ((r.get("balance") or {}).get("languages") or {})
    if not r.get("worldwide") or space is None or not bl:
        return None
    t = float(r["balance"]["t"])
    per = np.array([float((bl.get(k) or {}).get("t", t)) for k in space.languages], dtype=np.float64)
    return per[space.lang_of(np.asarray(r["ids"], dtype=np.int64))]


def is_worldwide(match: dict | None, space: LanguageSpace | None) -> bool:
    return (match or {}).get("mode") == WORLDWIDE or (space is not None and len(space.languages) > 1)


# --- the section's data -------------------------------------------------------------------------------------------

def _num(x):
    return None if x is None else (int(x) if float(x).is_integer() else float(x))


def language_rows(match: dict, balance: dict | None, counts: dict[str, np.ndarray]) -> list[dict]:
    """One dict per language (every language of the entry counts and of the JSON), sorted by
    matches descending, ties by language code: ``lang``, ``texts``, ``pool``, ``entries``,
    ``entries_matched``, ``matches``, ``share`` (of all matches), ``t``, ``head_entries``,
    ``tail_share``, ``curated``, ``expected``, ``keep_rate``. balance.json's values first, then
    match.json's, then what the entry counts give (t: balance.json only)."""
    ml = (match or {}).get("languages") or {}
    bl = (balance or {}).get("languages") or {}
    out = []
    for lang in set(counts) | set(ml) | set(bl):
        m, b = ml.get(lang) or {}, bl.get(lang) or {}
        c = counts.get(lang)
        t = _num(b.get("t"))
        row = {"lang": lang, "texts": _num(m.get("texts")),
               "pool": _num(b.get("pool", m.get("matched"))),
               "entries": _num(m.get("entries", None if c is None else c.size)),
               "entries_matched": _num(m.get("entries_matched", None if c is None else int((c > 0).sum()))),
               "matches": _num(b.get("matches", None if c is None else int(c.sum()))), "t": t,
               "head_entries": _num(b.get("head_entries", None if c is None or t is None else int((c > t).sum()))),
               "tail_share": b["tail_share"] if "tail_share" in b else   # t_lang may be 0 (MetaCLIP 2's p_to_t)
               None if c is None or not t else balancing.tail_share(c, t),
               "curated": _num(b.get("curated")), "expected": b.get("expected")}
        row["keep_rate"] = row["curated"] / row["pool"] if row["curated"] is not None and row["pool"] else None
        out.append(row)
    total = sum(r["matches"] or 0 for r in out)
    for r in out:
        r["share"] = (r["matches"] or 0) / total if total else None
    return sorted(out, key=lambda r: (-(r["matches"] or 0), r["lang"]))


def _sum(rows, key):
    vals = [r[key] for r in rows]
    return None if any(v is None for v in vals) or not vals else sum(vals)


def total_row(rows: list[dict]) -> dict:
    """The sums over all languages; its tail share is the share of all matches that lie in
    their language's tail (matches-weighted), None when a language has none."""
    tot = {k: _sum(rows, k) for k in ("texts", "pool", "entries", "entries_matched", "matches", "head_entries",
                                      "curated", "expected")}
    m = tot["matches"]
    tails = [r["tail_share"] * (r["matches"] or 0) for r in rows if r["tail_share"] is not None]
    tot["tail_share"] = sum(tails) / m if m and len(tails) == len(rows) else None
    tot["keep_rate"] = tot["curated"] / tot["pool"] if tot["curated"] is not None and tot["pool"] else None
    return tot


def curve(counts) -> dict:
    """One language's cumulative curve, as the English Fig. 2 (tail -> head) but in shares:
    over its matched entries sorted by count ascending, ``x`` = 1..n, ``frac`` = x / n,
    ``share`` = cumulative matches / all its matches."""
    c = np.asarray(counts, dtype=np.int64)
    sc = np.sort(c[c > 0], kind="stable")
    n = sc.size
    x = np.arange(1, n + 1, dtype=np.int64)
    total = int(sc.sum())
    return {"x": x, "frac": x / n if n else x.astype(np.float64),
            "share": np.cumsum(sc) / total if total else np.zeros(0), "sorted": sc}


def metadata_rows(match: dict, space: LanguageSpace | None) -> list[tuple]:
    """(lang, entries, dropped too long, dropped punctuation-only, entries that can match) from
    match.json ``metadata`` (a dict per language), in language-space order; [] when absent."""
    md = (match or {}).get("metadata")
    if not isinstance(md, dict) or not md:
        return []
    order = list(LanguageSpace({k: 0 for k in md}).languages)
    out = []
    for lang in order:
        d = md[lang] or {}
        e, lo, pu = (_num(d.get(k)) for k in ("entries", "dropped_too_long", "dropped_punctuation_only"))
        can = e - (lo or 0) - (pu or 0) if e is not None else None
        out.append((lang, e, lo, pu, can))
    return out


def load(r: dict) -> dict | None:
    """The section's data from :func:`metaclip_spark.report.page.load_run`'s dict (``match``,
    ``balance``, ``counts`` and ``space``); None for an English run."""
    space = r.get("space")
    if not is_worldwide(r["match"], space):
        return None
    counts = {}
    if space is not None:
        which = space.lang_of(np.asarray(r["ids"], dtype=np.int64))
        counts = {k: r["counts"][which == i] for i, k in enumerate(space.languages)}
    else:   # a worldwide run whose entry counts have no lang column: all of it is one list
        counts = {"en": r["counts"]}
    rows = language_rows(r["match"], r["balance"], counts)
    return {"rows": rows, "total": total_row(rows), "counts": counts, "space": space,
            "metadata": metadata_rows(r["match"], space), "balance": r["balance"],
            "p": (r["balance"] or {}).get("tail_share_en")}


# --- HTML and figure --------------------------------------------------------------------------------------------

HEADERS = ["#", "language", "texts", "pool", "entries", "entries matched", "matches", "share of matches", "t_lang",
           "head entries (count > t_lang)", "tail share at t_lang", "curated", "curated (expected)", "keep rate"]


def _expected(x) -> str:
    return "n/a" if x is None else _n(round(float(x), 2))


def table_cells(rows: list[dict], total: dict) -> list[tuple]:
    """The all-languages table's cells (as the page shows them), the sums last."""
    def cells(r):
        return (_n(r["texts"]), _n(r["pool"]), _n(r["entries"]), _n(r["entries_matched"]), _n(r["matches"]),
                _pct(r.get("share")), _n(r.get("t")), _n(r["head_entries"]), _pct(r["tail_share"]), _n(r["curated"]),
                _expected(r["expected"]), _pct(r["keep_rate"]))
    out = [(k + 1, r["lang"]) + cells(r) for k, r in enumerate(rows)]
    if len(rows) > 1:
        out.append(("", "all languages") + cells(dict(total, share=1.0 if total["matches"] else None, t=None)))
    return out


def metadata_cells(rows: list[tuple]) -> list[tuple]:
    out = [(lang,) + tuple(_n(x) for x in vals) for lang, *vals in rows]
    if len(rows) > 1:
        sums = [sum(x for x in col if x is not None) for col in list(zip(*rows))[1:]]
        out.append(("all languages",) + tuple(_n(x) for x in sums))
    return out


COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")


def curves_png(d: dict, top: int = TOP_CURVES) -> bytes:
    """Cumulative share of matches per language (top ``top`` by matches), tail -> head: left
    over the matched entries (log x), right over the share of the language's matched entries;
    a dot on the last entry with count <= t_lang (the head is to its right)."""
    fig = Figure(figsize=(12, 4.8))
    axes = fig.subplots(1, 2)
    for k, r in enumerate([r for r in d["rows"] if r["lang"] in d["counts"] and r["matches"]][:top]):
        cv = curve(d["counts"][r["lang"]])
        if not cv["x"].size:
            continue
        idx = _thin(cv["x"].size)
        color = COLORS[k % len(COLORS)]
        label = "%s (%s matches, t = %s)" % (r["lang"], _human(int(cv["sorted"].sum())),    # stage 1's counts
                                             _human(r["t"]) if r["t"] else "n/a")
        for ax, x in zip(axes, (cv["x"], cv["frac"])):
            ax.plot(x[idx], cv["share"][idx], "-", color=color, linewidth=1.6, label=label,
                    marker="." if cv["x"].size <= 60 else None)
            if r["t"]:
                cross = int(np.searchsorted(cv["sorted"], r["t"], side="right"))
                if 0 < cross <= cv["x"].size:
                    ax.plot([x[cross - 1]], [cv["share"][cross - 1]], "o", color=color, markersize=5)
    for ax, log in zip(axes, (True, False)):
        if log:
            ax.set_xscale("log")
            ax.set_xlabel("matched entries sorted by count, tail -> head (log)")
            ax.xaxis.set_major_formatter(FuncFormatter(_human))
        else:
            ax.set_xlim(0, 1)
            ax.set_xlabel("share of the language's matched entries, tail -> head")
        ax.set_ylim(0, 1.02)
        ax.set_ylabel("cumulative share of the language's matches")
        ax.grid(True, alpha=0.3)
    axes[0].set_title("Cumulative matches per language (dot: last entry with count <= t_lang)")
    axes[1].set_title("Same, entries as a share")
    if axes[0].lines:
        axes[0].legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return _png(fig)


def section(d: dict | None) -> str:
    """The HTML section (empty string for an English run)."""
    if d is None:
        return ""
    rows, b = d["rows"], d["balance"]
    p = d["p"]
    lead = ("<p>A worldwide run (MetaCLIP 2, SPEC section 10): each text is matched against the metadata of its "
            "language, and each language has its own t. %s The page's other sections (Fig. 2, summary, top-20, "
            "samples) count all languages together, entry ids being global ids (language-space order: "
            "<code>en</code> first, then the others sorted); their head entries, tail share, "
            "<code>min(count, t)</code> and highlighted samples use each entry's t_lang, Fig. 2's expected curve "
            "English's t. Pool: rows matched (stage 1) or considered by balancing (stage 2); matches: sum of the "
            "language's entry counts as balancing counted them (with image de-duplication: distinct images, so "
            "fewer than stage 1's; the curves show stage 1's entry counts); tail share: matches in entries with "
            "count &lt; t_lang over all its matches.</p>"
            % ("English's tail share p = <b>%s</b> fixes every other language's t_lang (the count whose cumulative "
               "share of the sorted counts is nearest p, MetaCLIP 2's <code>p_to_t</code>)." % _e(_pct(p))
               if p is not None else
               "Stage 2 has not been run: t_lang, head entries, tail shares and curated sizes are n/a."
               if b is None else "stats/balance.json records no English tail share (tail_share_en)."))
    out = ['<section id="languages"><h2>Languages (worldwide)</h2>', lead]
    n = len([r for r in rows if r["lang"] in d["counts"] and r["matches"]])
    if n:
        out.append('<h3 id="languages-curves">Cumulative share of matches, top %d language%s by matches</h3>'
                   % (min(n, TOP_CURVES), "s" * (min(n, TOP_CURVES) != 1)))
        out.append(img(curves_png(d), "cumulative share of matches per language"))
    out.append('<h3 id="languages-table">All languages (%d), by matches</h3>%s' % (
        len(rows), _table(HEADERS, table_cells(rows, d["total"]), numeric=(0,) + tuple(range(2, 14)))))
    md = d["metadata"]
    out.append('<h3 id="languages-metadata">Metadata check per language</h3>')
    if md:
        out.append("<p>Section 10 drops entries longer than %d characters and punctuation-only entries; they keep "
                   "their position in the list (entry ids stay file positions) and never match.</p>%s"
                   % (MAX_ENTRY_CHARS, _table(["language", "entries", "dropped: longer than %d characters"
                                               % MAX_ENTRY_CHARS, "dropped: punctuation only", "entries that can match"],
                                              metadata_cells(md), numeric=(1, 2, 3, 4))))
    else:
        out.append("<p>stats/match.json records no per-language metadata check.</p>")
    return "".join(out) + "</section>"


LID_NOTE = ('<section id="dropped"><h2>Dropped texts and LID scores</h2><p>Skipped: a worldwide run keeps texts '
            'of every language; the input re-read of this section applies English mode\'s LID rule.</p></section>')


def header_metadata(match: dict):
    """The header's "Metadata" value: the path, or for per-language metadata the languages."""
    md = match.get("metadata", "?")
    if isinstance(md, dict):
        return "%d languages: %s" % (len(md), ", ".join(LanguageSpace({k: 0 for k in md}).languages))
    return md


__all__ = ["TOP_CURVES", "space_order", "entry_t", "globalize_ids", "globalize_rows", "is_worldwide", "language_rows",
           "total_row", "curve", "metadata_rows", "load", "section", "table_cells", "metadata_cells", "curves_png",
           "header_metadata", "LID_NOTE"]
