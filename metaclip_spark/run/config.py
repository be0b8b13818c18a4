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
from metaclip_spark.run.config_sections import (  # noqa: F401  (re-exported: the sections live there)
    BalanceConfig, ExtractConfig, IndexConfig, InputConfig, LidConfig, MatchConfig, MetadataBuildConfig,
    SparkConfig, WorldwideConfig, setting)


class ConfigError(ValueError):
    """A configuration that cannot run (raised before Spark starts)."""


@dataclass
class Config:
    input: InputConfig = setting(factory=InputConfig, help=InputConfig.__doc__)
    extract: ExtractConfig = setting(factory=ExtractConfig, help=ExtractConfig.__doc__)
    lid: LidConfig = setting(factory=LidConfig, help=LidConfig.__doc__)
    match: MatchConfig = setting(factory=MatchConfig, help=MatchConfig.__doc__)
    balance: BalanceConfig = setting(factory=BalanceConfig, help=BalanceConfig.__doc__)
    index: IndexConfig = setting(factory=IndexConfig, help=IndexConfig.__doc__)
    worldwide: WorldwideConfig = setting(factory=WorldwideConfig, help=WorldwideConfig.__doc__)
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
        w = self.worldwide
        for lang, th in {"": w.lid_threshold, **w.lid_thresholds}.items():
            if not 0.0 <= th <= 1.0:
                raise ConfigError("worldwide.lid_threshold%s must be within [0, 1], got %r"
                                  % ("s." + lang if lang else "", th))
        unknown = sorted(set(self.extract.text_fields) - {"alt", "title", "data-image-title"})
        if unknown:
            raise ConfigError("extract.text_fields: unknown attribute(s) %s (known: alt, title, data-image-title)"
                              % ", ".join(unknown))
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
            if base == "dict[str, float]":
                return {str(k): float(v) for k, v in value.items()}
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
