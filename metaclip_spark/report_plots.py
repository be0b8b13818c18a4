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


def cumulative_counts(counts, t: float | None = None, balanced=None) -> bytes:
    """The paper's Fig. 2: cumulative matches over entries sorted from tail to head.

    ``counts``: raw count per entry; ``balanced``: actual matches per entry among the
    curated pairs (same order as ``counts``). With ``t`` the expected balanced curve
    ``min(count, t)`` and a vertical line where the sorted counts cross t are drawn.
    Left panel: each curve as a share of its own total (where the matches sit);
    right panel: absolute cumulative matches, log y."""
    c = np.asarray(counts, dtype=np.int64)
    order = np.argsort(c, kind="stable")
    sc = c[order]
    x = np.arange(1, sc.size + 1)
    curves = [("raw counts", np.cumsum(sc), RAW, "-", 2)]
    if balanced is not None:
        b = np.asarray(balanced, dtype=np.int64)[order]
        curves.append(("actual balanced (curated set)", np.cumsum(b), ACTUAL, "-", 3))
    if t is not None:
        curves.append(("expected balanced: min(count, t)", np.cumsum(np.minimum(sc, t)), EXPECTED, "--", 4))
    fig = Figure(figsize=(12, 4.6))
    idx = _thin(sc.size)
    for ax, log in zip(fig.subplots(1, 2), (False, True)):
        for label, y, color, style, z in curves:
            y = y.astype(np.float64)
            if not log:
                y = 100.0 * y / y[-1] if y.size and y[-1] > 0 else y
            ax.plot(x[idx], y[idx], style, color=color, label=label, linewidth=1.8, zorder=z)
        if t is not None and sc.size:
            cross = int(np.searchsorted(sc, t, side="right"))   # entries with count <= t
            ax.axvline(cross + 0.5, color=T_COLOR, linestyle=":", linewidth=1.5,
                       label="t = %s (%s head entries to the right)" % (_human(t), _human(sc.size - cross)))
        ax.set_xlabel("entries sorted by count, tail (rare) -> head (frequent)")
        ax.xaxis.set_major_formatter(FuncFormatter(_human))
        if log:
            if any(y.size and y[-1] > 0 for _, y, *_ in curves):
                ax.set_yscale("log", nonpositive="mask")
            ax.set_ylabel("cumulative matches (log)")
            ax.set_title("Cumulative matches (log scale)")
        else:
            ax.set_ylabel("% of the curve's total matches")
            ax.set_ylim(-2, 102)
            ax.set_title("Cumulative share of matches")
        ax.grid(True, alpha=0.3)
    fig.axes[0].legend(loc="upper left", fontsize=9)
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
