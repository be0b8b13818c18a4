"""MetaCLIP v1 substring matching (SPEC section 4), exact, with Aho-Corasick.

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
0.4 s of it in C; 58 MB for the 500k stand-in); otherwise pyahocorasick, tuned as described here (numbers below are
for this path; METACLIP_NATIVE=0 selects it).

Speed, measured on this project's 2-vCPU VM (AMD EPYC, Python 3.11, pyahocorasick
2.3.1) with the 500k-entry stand-in metadata and the 10,000 img2dataset test captions
(36,612 matches in all, 8,388 captions with at least one). The VM is shared and noisy
(+-25% run to run); the figures are best-of-15, both sides in the same process:

  Matcher build (first use in a process)   2.4-3.0 s, RSS +171 MB (476,384 keys)
  plain automaton build (file order)       1.5-2.2 s, RSS +165-171 MB
  pickled Matcher                          3.9 MB (zlib'd JSON of the entries), 0.12 s;
                                           unpickle + first match, automaton cached: 0.5 ms
  naive_match                              ~12 texts/s
  plain ``for end, v in A.iter(spacing(t))`` loop   106k-138k texts/s
  Matcher.match, one call per text         125k-158k texts/s   (x1.14-1.19)
  Matcher.match_many                       129k-153k texts/s   (x1.10-1.29)
  Matcher.match_many, texts seen before    1.4M texts/s        (the text cache)

The automaton walk itself (pyahocorasick's C loop, ~70 ns per character, memory
bound) is ~2/3 of the plain loop's time and the same work for any Python caller, so
the gain left to Python is bounded; x1.5 over the plain loop is NOT reached on the
10k test captions, which hardly repeat (12 duplicates). What was kept, measured:
(1) insertion order: pyahocorasick scans a node's children linearly in insertion
order; sorting the keys (word-initial / in-word character collations, see _INITIAL)
and allocating each subtree's nodes together makes the walk 1.2-1.3x faster than a
file-order automaton when measured alone; (2) guard keys for characters that start no
entry (the spaced " , " and " . ", the double space after them, "-", "|"): they cut
the comparisons at the node after a space from ~98 to ~23 per word; (3) int values
(STORE_INTS) with a side table for duplicate strings, and no Python per hit
(``sorted(set(map(itemgetter(1), it)))``); (4) spacing() skips absent characters
(x1.55 on spacing alone); (5) match_many matches each distinct text once, plus a
bounded text -> ids cache (real alt texts repeat a lot: "logo", "image").
Tried and dropped: str.translate for spacing (2.5x slower than chained replaces,
same result); one scan over a whole batch joined by a sentinel key (no faster than
per text: the per-hit Python loop eats the saved per-call cost); re-laying the trie
out through a pickle round trip (no stable gain, +300 MB peak); token-set lookups for
one-word entries plus a smaller automaton for the rest (slower).
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

import ahocorasick

from metaclip_spark.metadata.load import metadata_digest
from metaclip_spark.kernels import native as _kernels

_native_automaton = _kernels.get("Automaton")   # csrc/ac_match.c; None: pyahocorasick alone

try:
    import orjson as _orjson
except ImportError:  # pragma: no cover
    _orjson = None

log = logging.getLogger(__name__)

__all__ = ["PUNCTUATION", "CONTROL_WHITESPACE", "spacing", "naive_match", "is_matchable",
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


def is_matchable(entry: str) -> bool:
    """True iff some text t has " " + entry + " " in spacing(t) (exact criterion)."""
    return _NEVER.search(" " + entry + " ") is None


# --------------------------------------------------------------------------------
# Building the automaton

# Insertion order of the keys (never affects results, only speed). pyahocorasick keeps
# a node's children in insertion order and scans them linearly, and the node reached
# after a space has ~400 children, so: (1) keys are inserted sorted by a collation
# that ranks the first character of the entry by how often it starts a word in web
# alt text (_INITIAL) and the other characters by English letter frequency (_INNER);
# (2) "guard" keys " c<LF>" give the characters that start no entry (the spaced
# punctuation " , ", " . ", the double space after it, "-", "|", ...) an early child
# of that node, so reading them costs a few comparisons instead of a ~400-long miss.
# A guard contains LF, which no spaced text contains, so it never matches.
_ASCII_REST = "".join(chr(c) for c in range(0x20, 0x7f))
_INITIAL = (" ,.-TtSsCcAaPpBbMmFfDdRrWwLlHhGgIiOoNnEeKkJjVvUuYyZzQqXx1203456789"
            ":(&/|\"'#+)!?;*[@$%=_<>{}~^\\]`" "\u2013\u2014\u2022\u00b7\u00bb\u00ab"
            "\u201c\u201d\u2018\u2019\u00a9\u00ae\u2122")
_INNER = (" etaoinshrdlcumwfgypbvkjxqz" "TSACBMPDRHLFGWNEIOKJVUYZQX" "0123456789"
          "-'&/()\"+#_%*@$=[]{}<>|~^\\" ",.;:?!`")
assert set(_ASCII_REST) <= set(_INITIAL) and set(_ASCII_REST) <= set(_INNER)
_INITIAL_RANK = {ord(c): chr(i + 1) for i, c in enumerate(_INITIAL)}
_INNER_RANK = {ord(c): chr(i + 1) for i, c in enumerate(_INNER)}
_GUARD_ID = -2

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
        never_set = {e for e in maybe if _NEVER.search(" " + e + " ") is not None}
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
        starts = {e[0] if e else " " for e in kept}  # the character after the key's space
        items = [(e[:1].translate(_INITIAL_RANK) + e[1:].translate(_INNER_RANK),
                  " " + e + " ", first_id[e]) for e in kept]
        items.extend((c.translate(_INITIAL_RANK), " " + c + "\n", _GUARD_ID)
                     for c in _INITIAL if c not in starts)
        # Sorting keeps the sort keys alive until the automaton is built: the trie nodes
        # are small PyMem blocks, and freeing 500k short strings first would leave holes
        # that scatter the nodes over the heap (slower walks).
        items.sort()
        del kept
        automaton = ahocorasick.Automaton(ahocorasick.STORE_INTS)
        add = automaton.add_word
        for _, key, value in items:
            add(key, value)
        automaton.make_automaton()
        del items
        self.automaton = automaton


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
