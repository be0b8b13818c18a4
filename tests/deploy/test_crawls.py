"""Crawl choice and stage planning of the monthly DAG (deploy/airflow/metaclip_crawls.py),
on a saved collinfo.json-like fixture (tests/data/deploy/collinfo.json)."""

import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "deploy", "airflow"))

from metaclip_crawls import (CUMULATIVE_STAGES, CrawlError, choose_crawl, crawl_root, dataproc_batch_id,  # noqa: E402
                             marker_uri, newest_pending_crawl, older_crawl_ids, oldest_pending_crawl,
                             parse_collinfo, previous_release, stages_to_run, validate_crawl_id)

COLLINFO = open(os.path.join(ROOT, "tests", "data", "deploy", "collinfo.json"), "rb").read()
ROOT_URI = "s3://b/metaclip/runs"


def done_set(*crawls):
    calls = []

    def is_done(c):
        calls.append(c)
        return c in crawls
    return is_done, calls


def test_parse_collinfo_newest_first_main_crawls_only():
    assert parse_collinfo(COLLINFO) == ["CC-MAIN-2024-33", "CC-MAIN-2024-30", "CC-MAIN-2024-26",
                                        "CC-MAIN-2024-22", "CC-MAIN-2024-18", "CC-MAIN-2024-10",
                                        "CC-MAIN-2023-50", "CC-MAIN-2013-20"]
    # order of the document does not matter; sorting is by (year, week), not text
    assert parse_collinfo('[{"id": "CC-MAIN-2024-05"}, {"id": "CC-MAIN-2024-10"}, {"id": "CC-MAIN-2023-50"}]') == [
        "CC-MAIN-2024-10", "CC-MAIN-2024-05", "CC-MAIN-2023-50"]


@pytest.mark.parametrize("text", ["{", '{"id": "CC-MAIN-2024-10"}', '["CC-MAIN-2024-10"]'])
def test_parse_collinfo_rejects_bad_documents(text):
    with pytest.raises(CrawlError):
        parse_collinfo(text)


def test_newest_pending_crawl():
    is_done, calls = done_set()
    assert newest_pending_crawl(parse_collinfo(COLLINFO), is_done, "CC-MAIN-2024-10") == "CC-MAIN-2024-33"
    assert calls == ["CC-MAIN-2024-33"]
    is_done, calls = done_set("CC-MAIN-2024-33", "CC-MAIN-2024-30")
    assert newest_pending_crawl(parse_collinfo(COLLINFO), is_done, "CC-MAIN-2024-10") == "CC-MAIN-2024-26"
    assert calls == ["CC-MAIN-2024-33", "CC-MAIN-2024-30", "CC-MAIN-2024-26"]
    # everything since the floor done: nothing to do, older crawls are never picked
    is_done, calls = done_set(*parse_collinfo(COLLINFO)[:6])
    assert newest_pending_crawl(parse_collinfo(COLLINFO), is_done, "CC-MAIN-2024-10") is None
    assert calls == parse_collinfo(COLLINFO)[:6]


def test_choose_crawl_param_and_detection():
    never = done_set()[0]
    assert choose_crawl(None, COLLINFO, never, "CC-MAIN-2024-10") == "CC-MAIN-2024-33"
    assert choose_crawl("", COLLINFO, done_set("CC-MAIN-2024-33")[0], "CC-MAIN-2024-10") == "CC-MAIN-2024-30"
    # a backfill: the param wins, even for a finished or older crawl
    assert choose_crawl(" CC-MAIN-2023-50 ", COLLINFO, done_set("CC-MAIN-2023-50")[0],
                        "CC-MAIN-2024-10") == "CC-MAIN-2023-50"
    assert choose_crawl("CC-MAIN-2024-18", None, never, "CC-MAIN-2024-10") == "CC-MAIN-2024-18"
    with pytest.raises(CrawlError, match="not listed"):
        choose_crawl("CC-MAIN-2024-11", COLLINFO, never, "CC-MAIN-2024-10")
    for bad in ("CC-MAIN-2024-1", "cc-main-2024-10", "CC-MAIN-2024-00", "CC-MAIN-2024-54",
                "CC-MAIN-2024-10/../x", "../CC-MAIN-2024-10"):
        with pytest.raises(CrawlError):
            choose_crawl(bad, COLLINFO, never, "CC-MAIN-2024-10")
    with pytest.raises(CrawlError):
        choose_crawl(None, None, never, "CC-MAIN-2024-10")


def test_markers_and_stages_to_run():
    assert crawl_root(ROOT_URI + "/", "CC-MAIN-2024-10") == "s3://b/metaclip/runs/crawl=CC-MAIN-2024-10"
    assert marker_uri(ROOT_URI, "CC-MAIN-2024-10", "stage1") == "s3://b/metaclip/runs/crawl=CC-MAIN-2024-10/_SUCCESS"
    assert marker_uri(ROOT_URI, "CC-MAIN-2024-10", "stage2") == \
        "s3://b/metaclip/runs/crawl=CC-MAIN-2024-10/curated/_SUCCESS"
    assert marker_uri(ROOT_URI, "CC-MAIN-2024-10", "report") == \
        "s3://b/metaclip/runs/crawl=CC-MAIN-2024-10/report/index.html"
    assert stages_to_run(lambda s: False) == ["stage1", "stage2", "report"]
    assert stages_to_run(lambda s: s == "stage1") == ["stage2", "report"]
    assert stages_to_run(lambda s: s in ("stage1", "stage2")) == ["report"]
    assert stages_to_run(lambda s: True) == []
    # a missing stage-1 marker reruns everything after it, whatever later markers say
    assert stages_to_run(lambda s: s != "stage1") == ["stage1", "stage2", "report"]


def test_dataproc_batch_ids_unique_per_run_stage_and_try():
    a = dataproc_batch_id("CC-MAIN-2024-10", "scheduled__2024-03-04T00:00:00+00:00", "match", 1)
    assert a.startswith("mc-cc-main-2024-10-match-") and a.endswith("-t1") and len(a) == 36
    ids = {dataproc_batch_id("CC-MAIN-2024-10", run, stage, t)
           for run in ("manual__1", "manual__2") for stage in ("match", "balance", "report") for t in (1, 2, 3)}
    assert len(ids) == 18
    assert all(len(i) <= 63 and i == i.lower() for i in ids)
    assert dataproc_batch_id("CC-MAIN-2024-10", "r", "match", 1) == dataproc_batch_id("CC-MAIN-2024-10", "r", "match", 1)


def test_validate_crawl_id():
    assert validate_crawl_id("CC-MAIN-2024-10") == "CC-MAIN-2024-10"
    with pytest.raises(CrawlError):
        validate_crawl_id(None)


# ------------------------------------------------------------------ cumulative mode


def test_cumulative_picks_the_oldest_pending_crawl():
    is_done, calls = done_set("CC-MAIN-2024-10", "CC-MAIN-2024-18")
    assert choose_crawl(None, COLLINFO, is_done, "CC-MAIN-2024-10", oldest_first=True) == "CC-MAIN-2024-22"
    assert calls == ["CC-MAIN-2024-10", "CC-MAIN-2024-18", "CC-MAIN-2024-22"]
    ids = parse_collinfo(COLLINFO)
    assert oldest_pending_crawl(ids, lambda c: True, "CC-MAIN-2024-10") is None
    assert oldest_pending_crawl(ids, lambda c: False, "CC-MAIN-2024-26") == "CC-MAIN-2024-26"
    # a backfill param wins in both modes
    assert choose_crawl("CC-MAIN-2023-50", COLLINFO, is_done, "CC-MAIN-2024-10", oldest_first=True) == "CC-MAIN-2023-50"


def test_previous_release_is_the_newest_older_crawl_with_a_finished_stage2():
    assert list(older_crawl_ids("CC-MAIN-2024-03", "CC-MAIN-2023-51")) == [
        "CC-MAIN-2024-02", "CC-MAIN-2024-01", "CC-MAIN-2023-53", "CC-MAIN-2023-52", "CC-MAIN-2023-51"]
    assert list(older_crawl_ids("CC-MAIN-2024-10", "CC-MAIN-2024-10")) == []
    released, calls = done_set("CC-MAIN-2024-10", "CC-MAIN-2024-18")
    assert previous_release("CC-MAIN-2024-26", released, "CC-MAIN-2024-10") == "CC-MAIN-2024-18"
    assert calls == ["CC-MAIN-2024-25", "CC-MAIN-2024-24", "CC-MAIN-2024-23", "CC-MAIN-2024-22",
                     "CC-MAIN-2024-21", "CC-MAIN-2024-20", "CC-MAIN-2024-19", "CC-MAIN-2024-18"]
    assert previous_release("CC-MAIN-2024-18", released, "CC-MAIN-2024-10") == "CC-MAIN-2024-10"
    assert previous_release("CC-MAIN-2024-10", released, "CC-MAIN-2024-10") is None    # the first release
    assert previous_release("CC-MAIN-2024-18", released, "CC-MAIN-2024-11") is None    # older than SINCE


def test_cumulative_stages_to_run_index_counts_done_with_stage2():
    def plan(*existing):
        run = crawl_root(ROOT_URI, "CC-MAIN-2024-10") + "/"
        return stages_to_run(lambda s: marker_uri(ROOT_URI, "CC-MAIN-2024-10", s)[len(run):] in existing,
                             CUMULATIVE_STAGES)
    assert plan() == ["stage1", "index", "stage2", "report"]
    assert plan("_SUCCESS") == ["index", "stage2", "report"]          # stage 1 done: merge again (a no-op if in)
    assert plan("_SUCCESS", "curated/_SUCCESS") == ["report"]
    assert plan("_SUCCESS", "curated/_SUCCESS", "report/index.html") == []
    assert marker_uri(ROOT_URI, "CC-MAIN-2024-10", "index") == ROOT_URI + "/crawl=CC-MAIN-2024-10/curated/_SUCCESS"
