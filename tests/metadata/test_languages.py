"""The LID map (metadata/languages.py load_lid_map, metadata_language) and the shipped
metaclip_spark/data/lid_languages.tsv, checked against the real lid.176.ftz's labels."""

import fnmatch
import os

import fasttext
import pytest

from metaclip_spark.metadata import defaults
from metaclip_spark.metadata.languages import (LID_MAP_FILE, OTHER, LidMapError, is_language_code, load_lid_map,
                                               metadata_language)
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def model_labels():
    fasttext.FastText.eprint = lambda *args, **kwargs: None
    model = fasttext.load_model(defaults.default_lid_model_path())
    return {label[len("__label__"):] for label in model.get_labels()}


def test_shipped_map_covers_exactly_the_model_labels(model_labels):
    lid_map = load_lid_map()
    assert len(model_labels) == 176
    assert set(lid_map) == model_labels
    assert load_lid_map(LID_MAP_FILE) == lid_map
    assert all(is_language_code(v) for v in lid_map.values())
    # only three labels are not their own Wikipedia code: two merged variants and one without an edition
    assert {k: v for k, v in lid_map.items() if k != v} == {"yue": "zh", "lrc": OTHER}
    assert lid_map["cbk"] == "cbk"          # Wikipedia cbk_zam, merged to its prefix
    assert len(set(lid_map.values()) - {OTHER}) == 174    # 176 labels: yue joins zh, lrc is other


@pytest.mark.parametrize("label, lang", [
    ("en", "en"), ("zh", "zh"), ("yue", "zh"), ("wuu", "wuu"), ("ja", "ja"), ("th", "th"), ("de", "de"),
    ("sh", "sh"), ("no", "no"), ("nn", "nn"), ("cbk", "cbk"), ("lrc", OTHER), ("als", "als"), ("arz", "arz"),
    ("bh", "bh"), ("ko", "ko"), ("my", "my"), ("km", "km"), ("lo", "lo"), ("bo", "bo"),
])
def test_hand_checked_mappings(label, lang):
    assert metadata_language(label, load_lid_map()) == lang


def test_unknown_and_empty_labels_are_other():
    lid_map = load_lid_map()
    assert metadata_language("", lid_map) == OTHER
    assert metadata_language("xx", lid_map) == OTHER
    assert metadata_language("__label__en", lid_map) == OTHER   # labels come without the prefix
    assert metadata_language("en", {}) == OTHER


def test_language_codes():
    good = ["en", "zh", "wuu", "zh_yue", "be_tarask", "other", "cbk"]
    bad = ["", "e", "english", "EN", "zh-yue", "zh_", "_zh", "en ", "N/A", "zh_Yue", "simple", "o1", None, 3]
    assert [is_language_code(c) for c in good] == [True] * len(good)
    assert [is_language_code(c) for c in bad] == [False] * len(bad)


def test_custom_map_file(tmp_path):
    p = tmp_path / "map.tsv"
    p.write_text("# my map\n\n__label__en\ten\nyue\tzh_yue\nxx\tN/A\nqq\tother\nde\t de \n", encoding="utf-8")
    assert load_lid_map(str(p)) == {"en": "en", "yue": "zh_yue", "xx": OTHER, "qq": OTHER, "de": "de"}


@pytest.mark.parametrize("text, message", [
    ("en\ten\nzh\n", r"map\.tsv, line 2: expected `lid_label<TAB>metadata_language`, got 'zh'"),
    ("en\ten\tx\n", r"line 1: expected"),
    ("# c\n en\ten\n", r"line 2: expected"),
    ("\ten\n", r"line 1: expected"),
    ("en\tEnglish\n", r"line 1: 'English' is not a metadata language code"),
    ("en\t\n", r"line 1: '' is not a metadata language code"),
    ("en\ten\n# again\nen\tde\n", r"line 3: label 'en' is mapped twice"),
    ("# only comments\n\n", r"map\.tsv has no mapping line"),
])
def test_bad_map_files_name_the_line(tmp_path, text, message):
    p = tmp_path / "map.tsv"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(LidMapError, match=message):
        load_lid_map(str(p))


def test_missing_or_undecodable_map(tmp_path):
    with pytest.raises(LidMapError, match=r"cannot read LID map .*missing\.tsv: FileNotFoundError"):
        load_lid_map(str(tmp_path / "missing.tsv"))
    p = tmp_path / "latin1.tsv"
    p.write_bytes(b"en\t\xe9n\n")
    with pytest.raises(LidMapError, match=r"cannot read LID map .*latin1\.tsv: UnicodeDecodeError"):
        load_lid_map(str(p))


def test_map_ships_in_the_package():
    """setup.py's package_data names the data/*.tsv files, so installs and the worker archive have them."""
    ns: dict = {}
    import setuptools

    real_setup = setuptools.setup
    try:
        setuptools.setup = lambda **kw: ns.update(kw)
        exec(compile((ROOT / "setup.py").read_text(), "setup.py", "exec"), {"__name__": "__main__"})
    finally:
        setuptools.setup = real_setup
    rel = os.path.relpath(LID_MAP_FILE, ROOT / "metaclip_spark")
    assert any(fnmatch.fnmatch(rel, pattern) for pattern in ns["package_data"]["metaclip_spark"])
    assert os.path.isfile(LID_MAP_FILE)
