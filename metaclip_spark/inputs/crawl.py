"""CommonCrawl crawl ids as inputs: listing, sampling and the output folder of a crawl.

``crawl_inputs("CC-MAIN-2020-45", kind="wat", source="https")`` reads CommonCrawl's
``crawl-data/<id>/<kind>.paths.gz`` (from ``s3://commoncrawl/`` with the normal AWS
credential chain, or from ``https://data.commoncrawl.org/``; or a local copy given as
``paths_list``) and returns the full URIs of the files, optionally sampled (a stable,
seeded subset: a file is kept when the hash of ``seed`` and its path is below the fraction,
so the same seed keeps the same files whatever the order or length of the listing) and
cut to the first ``limit`` files. A crawl's outputs go to ``<root>/crawl=<id>/``; the id is
validated, so the folder can never escape the output root.
"""

from __future__ import annotations

import posixpath
import re

import xxhash

from metaclip_spark.inputs.io import CC_HTTPS_ROOT, CC_S3_ROOT, InputError, read_paths_list
from metaclip_spark.run.redact import scrub_uri

# CC-MAIN-YYYY-WW, ASCII digits only (``\d`` would take other scripts' digits), year
# 2008-2099, week 01-53. deploy/airflow/metaclip_crawls.py keeps the same rule (the DAGs
# folder imports nothing from the package); tests/inputs/test_crawl.py runs one table of
# ids through both.
CRAWL_ID_RE = re.compile(r"CC-MAIN-([0-9]{4})-([0-9]{2})")
KINDS = {"wat": (".warc.wat.gz",), "warc": (".warc.gz",)}
SOURCES = {"s3": CC_S3_ROOT, "https": CC_HTTPS_ROOT}


def validate_crawl_id(crawl: str) -> str:
    """``crawl`` if it is a CommonCrawl main-crawl id (CC-MAIN-YYYY-WW), else InputError."""
    m = CRAWL_ID_RE.fullmatch(crawl) if isinstance(crawl, str) else None
    if not m or not 2008 <= int(m.group(1)) <= 2099 or not 1 <= int(m.group(2)) <= 53:
        raise InputError("not a CommonCrawl crawl id: %r (expected CC-MAIN-YYYY-WW, e.g. CC-MAIN-2020-45)"
                         % (crawl,))
    return crawl


def listing_uri(crawl: str, kind: str = "wat", source: str = "https") -> str:
    """Where CommonCrawl publishes the list of ``kind`` files of ``crawl``."""
    validate_crawl_id(crawl)
    if kind not in KINDS:
        raise InputError("--kind must be one of %s, got %r" % ("/".join(KINDS), kind))
    if source not in SOURCES:
        raise InputError("--source must be one of %s, got %r" % ("/".join(SOURCES), source))
    return "%scrawl-data/%s/%s.paths.gz" % (SOURCES[source], crawl, kind)


def sample(uris: list[str], fraction: float | None, seed: int = 0) -> list[str]:
    """The files whose seeded hash falls below ``fraction`` (order kept); all when None."""
    if fraction is None:
        return list(uris)
    if not 0.0 < fraction <= 1.0:
        raise InputError("--sample-fraction must be within (0, 1], got %r" % fraction)
    bound = fraction * 2.0 ** 64
    return [u for u in uris if xxhash.xxh64_intdigest(_path_key(u).encode("utf-8"), seed=seed & 0xFFFFFFFFFFFFFFFF) < bound]


def _path_key(uri: str) -> str:
    """The crawl-relative path (``crawl-data/...``) when there is one, so https and s3
    URIs of the same file are sampled alike."""
    i = uri.find("crawl-data/")
    return uri[i:] if i >= 0 else uri


def crawl_inputs(crawl: str, kind: str = "wat", source: str = "https", paths_list: str | None = None,
                 limit: int | None = None, fraction: float | None = None, seed: int = 0) -> list[str]:
    """Full URIs of the ``kind`` files of ``crawl``, sampled then limited (see the module doc)."""
    uri = paths_list or listing_uri(crawl, kind, source)
    listing_uri(crawl, kind, source)   # validates the arguments also when a local list is given
    root = SOURCES[source]
    prefix = root + "crawl-data/%s/" % crawl
    uris = []
    for u in read_paths_list(uri, root):
        norm = _under(root, u)       # normalised first: crawl-data/<id>/../../x is not under the prefix
        if norm is None or not norm.startswith(prefix):
            raise InputError("%s is not the listing of %s from %s: e.g. %s is not under %s"
                             % (scrub_uri(uri), crawl, source, scrub_uri(u), prefix))
        uris.append(norm)
    uris = list(dict.fromkeys(uris))
    bad_kind = [u for u in uris if not u.endswith(KINDS[kind])
                or (kind == "warc" and u.endswith((".wat.gz", ".wet.gz")))]
    if bad_kind:
        raise InputError("%s holds files that are not %s files: e.g. %s"
                         % (scrub_uri(uri), kind, scrub_uri(bad_kind[0])))
    uris = sample(uris, fraction, seed)
    if limit is not None:
        if limit <= 0:
            raise InputError("--limit must be > 0, got %r" % limit)
        uris = uris[:limit]
    return uris


def _under(root: str, uri: str) -> str | None:
    """``uri`` with its path below ``root`` normalised (``a/../b`` is ``b``); None when it is
    not below ``root`` or its ``..`` segments leave it."""
    if not uri.startswith(root):
        return None
    path, sep, query = uri[len(root):].partition("?")
    norm = posixpath.normpath(path or ".")
    if norm == "." or norm == ".." or norm.startswith(("../", "/")):
        return None
    return root + norm + sep + query


def crawl_output(root: str, crawl: str) -> str:
    """``<root>/crawl=<id>`` (idempotent: a root that already is that folder is kept)."""
    validate_crawl_id(crawl)
    leaf = "crawl=" + crawl
    root = root.rstrip("/")
    if root.rsplit("/", 1)[-1] == leaf:
        return root
    return root + "/" + leaf
