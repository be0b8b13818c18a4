import json

import pytest

from metaclip_spark.run.config import Config, ConfigError, from_dict, load_config


def test_defaults_match_conf_default_yaml(tmp_path):
    from tests.conftest import ROOT

    assert load_config([str(ROOT / "conf" / "default.yaml")]).to_dict() == Config().to_dict()


def test_yaml_then_set_then_flags_precedence(tmp_path):
    a = tmp_path / "a.yaml"
    a.write_text("lid:\n  threshold: 0.7\nmatch:\n  batch_size: 10\nspark:\n  conf:\n    spark.x: 1\n")
    b = tmp_path / "b.yaml"
    b.write_text("lid:\n  threshold: 0.6\n")
    cfg = load_config([str(a), str(b)], sets=["match.batch_size=20", "balance.seed=5"],
                      overrides={"balance.seed": 9, "lid.model": None})
    assert cfg.lid.threshold == 0.6
    assert cfg.match.batch_size == 20
    assert cfg.balance.seed == 9
    assert cfg.lid.model == ""
    assert cfg.spark.conf == {"spark.x": "1"}


def test_round_trip_through_dict():
    cfg = load_config(overrides={"input.paths": ["a", "b"], "balance.t": 5, "output": "o"})
    again = from_dict(json.loads(cfg.to_json()))
    assert again == cfg
    assert again.balance.t == 5.0 and again.input.paths == ["a", "b"]


@pytest.mark.parametrize("sets, message", [
    (["lid.threshold=1.5"], "lid.threshold must be within [0, 1]"),
    (["lid.nope=1"], "unknown setting lid.nope"),
    (["balance.t=0"], "balance.t must be > 0"),
    (["balance.t=5", "balance.tail_share=0.1"], "give only one of"),
    (["match.batch_size=abc"], "match.batch_size: cannot use 'abc' as int"),
    (["lid=3"], "lid must be a mapping"),
    (["novalue"], "--set takes key=value"),
])
def test_bad_settings_fail_with_clear_message(sets, message):
    with pytest.raises(ConfigError) as err:
        load_config(sets=sets)
    assert message in str(err.value)


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config([str(tmp_path / "none.yaml")])
    bad = tmp_path / "bad.yaml"
    bad.write_text("lid: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config([str(bad)])
    top = tmp_path / "list.yaml"
    top.write_text("- 1\n")
    with pytest.raises(ConfigError, match="mapping at the top level"):
        load_config([str(top)])


def test_saved_config_masks_credential_settings(tmp_path):
    """Issue #13 item 9: credentials given as settings never reach config.json (the run
    itself still gets them); settings that only look alike are kept."""
    y = tmp_path / "c.yaml"
    y.write_text("spark:\n  conf:\n    spark.hadoop.fs.s3a.session.token: YAMLTOKEN77\n"
                 "    spark.hadoop.fs.s3a.aws.credentials.provider: org.apache.hadoop.fs.s3a.TemporaryAWSCredentialsProvider\n")
    cfg = load_config([str(y)], sets=["spark.conf.spark.hadoop.fs.s3a.secret.key=S3KRETVALUE99",
                                      "spark.conf.spark.hadoop.fs.s3a.access.key=AKIDVALUE99",
                                      "spark.conf.spark.sql.shuffle.partitions=7"],
                      overrides={"input.paths": ["https://bob:pw77secret@h/f.warc.gz?X-Amz-Signature=SIG77&n=1"]})
    assert cfg.spark.conf == {
        "spark.hadoop.fs.s3a.session.token": "YAMLTOKEN77",
        "spark.hadoop.fs.s3a.aws.credentials.provider": "org.apache.hadoop.fs.s3a.TemporaryAWSCredentialsProvider",
        "spark.hadoop.fs.s3a.secret.key": "S3KRETVALUE99", "spark.hadoop.fs.s3a.access.key": "AKIDVALUE99",
        "spark.sql.shuffle.partitions": "7"}
    text = cfg.to_json()
    saved = json.loads(text)
    assert saved["spark"]["conf"] == {
        "spark.hadoop.fs.s3a.session.token": "***",
        "spark.hadoop.fs.s3a.aws.credentials.provider": "org.apache.hadoop.fs.s3a.TemporaryAWSCredentialsProvider",
        "spark.hadoop.fs.s3a.secret.key": "***", "spark.hadoop.fs.s3a.access.key": "***",
        "spark.sql.shuffle.partitions": "7"}
    assert saved["input"]["paths"] == ["https://***@h/f.warc.gz?X-Amz-Signature=***&n=1"]
    assert saved["input"]["kind"] == "wat" and saved["match"]["batch_size"] == 8192
    for secret in ("YAMLTOKEN77", "S3KRETVALUE99", "AKIDVALUE99", "pw77secret", "SIG77"):
        assert secret not in text


def test_bounded_time_and_nesting_keys():
    cfg = load_config()
    assert (cfg.input.connect_timeout, cfg.input.read_timeout, cfg.input.read_budget_seconds,
            cfg.input.min_bytes_per_second, cfg.input.slow_window_seconds) == (10.0, 60.0, 3600.0, 4096.0, 60.0)
    assert cfg.extract.max_nesting_work == 200_000_000
    cfg = load_config(sets=["input.read_timeout=5", "input.read_budget_seconds=0", "extract.max_nesting_work=1000"])
    assert (cfg.input.read_timeout, cfg.input.read_budget_seconds, cfg.extract.max_nesting_work) == (5.0, 0.0, 1000)
    for bad, msg in (("input.read_timeout=0", "input.read_timeout must be > 0"),
                     ("input.connect_timeout=-1", "input.connect_timeout must be > 0"),
                     ("input.min_bytes_per_second=-1", "input.min_bytes_per_second must be >= 0"),
                     ("extract.max_nesting_work=0", "extract.max_nesting_work must be positive")):
        with pytest.raises(ConfigError, match=msg):
            load_config(sets=[bad])


# --- issue #15: one source for every key: defaults, help, conf/default.yaml, --help, README, reads

def _sections():
    import dataclasses

    from metaclip_spark.run.config import Config

    out = {}
    for f in dataclasses.fields(Config):
        default = f.default_factory() if f.default is dataclasses.MISSING else f.default
        if dataclasses.is_dataclass(default):
            out[f.name] = type(default)
    return out


def test_every_field_has_help():
    import dataclasses

    from metaclip_spark.run.config import Config

    for cls in [Config, *_sections().values()]:
        for f in dataclasses.fields(cls):
            assert isinstance(f.metadata.get("help"), str) and f.metadata["help"].strip(), (cls.__name__, f.name)


def test_conf_default_yaml_is_generated_from_the_dataclasses():
    """conf/default.yaml holds exactly the dataclass defaults and help texts (regenerate it
    with `python -m metaclip_spark.run.config yaml > conf/default.yaml`)."""
    import yaml

    from metaclip_spark.run.config import default_yaml, settings
    from tests.conftest import ROOT

    text = (ROOT / "conf" / "default.yaml").read_text()
    assert text == default_yaml()
    data = yaml.safe_load(text)
    flat = {}
    for k, v in data.items():
        if isinstance(v, dict) and k in _sections():
            flat.update({k + "." + kk: vv for kk, vv in v.items()})
        else:
            flat[k] = v
    assert list(flat) == [k for k, _, _ in settings()]
    assert load_config([str(ROOT / "conf" / "default.yaml")]) == Config()


def test_readme_and_help_list_every_key_from_the_same_source():
    from metaclip_spark.cli import build_parser
    from metaclip_spark.run.config import help_text, markdown_table, settings
    from tests.conftest import ROOT

    readme = (ROOT / "README.md").read_text()
    start = readme.index("<!-- config-keys:start")
    block = readme[readme.index("\n", start) + 1:readme.index("<!-- config-keys:end -->")]
    assert block == markdown_table(), "regenerate: python -m metaclip_spark.run.config markdown"
    top = build_parser().format_help()
    assert help_text() in top
    for key, _, _ in settings():
        assert "| `%s` |" % key in block and "  %s = " % key in top


# Keys whose reader is being changed elsewhere (issue #15 coordination): read or removed there.
PENDING_KEYS = {"lid.batch_size"}


def _config_reads():
    """Dotted keys the package (run/config.py's own validation excluded) reads as attributes:
    ``<x>.<section>.<key>``, ``<alias>.<key>`` after ``alias = <x>.<section>``, ``<arg>.<key>``
    for an argument annotated with a section's class, and ``cfg.<key>`` / ``config.<key>``."""
    import ast

    from tests.conftest import ROOT

    sections = _sections()
    by_class = {cls.__name__: name for name, cls in sections.items()}
    reads = set()
    for path in (ROOT / "metaclip_spark").rglob("*.py"):
        if path.as_posix().endswith("metaclip_spark/run/config.py"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        aliases: dict[str, set] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Attribute) and node.value.attr in sections:
                for t in node.targets:
                    if isinstance(t, ast.Name):
                        aliases.setdefault(t.id, set()).add(node.value.attr)
            elif isinstance(node, ast.arg) and node.annotation is not None:
                ann = ast.unparse(node.annotation).strip("'\"")
                if ann in by_class:
                    aliases.setdefault(node.arg, set()).add(by_class[ann])
        for node in ast.walk(tree):
            if not isinstance(node, ast.Attribute):
                continue
            v = node.value
            if isinstance(v, ast.Attribute) and v.attr in sections:
                reads.add(v.attr + "." + node.attr)
            elif isinstance(v, ast.Name) and v.id in aliases:
                reads.update(sec + "." + node.attr for sec in aliases[v.id])
            if (isinstance(v, ast.Name) and v.id in ("cfg", "config")) or (
                    isinstance(v, ast.Attribute) and v.attr in ("cfg", "config")):
                reads.add(node.attr)
    return reads


def test_every_key_is_read_somewhere():
    """A setting that no code reads fails here: remove it or use it."""
    from metaclip_spark.run.config import settings

    reads = _config_reads()
    unread = [k for k, _, _ in settings() if k not in reads and k not in PENDING_KEYS]
    assert unread == []
    # the check itself sees reads through aliases and typed arguments, and nothing made up
    assert {"balance.default_t", "balance.t", "spark.master", "spark.conf", "output"} <= reads
    assert "balance.no_such_key" not in reads


def test_default_t_comes_from_the_config():
    from metaclip_spark.steps.balance import choose_t

    assert not hasattr(__import__("metaclip_spark.spark.stage2", fromlist=["x"]), "DEFAULT_T")
    assert choose_t(Config().balance, None, None) == (20_000.0, "default")
    assert choose_t(load_config(sets=["balance.default_t=5"]).balance, None, None) == (5.0, "default")
    assert choose_t(load_config(sets=["balance.t=7"]).balance, None, None) == (7.0, "t")
    with pytest.raises(ConfigError, match="balance.default_t must be > 0"):
        load_config(sets=["balance.default_t=0"])
