"""Languages of worldwide curation (SPEC section 10, docs/worldwide.md): the entry boundary rule
and the language space that numbers every language's entries in one id range.

- :func:`world_key`: the one copy of section 10's boundary rule. An entry gets a leading space
  unless its first character is CJK-or-similar, and a trailing space unless its last one is;
  it matches a text iff that key is a substring of the text spaced as in section 4.
- :func:`load_lid_map` / :func:`metadata_language`: LID labels to metadata languages (the
  shipped ``metaclip_spark/data/lid_languages.tsv`` covers lid.176's 176 labels: MetaCLIP 2's
  ``lid_to_wiki``, variants merged, N/A -> :data:`OTHER`); :func:`is_language_code` the rule a
  metadata language code follows.
- :class:`LanguageSpace`: the metadata languages in their fixed order (``en`` first, then the
  others sorted; :data:`OTHER` is a language like any other) and their list sizes. Pool rows,
  the index, curated rows and entry counts carry ``(lang, entry_id)`` with ``entry_id`` the
  position in that language's list; counting and balancing work on one dense vector whose
  global id is ``offset(lang) + entry_id`` (English mode: the space ``[("en", n)]``, so global
  ids are the entry ids).

Imports nothing from the package but numpy/pyarrow (metadata loaders and steps use it); only
``load_lid_map`` of a URL imports ``inputs.io`` (lazily).
"""

from __future__ import annotations

import os
import re
import string
from functools import lru_cache
from typing import Iterable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

OTHER = "other"          # texts whose LID label maps to no metadata language (MetaCLIP 2's lid_to_wiki N/A)
ENGLISH = "en"

# CJK ideographs and radicals, Thai, Lao, Burmese, Khmer, Tibetan: inclusive code-point ranges
CJK_OR_SIMILAR_RANGES: tuple[tuple[int, int], ...] = (
    (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F), (0x2B740, 0x2B81F),
    (0x2B820, 0x2CEAF), (0x2CEB0, 0x2EBEF), (0xF900, 0xFAFF), (0x2E80, 0x2EFF), (0x2F00, 0x2FDF),
    (0x2FF0, 0x2FFF),
    (0x0E00, 0x0E7F), (0x0E80, 0x0EFF), (0x1000, 0x109F), (0x1780, 0x17FF), (0x0F00, 0x0FFF),
)
FULL_WIDTH_MARKS = "，。、；：？！“”‘’（）【】《》〈〉「」『』～—"
NO_SPACE_PUNCTUATION = frozenset(string.punctuation) | frozenset(FULL_WIDTH_MARKS)


@lru_cache(maxsize=None)   # per character: world_key of 15M entries calls it 30M times
def is_cjk_or_similar(char: str) -> bool:
    """Whether ``char`` needs no space next to it in a worldwide key (section 10's class)."""
    if char in NO_SPACE_PUNCTUATION:
        return True
    cp = ord(char)
    return any(lo <= cp <= hi for lo, hi in CJK_OR_SIMILAR_RANGES)


def world_key(entry: str) -> str:
    """Section 10's key of a (non-empty) entry: ``" " + entry + " "`` without the space next to a
    CJK-or-similar first / last character. ``world_key("C++") == " C++"``, ``world_key("猫") == "猫"``."""
    if not entry:
        raise ValueError("an empty entry has no key (metadata loaders reject it)")
    return ("" if is_cjk_or_similar(entry[0]) else " ") + entry + ("" if is_cjk_or_similar(entry[-1]) else " ")


def is_punctuation_only(entry: str) -> bool:
    """Section 10: an entry made only of punctuation (ASCII and the full-width marks) and
    whitespace is dropped from a language's metadata (the empty entry counts as one)."""
    return all(c in NO_SPACE_PUNCTUATION or c.isspace() for c in entry)


MAX_ENTRY_CHARS = 256    # section 10: longer entries are dropped


LANGUAGE_CODE = re.compile(r"[a-z]{2,3}(_[a-z]+)?")   # a metadata language code (or OTHER)
NOT_AVAILABLE = "N/A"     # lid map: the label's language has no metadata language (-> OTHER)
LID_MAP_FILE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "lid_languages.tsv")


def is_language_code(code: str) -> bool:
    """Whether ``code`` may name a metadata language: ``[a-z]{2,3}(_[a-z]+)?`` or ``other``."""
    return isinstance(code, str) and (code == OTHER or LANGUAGE_CODE.fullmatch(code) is not None)


class LidMapError(ValueError):
    """A LID map file that cannot be used (the message names the file and the line)."""


def load_lid_map(path: str = "") -> dict[str, str]:
    """``{lid_label: metadata_language}`` from a TSV file of ``lid_label<TAB>metadata_language``
    lines (``#`` comments and blank lines ignored; ``N/A`` means :data:`OTHER`; a label may keep
    fastText's ``__label__`` prefix). Empty ``path``:
    the shipped map of lid.176's labels (``worldwide.lid_map``). A local path or a URL."""
    source = path or LID_MAP_FILE
    try:
        if "://" in source:
            from metaclip_spark.inputs.io import read_bytes

            data = read_bytes(source)
        else:
            with open(source, "rb") as fh:
                data = fh.read()
        text = data.decode("utf-8")
    except (OSError, ValueError) as exc:
        raise LidMapError("cannot read LID map %s: %s: %s" % (source, type(exc).__name__, exc)) from None
    out: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) != 2 or not fields[0] or fields[0] != fields[0].strip():
            raise LidMapError("LID map %s, line %d: expected `lid_label<TAB>metadata_language`, got %r"
                              % (source, n, line[:80]))
        label, lang = fields[0].removeprefix("__label__"), fields[1].strip()
        lang = OTHER if lang == NOT_AVAILABLE else lang
        if not is_language_code(lang):
            raise LidMapError("LID map %s, line %d: %r is not a metadata language code ([a-z]{2,3}(_[a-z]+)?, "
                              "other or N/A)" % (source, n, fields[1]))
        if label in out:
            raise LidMapError("LID map %s, line %d: label %r is mapped twice" % (source, n, label))
        out[label] = lang
    if not out:
        raise LidMapError("LID map %s has no mapping line" % source)
    return out


def metadata_language(label: str, lid_map: dict[str, str]) -> str:
    """The metadata language of a LID label (without ``__label__``); unknown or empty: :data:`OTHER`."""
    return lid_map.get(label, OTHER)


class LanguageSpace:
    """The metadata languages in their fixed order with their list sizes: one global id range.

    ``languages``: ``en`` first (when present), then the rest sorted; ``sizes[i]`` entries of
    ``languages[i]``; ``offsets[i]`` its first global id."""

    def __init__(self, sizes: dict[str, int] | Iterable[tuple[str, int]]):
        sizes = dict(sizes)
        order = ([ENGLISH] if ENGLISH in sizes else []) + sorted(k for k in sizes if k != ENGLISH)
        self.languages: tuple[str, ...] = tuple(order)
        self.sizes = np.array([int(sizes[k]) for k in order], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)[:-1]]).astype(np.int64) if order else \
            np.zeros(0, np.int64)
        self.index = {k: i for i, k in enumerate(order)}

    @classmethod
    def english(cls, n: int) -> "LanguageSpace":
        """English mode: one language, ``en``, of ``n`` entries."""
        return cls({ENGLISH: n})

    def __len__(self) -> int:
        """Entries of all languages (the global vector's length)."""
        return int(self.sizes.sum())

    def __eq__(self, other) -> bool:
        return isinstance(other, LanguageSpace) and self.languages == other.languages and \
            bool(np.array_equal(self.sizes, other.sizes))

    def __repr__(self) -> str:
        return "LanguageSpace(%s)" % ", ".join("%s=%d" % kv for kv in zip(self.languages, self.sizes.tolist()))

    def offset(self, lang: str) -> int:
        return int(self.offsets[self.index[lang]])

    def span(self, lang: str) -> slice:
        """The global ids of ``lang``: ``vector[space.span(lang)]`` is its count vector."""
        i = self.index[lang]
        return slice(int(self.offsets[i]), int(self.offsets[i] + self.sizes[i]))

    def lang_of(self, global_ids: np.ndarray) -> np.ndarray:
        """Index into ``languages`` of each global id."""
        return np.searchsorted(self.offsets, np.asarray(global_ids, np.int64), side="right") - 1

    def globalize(self, langs: pa.Array | Sequence[str], entry_ids: pa.Array) -> pa.Array:
        """``list<int32>`` global ids of rows ``(lang, entry_ids)`` (vectorised; a language not in
        the space raises KeyError). English mode (one language at offset 0) returns ``entry_ids``."""
        if isinstance(entry_ids, pa.ChunkedArray):
            entry_ids = entry_ids.combine_chunks()
        if len(self.languages) == 1 and self.offsets[0] == 0:
            return entry_ids
        langs = pa.array(langs, pa.string()) if not isinstance(langs, (pa.Array, pa.ChunkedArray)) else langs
        if isinstance(langs, pa.ChunkedArray):
            langs = langs.combine_chunks()
        codes = pc.index_in(langs, value_set=pa.array(self.languages, pa.string()))
        if codes.null_count:
            bad = langs.filter(pc.is_null(codes))[0].as_py()
            raise KeyError("language %r is not in the metadata (%s)" % (bad, ", ".join(self.languages)))
        row_off = self.offsets[codes.to_numpy(zero_copy_only=False)]
        lengths = pc.list_value_length(entry_ids).fill_null(0).to_numpy(zero_copy_only=False)
        flat = pc.list_flatten(entry_ids).to_numpy(zero_copy_only=False).astype(np.int64)
        flat = flat + np.repeat(row_off, lengths)
        return pa.ListArray.from_arrays(_offsets_of(entry_ids), pa.array(flat.astype(np.int32)))

    def to_json(self) -> list:
        return [[k, int(n)] for k, n in zip(self.languages, self.sizes.tolist())]

    @classmethod
    def from_json(cls, data) -> "LanguageSpace":
        return cls([(k, n) for k, n in data])


def _offsets_of(lists: pa.ListArray) -> pa.Array:
    """The offsets of ``lists`` rebased to 0 (a sliced ListArray's offsets need not start at 0)."""
    off = lists.offsets.to_numpy(zero_copy_only=False).astype(np.int64)
    return pa.array((off - off[0]).astype(np.int32))
