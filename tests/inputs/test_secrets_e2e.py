"""Issue #13 items 5 and 9 end to end: what a run stores about its inputs.

Pre-signed / token / ``user:password@`` input URLs must be opened as given but stored only
in their scrubbed form (``redact.scrub_uri``): no credential may reach any byte of a run
folder (Parquet values included), its file names, or what ``--dry-run`` prints. Output
files are never named like hidden files (``_x``, ``.x``), which Parquet readers skip.
"""

import base64
import hashlib
import json
import os
import shutil
from urllib.parse import parse_qs, urlsplit

import pyarrow.parquet as pq
import pytest

from metaclip_spark.metadata import defaults
from metaclip_spark.run.config import load_config
from metaclip_spark.steps.pipeline import part_name
from tests.servers import FaultServer, _Handler

SAMPLE = str(defaults.sample_dir())
USER, PASSWORD = "alice-user-7f3", "PASSWORDq8Zt2"
SIG, TOK, CONF_SECRET = "SECRETSIGa1b2c3d4e5", "SECRETTOKf6g7h8i9j0", "SECRETCONFk1l2m3n4"
AUTH = "Basic " + base64.b64encode(("%s:%s" % (USER, PASSWORD)).encode()).decode()
SECRETS = [PASSWORD, SIG, TOK, CONF_SECRET, USER, AUTH.split()[1]]
# served names: two that would be hidden files if used as output names as they are
FILES = {"_SYNTH-1-00000.warc.gz": "SYNTH-1-00000.warc.gz", ".SYNTH-1-00001.warc.gz": "SYNTH-1-00001.warc.gz",
         "SYNTH-1-00000.warc.wat.gz": "SYNTH-1-00000.warc.wat.gz", "SYNTH-1-00001.warc.wat.gz": "SYNTH-1-00001.warc.wat.gz"}


class _SignedHandler(_Handler):
    """Serves a file only to a request with the right Basic credentials and signature: the
    task must open the real URI, not its stored (scrubbed) name."""

    def _handle(self) -> None:
        q = parse_qs(urlsplit(self.path).query)
        if (self.headers.get("Authorization") != AUTH or q.get("X-Amz-Signature") != [SIG]
                or q.get("X-Amz-Security-Token") != [TOK]):
            self._record(403)
            self.send_response(403)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        super()._handle()

    do_GET = do_HEAD = _handle


def signed(port: int, name: str) -> str:
    return "http://%s:%s@127.0.0.1:%d/%s?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=%s&X-Amz-Security-Token=%s" % (
        USER, PASSWORD, port, name, SIG, TOK)


def stored(port: int, name: str) -> str:
    return "http://***@127.0.0.1:%d/%s?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=***&X-Amz-Security-Token=***" % (
        port, name)


def leaks(folder: str) -> list[str]:
    """Every (place, secret) where a secret shows: file and folder names, the raw bytes of
    every file, and every value and the key-value metadata of every Parquet file, read back."""
    found = []
    for dirpath, dirs, files in os.walk(folder):
        for name in dirs + files:
            found += ["name %s: %s" % (os.path.join(dirpath, name), s) for s in SECRETS if s in name]
        for name in files:
            path = os.path.join(dirpath, name)
            data = open(path, "rb").read()
            found += ["bytes %s: %s" % (path, s) for s in SECRETS if s.encode() in data]
            if name.endswith(".parquet"):
                table = pq.read_table(path)
                text = json.dumps(table.to_pylist(), default=str) + repr(table.schema.metadata)
                found += ["values %s: %s" % (path, s) for s in SECRETS if s in text]
    return found


def pool_rows(folder: str) -> list[tuple]:
    """Every pool row but its source and crawl label, sorted (so runs over other names compare)."""
    t = pq.read_table(os.path.join(folder, "pool"))
    return sorted(tuple(json.dumps(v, default=str) for k, v in r.items() if k not in ("source", "crawl"))
                  for r in t.to_pylist())


@pytest.fixture(scope="module")
def metadata_file(tmp_path_factory):
    entries = json.load(open(defaults.default_metadata_path()))[:3000] + ["photo of", "red car", "New York"]
    path = tmp_path_factory.mktemp("meta") / "metadata.json"
    path.write_text(json.dumps(entries))
    return str(path)


def test_part_names_are_deterministic_credential_free_and_never_hidden():
    def digest(name):
        return hashlib.sha1(name.encode()).hexdigest()[:12]

    cc = ("s3://commoncrawl/crawl-data/CC-MAIN-2020-45/segments/1603107863364.0/wat/"
          "CC-MAIN-20201019145901-20201019175901-00000.warc.wat.gz")
    # ordinary inputs keep the names they always had
    assert part_name(cc) == "CC-MAIN-20201019145901-20201019175901-00000-39c3925917e7.parquet"
    assert part_name("/d/SYNTH-1-00000.warc.gz") == "SYNTH-1-00000-%s.parquet" % digest("/d/SYNTH-1-00000.warc.gz")
    # names that readers would skip as hidden get "part" in front
    assert part_name("/d/_x.warc.gz") == "part_x-36670e4baea4.parquet"
    assert part_name("/d/.y.warc.wat.gz") == "part.y-dc55da943144.parquet"
    assert part_name("/d/~a.warc.gz") == "part_a-a0085235cbe9.parquet"
    assert part_name("https://h/?x=1") == "part-17ef94f8f00f.parquet"
    assert part_name("/d/données.warc.gz") == "donn_es-5c0daafc24e1.parquet"
    # credentials: neither in the name nor in what its digest is taken of
    u = "https://bob:pw@h/d/f.warc.gz?X-Amz-Signature=S1&X-Amz-Security-Token=T1"
    assert part_name(u) == "f-%s.parquet" % digest("https://***@h/d/f.warc.gz?X-Amz-Signature=***&X-Amz-Security-Token=***")
    assert part_name(u) == part_name("https://eve:pw2@h/d/f.warc.gz?X-Amz-Signature=S2&X-Amz-Security-Token=T2")
    assert part_name(u) != part_name("https://h/d/f.warc.gz")


def test_dry_run_prints_inputs_without_credentials(tmp_path, capsys):
    from metaclip_spark.cli import main

    inputs = [signed(8000, "a.warc.gz"), "https://h.example/b.warc.gz?token=SECRETTOKf6g7h8i9j0&part=2"]
    assert main(["match", "--input", inputs[0], "--input", inputs[1], "--dry-run", "--output", str(tmp_path / "o")]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == [stored(8000, "a.warc.gz"), "https://h.example/b.warc.gz?token=***&part=2"]
    assert not [s for s in SECRETS if s in out + err]


def test_signed_inputs_leave_no_credential_in_the_run_folder(spark, metadata_file, tmp_path):
    from metaclip_spark.spark.stage2 import run_balance
    from metaclip_spark.spark.stage1 import run_match

    served = tmp_path / "srv"
    served.mkdir()
    for name, src in FILES.items():
        shutil.copy(os.path.join(SAMPLE, src), served / name)
    names = sorted(FILES)

    # the run without secrets: the same files, local
    plain = tmp_path / "plain"
    base = run_match(load_config(overrides={"input.paths": [str(served / n) for n in names], "output": str(plain),
                                            "match.metadata": metadata_file}), spark=spark)
    assert base["inputs_failed"] == 0 and base["pool_rows"] > 0

    srv = FaultServer(root=str(served))
    srv.RequestHandlerClass = _SignedHandler
    try:
        port = srv.server_address[1]
        urls = [signed(port, n) for n in names] + [signed(port, "missing.warc.gz")]
        out = tmp_path / "run"
        cfg = load_config(sets=["spark.conf.spark.hadoop.fs.s3a.secret.key=" + CONF_SECRET],
                          overrides={"input.paths": urls, "output": str(out), "match.metadata": metadata_file,
                                     "input.chunk_size": 2, "input.max_failed_fraction": 0.5})
        summary = run_match(cfg, spark=spark)
        assert srv.requests_for("/missing.warc.gz")[0][3] == 404   # the real URI was opened (403 otherwise)
        assert not [r for r in srv.log if r[3] == 403]
        bal = run_balance(load_config(overrides={"output": str(out), "balance.t": 3}), [str(out)], spark=spark)
    finally:
        srv.stop()

    # same rows as the run without secrets, exactly; only the stored source differs
    assert summary["pool_rows"] == base["pool_rows"] and summary["inputs"] == 5 and summary["inputs_failed"] == 1
    assert pool_rows(str(out)) == pool_rows(str(plain))
    pool = pq.read_table(out / "pool")
    assert pool.num_rows == summary["pool_rows"]          # item 5: no pool file is hidden from readers
    assert set(pool.column("source").to_pylist()) == {stored(port, n) for n in names}
    assert sorted(os.listdir(out / "pool")) == sorted(part_name(u) for u in urls[:-1])
    assert not [n for n in os.listdir(out / "pool") + os.listdir(plain / "pool") if n[0] in "._"]
    curated = pq.read_table(out / "curated")
    assert bal["curated_rows"] == curated.num_rows > 0
    assert set(curated.column("source").to_pylist()) <= {stored(port, n) for n in names}

    files = json.load(open(out / "stats" / "match-files.json"))
    assert [f["source"] for f in files] == sorted(stored(port, n) for n in names + ["missing.warc.gz"])
    match = json.load(open(out / "stats" / "match.json"))
    assert [f["source"] for f in match["failed_inputs"]] == [stored(port, "missing.warc.gz")]
    assert json.load(open(out / "config-match.json"))["spark"]["conf"] == {"spark.hadoop.fs.s3a.secret.key": "***"}
    assert sorted(os.listdir(out / "chunks" / "match")) == ["chunk-00000", "chunk-00001", "chunk-00002", "plan.json"]

    assert leaks(str(out)) == []


class _RedirectHandler(_Handler):
    """Records the Authorization header of every request; ``/r/<name>`` redirects to
    ``server.redirect_to + /<name>``."""

    def _handle(self) -> None:
        self.server.seen.append((urlsplit(self.path).path, self.headers.get("Authorization")))
        path = urlsplit(self.path).path
        if path.startswith("/r/"):
            self._record(302)
            self.send_response(302)
            self.send_header("Location", self.server.redirect_to + path[2:])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        super()._handle()

    do_GET = do_HEAD = _handle


def test_userinfo_is_sent_as_basic_auth_but_not_to_a_redirect_target():
    from metaclip_spark.inputs.io import open_binary

    first, other = FaultServer(root=SAMPLE), FaultServer(root=SAMPLE)
    try:
        for srv in (first, other):
            srv.RequestHandlerClass, srv.seen = _RedirectHandler, []
        first.redirect_to = other.url
        url = "http://%s:%s@127.0.0.1:%d/r/SYNTH-1-00000.warc.gz" % (USER, PASSWORD, first.server_address[1])
        with open_binary(url) as fh:
            assert fh.read() == open(os.path.join(SAMPLE, "SYNTH-1-00000.warc.gz"), "rb").read()
        assert first.seen == [("/r/SYNTH-1-00000.warc.gz", AUTH)]
        assert other.seen == [("/SYNTH-1-00000.warc.gz", None)]
    finally:
        first.stop()
        other.stop()
