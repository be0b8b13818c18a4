"""The index folder (docs/index.md "Layout"): its marker, releases, CURRENT. Spark-free.

- ``INDEX/_metaclip_index.json`` fixes buckets, max_texts_per_image and the metadata entries
  (sha256 of the entry list) when the index is created; a merge of pools matched against other
  metadata is refused before any work.
- ``INDEX/releases/NNNNN/`` is one release, finished when its ``_SUCCESS`` is there;
  ``INDEX/CURRENT`` names the last finished release and is written after it.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from metaclip_spark.index.merge import with_languages
from metaclip_spark.index.schema import BUCKET_RE, CURRENT, INDEX_MARKER, RELEASE_RE, bucket_name, release_name
from metaclip_spark.run import outputs
from metaclip_spark.run.config import ConfigError
from metaclip_spark.run.redact import scrub

__all__ = ["entries_sha256", "metadata_sha256", "open_index", "read_marker", "current", "write_current", "release_dir",
           "bucket_uri", "read_bucket", "release_stats", "finished", "adopt_finished", "releases"]


def entries_sha256(entries: list[str]) -> str:
    """sha256 of the metadata entry list (JSON, in entry-id order)."""
    return hashlib.sha256(json.dumps(list(entries), ensure_ascii=False, separators=(",", ":"))
                          .encode("utf-8")).hexdigest()


def metadata_sha256(entries, space=None) -> str:
    """What an index is tied to (``entries``: a list or an Arrow string array per global id).
    English (``space`` None or only en): :func:`entries_sha256` as before worldwide mode. Worldwide,
    per language in LanguageSpace order: sha256 over ``json(lang) + "\n"``, the entries' UTF-8 byte
    lengths (little-endian int64, -1 for a missing entry) and their bytes (no Python strings: 15M
    entries hash in a second; the same entries under other languages are other metadata)."""
    arr = entries if isinstance(entries, (pa.Array, pa.ChunkedArray)) else pa.array(list(entries), pa.string())
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if space is None or space.languages in ((), ("en",)):
        return entries_sha256(arr.to_pylist())
    h = hashlib.sha256()
    for k, (off, n) in zip(space.languages, zip(space.offsets.tolist(), space.sizes.tolist())):
        part = arr.slice(off, n).cast(pa.large_string())
        h.update(json.dumps(k).encode("utf-8") + b"\n")
        h.update(pc.fill_null(pc.binary_length(part), -1).to_numpy(zero_copy_only=False).astype("<i8").tobytes())
        if len(part):
            o = np.frombuffer(part.buffers()[1], np.int64)[part.offset:part.offset + len(part) + 1]
            h.update(memoryview(part.buffers()[2] or b"")[int(o[0]):int(o[-1])])
    return h.hexdigest()


def read_marker(index: str) -> dict | None:
    uri = outputs.join(index, INDEX_MARKER)
    return json.loads(outputs.read_text(uri)) if outputs.exists(uri) else None


def open_index(index: str, buckets: int, max_texts: int, entries_sha: str, n_entries: int) -> dict:
    """The index's marker: read (and the entries checked) or written for a new index into a
    new or empty folder. Buckets and max_texts_per_image of an existing index are its own."""
    marker = read_marker(index)
    if marker is None:
        fs, path = outputs.resolve(index)
        info = fs.get_file_info(path)
        if info.type == pafs.FileType.File:
            raise ConfigError("--index %s is a file, not a folder" % scrub(index))
        if info.type == pafs.FileType.Directory:
            names = [e.base_name for e in fs.get_file_info(pafs.FileSelector(path, recursive=False))
                     if not e.base_name.startswith((".tmp-", "_metaclip_lock"))]
            if names:
                raise ConfigError("--index %s is not empty (%s) and is not an image index (no %s): choose a new "
                                  "or empty folder" % (scrub(index), ", ".join(sorted(names)[:5]), INDEX_MARKER))
        if buckets <= 0:
            raise ConfigError("index.buckets must be > 0, got %r" % buckets)
        if max_texts < 64:
            raise ConfigError("index.max_texts_per_image must be >= 64, got %r" % max_texts)
        marker = {"tool": "metaclip-spark", "buckets": int(buckets), "max_texts_per_image": int(max_texts),
                  "entries_sha256": entries_sha, "entries": int(n_entries)}
        outputs.write_text(outputs.join(index, INDEX_MARKER), json.dumps(marker, indent=2) + "\n")
        return marker
    if marker.get("entries_sha256") != entries_sha:
        raise ConfigError("the pools were matched against other metadata entries than the index %s "
                          "(entries sha256 %s, index %s): counts cannot be combined; use another index folder"
                          % (scrub(index), entries_sha[:12], str(marker.get("entries_sha256"))[:12]))
    return marker


def current(index: str) -> int | None:
    uri = outputs.join(index, CURRENT)
    return int(outputs.read_text(uri).strip()) if outputs.exists(uri) else None


def write_current(index: str, release: int) -> None:
    outputs.write_text(outputs.join(index, CURRENT), release_name(release) + "\n")


def release_dir(index: str, release: int) -> str:
    return outputs.join(index, "releases", release_name(release))


def bucket_uri(index: str, release: int, bucket: int) -> str:
    return outputs.join(release_dir(index, release), "images", bucket_name(bucket))


def read_bucket(index: str, release: int | None, bucket: int):
    """The bucket's rows in ``release`` (None: no release yet -> None)."""
    if release is None:
        return None
    return read_bucket_file(bucket_uri(index, release, bucket))


def read_bucket_file(uri: str, columns=None):
    """A whole bucket file (an image's rows are never split), on one thread (one core per task);
    a file written before worldwide mode reads with text_field ``alt`` and lang ``en``."""
    fs, path = outputs.resolve(uri)
    with fs.open_input_file(path) as fh:
        f = pq.ParquetFile(fh)
        names = f.schema_arrow.names
        table = f.read(columns=None if columns is None else [c for c in columns if c in names], use_threads=False)
    if "lang" in names:
        return table
    table = with_languages(table)
    return table.select(list(columns)) if columns is not None else table


def bucket_files(release_folder: str) -> list[str]:
    """The bucket files of a release folder, in bucket order."""
    files = outputs.list_files(outputs.join(release_folder, "images"), ".parquet")
    return [f for f in files if BUCKET_RE.match(f.rsplit("/", 1)[-1])]


def finished(index: str, release: int) -> bool:
    return outputs.exists(outputs.join(release_dir(index, release), "_SUCCESS"))


def release_stats(index: str, release: int | None) -> dict | None:
    if release is None:
        return None
    return json.loads(outputs.read_text(outputs.join(release_dir(index, release), "stats", "index.json")))


def releases(index: str) -> list[int]:
    """Release numbers that have a folder (finished or not), ascending."""
    fs, path = outputs.resolve(outputs.join(index, "releases"))
    if fs.get_file_info(path).type != pafs.FileType.Directory:
        return []
    return sorted(int(e.base_name) for e in fs.get_file_info(pafs.FileSelector(path, recursive=False))
                  if e.type == pafs.FileType.Directory and RELEASE_RE.match(e.base_name))


def adopt_finished(index: str) -> int | None:
    """CURRENT after a merge killed between its release's ``_SUCCESS`` and CURRENT: moved to the
    newest finished release. Returns the current release (None: the index has none)."""
    cur = current(index)
    done = [r for r in releases(index) if finished(index, r) and (cur is None or r > cur)]
    if done:
        cur = done[-1]
        write_current(index, cur)
    return cur


def open_release(index: str, release: int | None = None) -> tuple[str, int]:
    """(release folder, number) of a finished release: ``release`` or the index's CURRENT; a
    ConfigError that says what is missing otherwise (the one place a release is looked up)."""
    if release is None:
        uri = outputs.join(index, CURRENT)
        if not outputs.exists(uri):
            raise ConfigError("%s is not an image index with a finished release (no %s): build one with "
                              "`metaclip-spark index --pool RUN --index %s`" % (index, CURRENT, index))
        name = outputs.read_text(uri).strip()
        if not RELEASE_RE.match(name):
            raise ConfigError("%s/%s holds %r, not a release number" % (index, CURRENT, name))
        release = int(name)
    folder = release_dir(index, release)
    if not finished(index, release):
        raise ConfigError("release %s of the index %s is %s (no _SUCCESS)" % (
            release_name(release), index, "unfinished" if outputs.exists(folder) else "missing"))
    return folder, int(release)
