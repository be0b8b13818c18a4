"""The WordNet part of MetaCLIP metadata, read from WordNet 3.0's own dictionary files.

Recipe (docs/semantics.md section 8): every synset's name as NLTK spells it (``dog.n.01``: the
synset's first lemma, lower-cased, adjective markers such as ``(a)``/``(p)``/``(ip)``
removed) cut at the first ``.`` with ``_`` turned into a space; de-duplicated, first
occurrence first, the empty name (from lemmas such as ``.22``) dropped; then the 100
strings ``"0"`` .. ``"99"`` (those not already present). On Debian's ``wordnet-base``
3.0 (``/usr/share/wordnet``) this gives exactly 86,554 + 100 = 86,654 strings.

Only the four ``data.{noun,verb,adj,adv}`` files are read, in NLTK's ``all_synsets``
order (noun, verb, adjective, adverb; file order inside each). Lines starting with a
space are the licence header. No NLTK needed.
"""

from __future__ import annotations

import os
import re

DEFAULT_WORDNET_DIR = "/usr/share/wordnet"
DATA_FILES = ("data.noun", "data.verb", "data.adj", "data.adv")
NUMBERS = tuple(str(i) for i in range(100))
_ADJ_MARKER = re.compile(r"\([a-z]+\)$")


class WordNetError(ValueError):
    """A WordNet dictionary folder that cannot be used (raised before Spark starts)."""


def check_wordnet_dir(path: str) -> None:
    missing = [f for f in DATA_FILES if not os.path.isfile(os.path.join(path, f))]
    if missing:
        raise WordNetError("WordNet dictionary folder %s lacks %s (install Debian's wordnet-base, "
                           "or set metadata_build.wordnet to a WordNet 3.0 'dict' folder)"
                           % (path, ", ".join(missing)))


def synset_head_lemmas(path: str = DEFAULT_WORDNET_DIR):
    """Yield the first lemma of every synset, as written in the data files."""
    check_wordnet_dir(path)
    for name in DATA_FILES:
        with open(os.path.join(path, name), encoding="utf-8", errors="replace") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip() or line.startswith(" "):
                    continue
                fields = line.split(" ", 5)
                if len(fields) < 5:
                    raise WordNetError("%s line %d: not a WordNet data line" % (name, lineno))
                yield _ADJ_MARKER.sub("", fields[4])


def synset_name(head_lemma: str) -> str:
    """``'St._Louis'`` -> ``'st'``; ``'hot_dog'`` -> ``'hot dog'`` (docs/semantics.md section 8)."""
    return head_lemma.lower().split(".", 1)[0].replace("_", " ")


def wordnet_entries(path: str = DEFAULT_WORDNET_DIR) -> list[str]:
    """The WordNet component of the metadata, in order (86,654 strings on WordNet 3.0)."""
    seen: set[str] = set()
    out: list[str] = []
    for lemma in synset_head_lemmas(path):
        name = synset_name(lemma)
        if name and name not in seen:
            seen.add(name)
            out.append(name)
    for n in NUMBERS:
        if n not in seen:
            seen.add(n)
            out.append(n)
    return out
