"""The registry of drop reasons (steps/drops.py) is the one place they are declared: Stats,
the steps, PageCounts, the C counters, the README and docs/drops.md all agree with it, and
running stage 1 on real and synthetic inputs emits registered names only."""

import glob
import json
import pathlib
import re

import pytest

from metaclip_spark.formats import pairs
from metaclip_spark.metadata import defaults
from metaclip_spark.run.stats import Stats
from metaclip_spark.steps import curated, drops, extract, pipeline
from metaclip_spark.steps.base import Step
from metaclip_spark.steps.language import Language, LanguageId

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_each_reason_declared_once_with_step_and_meaning():
    names = [d.name for d in drops.REGISTRY]
    assert len(names) == len(set(names))
    for d in drops.REGISTRY:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", d.name)
        assert d.step in ("extract", "language", "match", "balance", "build_metadata")
        assert d.funnel and d.meaning and "\n" not in d.meaning
    assert drops.COUNTED == {d.name for d in drops.REGISTRY} - {"not_drawn"}
    assert set(drops.CANDIDATE) < set(drops.IMAGE)


def test_stats_refuses_unregistered_reasons():
    stats = Stats()
    for name in drops.COUNTED:
        stats.drop(name, 2)
    assert stats.dropped() == {name: 2 for name in drops.COUNTED}
    for bad in ("no_such_reason", "not_drawn", "dropped.no_alt", ""):
        with pytest.raises(drops.UnknownDrop, match="not registered"):
            stats.drop(bad)


def test_steps_declare_their_reasons_from_the_registry():
    assert extract.Extract.drops == drops.PAGE + drops.IMAGE
    assert Language.drops == ("not_english", "lid_low_score", "no_metadata_language") == drops.LID
    assert pipeline.Match.drops == ("no_match",) == drops.MATCH
    assert curated.Downloadable.drops == ("url_unencodable",) == drops.BALANCE
    assert (Language.section, pipeline.Match.section, extract.Extract.section) == ("lid", "match", "extract")

    class Bad(Step):
        name = "match"

        def apply(self, batch):
            return batch, 0, {"not_english": 1}

    with pytest.raises(drops.UnknownDrop, match="does not declare"):
        Bad().run([], Stats())
    with pytest.raises(drops.UnknownDrop):
        type("Nameless", (Step,), {"name": "no_such_step"})


def test_page_counts_and_c_counter_names_follow_the_registry():
    assert pairs.PageCounts.DROPS == drops.IMAGE
    assert pairs.PageCounts.__slots__ == pairs.PageCounts.ADDS + drops.IMAGE
    assert pairs.CANDIDATE_DROPS == drops.CANDIDATE
    src = (ROOT / "metaclip_spark" / "kernels" / "csrc" / "page_rules.c").read_text()
    body = re.search(r"COUNT_NAMES\[C_N\]\s*=\s*\{(.*?)\};", src, re.S).group(1)
    assert tuple(re.findall(r'"([^"]*)"', body)) == pairs.PageCounts.__slots__
    enum = re.search(r"enum\s*\{(.*?)\};", src, re.S).group(1)
    assert len([e for e in re.split(r"[\s,]+", enum) if e.startswith("C_") and e != "C_N"]) == len(pairs.PageCounts.__slots__)


def _generated_block(path: pathlib.Path) -> str:
    text = path.read_text()
    m = re.search(r"<!-- drops:begin[^>]*-->\n(.*?)<!-- drops:end -->", text, re.S)
    assert m, "%s has no generated drops block" % path.name
    return m.group(1)


@pytest.mark.parametrize("doc", ["README.md", "docs/drops.md"])
def test_docs_drop_tables_equal_the_registry(doc):
    assert _generated_block(ROOT / doc) == drops.markdown()


# Quoted drop-reason strings outside the registry (tests and generated docs aside), and why.
ALLOWED = {
    ("metaclip_spark/synth/generator.py", "empty_alt"): "a synthetic image kind, not a drop",
    ("metaclip_spark/synth/generator.py", "empty_src"): "a synthetic image kind, not a drop",
    ("metaclip_spark/spark/stage2.py", "url_unencodable"): "the Spark result column of GroupResult.url_unencodable",
    ("metaclip_spark/spark/index_balance.py", "url_unencodable"):
        "the Spark result column of the index balance's group result (select.curate_files), as in stage 2",
}
BUILD_METADATA_EMITTER = "metaclip_spark/metadata/wikipedia.py"   # emits its reasons as literals (not this change's file)


def test_each_reason_string_is_spelled_only_in_the_registry():
    files = sorted(p for p in list((ROOT / "metaclip_spark").rglob("*.py")) + list((ROOT / "jobs").rglob("*.py"))
                   if p != ROOT / "metaclip_spark" / "steps" / "drops.py")
    found = []
    for path in files:
        text, rel = path.read_text(), str(path.relative_to(ROOT))
        for d in drops.REGISTRY:
            if re.search(r"""["']%s["']""" % d.name, text) and (rel, d.name) not in ALLOWED:
                if rel == BUILD_METADATA_EMITTER and d.step == "build_metadata":
                    continue
                found.append((rel, d.name))
    assert found == []


def _inputs():
    got = sorted(str(p) for p in defaults.sample_dir().glob("*.gz") if ".warc" in p.name)
    for pattern in ("/work/shared/data/web/*.warc.gz", "/work/shared/data/cc/*.warc.gz",
                    "/work/shared/data/cc/*.wat.gz"):
        got += sorted(glob.glob(pattern))
    return got


@pytest.fixture(scope="module")
def matcher():
    from metaclip_spark.steps.match import Matcher

    with open(defaults.default_metadata_path()) as fh:
        return Matcher(json.load(fh))


def test_stage1_on_real_and_generated_inputs_emits_registered_reasons_only(tmp_path, matcher):
    """match_file and extract_file on the bundled synthetic corpus and the shared real
    WARC/WAT files: every ``dropped.*`` name is registered and belongs to a stage-1 step."""
    lid = LanguageId(defaults.default_lid_model_path(), 0.5, batch_size=64)
    stage1 = set(drops.of_step("extract") + drops.of_step("language") + drops.of_step("match"))
    seen = set()
    for i, uri in enumerate(_inputs()):
        for run in (lambda d: pipeline.match_file(uri, d, matcher, lid, extract.ExtractLimits(), 100),
                    lambda d: pipeline.extract_file(uri, d, lid, extract.ExtractLimits(), 100)):
            result = run(str(tmp_path / str(i)))
            assert result.stats["errors.input_failed"] == 0, result.stats.errors
            names = set(result.stats.dropped())
            assert names <= stage1, names - stage1
            seen |= names
    # the inputs exercise most reasons, so the check above is not vacuous
    assert {"no_alt", "empty_alt", "non_http_url", "duplicate_in_page", "not_html",
            "not_english", "lid_low_score", "no_match"} <= seen
