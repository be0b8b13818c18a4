"""Crawl ids, CommonCrawl listings, sampling, the crawl output folder and --dry-run."""

import gzip
import subprocess

import pytest

from metaclip_spark.inputs.crawl import crawl_inputs, crawl_output, listing_uri, sample, validate_crawl_id
from metaclip_spark.inputs.io import InputError
from tests.conftest import ROOT

PREFIX = "crawl-data/CC-MAIN-2020-45/segments/1603107863364.0/wat/CC-MAIN-20201019145901-20201019175901-"


def write_listing(path, n=10, crawl="CC-MAIN-2020-45", kind="wat"):
    ext = ".warc.wat.gz" if kind == "wat" else ".warc.gz"
    lines = [PREFIX.replace("CC-MAIN-2020-45", crawl).replace("/wat/", "/%s/" % kind) + "%05d%s" % (i, ext)
             for i in range(n)]
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    return str(path), lines


@pytest.mark.parametrize("bad", ["", "CC-MAIN-2020", "CC-MAIN-2020-45/../x", "../CC-MAIN-2020-45", "CC-MAIN-2020-54",
                                 "CC-MAIN-1999-01", "cc-main-2020-45", "CC-MAIN-2020-45\n", "CC-NEWS-2020-45"])
def test_crawl_id_validation(bad):
    with pytest.raises(InputError, match="not a CommonCrawl crawl id"):
        validate_crawl_id(bad)


def test_listing_locations():
    assert listing_uri("CC-MAIN-2020-45") == "https://data.commoncrawl.org/crawl-data/CC-MAIN-2020-45/wat.paths.gz"
    assert listing_uri("CC-MAIN-2016-07", "warc", "s3") == "s3://commoncrawl/crawl-data/CC-MAIN-2016-07/warc.paths.gz"
    with pytest.raises(InputError, match="--kind"):
        listing_uri("CC-MAIN-2016-07", "wet")
    with pytest.raises(InputError, match="--source"):
        listing_uri("CC-MAIN-2016-07", "wat", "gs")


def test_output_folder_cannot_escape_root():
    assert crawl_output("/out", "CC-MAIN-2020-45") == "/out/crawl=CC-MAIN-2020-45"
    assert crawl_output("s3://b/runs/", "CC-MAIN-2020-45") == "s3://b/runs/crawl=CC-MAIN-2020-45"
    assert crawl_output("/out/crawl=CC-MAIN-2020-45", "CC-MAIN-2020-45") == "/out/crawl=CC-MAIN-2020-45"
    with pytest.raises(InputError):
        crawl_output("/out", "CC-MAIN-2020-45/../../etc")


def test_inputs_limit_and_roots(tmp_path):
    lst, lines = write_listing(tmp_path / "wat.paths.gz")
    assert crawl_inputs("CC-MAIN-2020-45", paths_list=lst, limit=3) == [
        "https://data.commoncrawl.org/" + x for x in lines[:3]]
    assert crawl_inputs("CC-MAIN-2020-45", source="s3", paths_list=lst) == ["s3://commoncrawl/" + x for x in lines]
    with pytest.raises(InputError, match="not the listing of CC-MAIN-2019-04"):
        crawl_inputs("CC-MAIN-2019-04", paths_list=lst)
    with pytest.raises(InputError, match="not warc files"):
        crawl_inputs("CC-MAIN-2020-45", kind="warc", paths_list=lst)
    with pytest.raises(InputError, match="--limit"):
        crawl_inputs("CC-MAIN-2020-45", paths_list=lst, limit=0)


def test_sample_is_deterministic_and_order_free(tmp_path):
    uris = ["https://data.commoncrawl.org/%s%05d.warc.wat.gz" % (PREFIX, i) for i in range(2000)]
    a = sample(uris, 0.1, seed=1)
    assert a == sample(uris, 0.1, seed=1) and a != sample(uris, 0.1, seed=2)
    assert 150 < len(a) < 250
    assert sorted(sample(list(reversed(uris)), 0.1, seed=1)) == sorted(a)        # order does not matter
    assert sample(uris[:1000], 0.1, seed=1) == [u for u in a if u in set(uris[:1000])]  # nor the list length
    s3 = [u.replace("https://data.commoncrawl.org/", "s3://commoncrawl/") for u in uris]
    assert [u.split("crawl-data/")[1] for u in sample(s3, 0.1, 1)] == [u.split("crawl-data/")[1] for u in a]
    assert sample(uris, 1.0, 5) == uris and sample(uris, None) == uris
    with pytest.raises(InputError):
        sample(uris, 0.0)


def test_real_listing_dry_run(shared, tmp_path):
    """The required demo: the exact https URLs of the first 2 files, no network, no Spark."""
    lst = shared("data", "paths", "Ashish-more__newscnn__CC-MAIN-2020-45", "wat.paths.gz")
    out = subprocess.run([str(ROOT / ".venv" / "bin" / "metaclip-spark"), "match", "--crawl", "CC-MAIN-2020-45",
                          "--source", "https", "--limit", "2", "--dry-run", "--paths-list", str(lst),
                          "--output", str(tmp_path / "o")], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "https://data.commoncrawl.org/crawl-data/CC-MAIN-2020-45/segments/1603107863364.0/wat/"
        "CC-MAIN-20201019145901-20201019175901-00000.warc.wat.gz",
        "https://data.commoncrawl.org/crawl-data/CC-MAIN-2020-45/segments/1603107863364.0/wat/"
        "CC-MAIN-20201019145901-20201019175901-00001.warc.wat.gz"]
    assert "output: %s/crawl=CC-MAIN-2020-45" % (tmp_path / "o") in out.stderr
    assert not (tmp_path / "o").exists()
    sampled = crawl_inputs("CC-MAIN-2020-45", "wat", "s3", str(lst), fraction=0.01, seed=3)
    assert len(sampled) == 662 and all(u.startswith("s3://commoncrawl/crawl-data/CC-MAIN-2020-45/") for u in sampled)


def test_dry_run_bad_crawl_fails_fast(tmp_path):
    from metaclip_spark.cli import main

    assert main(["match", "--crawl", "CC-MAIN-2020-45/../../x", "--dry-run", "--output", str(tmp_path)]) == 2


@pytest.mark.parametrize("line, why", [
    ("https://data.commoncrawl.org/crawl-data/CC-MAIN-2020-45/../../../etc/passwd.warc.wat.gz",
     "e.g. https://data.commoncrawl.org/etc/passwd.warc.wat.gz is not under "
     "https://data.commoncrawl.org/crawl-data/CC-MAIN-2020-45/"),
    ("crawl-data/CC-MAIN-2020-45/../CC-MAIN-2019-04/segments/x.warc.wat.gz",
     "e.g. https://data.commoncrawl.org/crawl-data/CC-MAIN-2019-04/segments/x.warc.wat.gz is not under "
     "https://data.commoncrawl.org/crawl-data/CC-MAIN-2020-45/"),
    ("file:///etc/shadow.warc.wat.gz", "e.g. file:///etc/shadow.warc.wat.gz is not under "
     "https://data.commoncrawl.org/crawl-data/CC-MAIN-2020-45/"),
    ("/etc/passwd.warc.wat.gz", "e.g. /etc/passwd.warc.wat.gz is not under https://data.commoncrawl.org/crawl-data/CC-MAIN-2020-45/"),
    ("https://u:PW123456@data.commoncrawl.org/crawl-data/CC-MAIN-2020-45/x.warc.wat.gz",
     "e.g. https://***@data.commoncrawl.org/crawl-data/CC-MAIN-2020-45/x.warc.wat.gz is not under "
     "https://data.commoncrawl.org/crawl-data/CC-MAIN-2020-45/"),
])
def test_listing_entries_are_normalised_before_the_crawl_prefix_check(tmp_path, line, why):
    """Issue #13 item 10: an entry that passes the prefix check only textually is refused."""
    lst, lines = write_listing(tmp_path / "wat.paths.gz", n=2)
    tmp_path.joinpath("evil.paths").write_text("\n".join(lines + [line]) + "\n")
    with pytest.raises(InputError) as err:
        crawl_inputs("CC-MAIN-2020-45", paths_list=str(tmp_path / "evil.paths"))
    assert str(err.value) == "%s is not the listing of CC-MAIN-2020-45 from https: %s" % (tmp_path / "evil.paths", why)


def test_listing_relative_escape_and_harmless_dots(tmp_path):
    bad = tmp_path / "bad.paths"
    bad.write_text("crawl-data/CC-MAIN-2020-45/../../../etc/passwd.warc.wat.gz\n")
    with pytest.raises(InputError) as err:
        crawl_inputs("CC-MAIN-2020-45", paths_list=str(bad))
    assert str(err.value) == ("paths list %s, line 1: crawl-data/CC-MAIN-2020-45/../../../etc/passwd.warc.wat.gz "
                              "leaves crawl-data/" % bad)
    ok = tmp_path / "ok.paths"
    ok.write_text("crawl-data/CC-MAIN-2020-45/segments/a/../b/x.warc.wat.gz\n"
                  "s3://commoncrawl/crawl-data/CC-MAIN-2020-45/./segments/y.warc.wat.gz\n")
    assert crawl_inputs("CC-MAIN-2020-45", source="s3", paths_list=str(ok)) == [
        "s3://commoncrawl/crawl-data/CC-MAIN-2020-45/segments/b/x.warc.wat.gz",
        "s3://commoncrawl/crawl-data/CC-MAIN-2020-45/segments/y.warc.wat.gz"]


def _dag_crawls():
    """deploy/airflow/metaclip_crawls.py (standard library only), imported by path."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("metaclip_crawls_for_test",
                                                  ROOT / "deploy" / "airflow" / "metaclip_crawls.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


CRAWL_IDS = [
    # valid
    ("CC-MAIN-2020-45", True), ("CC-MAIN-2013-20", True), ("CC-MAIN-2024-10", True),
    ("CC-MAIN-2008-01", True), ("CC-MAIN-2099-53", True), ("CC-MAIN-2016-07", True),
    # weeks
    ("CC-MAIN-2020-00", False), ("CC-MAIN-2020-54", False), ("CC-MAIN-2020-99", False),
    ("CC-MAIN-2020-5", False), ("CC-MAIN-2020-045", False),
    # years
    ("CC-MAIN-1999-01", False), ("CC-MAIN-2007-52", False), ("CC-MAIN-2100-01", False),
    ("CC-MAIN-0000-10", False), ("CC-MAIN-20-10", False), ("CC-MAIN-02020-10", False),
    # case, other crawls, old-style ids
    ("cc-main-2020-45", False), ("CC-Main-2020-45", False), ("CC-NEWS-2020-45", False),
    ("CC-MAIN-2008-2009", False), ("CC-MAIN-2012", False), ("CC-MAIN-2020", False),
    # extra prefixes / suffixes, whitespace
    ("CC-MAIN-2020-45\n", False), ("CC-MAIN-2020-45 ", False), (" CC-MAIN-2020-45", False),
    ("CC-MAIN-2020-45-1", False), ("CC-MAIN-2020-45.tmp", False), ("xCC-MAIN-2020-45", False),
    ("CC-MAIN-2020-45/", False), ("CC-MAIN-2020-45\x00", False),
    # path tricks
    ("CC-MAIN-2020-45/../x", False), ("../CC-MAIN-2020-45", False), ("CC-MAIN-2020-45/../../etc", False),
    ("CC-MAIN-2020-45\\..\\x", False), ("./CC-MAIN-2020-45", False), ("CC-MAIN-2020-4%35", False),
    # other scripts' digits (\d would take them and int() reads them)
    ("CC-MAIN-\uff12\uff10\uff12\uff10-45", False), ("CC-MAIN-2020-\u0664\u0665", False),
    # not strings
    ("", False), (None, False), (2020, False), (b"CC-MAIN-2020-45", False),
]


@pytest.mark.parametrize("crawl, valid", CRAWL_IDS)
def test_crawl_id_rule_is_the_same_in_the_package_and_the_dags(crawl, valid):
    """Issue #15: the DAG folder keeps its own copy of the rule; both accept and refuse
    the same ids."""
    dag = _dag_crawls()
    try:
        validate_crawl_id(crawl)
        package_ok = True
    except InputError:
        package_ok = False
    try:
        dag.validate_crawl_id(crawl)
        dag_ok = True
    except dag.CrawlError:
        dag_ok = False
    assert package_ok == dag_ok == valid == dag.is_crawl_id(crawl)
    if isinstance(crawl, str):     # collinfo.json entries are filtered by the same rule
        assert dag.parse_collinfo('[{"id": %s}]' % __import__("json").dumps(crawl)) == ([crawl] if valid else [])
