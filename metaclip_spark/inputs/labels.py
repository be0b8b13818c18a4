"""The crawl label of stage 1's pool rows (the ``crawl`` column; docs/index.md), Spark-free.

One rule, resolved on the driver per input file (:func:`crawl_label`):

1. ``input.label`` when it is not empty (an explicit crawl or run label);
2. else ``input.crawl`` (the ``--crawl`` id) when it is set;
3. else the CommonCrawl id (``CC-MAIN-YYYY-WW``) found in the input file's URI, e.g.
   ``.../crawl-data/CC-MAIN-2020-45/segments/...`` (the first one; CommonCrawl's file names
   ``CC-MAIN-20201019...`` are not crawl ids and do not match);
4. else the base name of the output run folder (:func:`run_name`).
"""

from __future__ import annotations

import re

__all__ = ["CC_ID_PATTERN", "CC_ID_IN_PATH_RE", "crawl_label", "crawl_id_in", "run_name"]

# ASCII digits only (``\d`` would take other scripts' digits). The one pattern of a crawl id in a
# path: Python's re here, Arrow's RE2 in index/merge.crawl_labels (pools written without ``crawl``).
CC_ID_PATTERN = r"CC-MAIN-[0-9]{4}-[0-9]{2}"
CC_ID_IN_PATH_RE = re.compile(CC_ID_PATTERN)


def crawl_id_in(uri: str) -> str | None:
    """The first CommonCrawl crawl id in ``uri``, or None."""
    m = CC_ID_IN_PATH_RE.search(uri or "")
    return m.group(0) if m else None


def run_name(output: str) -> str:
    """The base name of a run folder (local path or URI): ``/data/runs/r1/`` -> ``r1``,
    ``s3://bucket/runs/r1`` -> ``r1``, ``s3://bucket`` -> ``bucket``."""
    path = (output or "").split("?", 1)[0].split("#", 1)[0]
    if "://" in path:
        path = path.split("://", 1)[1]
    return path.rstrip("/").rsplit("/", 1)[-1]


def crawl_label(label: str, crawl: str, input_uri: str, output: str) -> str:
    """The ``crawl`` value of the pool rows of ``input_uri`` (the rule in the module doc):
    ``label`` (``input.label``), ``crawl`` (``input.crawl``), the crawl id in the input's URI,
    else the run folder's name."""
    if label:
        return label
    if crawl:
        return crawl
    return crawl_id_in(input_uri) or run_name(output)
