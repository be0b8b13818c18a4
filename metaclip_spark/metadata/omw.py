"""The WordNet part of a non-English metadata list, read from an Open Multilingual Wordnet file.

Input: one of OMW's ``wn-data-<code>.tab`` files (user-supplied: local, ``s3://`` or
``https://``; nothing is downloaded by default). Lines are ``offset-pos<TAB>label<TAB>value``;
``#`` lines are comments (the first names the language and licence); ``label`` is
``<code>:lemma`` (or bare ``lemma``) for a lemma of synset ``offset-pos``; other labels
(``<code>:def``, ``<code>:exe``, ...) are not lemmas.

Recipe (MetaCLIP 2's ``build_multilingual_wordnet.py`` through NLTK's ``lemma_names(lang)``, then
``build_metadata.py``): every lemma of the language, stripped, ``_`` turned into a space and
``+`` removed; de-duplicated and sorted (code-point order). Empty names are left out here;
punctuation-only and over-long ones are dropped when the list is assembled
(:mod:`metaclip_spark.metadata.world_build`).

Which code: MetaCLIP 2 maps 30 OMW codes to Wikipedia languages (:data:`OMW_TO_WIKI`). For a
mapped language only lemmas of its code (or unlabelled ``lemma``) are read, and a file holding
none of them is an error; for any other language the file must hold exactly one code.
"""

from __future__ import annotations

from metaclip_spark.inputs.io import read_bytes

# MetaCLIP 2 build_metadata.py wordnet_to_wiki: OMW code -> Wikipedia language
OMW_TO_WIKI = {
    "fin": "fi", "heb": "he", "slv": "sl", "ita": "it", "nno": "nn", "nob": "no", "als": "als", "pol": "pl",
    "hrv": "hr", "nld": "nl", "ron": "ro", "arb": "ar", "isl": "is", "swe": "sv", "por": "pt", "cmn": "zh",
    "jpn": "ja", "dan": "da", "slk": "sk", "lit": "lt", "bul": "bg", "eus": "eu", "cat": "ca", "glg": "gl",
    "spa": "es", "ell": "el", "zsm": "ms", "ind": "id", "fra": "fr", "tha": "th",
}
WIKI_TO_OMW = {wiki: code for code, wiki in OMW_TO_WIKI.items()}


class OMWError(ValueError):
    """An OMW tab file that cannot be used (raised before Spark starts)."""


def parse_omw(text: str, lang: str, source: str = "OMW file") -> list[str]:
    """The WordNet names of ``lang`` in an OMW tab file's text (see the module doc)."""
    want = WIKI_TO_OMW.get(lang)
    by_code: dict[str, set[str]] = {}
    plain: set[str] = set()
    rows = 0
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        parts = line.rstrip("\r\n").split("\t")
        if len(parts) < 3:
            continue
        rows += 1
        label = parts[1].split(":")
        if label[-1] != "lemma":
            continue
        name = parts[-1].strip().replace("_", " ").replace("+", "")
        target = plain if len(label) == 1 else by_code.setdefault(label[0], set())
        if name:
            target.add(name)
    if not rows:
        raise OMWError("%s holds no `offset-pos<TAB>label<TAB>value` line (expected an OMW wn-data-*.tab file)"
                       % source)
    if want is not None:
        if want not in by_code and not plain:
            raise OMWError("%s has no lemmas of %s (OMW code of %r); it holds %s"
                           % (source, want, lang, ", ".join(sorted(by_code)) or "no lemma lines"))
        names = by_code.get(want, set()) | plain
    else:
        if len(by_code) > 1:
            raise OMWError("%s holds the OMW languages %s: which one is %r is not known (pass a file of one "
                           "language)" % (source, ", ".join(sorted(by_code)), lang))
        names = plain.union(*by_code.values())
    return sorted(names)


def read_omw(uri: str, lang: str) -> list[str]:
    """:func:`parse_omw` of the file at ``uri`` (UTF-8)."""
    try:
        data = read_bytes(uri)
    except (OSError, ValueError) as exc:
        raise OMWError("cannot read the OMW file %s: %s" % (uri, exc)) from exc
    return parse_omw(data.decode("utf-8", errors="replace"), lang, uri)
