"""Shared test fixtures. Tests that use ../shared skip cleanly where it is absent."""

import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
SHARED = pathlib.Path(os.environ.get("METACLIP_SHARED", ROOT.parent / "shared"))


def shared_path(*parts: str) -> pathlib.Path:
    """Path under ../shared, or skip the test (with the reason) when it is absent."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip("shared data not available: %s" % p)
    return p


@pytest.fixture
def shared():
    return shared_path


@pytest.fixture(scope="session")
def spark():
    """One real local SparkSession for the whole test session (startup takes 10-30 s):
    2 worker threads, and up to 4 attempts per task so retry behaviour can be tested."""
    from metaclip_spark.run.config import SparkConfig
    from metaclip_spark.spark.session import get_spark

    session = get_spark(SparkConfig(master="local[2,4]", app_name="metaclip-spark-tests",
                                    conf={"spark.sql.shuffle.partitions": "4"}))
    yield session
    session.stop()


@pytest.fixture
def spark_work_cleanup():
    """Remove what local-cluster runs of the test left under pyspark/work/ (each executor
    unpacks the job archive there: ~590 MB per run)."""
    import shutil

    import pyspark

    work = os.path.join(os.path.dirname(pyspark.__file__), "work")
    before = set(os.listdir(work)) if os.path.isdir(work) else set()
    yield work
    for app in (set(os.listdir(work)) if os.path.isdir(work) else set()) - before:
        shutil.rmtree(os.path.join(work, app), ignore_errors=True)
