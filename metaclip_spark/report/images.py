"""The report's "Images, not occurrences" section (docs/index.md, docs/semantics.md section 9).

A run folder holds an image index when ``RUN/index/CURRENT`` exists (``curate`` and
``balance --pool --dedup image|pair`` build it there), or when its ``stats/balance.json``
names one (``balance --index``: key ``index`` = the index folder, ``release`` = the release
balanced; ``index`` may also be ``{"path": ..., "release": ...}``). The section reads only
the release's ``stats/index.json`` and its small ``entry_counts/`` parquet (one row per
metadata entry), never a bucket file: occurrences -> distinct pairs -> images per merge and
per crawl, the most repeated images, release sizes over the history, the diff against a
previous curated set, and the entry counts with and without de-duplication side by side.
"""

from __future__ import annotations

import json
import os

import numpy as np

from metaclip_spark.index import layout
from metaclip_spark.index import schema as index_schema
from metaclip_spark.report.html import _e, _n, _pct, _table
from metaclip_spark.run import outputs
from metaclip_spark.steps import balance as balancing

TOP_INFLATED = 10          # entries listed by matches that come from repeated images


def locate(run_dir: str, balance: dict | None) -> dict | None:
    """``{"path", "release", "release_dir", "named"}`` of the index the run folder holds or
    its balance.json names (the latter first: it is the release actually balanced); None when
    there is none. ``release`` is None when the index has no CURRENT and none is named."""
    b = balance or {}
    path, release, named = b.get("index"), b.get("release", b.get("index_release")), True
    if isinstance(path, dict):
        path, release = path.get("path"), path.get("release", release)
    if path:
        path = str(path)
        if "://" not in path and not os.path.isabs(path) and not outputs.exists(path):
            path = outputs.join(run_dir, path)          # relative to the run folder
    elif outputs.exists(outputs.join(run_dir, "index", index_schema.CURRENT)):
        path, named = outputs.join(run_dir, "index"), False
    else:
        return None
    release = layout.current(path) if release is None else int(release)
    rdir = layout.release_dir(path, release) if release is not None else None
    return {"path": path, "release": release, "release_dir": rdir, "named": named}


def load(run_dir: str, balance: dict | None) -> dict | None:
    """The section's data: the located index, its ``stats/index.json`` and entry counts
    (``ids``, ``entries``, ``count``, ``occurrences``, sorted by entry id); ``error`` when the
    index is named but its release cannot be read."""
    loc = locate(run_dir, balance)
    if loc is None:
        return None
    d = dict(loc, balance=balance or {})
    if loc["release_dir"] is None:
        return dict(d, error="the index %s has no CURRENT release" % loc["path"])
    uri = outputs.join(loc["release_dir"], "stats", "index.json")
    if not outputs.exists(uri):
        return dict(d, error="no stats/index.json in release %s" % loc["release_dir"])
    d["stats"] = json.loads(outputs.read_text(uri))
    ec = outputs.read_tables(outputs.list_files(outputs.join(loc["release_dir"], "entry_counts"), ".parquet"),
                             ["entry_id", "entry", "count", "occurrences"])
    if ec is not None:
        ec = ec.sort_by("entry_id")
        d.update(ids=ec.column("entry_id").to_numpy().astype(np.int64), entries=ec.column("entry").to_pylist(),
                 count=ec.column("count").to_numpy().astype(np.int64),
                 occurrences=ec.column("occurrences").to_numpy().astype(np.int64))
    return d


def _ratio(a, b) -> float | None:
    return float(a) / float(b) if b else None


def _factor(x) -> str:
    return "n/a" if x is None else "%.2f" % x


def flow_rows(stats: dict) -> list[tuple]:
    """(scope, occurrences, pairs, images, duplicate factor, new images) of this merge, each
    crawl of it, and the whole release."""
    rows = []
    m = stats.get("merge") or {}
    if m:
        rows.append(("this merge (release %s)" % stats.get("release", "?"), m.get("occurrences"), m.get("pairs"),
                     m.get("images"), m.get("duplicate_factor", _ratio(m.get("occurrences"), m.get("images"))),
                     m.get("new_images")))
    for label, c in sorted((stats.get("per_crawl") or {}).items()):
        rows.append(("crawl %s" % label, c.get("occurrences"), c.get("pairs"), c.get("images"),
                     _ratio(c.get("occurrences"), c.get("images")), c.get("new_images")))
    tot = stats.get("totals") or {}
    if tot:
        rows.append(("whole index (every merge)", tot.get("occurrences"), tot.get("pairs"), tot.get("images"),
                     _ratio(tot.get("occurrences"), tot.get("images")), None))
    return rows


def history_rows(stats: dict) -> list[tuple]:
    """(release, crawls, occurrences, pairs, images, new pairs, new images, index pairs,
    index images): each merge's input and the release size after it (running sums of the new
    pairs and images)."""
    out, pairs, images = [], 0, 0
    for h in sorted(stats.get("history") or [], key=lambda h: int(h.get("release", 0))):
        pairs += int(h.get("new_pairs") or 0)
        images += int(h.get("new_images") or 0)
        out.append((int(h.get("release", 0)), ", ".join(map(str, h.get("crawls") or [])), h.get("occurrences"),
                    h.get("pairs"), h.get("images"), h.get("new_pairs"), h.get("new_images"), pairs, images))
    return out


def dedup_effect(count, occurrences, t: float | None = None, t_without: float | None = None) -> dict:
    """Entry counts with (``count``) and without (``occurrences``) de-duplication: totals,
    matched entries, and at t (and at ``t_without`` for the occurrences) the head entries
    (count > t), their share of matches and the tail share (count < t)."""
    c, o = np.asarray(count, dtype=np.int64), np.asarray(occurrences, dtype=np.int64)
    out = {"total": (int(c.sum()), int(o.sum())), "matched": (int((c > 0).sum()), int((o > 0).sum()))}

    def at(x, tt):
        tot = int(x.sum())
        return int((x > tt).sum()), (int(x[x > tt].sum()) / tot if tot else 0.0), balancing.tail_share(x, tt)

    if t is not None:
        out["at_t"] = (at(c, t), at(o, t))
    if t is not None and t_without is not None:
        out["own_t"] = (at(c, t), at(o, t_without))
    return out


def inflated(d: dict, top: int = TOP_INFLATED) -> list[tuple]:
    """The ``top`` entries with the most matches from repeated images (occurrences - count),
    ties by entry id: (entry id, entry, count, occurrences, occurrences / count)."""
    extra = d["occurrences"] - d["count"]
    order = [i for i in np.lexsort((d["ids"], -extra)) if extra[i] > 0][:top]
    return [(int(d["ids"][i]), d["entries"][i], int(d["count"][i]), int(d["occurrences"][i]),
             _ratio(d["occurrences"][i], d["count"][i])) for i in order]


def _note(text: str) -> str:
    return '<p class="note">%s</p>' % text


def section(d: dict | None) -> str:
    """The HTML section (empty string when the run folder holds no index)."""
    if d is None:
        return ""
    head = '<section id="images"><h2>Images, not occurrences (image index)</h2>'
    if d.get("error"):
        return head + _note("The image index could not be read: %s." % _e(d["error"])) + "</section>"
    s, b = d["stats"], d["balance"]
    info = [("Index", d["path"]), ("Release", index_schema.release_name(d["release"])
                                   + ("" if d["named"] else " (CURRENT)")),
            ("Buckets", _n(s.get("buckets"))), ("Texts kept per image (K)", _n(s.get("max_texts_per_image"))),
            ("Pools merged", _n(len(s.get("pools") or [])))]
    tot = s.get("totals") or {}
    if tot:
        info += [("Texts stored with their text", _n(tot.get("texts_stored"))),
                 ("Texts remembered by hash only", _n(tot.get("texts_hash_only")))]
    out = [head, "<p>The web repeats images (logos, icons, product photos on every page of a site and in every "
           "crawl). A pool row is an <i>occurrence</i>; the index keeps each distinct (image, text) "
           "<i>pair</i> once and groups them by <i>image</i> (image id = SHA-224 of the URL without TAB and "
           "space). The duplicate factor is occurrences per image. Read from the release's "
           "<code>stats/index.json</code> and <code>entry_counts/</code> only.</p>",
           "<dl>%s</dl>" % "".join("<dt>%s</dt><dd>%s</dd>" % (_e(k), _e(v)) for k, v in info)]
    flows = [(scope, _n(o), _n(p), _n(i), _factor(f), _n(n)) for scope, o, p, i, f, n in flow_rows(s)]
    out.append('<h3 id="images-flow">Occurrences &rarr; distinct pairs &rarr; images</h3>%s' % _table(
        ["scope", "occurrences", "distinct pairs", "images", "duplicate factor", "images new to the index"],
        flows, numeric=(1, 2, 3, 4, 5)))
    hist = [(index_schema.release_name(r), cr, _n(o), _n(p), _n(i), _n(np_), _n(ni), _n(ip), _n(ii))
            for r, cr, o, p, i, np_, ni, ip, ii in history_rows(s)]
    out.append('<h3 id="images-history">Release sizes over the history</h3>%s' % (_table(
        ["release", "crawls merged", "occurrences", "distinct pairs", "images", "new pairs", "new images",
         "index pairs after", "index images after"], hist, numeric=(2, 3, 4, 5, 6, 7, 8))
        if hist else "<p>No history recorded.</p>"))
    top = s.get("top_repeated") or []
    trows = [(k + 1, _n(x.get("occurrences")), _n(x.get("pairs")), x.get("url", ""), x.get("text") or "",
              x.get("image_id", "")) for k, x in enumerate(top)]
    out.append('<h3 id="images-repeated">Most repeated images (boilerplate)</h3>%s' % (_table(
        ["#", "occurrences", "distinct texts", "image URL", "a text", "image id"], trows, numeric=(0, 1, 2),
        classes={3: "url", 4: "text"}) if trows else "<p>None listed.</p>"))
    diff = b.get("diff")
    if isinstance(diff, dict):
        drows = [(k, _n(diff.get(k))) for k in ("added", "removed", "kept", "text_changed") if k in diff]
        out.append('<h3 id="images-diff">Diff against the previous curated set</h3><p>Images added '
                   '(<code>diff/added/</code>, ready for img2dataset), removed (<code>diff/removed/</code>), kept, '
                   'and kept with another text.</p>%s' % _table(["images", "count"], drows, numeric=(1,)))
    out.append(_dedup_html(d, b))
    return "".join(out) + "</section>"


def _dedup_html(d: dict, b: dict) -> str:
    head = '<h3 id="images-dedup">Entry counts with and without de-duplication</h3>'
    if "count" not in d:
        return head + "<p>No entry_counts/ in the release.</p>"
    t = float(b["t"]) if b.get("t") is not None else None
    tw = float(b["t_without_dedup"]) if b.get("t_without_dedup") is not None else None
    e = dedup_effect(d["count"], d["occurrences"], t, tw)
    rows = [("total matches (sum of counts)",) + tuple(_n(x) for x in e["total"]),
            ("entries matched at least once",) + tuple(_n(x) for x in e["matched"])]
    if t is not None:
        (hc, sc, tc), (ho, so, to) = e["at_t"]
        rows += [("head entries (count > t = %s)" % _n(t), _n(hc), _n(ho)),
                 ("share of matches in head entries at t = %s" % _n(t), _pct(sc), _pct(so)),
                 ("tail share at t = %s (matches in entries with count < t)" % _n(t), _pct(tc), _pct(to))]
    if "own_t" in e:
        (hc, sc, tc), (ho, so, to) = e["own_t"]
        rows += [("t (each chosen on its own counts)", _n(t), _n(tw)),
                 ("head entries at that t", _n(hc), _n(ho)), ("tail share at that t", _pct(tc), _pct(to))]
    lead = ("<p>Per entry, <code>count</code> counts distinct (image, text) pairs (section 9) and "
            "<code>occurrences</code> counts pool rows (section 5, MetaCLIP v1 as written). The gap is the "
            "matches repeated images add.")
    if tw is not None and t is not None:
        lead += " Boilerplate moved t from <b>%s</b> (without de-duplication) to <b>%s</b> (%s)." % (
            _e(_n(tw)), _e(_n(t)), _e("%+.2f%%" % (100.0 * (t - tw) / tw) if tw else "n/a"))
    out = [head, lead + "</p>", _table(["quantity", "with de-duplication (count)",
                                        "without (occurrences)"], rows, numeric=(1, 2))]
    inf = [(i, name, _n(c), _n(o), _factor(r)) for i, name, c, o, r in inflated(d)]
    if inf:
        out.append("<p>Entries with the most matches from repeated images (occurrences &minus; count):</p>%s"
                   % _table(["entry id", "entry", "count", "occurrences", "occurrences / count"], inf,
                            numeric=(0, 2, 3, 4)))
    return "".join(out)


def index_only_sections(run_dir: str, balance: dict, d: dict) -> list[str]:
    """The page of a balance output over an index (no stage-1 outputs of its own): what
    ``stats/balance.json`` says, then the index section."""
    t_src = balance.get("t_source", "?")
    info = [("Run folder", run_dir), ("Balanced", "image index %s, release %s" % (
        d["path"], index_schema.release_name(d["release"]) if d.get("release") is not None else "?")),
        ("De-duplication", balance.get("dedup", "?")), ("Threshold t", "%s (%s)" % (_n(balance.get("t")), t_src)),
        ("Seed", balance.get("seed", "?")), ("Curated rows", _n(balance.get("curated_rows")))]
    if balance.get("expected_size") is not None:
        info.append(("Curated rows (expected)", _n(round(float(balance["expected_size"]), 2))))
    return ["<header><h1>MetaCLIP curation report</h1><p>A balance over an image index: the curated set holds "
            "each image at most once. The stage-1 pages (funnel, pool samples, LID) are in the run folders "
            "of the pools merged into the index.</p><dl>%s</dl></header>"
            % "".join("<dt>%s</dt><dd>%s</dd>" % (_e(k), _e(v)) for k, v in info), section(d)]


__all__ = ["locate", "load", "section", "flow_rows", "history_rows", "dedup_effect", "inflated",
           "index_only_sections"]
