"""MetaCLIP v1 substring matching (docs/semantics.md section 4), exact, with Aho-Corasick.

Reference semantics (MetaCLIP ``substr_matching``): ``spacing(text)`` wraps the text in
one space on each side, puts a space on both sides of each of the seven characters
``, . ; : ? ! ``` (backtick) and turns TAB, LF, CR into one space each; entry ``e``
(id = its position in the metadata) matches iff ``" " + e + " "`` is a substring of the
spaced text. :func:`naive_match` is that definition, verbatim; :class:`Matcher` gives
identical results for every input, with one pyahocorasick automaton over the keys
``" " + e + " "`` (all occurrences, overlapping and nested ones included, are reported).

Entries that can never match (excluded from the automaton; proof). Let P be the seven
characters and S = spacing(t) for any text t. S is the image of " " + t + " " under the
character map h: p -> " p " (p in P), TAB/LF/CR -> " ", any other c -> c. Hence
(a) S holds no TAB/LF/CR; (b) every P character of S has a space on both sides;
(c) two P characters of S are never exactly two apart (each brings its own two spaces,
so ``". ."`` cannot occur, only ``".  ."`` or wider). A key K = " " + e + " " starts and
ends with a space, so its P characters have both neighbours inside K: if K is a
substring of some S, K satisfies (a)-(c). Conversely, if K satisfies (a)-(c), cut K into
the blocks " p " around each P character (disjoint by (c)) and single other characters;
replacing every block by its p gives a text u with h(u) = K, so K occurs in
spacing(u). So (a)-(c) is exactly "can match some text" (:func:`is_matchable`), and
leaving the other entries out of the automaton changes no result. Examples that never
match: "3.5", "St. Louis", "hot dog.", "a\\tb", ". .". Entries that do match: ".",
"a . b", " x" (leading space), "a  b" (double space; only texts that keep a double space,
or ",  b" next to punctuation, e.g. the normalised text "a, b"), "" (the empty entry,
key "  ", matches any text whose spacing has a double space; load_metadata rejects it).

Two automata, same answers (tests/steps/test_match.py runs every case on both): where the
compiled speed-ups are built (metaclip_spark.kernels.native), the Automaton of csrc/ac_match.c, a
breadth-first byte trie over the UTF-8 keys that spaces and encodes the text while it
walks it (on the bench: 2.2-2.5x the plain pyahocorasick loop below; build 0.7-0.9 s,
0.4 s of it in C; 29 MB for the 500k stand-in, 58 MB before the compact layout of #17);
otherwise pyahocorasick (:mod:`metaclip_spark.steps.automaton`; METACLIP_NATIVE=0 selects it).

Speed of the pyahocorasick path and what was tuned there: :mod:`metaclip_spark.steps.automaton`.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import zlib
from collections import OrderedDict
from operator import itemgetter
from typing import Iterable, Sequence

from metaclip_spark.metadata.load import metadata_digest
from metaclip_spark.kernels import native as _kernels
from metaclip_spark.steps.automaton import build_automaton

_native_automaton = _kernels.get("Automaton")   # csrc/ac_match.c; None: pyahocorasick alone

try:
    import orjson as _orjson
except ImportError:  # pragma: no cover
    _orjson = None

log = logging.getLogger(__name__)

__all__ = ["PUNCTUATION", "CONTROL_WHITESPACE", "spacing", "naive_match", "is_matchable", "is_plain_entry",
           "Matcher", "build_count", "clear_automaton_cache"]

PUNCTUATION = ",.;:?!`"
CONTROL_WHITESPACE = "\t\n\r"


def spacing(text: str) -> str:
    """MetaCLIP's spacing: " " + text + " ", each of , . ; : ? ! ` wrapped in spaces
    (in that order), then TAB, LF, CR each replaced by one space. Nothing else.

    Each replace runs only when its character is present (the same result: replacing
    an absent character is the identity); ~35% faster on real captions."""
    s = " " + text + " "
    if "," in s:
        s = s.replace(",", " , ")
    if "." in s:
        s = s.replace(".", " . ")
    if ";" in s:
        s = s.replace(";", " ; ")
    if ":" in s:
        s = s.replace(":", " : ")
    if "?" in s:
        s = s.replace("?", " ? ")
    if "!" in s:
        s = s.replace("!", " ! ")
    if "`" in s:
        s = s.replace("`", " ` ")
    if "\t" in s:
        s = s.replace("\t", " ")
    if "\n" in s:
        s = s.replace("\n", " ")
    if "\r" in s:
        s = s.replace("\r", " ")
    return s


def naive_match(text: str, entries: Sequence[str]) -> list[int]:
    """The reference definition: ids e with " " + entries[e] + " " in spacing(text),
    ascending. O(len(entries)) per text: a test oracle, not for production."""
    spaced = spacing(text)
    return [i for i, e in enumerate(entries) if " " + e + " " in spaced]


# A key " e " can occur in a spaced text iff none of these patterns occurs in it
# (see the module docstring for the proof).
_NEVER = re.compile(r"[\t\n\r]|[^ ][,.;:?!`]|[,.;:?!`][^ ]|[,.;:?!`] [,.;:?!`]")


_SPECIAL = re.compile(r"[,.;:?!`\t\n\r]").search


def is_matchable(entry: str, *, normalised: bool = False) -> bool:
    """Whether ``entry`` can ever match: the one rule, used by the Matcher (entries left
    out of the automaton), the metadata builders and the default metadata.

    ``normalised=False``: True iff some text t has " " + entry + " " in spacing(t)
    (exact criterion, proof in the module docstring).

    ``normalised=True``: the rule for metadata lists, whose entries are matched against
    whitespace-normalised alt texts (``" ".join(alt.split())``): also False for the
    empty entry and for an entry holding a double space (the contract's reading: a
    normalised text never holds a double space; docs/semantics.md section 4, section 8's
    ``never_match``)."""
    if normalised and (not entry or "  " in entry):
        return False
    return _NEVER.search(" " + entry + " ") is None


def is_plain_entry(entry: str) -> bool:
    """The default vocabulary's stricter reading of the contract: ``is_matchable(entry,
    normalised=True)`` and, on top, no spacing character at all (``.`` or ``a , b`` can
    match, but the contract lists them as never matching) and already whitespace-
    normalised (no leading/trailing space, TAB/LF/CR, NBSP or other Unicode space)."""
    return (is_matchable(entry, normalised=True) and entry == " ".join(entry.split())
            and _SPECIAL(entry) is None)


# --------------------------------------------------------------------------------
# Building the automaton

_MAX_ID = 2 ** 31 - 1  # STORE_INTS keeps 32-bit signed values

_first = itemgetter(1)


class _Built:
    """The per-process product of a build: the automaton and the duplicate table."""

    __slots__ = ("automaton", "native", "dups", "dup_keys", "n_keys", "n_never")

    def __init__(self, entries: Sequence[str]):
        n = len(entries)
        if n > _MAX_ID:
            raise ValueError("too many entries for 32-bit ids: %d" % n)
        # first id of each distinct string (C-level: later items overwrite earlier ones)
        first_id = dict(zip(reversed(entries), range(n - 1, -1, -1)))
        dups: dict[int, list[int]] = {}
        if len(first_id) != n:
            for i, e in enumerate(entries):
                j = first_id[e]
                if j != i:
                    dups.setdefault(j, [j]).append(i)
        # entries that can never match (proof in the module docstring); the cheap
        # character test first, the exact pattern on the few candidates
        maybe = [e for e, hit in zip(first_id, map(_SPECIAL, first_id)) if hit is not None]
        never_set = {e for e in maybe if not is_matchable(e)}
        self.dups = {j: tuple(ids) for j, ids in dups.items() if entries[j] not in never_set}
        self.dup_keys = frozenset(self.dups)
        kept = [e for e in first_id if e not in never_set] if never_set else list(first_id)
        self.n_never = (len(never_set) if not dups else
                        sum(1 for e in entries if e in never_set))
        self.n_keys = len(kept)
        if _native_automaton is not None:
            # the compiled automaton (csrc/ac_match.c): same answers, its own compact layout
            self.native = _native_automaton(kept, [first_id[e] for e in kept])
            self.automaton = None
            return
        self.native = None
        self.automaton = build_automaton(kept, first_id)


_CACHE: "OrderedDict[str, _Built]" = OrderedDict()
_CACHE_MAX = 4
_CACHE_LOCK = threading.Lock()
_BUILDS = 0


def build_count() -> int:
    """How many automata this process has built (for tests and logging)."""
    return _BUILDS


def clear_automaton_cache() -> None:
    """Forget the per-process automata (Matchers rebuild on next use)."""
    with _CACHE_LOCK:
        _CACHE.clear()


def _get_built(digest: str, entries_fn) -> _Built:
    global _BUILDS
    with _CACHE_LOCK:
        built = _CACHE.get(digest)
        if built is not None:
            _CACHE.move_to_end(digest)
            return built
        built = _Built(entries_fn())
        _BUILDS += 1
        _CACHE[digest] = built
        while len(_CACHE) > _CACHE_MAX:
            _CACHE.popitem(last=False)
    log.info("built matching automaton %s: %d keys, %d entries can never match, "
             "%d duplicate strings", digest[:12], built.n_keys, built.n_never, len(built.dups))
    return built


# --------------------------------------------------------------------------------
# Compact pickled form of the entries

def _pack(entries: list[str]) -> bytes:
    if _orjson is not None:
        try:
            return b"O" + zlib.compress(_orjson.dumps(entries), 1)
        except TypeError:  # lone surrogates: orjson refuses them
            pass
    raw = json.dumps(entries, ensure_ascii=False, separators=(",", ":"))
    return b"J" + zlib.compress(raw.encode("utf-8", "surrogatepass"), 1)


def _unpack(blob: bytes) -> list[str]:
    kind, data = blob[:1], zlib.decompress(blob[1:])
    if kind == b"O" and _orjson is not None:
        return _orjson.loads(data)
    return json.loads(data.decode("utf-8", "surrogatepass"))


# --------------------------------------------------------------------------------

class Matcher:
    """Exact MetaCLIP substring matcher over a fixed metadata list.

    ``match(text)`` -> ascending unique ids; ``match_many(texts)`` -> one list per text.
    Results equal :func:`naive_match` for every input. Picklable for a Spark broadcast:
    the pickle holds the entries only (zlib-compressed JSON, ~4 MB for 500k); the
    automaton is built lazily on first use, once per process (cached by ``digest``).

    ``cache_size``: bound of the text -> ids cache (a dict emptied when full; real alt
    texts repeat a lot, "logo", "image"; texts longer than ``cache_max_len`` are not
    cached; 0 disables it). Returned lists are fresh copies, callers may modify them.
    """

    def __init__(self, entries: Iterable[str], *, cache_size: int = 32768,
                 cache_max_len: int = 512):
        entries = list(entries)
        if set(map(type, entries)) - {str}:
            bad = next(i for i, e in enumerate(entries) if not isinstance(e, str))
            raise TypeError("metadata entry %d is not a str: %r" % (bad, entries[bad]))
        self._entries: list[str] | None = entries
        self._n = len(entries)
        self._digest = metadata_digest(entries)
        self._blob: bytes | None = None
        self._cache_size = int(cache_size)
        self._cache_max_len = int(cache_max_len)
        self._init_runtime()

    def _init_runtime(self) -> None:
        self._built: _Built | None = None
        self._cache: dict[str, list] = {}  # text -> ids; never handed out, only copies

    # ---- identity, pickling ----------------------------------------------------
    @property
    def digest(self) -> str:
        """sha256 of the entries (``metadata.metadata_digest``)."""
        return self._digest

    def __len__(self) -> int:
        return self._n

    @property
    def entries(self) -> list[str]:
        """The metadata entries (id = position). Do not modify."""
        if self._entries is None:
            self._entries = self._load_entries()
        return self._entries

    def _load_entries(self) -> list[str]:
        entries = _unpack(self._blob)
        if len(entries) != self._n or metadata_digest(entries) != self._digest:
            raise ValueError("pickled Matcher is corrupt: entries do not match digest %s"
                             % self._digest)
        return entries

    def __getstate__(self) -> dict:
        if self._blob is None:
            self._blob = _pack(self._entries)
        return {"format": 1, "n": self._n, "digest": self._digest, "blob": self._blob,
                "cache_size": self._cache_size, "cache_max_len": self._cache_max_len}

    def __setstate__(self, state: dict) -> None:
        if state.get("format") != 1:
            raise ValueError("unknown Matcher pickle format %r" % state.get("format"))
        self._n = state["n"]
        self._digest = state["digest"]
        self._blob = state["blob"]
        self._entries = None  # decoded only if the process has to build (or asks)
        self._cache_size = state["cache_size"]
        self._cache_max_len = state["cache_max_len"]
        self._init_runtime()

    def __repr__(self) -> str:
        return "Matcher(%d entries, digest=%s)" % (self._n, self._digest[:12])

    # ---- building ----------------------------------------------------------------
    def _get(self) -> _Built:
        built = self._built
        if built is None:
            built = self._built = _get_built(self._digest, lambda: self.entries)
            if self._blob is not None:
                self._entries = None  # worker: keep the compact form only
        return built

    def prepare(self) -> "Matcher":
        """Build (or fetch from the process cache) the automaton now."""
        self._get()
        return self

    @property
    def stats(self) -> dict:
        b = self._get()
        return {"entries": self._n, "keys": b.n_keys, "never_match": b.n_never,
                "duplicate_strings": len(b.dups)}

    # ---- matching ----------------------------------------------------------------
    def _expand(self, ids: list[int], b: _Built) -> list[int]:
        out = set()
        for i in ids:
            out.update(b.dups.get(i, (i,)))
        return sorted(out)

    def _match_one(self, text: str, b: _Built) -> list[int]:
        native = b.native
        if native is not None:
            ids = native.find(text)              # spaces the text itself, ids ascending, unique
        else:
            # No Python work per hit: map/set/sorted run in C. Guard keys (value -2)
            # contain LF, which spacing() removes, so they never report.
            ids = sorted(set(map(_first, b.automaton.iter(spacing(text)))))
        if b.dup_keys and not b.dup_keys.isdisjoint(ids):
            ids = self._expand(ids, b)
        return ids

    def match(self, text: str) -> list[int]:
        """Ids of the entries matching ``text``, ascending, each once."""
        cache = self._cache
        ids = cache.get(text)
        if ids is not None:
            return ids.copy()
        ids = self._match_one(text, self._built or self._get())
        if self._cache_size > 0 and len(text) <= self._cache_max_len:
            if len(cache) >= self._cache_size:
                cache.clear()  # bounded; frequent texts come back at once
            cache[text] = ids
            return ids.copy()
        return ids

    def __call__(self, text: str) -> list[int]:
        return self.match(text)

    def match_many(self, texts: Iterable[str]) -> list[list[int]]:
        """``[match(t) for t in texts]``, each distinct text matched once."""
        texts = texts if isinstance(texts, list) else list(texts)
        if not texts:
            return []
        b = self._built or self._get()
        uniq = list(dict.fromkeys(texts))
        cache = self._cache
        if cache:
            found = dict(zip(uniq, map(cache.get, uniq)))
            todo = [t for t in uniq if found[t] is None]
        else:
            found = {}
            todo = uniq
        if todo:
            one = self._match_one
            results = [one(t, b) for t in todo]
            found.update(zip(todo, results))
            size = self._cache_size
            if size > 0:
                maxlen = self._cache_max_len
                new = [(t, r) for t, r in zip(todo, results) if len(t) <= maxlen][:size]
                if len(cache) + len(new) > size:
                    cache.clear()
                cache.update(new)
        return list(map(list.copy, map(found.__getitem__, texts)))
