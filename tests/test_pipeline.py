"""pipeline._lid with a per-file memo gives exactly the per-batch result (real lid.176 model)."""

import numpy as np

from metaclip_spark import defaults, pipeline
from metaclip_spark.lid import LanguageId

TEXTS = ["a red car on the road", "logo", "image", "Ein rotes Auto", "logo", "un coche rojo",
         "a red car on the road", "image", "chat noir sur le toit", "logo"]


def test_lid_memo_equals_per_batch(monkeypatch):
    lid = LanguageId(defaults.default_lid_model_path(), 0.5)
    memo: dict = {}
    sizes = []
    monkeypatch.setattr(pipeline, "MATCH_CACHE_MAX", 4)      # 6 distinct texts: the memo is cleared
    for batch in (TEXTS[:4], TEXTS[4:], TEXTS, TEXTS[::-1]):
        want_labels, want_scores = pipeline._lid(lid, batch)
        labels, scores = pipeline._lid(lid, batch, memo)
        assert labels == want_labels
        assert scores.dtype == np.float32 and scores.tolist() == want_scores.tolist()
        assert len(memo) <= max(4, len(set(batch)))
        sizes.append(len(memo))
    assert sizes == [4, 5, 6, 6]
    assert pipeline._lid(lid, TEXTS, memo)[0][:4] == ["en", "en", "en", "de"]
