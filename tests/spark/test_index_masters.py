"""`metaclip-spark index` end to end, in its own process, with one executor core and with two:
the same pools give byte-identical releases (bucket files, entry counts) under local[1] and
local[2], a second merge adds a release, and merging a pool again is a no-op with a message.

Each run is a fresh Spark application (another master needs another JVM), so the CLI runs as
a subprocess, as spark-submit would run jobs/index.py."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

from tests.spark.test_index_job import write_pool


def index_cli(*args, timeout=600):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, "-m", "metaclip_spark.cli", "-q", "index", *args], capture_output=True,
                          text=True, env=env, timeout=timeout)


def release_digests(index: str, release: str) -> dict:
    root = os.path.join(index, "releases", release)
    out = {}
    for folder in ("images", "entry_counts"):
        for name in sorted(os.listdir(os.path.join(root, folder))):
            with open(os.path.join(root, folder, name), "rb") as fh:
                out[folder + "/" + name] = hashlib.sha256(fh.read()).hexdigest()
    return out


def test_local1_and_local2_give_identical_releases(tmp_path):
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    write_pool(a, seed=1)
    write_pool(b, seed=2, crawl="CC-MAIN-2024-18")
    digests = {}
    for master in ("local[1]", "local[2]"):
        index = str(tmp_path / ("index-" + master[6]))
        for pool in (a, b):
            p = index_cli("--pool", pool, "--index", index, "--master", master, "--buckets", "5")
            assert p.returncode == 0, p.stderr[-2000:]
        assert open(os.path.join(index, "CURRENT")).read() == "00002\n"
        digests[master] = {r: release_digests(index, r) for r in ("00001", "00002")}
        stats = json.load(open(os.path.join(index, "releases", "00002", "stats", "index.json")))
        assert [p["release"] for p in stats["pools"]] == [1, 2]
        assert [h["release"] for h in stats["history"]] == [1, 2]
    assert digests["local[1]"] == digests["local[2]"]
    assert len(digests["local[1]"]["00002"]) == 6            # 5 bucket files + entry counts
    # the same pool again: no new release, a message, exit 0
    index = str(tmp_path / "index-2")
    p = index_cli("--pool", a, "--index", index, "--master", "local[1]", "--buckets", "5")
    assert p.returncode == 0, p.stderr[-2000:]
    assert "already in the index" in p.stdout
    assert open(os.path.join(index, "CURRENT")).read() == "00002\n"
    assert sorted(os.listdir(os.path.join(index, "releases"))) == ["00001", "00002"]
