"""Which CommonCrawl crawl to process, and which stages are still to run (pure functions).

Imported by the ``metaclip_monthly_*`` DAGs (this folder is the Airflow DAGs folder, so
sibling modules import by name) and by the project's tests. Standard library only.

CommonCrawl lists its crawls in https://index.commoncrawl.org/collinfo.json: a JSON array of
objects with ``id`` ("CC-MAIN-2024-10"), ``name``, ``from`` and ``to`` (ISO timestamps) and
more. Crawl ids are ``CC-MAIN-<year>-<week>`` with irregular weeks (2024-10, -18, -22, ...).

Markers under the output root decide what is done (idempotent per crawl):

- ``<root>/crawl=<id>/_SUCCESS``            stage 1 finished (``metaclip-spark match``)
- ``<root>/crawl=<id>/curated/_SUCCESS``    stage 2 finished (``metaclip-spark balance``)
- ``<root>/crawl=<id>/report/index.html``   report written: the crawl is done

(``crawl=<id>`` is the folder the project's ``--crawl`` option uses too.)

Cumulative mode (the default of the DAGs) adds the stage ``index`` between stage 1 and
stage 2: ``metaclip-spark index`` merges the crawl's pool into the cumulative image index,
and stage 2 balances that index's new release into ``<root>/crawl=<id>/curated/``. The index
stage has no marker of its own: it counts as done when stage 2 is (merging a pool that is
already in the index is a no-op, so a rerun of both is safe). Releases are made in crawl
order (``choose_crawl(..., oldest_first=True)``), so the last release before a crawl's is
the newest older crawl with a finished stage 2 (``previous_release``).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Callable, Iterable

COLLINFO_URL = "https://index.commoncrawl.org/collinfo.json"
# The package's rule (metaclip_spark.inputs.crawl.validate_crawl_id), copied: this folder
# imports nothing from the package. CC-MAIN-YYYY-WW, ASCII digits, year 2008-2099, week
# 01-53; tests/inputs/test_crawl.py runs one table of ids through both copies.
CRAWL_ID = re.compile(r"CC-MAIN-([0-9]{4})-([0-9]{2})")
# the DAG param's pre-check (the UI form); validate_crawl_id is the rule
CRAWL_ID_PATTERN = r"^CC-MAIN-(\d{4})-(\d{2})$"
STAGES = ("stage1", "stage2", "report")                        # per_crawl mode
CUMULATIVE_STAGES = ("stage1", "index", "stage2", "report")     # cumulative mode
# marker (relative to <root>/<crawl>/) written when each stage has finished; the index stage
# is done when the release it made is balanced
MARKERS = {"stage1": "_SUCCESS", "index": "curated/_SUCCESS", "stage2": "curated/_SUCCESS",
           "report": "report/index.html"}
DONE_MARKER = MARKERS["report"]


class CrawlError(ValueError):
    """A crawl id or a collinfo.json document that cannot be used."""


def is_crawl_id(crawl_id) -> bool:
    """True iff ``crawl_id`` is a CommonCrawl main-crawl id (the package's rule)."""
    m = CRAWL_ID.fullmatch(crawl_id) if isinstance(crawl_id, str) else None
    return bool(m) and 2008 <= int(m.group(1)) <= 2099 and 1 <= int(m.group(2)) <= 53


def validate_crawl_id(crawl_id: str) -> str:
    """``crawl_id`` itself when it is a CommonCrawl crawl id (CC-MAIN-YYYY-WW), else CrawlError."""
    if not is_crawl_id(crawl_id):
        raise CrawlError("not a CommonCrawl crawl id (CC-MAIN-YYYY-WW, year 2008-2099, week 01-53): %r"
                         % (crawl_id,))
    return crawl_id


def crawl_key(crawl_id: str) -> tuple[int, int]:
    """Sort key (year, week) of a valid crawl id."""
    m = CRAWL_ID.fullmatch(crawl_id)
    return int(m.group(1)), int(m.group(2))


def parse_collinfo(text: str | bytes) -> list[str]:
    """Crawl ids of a collinfo.json document, newest first. Entries whose id is not a
    CC-MAIN-YYYY-WW crawl are ignored; a document that is not a JSON list of objects is an error."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise CrawlError("collinfo.json is not valid JSON: %s" % exc) from None
    if not isinstance(data, list):
        raise CrawlError("collinfo.json must hold a JSON array, got %s" % type(data).__name__)
    ids = set()
    for item in data:
        if not isinstance(item, dict):
            raise CrawlError("collinfo.json entries must be objects, got %r" % (item,))
        cid = item.get("id")
        if is_crawl_id(cid):
            ids.add(cid)
    return sorted(ids, key=crawl_key, reverse=True)


def crawl_root(output_root: str, crawl_id: str) -> str:
    """The run folder of one crawl: ``<output_root>/crawl=<crawl_id>``."""
    return "%s/crawl=%s" % (output_root.rstrip("/"), validate_crawl_id(crawl_id))


def marker_uri(output_root: str, crawl_id: str, stage: str) -> str:
    return "%s/%s" % (crawl_root(output_root, crawl_id), MARKERS[stage])


def newest_pending_crawl(crawl_ids: Iterable[str], is_done: Callable[[str], bool],
                         since: str) -> str | None:
    """The newest crawl not older than ``since`` for which ``is_done(crawl_id)`` is false
    (None when all are done). ``is_done`` is called newest first and only as far as needed."""
    floor = crawl_key(validate_crawl_id(since))
    for cid in sorted(set(crawl_ids), key=crawl_key, reverse=True):
        if crawl_key(cid) < floor:
            break
        if not is_done(cid):
            return cid
    return None


def oldest_pending_crawl(crawl_ids: Iterable[str], is_done: Callable[[str], bool],
                         since: str) -> str | None:
    """The oldest crawl not older than ``since`` for which ``is_done(crawl_id)`` is false
    (None when all are done): cumulative mode merges crawls into the index in crawl order.
    ``is_done`` is called oldest first and only as far as needed."""
    floor = crawl_key(validate_crawl_id(since))
    for cid in sorted(set(crawl_ids), key=crawl_key):
        if crawl_key(cid) >= floor and not is_done(cid):
            return cid
    return None


def older_crawl_ids(crawl_id: str, since: str) -> Iterable[str]:
    """Every well-formed crawl id older than ``crawl_id`` and not older than ``since``, newest
    first, week by week (CC-MAIN-2024-18, -17, ..., -01, CC-MAIN-2023-53, ...): no listing
    and no network needed; crawls are 4-8 weeks apart, so a release is found in a few steps."""
    year, week = crawl_key(validate_crawl_id(crawl_id))
    floor = crawl_key(validate_crawl_id(since))
    while True:
        year, week = (year, week - 1) if week > 1 else (year - 1, 53)
        if (year, week) < floor or year < 2008:
            return
        yield "CC-MAIN-%04d-%02d" % (year, week)


def previous_release(crawl_id: str, has_release: Callable[[str], bool], since: str) -> str | None:
    """Cumulative mode: the crawl whose release came last before ``crawl_id``'s, i.e. the
    newest older crawl (not older than ``since``) with a finished stage 2
    (``has_release(crawl)``); None for the first release."""
    for cid in older_crawl_ids(crawl_id, since):
        if has_release(cid):
            return cid
    return None


def choose_crawl(param_crawl_id: str | None, collinfo_text: str | bytes | None,
                 is_done: Callable[[str], bool], since: str, oldest_first: bool = False) -> str | None:
    """The crawl of one DAG run: the ``crawl_id`` param when given (a backfill; it is
    validated, and must be listed in collinfo.json when that is given), else the newest
    pending crawl of collinfo.json (``oldest_first``: the oldest, for cumulative mode)."""
    if param_crawl_id:
        cid = validate_crawl_id(param_crawl_id.strip())
        if collinfo_text is not None and cid not in parse_collinfo(collinfo_text):
            raise CrawlError("crawl %s is not listed in collinfo.json" % cid)
        return cid
    if collinfo_text is None:
        raise CrawlError("no crawl_id given and no collinfo.json to choose from")
    pick = oldest_pending_crawl if oldest_first else newest_pending_crawl
    return pick(parse_collinfo(collinfo_text), is_done, since)


def stages_to_run(stage_done: Callable[[str], bool], stages: tuple = STAGES) -> list[str]:
    """The stages still to run, in order: everything from the first unfinished stage on
    (re-running a stage invalidates the ones after it). ``stages``: ``STAGES`` (per_crawl)
    or ``CUMULATIVE_STAGES``."""
    for i, stage in enumerate(stages):
        if not stage_done(stage):
            return list(stages[i:])
    return []


def dataproc_batch_id(crawl_id: str, run_id: str, stage: str, try_number: int) -> str:
    """A Dataproc batch id unique per crawl, DAG run, stage and try (a failed batch's id
    cannot be reused): ``mc-<crawl>-<stage>-<8 hex of the run id>-t<try>``, lower case,
    at most 63 characters of [a-z0-9-] as Dataproc requires."""
    cid = validate_crawl_id(crawl_id).lower()
    digest = hashlib.sha1(run_id.encode("utf-8")).hexdigest()[:8]
    out = "mc-%s-%s-%s-t%d" % (cid, stage.replace("_", "-").lower(), digest, int(try_number))
    if not re.match(r"^[a-z0-9][a-z0-9-]{2,61}[a-z0-9]$", out):
        raise CrawlError("cannot build a valid batch id from %r" % out)
    return out
