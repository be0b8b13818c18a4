"""Worldwide matching (SPEC section 10, docs/worldwide.md "Matching and the automata files"),
exact, with one Aho-Corasick automaton per language built once per job.

Reference semantics: the text is spaced as in section 4 (``match.spacing``); entry ``e`` of the
text's language matches iff ``world_key(e)`` (``metadata.languages``: ``" " + e + " "`` without
the space next to a CJK-or-similar first / last character) is a substring of the spaced text;
section 10's dropped entries (too long, punctuation-only: ``matchable`` False) never match.
:func:`naive_world_match` is that definition verbatim (the test oracle); :class:`WorldMatcher`
gives identical results for every input.

Two automata, same answers (tests/steps/test_world_match.py runs every case on both): the
compiled automaton in keys mode (csrc/ac_match.c), written as one flat file per language by
:func:`world_automata.build_automata` on the driver and memory-mapped by the workers (the Python
workers of a node share one copy through the page cache; the mapped automaton walks the text
spacing and encoding it on the fly, so no spaced copy is made); or, without the extension
(``METACLIP_NATIVE=0``, or ``build_automata(..., native=False)``), pyahocorasick automata built
in each worker process per language from the entries, which then travel in the pickle.

:class:`WorldMatcher` is picklable: only the automata folder, the manifest (digest, per-language
sizes and file checksums) and, for the python kind, the compressed entries travel. Languages are
loaded lazily, each once per process: a task whose texts are in three languages maps three files.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Sequence

import numpy as np

from metaclip_spark.metadata.languages import world_key
from metaclip_spark.steps.match import _pack, _unpack, spacing
from metaclip_spark.steps.world_automata import (KIND_NATIVE, KIND_PYTHON, build_automata, find_python, key_table,
                                                 local_file, mapped_automaton, python_automaton, read_manifest)

log = logging.getLogger(__name__)

__all__ = ["naive_world_match", "WorldMatcher"]


def naive_world_match(text: str, entries: Sequence[str], matchable: Sequence[bool] | None = None) -> list[int]:
    """The reference definition: ids i with ``world_key(entries[i])`` in ``spacing(text)``,
    ascending, skipping entries whose ``matchable[i]`` is False (section 10's dropped ones).
    O(len(entries)) per text: a test oracle, not for production."""
    spaced = spacing(text)
    return [i for i, e in enumerate(entries) if (matchable is None or matchable[i]) and world_key(e) in spaced]


class _Language:
    """One language's automaton in this process (mapped or built) and its duplicate table."""

    __slots__ = ("native", "automaton", "dups", "dup_keys", "keys")

    def __init__(self, native, automaton, dups: dict[int, Sequence[int]], keys: int):
        self.native, self.automaton, self.keys = native, automaton, keys
        self.dups = {int(k): tuple(v) for k, v in dups.items()}
        self.dup_keys = frozenset(self.dups)

    def find(self, text: str) -> list[int]:
        if self.native is not None:
            ids = self.native.find(text)           # spaces and encodes the text itself; ascending, unique
        else:
            ids = find_python(self.automaton, spacing(text))
        if self.dup_keys and not self.dup_keys.isdisjoint(ids):
            out: set[int] = set()
            for i in ids:
                out.update(self.dups.get(i, (i,)))
            ids = sorted(out)
        return ids


# (digest, kind, location or "", lang) -> _Language: once per process, shared by every unpickled copy
_LANGUAGES: dict[tuple, _Language] = {}
_LOCK = threading.Lock()


class WorldMatcher:
    """Exact section 10 matcher over every language of a worldwide metadata.

    ``WorldMatcher(location, world_metadata=None, *, manifest=None, cache_dir="")``: ``location``
    is the automata folder written by :func:`world_automata.build_automata` (local, ``file://``,
    ``s3://``, ``https://``); ``manifest`` its manifest when the caller has it (else read from
    ``location``); ``world_metadata`` is needed for the python kind (its entries travel in the
    pickle) and otherwise only checks the digest; ``cache_dir`` (``worldwide.automata_cache``)
    is where a remote folder's files are copied on each node ("" = the system temp folder).
    :meth:`build` does both steps. ``match_many(texts, langs)`` -> one list of ids (positions in
    that language's list, ascending, each once) per text."""

    def __init__(self, location: str, world_metadata=None, *, manifest: dict | None = None, cache_dir: str = ""):
        self.location = location
        self.manifest = manifest if manifest is not None else read_manifest(location)
        self.cache_dir = cache_dir or ""
        if world_metadata is not None and world_metadata.digest != self.digest:
            raise ValueError("automata folder %s was built for metadata %s, not %s"
                             % (location, self.digest[:12], world_metadata.digest[:12]))
        self._blobs: dict[str, tuple[bytes, bytes, int]] | None = None
        if self.kind == KIND_PYTHON:
            if world_metadata is None:
                raise ValueError("automata folder %s is of the python kind: the workers build the automata "
                                 "from the entries, pass world_metadata" % location)
            self._blobs = {}
            for lang in self.languages:
                mask = np.asarray(world_metadata.matchable(lang), dtype=bool)
                self._blobs[lang] = (_pack(list(world_metadata.entries(lang))), np.packbits(mask).tobytes(),
                                     int(len(mask)))
        self._init_runtime()

    @classmethod
    def build(cls, world_metadata, out_dir: str, *, native: bool | None = None,
              cache_dir: str = "") -> "WorldMatcher":
        """Build the automata of ``world_metadata`` into ``out_dir`` (once per job, on the
        driver) and return the matcher over them."""
        manifest = build_automata(world_metadata, out_dir, native=native)
        return cls(out_dir, world_metadata, manifest=manifest, cache_dir=cache_dir)

    def _init_runtime(self) -> None:
        self._langs: dict[str, _Language] = {}

    # ---- identity, pickling ------------------------------------------------------
    @property
    def digest(self) -> str:
        return self.manifest["digest"]

    @property
    def kind(self) -> str:
        """``native`` (flat files, mapped) or ``python`` (pyahocorasick, built per process)."""
        return self.manifest["kind"]

    @property
    def languages(self) -> list[str]:
        return list(self.manifest["languages"])

    def __getstate__(self) -> dict:
        return {"format": 1, "location": self.location, "manifest": self.manifest, "cache_dir": self.cache_dir,
                "blobs": self._blobs}

    def __setstate__(self, state: dict) -> None:
        if state.get("format") != 1:
            raise ValueError("unknown WorldMatcher pickle format %r" % state.get("format"))
        self.location, self.manifest = state["location"], state["manifest"]
        self.cache_dir, self._blobs = state["cache_dir"], state["blobs"]
        self._init_runtime()

    def __repr__(self) -> str:
        return "WorldMatcher(%s, %d languages, %s, digest=%s)" % (self.location, len(self.manifest["languages"]),
                                                                 self.kind, self.digest[:12])

    # ---- loading -------------------------------------------------------------------
    def _language(self, lang: str) -> _Language:
        lm = self._langs.get(lang)
        if lm is not None:
            return lm
        info = self.manifest["languages"].get(lang)
        if info is None:
            raise KeyError("language %r has no automaton (the metadata's languages: %s)"
                           % (lang, ", ".join(self.languages)))
        key = (self.digest, self.kind, self.location if self.kind == KIND_NATIVE else "", lang,
               info.get("sha256"))
        lm = _LANGUAGES.get(key)
        if lm is None:
            with _LOCK:
                lm = _LANGUAGES.get(key)
                if lm is None:
                    lm = _LANGUAGES[key] = self._load(lang, info)
        self._langs[lang] = lm
        return lm

    def _load(self, lang: str, info: dict) -> _Language:
        if self.kind == KIND_NATIVE:
            path = local_file(self.location, info["file"], info["sha256"], info["bytes"], self.digest, self.cache_dir)
            dups = {}
            if info.get("dups_file"):
                dpath = local_file(self.location, info["dups_file"], info["dups_sha256"], None, self.digest,
                                   self.cache_dir)
                with open(dpath, "rb") as fh:
                    dups = json.load(fh)
            log.info("mapped automaton %s (%s, %d keys)", lang, path, info["keys"])
            return _Language(mapped_automaton(path), None, dups, info["keys"])
        blob, bits, n = self._blobs[lang]
        entries = _unpack(blob)
        mask = np.unpackbits(np.frombuffer(bits, np.uint8), count=n).astype(bool)
        keys, ids, dups = key_table(entries, mask)
        log.info("built automaton %s in-process (python kind, %d keys)", lang, len(keys))
        return _Language(None, python_automaton(keys, ids), dups, len(keys))

    def prepare(self, langs: Sequence[str] | None = None) -> "WorldMatcher":
        """Load (map or build) the automata of ``langs`` (None: every language) now."""
        for lang in self.languages if langs is None else langs:
            self._language(lang)
        return self

    # ---- matching ------------------------------------------------------------------
    def match(self, text: str, lang: str) -> list[int]:
        """Ids of ``lang``'s entries matching ``text``, ascending, each once."""
        return self._language(lang).find(text)

    def match_many(self, texts: Sequence[str], langs: Sequence[str]) -> list[list[int]]:
        """``[match(t, l) for t, l in zip(texts, langs)]``: texts grouped by language (each
        language's automaton loaded once), each distinct text of a language matched once."""
        if len(texts) != len(langs):
            raise ValueError("match_many: %d texts but %d languages" % (len(texts), len(langs)))
        groups: dict[str, list[int]] = {}
        for i, lang in enumerate(langs):
            groups.setdefault(lang, []).append(i)
        out: list = [None] * len(texts)
        for lang, rows in groups.items():
            find = self._language(lang).find
            seen: dict[str, list[int]] = {}
            for i in rows:
                text = texts[i]
                ids = seen.get(text)
                if ids is None:
                    ids = seen[text] = find(text)
                    out[i] = ids
                else:
                    out[i] = ids.copy()
        return out
