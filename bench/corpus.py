"""Benchmark inputs, generated once and cached under bench/work/ (keyed by the arguments)."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.path.join(ROOT, "bench", "work")
SHARED = os.path.abspath(os.path.join(ROOT, "..", "shared"))


def shared(*parts: str) -> str | None:
    path = os.path.join(SHARED, *parts)
    return path if os.path.exists(path) else None


def ensure_corpus(pages: int, seed: int = 1, log=print) -> dict:
    """{"dir", "wat", "warc", "generator", "gen_seconds"} for one WARC + WAT of ``pages`` captures."""
    tool = shared("tools", "make_cc_corpus.py")
    gen = "make_cc_corpus" if tool else "metaclip_spark.synth"
    out = os.path.join(WORK, "corpus-%s-p%d-s%d-f1" % (gen, pages, seed))
    done = os.path.join(out, ".done")
    if not os.path.exists(done):
        tmp = out + ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        cmd = ([sys.executable, tool, "--quiet"] if tool else [sys.executable, "-m", "metaclip_spark.synth"])
        cmd += ["--pages", str(pages), "--seed", str(seed), "--out", tmp, "--files", "1"]
        log("generating corpus (%s, %d captures; cached afterwards): %s" % (gen, pages, " ".join(cmd)))
        start = time.perf_counter()
        subprocess.run(cmd, check=True, cwd=ROOT)
        with open(os.path.join(tmp, ".done"), "w") as fh:
            fh.write("%.1f\n" % (time.perf_counter() - start))
        shutil.rmtree(out, ignore_errors=True)
        os.rename(tmp, out)
    wat = sorted(glob.glob(os.path.join(out, "*.wat.gz")))[0]
    warc = sorted(f for f in glob.glob(os.path.join(out, "*.warc.gz")) if not f.endswith(".wat.gz"))[0]
    with open(done) as fh:
        gen_seconds = float(fh.read().strip() or 0)
    return {"dir": out, "wat": wat, "warc": warc, "generator": gen, "gen_seconds": gen_seconds}


def copies(path: str, n: int) -> list[str]:
    """``n`` distinct names (symlinks) for one input, for multi-file runs."""
    folder = os.path.join(WORK, "copies")
    os.makedirs(folder, exist_ok=True)
    base = os.path.basename(path)
    out = []
    for i in range(n):
        link = os.path.join(folder, "copy%d-%s" % (i, base))
        if os.path.lexists(link):
            os.unlink(link)
        os.symlink(os.path.abspath(path), link)
        out.append(link)
    return out
