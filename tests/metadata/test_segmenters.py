"""Word segmenters of languages written without spaces (metadata/segmenters.py): the installed ones
segment offline, a missing one fails with the package to install, spaced languages need none."""

import pytest

from metaclip_spark.metadata import segmenters as sg


def test_spaced_languages_need_no_segmenter():
    assert sg.check_segmenter("de") is None and sg.check_segmenter("en") is None
    assert not sg.needs_segmenter("fr") and sg.needs_segmenter("ja") and sg.needs_segmenter("ryu")
    with pytest.raises(sg.SegmenterError, match="written with spaces"):
        sg.get_segmenter("de")


def test_missing_package_names_what_to_install():
    registry = {"ja": sg.SegmenterSpec("nosuchseg", ("nosuchseg_mod_x", "sg"), ("nosuchseg-pkg", "other-pkg"))}
    with pytest.raises(sg.SegmenterError) as err:
        sg.check_segmenter("ja", registry)
    msg = str(err.value)
    assert "pip install nosuchseg-pkg other-pkg" in msg and "nosuchseg_mod_x" in msg and "'ja'" in msg
    assert "metaclip-spark[worldwide]" in msg
    with pytest.raises(sg.SegmenterError, match="nosuchseg"):
        sg.get_segmenter("ja", registry)


def test_language_without_an_offline_segmenter():
    with pytest.raises(sg.SegmenterError, match="'my'.*none that works offline"):
        sg.check_segmenter("my")
    with pytest.raises(sg.SegmenterError, match="'th'.*none that works offline"):
        sg.check_segmenter("th", {})


def test_extra_check_failure_is_reported():
    spec = sg.SegmenterSpec("fake", ("os",), ("fake",), check=lambda: "its data pack is not at /nowhere")
    with pytest.raises(sg.SegmenterError, match="fake of 'bo' cannot run: its data pack is not at /nowhere"):
        sg.check_segmenter("bo", {"bo": spec})


def test_registry_covers_every_no_space_language():
    assert set(sg.SEGMENTERS) == set(sg.NO_SPACE_LANGUAGES)
    assert sg.SEGMENTERS["zh_yue"] is sg.SEGMENTERS["zh"] and sg.SEGMENTERS["ryu"] is sg.SEGMENTERS["ja"]
    assert sg.SEGMENTERS["dz"].packages == ("botok",)


@pytest.mark.parametrize("lang, module, chunk, tokens", [
    ("zh", "jieba", "北京是中国的首都。", ["北京", "是", "中国", "的", "首都", "。"]),
    ("ja", "fugashi", "東京の猫は魚が好きです。", ["東京", "の", "猫", "は", "魚", "が", "好き", "です", "。"]),
    ("th", "pythainlp", "แมวกินปลา", ["แมว", "กิน", "ปลา"]),
    ("km", "khmernltk", "ខ្ញុំស្រឡាញ់ប្រទេសកម្ពុជា", ["ខ្ញុំ", "ស្រឡាញ់", "ប្រទេស", "កម្ពុជា"]),
    ("lo", "laonlp", "ພາສາລາວໃນປັດຈຸບັນ", ["ພາສາລາວ", "ໃນ", "ປັດຈຸບັນ"]),
])
def test_installed_segmenters_work_offline(lang, module, chunk, tokens):
    pytest.importorskip(module)
    seg = sg.get_segmenter(lang)
    assert seg(chunk) == tokens
    assert sg.get_segmenter(lang) is seg          # built once per process
