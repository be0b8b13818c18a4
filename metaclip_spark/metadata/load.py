"""Loading MetaCLIP metadata (the ~500k entry strings) and fingerprinting it.

The format is MetaCLIP's ``metadata.json``: one JSON array of strings. An entry's id
is its 0-based position in that array (docs/semantics.md section 4), so nothing here reorders,
de-duplicates or edits entries. ``load_metadata`` reads a local path, an ``http(s)://``
URL or an ``s3://`` URL (through :func:`metaclip_spark.inputs.io.read_bytes`), plain or
gzip-compressed (detected by the gzip magic bytes, so ``.json.gz`` works whatever the
name), and rejects anything that would make ids or matching ill-defined, with a
message naming the file, the position of the first bad element and what is wrong.

Duplicate strings are legal (both ids match, see ``matching``) but are reported with
``logging.warning``.

500k entries (7.7 MB JSON) load and validate in about 0.1 s with orjson; the stdlib
``json`` module is the fallback (and handles the rare inputs orjson refuses, such as
lone surrogate escapes, exactly as MetaCLIP's own ``json.load`` would).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import zlib
from collections import Counter
from typing import Iterable, Sequence

from metaclip_spark.inputs.io import read_bytes

try:  # orjson is several times faster on 500k-entry files; stdlib json is the fallback
    import orjson as _orjson
except ImportError:  # pragma: no cover - orjson is installed in the project env
    _orjson = None

log = logging.getLogger(__name__)

__all__ = ["MetadataError", "load_metadata", "parse_metadata", "validate_metadata",
           "metadata_digest"]

# How many duplicate examples a warning shows.
_MAX_EXAMPLES = 5


class MetadataError(ValueError):
    """Metadata that cannot be used: unreadable, not JSON, or not a non-empty list of
    non-empty strings. The message names the source and the first offending element."""


def _name(uri: str) -> str:
    return str(uri)


def _short(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def load_metadata(uri: str) -> list[str]:
    """Read, parse and validate a MetaCLIP metadata file (JSON list of strings).

    ``uri`` is a local path, ``file://``, ``http(s)://`` or ``s3://`` URL; the content
    may be gzip-compressed. Returns the entries in file order (id = position).
    Raises :class:`MetadataError` on any problem."""
    try:
        data = read_bytes(uri)
    except Exception as exc:  # FileNotFoundError, URLError, botocore errors, ...
        raise MetadataError("cannot read metadata file %s: %s: %s"
                            % (_name(uri), type(exc).__name__, exc)) from exc
    return parse_metadata(data, source=_name(uri))


def parse_metadata(data: bytes, source: str = "<bytes>") -> list[str]:
    """Parse and validate metadata from the bytes of a (possibly gzipped) JSON file."""
    entries = _parse_json(_unwrap(data, source), source)
    validate_metadata(entries, source)
    return entries


def _unwrap(data: bytes, source: str) -> bytes:
    """The JSON bytes of a metadata file: gunzipped if gzip (by magic bytes), without a UTF-8 BOM."""
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise MetadataError("metadata file %s: corrupt gzip data: %s" % (source, exc)) from exc
    if data[:3] == b"\xef\xbb\xbf":  # a UTF-8 byte order mark is not JSON, but harmless
        data = data[3:]
    return data


def _parse_json(data: bytes, source: str):
    if _orjson is not None:
        try:
            return _orjson.loads(data)
        except _orjson.JSONDecodeError:
            pass  # let the stdlib parser decide: it accepts what json.load accepts
            # (e.g. lone surrogate escapes) and gives the canonical error message
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MetadataError("metadata file %s: not UTF-8 text: invalid byte at offset %d (%s)"
                            % (source, exc.start, exc.reason)) from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise MetadataError("metadata file %s: malformed JSON at line %d column %d (char %d): %s"
                            % (source, exc.lineno, exc.colno, exc.pos, exc.msg)) from exc
    except RecursionError as exc:
        raise MetadataError("metadata file %s: malformed JSON: nested too deeply" % source) from exc


def validate_metadata(entries: object, source: str = "<metadata>") -> None:
    """Check that ``entries`` is a non-empty list of non-empty strings; warn on
    duplicates. Raises :class:`MetadataError` naming the first bad element."""
    if not isinstance(entries, list):
        raise MetadataError("metadata file %s: top level must be a JSON list of strings, got %s"
                            % (source, _json_type(entries)))
    if not entries:
        raise MetadataError("metadata file %s: the list is empty (no entries)" % source)
    # Fast path (C-level scans); the slow loop only runs to locate an error.
    if set(map(type, entries)) != {str}:
        for i, value in enumerate(entries):
            if not isinstance(value, str):
                kind = _json_type(value)
                shown = kind if value is None else "%s %s" % (kind, _short_json(value))
                raise MetadataError("metadata file %s: element %d is not a string (got %s)"
                                    % (source, i, shown))
    if "" in entries:
        raise MetadataError("metadata file %s: element %d is an empty string (an empty entry "
                            "would match every text containing a double space)"
                            % (source, entries.index("")))
    if len(set(entries)) != len(entries):
        _warn_duplicates(entries, source)


def _warn_duplicates(entries: Sequence[str], source: str) -> None:
    counts = Counter(entries)
    dups = {e: c for e, c in counts.items() if c > 1}
    extra = sum(c - 1 for c in dups.values())
    examples = []
    positions: dict[str, list[int]] = {}
    for i, e in enumerate(entries):
        if e in dups:
            positions.setdefault(e, []).append(i)
    for e, pos in list(positions.items())[:_MAX_EXAMPLES]:
        examples.append("%s at ids %s" % (_short(e, 40), ", ".join(map(str, pos[:4]))
                                          + (", ..." if len(pos) > 4 else "")))
    log.warning("metadata file %s: %d duplicate entries (%d strings occur more than once); "
                "they are kept, every copy matches under its own id. First: %s",
                source, extra, len(dups), "; ".join(examples))


def _short_json(value: object, limit: int = 60) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def metadata_digest(entries: Iterable[str]) -> str:
    """sha256 hex digest of the entries, order-sensitive.

    Canonical encoding: the compact JSON array with every non-ASCII character escaped
    (``json.dumps(list(entries), ensure_ascii=True, separators=(",", ":"))``) encoded as
    ASCII. Unambiguous for any strings (lone surrogates included); ~0.07 s for 500k."""
    entries = entries if isinstance(entries, list) else list(entries)
    canonical = json.dumps(entries, ensure_ascii=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()
