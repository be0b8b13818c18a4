"""The pyahocorasick automaton of :class:`metaclip_spark.steps.match.Matcher`: the
reference path, used where the compiled speed-ups are not built (METACLIP_NATIVE=0
selects it). Same answers as csrc/ac_match.c (tests/steps/test_match.py runs every case
on both); the matching rule itself, spacing and which entries can match, is in
:mod:`metaclip_spark.steps.match`.

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

from typing import Mapping, Sequence

import ahocorasick

__all__ = ["GUARD_ID", "build_automaton"]

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
GUARD_ID = _GUARD_ID


def build_automaton(kept: Sequence[str], first_id: Mapping[str, int]) -> "ahocorasick.Automaton":
    """One STORE_INTS automaton over the keys ``" " + e + " "`` of ``kept`` (distinct
    entries that can match), value ``first_id[e]``, plus the guard keys (value
    :data:`GUARD_ID`, never reported on a spaced text). Insertion order as above."""
    starts = {e[0] if e else " " for e in kept}  # the character after the key's space
    items = [(e[:1].translate(_INITIAL_RANK) + e[1:].translate(_INNER_RANK),
              " " + e + " ", first_id[e]) for e in kept]
    items.extend((c.translate(_INITIAL_RANK), " " + c + "\n", _GUARD_ID)
                 for c in _INITIAL if c not in starts)
    # Sorting keeps the sort keys alive until the automaton is built: the trie nodes
    # are small PyMem blocks, and freeing 500k short strings first would leave holes
    # that scatter the nodes over the heap (slower walks).
    items.sort()
    automaton = ahocorasick.Automaton(ahocorasick.STORE_INTS)
    add = automaton.add_word
    for _, key, value in items:
        add(key, value)
    automaton.make_automaton()
    del items
    return automaton
