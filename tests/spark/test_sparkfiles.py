"""metaclip_spark.spark.sparkfiles: data files found by URL (fetched once into a cache) or
through SparkFiles (shipped with --files). The https case uses a real local HTTP server;
the SparkFiles case sets the root directory exactly as pyspark's worker does."""

import functools
import http.server
import os
import pickle
import shutil
import threading

import pytest

from metaclip_spark.metadata import defaults
from metaclip_spark.spark import sparkfiles
from metaclip_spark.spark.sparkfiles import DataFileError


@pytest.fixture
def http_dir(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield root, "http://127.0.0.1:%d/" % server.server_address[1]
    server.shutdown()


@pytest.fixture
def worker_files(tmp_path):
    """SparkFiles as inside a Python worker: a root directory holding the --files copies."""
    from pyspark import SparkFiles

    root = tmp_path / "sparkfiles"
    root.mkdir()
    saved = (SparkFiles._root_directory, SparkFiles._is_running_on_worker)
    SparkFiles._root_directory, SparkFiles._is_running_on_worker = str(root), True
    yield root
    SparkFiles._root_directory, SparkFiles._is_running_on_worker = saved


def test_local_paths_are_returned_as_is(tmp_path):
    p = tmp_path / "m.json"
    p.write_text("[]")
    assert sparkfiles.fetch(str(p)) == str(p)
    assert sparkfiles.fetch("file://" + str(p)) == str(p)
    assert sparkfiles.driver_path(str(p), "url") == str(p)
    assert sparkfiles.file_name("s3://b/x/lid.176.bin") == "lid.176.bin"
    assert sparkfiles.file_name("gs://b/x/lid.176.bin#alias") == "lid.176.bin"


def test_remote_fetch_is_cached(http_dir, tmp_path, monkeypatch):
    root, base = http_dir
    monkeypatch.setenv("METACLIP_DATA_CACHE", str(tmp_path / "cache"))
    (root / "metadata.json").write_text('["cat", "dog"]')
    path = sparkfiles.fetch(base + "metadata.json")
    assert path.startswith(str(tmp_path / "cache")) and path.endswith("/metadata.json")
    assert open(path).read() == '["cat", "dog"]'
    (root / "metadata.json").write_text('["changed"]')
    assert sparkfiles.fetch(base + "metadata.json") == path          # cached: fetched once
    assert open(path).read() == '["cat", "dog"]'
    with pytest.raises(DataFileError, match="missing.json"):
        sparkfiles.fetch(base + "missing.json")
    assert not [n for n in os.listdir(os.path.dirname(sparkfiles.fetch(base + "metadata.json")))
                if n.endswith(".tmp")]


def test_driver_uses_a_localised_copy_in_cluster_mode(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "metadata.json").write_text("[]")
    assert sparkfiles.driver_path("s3://nowhere/x/metadata.json", "sparkfiles") == str(tmp_path / "metadata.json")


def test_executor_path_sparkfiles(worker_files):
    with pytest.raises(DataFileError, match="not shipped with spark-submit --files"):
        sparkfiles.executor_path("s3://b/data/lid.176.ftz", "sparkfiles")
    shutil.copy(defaults.default_lid_model_path(), worker_files / "lid.176.ftz")
    assert sparkfiles.executor_path("s3://b/data/lid.176.ftz", "sparkfiles") == str(worker_files / "lid.176.ftz")


def test_shipped_language_id_resolves_where_it_runs(worker_files):
    model = defaults.default_lid_model_path()
    lid = sparkfiles.language_id("s3://b/data/lid.176.ftz", model, 0.5, "sparkfiles")
    assert lid.model_path == model                     # what the driver checked
    shutil.copy(model, worker_files / "lid.176.ftz")
    task_side = pickle.loads(pickle.dumps(lid))         # as a task receives it
    labels, scores = task_side.predict(["a photo of a red car parked on the street"])
    assert labels == ["en"] and scores[0] > 0.5
    assert task_side.model_path == str(worker_files / "lid.176.ftz")
    # url mode with a local path: used as is
    local = sparkfiles.language_id(model, model, 0.5, "url")
    assert pickle.loads(pickle.dumps(local)).predict(["hello world"])[0] == ["en"]
    with pytest.raises(ValueError):
        sparkfiles.language_id(model, model, 0.5, "ftp")
