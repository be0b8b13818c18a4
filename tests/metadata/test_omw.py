"""Open Multilingual Wordnet tab files (metadata/omw.py): the lemmas of the language, as MetaCLIP 2
reads them through NLTK (``_`` -> space, ``+`` removed, sorted, de-duplicated)."""

import pytest

from metaclip_spark.metadata.omw import OMW_TO_WIKI, WIKI_TO_OMW, OMWError, parse_omw, read_omw
from tests.metadata import world_dumps as wd


def test_fixture_file_gives_the_japanese_lemmas(tmp_path):
    path = wd.write_inputs(tmp_path, "ja")["omw"]
    assert read_omw(path, "ja") == ["!!!", wd.LONG, "ネコ科", "犬 小屋", "猫"]   # drops happen at assembly


def test_code_mapping_is_metaclip2s():
    assert len(OMW_TO_WIKI) == 30 and WIKI_TO_OMW["ja"] == "jpn" and WIKI_TO_OMW["zh"] == "cmn"
    assert WIKI_TO_OMW["no"] == "nob" and WIKI_TO_OMW["ms"] == "zsm" and "de" not in WIKI_TO_OMW


def test_lines_and_labels():
    text = ("# French\tfra\turl\tlicence\n00001740-n\tfra:lemma\tentité\n00001740-n\tfra:def\t0\tune chose\n"
            "00002137-n\tfra:lemma\tchose_abstraite\n00002137-n\tlemma\tabstraction\n"
            "00002684-n\tfra:lemma\tobjet+physique\n00002684-n\tita:lemma\toggetto\nshort\tline\n")
    assert parse_omw(text, "fr") == ["abstraction", "chose abstraite", "entité", "objetphysique"]
    with pytest.raises(OMWError, match="has no lemmas of cmn.*fra, ita"):
        parse_omw(text.replace("\tlemma\t", "\tfra:lemma\t"), "zh")
    # a language MetaCLIP 2 does not map: the file must hold one code
    assert parse_omw("1-n\tukr:lemma\tкіт\n2-n\tukr:lemma\tпес\n", "uk") == ["кіт", "пес"]
    with pytest.raises(OMWError, match="holds the OMW languages fra, ita"):
        parse_omw(text, "uk")
    with pytest.raises(OMWError, match="no `offset-pos<TAB>label<TAB>value` line"):
        parse_omw("# only a comment\n\n", "fr")


def test_unreadable_file(tmp_path):
    with pytest.raises(OMWError, match="cannot read the OMW file"):
        read_omw(str(tmp_path / "missing.tab"), "ja")
