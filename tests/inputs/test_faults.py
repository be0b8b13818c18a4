"""Fault injection through a local HTTP server on 127.0.0.1 (tests/servers.py): 503 Slow
Down, connection resets mid-file, permanent errors. Readers must give exactly the bytes and
pairs of a fault-free read; stage 1 must give the fault-free pool and list what failed."""

import json
import os

import pyarrow.parquet as pq
import pytest

from metaclip_spark import synth
from metaclip_spark.steps import extract
from metaclip_spark.run import outputs
from metaclip_spark.run.config import load_config
from metaclip_spark.inputs.io import InputReadError, RetryPolicy, open_binary
from metaclip_spark.spark.stage1 import Stage1Failed, run_match
from tests.servers import FaultServer

FAST = RetryPolicy(base_seconds=0.01, max_attempts=4)   # unit tests only; the default waits >= 1 s


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    synth.make_corpus(str(folder), 120, 4, files=2)
    return folder


@pytest.fixture
def server(corpus):
    srv = FaultServer(root=str(corpus))
    yield srv
    srv.stop()


WAT = "/SYNTH-4-00000.warc.wat.gz"


def test_default_policy_waits_at_least_a_second_and_backs_off():
    import random

    rng = random.Random(0)
    delays = [RetryPolicy().delay(i, rng) for i in range(8)]
    assert all(d >= 1.0 for d in delays)
    assert [min(60.0, 2.0 ** i) for i in range(8)] == [RetryPolicy(jitter=0).delay(i) for i in range(8)]
    assert all(b <= d <= 1.5 * b for d, b in zip(delays, [min(60.0, 2.0 ** i) for i in range(8)]))


def test_503_then_success(server, corpus):
    server.fail_first[WAT] = 3
    with open_binary(server.url + WAT, FAST) as fh:
        assert fh.read() == (corpus / WAT[1:]).read_bytes()
        assert fh.raw.retries == 3 and fh.raw.resumes == 0
    assert [r[3] for r in server.requests_for(WAT)] == [503, 503, 503, 200]


def test_reset_mid_file_resumes_from_last_byte(server, corpus):
    data = (corpus / WAT[1:]).read_bytes()
    assert len(data) > 140_000
    server.reset_after[WAT] = 90_000
    with open_binary(server.url + WAT, FAST) as fh:
        assert fh.read() == data
        raw = fh.raw
    assert raw.resumes == 1 and raw.pos == len(data) and len(raw.resume_points) == 1
    at = raw.resume_points[0]
    log = server.requests_for(WAT)
    assert log[0][3] == "reset" and len(log) == 2
    assert log[1][2:] == (("bytes=%d-" % at, 206) if at else (None, 200))


def test_pairs_after_faults_equal_fault_free(server, corpus):
    want = list(extract.pairs_from_file(str(corpus / WAT[1:])))
    for offset in (5_000, 60_000, 130_000):
        server.fail_first[WAT] = 1
        server.reset_after[WAT] = offset
        with open_binary(server.url + WAT, FAST) as fh:
            got = list(extract.pairs_from_file(fh, source=want[0]["source"]))
        assert got == want and len(got) > 100


def test_permanent_errors_fail_at_once_or_after_the_budget(server):
    with pytest.raises(InputReadError, match="HTTP 404"):
        open_binary(server.url + "/missing.warc.gz", FAST)
    assert len(server.requests_for("/missing.warc.gz")) == 1
    server.fail_first[WAT] = 100
    with pytest.raises(InputReadError, match="gave up after 4 attempts at byte 0: Transient: HTTP 503"):
        open_binary(server.url + WAT, FAST)
    assert len(server.requests_for(WAT)) == 4


def pool_rows(out):
    rows = []
    for uri in outputs.list_files(os.path.join(out, "pool"), ".parquet"):
        t = pq.read_table(uri).drop(["source", "crawl"])      # crawl: the run folder's name here
        rows.extend(t.to_pylist())
    return sorted(rows, key=lambda r: (r["record_id"], r["url"], r["text"]))


def test_stage1_through_faults_equals_fault_free(spark, server, corpus, tmp_path):
    """Spark tasks read over http with the default policy (>= 1 s between retries):
    503s on one file, a reset in the middle of the other. Same pool and counts."""
    names = ["SYNTH-4-00000.warc.wat.gz", "SYNTH-4-00001.warc.wat.gz"]
    clean = run_match(load_config(overrides={"input.paths": [str(corpus / n) for n in names],
                                             "output": str(tmp_path / "clean")}), spark=spark)
    server.fail_first["/" + names[0]] = 2
    server.reset_after["/" + names[1]] = 70_000
    faulty = run_match(load_config(overrides={"input.paths": [server.url + "/" + n for n in names],
                                              "output": str(tmp_path / "faulty")}), spark=spark)
    assert faulty["inputs_failed"] == 0 and faulty["counts"] == clean["counts"]
    assert pool_rows(tmp_path / "faulty") == pool_rows(tmp_path / "clean") and faulty["pool_rows"] > 50
    # same counts (the files' schema metadata differ only in the pool digest, which names the
    # pool files: derived from the input names, local paths here and http URLs there)
    assert pq.read_table(tmp_path / "faulty/entry_counts/entry_counts.parquet").equals(
        pq.read_table(tmp_path / "clean/entry_counts/entry_counts.parquet"))
    assert [r[3] for r in server.requests_for("/" + names[0])] == [503, 503, 200]
    assert [r[3] for r in server.requests_for("/" + names[1])][0] == "reset"


def test_failed_inputs_manifest_and_exit(spark, server, corpus, tmp_path):
    good = [str(corpus / "SYNTH-4-00000.warc.wat.gz"), str(corpus / "SYNTH-4-00001.warc.wat.gz")]
    bad = server.url + "/gone.warc.wat.gz"
    out = tmp_path / "run"
    cfg = load_config(overrides={"input.paths": good + [bad], "output": str(out), "input.chunk_size": 2})
    with pytest.raises(Stage1Failed, match="1 of 3 inputs failed"):
        run_match(cfg, spark=spark)
    stats = json.loads((out / "stats" / "match.json").read_text())
    assert stats["failed_inputs"] == [{"source": bad, "error": "InputReadError: cannot read %s: HTTP 404 Not Found"
                                       % bad}]
    assert stats["inputs"] == 3 and stats["inputs_failed"] == 1 and stats["counts"]["inputs_failed"] == 1
    assert len(outputs.list_files(str(out / "pool"), ".parquet")) == 2
    assert (out / "entry_counts" / "entry_counts.parquet").exists() and not (out / "_SUCCESS").exists()
    # allowed fraction: the same run finishes (chunk 0 reused, the chunk with the failure redone)
    cfg = load_config(overrides={"input.paths": good + [bad], "output": str(out), "input.chunk_size": 2,
                                 "input.max_failed_fraction": 0.5})
    summary = run_match(cfg, spark=spark)
    assert summary["chunks"] == 2 and summary["chunks_reused"] == 1 and (out / "_SUCCESS").exists()
    assert summary["failed_inputs"] == stats["failed_inputs"]


# ------------------------------------------------------------------ bounded time (issue #13 item 12)
# Small budgets so that each test takes seconds; the rules are the production ones.
def _timed(**kw):
    rules = dict(base_seconds=0.05, max_attempts=1000, connect_timeout=1.0, read_timeout=0.5,
                 budget_seconds=30.0, min_bytes_per_second=1000.0, slow_window_seconds=1.0)
    rules.update(kw)
    return RetryPolicy(**rules)


SMALL = "/small.warc.gz"


@pytest.fixture
def small(corpus):
    data = (corpus / WAT[1:]).read_bytes()[:40]
    (corpus / SMALL[1:]).write_bytes(data)
    return data


def test_trickling_server_fails_input_too_slow(server, small):
    """One byte every 0.2 s: the whole 40-byte file would take 8 s and reads would never time
    out; the stream fails once a 1 s window of waiting brought under 1000 bytes/s."""
    server.trickle[SMALL] = 0.2
    with open_binary(server.url + SMALL, _timed()) as fh:
        with pytest.raises(InputReadError, match=r": input_too_slow: \d+ bytes in [\d.]+ s of waiting") as err:
            fh.read()
        assert fh.raw.failure is err.value and err.value.reason == "input_too_slow"
        assert fh.raw.pos < len(small)


def test_read_budget_fails_a_steady_but_long_read(server, small):
    """Fast enough for the throughput rule (off here), but the 1 s budget of waiting runs out."""
    server.trickle[SMALL] = 0.05
    with open_binary(server.url + SMALL, _timed(budget_seconds=1.0, min_bytes_per_second=0)) as fh:
        with pytest.raises(InputReadError, match=r": input_read_budget: [\d.]+ s spent waiting on the source, "
                                                 r"over the budget of 1 s") as err:
            fh.read()
    assert err.value.reason == "input_read_budget"


def test_trickle_within_the_rules_is_read_whole(server, small):
    server.trickle[SMALL] = 0.01
    with open_binary(server.url + SMALL, _timed(min_bytes_per_second=5.0)) as fh:
        assert fh.read() == small and fh.raw.failure is None


def test_silent_server_fails_in_bounded_time():
    """Accepts the connection, never answers: each attempt ends in a 0.5 s read timeout; after
    a 1 s window without bytes the input fails (before: 60 s per attempt, 8 attempts)."""
    from tests.servers import SilentServer

    srv = SilentServer()
    try:
        with pytest.raises(InputReadError, match=r": input_too_slow: 0 bytes in [\d.]+ s of waiting") as err:
            open_binary(srv.url + "/x.warc.gz", _timed())
        assert err.value.reason == "input_too_slow" and len(srv.accepted) >= 2
    finally:
        srv.stop()


def test_unreachable_host_fails_in_bounded_time():
    """Connections refused (nothing listens): retried with back-off until a 1 s window of
    waiting brought no byte (before: 8 attempts over ~160 s); with that rule off, until the
    1.5 s budget is spent."""
    from tests.servers import free_port

    url = "http://127.0.0.1:%d/x.warc.gz" % free_port()
    with pytest.raises(InputReadError, match=r": input_too_slow: 0 bytes in ") as err:
        open_binary(url, _timed(base_seconds=0.2, cap_seconds=0.4))
    assert err.value.reason == "input_too_slow"
    with pytest.raises(InputReadError, match=r": input_read_budget: ") as err:
        open_binary(url, _timed(base_seconds=0.2, cap_seconds=0.4, budget_seconds=1.5, min_bytes_per_second=0))
    assert err.value.reason == "input_read_budget"


def test_throttling_back_off_is_not_slowness(server, corpus):
    """503 Slow Down answers: the back-off after them does not count against the throughput
    rule (the server is alive and asked us to wait), only against the budget."""
    server.fail_first[WAT] = 6
    with open_binary(server.url + WAT, _timed(base_seconds=0.3, cap_seconds=0.3)) as fh:
        assert fh.read() == (corpus / WAT[1:]).read_bytes()
        assert fh.raw.retries == 6


def test_stage1_fails_only_the_stalled_inputs(spark, server, corpus, small, tmp_path):
    """A trickling and a silent server beside a good input: both listed in failed_inputs with
    the rule's name, the good input's pool and counts as in a run without them."""
    from tests.servers import SilentServer

    good = str(corpus / "SYNTH-4-00000.warc.wat.gz")
    clean = run_match(load_config(overrides={"input.paths": [good], "output": str(tmp_path / "clean")}),
                      spark=spark)
    silent = SilentServer()
    try:
        server.trickle[SMALL] = 0.2
        slow, mute = server.url + SMALL, silent.url + "/mute.warc.wat.gz"
        out = tmp_path / "run"
        cfg = load_config(sets=["input.connect_timeout=1", "input.read_timeout=0.5", "input.read_budget_seconds=20",
                                "input.min_bytes_per_second=1000", "input.slow_window_seconds=1",
                                "input.max_failed_fraction=0.7"],
                          overrides={"input.paths": [good, slow, mute], "output": str(out)})
        summary = run_match(cfg, spark=spark)
    finally:
        silent.stop()
    failed = {f["source"]: f["error"] for f in summary["failed_inputs"]}
    assert sorted(failed) == sorted([slow, mute]) and summary["inputs_failed"] == 2
    assert failed[slow].startswith("InputReadError: %s: input_too_slow: " % slow)
    assert failed[mute].startswith("InputReadError: %s: input_too_slow: 0 bytes in " % mute)
    assert summary["counts"]["inputs_failed"] == 2
    assert pool_rows(out) == pool_rows(tmp_path / "clean") and summary["pool_rows"] == clean["pool_rows"] > 50


# ------------------------------------------------------------------ retries are logged; DNS fails fast (issue #14 item 4)
def test_each_retry_logs_one_scrubbed_warning(server, corpus, caplog):
    server.fail_first[WAT] = 2
    with caplog.at_level("WARNING", logger="metaclip_spark.inputs.streams"):
        with open_binary(server.url + WAT + "?X-Amz-Signature=SECRET123", FAST) as fh:
            assert fh.read() == (corpus / WAT[1:]).read_bytes()
    got = [r.getMessage() for r in caplog.records if r.name == "metaclip_spark.inputs.streams"]
    assert len(got) == 2 and all(r.levelname == "WARNING" for r in caplog.records)
    for n, line in enumerate(got, 1):
        assert line.startswith("input %s%s?X-Amz-Signature=***: attempt %d/4 failed: Transient: HTTP 503 "
                               % (server.url, WAT, n)), line
        assert line.endswith(" s") and "retrying in 0.0" in line
    assert "SECRET123" not in caplog.text


def test_unresolvable_host_fails_after_two_attempts(caplog):
    """``.invalid`` never resolves: 2 attempts (one logged retry), not max_attempts=1000."""
    import time

    t0 = time.monotonic()
    with caplog.at_level("WARNING", logger="metaclip_spark.inputs.streams"):
        with pytest.raises(InputReadError, match=r"^https://no-such-host\.invalid/x\.warc\.gz\?sig=\*\*\*: host name "
                                                 r"not resolved, gave up after 2 attempt\(s\): URLError: ") as err:
            open_binary("https://no-such-host.invalid/x.warc.gz?sig=SECRET123", _timed())
    assert err.value.reason == "input_dns" and time.monotonic() - t0 < 10
    got = [r.getMessage() for r in caplog.records]
    assert len(got) == 1 and got[0].startswith("input https://no-such-host.invalid/x.warc.gz?sig=***: attempt 1/2 "
                                               "failed: URLError: ")
    assert "SECRET123" not in caplog.text


def test_unresolvable_s3_endpoint_fails_fast_with_botocore_retries_logged(monkeypatch, caplog):
    """S3 through boto3 with an endpoint whose host does not resolve: botocore's own retries
    (10 per request) stop after 2 attempts and are logged, and so are the stream's."""
    import threading
    import time

    for k, v in {"AWS_ENDPOINT_URL": "http://no-such-host.invalid:9000", "AWS_ACCESS_KEY_ID": "AKIATESTFAULTS",
                 "AWS_SECRET_ACCESS_KEY": "SECRET123abc", "AWS_DEFAULT_REGION": "us-east-1",
                 "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": os.devnull,
                 "AWS_SHARED_CREDENTIALS_FILE": os.devnull}.items():
        monkeypatch.setenv(k, v)
    box = {}

    def read():          # a new thread: a new boto3 client (clients are cached per thread)
        t0 = time.monotonic()
        try:
            open_binary("s3://bkt/a/x.warc.gz", _timed())
        except InputReadError as exc:
            box["err"] = exc
        box["seconds"] = time.monotonic() - t0

    with caplog.at_level("WARNING", logger="metaclip_spark.inputs.streams"):
        t = threading.Thread(target=read)
        t.start()
        t.join(60)
    assert box["err"].reason == "input_dns" and box["seconds"] < 15
    assert str(box["err"]).startswith("s3://bkt/a/x.warc.gz: host name not resolved, gave up after 2 attempt(s): ")
    got = [r.getMessage() for r in caplog.records]
    s3 = [m for m in got if m.startswith("S3 GetObject http://no-such-host.invalid:9000/bkt/a/x.warc.gz: "
                                         "attempt 1/2 failed: EndpointConnectionError: ")]
    stream = [m for m in got if m.startswith("input s3://bkt/a/x.warc.gz: attempt 1/2 failed: ")]
    assert len(s3) == 2 and len(stream) == 1 and len(got) == 3, got
    assert "SECRET123" not in caplog.text
