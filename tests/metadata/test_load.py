"""Loading and validating MetaCLIP metadata (a JSON list of strings)."""

import functools
import gzip
import hashlib
import http.server
import json
import logging
import shutil
import ssl
import subprocess
import threading

import pytest

from metaclip_spark.metadata.load import (MetadataError, load_metadata, metadata_digest,
                                     parse_metadata)
from tests.conftest import shared_path

ENTRIES = ["dog", "hot dog", "The", "café", "日本", "3", "St. Louis"]


def write(path, obj=None, raw=None):
    data = raw if raw is not None else json.dumps(obj, ensure_ascii=False).encode("utf-8")
    path.write_bytes(data)
    return str(path)


def test_good_file(tmp_path):
    assert load_metadata(write(tmp_path / "metadata.json", ENTRIES)) == ENTRIES


def test_good_file_file_url(tmp_path):
    p = write(tmp_path / "metadata.json", ENTRIES)
    assert load_metadata("file://" + p) == ENTRIES


def test_gzip_file(tmp_path):
    p = tmp_path / "metadata.json.gz"
    p.write_bytes(gzip.compress(json.dumps(ENTRIES).encode()))
    assert load_metadata(str(p)) == ENTRIES


def test_gzip_detected_by_content_not_name(tmp_path):
    p = tmp_path / "metadata.json"
    p.write_bytes(gzip.compress(json.dumps(ENTRIES).encode()))
    assert load_metadata(str(p)) == ENTRIES


def test_utf8_bom_and_lone_surrogate_escape(tmp_path):
    p = write(tmp_path / "m.json", raw=b"\xef\xbb\xbf" + b'["a", "b\\ud800c"]')
    assert load_metadata(p) == ["a", "b\ud800c"]


def test_missing_file(tmp_path):
    p = str(tmp_path / "nope.json")
    with pytest.raises(MetadataError) as err:
        load_metadata(p)
    msg = str(err.value)
    assert "cannot read metadata file" in msg and "nope.json" in msg
    assert "FileNotFoundError" in msg


def test_malformed_json(tmp_path):
    p = write(tmp_path / "bad.json", raw=b'["a", "b",\n "c"')
    with pytest.raises(MetadataError) as err:
        load_metadata(p)
    msg = str(err.value)
    assert "bad.json" in msg and "malformed JSON" in msg and "line 2" in msg


def test_not_utf8(tmp_path):
    p = write(tmp_path / "latin1.json", raw='["caf\u00e9"]'.encode("latin-1"))
    with pytest.raises(MetadataError, match=r"latin1\.json: not UTF-8 text: invalid byte at offset 5"):
        load_metadata(p)


def test_corrupt_gzip(tmp_path):
    p = write(tmp_path / "m.json.gz", raw=gzip.compress(b'["a"]')[:-6])
    with pytest.raises(MetadataError, match=r"m\.json\.gz: corrupt gzip data"):
        load_metadata(p)


@pytest.mark.parametrize("obj,kind", [({"a": 1}, "object"), ("dog", "string"), (3, "number"),
                                      (None, "null")])
def test_top_level_not_a_list(tmp_path, obj, kind):
    p = write(tmp_path / "top.json", obj)
    with pytest.raises(MetadataError) as err:
        load_metadata(p)
    assert str(err.value) == ("metadata file %s: top level must be a JSON list of strings, got %s"
                              % (p, kind))


@pytest.mark.parametrize("bad,desc", [(3, "number 3"), (None, "null"), (True, "boolean true"),
                                      (["x"], 'list ["x"]'), ({"k": "v"}, 'object {"k": "v"}'),
                                      (1.5, "number 1.5")])
def test_element_not_a_string(tmp_path, bad, desc):
    p = write(tmp_path / "elem.json", ["a", "b", bad, "c", 5])
    with pytest.raises(MetadataError) as err:
        load_metadata(p)
    assert str(err.value) == "metadata file %s: element 2 is not a string (got %s)" % (p, desc)


def test_empty_string_entry_rejected(tmp_path):
    p = write(tmp_path / "empty_entry.json", ["a", "b", "", "c", ""])
    with pytest.raises(MetadataError) as err:
        load_metadata(p)
    msg = str(err.value)
    assert msg.startswith("metadata file %s: element 2 is an empty string" % p)


def test_empty_list_rejected(tmp_path):
    p = write(tmp_path / "none.json", [])
    with pytest.raises(MetadataError, match=r"none\.json: the list is empty"):
        load_metadata(p)


def test_metadata_error_is_a_value_error():
    with pytest.raises(ValueError):
        parse_metadata(b"{}", source="x")


def test_duplicates_warned_and_kept(tmp_path, caplog):
    entries = ["dog", "cat", "dog", "x", "cat", "dog"]
    p = write(tmp_path / "dups.json", entries)
    with caplog.at_level(logging.WARNING, logger="metaclip_spark.metadata.load"):
        assert load_metadata(p) == entries
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    msg = warnings[0].getMessage()
    assert "dups.json" in msg
    assert "3 duplicate entries (2 strings occur more than once)" in msg
    assert "'dog' at ids 0, 2, 5" in msg and "'cat' at ids 1, 4" in msg


def test_no_warning_without_duplicates(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="metaclip_spark.metadata.load"):
        load_metadata(write(tmp_path / "ok.json", ENTRIES))
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_metadata_digest_exact():
    assert metadata_digest(["a", "b"]) == hashlib.sha256(b'["a","b"]').hexdigest()
    assert metadata_digest(["é"]) == hashlib.sha256(b'["\\u00e9"]').hexdigest()
    assert metadata_digest(["a", "b"]) != metadata_digest(["b", "a"])
    assert metadata_digest(["a,b"]) != metadata_digest(["a", "b"])
    assert metadata_digest(iter(["a", "b"])) == metadata_digest(("a", "b"))
    assert len(metadata_digest(["x\ud800"])) == 64


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _serve(directory, context=None):
    handler = functools.partial(_Quiet, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server


def test_http_url(tmp_path):
    write(tmp_path / "metadata.json", ENTRIES)
    (tmp_path / "metadata.json.gz").write_bytes(gzip.compress(json.dumps(ENTRIES).encode()))
    server = _serve(tmp_path)
    try:
        base = "http://127.0.0.1:%d/" % server.server_address[1]
        assert load_metadata(base + "metadata.json") == ENTRIES
        assert load_metadata(base + "metadata.json.gz") == ENTRIES
        with pytest.raises(MetadataError, match="cannot read metadata file .*missing.json.*404"):
            load_metadata(base + "missing.json")
    finally:
        server.shutdown()
        server.server_close()


def test_https_url(tmp_path, monkeypatch):
    if shutil.which("openssl") is None:
        pytest.skip("openssl CLI not available to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    site = tmp_path / "site"
    site.mkdir()
    write(site / "metadata.json", ENTRIES)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    server = _serve(site, context)
    try:
        url = "https://127.0.0.1:%d/metadata.json" % server.server_address[1]
        # The client verifies the certificate: untrusted first, then trusted via the
        # standard SSL_CERT_FILE variable (read when urllib makes its default context).
        monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "nowhere.pem"))
        with pytest.raises(MetadataError, match="cannot read metadata file https://"):
            load_metadata(url)
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        assert load_metadata(url) == ENTRIES
    finally:
        server.shutdown()
        server.server_close()


def test_s3_url(tmp_path, monkeypatch):
    """s3:// through the project's boto3 client (inputs.io), configured only by the standard
    AWS variables, against a local server that answers path-style GetObject requests
    (GET /bucket/key) from a folder (tests/servers.py; it checks no signature)."""
    import os

    from metaclip_spark.inputs import io as mio
    from tests.servers import FaultServer

    bucket = tmp_path / "meta-bucket" / "v1"
    bucket.mkdir(parents=True)
    write(bucket / "metadata.json", ENTRIES)
    (bucket / "metadata.json.gz").write_bytes(gzip.compress(json.dumps(ENTRIES).encode()))
    server = FaultServer(root=str(tmp_path))
    try:
        for k in [k for k in os.environ if k.startswith("AWS_")]:
            monkeypatch.delenv(k)
        for k, v in {"AWS_ENDPOINT_URL": server.url, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                     "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
                     "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}.items():
            monkeypatch.setenv(k, v)
        monkeypatch.setattr(mio, "_local", type(mio._local)())       # a client made with these variables
        assert load_metadata("s3://meta-bucket/v1/metadata.json") == ENTRIES
        assert load_metadata("s3://meta-bucket/v1/metadata.json.gz") == ENTRIES
        assert [r[:2] for r in server.log if r[0] == "GET"] == [("GET", "/meta-bucket/v1/metadata.json"),
                                                                 ("GET", "/meta-bucket/v1/metadata.json.gz")]
        with pytest.raises(MetadataError, match="cannot read metadata file s3://meta-bucket/v1/missing.json"):
            load_metadata("s3://meta-bucket/v1/missing.json")
    finally:
        server.stop()


def test_standin_500k_loads_fast():
    path = shared_path("data", "metadata", "metadata-standin-500k.json")
    import time
    t0 = time.perf_counter()
    entries = load_metadata(str(path))
    assert len(entries) == 500_000
    assert all(entries)
    assert time.perf_counter() - t0 < 5
