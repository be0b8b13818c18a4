"""Driver progress lines (metaclip_spark/run/progress.py) and the CLI's -v / -q."""

import io
import re
import time

from metaclip_spark import cli
from metaclip_spark.run.progress import Progress, line

NOW = time.mktime((2026, 12, 6, 12, 4, 31, 0, 0, -1))


def test_line_formats_counts_rates_and_eta():
    assert line("match", 250, 4000, 1, 1_204_331, 30.0, now=NOW, note="chunk 3/40 committed") == (
        "match 12:04:31  chunk 3/40 committed | files 250/4000 (6.2%), 1 failed | 1,204,331 pairs, 40.1k pairs/s"
        " | ETA 7m30s")
    # reused files count as done but not toward the rate: 100 fresh files in 50 s, 800 to go
    assert line("match", 200, 1000, 0, 500, 50.0, done_at_start=100, now=NOW) == (
        "match 12:04:31  files 200/1000 (20.0%) | 500 pairs, 10 pairs/s | ETA 6m40s")
    assert line("extract", 0, 10, 0, 0, 5.0, now=NOW) == "extract 12:04:31  files 0/10 (0.0%) | 0 pairs, 0 pairs/s | ETA -"
    assert line("match", 10, 10, 2, 90_000, 7200.0, now=NOW) == (
        "match 12:04:31  files 10/10 (100.0%), 2 failed | 90,000 pairs, 12 pairs/s | done in 2h00m")


def test_progress_prints_on_chunks_and_on_its_clock():
    out, clock = io.StringIO(), [0.0]
    state = {"files": 0, "pairs": 0, "failed": 0}
    poll = lambda: (state["files"], state["pairs"], state["failed"])
    with Progress("match", 6, 0.05, poll, out=out, clock=lambda: clock[0]) as p:
        p.chunk(0, 3, 2, reused=True)                 # a chunk of an earlier run
        clock[0], state.update(files=2, pairs=400)
        p.chunk(1, 3, 2, reused=False)
        time.sleep(0.2)                                # the thread's lines in between
    lines = out.getvalue().splitlines()
    strip = lambda s: re.sub(r"^match \d\d:\d\d:\d\d ", "match T ", s)
    assert strip(lines[0]) == "match T  chunk 1/3 reused | files 2/6 (33.3%) | ETA -"
    assert strip(lines[1]) == "match T  chunk 2/3 committed | files 4/6 (66.7%) | ETA -"
    clock[0] = 0  # elapsed stays 0 in this test: no rates; the periodic lines repeat the state
    assert len(lines) >= 3 and all(strip(x) == "match T  files 4/6 (66.7%) | ETA -" for x in lines[2:])
    silent = io.StringIO()
    with Progress("match", 6, 0, poll, out=silent) as p:
        p.chunk(0, 3, 2, reused=False)
    assert silent.getvalue() == ""


def test_cli_prints_progress_by_default_and_not_with_q(spark, tmp_path, capsys):
    assert cli.main(["match", "-v", "--output", str(tmp_path / "a")]) == 0     # -v after the subcommand
    err = capsys.readouterr().err
    assert re.search(r"^match \d\d:\d\d:\d\d  chunk 1/1 committed \| files 2/2 \(100\.0%\) \| [\d,]+ pairs, "
                     r"[\d.k]+ pairs/s \| done in \d+s$", err, re.M), err
    assert cli.main(["match", "-q", "--output", str(tmp_path / "b")]) == 0
    assert not re.search(r"^match \d\d:\d\d:\d\d", capsys.readouterr().err, re.M)
    assert cli.main(["-q", "match", "--output", str(tmp_path / "c")]) == 0     # before it too
    assert not re.search(r"^match \d\d:\d\d:\d\d", capsys.readouterr().err, re.M)
