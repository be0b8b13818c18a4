"""Finished stage-1 run folders for the index bench, tiled from a real stage-1 pool file.

The web repeats images: on the real web WARCs of ../shared/data/web, 922 extracted pairs are
184 distinct (url, text) pairs and 138 images. A bench pool copies the source rows ``copies``
times; copy ``c`` gets the URL suffix ``#<crawl>-<c // DUP>``, so every distinct pair occurs DUP
times (DUP = 4, about the web sample's 922 / 184 = 5), and ``shared`` of the copies use a
crawl-independent suffix, so two crawls' pools share those images (as consecutive monthly crawls
do). ``logo_rows`` more rows repeat one image (one URL) with ``logo_texts`` texts: the boilerplate
stress case (an image seen 10^6 times). Each folder is what ``metaclip-spark match`` writes:
pool files, their manifest and digest, entry counts, _SUCCESS.
"""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

DUP = 4
FILE_ROWS = 1_000_000
N_ENTRIES = 500_000


def _with_ids(t: pa.Table, crawl: str) -> pa.Table:
    from metaclip_spark.index import ids
    from metaclip_spark.steps.draws import key_hashes

    iid = ids.image_ids(t.column("url"))
    cols = {name: t.column(name) for name in t.schema.names}
    cols["key_hash"] = pa.array(key_hashes(t.column("url"), t.column("text")), pa.int64())
    cols["image_id"] = iid
    cols["text_hash"] = pa.array(ids.text_hashes(iid, t.column("text")), pa.int64())
    cols["crawl"] = pa.array([crawl] * t.num_rows, pa.string())
    return pa.table(cols)


def make_run(source: str, out: str, crawl: str, rows: int, shared: float = 0.5, logo_rows: int = 0,
             logo_texts: int = 1000) -> dict:
    """A finished stage-1 run folder of ``rows`` pool rows (+ ``logo_rows``) under ``out`` (cached)."""
    from metaclip_spark.run.outputs import ParquetSink
    from metaclip_spark.run.runfolder import pool_digest
    from metaclip_spark.run.schema import POOL_SCHEMA

    done = os.path.join(out, "_SUCCESS")
    if os.path.exists(done):
        return json.load(open(os.path.join(out, "stats", "bench.json")))
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(os.path.join(out, "pool"))
    src = pq.read_table(source)
    src = src.select([n for n in src.schema.names if n not in ("image_id", "text_hash", "crawl")])
    base = [n for n in POOL_SCHEMA.names if n in src.schema.names]
    src = src.select(base)
    counts = np.zeros(N_ENTRIES, dtype=np.int64)
    files, written, copy, f = [], 0, 0, 0
    total = rows + logo_rows
    while written < total:
        name = "pool/part-%s-%05d.parquet" % (crawl, f)
        sink = ParquetSink(os.path.join(out, name), POOL_SCHEMA)
        while sink.rows < FILE_ROWS and written < total:
            if written < rows:
                n = min(src.num_rows, FILE_ROWS - sink.rows, rows - written)
                t = src.slice(0, n)
                group = copy // DUP
                cut = int(n * shared)                  # rows [0, cut) of each copy: images both crawls hold
                tags = pa.array(["#s%d" % group] * cut + ["#%s-%d" % (crawl, group)] * (n - cut), pa.string())
                url = pc.binary_join_element_wise(t.column("url"), tags, "")
                t = t.set_column(0, "url", url)
                copy += 1
            else:
                n = min(FILE_ROWS - sink.rows, total - written)
                pick = np.arange(n) % min(logo_texts, src.num_rows)
                t = src.take(pa.array(pick))
                t = t.set_column(0, "url", pa.array(["http://bench.example/logo.gif"] * n, pa.string()))
            t = _with_ids(t, crawl).select(POOL_SCHEMA.names).cast(POOL_SCHEMA)
            ids = pc.list_flatten(t.column("entry_ids")).to_numpy()
            counts += np.bincount(ids, minlength=N_ENTRIES)[:N_ENTRIES]
            sink.write(t)
            written += n
        sink.commit()
        files.append({"source": "bench-%s-%d" % (crawl, f), "output": name, "rows": sink.rows, "failed": None})
        f += 1
    digest = pool_digest([(x["output"], x["rows"]) for x in files])
    os.makedirs(os.path.join(out, "stats"))
    os.makedirs(os.path.join(out, "entry_counts"))
    from metaclip_spark.run.schema import ENTRY_COUNTS_SCHEMA
    table = pa.table({"entry_id": pa.array(np.arange(N_ENTRIES, dtype=np.int32)),
                      "entry": pa.array(["entry %d" % i for i in range(N_ENTRIES)]),
                      "count": pa.array(counts)}, schema=ENTRY_COUNTS_SCHEMA.with_metadata({"pool_digest": digest}))
    pq.write_table(table, os.path.join(out, "entry_counts", "entry_counts.parquet"))
    json.dump(files, open(os.path.join(out, "stats", "match-files.json"), "w"))
    json.dump({"stage": "match", "pool_digest": digest, "pool_rows": written, "crawl": crawl},
              open(os.path.join(out, "stats", "match.json"), "w"))
    info = {"rows": written, "files": len(files), "crawl": crawl, "logo_rows": logo_rows,
            "mb": sum(os.path.getsize(os.path.join(out, x["output"])) for x in files) / 2**20}
    json.dump(info, open(os.path.join(out, "stats", "bench.json"), "w"))
    open(done, "w").close()
    return info


def balance(index: str, release: int, out: str, seed: int = 0) -> dict:
    """Balance over an index release Spark-free, one process, one core: the bucket files in groups of
    about 200,000 rows (balance.rows_per_file), each through ``index.select.curate_files`` (read,
    choose, draw, curated form, write one file), t for 25% of the images."""
    import glob

    from metaclip_spark.index import select
    from metaclip_spark.steps.balance import PoolSizeModel, probabilities, solve_t_for_target_size
    from bench.tasks import timed

    folder = os.path.join(index, "releases", "%05d" % release)
    files = sorted(glob.glob(os.path.join(folder, "images", "*.parquet")))
    counts = pq.read_table(os.path.join(folder, "entry_counts")).column("count").to_numpy()
    stats = json.load(open(os.path.join(folder, "stats", "index.json")))
    sample = files[:4]
    lists = [select.candidate_lists(pq.read_table(f, columns=["image_id", "text_hash", "text", "entry_ids"]),
                                    "image", seed) for f in sample]
    model = PoolSizeModel(lists, counts, scale=len(files) / len(sample))
    t = solve_t_for_target_size(counts, model, 0.25 * stats["totals"]["images"])
    probs = probabilities(counts, max(t, 1.0))
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)

    from metaclip_spark.steps.curated import plan_groups
    groups = plan_groups([(f, pq.ParquetFile(f).metadata.num_rows) for f in files], 200_000)   # as balance.rows_per_file

    def run():
        rows_in = kept = n_images = 0
        for g, group in enumerate(groups):
            r = select.curate_files(g, group, os.path.join(out, "part-%05d.parquet" % g), "image", probs, seed)
            rows_in += r.rows_in
            kept += r.rows_out
            n_images += r.candidates         # dedup image: one candidate per image with a stored text
        return rows_in, kept, n_images

    (rows_in, kept, n_images), cpu, wall = timed(run, 1)
    return {"index_rows": rows_in, "images": n_images, "curated": kept, "t": t, "cpu": cpu, "wall": wall,
            "images_per_s": n_images / cpu, "rows_per_s": rows_in / cpu}
