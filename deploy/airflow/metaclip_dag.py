"""What the ``metaclip_monthly_*`` DAGs share: settings from the environment, the params,
the crawl-choosing task and the branch that skips finished stages.

``METACLIP_MODE`` picks the DAG's shape (read when the DAG file is parsed, like every
``METACLIP_*`` setting):

- ``cumulative`` (default): ``find_crawl`` -> ``plan`` -> ``stage1_match`` -> ``index_merge``
  -> ``stage2_balance`` -> ``report``, and ``find_crawl`` -> ``find_previous`` ->
  ``stage2_balance``. Stage 1 labels the pool rows with the crawl id, ``index_merge`` merges
  the crawl's pool into the one image index (``<root>/index``: a new release), stage 2
  balances that release (``--dedup image``) into the crawl's run folder and writes the diff
  against the last release's curated folder, which ``find_previous`` returns: the newest
  crawl older than this one with a finished stage 2 (``<root>/runs/crawl=<c>/curated/``), or
  nothing for the first release. ``find_crawl`` picks the *oldest* pending crawl not older
  than ``METACLIP_SINCE``, so releases follow crawl order and the newest older release is
  the last one.
- ``per_crawl``: ``find_crawl`` -> ``plan`` -> ``stage1_match`` -> ``stage2_balance`` ->
  ``report``: each crawl curated on its own (the newest pending crawl first).

``find_crawl`` returns the ``crawl_id`` param (a backfill) or a crawl of CommonCrawl's
collinfo.json without a finished report under the output root (and skips the run when there
is none). ``plan`` branches to the first unfinished stage, so a re-run of a crawl resumes
where the last one stopped (idempotent per crawl; a merge of a pool already in the index is a
no-op).
"""

from __future__ import annotations

import os
import urllib.request
from datetime import datetime, timedelta
from typing import Callable

from metaclip_crawls import (COLLINFO_URL, CRAWL_ID_PATTERN, CUMULATIVE_STAGES, STAGES, choose_crawl, crawl_root,
                             marker_uri, previous_release)

TASK_IDS = {"stage1": "stage1_match", "index": "index_merge", "stage2": "stage2_balance", "report": "report"}
JOB_STAGES = {"stage1": "match", "index": "index", "stage2": "balance", "report": "report"}
MODES = {"cumulative": CUMULATIVE_STAGES, "per_crawl": STAGES}
# a valid crawl id that no real crawl has: replaced by the templated id in the payloads
PLACEHOLDER = "CC-MAIN-2099-53"
CRAWL_TEMPLATE = "{{ ti.xcom_pull(task_ids='find_crawl') }}"
# Target.previous of the DAGs: replaced by find_previous's answer (a curated folder or "")
PREVIOUS_PLACEHOLDER = "/metaclip-previous-release/curated"
PREVIOUS_TEMPLATE = "{{ ti.xcom_pull(task_ids='find_previous') }}"


def env(name: str, default: str) -> str:
    return os.environ.get(name) or default


SINCE = env("METACLIP_SINCE", "CC-MAIN-2024-10")   # never pick a crawl older than this one
MODE = env("METACLIP_MODE", "cumulative")
if MODE not in MODES:
    raise ValueError("METACLIP_MODE must be cumulative or per_crawl, got %r" % MODE)
DAG_STAGES = MODES[MODE]                            # the stages of this DAG, in order

DAG_KWARGS = dict(
    schedule="@weekly",                 # CC publishes roughly monthly, on no fixed day
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(days=3),
    # METACLIP_RETRIES=0 for a local try (`airflow dags test`): a failure ends the run at once
    default_args={"retries": int(env("METACLIP_RETRIES", "2")), "retry_delay": timedelta(minutes=10)},
    tags=["metaclip", "metaclip_monthly"],
)


def dag_params():
    from airflow.sdk import Param

    return {"crawl_id": Param(None, type=["null", "string"], pattern=CRAWL_ID_PATTERN,
                              description="CC-MAIN-YYYY-WW to (re)process; empty: the newest pending crawl")}


def templated(obj, placeholder: str = PLACEHOLDER, value: str = CRAWL_TEMPLATE):
    """``obj`` (dicts, lists, strings) with every ``placeholder`` replaced by ``value`` (by
    default: the crawl and the previous release's placeholders by their templates)."""
    if isinstance(obj, str):
        if placeholder == PLACEHOLDER and value == CRAWL_TEMPLATE:
            obj = obj.replace(PREVIOUS_PLACEHOLDER, PREVIOUS_TEMPLATE)
        return obj.replace(placeholder, value)
    if isinstance(obj, list):
        return [templated(v, placeholder, value) for v in obj]
    if isinstance(obj, dict):
        return {k: templated(v, placeholder, value) for k, v in obj.items()}
    return obj


def fetch_collinfo(url: str = COLLINFO_URL) -> bytes:
    req = urllib.request.Request(url, headers={"User-Agent": "metaclip-spark-airflow"})
    with urllib.request.urlopen(req, timeout=60) as fh:
        return fh.read()


def crawl_tasks(output_root: str, exists_factory: Callable[[], Callable[[str], bool]], mode: str = MODE):
    """``find_crawl``, ``plan`` and (cumulative mode) ``find_previous`` inside the current DAG;
    returns (plan task, find_previous task or None). ``exists_factory()`` gives an
    ``exists(uri)`` for the output store (made at run time)."""
    from airflow.sdk import task
    from airflow.sdk.exceptions import AirflowSkipException

    stages = MODES[mode]

    @task
    def find_crawl(params=None) -> str:
        exists = exists_factory()
        wanted = (params or {}).get("crawl_id")
        collinfo = None if wanted else fetch_collinfo()
        crawl = choose_crawl(wanted, collinfo, lambda c: exists(marker_uri(output_root, c, "report")), SINCE,
                             oldest_first=(mode == "cumulative"))
        if crawl is None:
            raise AirflowSkipException("every crawl since %s has a report under %s" % (SINCE, output_root))
        return crawl

    @task.branch
    def plan(crawl: str) -> list[str]:
        from metaclip_crawls import stages_to_run

        exists = exists_factory()
        todo = stages_to_run(lambda stage: exists(marker_uri(output_root, crawl, stage)), stages)
        return [TASK_IDS[s] for s in todo]

    @task
    def find_previous(crawl: str) -> str:
        """The last release's curated folder ("" for the first release): the newest crawl
        older than ``crawl`` (not older than METACLIP_SINCE) with a finished stage 2."""
        exists = exists_factory()
        prev = previous_release(crawl, lambda c: exists(marker_uri(output_root, c, "stage2")), SINCE)
        return crawl_root(output_root, prev) + "/curated" if prev else ""

    crawl = find_crawl()
    return plan(crawl), (find_previous(crawl) if mode == "cumulative" else None)


def fail_fast(make_exists: Callable[[], Callable[[str], bool]], errors: tuple,
              what: str) -> Callable[[str], bool]:
    """An ``exists(uri)`` (made by ``make_exists()`` on first use: hooks read their connection
    when made) that turns ``errors`` (no credentials, no connection) into a task failure
    without retries (``AirflowFailException``): retrying cannot fix them, and with the
    10-minute retry delay ``airflow dags test`` would otherwise wait 20 minutes."""
    from airflow.sdk.exceptions import AirflowFailException

    made = []

    def checked(uri: str) -> bool:
        try:
            if not made:
                made.append(make_exists())
            return made[0](uri)
        except errors as exc:
            raise AirflowFailException("%s (checking %s): %s: %s" % (what, uri, type(exc).__name__, exc)) from exc

    return checked


def wire(plan_task, stage_tasks: dict, previous_task=None) -> None:
    """plan -> every stage (the branch picks which run), the stages in order
    (stage1 [-> index] -> stage2 -> report), and find_previous -> stage2."""
    ordered = [stage_tasks[s] for s in MODES["cumulative" if "index" in stage_tasks else "per_crawl"]]
    for t in ordered:
        plan_task >> t
    for a, b in zip(ordered, ordered[1:]):
        a >> b
    if previous_task is not None:
        previous_task >> stage_tasks["stage2"]


def split_uri(uri: str) -> tuple[str, str]:
    """(bucket, key) of s3://bucket/key or gs://bucket/key."""
    rest = uri.split("://", 1)[1]
    bucket, _, key = rest.partition("/")
    return bucket, key


def run_after(stage: str) -> dict:
    """Trigger rule of a stage: stage 1 runs when the branch picks it; later stages also run
    when their upstream stage was skipped by the branch (already done), never after a failure."""
    return {} if stage == "stage1" else {"trigger_rule": "none_failed_min_one_success"}


__all__ = ["DAG_KWARGS", "DAG_STAGES", "JOB_STAGES", "MODE", "PLACEHOLDER", "PREVIOUS_PLACEHOLDER", "TASK_IDS",
           "crawl_tasks", "dag_params", "env", "fail_fast", "run_after", "split_uri", "templated", "wire", "STAGES"]
