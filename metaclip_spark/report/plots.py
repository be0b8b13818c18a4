"""PNG figures for the run report (matplotlib Agg, no pyplot global state).

Every function returns the PNG as bytes. Output is deterministic: no timestamp or
software tag in the PNG metadata, fixed size and DPI.
"""

from __future__ import annotations

import io

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

DPI = 100
RAW, EXPECTED, ACTUAL, T_COLOR = "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def _human(x, _pos=None) -> str:
    for div, unit in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return ("%.1f" % (x / div)).rstrip("0").rstrip(".") + unit
    return "%g" % x


def _thin(n: int, max_points: int = 4000) -> np.ndarray:
    """Indexes to plot for a curve of n points (all of them when small)."""
    if n <= max_points:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max_points).round().astype(np.int64))


def fig2_curves(counts, t: float | None = None, balanced=None) -> dict:
    """The data of the paper's Fig. 2 over the entries that matched at least once.

    Entries with count 0 add nothing to a cumulative sum; on a run much smaller than the
    metadata they are nearly all of it and squeeze the curve into a vertical line at the
    right edge, so they are left out (``never`` says how many). ``order``: indexes of the
    matched entries sorted by count ascending (tail -> head, ties by position);
    ``raw``/``balanced``/``expected``: cumulative sums over that order of the counts, the
    actual balanced counts and ``min(count, t)``; ``cross``: matched entries with
    count <= t (the head starts after them)."""
    c = np.asarray(counts, dtype=np.int64)
    matched = np.flatnonzero(c > 0)
    order = matched[np.argsort(c[matched], kind="stable")]
    sc = c[order]
    out = {"order": order, "never": int(c.size - matched.size), "raw": np.cumsum(sc),
           "balanced": None, "expected": None, "cross": None}
    if balanced is not None:
        out["balanced"] = np.cumsum(np.asarray(balanced, dtype=np.int64)[order])
    if t is not None:
        out["expected"] = np.cumsum(np.minimum(sc, t))
        out["cross"] = int(np.searchsorted(sc, t, side="right"))
    return out


def cumulative_counts(counts, t: float | None = None, balanced=None) -> bytes:
    """The paper's Fig. 2: cumulative matches over the matched entries sorted from tail to
    head (see :func:`fig2_curves`). Left: absolute values, linear as in the paper; right:
    the same with a log y axis, where the tail and the balanced curves are readable."""
    d = fig2_curves(counts, t, balanced)
    n = d["order"].size
    x = np.arange(1, n + 1)
    # (label, y, color, style, z, width): the actual balanced curve is drawn wide and light
    # underneath, as it often runs on the raw one (a head entry's texts also hold tail entries)
    curves = [("raw counts (pool)", d["raw"], RAW, "-", 3, 1.6)]
    if d["balanced"] is not None:
        curves.append(("actual balanced (curated set)", d["balanced"], ACTUAL, "-", 2, 4.0))
    if d["expected"] is not None:
        curves.append(("expected balanced: min(count, t)", d["expected"], EXPECTED, "--", 4, 1.8))
    fig = Figure(figsize=(12, 4.6))
    idx = _thin(n)
    for ax, log in zip(fig.subplots(1, 2), (False, True)):
        for label, y, color, style, z, width in curves:
            ax.plot(x[idx], y[idx].astype(np.float64), style, color=color, label=label, linewidth=width, zorder=z,
                    alpha=0.55 if width > 2 else 1.0, marker="." if n <= 60 else None)
        if d["cross"] is not None and n:
            ax.axvline(d["cross"] + 0.5, color=T_COLOR, linestyle=":", linewidth=1.5,
                       label="t = %s (%s head entries to the right)" % (_human(t), _human(n - d["cross"])))
        ax.set_xlabel("matched entries sorted by count, tail (rare) -> head (frequent)")
        ax.xaxis.set_major_formatter(FuncFormatter(_human))
        ax.yaxis.set_major_formatter(FuncFormatter(_human))
        if n:
            ax.set_xlim(0.5, n + 0.5)
        if log:
            if n and d["raw"][-1] > 0:
                ax.set_yscale("log", nonpositive="mask")
            ax.set_title("Cumulative matches (log y)")
        else:
            ax.set_ylim(bottom=0)
            ax.set_title("Cumulative matches (paper Fig. 2)")
        ax.set_ylabel("cumulative matches")
        ax.grid(True, alpha=0.3, which="both" if log else "major")
    fig.suptitle("%s matched entries; %s entries never matched (not shown)" % (format(n, ","), format(d["never"], ",")),
                 fontsize=10)
    fig.axes[0].legend(loc="upper left", fontsize=9)
    fig.tight_layout()
    return _png(fig)


def lid_histogram(edges, hist_en, hist_other, threshold: float) -> bytes:
    """Stacked histogram of the top-label LID score: English top label vs any other."""
    edges = np.asarray(edges, dtype=np.float64)
    width = np.diff(edges)
    fig = Figure(figsize=(12, 3.8))
    ax = fig.subplots()
    en, other = np.asarray(hist_en), np.asarray(hist_other)
    ax.bar(edges[:-1], en, width=width, align="edge", color=RAW, alpha=0.85, label="top label English")
    ax.bar(edges[:-1], other, width=width, align="edge", bottom=en, color="#9e9e9e", alpha=0.85,
           label="top label another language")
    ax.axvline(threshold, color=T_COLOR, linestyle=":", linewidth=2,
               label="threshold %.2f (English below it: lid_low_score)" % threshold)
    ax.set_xlim(0, 1)
    ax.set_xlabel("fastText probability of the top label")
    ax.set_ylabel("pairs")
    ax.set_title("LID scores of the sampled pairs (%s)" % format(int(en.sum() + other.sum()), ","))
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(loc="upper left", fontsize=9)
    fig.tight_layout()
    return _png(fig)


def count_distribution(counts, t: float | None = None) -> bytes:
    """Number of entries per count value, log-log (count-0 entries are in the title)."""
    c = np.asarray(counts, dtype=np.int64)
    values, n = np.unique(c[c > 0], return_counts=True)
    fig = Figure(figsize=(12, 4.2))
    ax = fig.subplots()
    if values.size:
        ax.scatter(values, n, s=10, color=RAW, alpha=0.5, label="entries with exactly this count")
        if values.size > 100:   # the sparse head is a floor of 1s: add an average over log bins
            edges = np.unique(np.geomspace(1, values.max() + 1, 40).astype(np.int64))
            hist, _ = np.histogram(c[c > 0], bins=edges)
            mid, ok = np.sqrt(edges[:-1] * edges[1:]), hist > 0
            ax.plot(mid[ok], hist[ok] / np.diff(edges)[ok], "-", color=EXPECTED, linewidth=2,
                    label="average entries per count value (log bins)")
        ax.set_xscale("log")
        ax.set_yscale("log")
    if t is not None:
        ax.axvline(t, color=T_COLOR, linestyle=":", linewidth=1.5, label="t = %s" % _human(t))
    ax.set_xlabel("count (matches of an entry)")
    ax.set_ylabel("number of entries")
    ax.set_title("Count distribution (%s entries with count 0 not shown)" % format(int((c == 0).sum()), ","))
    ax.grid(True, alpha=0.3, which="both")
    if values.size or t is not None:
        ax.legend(loc="upper right", fontsize=9)
    fig.tight_layout()
    return _png(fig)


def funnel(stages: list[tuple[str, int]], drops: list[tuple[str, int]]) -> bytes:
    """Horizontal bars: items surviving each stage (left) and drops per reason (right)."""
    fig = Figure(figsize=(12, max(3.6, 0.42 * max(len(stages), len(drops), 1) + 1.4)))
    axes = fig.subplots(1, 2)
    for ax, rows, color, title in ((axes[0], stages, RAW, "Surviving items per stage"),
                                   (axes[1], drops, T_COLOR, "Dropped, per reason")):
        labels = [r[0] for r in rows][::-1]
        values = [max(int(r[1]), 0) for r in rows][::-1]
        ypos = np.arange(len(rows))
        ax.barh(ypos, values, color=color, alpha=0.8)
        ax.set_yticks(ypos)
        ax.set_yticklabels(labels, fontsize=9)
        positive = [v for v in values if v > 0]
        if positive and max(positive) / min(positive) > 100:
            ax.set_xscale("log")
            ax.set_xlim(min(positive) * 0.5, max(positive) * 8)
        elif positive:
            ax.set_xlim(0, max(positive) * 1.25)
        for y, v in zip(ypos, values):
            if v > 0:
                ax.text(v, y, " " + format(v, ","), va="center", fontsize=8)
        ax.set_title(title + (" (log scale)" if ax.get_xscale() == "log" else ""))
        ax.xaxis.set_major_formatter(FuncFormatter(_human))
        ax.grid(True, axis="x", alpha=0.3)
        if not rows:
            ax.text(0.5, 0.5, "none", transform=ax.transAxes, ha="center")
    fig.tight_layout()
    return _png(fig)
