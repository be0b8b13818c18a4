"""Measurements, one per fresh process: ``python -m bench.tasks NAME JSON_ARGS``.

Each prints one JSON line: the task's own numbers plus ``cpu`` (process CPU seconds of
the timed part), ``wall`` and ``maxrss_mb`` (peak RSS of the whole process). CPU time is
the honest measure on a shared 2-core machine; every timed part is repeated ``reps``
times and the best repetition is reported.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time


def timed(fn, reps: int = 1):
    """(result, best CPU seconds, wall seconds of that repetition)."""
    best = None
    for _ in range(max(1, reps)):
        c0, w0 = time.process_time(), time.perf_counter()
        out = fn()
        c, w = time.process_time() - c0, time.perf_counter() - w0
        if best is None or c < best[1]:
            best = (out, c, w)
    return best


def _drain(f, size=1 << 20):
    n = 0
    while True:
        b = f.read(size)
        if not b:
            return n
        n += len(b)


def floor(path: str, lib: str, reps: int = 3) -> dict:
    """Decompress the whole (multi-member) file with one library's gzip reader."""
    if lib == "isal":
        from isal import igzip as mod
    elif lib == "zlib-ng":
        from zlib_ng import gzip_ng as mod
    else:
        import gzip as mod

    def run():
        with mod.open(path, "rb") as f:
            return _drain(f)

    n, cpu, wall = timed(run, reps)
    return {"bytes_out": n, "cpu": cpu, "wall": wall}


def extract(path: str, reps: int = 2, reader: str = "native") -> dict:
    """Our extraction only: every kept pair of the file, nothing written, in the form stage 1
    consumes it (``pages_from_file``: the pairs grouped by page)."""
    from metaclip_spark.steps import extract as ex
    from metaclip_spark.run.stats import Stats

    def run():
        st = Stats()
        n = sum(len(page.pairs) for page in ex.pages_from_file(path, stats=st, reader=reader))
        return n, st["records_read"], st.to_dict()

    (pairs, records, stats), cpu, wall = timed(run, reps)
    return {"pairs": pairs, "records": records, "stats": stats, "cpu": cpu, "wall": wall}


def _matcher_lid(metadata: str):
    from metaclip_spark.metadata import defaults
    from metaclip_spark.steps.language import LanguageId
    from metaclip_spark.steps.match import Matcher
    from metaclip_spark.metadata.load import load_metadata

    entries = load_metadata(metadata) if metadata else load_metadata(defaults.default_metadata_path())
    c0 = time.process_time()
    matcher = Matcher(entries).prepare()
    build = time.process_time() - c0
    lid = LanguageId(defaults.default_lid_model_path(), 0.5)
    lid.predict(["warm up"])
    return matcher, lid, build


def stage1(path: str, metadata: str, out: str, reps: int = 2) -> dict:
    """Our full stage 1 on one file: extract + LID + match + pool Parquet (pipeline.match_file),
    the automaton built and the model loaded beforehand (once per worker in a run)."""
    from metaclip_spark.steps.extract import ExtractLimits
    from metaclip_spark.steps.pipeline import match_file

    matcher, lid, build = _matcher_lid(metadata)
    # a new Matcher object per repetition would rebuild nothing (automata are cached per
    # process) but keep its text cache: clear it so every repetition starts cold
    def run():
        matcher._cache.clear()
        return match_file(path, out, matcher, lid, ExtractLimits())

    res, cpu, wall = timed(run, reps)
    if res.failed:
        raise RuntimeError("stage 1 failed: %s" % res.failed)
    return {"pool_rows": res.rows, "pairs": res.stats["pairs"], "records": res.stats["records_read"],
            "english": res.stats["english"], "cpu": cpu, "wall": wall, "automaton_build_cpu": build}


def _captions(path: str) -> list[str]:
    import pyarrow.parquet as pq

    return [t for t in pq.read_table(path, columns=["TEXT"]).column("TEXT").to_pylist() if isinstance(t, str)]


def matcher(captions: str, metadata: str, naive_sample: int = 40, reps: int = 5) -> dict:
    """Ours vs a plain pyahocorasick loop vs the naive matcher (semantics section 4) on real captions."""
    import ahocorasick

    from metaclip_spark.steps.match import Matcher, naive_match, spacing
    from metaclip_spark.metadata.load import load_metadata

    texts = _captions(captions)
    entries = load_metadata(metadata)
    c0 = time.process_time()
    # the plain loop: every key " e " in file order, value = the entry's id (the first id
    # of a duplicated string; its other ids added per hit, only when duplicates exist)
    plain = ahocorasick.Automaton(ahocorasick.STORE_INTS)
    first: dict[str, int] = {}
    dups: dict[int, list] = {}
    for i, e in enumerate(entries):
        j = first.setdefault(e, i)
        if j != i:
            dups.setdefault(j, [j]).append(i)
    for e, i in first.items():
        plain.add_word(" " + e + " ", i)
    plain.make_automaton()
    plain_build = time.process_time() - c0
    c0 = time.process_time()
    ours = Matcher(entries, cache_size=0).prepare()
    ours_build = time.process_time() - c0
    cached = Matcher(entries)

    def plain_loop():
        out = []
        for t in texts:
            ids = {v for _, v in plain.iter(spacing(t))}
            if dups:
                ids = {k for v in ids for k in dups.get(v, (v,))}
            out.append(sorted(ids))
        return out

    ref, plain_cpu, _ = timed(plain_loop, reps)
    got, ours_cpu, _ = timed(lambda: [ours.match(t) for t in texts], reps)
    many, many_cpu, _ = timed(lambda: ours.match_many(texts), reps)
    if got != ref or many != ref:
        bad = next(i for i in range(len(ref)) if got[i] != ref[i] or many[i] != ref[i])
        raise AssertionError("matcher differs from the plain loop on text %d: %r" % (bad, texts[bad]))
    step = max(1, len(texts) // naive_sample)
    sample = texts[::step][:naive_sample]
    naive, naive_cpu, _ = timed(lambda: [naive_match(t, entries) for t in sample], 1)
    if naive != [ref[i] for i in range(0, len(texts), step)][:len(sample)]:
        raise AssertionError("matcher differs from the naive SPEC matcher")
    cached.match_many(texts)
    _, warm_cpu, _ = timed(lambda: cached.match_many(texts), reps)
    n = len(texts)
    return {"texts": n, "matches": sum(map(len, ref)), "naive_sample": len(sample),
            "plain_tps": n / plain_cpu, "ours_tps": n / ours_cpu, "many_tps": n / many_cpu,
            "warm_tps": n / warm_cpu, "naive_tps": len(sample) / naive_cpu,
            "plain_build_cpu": plain_build, "ours_build_cpu": ours_build, "cpu": ours_cpu, "wall": 0}


def lid(captions: str, reps: int = 3) -> dict:
    """fastText lid.176 on the real captions, in batches of 4096 (no de-duplication)."""
    from metaclip_spark.metadata import defaults
    from metaclip_spark.steps.language import LanguageId

    texts = [" ".join(t.split()) for t in _captions(captions)]
    model = LanguageId(defaults.default_lid_model_path(), 0.5)
    model.predict(["warm up"])

    def run():
        n = 0
        for i in range(0, len(texts), 4096):
            labels, _ = model.predict(texts[i:i + 4096])
            n += labels.count("en")
        return n

    en, cpu, wall = timed(run, reps)
    return {"texts": len(texts), "english": en, "tps": len(texts) / cpu, "cpu": cpu, "wall": wall}


TASKS = {"floor": floor, "extract": extract, "stage1": stage1, "matcher": matcher, "lid": lid}


def main(argv: list[str]) -> int:
    name, args = argv[0], json.loads(argv[1]) if len(argv) > 1 else {}
    if "." in name:                        # stage2.balance, index_pools.make_run, ...
        import importlib
        mod, fn_name = name.split(".", 1)
        fn = getattr(importlib.import_module("bench." + mod), fn_name)
    else:
        fn = TASKS[name]
    w0 = time.perf_counter()
    out = fn(**args)
    out["process_wall"] = time.perf_counter() - w0
    out["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    sys.stdout.write("\nBENCH-RESULT " + json.dumps(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
