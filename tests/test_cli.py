"""The CLI's error paths (issue #14 item 4): every expected failure ends with its exit code
and one clear line on stderr, never a traceback, and no credential in any output. Commands
run as real subprocesses (logging set up as for a user); the failures are real: a closed
port on 127.0.0.1 for an unreachable S3 endpoint, the reserved ``.invalid`` domain (never
resolves; no network needed) for a DNS failure."""

import json
import os
import re
import subprocess
import sys
import time

import pytest

from metaclip_spark import cli
from metaclip_spark.run import runfolder
from metaclip_spark.run.config import ConfigError
from tests.servers import free_port

SECRET = "SECRET123"


def run(*args, env=None, timeout=120):
    full = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "metaclip_spark.cli", *args], capture_output=True, text=True,
                       env=full, timeout=timeout)
    p.seconds = time.monotonic() - t0
    return p


def lines(p):
    return [ln for ln in p.stderr.splitlines() if ln.strip()]


def no_traceback(p):
    assert "Traceback" not in p.stderr and "Traceback" not in p.stdout
    assert SECRET not in p.stderr and SECRET not in p.stdout


def test_bad_config_value(tmp_path):
    p = run("match", "--set", "lid.threshold=7", "--output", str(tmp_path / "o"))
    assert p.returncode == 2
    assert lines(p) == ["metaclip-spark: error: lid.threshold must be within [0, 1], got 7.0"]
    no_traceback(p)
    assert not (tmp_path / "o").exists()


def test_missing_pool(tmp_path):
    p = run("balance", "--output", str(tmp_path / "o"))
    assert p.returncode == 2
    assert lines(p)[0].startswith("usage: metaclip-spark balance ")
    assert lines(p)[-1] == "metaclip-spark balance: error: one of the arguments --pool --index is required"
    no_traceback(p)


def test_unreachable_s3_output_is_one_line_before_spark(tmp_path):
    port = free_port()                     # nothing listens: connection refused
    env = {"AWS_ENDPOINT_URL": "http://127.0.0.1:%d" % port, "AWS_ACCESS_KEY_ID": "AKIATESTCLI",
           "AWS_SECRET_ACCESS_KEY": SECRET + "xyz", "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
           "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": os.devnull,
           "AWS_SHARED_CREDENTIALS_FILE": os.devnull}
    p = run("match", "--output", "s3://unreachable-bucket/run", env=env)
    assert p.returncode == 2
    assert len(lines(p)) == 1, p.stderr
    assert re.fullmatch(
        re.escape("metaclip-spark: error: cannot write to output s3://unreachable-bucket/run: AWS Error "
                  "NETWORK_CONNECTION during HeadObject operation: curlCode: 7, Could not connect to server; "
                  "Details: Failed to connect to 127.0.0.1:%d after " % port)
        + r"\d+ ms: Could not connect to server", lines(p)[0]), lines(p)[0]
    no_traceback(p)
    assert "SparkContext" not in p.stderr and "log4j" not in p.stderr      # Spark never started
    assert p.seconds < 20


def test_claim_turns_an_os_error_into_one_config_error(monkeypatch):
    """The first write into the output (the run-folder marker): an OSError there (a store
    that stopped answering, a folder not writable) names the output and the reason."""
    def refused(uri):
        raise OSError("When getting information for key 'run' in bucket 'b': AWS Error NETWORK_CONNECTION\n"
                      "during HeadObject operation")

    monkeypatch.setattr(runfolder.outputs, "resolve", refused)
    with pytest.raises(ConfigError) as err:
        runfolder.claim("s3://b/run?X-Amz-Signature=" + SECRET)
    assert str(err.value) == ("cannot write to output s3://b/run?X-Amz-Signature=***: AWS Error NETWORK_CONNECTION "
                              "during HeadObject operation")


def _balance_only(folder):
    (folder / "stats").mkdir(parents=True)
    (folder / "curated").mkdir()
    (folder / "balance_counts").mkdir()
    (folder / "stats" / "balance.json").write_text(json.dumps({"stage": "balance", "pools": ["/data/pool1"],
                                                               "t": 20.0}))
    (folder / "config-balance.json").write_text("{}")
    (folder / runfolder.MARKER).write_text("{}")


def test_report_on_a_balance_only_folder(tmp_path):
    run_dir = tmp_path / "bal"
    _balance_only(run_dir)
    p = run("report", "--run", str(run_dir))
    assert p.returncode == 2
    assert lines(p) == [
        "metaclip-spark: error: cannot report on %s: it holds stage-2 outputs only (stats/balance.json, curated/); "
        "the report also needs the stage-1 outputs (stats/match.json, entry_counts/, pool/), which are in the pool "
        "folder /data/pool1. Report on the pool (metaclip-spark report --run /data/pool1), or balance into the "
        "pool's own folder (--output equal to --pool) to report both stages" % run_dir]
    no_traceback(p)
    assert not (run_dir / "report").exists()


def test_report_on_a_folder_that_is_not_a_run(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    p = run("report", "--run", str(tmp_path))
    assert p.returncode == 2
    assert lines(p) == ["metaclip-spark: error: cannot report on %s: not a metaclip-spark run folder "
                        "(no stats/match.json)" % tmp_path]
    no_traceback(p)
    p = run("report", "--run", str(tmp_path / "nothere"))
    assert p.returncode == 2
    assert lines(p) == ["metaclip-spark: error: cannot report on %s: no such folder" % (tmp_path / "nothere")]
    no_traceback(p)


def test_verbose_adds_the_traceback(tmp_path):
    p = run("-v", "report", "--run", str(tmp_path / "nothere"))
    assert p.returncode == 2
    assert "Traceback (most recent call last)" in p.stderr
    assert lines(p)[-1] == "metaclip-spark: error: cannot report on %s: no such folder" % (tmp_path / "nothere")


DNS_REASON = r"URLError: <urlopen error \[Errno -?\d+\] [^>]+>"


def test_dns_failure_of_a_paths_list_fails_fast_and_logs_its_retry(tmp_path):
    """A paths list at a host that does not resolve (read on the driver): one retry, logged
    at the default level (scrubbed), then one error line; seconds, not minutes."""
    url = "https://no-such-host.invalid/lists/wat.paths?X-Amz-Signature=" + SECRET
    p = run("match", "--input", url, "--output", str(tmp_path / "o"))
    assert p.returncode == 2
    got = lines(p)
    assert len(got) == 2, p.stderr
    shown = "https://no-such-host.invalid/lists/wat.paths?X-Amz-Signature=***"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d [\d:,]+ WARNING metaclip_spark.inputs.streams: " + re.escape("input %s: " % shown)
                        + r"attempt 1/2 failed: %s; retrying in \d+\.\d+ s" % DNS_REASON, got[0]), got[0]
    assert re.fullmatch(re.escape("metaclip-spark: error: %s: host name not resolved, gave up after 2 attempt(s): "
                                  % shown) + DNS_REASON, got[1]), got[1]
    no_traceback(p)
    assert p.seconds < 15
    assert not (tmp_path / "o").exists()


def test_missing_listed_file_and_dns_failure_in_tasks(tmp_path):
    """Stage 1 on Spark (local mode): a paths list naming a missing local file, and a WARC URL
    whose host does not resolve. Both fail in their tasks; the task's retry line reaches the
    console (the executor's stderr), the run ends with exit 1 and one line, and the secret of
    the signed URL is in no output and no file of the run folder."""
    url = "https://no-such-host.invalid/x.warc.gz?X-Amz-Signature=" + SECRET
    lst = tmp_path / "inputs.txt"
    lst.write_text("missing.warc.gz\n")
    out = tmp_path / "run"
    p = run("match", "-q", "--master", "local[1]", "--input", str(lst), "--input", url, "--output", str(out),
            timeout=300)
    assert p.returncode == 1, p.stderr
    no_traceback(p)
    assert lines(p)[-1] == ("metaclip-spark: failed: 2 of 2 inputs failed (allowed fraction 0.000); the failed inputs "
                            "and their errors are listed in %s/stats/match.json (failed_inputs); rerun the same "
                            "command to retry them" % out)
    shown = "https://no-such-host.invalid/x.warc.gz?X-Amz-Signature=***"
    retry = [ln for ln in lines(p) if "attempt 1/2 failed" in ln]
    assert len(retry) == 1 and re.search(re.escape("input %s: attempt 1/2 failed: " % shown) + DNS_REASON
                                         + r"; retrying in \d+\.\d+ s$", retry[0]), p.stderr
    failed = {f["source"]: f["error"] for f in json.loads((out / "stats" / "match.json").read_text())["failed_inputs"]}
    assert sorted(failed) == sorted([str(tmp_path / "missing.warc.gz"), shown])
    assert re.fullmatch(re.escape("InputReadError: %s: host name not resolved, gave up after 2 attempt(s): " % shown)
                        + DNS_REASON, failed[shown]), failed[shown]
    assert failed[str(tmp_path / "missing.warc.gz")].startswith("FileNotFoundError: ")
    for dirpath, _, files in os.walk(out):
        for f in files:
            assert SECRET.encode() not in open(os.path.join(dirpath, f), "rb").read(), f


# ------------------------------------------------------------- cli.main in-process (capsys)
def test_keyboard_interrupt_is_one_line(monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_run", interrupted)
    assert cli.main(["report", "--run", "x"]) == 130
    err = capsys.readouterr().err
    assert err == "metaclip-spark: interrupted\n"


def test_unexpected_errors_keep_their_traceback(monkeypatch):
    def bug(args):
        raise KeyError("a bug")

    monkeypatch.setattr(cli, "_run", bug)
    with pytest.raises(KeyError):
        cli.main(["report", "--run", "x"])


class Py4JJavaError(Exception):
    """Stands in for py4j's: its text carries the failed task's Python traceback."""


def test_spark_errors_from_our_task_errors_are_one_line():
    text = ("An error occurred while calling o42.collectAndServe.\n: org.apache.spark.SparkException: Job aborted "
            "due to stage failure: Task 0 in stage 1.0 failed 4 times\norg.apache.spark.api.python.PythonException: "
            "Traceback (most recent call last):\n  File \"x.py\", line 1, in task\n"
            "metaclip_spark.run.config.ConfigError: balance.t must be > 0, got -1 token=" + SECRET + "\n"
            "\tat org.apache.spark.api.python.BasePythonRunner$ReaderIterator.handlePythonException\n")
    assert cli.expected_error(Py4JJavaError(text)) == (
        2, "metaclip-spark: error: a Spark task failed: ConfigError: balance.t must be > 0, got -1 token=***")
    oserr = text.replace("metaclip_spark.run.config.ConfigError: balance.t must be > 0, got -1",
                         "OSError: [Errno 28] No space left on device")
    assert cli.expected_error(Py4JJavaError(oserr)) == (
        1, "metaclip-spark: failed: a Spark task failed: OSError: [Errno 28] No space left on device token=***")
    assert cli.expected_error(Py4JJavaError("java.lang.OutOfMemoryError: Java heap space")) is None


def test_expected_error_types():
    from metaclip_spark.inputs.io import InputError
    from metaclip_spark.spark.stage1 import Stage1Failed
    from metaclip_spark.inputs.streams import InputReadError

    assert cli.expected_error(ConfigError("x")) == (2, "metaclip-spark: error: x")
    assert cli.expected_error(InputError("input not found: 'a'")) == (2, "metaclip-spark: error: input not found: 'a'")
    assert cli.expected_error(FileNotFoundError("no\nfile")) == (2, "metaclip-spark: error: no file")
    assert cli.expected_error(InputReadError("s3://b/k: gave up")) == (2, "metaclip-spark: error: s3://b/k: gave up")
    assert cli.expected_error(PermissionError(13, "Permission denied", "/out")) == (
        2, "metaclip-spark: error: permission denied: [Errno 13] Permission denied: '/out'")
    assert cli.expected_error(OSError("When getting information for bucket 'b': AWS Error ACCESS_DENIED")) == (
        2, "metaclip-spark: error: AWS Error ACCESS_DENIED")
    assert cli.expected_error(Stage1Failed("1 of 2 inputs failed")) == (1, "metaclip-spark: failed: 1 of 2 inputs failed")
    assert cli.expected_error(KeyError("k")) is None


def test_worldwide_flag_makes_metadata_the_worldwide_folder(tmp_path):
    def cfg(*argv):
        return cli.config_from_args(cli.build_parser().parse_args(list(argv)))

    english = cfg("match", "--metadata", "m.json", "--output", "o")
    assert (english.worldwide.enabled, english.match.metadata, english.worldwide.metadata) == (False, "m.json", "")
    world = cfg("match", "--worldwide", "--metadata", "meta/", "--output", "o")
    assert (world.worldwide.enabled, world.match.metadata, world.worldwide.metadata) == (True, "", "meta/")
    by_key = cfg("curate", "--set", "worldwide.enabled=true", "--metadata", "meta/", "--output", "o")
    assert (by_key.worldwide.enabled, by_key.match.metadata, by_key.worldwide.metadata) == (True, "", "meta/")
    from_config = cfg("curate", "--worldwide", "--set", "worldwide.metadata=w/", "--output", "o")
    assert (from_config.worldwide.enabled, from_config.worldwide.metadata) == (True, "w/")
    with pytest.raises(SystemExit):       # extract has no metadata and no worldwide flag
        cli.build_parser().parse_args(["extract", "--worldwide"])


def test_worldwide_without_metadata_is_one_line_before_spark(tmp_path):
    p = run("match", "--worldwide", "--output", str(tmp_path / "o"))
    assert p.returncode == 2
    assert lines(p) == ["metaclip-spark: error: --worldwide needs the metadata folder: --metadata DIR "
                        "(worldwide.metadata, a folder of {lang}.json lists or a Parquet of (lang, entry))"]
    no_traceback(p)
    assert not (tmp_path / "o").exists()
    p = run("match", "--worldwide", "--metadata", str(tmp_path / "none"), "--output", str(tmp_path / "o"))
    assert p.returncode == 2 and len(lines(p)) == 1 and lines(p)[0].startswith("metaclip-spark: error: ")
    assert str(tmp_path / "none") in lines(p)[0]
    no_traceback(p)
    assert not (tmp_path / "o").exists()
