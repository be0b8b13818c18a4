"""The WordNet part of the metadata (docs/semantics.md section 8), from WordNet's own data files."""

import os

import pytest

from metaclip_spark.metadata.wordnet import (DEFAULT_WORDNET_DIR, WordNetError, synset_name,
                                    wordnet_entries)

HEADER = "  1 This software and database is being provided to you, the LICENSEE, by  \n"


def write_dict(folder, lines_by_file):
    for name in ("data.noun", "data.verb", "data.adj", "data.adv"):
        with open(os.path.join(folder, name), "w", encoding="utf-8") as fh:
            fh.write(HEADER)
            for lemmas in lines_by_file.get(name, []):
                words = " ".join("%s 0" % w for w in lemmas)
                fh.write("00001740 03 n %02x %s 000 | a gloss; with (a) marker-like text\n"
                         % (len(lemmas), words))


def test_synset_name():
    assert synset_name("hot_dog") == "hot dog"
    assert synset_name("St._Louis") == "st"
    assert synset_name("Dog") == "dog"
    assert synset_name(".22") == ""


def test_tiny_dictionary_exact(tmp_path):
    write_dict(tmp_path, {
        "data.noun": [["dog", "domestic_dog"], ["Hot_Dog"], ["St._Louis"], [".22", "twenty-two"], ["7", "seven"]],
        "data.verb": [["dog", "chase"], ["run"]],
        "data.adj": [["big(a)", "large(a)"], ["utter(ip)"]],
        "data.adv": [["fast"], ["hot_dog"]],
    })
    expected = ["dog", "hot dog", "st", "7", "run", "big", "utter", "fast"]
    expected += [str(i) for i in range(100) if i != 7]
    assert wordnet_entries(str(tmp_path)) == expected


def test_missing_files(tmp_path):
    with pytest.raises(WordNetError, match="lacks data.noun, data.verb, data.adj, data.adv"):
        wordnet_entries(str(tmp_path))


@pytest.mark.skipif(not os.path.isfile(os.path.join(DEFAULT_WORDNET_DIR, "data.noun")),
                    reason="WordNet 3.0 not installed (apt-get install wordnet-base)")
def test_wordnet_30_gives_86654():
    entries = wordnet_entries()
    assert len(entries) == 86_654 == len(set(entries))
    assert entries[:5] == ["entity", "physical entity", "abstraction", "thing", "object"]
    assert entries[-100:] == [str(i) for i in range(100)]
    assert "" not in entries and "dog" in entries and "st" in entries
