"""Finding the LID model and the metadata where a job runs (driver or executor).

``Config.data_files`` says how they travel:

- ``url`` (default): ``lid.model`` / ``match.metadata`` are read from their path or URL
  (local path, ``file://``, ``s3://``, ``gs://``, ``https://``); remote files are copied
  once per process into a local cache folder (the fastText model must be a local file).
- ``sparkfiles``: they are also shipped with ``spark-submit --files URL,...`` and each
  executor uses its local copy, found by file name with ``SparkFiles.get(name)``.

The driver checks everything before Spark starts, so it always resolves with
``driver_path``: a copy in the working directory (YARN/Kubernetes cluster mode localises
``--files`` there) when ``data_files`` is ``sparkfiles``, else the path/URL itself.
Spark is imported lazily and only inside tasks (``executor_path``); that is why this
lives with the Spark glue in jobs/ (importable as ``metaclip_spark.spark.sparkfiles``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import threading

from metaclip_spark.steps.language import LanguageId

MODES = ("url", "sparkfiles")
_lock = threading.Lock()


class DataFileError(FileNotFoundError):
    """A data file that cannot be found or fetched."""


def is_remote(uri: str) -> bool:
    return "://" in uri and not uri.startswith("file://")


def file_name(uri: str) -> str:
    """The name ``--files`` gives a shipped file: the last path component (no #alias)."""
    return uri.split("#", 1)[0].rstrip("/").rsplit("/", 1)[-1]


def cache_folder() -> str:
    return os.environ.get("METACLIP_DATA_CACHE") or os.path.join(tempfile.gettempdir(), "metaclip-data")


def _copy_remote(uri: str, dest: str) -> None:
    """Stream ``uri`` into ``dest``: gs:// through pyarrow, the rest through metaclip_spark.inputs.io."""
    if uri.startswith("gs://"):
        from metaclip_spark.run.outputs import resolve

        fs, path = resolve(uri)
        src = fs.open_input_stream(path)
    else:
        from metaclip_spark.inputs.io import open_binary

        src = open_binary(uri)
    with src, open(dest, "wb") as out:
        shutil.copyfileobj(src, out, 4 << 20)


def fetch(uri: str) -> str:
    """A local path holding ``uri``: the path itself when local, else a copy made once per
    process (and reused by later processes) under ``cache_folder()``."""
    if not uri:
        raise DataFileError("no data file given")
    if uri.startswith("file://"):
        return uri[len("file://"):]
    if not is_remote(uri):
        return uri
    key = hashlib.sha1(uri.encode("utf-8")).hexdigest()[:16]
    dest = os.path.join(cache_folder(), key, file_name(uri))
    with _lock:
        if os.path.isfile(dest):
            return dest
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        tmp = "%s.%d.tmp" % (dest, os.getpid())
        try:
            _copy_remote(uri, tmp)
            os.replace(tmp, dest)
        except Exception as exc:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise DataFileError("cannot fetch %s: %s: %s" % (uri, type(exc).__name__, exc)) from exc
    return dest


def driver_path(uri: str, mode: str = "url") -> str:
    """Local path of a data file on the driver, before Spark starts."""
    if mode == "sparkfiles":
        local = os.path.join(os.getcwd(), file_name(uri))
        if os.path.isfile(local):
            return local
    return fetch(uri)


def executor_path(uri: str, mode: str = "url") -> str:
    """Local path of a data file inside a task: its ``--files`` copy when ``mode`` is
    ``sparkfiles`` (an error when it was not shipped), else ``fetch(uri)``."""
    if mode == "sparkfiles":
        from pyspark import SparkFiles

        name = file_name(uri)
        try:
            path = SparkFiles.get(name)
        except Exception as exc:  # no SparkFiles root (not inside a Spark job)
            raise DataFileError("%s: data_files is sparkfiles but SparkFiles is unavailable: %s"
                                % (name, exc)) from None
        if not os.path.isfile(path):
            raise DataFileError("%s was not shipped with spark-submit --files (data_files: sparkfiles; "
                                "looked for %s)" % (name, path))
        return path
    return fetch(uri)


class ShippedLanguageId(LanguageId):
    """A LanguageId whose model path is resolved where it runs: the driver checked
    ``driver_model``; a task uses ``executor_path(uri, mode)``. Picklable."""

    def __init__(self, uri: str, driver_model: str, threshold: float, mode: str = "url"):
        super().__init__(driver_model, threshold)
        self.uri, self.mode, self._resolved = uri, mode, False

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_resolved"] = False          # resolve again on the receiving side
        return state

    def predict(self, texts):
        if not self._resolved:
            if self.mode == "sparkfiles" or is_remote(self.uri):
                self.model_path = executor_path(self.uri, self.mode)
            self._resolved = True
        return super().predict(texts)


def language_id(uri: str, driver_model: str, threshold: float, mode: str = "url") -> LanguageId:
    """The LanguageId to hand to tasks (see ShippedLanguageId)."""
    if mode not in MODES:
        raise ValueError("data_files must be one of %s, got %r" % (", ".join(MODES), mode))
    return ShippedLanguageId(uri, driver_model, threshold, mode)
