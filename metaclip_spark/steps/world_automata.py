"""The per-language automata of worldwide matching (SPEC section 10, docs/worldwide.md "Matching
and the automata files"): built ONCE per job on the driver as flat files, memory-mapped by the
workers, so the Python workers of a node share one copy through the page cache and none of them
spends time building.

- :func:`key_table`: a language's keys (section 10's ``world_key`` of each matchable entry, each
  distinct key once, id = its first position) and the duplicate table (a key given by several
  entries: every one of them matches, like the English Matcher's).
- :func:`build_automata` writes, per language, ``{lang}.ac`` (the compiled automaton's flat
  buffer, csrc/ac_match.c, keys mode) and ``{lang}.dups.json`` when the language has duplicate
  keys, then ``manifest.json`` (format, kind, the metadata digest, per language: sizes, key and
  duplicate counts, each file's bytes and sha256). Without the compiled extension (or with
  ``native=False``) nothing but the manifest is written, with ``"kind": "python"``: the matcher
  then builds pyahocorasick automata in-process per language (the reference path).
- :func:`local_file`: where a worker finds a file: in the manifest's folder when that is local
  (local mode, a shared file system), else copied once per node from ``s3://`` / ``https://``
  (``inputs.io``) into ``worldwide.automata_cache`` (or the system temp folder) under the digest,
  its sha256 checked, under a lock, renamed into place atomically.
- :func:`mapped_automaton`: one read-only mapping per file per process (``mmap.ACCESS_READ``),
  the automaton used in place (``Automaton.from_buffer``: nothing copied).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import mmap
import os
import struct
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from operator import itemgetter
from typing import Sequence

import ahocorasick
import numpy as np

from metaclip_spark.inputs.io import open_binary, read_bytes, scheme
from metaclip_spark.kernels import native as _kernels
from metaclip_spark.metadata.languages import world_key
from metaclip_spark.run.outputs import join, write_bytes

_native_world = _kernels.get("WorldAutomaton")   # csrc/ac_match.c (keys mode, flat files); None: python kind

__all__ = ["FORMAT", "MANIFEST", "KIND_NATIVE", "KIND_PYTHON", "native_available", "automaton_version",
           "key_table", "build_automata", "read_manifest", "current_manifest", "local_file", "mapped_automaton",
           "python_automaton", "find_python"]

FORMAT = 1
MANIFEST = "manifest.json"
KIND_NATIVE = "native"
KIND_PYTHON = "python"
_CHUNK = 1 << 22


def native_available() -> bool:
    """Whether this process has the compiled automaton with keys mode and flat files."""
    return _native_world is not None


def automaton_version() -> int | None:
    """The flat-file layout version of this process's compiled automaton (its header's
    ``version``), None without it."""
    if _native_world is None:
        return None
    return struct.unpack_from("=I", _native_world([], [], keys=True).to_bytes(), 8)[0]


def key_table(entries: Sequence[str], matchable: Sequence[bool]) -> tuple[list[str], list[int], dict[int, list[int]]]:
    """``(keys, ids, dups)`` of one language: each distinct ``world_key`` of a matchable entry
    once with the first position that gives it; ``dups[first] = [first, other positions...]``
    for keys given by several entries. Dropped entries (``matchable`` False) are left out."""
    mask = np.asarray(matchable, dtype=bool)
    if len(mask) != len(entries):
        raise ValueError("key_table: %d entries but %d matchable flags" % (len(entries), len(mask)))
    if mask.all():
        positions, kept = range(len(entries)), entries
    else:
        positions = np.flatnonzero(mask).tolist()
        kept = [entries[i] for i in positions]
    keys = list(map(world_key, kept))               # C-level loops: ~1/3 of a Python loop's time
    first = dict(zip(reversed(keys), reversed(positions)))    # later items overwrite: first ids win
    dups: dict[int, list[int]] = {}
    if len(first) != len(keys):
        for key, i in zip(keys, positions):
            j = first[key]
            if j != i:
                dups.setdefault(j, [j]).append(i)
    return list(first), list(first.values()), dups


def _sha256(data) -> str:
    return hashlib.sha256(data).hexdigest()


def _build_language(world_metadata, lang: str, out_dir: str, native: bool) -> dict:
    """One language's key table and, native, its ``{lang}.ac`` (and ``{lang}.dups.json``)."""
    entries = world_metadata.entries(lang)
    mask = world_metadata.matchable(lang)
    keys, ids, dups = key_table(entries, mask)
    info = {"entries": len(entries), "dropped": len(entries) - int(np.count_nonzero(mask)),
            "keys": len(keys), "duplicates": sum(len(v) - 1 for v in dups.values())}
    del entries, mask
    if native:
        data = _native_world(keys, ids, keys=True).to_bytes()
        del keys, ids
        info.update(file="%s.ac" % lang, bytes=len(data), sha256=_sha256(data))
        write_bytes(join(out_dir, info["file"]), data)
        del data
        if dups:
            blob = json.dumps({str(k): v for k, v in dups.items()}, separators=(",", ":")).encode("ascii")
            info.update(dups_file="%s.dups.json" % lang, dups_sha256=_sha256(blob))
            write_bytes(join(out_dir, info["dups_file"]), blob)
    return info


def build_automata(world_metadata, out_dir: str, *, native: bool | None = None, threads: int | None = None) -> dict:
    """Build every language's automaton of ``world_metadata`` (``.languages``, ``.entries(lang)``,
    ``.matchable(lang)``, ``.digest``) into ``out_dir`` (a local folder or an ``s3://`` prefix)
    and return the manifest (also written there as ``manifest.json``, last).
    ``native``: None = the compiled automaton where this process has it; False = the python kind
    (only the manifest is written); True = required. ``threads``: languages built at once (the
    compiled build, the checksums and the writes run without the GIL; each thread holds one
    language's keys and automaton, ~0.2 GB per 500k entries); None = min(4, CPUs)."""
    if native is None:
        native = native_available()
    if native and not native_available():
        raise RuntimeError("native automata requested but the compiled extension (WorldAutomaton) is "
                           "not available (METACLIP_NATIVE=0, or not built)")
    threads = max(1, min(4, os.cpu_count() or 1) if threads is None else int(threads))
    order = list(world_metadata.languages)
    if threads == 1 or len(order) < 2:
        infos = [_build_language(world_metadata, lang, out_dir, native) for lang in order]
    else:
        with ThreadPoolExecutor(threads, thread_name_prefix="automata") as pool:
            infos = list(pool.map(lambda lang: _build_language(world_metadata, lang, out_dir, native), order))
    manifest = {"format": FORMAT, "kind": KIND_NATIVE if native else KIND_PYTHON,
                "digest": world_metadata.digest, "languages": dict(zip(order, infos))}
    if native:
        manifest["automaton_version"] = automaton_version()
    write_bytes(join(out_dir, MANIFEST), json.dumps(manifest, indent=1, sort_keys=True).encode("ascii"))
    return manifest


def read_manifest(location: str) -> dict:
    """The manifest of an automata folder (local path, ``file://``, ``s3://``, ``https://``)."""
    manifest = json.loads(read_bytes(join(location, MANIFEST)))
    if manifest.get("format") != FORMAT or manifest.get("kind") not in (KIND_NATIVE, KIND_PYTHON):
        raise ValueError("automata folder %s: unknown manifest format %r / kind %r"
                         % (location, manifest.get("format"), manifest.get("kind")))
    return manifest


def current_manifest(location: str, digest: str) -> dict | None:
    """The manifest of the automata folder ``location`` if this process would build the same
    thing for metadata ``digest`` (so a rerun reuses it), else None (missing or unreadable,
    other metadata, other flat-file layout, or the python kind where the compiled automaton
    exists): the caller then builds."""
    try:
        manifest = read_manifest(location)
    except Exception:    # missing (FileNotFoundError, InputError), not JSON, other format
        return None
    if manifest.get("digest") != digest:
        return None
    if manifest["kind"] == KIND_NATIVE:
        ok = native_available() and manifest.get("automaton_version") == automaton_version()
    else:
        ok = not native_available()
    return manifest if ok else None


def _local_path(location: str) -> str | None:
    s = scheme(location)
    if s == "file":
        return location[len("file://"):]
    return None if s else location


def cache_folder(cache_dir: str, digest: str) -> str:
    """The node-local folder of a metadata's copied automata."""
    return os.path.join(cache_dir or tempfile.gettempdir(), "metaclip-automata", digest)


_COPY_LOCK = threading.Lock()


def local_file(location: str, name: str, sha256: str, size: int | None, digest: str, cache_dir: str = "") -> str:
    """A local path of file ``name`` of the automata folder ``location``: the file itself when the
    folder is local, else a node-local copy (made once per node: an flock serialises the
    processes of a node, the sha256 is checked, and the file appears by an atomic rename;
    its name carries the sha256, so a copy never stands for other bytes)."""
    local = _local_path(location)
    if local is not None:
        return os.path.join(local, name)
    folder = cache_folder(cache_dir, digest)
    target = os.path.join(folder, "%s.%s" % (sha256[:16], name))
    if os.path.exists(target) and (size is None or os.path.getsize(target) == size):
        return target
    os.makedirs(folder, exist_ok=True)
    with _COPY_LOCK, open(target + ".lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(target) and (size is None or os.path.getsize(target) == size):
            return target
        tmp = "%s.tmp-%d" % (target, os.getpid())
        h = hashlib.sha256()
        try:
            with open_binary(join(location, name)) as src, open(tmp, "wb") as dst:
                while True:
                    chunk = src.read(_CHUNK)
                    if not chunk:
                        break
                    h.update(chunk)
                    dst.write(chunk)
            if h.hexdigest() != sha256:
                raise ValueError("automata file %s: sha256 %s, the manifest says %s"
                                 % (join(location, name), h.hexdigest(), sha256))
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return target


_MAPS: dict[tuple, object] = {}
_MAPS_LOCK = threading.Lock()


def mapped_automaton(path: str):
    """The compiled automaton of flat file ``path``, mapped read-only once per process (the
    mapping stays open while the process lives; the page cache holds one copy per node). A file
    replaced at the same path (a rebuild) is a new file: keyed by its inode, size and mtime."""
    st = os.stat(path)
    key = (path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    automaton = _MAPS.get(key)
    if automaton is not None:
        return automaton
    if _native_world is None:
        raise RuntimeError("automata file %s needs the compiled extension (WorldAutomaton), which this "
                           "process does not have (METACLIP_NATIVE=0, or not built): build the automata "
                           "with native=False for such workers" % path)
    with _MAPS_LOCK:
        automaton = _MAPS.get(key)
        if automaton is None:
            with open(path, "rb") as fh:
                mapping = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
            automaton = _MAPS[key] = _native_world.from_buffer(mapping)   # holds the mapping
    return automaton


def mapped_count() -> int:
    """How many automata files this process has mapped (tests, logging)."""
    return len(_MAPS)


def python_automaton(keys: list[str], ids: list[int]):
    """The reference path's automaton of a key table: pyahocorasick, STORE_INTS (None: no key)."""
    if not keys:
        return None
    automaton = ahocorasick.Automaton(ahocorasick.STORE_INTS)
    for key, i in zip(keys, ids):
        automaton.add_word(key, i)
    automaton.make_automaton()
    return automaton


_second = itemgetter(1)


def find_python(automaton, spaced: str) -> list[int]:
    """Ascending unique ids of the keys of ``automaton`` in the spaced text ``spaced``."""
    return [] if automaton is None else sorted(set(map(_second, automaton.iter(spaced))))
