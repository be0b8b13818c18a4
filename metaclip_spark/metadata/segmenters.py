"""Word segmenters for the Wikipedia n-grams of languages written without spaces (MetaCLIP 2's
``build_ngram.py`` ``no_space_languages`` and ``lang_tokenizers/``; docs/worldwide.md section
"build-metadata per language").

Each segmenter is an optional PyPI package that works offline (its dictionary or model ships in
the package); none downloads anything at run time. A language whose segmenter is not installed
fails before Spark starts with :class:`SegmenterError` naming the package(s) to install
(``pip install 'metaclip-spark[worldwide]'`` brings every one that works offline):

==========================  ===============================  ===================================
languages                   package(s)                       MetaCLIP 2 used
==========================  ===============================  ===================================
zh, zh_classical, zh_yue    jieba (precise mode, HMM on)     ckip-transformers (a BERT, GPU)
ja, ryu                     fugashi + unidic-lite            mecab-python3 + ipadic
th                          pythainlp (engine ``newmm``)     thai-segmenter
km                          khmer-nltk                       a CRF model file of its own
lo                          laonlp                           laonlp
bo, dz                      botok + its "general" dialect    botok (downloads the pack on first
                            pack already on disk             use: here it must be present)
my                          none on PyPI works offline       a CRF model downloaded at run time
==========================  ===============================  ===================================

A segmenter maps one whitespace-free chunk of text to its tokens (:func:`get_segmenter`); it is
built once per Python process. Spaced languages need none (``metadata/world_build``'s token rule).
"""

from __future__ import annotations

import importlib.util
import logging
import os
from dataclasses import dataclass, field
from typing import Callable, Mapping

Segment = Callable[[str], list]

# MetaCLIP 2 build_metadata.py / build_ngram.py: languages whose bigrams are joined without a space
NO_SPACE_LANGUAGES = frozenset({"bo", "dz", "ja", "km", "lo", "my", "ryu", "th", "zh", "zh_classical", "zh_yue"})


class SegmenterError(ValueError):
    """A language written without spaces whose word segmenter cannot run here (before Spark)."""


@dataclass(frozen=True)
class SegmenterSpec:
    name: str                          # what the docs and stats call it
    modules: tuple[str, ...]           # importable names that must be present
    packages: tuple[str, ...]          # what to `pip install`
    load: Callable[[], Segment] | None = field(default=None, compare=False)
    check: Callable[[], str | None] | None = field(default=None, compare=False)   # extra check: a problem or None

    def missing(self) -> list[str]:
        return [m for m in self.modules if importlib.util.find_spec(m) is None]


def _jieba() -> Segment:
    import jieba

    jieba.setLogLevel(logging.WARNING)
    tok = jieba.Tokenizer()
    return lambda chunk: tok.lcut(chunk, cut_all=False, HMM=True)


def _fugashi() -> Segment:
    import fugashi
    import unidic_lite

    d = unidic_lite.DICDIR
    tagger = fugashi.Tagger('-d "%s" -r "%s"' % (d, os.path.join(d, "mecabrc")))
    return lambda chunk: [w.surface for w in tagger(chunk)]


def _pythainlp() -> Segment:
    from pythainlp.tokenize import word_tokenize

    return lambda chunk: word_tokenize(chunk, engine="newmm", keep_whitespace=False)


def _khmer() -> Segment:
    logging.getLogger("khmer-nltk").setLevel(logging.WARNING)
    from khmernltk import word_tokenize

    return lambda chunk: word_tokenize(chunk)


def _laonlp() -> Segment:
    from laonlp.tokenize import word_tokenize

    return lambda chunk: word_tokenize(chunk)


def _botok_pack():
    from botok.config import DEFAULT_BASE_PATH

    return DEFAULT_BASE_PATH / "general"


def _botok_check() -> str | None:
    pack = _botok_pack()
    if not (pack / "dictionary").is_dir():
        return ("botok's 'general' dialect pack is not at %s (botok would download it; this tool never "
                "downloads: put the pack there first)" % pack)
    return None


def _botok() -> Segment:
    from botok import WordTokenizer
    from botok.config import Config

    cfg = Config.__new__(Config)
    cfg.reset(_botok_pack())           # the pack on disk: Config() itself would download a missing one
    wt = WordTokenizer(config=cfg)
    return lambda chunk: [t["text"] for t in wt.tokenize(chunk, split_affixes=False)]


_ZH = SegmenterSpec("jieba", ("jieba",), ("jieba",), _jieba)
_JA = SegmenterSpec("fugashi+unidic-lite", ("fugashi", "unidic_lite"), ("fugashi", "unidic-lite"), _fugashi)
_BO = SegmenterSpec("botok", ("botok",), ("botok",), _botok, _botok_check)
SEGMENTERS: dict[str, SegmenterSpec | None] = {
    "zh": _ZH, "zh_classical": _ZH, "zh_yue": _ZH,
    "ja": _JA, "ryu": _JA,
    "th": SegmenterSpec("pythainlp", ("pythainlp",), ("pythainlp",), _pythainlp),
    "km": SegmenterSpec("khmer-nltk", ("khmernltk",), ("khmer-nltk",), _khmer),
    "lo": SegmenterSpec("laonlp", ("laonlp",), ("laonlp",), _laonlp),
    "bo": _BO, "dz": _BO,
    "my": None,
}

_loaded: dict[tuple[str, str], Segment] = {}


def needs_segmenter(lang: str) -> bool:
    return lang in NO_SPACE_LANGUAGES


def check_segmenter(lang: str, registry: Mapping[str, SegmenterSpec | None] = SEGMENTERS) -> SegmenterSpec | None:
    """The segmenter of ``lang`` after checking it can run here (None: a spaced language).
    Raises :class:`SegmenterError` naming what to install."""
    if not needs_segmenter(lang):
        return None
    spec = registry.get(lang)
    if spec is None:
        raise SegmenterError("Wikipedia n-grams of %r (written without spaces) need a word segmenter, and none "
                             "that works offline is known for it" % lang)
    missing = spec.missing()
    if missing:
        raise SegmenterError("Wikipedia n-grams of %r (written without spaces) need the word segmenter %s: "
                             "pip install %s (module%s %s not found; pip install 'metaclip-spark[worldwide]' "
                             "installs the offline ones)" % (lang, spec.name, " ".join(spec.packages),
                                                             "s" if len(missing) > 1 else "", ", ".join(missing)))
    problem = spec.check() if spec.check else None
    if problem:
        raise SegmenterError("word segmenter %s of %r cannot run: %s" % (spec.name, lang, problem))
    return spec


def get_segmenter(lang: str, registry: Mapping[str, SegmenterSpec | None] = SEGMENTERS) -> Segment:
    """``segment(chunk) -> tokens`` for ``lang`` (checked, built once per process)."""
    spec = check_segmenter(lang, registry)
    if spec is None:
        raise SegmenterError("%r is written with spaces: it needs no segmenter" % lang)
    key = (lang, spec.name)
    if key not in _loaded:
        _loaded[key] = spec.load()
    return _loaded[key]
