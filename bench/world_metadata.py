"""A generated worldwide metadata folder for the bench (issue #17): ``{lang}.json`` lists of 30
languages, 15,000,000 entries in all, deterministic and cached under bench/work/ (keyed by the
parameters and the inputs' names, sizes and mtimes).

``python -m bench.world_metadata [--total N] [--languages K] [--seed S] [--texts FILE ...]``
prints the folder.

Shapes (MetaCLIP 2's build_metadata, docs/worldwide.md): ``en.json`` is the 500k stand-in of
MetaCLIP v1's metadata (../shared/data/metadata); every other language gets "0".."99", then
unigrams, bigrams and titles in the proportions of MetaCLIP 2's caps (251,465 / 100,646 /
61,235: 61% / 24% / 15%), and three entries section 10 drops (one over 256 characters, two
punctuation-only), so the per-language drop report has something to say.
- Vocabulary: the real words of that language first, most frequent first, from ``texts``
  (captions Parquet files with a TEXT/caption column, or WARC/WAT files: their alt texts),
  each text labelled by fastText lid.176 (the project's model); then seeded pseudo-words from
  the language's alphabet (Latin with its letters, Cyrillic, Greek, Arabic, Hebrew, Devanagari,
  Bengali). Bigrams: real adjacent word pairs first, then pairs of vocabulary words drawn
  Zipf-like; titles: 2-4 capitalised vocabulary words.
- zh, ja, th, ko: entries are character n-grams in their scripts (real n-grams of the texts
  first, then seeded ones: CJK ideographs, kana + kanji, Thai, Hangul syllables); bigrams are
  two n-grams joined without a space (Korean, written with spaces, joins with one).
Sizes: English fixed by its file; the other languages share the rest by a decreasing profile
(larger languages first, ~0.45-0.55M each, MetaCLIP 2's caps), summing to exactly ``total``.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import re
import shutil
import string
import sys
import time

import numpy as np

from bench.corpus import WORK, shared

LANGUAGES = ("en", "de", "fr", "es", "ja", "ru", "it", "zh", "pt", "pl", "nl", "sv", "tr", "ko", "ar",
             "fa", "cs", "uk", "vi", "id", "hu", "fi", "el", "he", "hi", "th", "ro", "da", "ca", "bn")
CHAR_NGRAM = frozenset(("zh", "ja", "th", "ko"))
JOIN_NO_SPACE = frozenset(("zh", "ja", "th"))
VERSION = 1                                    # bump when the recipe changes (part of the cache key)


def _rng(lo: int, hi: int) -> str:
    return "".join(chr(c) for c in range(lo, hi + 1))


_LATIN = string.ascii_lowercase
ALPHABETS = {
    "de": _LATIN + "äöüß", "fr": _LATIN + "éèêàçùâôî", "es": _LATIN + "ñáéíóú", "it": _LATIN + "àèéìòù",
    "pt": _LATIN + "ãõçáéíóúâê", "pl": _LATIN + "ąćęłńóśźż", "nl": _LATIN + "ë", "sv": _LATIN + "åäö",
    "tr": _LATIN + "çğıöşü", "vi": _LATIN + "ăâđêôơưạảấầẩậắếềệịọốồộớờợụủứừữỳ", "id": _LATIN,
    "cs": _LATIN + "áčďéěíňóřšťúůýž", "hu": _LATIN + "áéíóöőúüű", "fi": _LATIN + "äö", "ro": _LATIN + "ăâîșț",
    "da": _LATIN + "æøå", "ca": _LATIN + "àçèéíïòóúü",
    "ru": _rng(0x430, 0x44F), "uk": _rng(0x430, 0x449) + "ьюяєіїґ", "el": _rng(0x3B1, 0x3C9),
    "ar": _rng(0x621, 0x64A), "fa": _rng(0x621, 0x64A) + "پچژگکی", "he": _rng(0x5D0, 0x5EA),
    "hi": _rng(0x915, 0x939) + _rng(0x93E, 0x94C), "bn": _rng(0x995, 0x9B9) + _rng(0x9BE, 0x9CC),
    # character n-gram languages: the script's characters (CJK: the first 6,000 of the block, Zipf-drawn)
    "zh": _rng(0x4E00, 0x4E00 + 5999), "ja": _rng(0x3041, 0x3093) + _rng(0x30A1, 0x30F3) + _rng(0x4E00, 0x4E00 + 2999),
    "th": _rng(0xE01, 0xE2E) + _rng(0xE30, 0xE3A) + _rng(0xE40, 0xE4E), "ko": _rng(0xAC00, 0xAC00 + 2349),
}
_SCRIPT = {"zh": re.compile(r"[\u4e00-\u9fff]+"), "ja": re.compile(r"[\u3041-\u30ff\u4e00-\u9fff]+"),
           "th": re.compile(r"[\u0e00-\u0e7f]+"), "ko": re.compile(r"[\uac00-\ud7a3]+")}
_STRIP = string.punctuation + "«»“”‘’„…·•–—|"


def sizes(total: int, english: int, k: int) -> dict[str, int]:
    """Entries per language: ``english`` for en, the rest by a decreasing profile summing to ``total``."""
    langs = LANGUAGES[:k]
    rest = total - english
    w = np.array([1.0 / (i + 6) ** 0.15 for i in range(k - 1)])
    n = np.floor(rest * w / w.sum()).astype(np.int64)
    n[0] += rest - int(n.sum())
    return dict([("en", english)] + [(lang, int(x)) for lang, x in zip(langs[1:], n)])


def cache_key(total: int, k: int, seed: int, english: str, texts: list[str]) -> str:
    h = hashlib.sha256(json.dumps([VERSION, total, k, seed]).encode())
    for p in [english] + list(texts):
        st = os.stat(p)
        h.update(("%s|%d|%d\n" % (os.path.abspath(p), st.st_size, int(st.st_mtime))).encode())
    return h.hexdigest()[:12]


def _texts_of(paths: list[str]) -> list[str]:
    out: list[str] = []
    for p in paths:
        if p.endswith(".parquet"):
            import pyarrow.parquet as pq

            t = pq.read_table(p)
            col = "TEXT" if "TEXT" in t.column_names else "caption"
            out += [x for x in t.column(col).to_pylist() if isinstance(x, str)]
        else:
            from metaclip_spark.steps.extract import pages_from_file

            out += [text for page in pages_from_file(p) for _, text, drop in page.pairs if not drop]
    return out


def real_vocabulary(paths: list[str]) -> dict[str, tuple[list[str], list[str]]]:
    """{lang: (unigrams, bigrams)} of the texts, most frequent first (ties: first seen)."""
    if not paths:
        return {}
    import fasttext

    from metaclip_spark.metadata import defaults

    texts = list(dict.fromkeys(" ".join(t.split()) for t in _texts_of(paths)))
    texts = [t for t in texts if t]
    model = fasttext.load_model(defaults.default_lid_model_path())
    labels, _ = model.predict(texts)
    uni: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    bi: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for t, lab in zip(texts, labels):
        lang = lab[0][9:]
        if lang not in ALPHABETS:
            continue
        if lang in CHAR_NGRAM and lang != "ko":
            for run in _SCRIPT[lang].findall(t):
                for n in (1, 2, 3):
                    uni[lang].update(run[i:i + n] for i in range(len(run) - n + 1))
                bi[lang].update(run[i:i + 4] for i in range(len(run) - 3))
            continue
        words = [w.strip(_STRIP) for w in t.split()]
        words = [w for w in words if w and not w.isdigit()]
        if lang == "ko":
            words = [w for w in words if _SCRIPT["ko"].fullmatch(w)]
        elif not set(ALPHABETS[lang]) & set(_LATIN):     # non-Latin script: words with one of its letters
            words = [w for w in words if any(c in ALPHABETS[lang] for c in w.lower())]
        uni[lang].update(words)
        bi[lang].update(a + " " + b for a, b in zip(words, words[1:]))
    return {lang: ([w for w, _ in uni[lang].most_common()], [w for w, _ in bi[lang].most_common()])
            for lang in set(uni) | set(bi)}


def _pseudo_words(lang: str, n: int, rng: np.random.Generator) -> list[str]:
    """``n`` seeded pseudo-words (or character n-grams) of the language's alphabet, Zipf-drawn letters."""
    alpha = ALPHABETS[lang]
    p = 1.0 / np.arange(1, len(alpha) + 1) ** (1.1 if lang in ("zh", "ja") else 0.7)
    p /= p.sum()
    if lang in CHAR_NGRAM:
        lengths = rng.choice([1, 2, 3, 4], size=n, p=[0.05, 0.55, 0.3, 0.1])
    else:
        lengths = np.clip(rng.poisson(6.5, size=n), 2, 16)
    chars = rng.choice(len(alpha), size=int(lengths.sum()), p=p)
    flat = "".join(alpha[c] for c in chars)
    ends = np.cumsum(lengths)
    return [flat[e - m:e] for e, m in zip(ends.tolist(), lengths.tolist())]


def language_entries(lang: str, n: int, seed: int, real: tuple[list[str], list[str]] | None) -> list[str]:
    """``n`` entries of one language: "0".."99", unigrams, bigrams, titles, then 3 dropped ones."""
    rng = np.random.default_rng([seed, LANGUAGES.index(lang)])
    out: list[str] = [str(i) for i in range(100)]
    seen = set(out)
    body = n - 100 - 3
    n_uni, n_bi = int(body * 0.61), int(body * 0.24)
    n_title = body - n_uni - n_bi
    real_uni, real_bi = real or ([], [])

    def add(items, limit):
        k = 0
        for e in items:
            if k == limit:
                break
            if e and e not in seen and len(e) <= 256:
                seen.add(e)
                out.append(e)
                k += 1
        return k

    got = add(real_uni, n_uni)
    while got < n_uni:
        got += add(_pseudo_words(lang, int((n_uni - got) * 1.2) + 16, rng), n_uni - got)
    vocab = out[100:]
    sep = "" if lang in JOIN_NO_SPACE else " "
    got = add((b.replace(" ", sep) for b in real_bi), n_bi)
    zipf = 1.0 / np.arange(1, len(vocab) + 1) ** 0.8
    zipf /= zipf.sum()
    while got < n_bi:
        m = int((n_bi - got) * 1.3) + 16
        a, b = rng.choice(len(vocab), size=m, p=zipf), rng.choice(len(vocab), size=m, p=zipf)
        got += add((vocab[i] + sep + vocab[j] for i, j in zip(a.tolist(), b.tolist())), n_bi - got)
    got = 0
    while got < n_title:
        m = int((n_title - got) * 1.3) + 16
        k = rng.integers(2, 5, size=m)
        idx = rng.choice(len(vocab), size=int(k.sum()), p=zipf).tolist()
        ends = np.cumsum(k).tolist()
        titles = (sep.join(vocab[i][:1].upper() + vocab[i][1:] for i in idx[e - c:e]) for e, c in zip(ends, k.tolist()))
        got += add(titles, n_title - got)
    out += [vocab[0] * (257 // max(1, len(vocab[0])) + 1), "...", "—"]      # section 10 drops these three
    assert len(out) == n, (lang, len(out), n)
    return out


def manifest(folder: str) -> dict:
    """What :func:`ensure` wrote beside ``folder``: sizes, real words per language, seconds."""
    with open(folder + ".manifest.json") as fh:
        return json.load(fh)


def ensure(total: int = 15_000_000, k: int = 30, seed: int = 17, texts: list[str] | None = None,
           english: str | None = None, log=print) -> str:
    """The metadata folder (generated once): {lang}.json for the first ``k`` LANGUAGES."""
    english = english or shared("data", "metadata", "metadata-standin-500k.json")
    texts = list(texts if texts is not None else filter(None, [shared("data", "captions",
                                                                       "img2dataset-test_10000.parquet")]))
    out = os.path.join(WORK, "world-metadata-n%d-k%d-s%d-%s" % (total, k, seed, cache_key(total, k, seed, english, texts)))
    if os.path.exists(os.path.join(out, ".done")):
        return out
    t0 = time.perf_counter()
    tmp = out + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    with open(english) as fh:
        en = json.load(fh)
    n = sizes(total, len(en), k)
    log("world metadata: %d languages, %d entries (real words from %d text files); cached in %s"
        % (k, total, len(texts), out))
    shutil.copyfile(english, os.path.join(tmp, "en.json"))
    real = real_vocabulary(texts)
    import orjson

    for lang, m in n.items():
        if lang == "en":
            continue
        entries = language_entries(lang, m, seed, real.get(lang))
        with open(os.path.join(tmp, lang + ".json"), "wb") as fh:
            fh.write(orjson.dumps(entries))
    info = {"total": total, "languages": n, "seed": seed, "english": english, "texts": texts,
                "real_words": {lang: len(v[0]) for lang, v in sorted(real.items())},
                "seconds": time.perf_counter() - t0, "version": VERSION}
    with open(out + ".manifest.json", "w") as fh:          # beside the folder: it holds {lang}.json only
        json.dump(info, fh, indent=1)
    open(os.path.join(tmp, ".done"), "w").close()
    shutil.rmtree(out, ignore_errors=True)
    os.rename(tmp, out)
    log("world metadata written in %.0f s" % info["seconds"])
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--total", type=int, default=15_000_000)
    ap.add_argument("--languages", type=int, default=30)
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--texts", nargs="*", help="captions Parquet / WARC / WAT files for the real words "
                    "(default: ../shared/data/captions/img2dataset-test_10000.parquet)")
    args = ap.parse_args(argv)
    print(ensure(args.total, args.languages, args.seed, args.texts, log=lambda m: print(m, file=sys.stderr)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
