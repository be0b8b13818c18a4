"""Stage 1 in worldwide mode (SPEC section 10, docs/worldwide.md), the driver's part: what is
loaded and checked before Spark starts, the automata built once per job, and the worldwide
outputs (entry counts per (lang, entry), the per-language statistics of stats/match.json).

- :func:`prepare_world` (before Spark, before the run folder is claimed): the world metadata
  (``worldwide.metadata``, section 10's checks and per-language report), the LID map
  (``worldwide.lid_map``) and the per-language thresholds; a ``--worldwide`` run without
  metadata, a metadata folder that cannot be read, a threshold of a language the metadata does
  not have: one clear ConfigError, nothing written.
- :func:`world_task` (driver, run folder claimed): the per-language automata built ONCE per job
  into ``OUT/automata/<digest12>/`` (reused when a resumed run finds a finished manifest of the
  same metadata digest) and the picklable :class:`WorldTask` + WorldMatcher the tasks receive.
- :func:`entry_counts_table` / :func:`world_stats`: the outputs.

Spark-free (the Spark glue stays in stage1.py).
"""

from __future__ import annotations

import functools

import numpy as np
import pyarrow as pa

from metaclip_spark.metadata.languages import ENGLISH, LanguageSpace, load_lid_map
from metaclip_spark.metadata.world import load_world_metadata
from metaclip_spark.run import outputs
from metaclip_spark.run.config import Config, ConfigError
from metaclip_spark.run.schema import ENTRY_COUNTS_SCHEMA
from metaclip_spark.steps.language import WorldLanguage, texts_by_language
from metaclip_spark.steps.pipeline import WorldTask, matched_by_language

MODE_ENGLISH, MODE_WORLDWIDE = "english", "worldwide"
AUTOMATA = "automata"          # run-folder folder of the per-job automata: automata/<digest12>/


def prepare_world(cfg: Config) -> dict | None:
    """The world metadata and LID map of a worldwide run, checked (None in English mode)."""
    w = cfg.worldwide
    if not w.enabled:
        return None
    if not w.metadata:
        raise ConfigError("--worldwide needs the metadata folder: --metadata DIR (worldwide.metadata, a folder "
                          "of {lang}.json lists or a Parquet of (lang, entry))")

    world = load_world_metadata(w.metadata)      # MetadataError (a ValueError) names the file and element
    lid_map = load_lid_map(w.lid_map)            # LidMapError (a ValueError) names the file and line
    unknown = sorted(set(w.lid_thresholds) - set(world.languages))
    if unknown:
        raise ConfigError("worldwide.lid_thresholds names language(s) without metadata: %s (metadata languages: %s)"
                          % (", ".join(unknown), ", ".join(world.languages)))
    return {"world": world, "lid_map": lid_map}


def automata_dir(cfg: Config, world) -> str:
    """Where the job's automata are built: ``OUT/automata/<first 12 of the metadata digest>``."""
    return outputs.join(cfg.output, AUTOMATA, world.digest[:12])


def world_task(cfg: Config, prepared: dict, lid) -> tuple[WorldTask, object]:
    """Build (or reuse) the automata once on the driver; the task-side setup of a worldwide run:
    the WorldTask and the (picklable, lazily memory-mapping) WorldMatcher."""
    from metaclip_spark.steps.world_automata import build_automata, current_manifest  # worldwide only
    from metaclip_spark.steps.world_match import WorldMatcher

    world = prepared["world"]
    where = automata_dir(cfg, world)
    # reused when the manifest (written last) has this metadata's digest and this build's layout
    manifest = current_manifest(where, world.digest)
    if manifest is None:
        manifest = build_automata(world, where)
    matcher = WorldMatcher(where, world, manifest=manifest, cache_dir=cfg.worldwide.automata_cache)
    return WorldTask(world.space, language_factory(cfg, prepared, lid)), matcher


def language_factory(cfg: Config, prepared: dict, lid):
    """The picklable factory of the per-file worldwide language step (worldwide.lid_threshold(s),
    the LID map loaded once here, the metadata's languages)."""
    return functools.partial(WorldLanguage.from_config, lid, cfg.worldwide, prepared["world"].languages,
                             prepared["lid_map"])


def entry_counts_table(world, counts: np.ndarray, digest: str) -> pa.Table:
    """One row per (lang, entry) in LanguageSpace order (row i = global id i): ``entry_id`` the
    position in the language's list, its entry, its count, its language."""
    langs, entry_ids, entries = world.flat()
    return pa.table({"entry_id": entry_ids.cast(pa.int32()), "entry": entries.cast(pa.string()),
                     "count": pa.array(np.asarray(counts, np.int64)), "lang": langs.cast(pa.string())},
                    schema=ENTRY_COUNTS_SCHEMA.with_metadata({"pool_digest": digest}))


def language_stats(space: LanguageSpace, counts: np.ndarray, stats) -> dict:
    """stats/match.json ``languages``: per language the rows the language step kept (``texts``),
    its pool rows (``matched``), its list size and the entries with a count > 0."""
    texts, matched = texts_by_language(stats), matched_by_language(stats)
    out = {}
    for lang in space.languages:
        c = counts[space.span(lang)]
        out[lang] = {"texts": texts.get(lang, 0), "matched": matched.get(lang, 0), "entries": int(c.size),
                     "entries_matched": int((c > 0).sum())}
    return out


def english_stats(n_entries: int, counts: np.ndarray, stats) -> dict:
    """stats/match.json ``languages`` of English mode: ``en`` alone (texts = the English rows)."""
    return {ENGLISH: {"texts": int(stats["english"]), "matched": int(stats["pool_rows"]), "entries": int(n_entries),
                      "entries_matched": int((counts > 0).sum())}}
