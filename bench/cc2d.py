"""cc2dataset in its own venv (bench/work/cc2d-venv), kept out of the project's .venv."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from bench.corpus import WORK

VERSION = "1.5.0"
VENV = os.path.join(WORK, "cc2d-venv")
PY = os.path.join(VENV, "bin", "python")

# cc2dataset.main.process_wat(path, "image") is its per-WAT-file function (the body of its
# Spark tasks): read the file into memory, FastWARC + simdjson over the metadata records,
# IMG@/src links with a non-empty alt, urljoin for non-absolute URLs, md5 uid per link.
CHILD = r"""
import json, sys, time, resource
from loguru import logger
logger.remove()
from cc2dataset.main import process_wat
best = None
for _ in range(int(sys.argv[2])):
    c0, w0 = time.process_time(), time.perf_counter()
    n = sum(1 for _ in process_wat(sys.argv[1], "image"))
    c, w = time.process_time() - c0, time.perf_counter() - w0
    if best is None or c < best[1]:
        best = (n, c, w)
print("BENCH-RESULT " + json.dumps({"links": best[0], "cpu": best[1], "wall": best[2],
      "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}))
"""


def ensure_venv(log=print) -> str | None:
    """The venv's python, installing cc2dataset from PyPI on first use; None if that fails."""
    stamp = os.path.join(VENV, ".installed-" + VERSION)
    if os.path.exists(stamp):
        return PY
    log("installing cc2dataset==%s into %s (first run only)" % (VERSION, VENV))
    try:
        subprocess.run([sys.executable, "-m", "venv", "--clear", VENV], check=True)
        subprocess.run([PY, "-m", "pip", "install", "-q", "cc2dataset==" + VERSION], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except (subprocess.CalledProcessError, OSError) as exc:
        log("cc2dataset could not be installed: %s" % exc)
        return None
    open(stamp, "w").close()
    return PY


def versions() -> dict:
    out = subprocess.run([PY, "-c", "import importlib.metadata as m, json; print(json.dumps({p: m.version(p) "
                          "for p in ('cc2dataset', 'fastwarc', 'pysimdjson', 'pyspark')}))"],
                         capture_output=True, text=True)
    return json.loads(out.stdout) if out.returncode == 0 else {}


def run(wat: str, reps: int = 2) -> dict:
    proc = subprocess.run([PY, "-c", CHILD, wat, str(reps)], capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith("BENCH-RESULT "):
            return json.loads(line[13:])
    raise RuntimeError("cc2dataset run failed: %s" % proc.stderr[-2000:])
