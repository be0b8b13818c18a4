"""The bad-input catalogue through stage 1 on Spark: every damaged file is survived (no
crashed task; only the files without a single record are failed inputs), each damage counted
by name with exact numbers, and the complete records before the damage kept. Small
configured caps make the size/length cases cheap: max_html_bytes=2000, max_text_chars=50,
max_url_chars=80."""

import gzip
import io
import json
import os
import subprocess
import sys
from collections import Counter

import pyarrow.parquet as pq
import pytest
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from metaclip_spark.run import outputs
from metaclip_spark.run.config import load_config
from metaclip_spark.spark.stage1 import run_extract
from tests.conftest import shared_path


def _page(w, url, body, ctype="text/html; charset=utf-8"):
    http = StatusAndHeaders("200 OK", [("Content-Type", ctype), ("Content-Length", str(len(body)))],
                            protocol="HTTP/1.1")
    w.write_record(w.create_warc_record(url, "response", payload=io.BytesIO(body), http_headers=http))


def crafted_warc(path):
    """unknown charset (read as UTF-8), wrong charset (idna: undecodable), HTML over the
    cap, alt over the cap, URL over the cap, non-http schemes."""
    with open(path, "wb") as fh:
        w = WARCWriter(fh, gzip=True)
        _page(w, "http://a.example/unknown", '<img src="/u.jpg" alt="caf\u00e9 photo">'.encode(),
              "text/html; charset=x-no-such-charset")
        _page(w, "http://a.example/wrong", '<img src="/w.jpg" alt="caf\u00e9 r\u00e9sum\u00e9">'.encode(),
              "text/html; charset=idna")
        _page(w, "http://a.example/big", b"<html>" + b"<p>filler</p>" * 300 + b'<img src="/b.jpg" alt="big page">')
        _page(w, "http://a.example/caps", ('<img src="/ok.jpg" alt="short alt"><img src="/long.jpg" alt="%s">'
                                           '<img src="/%s.jpg" alt="long url">' % ("word " * 30, "p" * 120)).encode())
        _page(w, "http://a.example/schemes",
              b'<img src="data:image/png;base64,AAAA" alt="d"><img src="javascript:x()" alt="j">'
              b'<img src="ftp://f.example/x.jpg" alt="f"><img src="mailto:a@b" alt="m">'
              b'<img src="https://ok.example/y.jpg" alt="y">')
    return str(path)


CAPS = {"extract.max_html_bytes": 2000, "extract.max_text_chars": 50, "extract.max_url_chars": 80}


def test_crafted_cases(spark, tmp_path):
    path = crafted_warc(tmp_path / "crafted.warc.gz")
    s = run_extract(load_config(overrides={"input.paths": [path], "output": str(tmp_path / "o"), **CAPS}), spark=spark)
    c = s["counts"]
    assert s["inputs_failed"] == 0 and c["records_read"] == 5 and c["html_pages"] == 5 and c["pairs"] == 3
    assert {k: c["dropped." + k] for k in ("undecodable_page", "html_too_large", "text_too_long", "url_too_long",
                                           "non_http_url")} == {"undecodable_page": 1, "html_too_large": 1,
                                                                "text_too_long": 1, "url_too_long": 1,
                                                                "non_http_url": 4}
    rows = pq.read_table(outputs.list_files(str(tmp_path / "o" / "pairs"), ".parquet")[0]).to_pylist()
    lid = ("not_english", "lid_low_score")
    kept = [(r["page_url"], r["url"], r["text"]) for r in rows if r["drop"] is None or r["drop"] in lid]
    assert kept == [("http://a.example/unknown", "http://a.example/u.jpg", "caf\u00e9 photo"),
                    ("http://a.example/caps", "http://a.example/ok.jpg", "short alt"),
                    ("http://a.example/schemes", "https://ok.example/y.jpg", "y")]
    assert sorted(r["drop"] for r in rows if r["drop"] and r["drop"] not in lid) == ["non_http_url"] * 4 + ["text_too_long", "url_too_long"]


def test_damaged_files_catalogue(spark, tmp_path):
    tool = shared_path("tools", "make_cc_corpus.py")
    corpus = tmp_path / "cc"
    subprocess.run([sys.executable, str(tool), "--pages", "60", "--seed", "3", "--files", "1", "--corrupt-rate",
                    "0.2", "--out", str(corpus), "--quiet"], check=True, timeout=300)
    bad = corpus / "bad"
    exp = json.loads((bad / "EXPECTED.json").read_text())
    names = ["truncated.warc.gz", "malformed-json.warc.wat.gz", "lying-content-length.warc.gz", "empty.warc.gz",
             "not-gzip.warc.gz"]
    cut = [str(shared_path("data", "cc", "CC-MAIN-sample%s.warc.wat.gz" % i)) for i in ("", "2", "3", "4")]
    clipped = str(shared_path("data", "web", "clipped.warc.gz"))
    (bad / "empty-gzip.warc.gz").write_bytes(gzip.compress(b"", mtime=0))      # `gzip -c </dev/null`
    clean_wat = shared_path("data", "cc", "CC-MAIN-sample2.warc.wat.gz").read_bytes()
    (bad / "leading-junk.warc.wat.gz").write_bytes(b"\n" + clean_wat)                 # a stray byte first
    inputs = [str(bad / n) for n in names + ["empty-gzip.warc.gz", "leading-junk.warc.wat.gz"]] + cut + [clipped]
    s = run_extract(load_config(overrides={"input.paths": inputs, "output": str(tmp_path / "o"), **CAPS,
                                           "input.max_failed_fraction": 0.34}), spark=spark)
    # the inputs without a single record are failed inputs (issue #13), their damage named
    assert s["inputs"] == 12 and s["inputs_failed"] == 4
    assert sorted((f["source"].rsplit("/", 1)[-1], f["error"]) for f in s["failed_inputs"]) == [
        ("clipped.warc.gz", "no WARC record read: truncated_gzip: input ends inside the gzip member at offset 0"),
        ("empty-gzip.warc.gz", "no WARC record read: empty_gzip: the gzip data holds no WARC record "
                               "(it inflates to 0 bytes)"),
        ("empty.warc.gz", "no WARC record read: empty_file: the input holds no bytes"),
        ("not-gzip.warc.gz", "no WARC record read: not_gzip: neither gzip nor WARC; starts with b'<?xml'")]
    errors = Counter((e["source"].rsplit("/", 1)[-1], e["kind"]) for e in s["errors"])
    assert errors == Counter({
        ("truncated.warc.gz", "truncated_gzip"): 1,
        ("malformed-json.warc.wat.gz", "malformed_json"): len(exp["malformed-json.warc.wat.gz"]["malformed"]),  # 36
        ("lying-content-length.warc.gz", "bad_content_length"): len(exp["lying-content-length.warc.gz"]["lying_records"]),
        ("empty.warc.gz", "empty_file"): 1,
        ("not-gzip.warc.gz", "not_gzip"): 1,
        ("empty-gzip.warc.gz", "empty_gzip"): 1,
        ("leading-junk.warc.wat.gz", "leading_junk"): 1,
        ("CC-MAIN-sample.warc.wat.gz", "bad_content_length"): 1,      # the two real WATs cut mid-JSON
        ("CC-MAIN-sample3.warc.wat.gz", "bad_content_length"): 1,
        ("clipped.warc.gz", "truncated_gzip"): 1})
    c = s["counts"]
    assert c["records_read"] == (exp["truncated.warc.gz"]["complete_records"] + exp["malformed-json.warc.wat.gz"]["records"]
                                 + exp["lying-content-length.warc.gz"]["records"] + 5) == 547
    assert c["pairs"] == 194 and c["html_pages"] == 46 + 58 + 57 + 5
    assert c["dropped.html_too_large"] == 56 + 55 and c["dropped.no_alt"] == 82 + 5 * 27
    # every output file is readable and holds exactly the rows the manifest says
    files = json.loads((tmp_path / "o" / "stats" / "extract-files.json").read_text())
    run = str(tmp_path / "o")                        # manifest names: absolute, or relative to the run folder
    assert sum(pq.read_metadata(os.path.join(run, f["output"])).num_rows for f in files) == \
        sum(f["rows"] for f in files)
