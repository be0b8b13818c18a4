"""Data of the report beyond the stage statistics: image hosts and duplicates of the pool,
time per stage, and a bounded, Spark-free second look at a sample of the inputs.

Stage 1 keeps only the pool rows and counters; the texts it dropped (not English, LID
score below the threshold, no metadata entry) and their LID scores are not stored.
:func:`input_sample` gets them back without touching the pool: it re-reads the first
``max_pairs`` pairs of at most ``max_files`` input files (spread over the run's file list)
with the pipeline's own extraction (:func:`metaclip_spark.steps.extract.pages_from_file`) and
LID model and threshold, and calls a pair *matched* when its (record offset, url, text) is
in that input's pool file, so it agrees with what stage 1 did without loading the metadata.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from urllib.parse import urlsplit

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from metaclip_spark.run import outputs
from metaclip_spark.steps import drops as drop_registry

# of a pair that reached LID: matched, or the registry's match and language reasons (last step first)
# English mode's language drops: the registry's first two (the third, no_metadata_language, is worldwide's)
ENGLISH_LID = drop_registry.LID[:2]
CLASSES = ("matched",) + tuple(reversed(ENGLISH_LID + drop_registry.MATCH))
HIST_BINS = 20                                                        # LID score bins over [0, 1]
THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def _read_json(uri: str):
    return json.loads(outputs.read_text(uri)) if outputs.exists(uri) else None


def _pool_file(run_dir: str, output: str) -> str:
    """An input's pool file named by the manifest: relative to the run folder (or, from older
    runs, to the working directory, or absolute); a run folder that was moved or copied still
    has it under its own ``pool/``."""
    name = output.rstrip("/").rsplit("/", 1)[-1]
    relative = "://" not in output and not output.startswith("/")
    tries = ([outputs.join(run_dir, output)] if relative else []) + [output, outputs.join(run_dir, "pool", name)]
    for uri in tries:
        try:
            if outputs.exists(uri):
                return uri
        except Exception:  # noqa: BLE001 - e.g. no credentials for a stale absolute URI
            continue
    return tries[-1]


def host_of(url: str) -> str:
    """Lower-cased host name of a URL (no port, no user info); the raw netloc if it does not parse."""
    try:
        parts = urlsplit(url)
        return parts.hostname or parts.netloc.lower() or "(none)"
    except ValueError:
        return "(invalid)"


def image_key(url: str) -> str:
    """semantics section 9: URLs that differ only by TAB or space are one image (the id hashes this)."""
    return url.replace("\t", "").replace(" ", "")


def _read_bounded(uris: list[str], columns: list[str], max_rows: int) -> tuple[pa.Table | None, int]:
    """Whole files in order until ``max_rows`` rows (the last one cut): (table, files read)."""
    parts, n, used = [], 0, 0
    for uri in uris:
        if n >= max_rows:
            break
        t = outputs.read_tables([uri], columns)
        parts.append(t.slice(0, max_rows - n))
        n += parts[-1].num_rows
        used += 1
    return (pa.concat_tables(parts) if parts else None), used


def _url_counts(table: pa.Table) -> dict[str, int]:
    """Rows per distinct URL (pyarrow's value_counts: no Python string per row)."""
    vc = pc.value_counts(table.column("url"))
    return dict(zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist()))


def _distinct_pairs(table: pa.Table) -> int:
    return table.select(["url", "text"]).group_by(["url", "text"]).aggregate([]).num_rows


def _dup(rows: int, pairs: int, url_counts: dict[str, int]) -> dict:
    images = len({image_key(u) for u in url_counts})
    return {"rows": rows, "distinct_pairs": pairs, "distinct_images": images,
            "pair_dup_rate": (rows - pairs) / rows if rows else None,
            "image_dup_rate": (rows - images) / rows if rows else None}


def duplicates(urls: list[str], texts: list[str]) -> dict:
    """Rows, distinct (url, text) pairs and distinct images (semantics section 9 image key) of a list of rows."""
    table = pa.table({"url": pa.array(urls, pa.string()), "text": pa.array(texts, pa.string())})
    return _dup(len(urls), _distinct_pairs(table), _url_counts(table))


def _hosts(url_counts: dict[str, int], top: int, curated: dict[str, int] | None) -> tuple[list[dict], int]:
    rows: dict[str, int] = {}
    images: dict[str, set] = {}
    for u, n in url_counts.items():
        h = host_of(u)
        rows[h] = rows.get(h, 0) + n
        images.setdefault(h, set()).add(image_key(u))
    cur: dict[str, int] = {}
    for u, n in (curated or {}).items():
        h = host_of(u)
        cur[h] = cur.get(h, 0) + n
    order = sorted(rows, key=lambda h: (-rows[h], h))[:top]
    return [{"host": h, "rows": rows[h], "images": len(images[h]),
             "curated": cur.get(h, 0) if curated is not None else None} for h in order], len(rows)


def top_hosts(urls: list[str], top: int = 20, curated_urls: list[str] | None = None) -> list[dict]:
    """The ``top`` hosts by rows: host, rows, distinct images, curated rows (if given);
    ties by host name."""
    def counts(us):
        return _url_counts(pa.table({"url": pa.array(us, pa.string())}))
    return _hosts(counts(urls), top, counts(curated_urls) if curated_urls is not None else None)[0]


def pool_overview(run_dir: str, max_rows: int = 1_000_000, top: int = 20, curated: bool = True) -> dict | None:
    """Duplicates and top hosts of the pool's first ``max_rows`` rows (whole files, in name
    order), with the curated rows per host from the curated set's first ``max_rows`` rows."""
    files = outputs.list_files(outputs.join(run_dir, "pool"), ".parquet")
    table, used = _read_bounded(files, ["url", "text"], max_rows)
    if table is None or table.num_rows == 0:
        return None
    per_url = _url_counts(table)
    cur, ct, cur_used, cur_files = None, None, 0, []
    if curated:
        cur_files = outputs.list_files(outputs.join(run_dir, "curated"), ".parquet")
        ct, cur_used = _read_bounded(cur_files, ["url", "text"], max_rows)
        if ct is not None:
            cur = _url_counts(ct)
    hosts, n_hosts = _hosts(per_url, top, cur)
    out = {"files_read": used, "files": len(files), "dup": _dup(table.num_rows, _distinct_pairs(table), per_url),
           "hosts": hosts, "n_hosts": n_hosts, "curated_rows_read": ct.num_rows if ct is not None else None,
           "curated_files_read": cur_used, "curated_files": len(cur_files)}
    if ct is not None:
        out["curated_dup"] = _dup(ct.num_rows, _distinct_pairs(ct), cur)
    return out


def timing(run_dir: str, match: dict, balance: dict | None) -> dict:
    """What the run folder says about time: per-file seconds of stage 1
    (``stats/match-files.json``) and any ``*seconds*`` numbers in the stage summaries."""
    manifest = _read_json(outputs.join(run_dir, "stats", "match-files.json")) or []
    files = [f for f in manifest if isinstance(f, dict) and f.get("seconds") is not None]
    secs = np.array([float(f["seconds"]) for f in files], dtype=np.float64)
    out = {"files": len(files), "sum": float(secs.sum()) if secs.size else None,
           "mean": float(secs.mean()) if secs.size else None, "max": float(secs.max()) if secs.size else None,
           "rows": int(sum(int(f.get("rows") or 0) for f in files)),
           "slowest": sorted(files, key=lambda f: (-float(f["seconds"]), str(f.get("source"))))[:5],
           "stages": []}
    for name, doc in (("match", match), ("balance", balance)):
        for k, v in sorted((doc or {}).items()):
            if "second" in k and isinstance(v, (int, float)) and not isinstance(v, bool):
                out["stages"].append((name, k, float(v)))
    return out


def _spread(n: int, k: int) -> list[int]:
    """``k`` indexes spread evenly over ``range(n)`` (first and last included)."""
    if n <= k:
        return list(range(n))
    return sorted(set(np.linspace(0, n - 1, k).round().astype(int).tolist()))


def _lid_settings(run_dir: str, match: dict) -> tuple[str, float, dict]:
    cfg = (_read_json(outputs.join(run_dir, "config-match.json"))
           or _read_json(outputs.join(run_dir, "config.json")) or {})      # config.json: folders of older versions
    lid_cfg = cfg.get("lid") or {}
    named = [m for m in (match.get("lid_model"), lid_cfg.get("model")) if m]
    local = [m for m in named if "://" not in m and os.path.isfile(m)]
    if local:
        model = local[0]
    elif not named or all(m.rstrip("/").endswith("lid.176.ftz") for m in named):
        from metaclip_spark.metadata.defaults import default_lid_model_path   # the run's model is the bundled one
        model = default_lid_model_path()
    else:
        raise FileNotFoundError("the run's LID model %s is not a local file here" % named[0])
    threshold = float(lid_cfg.get("threshold", 0.5) if lid_cfg.get("threshold") is not None else 0.5)
    return model, threshold, cfg.get("extract") or {}


def _text_rank(text: str) -> bytes:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).digest()


def input_sample(run_dir: str, match: dict, max_files: int = 2, max_pairs: int = 20_000,
                 keep: int = 12) -> dict:
    """Re-read the first ``max_pairs`` pairs (drop None: those stage 1 sent to LID) of at
    most ``max_files`` inputs of the run, LID-score them and sort them into
    :data:`CLASSES`. Returns ``{"error": ...}`` when nothing could be read."""
    from metaclip_spark.steps import extract
    from metaclip_spark.steps.language import LanguageId, lid_drops
    from metaclip_spark.run.stats import Stats

    manifest = _read_json(outputs.join(run_dir, "stats", "match-files.json"))
    if not manifest:
        return {"error": "no stats/match-files.json in the run folder"}
    ok = sorted((f for f in manifest if f.get("output") and not f.get("failed")), key=lambda f: str(f["source"]))
    if not ok:
        return {"error": "no input file was read successfully"}
    try:
        model, threshold, limits = _lid_settings(run_dir, match)
        # the run's size limits (numbers; the remote-read policy keeps its default)
        limits = extract.ExtractLimits(**{k: v for k, v in limits.items() if k.startswith("max_")
                                          and k in extract.ExtractLimits.__dataclass_fields__
                                          and (v is None or isinstance(v, int))})
    except Exception as exc:  # noqa: BLE001 - the report shows why the section is missing
        return {"error": "LID model unavailable: %s" % exc}
    lid = LanguageId(model, threshold)
    texts, urls, labels, scores, cls, used, errors = [], [], [], [], [], [], []
    for i in _spread(len(ok), max_files):
        f = ok[i]
        try:
            pool = outputs.read_tables([_pool_file(run_dir, f["output"])], ["record_offset", "url", "text"])
        except Exception as exc:  # noqa: BLE001
            errors.append("%s: pool file unreadable (%s)" % (f["source"], type(exc).__name__))
            continue
        stats, got = Stats(), []
        pages = extract.pages_from_file(f["source"], stats=stats, limits=limits)
        try:
            for page in pages:
                got.extend((page.record_offset, url, text) for url, text, drop in page.pairs if drop is None)
                if len(got) >= max_pairs:
                    break
        finally:
            pages.close()
        got = got[:max_pairs]
        if got:   # the pool rows of the records read (file order: offsets grow)
            pool = pool.filter(pc.less_equal(pool.column("record_offset"), got[-1][0]))
        in_pool = set(zip(pool.column("record_offset").to_pylist(), pool.column("url").to_pylist(),
                          pool.column("text").to_pylist()))
        opened = [e["message"] for e in stats.errors if e.get("kind") == "open_error"]
        if opened:
            errors.append("%s: could not be opened (%s)" % (f["source"], opened[0][:200]))
            continue
        lab, sc = lid.predict([t for _, _, t in got]) if got else ([], np.zeros(0, np.float32))
        other, low = lid_drops(lab, sc, threshold)          # the pipeline's own LID decision
        not_english, lid_low_score = ENGLISH_LID
        (no_match,) = drop_registry.MATCH
        for (off, url, text), la, s, o, lo in zip(got, lab, sc.tolist(), other.tolist(), low.tolist()):
            if o:
                c = not_english
            elif lo:
                c = lid_low_score
            else:
                c = "matched" if (off, url, text) in in_pool else no_match
            texts.append(text)
            urls.append(url)
            labels.append(la)
            scores.append(s)
            cls.append(c)
        used.append({"source": f["source"], "pairs": len(got)})
    if not used:
        return {"error": "; ".join(errors) or "no input could be read"}
    sc = np.clip(np.array(scores, dtype=np.float64), 0.0, 1.0)
    en = np.array([la == "en" for la in labels], dtype=bool)
    edges = np.linspace(0.0, 1.0, HIST_BINS + 1)
    hist_en = np.histogram(sc[en], bins=edges)[0].astype(int)
    hist_other = np.histogram(sc[~en], bins=edges)[0].astype(int)
    thresholds = sorted(set(THRESHOLDS) | {threshold})
    first: dict[tuple[str, str], int] = {}      # (class, text) -> first row
    times: Counter = Counter(zip(cls, texts))
    for j, key in enumerate(zip(cls, texts)):
        first.setdefault(key, j)
    samples = {}
    for c in CLASSES[1:]:
        pick = sorted((t for k, t in first if k == c), key=_text_rank)[:keep]
        samples[c] = [{"text": t, "url": urls[first[c, t]], "label": labels[first[c, t]],
                       "score": scores[first[c, t]], "count": times[c, t]} for t in pick]
    return {"files": used, "files_total": len(ok), "max_files": max_files, "max_pairs": max_pairs,
            "threshold": threshold, "model": model, "scored": len(cls),
            "classes": {c: cls.count(c) for c in CLASSES}, "edges": edges.tolist(),
            "hist_en": hist_en.tolist(), "hist_other": hist_other.tolist(),
            "kept_at": [(t, int((en & (sc >= t)).sum())) for t in thresholds],
            "samples": samples, "errors": errors}
