"""Run folders: where a stage may write, what it owns, who is writing, what it wrote.

Rules every stage follows (driver-side, before Spark starts):

- **Paths are resolved once, on the driver** (:func:`absolute`): a relative local output is
  made absolute here, so executors (whose working directory is elsewhere on a real cluster)
  write where the user asked.
- **A run writes only into a folder that is empty (or new) or already a run folder of this
  project**: :func:`claim` writes the marker ``_metaclip_run.json`` into a new or empty
  folder and refuses any other non-empty folder, ``--overwrite`` or not. Filesystem roots
  and the home folder are refused (:func:`check_location`), and so is an output equal to or
  inside an input folder, or one that contains an input file.
- **Nothing is deleted that the run did not write**: resets and cleanups remove only the
  files a stage writes (fixed names, or the name patterns of its part files and temporaries),
  then the folders those files leave empty (:func:`remove_owned`). A user's ``notes.txt``
  beside them stays.
- **One writer at a time**: :class:`RunLock` (``_metaclip_lock.json``) is held by a running
  command; a second command into the same folder is refused with who holds it. A lock whose
  process is gone (same host) or whose heartbeat is older than ``STALE_SECONDS`` is stale and
  taken over, so a killed run can be rerun at once.
- **Manifests name files relative to the run folder** (:func:`relative`), so a copied or
  moved run folder stays self-contained, and :func:`pool_digest` binds a pool's file list
  and row counts to the entry counts computed from them.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import threading
import time

import pyarrow.fs as pafs

from metaclip_spark.run import outputs
from metaclip_spark.run.config import ConfigError
from metaclip_spark.run.redact import scrub

MARKER = "_metaclip_run.json"
LOCK = "_metaclip_lock.json"
STALE_SECONDS = 600           # a lock not refreshed for this long belongs to a dead run
HEARTBEAT_SECONDS = 60

# Names a stage writes into a folder it owns: its part files and the temporaries of
# outputs.ParquetSink / outputs.write_bytes (".tmp-<12 hex>-<name>").
TEMP_RE = re.compile(r"^\.tmp-[0-9a-f]{12}-.+$")
POOL_PART_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*-[0-9a-f]{12}\.parquet$")   # pipeline.part_name
CURATED_PART_RE = re.compile(r"^part-\d{5}\.parquet$")


def absolute(uri: str) -> str:
    """``uri`` resolved on the driver: local paths absolute and normalised, URIs without a
    trailing slash. Idempotent."""
    if "://" in uri:
        if uri.startswith("file://"):
            return os.path.abspath(uri[len("file://"):])
        return uri.rstrip("/") or uri
    return os.path.abspath(os.path.expanduser(uri))


def relative(run: str, uri: str) -> str:
    """``uri`` (a file inside run folder ``run``) as a path relative to ``run``."""
    root = absolute(run).rstrip("/") + "/"
    full = absolute(uri)
    if not full.startswith(root):
        raise ValueError("%s is not inside the run folder %s" % (scrub(uri), scrub(run)))
    return full[len(root):]


def inside(run: str, name: str) -> str:
    """The URI of manifest entry ``name`` (relative to run folder ``run``). Absolute names
    (manifests of older versions) are refused: they point at whichever run last wrote there."""
    if "://" in name or name.startswith("/") or ".." in name.split("/"):
        raise ConfigError("%s names pool files outside the run folder (%s): it was written by an older "
                          "version; rerun stage 1" % (scrub(run), scrub(name)))
    return outputs.join(run, name)


def pool_digest(files: list[tuple[str, int]]) -> str:
    """sha256 of a pool's (relative file name, rows) list, in name order."""
    h = hashlib.sha256()
    for name, rows in sorted(files):
        h.update(("%s\t%d\n" % (name, rows)).encode("utf-8"))
    return h.hexdigest()


# --- where a run may write ---------------------------------------------------------------

def _is_under(child: str, parent: str) -> bool:
    parent = parent.rstrip("/")
    return child == parent or child.startswith(parent + "/")


def check_location(output: str, input_specs: list[str] = (), input_files: list[str] = ()) -> None:
    """Refuse an output that is a filesystem root, a bucket root, the home folder, equal to
    or inside an input folder, or a folder that holds an input file."""
    out = absolute(output)
    if "://" not in out:
        home = os.path.abspath(os.path.expanduser("~"))
        if out == "/" or os.path.dirname(out) == out or out == home:
            raise ConfigError("refusing --output %s: a filesystem root or home folder; give a folder of its own"
                              % out)
    else:
        scheme, rest = out.split("://", 1)
        if "/" not in rest.strip("/"):
            raise ConfigError("refusing --output %s: a bucket root; give a folder inside it" % scrub(out))
    for spec in input_specs:
        if not spec or any(c in spec for c in "*?[") or spec.endswith((".gz", ".txt", ".paths")):
            continue
        folder = absolute(spec)
        if "://" not in folder and not os.path.isdir(folder):
            continue
        if _is_under(out, folder):
            raise ConfigError("refusing --output %s: it %s the input folder %s" % (
                scrub(out), "is" if out == folder.rstrip("/") else "is inside", scrub(folder)))
    for f in input_files:
        if _is_under(absolute(f), out):
            raise ConfigError("refusing --output %s: it holds the input %s; write to another folder"
                              % (scrub(out), scrub(f)))


def claim(output: str) -> None:
    """Make ``output`` a run folder: write the marker into a new or empty folder; accept a
    folder that has it; refuse any other non-empty folder. This is a run's first write: an
    output that cannot be reached or written (OSError, e.g. pyarrow's for an object store that
    does not answer, PermissionError) is a ConfigError ``cannot write to output ...`` on one line."""
    try:
        _claim(output)
    except OSError as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        reason = re.sub(r"^When [^:]*? (?:key|bucket) '[^']*'(?: in bucket '[^']*')?: ", "", reason)
        raise ConfigError("cannot write to output %s: %s" % (scrub(output), scrub(reason))) from None


def _claim(output: str) -> None:
    fs, path = outputs.resolve(output)
    info = fs.get_file_info(path)
    if info.type == pafs.FileType.File:
        raise ConfigError("--output %s is a file, not a folder" % scrub(output))
    if info.type == pafs.FileType.Directory:
        if fs.get_file_info(path + "/" + MARKER).type == pafs.FileType.File:
            return
        entries = [e for e in fs.get_file_info(pafs.FileSelector(path, recursive=False))
                   if e.base_name != LOCK and not TEMP_RE.match(e.base_name)]
        if entries:
            names = sorted(e.base_name for e in entries)[:5]
            raise ConfigError("--output %s is not empty (%s%s) and is not a metaclip-spark run folder (no %s): "
                              "choose a new or empty folder" % (scrub(output), ", ".join(names),
                                                               ", ..." if len(entries) > 5 else "", MARKER))
    outputs.write_text(outputs.join(output, MARKER), json.dumps({"tool": "metaclip-spark", "layout": 2}) + "\n")


# --- deleting only what a stage wrote ------------------------------------------------------

def remove_owned(folder: str, names: tuple[str, ...] = (), patterns: tuple[re.Pattern, ...] = (),
                 recursive: bool = False) -> int:
    """Delete the files of ``folder`` whose base name is in ``names`` or matches one of
    ``patterns`` (or is one of our temporaries), in sub-folders too with ``recursive``; then
    the folders those deletions left empty. Returns how many files were deleted. Other files stay."""
    fs, path = outputs.resolve(folder)
    if fs.get_file_info(path).type != pafs.FileType.Directory:
        return 0
    infos = fs.get_file_info(pafs.FileSelector(path, recursive=recursive))
    deleted = 0
    touched = set()
    for info in infos:
        if info.type != pafs.FileType.File:
            continue
        base = info.base_name
        if base in names or TEMP_RE.match(base) or any(p.match(base) for p in patterns):
            fs.delete_file(info.path)
            deleted += 1
            d = info.path.rsplit("/", 1)[0]
            while len(d) >= len(path) and d not in touched:      # the folders it leaves, up to ``folder``
                touched.add(d)
                d = d.rsplit("/", 1)[0]
    for d in sorted(touched, key=len, reverse=True):        # deepest first; only those left empty
        if outputs.is_local(fs):
            try:
                os.rmdir(d)
            except OSError:
                pass
        elif not fs.get_file_info(pafs.FileSelector(d, recursive=True)):
            fs.delete_dir(d)
    return deleted


def remove_temporaries(folder: str) -> int:
    """Delete the temporaries a killed run left in ``folder`` (``.tmp-*`` of ours only)."""
    return remove_owned(folder)


def remove_file(uri: str) -> None:
    fs, path = outputs.resolve(uri)
    if fs.get_file_info(path).type == pafs.FileType.File:
        fs.delete_file(path)


# --- one writer at a time -----------------------------------------------------------------

_held: dict[str, list] = {}          # absolute output -> [lock, depth] (re-entrant per process)
_held_guard = threading.Lock()


class RunLock:
    """``with RunLock(output, stage):`` holds ``output/_metaclip_lock.json`` for the command.

    Local folders create the lock with O_EXCL (atomic); object stores write it and read it
    back. Held locks are refreshed every HEARTBEAT_SECONDS. Re-entrant within a process
    (``curate`` runs match then balance into one folder)."""

    def __init__(self, output: str, stage: str):
        self.output = absolute(output)
        self.stage = stage
        self.uri = outputs.join(self.output, LOCK)
        self.token = "%s:%d:%s" % (socket.gethostname(), os.getpid(), os.urandom(6).hex())
        self._stop = threading.Event()
        self._thread = None

    def __enter__(self) -> "RunLock":
        with _held_guard:
            held = _held.get(self.output)
            if held is not None:
                held[1] += 1
                return held[0]
            self._acquire()
            _held[self.output] = [self, 1]
        return self

    def __exit__(self, *exc) -> None:
        with _held_guard:
            held = _held.get(self.output)
            if held is None:
                return
            held[1] -= 1
            if held[1] > 0:
                return
            del _held[self.output]
            held[0]._release()

    def _doc(self) -> dict:
        return {"token": self.token, "host": socket.gethostname(), "pid": os.getpid(), "stage": self.stage,
                "heartbeat": time.time()}

    def _acquire(self) -> None:
        fs, path = outputs.resolve(self.uri)
        fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
        for _ in range(2):
            if outputs.is_local(fs):
                try:
                    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
                except FileExistsError:
                    self._take_over_if_stale()
                    continue
                with os.fdopen(fd, "w") as fh:
                    fh.write(json.dumps(self._doc()))
                break
            if outputs.exists(self.uri):
                self._take_over_if_stale()
                continue
            outputs.write_text(self.uri, json.dumps(self._doc()))
            if json.loads(outputs.read_text(self.uri)).get("token") != self.token:
                continue
            break
        else:
            raise ConfigError(self._busy_message())
        self._thread = threading.Thread(target=self._beat, name="metaclip-lock", daemon=True)
        self._thread.start()

    def _read(self) -> dict | None:
        try:
            return json.loads(outputs.read_text(self.uri))
        except (FileNotFoundError, OSError, ValueError):
            return None

    def _take_over_if_stale(self) -> None:
        doc = self._read()
        if doc is None:
            remove_file(self.uri)          # unreadable or half-written: nobody can be using it
            return
        alive = True
        if doc.get("host") == socket.gethostname():
            try:
                os.kill(int(doc.get("pid", -1)), 0)
            except ProcessLookupError:
                alive = False
            except (PermissionError, ValueError, OverflowError):
                pass
        if not alive or time.time() - float(doc.get("heartbeat", 0)) > STALE_SECONDS:
            remove_file(self.uri)
            return
        raise ConfigError(self._busy_message(doc))

    def _busy_message(self, doc: dict | None = None) -> str:
        doc = doc or self._read() or {}
        return ("%s is in use by another run (%s on host %s, pid %s); wait for it to finish, or delete %s "
                "if no run is active" % (scrub(self.output), doc.get("stage", "?"), doc.get("host", "?"),
                                          doc.get("pid", "?"), scrub(self.uri)))

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            doc = self._read()
            if doc is None or doc.get("token") != self.token:
                return
            try:
                outputs.write_text(self.uri, json.dumps(self._doc()))
            except OSError:
                pass

    def _release(self) -> None:
        self._stop.set()
        doc = self._read()
        if doc is not None and doc.get("token") == self.token:
            remove_file(self.uri)


# --- what a stage wrote --------------------------------------------------------------------

class OutputMissing(RuntimeError):
    """A file a task reported is not there (or not as reported) when the driver looks."""


def verify_parquet_files(run: str, files: list[tuple[str, int]], threads: int = 16) -> None:
    """Check, on the driver, that every Parquet file of ``files`` ((name relative to ``run``,
    rows the task reported)) exists with that many rows (footers only, read in parallel).
    Raises :class:`OutputMissing` naming the first few that are not as reported."""
    from concurrent.futures import ThreadPoolExecutor

    import pyarrow.parquet as pq

    def rows_of(name: str) -> int | None:
        fs, path = outputs.resolve(outputs.join(run, name))
        try:
            with fs.open_input_file(path) as fh:
                return pq.ParquetFile(fh).metadata.num_rows
        except (FileNotFoundError, OSError):
            return None

    if not files:
        return
    with ThreadPoolExecutor(max(1, min(threads, len(files)))) as pool:
        seen = list(pool.map(rows_of, [name for name, _ in files]))
    bad = [(name, rows, got) for (name, rows), got in zip(files, seen) if got != rows]
    if bad:
        detail = "; ".join("%s: %s" % (name, "missing" if got is None else "%d rows, task reported %d" % (got, rows))
                           for name, rows, got in bad[:5])
        raise OutputMissing("%d output file(s) of %s are not as their tasks reported (%s%s). Executors must write "
                            "where the driver reads: use a shared filesystem or an object store (a local --output "
                            "on a multi-node cluster lands on each executor's own disk)"
                            % (len(bad), scrub(run), scrub(detail), "; ..." if len(bad) > 5 else ""))
