import gzip
import os

import pytest

from metaclip_spark.inputs.io import InputError, expand_inputs, open_binary, read_paths_list


def _touch(p, data=b"x"):
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return str(p)


def test_expand_files_globs_dirs_and_lists(tmp_path):
    a = _touch(tmp_path / "d" / "b.warc.gz")
    b = _touch(tmp_path / "d" / "a.warc.wat.gz")
    _touch(tmp_path / "d" / "notes.md")
    c = _touch(tmp_path / "e" / "c.warc")
    lst = tmp_path / "wat.paths.gz"
    lst.write_bytes(gzip.compress(b"crawl-data/CC-MAIN-2020-45/x.warc.wat.gz\n\n# comment\ns3://b/k.warc.gz\nrel/y.warc.gz\n"))
    got = expand_inputs([str(tmp_path / "d"), str(tmp_path / "e" / "*.warc"), a, str(lst)])
    assert got == [os.path.abspath(b), os.path.abspath(a), os.path.abspath(c),
                   "https://data.commoncrawl.org/crawl-data/CC-MAIN-2020-45/x.warc.wat.gz",
                   "s3://b/k.warc.gz", str(tmp_path) + "/rel/y.warc.gz"]


def test_paths_list_with_s3_root(tmp_path):
    lst = tmp_path / "warc.paths"
    lst.write_text("crawl-data/CC-MAIN-2016-07/a.warc.gz\n")
    assert read_paths_list(str(lst), "s3://commoncrawl/") == ["s3://commoncrawl/crawl-data/CC-MAIN-2016-07/a.warc.gz"]


def test_missing_inputs_are_clear_errors(tmp_path):
    with pytest.raises(InputError, match="input not found"):
        expand_inputs([str(tmp_path / "nope.warc.gz")])
    with pytest.raises(InputError, match="no input matches"):
        expand_inputs([str(tmp_path / "*.warc.gz")])


def test_real_cc_paths_listing(shared):
    p = shared("data", "paths", "Ashish-more__newscnn__CC-MAIN-2020-45")
    wat = [f for f in os.listdir(p) if f.startswith("wat")][0]
    got = expand_inputs([str(p / wat)])
    assert len(got) == 72000
    assert all(u.startswith("https://data.commoncrawl.org/crawl-data/CC-MAIN-2020-45/segments/") for u in got)
    assert all(u.endswith(".warc.wat.gz") for u in got)


def test_open_binary_local_and_file_uri(tmp_path):
    p = _touch(tmp_path / "f.bin", b"hello")
    with open_binary(p) as fh:
        assert fh.read() == b"hello"
    with open_binary("file://" + p) as fh:
        assert fh.read() == b"hello"


def test_s3_uri_without_key_is_a_clear_error():
    with pytest.raises(InputError, match="not an s3 object URI"):
        open_binary("s3://bucket-only")


def test_http_errors_are_credential_free(monkeypatch):
    from metaclip_spark.inputs.io import InputReadError, RetryPolicy

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "very-secret-value-1")
    # nothing listens on port 9 of 127.0.0.1: connection refused, retried, then a clear error
    with pytest.raises(InputReadError, match=r"gave up after 2 attempts at byte 0") as err:
        open_binary("http://user:very-secret-value-1@127.0.0.1:9/x.warc.gz",
                    RetryPolicy(max_attempts=2, base_seconds=0.01))
    assert "very-secret-value-1" not in str(err.value) and "user:" not in str(err.value)


def test_remote_paths_list_may_name_only_remote_files(tmp_path):
    """Issue #13 item 10: a paths list read over http(s)/s3 cannot make the job read local
    files; entries are normalised and named (credentials scrubbed) when refused."""
    from tests.servers import FaultServer

    lists = tmp_path / "srv" / "lists"
    lists.mkdir(parents=True)
    (lists / "ok.paths").write_text("crawl-data/CC-MAIN-2020-45/a.warc.wat.gz\nsub/../b.warc.gz\n"
                                    "../../../etc/c.warc.gz\nhttps://h.example/x/../y.warc.gz\n")
    (lists / "file.paths").write_text("crawl-data/CC-MAIN-2020-45/a.warc.wat.gz\nfile:///etc/shadow\n")
    (lists / "abs.paths").write_text("/etc/passwd\n")
    (lists / "up.paths").write_text("crawl-data/CC-MAIN-2020-45/../../../etc/passwd.warc.wat.gz\n")
    srv = FaultServer(root=str(tmp_path / "srv"))
    try:
        host = srv.url[len("http://"):]
        base = "http://u:LISTPW99@%s/lists/" % host
        assert expand_inputs([base + "ok.paths?token=LISTTOK99"]) == [
            "https://data.commoncrawl.org/crawl-data/CC-MAIN-2020-45/a.warc.wat.gz",
            "http://u:LISTPW99@%s/lists/b.warc.gz" % host,
            "http://u:LISTPW99@%s/etc/c.warc.gz" % host,
            "https://h.example/y.warc.gz"]
        for name, line, entry, why in (
                ("file.paths", 2, "file:///etc/shadow", "is a local path; a list read from http may only name remote files"),
                ("abs.paths", 1, "/etc/passwd", "is a local path; a list read from http may only name remote files"),
                ("up.paths", 1, "crawl-data/CC-MAIN-2020-45/../../../etc/passwd.warc.wat.gz", "leaves crawl-data/")):
            with pytest.raises(InputError) as err:
                expand_inputs([base + name + "?token=LISTTOK99"])
            assert str(err.value) == "paths list http://***@%s/lists/%s?token=***, line %d: %s %s" % (
                host, name, line, entry, why)
    finally:
        srv.stop()


def test_local_paths_list_entries_are_normalised(tmp_path):
    lst = tmp_path / "l" / "x.paths"
    lst.parent.mkdir()
    lst.write_text("/data/a/../b.warc.gz\nsub/../../c.warc.gz\nfile:///data/d.warc.gz\n")
    assert expand_inputs([str(lst)]) == ["/data/b.warc.gz", str(tmp_path / "c.warc.gz"), "file:///data/d.warc.gz"]
    lst.write_text("crawl-data/../x.warc.gz\n")
    with pytest.raises(InputError) as err:
        read_paths_list(str(lst))
    assert str(err.value) == "paths list %s, line 1: crawl-data/../x.warc.gz leaves crawl-data/" % lst


def test_inputs_differing_only_in_credentials_are_one_input():
    """They would be one stored name and one output file (pipeline.part_name)."""
    assert expand_inputs(["https://h/f.warc.gz?X-Amz-Signature=A1", "https://h/f.warc.gz?X-Amz-Signature=B2",
                          "https://u:p@h/f.warc.gz?X-Amz-Signature=C3", "https://h/g.warc.gz"]) == [
        "https://h/f.warc.gz?X-Amz-Signature=A1", "https://u:p@h/f.warc.gz?X-Amz-Signature=C3",
        "https://h/g.warc.gz"]
