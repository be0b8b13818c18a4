"""The crawl label of pool rows (inputs/labels.crawl_label; docs/index.md): explicit label,
then --crawl, then the CommonCrawl id in the input's path, then the run folder's name."""

import pytest

from metaclip_spark.inputs.labels import crawl_id_in, crawl_label, run_name

CC_URI = ("https://data.commoncrawl.org/crawl-data/CC-MAIN-2020-45/segments/1603107863364.0/wat/"
          "CC-MAIN-20201019220243-20201020010243-00000.warc.wat.gz")


def test_explicit_label_wins():
    assert crawl_label("release-A", "CC-MAIN-2021-04", CC_URI, "/runs/r1") == "release-A"
    assert crawl_label("my run", "", "/data/x.warc.gz", "/runs/r1") == "my run"


def test_crawl_id_of_the_run_before_the_path():
    assert crawl_label("", "CC-MAIN-2021-04", CC_URI, "/runs/crawl=CC-MAIN-2021-04") == "CC-MAIN-2021-04"


def test_crawl_id_in_the_input_path():
    assert crawl_label("", "", CC_URI, "/runs/r1") == "CC-MAIN-2020-45"
    assert crawl_label("", "", "s3://commoncrawl/crawl-data/CC-MAIN-2019-09/segments/x.warc.gz",
                       "s3://b/out") == "CC-MAIN-2019-09"
    assert crawl_label("", "", "/mirror/CC-MAIN-2018-51/a.warc.gz", "/runs/r1") == "CC-MAIN-2018-51"
    # the first id of the path; CommonCrawl's file names (CC-MAIN-<timestamp>) are no crawl id
    assert crawl_id_in("/a/CC-MAIN-2017-04/CC-MAIN-2018-05/f.gz") == "CC-MAIN-2017-04"
    assert crawl_id_in("/a/CC-MAIN-20201019220243-20201020010243-00000.warc.wat.gz") is None
    assert crawl_id_in("/a/CC-MAIN-2020-\u0664\u0665/f.gz") is None      # ASCII digits only
    assert crawl_id_in("") is None


@pytest.mark.parametrize("output, name", [
    ("/data/runs/r1", "r1"), ("/data/runs/r1/", "r1"), ("s3://bucket/runs/r1", "r1"),
    ("s3://bucket/runs/r1/", "r1"), ("s3://bucket", "bucket"), ("gs://b/x?versionId=3", "x"), ("rel", "rel"),
])
def test_fallback_is_the_run_folders_name(output, name):
    assert run_name(output) == name
    assert crawl_label("", "", "/data/SYNTH-1-00000.warc.gz", output) == name
    # a file name of CommonCrawl's without its crawl folder: no id, the run folder's name
    assert crawl_label("", "", "/d/CC-MAIN-20201019220243-20201020010243-00000.warc.wat.gz", output) == name
