"""Worldwide metadata (SPEC section 10, docs/worldwide.md): one entry list per language, loaded
and checked on the driver before Spark starts.

Forms of ``worldwide.metadata`` (:func:`load_world_metadata`):

- a folder of ``{lang}.json`` files (MetaCLIP 2's layout; ``.json.gz`` too): each a JSON list of
  strings, or a JSON object whose keys are the entries in file order (MetaCLIP 2's per-language
  source dumps ``{entry: source}``). ``en.json`` may be MetaCLIP v1's ``metadata.json``. A local
  folder or an ``s3://`` prefix; other files (``{lang}.pkl`` automata, READMEs, hidden files) are
  ignored;
- a Parquet file with string columns ``lang`` and ``entry``: a language's rows in file order are
  its list (languages may interleave); local, ``https://`` or ``s3://``;
- a paths list (``*.txt``, ``*.paths``, ``*.lst``, see ``inputs.io.read_paths_list``) naming
  ``{lang}.json`` files: the way to give a folder served over ``https://``.

An entry's id is its position in its language's list: nothing is reordered or de-duplicated.
Rules: a language code is ``[a-z]{2,3}(_[a-z]+)?`` or ``other`` (``languages.is_language_code``);
a list must be a non-empty list of non-empty strings (``metadata.load.validate_metadata``: the
error names the file and the position). Section 10's dropped entries (over
``languages.MAX_ENTRY_CHARS`` characters, or ``languages.is_punctuation_only``) keep their
position but never match (``matchable``); ``report()`` counts them per language (an entry both
too long and punctuation-only counts as too long).

Memory: each language is held as one Arrow string array (about entry bytes + 4 per entry) and
a boolean mask; a 15M-entry, 30-language metadata takes a few hundred MB on the driver, and one
language's Python list exists at a time while loading.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import posixpath
from typing import Iterable
from urllib.parse import urlsplit

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from metaclip_spark.inputs.io import read_bytes, read_paths_list, s3_client, scheme
from metaclip_spark.metadata.languages import (MAX_ENTRY_CHARS, LanguageSpace, is_language_code,
                                               is_punctuation_only)
from metaclip_spark.metadata.load import MetadataError, _json_type, _parse_json, _unwrap, validate_metadata
from metaclip_spark.run.redact import scrub, scrub_uri

__all__ = ["MetadataError", "WorldMetadata", "load_world_metadata", "world_metadata_from_lists"]

JSON_SUFFIXES = (".json.gz", ".json")
PATHS_LIST_SUFFIXES = (".txt", ".paths", ".lst", ".txt.gz", ".paths.gz", ".lst.gz")


class WorldMetadata:
    """Checked per-language entry lists in :class:`LanguageSpace` order (``en`` first, then sorted).

    ``space``: the languages and their list sizes (dropped entries included, ids are positions);
    ``entries(lang)``: the list; ``matchable(lang)``: bool mask, False for section 10's dropped
    entries; ``digest``: sha256 over the (lang, entries) sequence; ``report()``; ``flat()``."""

    def __init__(self, lists: dict[str, pa.Array], sources: dict[str, str] | None = None):
        self.space = LanguageSpace({lang: len(arr) for lang, arr in lists.items()})
        self._lists = {lang: lists[lang] for lang in self.space.languages}
        self.sources = dict(sources or {})
        self._too_long: dict[str, np.ndarray] = {}
        self._punct: dict[str, np.ndarray] = {}
        for lang, arr in self._lists.items():
            too_long, punct = _dropped(arr)
            self._too_long[lang], self._punct[lang] = too_long, punct & ~too_long
        self._digest: str | None = None

    @property
    def languages(self) -> tuple[str, ...]:
        return self.space.languages

    def entries(self, lang: str) -> list[str]:
        """``lang``'s list (position = entry id), dropped entries in place."""
        return self._lists[lang].to_pylist()

    def entry_array(self, lang: str) -> pa.Array:
        """``lang``'s list as an Arrow string array (no Python strings made)."""
        return self._lists[lang]

    def matchable(self, lang: str) -> np.ndarray:
        """Bool per entry of ``lang``: False for entries section 10 drops (too long, punctuation-only)."""
        return ~(self._too_long[lang] | self._punct[lang])

    def report(self) -> dict[str, dict[str, int]]:
        """``{lang: {"entries", "dropped_too_long", "dropped_punctuation_only"}}`` in space order."""
        return {lang: {"entries": int(len(self._lists[lang])),
                       "dropped_too_long": int(self._too_long[lang].sum()),
                       "dropped_punctuation_only": int(self._punct[lang].sum())} for lang in self.languages}

    @property
    def digest(self) -> str:
        """sha256 hex of the canonical sequence: per language in space order, the line
        ``json.dumps([lang, entries], ensure_ascii=True, separators=(",", ":"))`` + ``\\n``."""
        if self._digest is None:
            h = hashlib.sha256()
            for lang in self.languages:
                h.update(json.dumps([lang, self.entries(lang)], ensure_ascii=True, separators=(",", ":"))
                         .encode("ascii"))
                h.update(b"\n")
            self._digest = h.hexdigest()
        return self._digest

    def flat(self) -> tuple[pa.Array, pa.Array, pa.Array]:
        """``(langs, entry_ids, entries)`` Arrow arrays, one row per (lang, entry) in space order:
        row ``i`` is global id ``i`` (the rows of an entry-counts file)."""
        sizes = self.space.sizes
        codes = np.repeat(np.arange(len(sizes), dtype=np.int32), sizes)
        langs = pa.DictionaryArray.from_arrays(pa.array(codes), pa.array(self.languages, pa.string()))
        ids = np.arange(len(self.space), dtype=np.int64) - np.repeat(self.space.offsets, sizes)
        parts = [self._lists[lang] for lang in self.languages]
        entries = pa.concat_arrays(parts) if parts else pa.array([], pa.string())
        return langs.dictionary_decode(), pa.array(ids.astype(np.int32)), entries

    def __repr__(self) -> str:
        return "WorldMetadata(%r)" % (self.space,)


def _dropped(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Section 10's drops of one list: (too long, punctuation-only) bool arrays. The rule is
    ``languages.is_punctuation_only``, asked only of entries whose first character is not
    alphanumeric (an alphanumeric character is neither punctuation nor space)."""
    too_long = pc.greater(pc.utf8_length(arr), MAX_ENTRY_CHARS).to_numpy(zero_copy_only=False)
    first = pc.utf8_slice_codeunits(arr, 0, 1)
    maybe = np.flatnonzero(~pc.utf8_is_alnum(first).to_numpy(zero_copy_only=False))
    punct = np.zeros(len(arr), bool)
    if len(maybe):
        candidates = arr.take(pa.array(maybe)).to_pylist()
        punct[maybe] = [is_punctuation_only(e) for e in candidates]
    return too_long, punct


def _strings(values: list, source: str) -> pa.Array:
    """A checked list as an Arrow string array (a lone surrogate cannot be stored: an error)."""
    try:
        return pa.array(values, pa.string())
    except (UnicodeEncodeError, pa.ArrowException):
        for i, value in enumerate(values):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise MetadataError("metadata file %s: element %d is not valid Unicode (a lone surrogate)"
                                    % (source, i)) from None
        raise


def _parse_list(data: bytes, source: str) -> pa.Array:
    """The entries of one ``{lang}.json`` (list, or object whose keys are the entries), checked."""
    value = _parse_json(_unwrap(data, source), source)
    if isinstance(value, dict):
        value = list(value)
    elif not isinstance(value, list):
        raise MetadataError("metadata file %s: top level must be a JSON list of strings (or an object whose "
                            "keys are the entries), got %s" % (source, _json_type(value)))
    validate_metadata(value, source)
    return _strings(value, source)


def _lang_of(name: str, source: str) -> str | None:
    """The language of a folder member ``{lang}.json[.gz]`` (None: not a metadata file)."""
    if name.startswith((".", "_")):
        return None
    for suffix in JSON_SUFFIXES:
        if name.endswith(suffix):
            lang = name[: -len(suffix)]
            if not is_language_code(lang):
                raise MetadataError("worldwide metadata %s: file %s: %r is not a language code "
                                    "([a-z]{2,3}(_[a-z]+)? or other)" % (source, name, lang))
            return lang
    return None


def _folder_files(uri: str) -> dict[str, str]:
    """``{lang: uri}`` of the ``{lang}.json`` members of a local folder or s3 prefix."""
    names: list[tuple[str, str]] = []
    if scheme(uri) in ("s3", "s3a", "s3n"):
        parts = urlsplit(uri)
        prefix = parts.path.lstrip("/").rstrip("/") + "/"
        try:
            for page in s3_client().get_paginator("list_objects_v2").paginate(Bucket=parts.netloc, Prefix=prefix,
                                                                              Delimiter="/"):
                for obj in page.get("Contents", []):
                    names.append((obj["Key"][len(prefix):], "s3://%s/%s" % (parts.netloc, obj["Key"])))
        except Exception as exc:
            raise MetadataError("cannot list worldwide metadata folder %s: %s: %s"
                                % (uri, type(exc).__name__, exc)) from exc
    else:
        path = uri[len("file://"):] if uri.startswith("file://") else uri
        names = [(n, os.path.join(path, n)) for n in sorted(os.listdir(path))]
    return _by_language(names, uri)


def _by_language(names: Iterable[tuple[str, str]], source: str) -> dict[str, str]:
    files: dict[str, str] = {}
    for name, where in names:
        lang = _lang_of(name, source)
        if lang is None:
            continue
        if lang in files:
            raise MetadataError("worldwide metadata %s: language %r given twice (%s and %s)"
                                % (source, lang, posixpath.basename(files[lang]), name))
        files[lang] = where
    if not files:
        raise MetadataError("worldwide metadata %s: no {lang}.json file in it" % source)
    return files


def _read(uri: str) -> bytes:
    try:
        return read_bytes(uri)
    except Exception as exc:  # FileNotFoundError, InputError, botocore errors, ...
        raise MetadataError("cannot read metadata file %s: %s: %s" % (uri, type(exc).__name__, exc)) from exc


def _from_files(files: dict[str, str]) -> WorldMetadata:
    lists = {lang: _parse_list(_read(where), where) for lang, where in files.items()}
    return WorldMetadata(lists, files)


def _from_parquet(data: bytes | str, source: str) -> WorldMetadata:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(io.BytesIO(data) if isinstance(data, bytes) else data, columns=["lang", "entry"])
    except Exception as exc:   # not Parquet, or no lang / entry column
        raise MetadataError("worldwide metadata %s: cannot read a Parquet file with columns (lang, entry): %s: %s"
                            % (source, type(exc).__name__, exc)) from exc
    for name in ("lang", "entry"):
        col = table.column(name)
        if pa.types.is_dictionary(col.type):     # e.g. a pandas category column
            col = col.cast(col.type.value_type)
            table = table.set_column(table.schema.get_field_index(name), name, col)
        if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
            raise MetadataError("worldwide metadata %s: column %s must be strings, got %s" % (source, name, col.type))
        if col.null_count:
            row = int(np.flatnonzero(pc.is_null(col).to_numpy(zero_copy_only=False))[0])
            raise MetadataError("worldwide metadata %s: row %d: %s is null" % (source, row, name))
    langs = table.column("lang").combine_chunks().cast(pa.string())
    entries = table.column("entry").combine_chunks().cast(pa.string())
    if not len(langs):
        raise MetadataError("worldwide metadata %s: no rows" % source)
    encoded = langs.dictionary_encode()
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    lists = {}
    for k, lang in enumerate(encoded.dictionary.to_pylist()):
        if not is_language_code(lang):
            row = int(np.flatnonzero(codes == k)[0])
            raise MetadataError("worldwide metadata %s: row %d: %r is not a language code "
                                "([a-z]{2,3}(_[a-z]+)? or other)" % (source, row, lang))
        rows = np.flatnonzero(codes == k)
        arr = entries.take(pa.array(rows))
        empty = np.flatnonzero(pc.equal(pc.utf8_length(arr), 0).to_numpy(zero_copy_only=False))
        if len(empty):
            raise MetadataError("worldwide metadata %s: row %d: language %s, element %d is an empty string"
                                % (source, int(rows[empty[0]]), lang, int(empty[0])))
        lists[lang] = arr
    return WorldMetadata(lists, {lang: source for lang in lists})


def world_metadata_from_lists(lists: dict[str, list[str]], source: str = "<lists>") -> WorldMetadata:
    """WorldMetadata of in-memory ``{lang: entries}`` (the same checks as the files get)."""
    checked = {}
    for lang, entries in lists.items():
        if not is_language_code(lang):
            raise MetadataError("worldwide metadata %s: %r is not a language code" % (source, lang))
        validate_metadata(entries, "%s[%s]" % (source, lang))
        checked[lang] = _strings(entries, "%s[%s]" % (source, lang))
    return WorldMetadata(checked, {lang: source for lang in checked})


def load_world_metadata(uri: str) -> WorldMetadata:
    """Load and check worldwide metadata (module docstring: folder, Parquet or paths list).
    Raises :class:`MetadataError` naming the file (and the element) on any problem; credentials
    in URIs are masked in messages and in ``sources``."""
    try:
        world = _load(uri)
    except MetadataError as exc:
        raise MetadataError(scrub(str(exc))) from exc.__cause__
    world.sources = {lang: scrub_uri(where) for lang, where in world.sources.items()}
    return world


def _load(uri: str) -> WorldMetadata:
    if not uri:
        raise MetadataError("worldwide metadata: no folder given (--metadata DIR or worldwide.metadata)")
    s = scheme(uri)
    name = urlsplit(uri).path if s else uri
    if name.endswith(".parquet"):
        return _from_parquet(_read(uri) if s and s != "file" else name, uri)
    if name.endswith(PATHS_LIST_SUFFIXES):
        try:
            members = read_paths_list(uri)
        except Exception as exc:
            raise MetadataError("cannot read worldwide metadata list %s: %s: %s" % (uri, type(exc).__name__, exc)) from exc
        return _from_files(_by_language([(posixpath.basename(urlsplit(m).path if scheme(m) else m), m)
                                         for m in members], uri))
    if s in ("s3", "s3a", "s3n"):
        return _from_files(_folder_files(uri))
    if s and s != "file":
        raise MetadataError("worldwide metadata %s: a %s:// folder cannot be listed; give a Parquet file of "
                            "(lang, entry) or a paths list (.txt) of its {lang}.json files" % (uri, s))
    path = name
    if os.path.isdir(path):
        return _from_files(_folder_files(path))
    if os.path.isfile(path):
        with open(path, "rb") as fh:
            magic = fh.read(4)
        if magic == b"PAR1":
            return _from_parquet(path, uri)
        raise MetadataError("worldwide metadata %s: not a folder of {lang}.json files, a Parquet file or a paths "
                            "list" % uri)
    raise MetadataError("worldwide metadata %s: no such folder or file" % uri)
