"""Building MetaCLIP metadata (spark-submit entry file and `metaclip-spark build-metadata`).

Driver, before Spark: config, WordNet folder, dumps (exist, are bzip2; sizes), output
folder, page views (read and summed here; only titles at or above the threshold are
broadcast). Spark: every dump is cut into ``metadata_build.split_bytes`` byte ranges,
one task per range (``metaclip_spark.metadata.wikipedia.count_split``); tasks emit keyed counts
(unigram, bigram, kept title, statistic) that one ``reduceByKey`` sums (exact and
retry-safe: only successful attempts' output is shuffled). Bigram PMI comes from two
joins of the frequent bigrams with the unigram counts, on the executors. The driver
collects only what passes the thresholds and assembles the metadata
(``metaclip_spark.metadata.build``).

Other languages (``metadata_build.lang`` / ``--lang xx``, xx != en): MetaCLIP 2's recipe
(``metaclip_spark.metadata.world_build``): the language's word segmenter (if it is written without
spaces) and its OMW file are checked and read before Spark; tasks count with
``world_build.NgramCounter``; the driver takes each ranked source's top rows (``takeOrdered``,
or the head of an executor-side sort when the source is large) until its quota is filled; titles come from the page views alone. It writes ``{lang}.json``
instead of ``metadata.json``, the rest alike.

Output folder: ``metadata.json`` (JSON list of strings; usable as ``--metadata``),
``provenance/provenance.parquet`` (entry_id, entry, source, count, pmi, views),
``stats/build_metadata.json`` (per-source outcomes, page statistics), ``config-build_metadata.json``,
``_SUCCESS``.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from operator import add

from metaclip_spark.metadata import build as mb
from metaclip_spark.run import outputs
from metaclip_spark.run import runfolder
from metaclip_spark.run.runner import config_name
from metaclip_spark.run.config import Config, ConfigError
from metaclip_spark.inputs.io import expand_inputs
from metaclip_spark.run.stats import Stats
from metaclip_spark.metadata.wikipedia import check_dump, count_split, link_namespaces, plan_splits, read_pageviews
from metaclip_spark.metadata.wordnet import check_wordnet_dir, wordnet_entries
from metaclip_spark.metadata import world_build as wb

log = logging.getLogger("metaclip_spark")
FLUSH_KEYS = 1_000_000     # a task emits its counters when they hold this many keys
TAKE_ORDERED_MAX = 2_000_000   # rows of a ranked source (another language) above which its head comes from a sort


def is_world(cfg: Config) -> bool:
    return (cfg.metadata_build.lang or "en") != "en"


def prepare(cfg: Config) -> dict:
    """Driver-side checks and inputs, before any Spark work."""
    m = cfg.metadata_build
    world = is_world(cfg)
    if not cfg.output:
        raise ConfigError("an output folder is required (--output DIR)")
    cfg.output = runfolder.absolute(cfg.output)      # once, on the driver
    runfolder.check_location(cfg.output, list(m.wikipedia or []) + list(m.pageviews or [])
                             + [m.wordnet_omw if world else m.wordnet or ""])
    if outputs.exists(outputs.join(cfg.output, "_SUCCESS")) and not cfg.overwrite:
        raise ConfigError("output %s already holds a finished run; pass --overwrite to replace it" % cfg.output)
    res = {"segmenter": None, "omw": [], "link_ns": frozenset()}
    if world:
        _check_world(cfg, res)
    else:
        if not m.wordnet and not m.wikipedia:
            raise ConfigError("nothing to build from: set metadata_build.wordnet and/or --wikipedia")
        if m.wordnet:
            check_wordnet_dir(m.wordnet)
    dumps = expand_inputs(m.wikipedia) if m.wikipedia else []
    splits = []
    for uri in dumps:
        splits.extend(plan_splits(uri, check_dump(uri), m.split_bytes))
    if world and dumps:
        res["link_ns"] = frozenset().union(*(link_namespaces(uri) for uri in dumps))
    pv_stats = Stats()
    projects = wb.pageview_projects(m.lang or "en", m.pageviews_projects)
    views = read_pageviews(expand_inputs(m.pageviews), projects, pv_stats) if m.pageviews else {}
    return {**res, "dumps": dumps, "splits": splits, "views": views, "pageviews_stats": pv_stats,
            "pageviews_projects": projects}


def _check_world(cfg: Config, res: dict) -> None:
    """Another language: thresholds, its segmenter (written without spaces) and its OMW file."""
    from metaclip_spark.metadata.omw import read_omw
    from metaclip_spark.metadata.segmenters import check_segmenter

    m = cfg.metadata_build
    if not re.fullmatch(r"[a-z][a-z0-9_]*", m.lang):
        raise ConfigError("metadata_build.lang must be a metadata language code such as ja or zh_classical "
                          "(lower case, digits, _), got %r" % m.lang)
    for name in ("world_unigram_share", "world_title_share"):
        if not 0 <= getattr(m, name) <= 1:
            raise ConfigError("metadata_build.%s must be in [0, 1], got %r" % (name, getattr(m, name)))
    for name in ("world_unigram_cap", "world_bigram_cap", "world_title_cap"):
        if getattr(m, name) < 0:
            raise ConfigError("metadata_build.%s must be >= 0, got %r" % (name, getattr(m, name)))
    if not (m.wikipedia or m.wordnet_omw or m.pageviews):
        raise ConfigError("nothing to build %s.json from: pass --wikipedia, --pageviews and/or --wordnet-omw" % m.lang)
    if m.wikipedia:
        spec = check_segmenter(m.lang)
        res["segmenter"] = spec.name if spec else None
    if m.wordnet_omw:
        res["omw"] = read_omw(m.wordnet_omw, m.lang)


def _task(splits, views: dict, min_views: int, lang: str = "en", link_ns: frozenset = frozenset()):
    counter = wb.NgramCounter(lang) if lang != "en" else None
    for uri, start, end in splits:
        stats = Stats()
        uni, bi = {}, {}
        for title, u, b in count_split(uri, start, end, stats, counter, link_ns):
            if views.get(title, 0) >= min_views:
                stats.add("titles_kept")
                yield ("t", title), 1
            for k, c in u.items():
                uni[k] = uni.get(k, 0) + c
            for k, c in b.items():
                bi[k] = bi.get(k, 0) + c
            if len(uni) + len(bi) >= FLUSH_KEYS:
                yield from _flush(uni, bi)
        yield from _flush(uni, bi)
        for name, n in stats.counts.items():
            yield ("s", name), n
        for err in stats.errors:
            yield ("e", json.dumps(err, sort_keys=True)), 1


def _flush(uni: dict, bi: dict):
    for k, c in uni.items():
        yield ("u", k), c
    for (a, b), c in bi.items():
        yield ("b", a, b), c
    uni.clear()
    bi.clear()


def count_wikipedia(spark, res: dict, cfg: Config) -> dict:
    """Spark part: unigrams over the threshold, scored bigrams, kept titles, statistics."""
    m = cfg.metadata_build
    sc = spark.sparkContext
    splits = res["splits"]
    kept_views = {t: v for t, v in res["views"].items() if v >= m.title_min_views}
    views_bc = sc.broadcast(kept_views)
    min_views = m.title_min_views

    def task(part):
        return _task(part, views_bc.value, min_views)

    counts = (sc.parallelize(splits, len(splits)).mapPartitions(task)
              .reduceByKey(add, max(2, len(splits))).persist())
    try:
        t0 = time.time()
        small = counts.filter(lambda kv: kv[0][0] in ("s", "e", "t")).collect()
        log.info("counted %d splits in %.1f s", len(splits), time.time() - t0)
        stats = Stats({k[1]: v for k, v in small if k[0] == "s"},
                      [json.loads(k[1]) for k, _ in small if k[0] == "e"])
        titles = sorted(k[1] for k, _ in small if k[0] == "t")
        min_uni = m.unigram_min_count
        unigrams = (counts.filter(lambda kv: kv[0][0] == "u" and kv[1] >= min_uni)
                    .map(lambda kv: (kv[0][1], kv[1])).collect())
        log.info("unigrams collected at %.1f s", time.time() - t0)
        n_tok, n_bi = stats["tokens"], stats["bigrams"]
        min_bi, min_pmi = m.bigram_min_count, m.bigram_min_pmi
        uni_all = counts.filter(lambda kv: kv[0][0] == "u").map(lambda kv: (kv[0][1], kv[1]))
        scored = (_scored_bigrams(counts, uni_all, min_bi, n_tok, n_bi)
                  .filter(lambda x: x[3] >= min_pmi).collect()) if n_bi else []
        log.info("bigrams scored at %.1f s", time.time() - t0)
    finally:
        counts.unpersist()
        views_bc.unpersist()
    return {"unigrams": unigrams, "bigrams": scored, "titles": titles, "stats": stats}


def count_wikipedia_world(spark, res: dict, cfg: Config, asm: wb.Assembly) -> Stats:
    """Another language's Spark part: counts, then the unigram and bigram quotas filled into ``asm``
    from the ranked counts (the driver collects only the top rows it needs)."""
    m = cfg.metadata_build
    lang, link_ns, caps = m.lang, res["link_ns"], wb.WorldCaps.from_config(m)
    sc = spark.sparkContext
    splits = res["splits"]

    def task(part):
        return _task(part, {}, 1, lang, link_ns)

    counts = (sc.parallelize(splits, len(splits)).mapPartitions(task)
              .reduceByKey(add, max(2, len(splits))).persist())
    held: list = []
    try:
        t0 = time.time()
        small = counts.mapPartitions(_small_and_sizes).collect()       # one job: statistics and distinct counts
        stats = Stats({k[1]: v for k, v in small if k[0] == "s"},
                      [json.loads(k[1]) for k, _ in small if k[0] == "e"])
        n_uni = sum(v for k, v in small if k == ("n", "u"))
        n_bi_distinct = sum(v for k, v in small if k == ("n", "b"))
        uni = counts.filter(lambda kv: kv[0][0] == "u").map(lambda kv: (kv[0][1], kv[1]))
        log.info("counted %d splits in %.1f s: %d distinct unigrams", len(splits), time.time() - t0, n_uni)
        asm.fill("unigram", _head(uni, wb.unigram_key, n_uni, held),
                 wb.quota(n_uni, caps.unigram_share, caps.unigram_cap), n_uni)
        n_tok, n_bi = stats["tokens"], stats["bigrams"]
        min_bi, min_pmi = caps.bigram_min_count, caps.bigram_min_pmi
        scored = (_scored_bigrams(counts, uni, min_bi, n_tok, n_bi)
                  .map(lambda x: (wb.join_bigram(x[0], x[1], lang), x[2], x[3]))
                  .filter(lambda r: r[2] >= min_pmi))
        if n_bi:
            asm.fill("bigram", _head(scored, wb.bigram_key, n_bi_distinct, held),
                     min(caps.bigram_cap, n_bi_distinct), n_bi_distinct)
        log.info("unigrams and bigrams taken at %.1f s", time.time() - t0)
    finally:
        for rdd in held + [counts]:
            rdd.unpersist()
    return stats


def _scored_bigrams(counts, uni, min_count: int, n_tok: int, n_bi: int):
    """``(a, b, count, pmi)`` of the counted bigrams seen at least ``min_count`` times: two joins
    with the unigram counts ``uni`` (``(token, count)`` rows), on the executors."""
    frequent = (counts.filter(lambda kv: kv[0][0] == "b" and kv[1] >= min_count)
                .map(lambda kv: (kv[0][1], (kv[0][2], kv[1]))))
    return (frequent.join(uni)
            .map(lambda kv: (kv[1][0][0], (kv[0], kv[1][0][1], kv[1][1])))
            .join(uni)
            .map(lambda kv: (kv[1][0][0], kv[0], kv[1][0][1],
                             mb.pmi(kv[1][0][1], kv[1][0][2], kv[1][1], n_tok, n_bi))))


def _head(rdd, key, n: int, held: list):
    """``fetch(k)``: the first ``k`` rows of ``rdd`` in ``key`` order. ``takeOrdered`` sends each
    partition's top ``k`` to the driver, at most ``n`` rows in all: fine up to TAKE_ORDERED_MAX; a
    larger source is sorted on the executors once (range partitions) and only its head is taken."""
    if n <= TAKE_ORDERED_MAX:
        return lambda k: rdd.takeOrdered(k, key=key)
    state: dict = {}

    def fetch(k):
        if "sorted" not in state:
            state["sorted"] = rdd.sortBy(key).persist()
            held.append(state["sorted"])
        return state["sorted"].take(k)
    return fetch


def _small_and_sizes(items):
    """Statistics and errors of a partition of the counts, and how many distinct unigrams and bigrams it holds."""
    n = {"u": 0, "b": 0}
    for kv in items:
        kind = kv[0][0]
        if kind in ("s", "e"):
            yield kv
        elif kind in n:
            n[kind] += 1
    yield from ((("n", k), v) for k, v in n.items())


def _max_pmi(n_tok: int, n_bi: int, min_count: int) -> float | None:
    """PMI of a bigram seen exactly ``min_count`` times whose words occur only in it."""
    return mb.pmi(min_count, min_count, min_count, n_tok, n_bi) if n_bi and n_tok else None


def run_build_metadata(cfg: Config, spark=None) -> dict:
    res = prepare(cfg)
    runfolder.claim(cfg.output)
    with runfolder.RunLock(cfg.output, "build_metadata"):
        return _run_build_metadata(cfg, res, spark)


def _run_build_metadata(cfg: Config, res: dict, spark) -> dict:
    if is_world(cfg):
        return _run_build_world(cfg, res, spark)
    m = cfg.metadata_build
    wn = wordnet_entries(m.wordnet) if m.wordnet else []
    wiki = {"unigrams": [], "bigrams": [], "titles": [], "stats": Stats()}
    if res["splits"]:
        from metaclip_spark.spark.session import get_spark

        spark = spark or get_spark(cfg.spark)
        wiki = count_wikipedia(spark, res, cfg)
    views = res["views"]
    candidates = (mb.wordnet_candidates(wn)
                  + mb.unigram_candidates(wiki["unigrams"], m.unigram_min_count)
                  + mb.bigram_candidates(wiki["bigrams"], m.bigram_min_count, m.bigram_min_pmi)
                  + mb.title_candidates(wiki["titles"], views, m.title_min_views))
    entries, kept, per_source = mb.assemble(candidates, m.budget)
    if not entries:
        raise RuntimeError("no metadata entries passed the thresholds; nothing written")
    runfolder.remove_file(outputs.join(cfg.output, "_SUCCESS"))
    runfolder.remove_temporaries(cfg.output)
    outputs.write_text(outputs.join(cfg.output, "metadata.json"), json.dumps(entries, ensure_ascii=False))
    outputs.write_table(outputs.join(cfg.output, "provenance", "provenance.parquet"), mb.provenance_table(kept))
    st = wiki["stats"]
    summary = {
        "stage": "build_metadata", "entries": len(entries), "budget": m.budget,
        "sources": per_source,
        "added": {s: per_source[s]["added"] for s in mb.SOURCES},
        "dumps": res["dumps"], "splits": len(res["splits"]),
        "wikipedia": dict(sorted(st.counts.items())), "dropped": st.dropped(),
        "errors": st.errors[:1000], "errors_total": len(st.errors),
        "pageviews": dict(sorted(res["pageviews_stats"].counts.items())),
        "pageview_titles": len(views),
        "bigram_max_attainable_pmi": _max_pmi(st["tokens"], st["bigrams"], m.bigram_min_count),
    }
    if summary["bigram_max_attainable_pmi"] is not None and summary["bigram_max_attainable_pmi"] < m.bigram_min_pmi:
        log.warning("metadata_build.bigram_min_pmi=%s cannot be reached on this corpus (the highest PMI a "
                    "bigram with count >= %d can have is %.2f): no bigrams", m.bigram_min_pmi,
                    m.bigram_min_count, summary["bigram_max_attainable_pmi"])
    outputs.write_text(outputs.join(cfg.output, "stats", "build_metadata.json"), json.dumps(summary, indent=2))
    outputs.write_text(outputs.join(cfg.output, config_name("build_metadata")), cfg.to_json())
    outputs.write_text(outputs.join(cfg.output, "_SUCCESS"), "")
    return summary


def _run_build_world(cfg: Config, res: dict, spark) -> dict:
    """``{lang}.json`` of another language (MetaCLIP 2's recipe, metadata/world_build.py)."""
    m = cfg.metadata_build
    caps = wb.WorldCaps.from_config(m)
    asm = wb.Assembly()
    asm.take("number", wb.NUMBERS)
    asm.take("wordnet", res["omw"])
    st = Stats()
    if res["splits"]:
        from metaclip_spark.spark.session import get_spark

        spark = spark or get_spark(cfg.spark)
        st = count_wikipedia_world(spark, res, cfg, asm)
    asm.take("unigram", [], 0, 0)            # a source with nothing to offer still has its stats row
    asm.take("bigram", [], 0, 0)
    tv = wb.title_views(res["views"])
    asm.take("title", wb.rank_titles(tv), wb.quota(len(tv), caps.title_share, caps.title_cap), len(tv))
    entries = asm.entries
    runfolder.remove_file(outputs.join(cfg.output, "_SUCCESS"))
    runfolder.remove_temporaries(cfg.output)
    outputs.write_text(outputs.join(cfg.output, "%s.json" % m.lang), json.dumps(entries, ensure_ascii=False))
    outputs.write_table(outputs.join(cfg.output, "provenance", "provenance.parquet"), mb.provenance_table(asm.kept))
    summary = {
        "stage": "build_metadata", "lang": m.lang, "entries": len(entries), "file": "%s.json" % m.lang,
        "sources": asm.stats, "added": {s: asm.stats[s]["added"] for s in wb.WORLD_SOURCES},
        "segmenter": res["segmenter"], "wordnet_omw": m.wordnet_omw or None,
        "dumps": res["dumps"], "splits": len(res["splits"]), "link_namespaces": sorted(res["link_ns"]),
        "wikipedia": dict(sorted(st.counts.items())), "dropped": st.dropped(),
        "errors": st.errors[:1000], "errors_total": len(st.errors),
        "pageviews": dict(sorted(res["pageviews_stats"].counts.items())),
        "pageviews_projects": res["pageviews_projects"], "pageview_titles": len(tv),
        "bigram_max_attainable_pmi": _max_pmi(st["tokens"], st["bigrams"], m.bigram_min_count),
    }
    outputs.write_text(outputs.join(cfg.output, "stats", "build_metadata.json"), json.dumps(summary, indent=2))
    outputs.write_text(outputs.join(cfg.output, config_name("build_metadata")), cfg.to_json())
    outputs.write_text(outputs.join(cfg.output, "_SUCCESS"), "")
    return summary
