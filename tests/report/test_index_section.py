"""The report's "Images, not occurrences" section: a run folder with an image index in RUN/index/
(curate), a balance output over an index (balance --index), and the folders without one."""

import json

import pytest

from metaclip_spark.report import images as report_images
from metaclip_spark.report import page as report
from tests.report.runs import (COUNTS, DIFF, LOGO_URL, OCCURRENCES, T, T_WITHOUT, make_index, make_index_balance,
                               make_index_run, parse, rows_of)

FLOW = [["this merge (release 2)", "700", "200", "140", "5.00", "100"],
        ["crawl CC-MAIN-2024-18", "500", "150", "110", "4.55", "80"],           # 500 / 110
        ["crawl CC-MAIN-2024-22", "200", "60", "45", "4.44", "20"],             # 200 / 45
        ["whole index (every merge)", "1,600", "420", "300", "5.33", "n/a"]]     # (900 + 700) / (200 + 100)
HISTORY = [["00001", "CC-MAIN-2024-10", "900", "250", "200", "250", "200", "250", "200"],
           ["00002", "CC-MAIN-2024-18, CC-MAIN-2024-22", "700", "200", "140", "170", "100", "420", "300"]]
# COUNTS sum 386, OCCURRENCES = COUNTS + {22: 40, 4: 25, 13: 5, 7: 3, 2: 1} sum 460. At t = 10 both have the
# same 11 head entries (count > 10), holding 318 / 386 and 391 / 460 of the matches; below 10: 58 and 59
# matches. At 14 (t without dedup) the occurrences have 10 head entries and 80 matches below 14.
DEDUP = [["total matches (sum of counts)", "386", "460"],
         ["entries matched at least once", "25", "25"],
         ["head entries (count > t = 10)", "11", "11"],
         ["share of matches in head entries at t = 10", "82.38%", "85.00%"],
         ["tail share at t = 10 (matches in entries with count < t)", "15.03%", "12.83%"]]
OWN_T = [["t (each chosen on its own counts)", "10", "14"],
         ["head entries at that t", "11", "10"],
         ["tail share at that t", "15.03%", "17.39%"]]
INFLATED = [["22", "of", "60", "100", "1.67"], ["4", "in", "50", "75", "1.50"],
            ["13", "<img src=x onerror=alert(2)>", "30", "35", "1.17"], ["7", "e07", "12", "15", "1.25"],
            ["2", "e02", "3", "4", "1.33"]]


def _break_buckets(index):
    """The report must never read an index's bucket files: make them unreadable."""
    for f in index.glob("releases/*/images/bucket-*.parquet"):
        f.write_bytes(b"not parquet")


def test_dedup_effect_by_hand():
    e = report_images.dedup_effect(COUNTS, OCCURRENCES, T, T_WITHOUT)
    assert e["total"] == (386, 460) and e["matched"] == (25, 25)
    assert e["at_t"] == ((11, 318 / 386, 58 / 386), (11, 391 / 460, 59 / 460))
    assert e["own_t"] == ((11, 318 / 386, 58 / 386), (10, 380 / 460, 80 / 460))
    assert report_images.dedup_effect([0, 2], [0, 5]) == {"total": (2, 5), "matched": (1, 1)}


def test_index_section_of_a_curate_run_folder(tmp_path):
    run = make_index_run(tmp_path / "run")
    _break_buckets(run / "index")
    raw, page = parse(report.write_report(str(run), input_files=0))
    flow, history, top, dedup, inflated = page.tables["images"]
    assert rows_of(flow) == FLOW
    assert rows_of(history) == HISTORY
    assert rows_of(top) == [["1", "120", "1", LOGO_URL, "Site logo", "0" * 24],
                            ["2", "45", "3", 'http://x.test/a.jpg?"><script>alert(4)</script>',
                             "<script>alert(1)</script>", "1" * 24]]
    assert rows_of(dedup) == DEDUP + OWN_T
    assert rows_of(inflated) == INFLATED
    assert "Boilerplate moved t from <b>14</b> (without de-duplication) to <b>10</b> (-28.57%)." in raw
    assert "<dt>Release</dt><dd>00002 (CURRENT)</dd>" in raw
    assert "<dt>Texts remembered by hash only</dt><dd>10</dd>" in raw
    assert 'id="images-diff"' not in raw                                  # no diff in this balance.json
    assert "<script>" not in raw
    # the section sits with the other data sections, before the samples; the rest of the page is there
    assert raw.index('<section id="hosts"') < raw.index('<section id="images"') < raw.index('<section id="samples"')
    assert {"summary", "funnel", "hosts", "samples"} <= set(page.tables)


def test_without_t_without_dedup_no_own_t_rows(tmp_path):
    run = make_index_run(tmp_path / "run", t_without=False)
    raw, page = parse(report.write_report(str(run), input_files=0))
    assert rows_of(page.tables["images"][3]) == DEDUP
    assert "Boilerplate moved t" not in raw


def test_balance_output_over_an_index(tmp_path):
    index = make_index(tmp_path / "index")
    _break_buckets(index)
    out = make_index_balance(tmp_path / "bal", index, release=2)
    raw, page = parse(report.write_report(str(out)))
    assert list(page.tables) == ["images"]
    flow, history, top, diff, dedup, inflated = page.tables["images"]
    assert rows_of(flow) == FLOW and rows_of(history) == HISTORY and len(rows_of(top)) == 2
    assert rows_of(diff) == [["added", "12"], ["removed", "3"], ["kept", "14"], ["text_changed", "2"]]
    assert [int(r[1]) for r in rows_of(diff)] == list(DIFF.values())
    assert rows_of(dedup) == DEDUP + OWN_T and rows_of(inflated) == INFLATED
    assert "<dt>Balanced</dt><dd>image index %s, release 00002</dd>" % index in raw
    assert "<dt>Release</dt><dd>00002</dd>" in raw
    assert "<dt>De-duplication</dt><dd>image</dd>" in raw


def test_balance_output_names_an_older_release(tmp_path):
    index = make_index(tmp_path / "index")
    out = make_index_balance(tmp_path / "bal", index, release=1)
    raw, page = parse(report.write_report(str(out)))
    flow, history, top, diff, dedup, inflated = page.tables["images"]
    assert rows_of(flow) == [["this merge (release 1)", "900", "250", "200", "4.50", "200"],
                             ["crawl CC-MAIN-2024-10", "900", "250", "200", "4.50", "200"],
                             ["whole index (every merge)", "900", "250", "200", "4.50", "n/a"]]
    assert rows_of(history) == HISTORY[:1] and len(rows_of(top)) == 1
    # release 1 counts are half of release 2's (integer halves): 186 and 223
    assert rows_of(dedup)[0] == ["total matches (sum of counts)", str(sum(c // 2 for c in COUNTS)),
                                 str(sum(o // 2 for o in OCCURRENCES))]
    # no release named: CURRENT
    bal = json.loads((out / "stats" / "balance.json").read_text())
    del bal["release"]
    (out / "stats" / "balance.json").write_text(json.dumps(bal))
    assert report_images.locate(str(out), bal)["release"] == 2


def test_missing_release_is_a_note(tmp_path):
    index = make_index(tmp_path / "index")
    out = make_index_balance(tmp_path / "bal", index, release=7)
    raw, page = parse(report.write_report(str(out)))
    assert "The image index could not be read: no stats/index.json in release %s/releases/00007." % index in raw


@pytest.mark.parametrize("stage2", [True, False])
def test_no_index_no_section(tmp_path, stage2):
    from tests.report.runs import make_run

    run = make_run(tmp_path / "run", stage2=stage2)
    bal = json.loads((run / "stats" / "balance.json").read_text()) if stage2 else None
    assert report_images.locate(str(run), bal) is None and report_images.section(None) == ""
    raw, page = parse(report.write_report(str(run), input_files=0))
    assert "images" not in page.tables and 'id="images"' not in raw


def test_balance_only_folder_without_index_still_refused(tmp_path):
    folder = tmp_path / "bal"
    (folder / "stats").mkdir(parents=True)
    (folder / "stats" / "balance.json").write_text(json.dumps({"stage": "balance", "pools": ["/data/pool1"]}))
    with pytest.raises(FileNotFoundError, match="holds stage-2 outputs only"):
        report.write_report(str(folder))
