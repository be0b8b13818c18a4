"""The stage runner without Spark: a fake ``run_chunk`` stands in for the Spark job of a stage.

The fake writes one small Parquet file per item (as a stage's tasks do) and returns the
chunk's RunTotals; the tests check what the runner does around it: plan, chunk commits,
resume, reset, verification of the chunk's files, stats/config/marker files and their order.
"""

import json
import os

import numpy as np
import pyarrow as pa
import pytest

from metaclip_spark.run import chunks, outputs, runfolder, runner
from metaclip_spark.run.config import ConfigError
from metaclip_spark.run.stats import Stats
from metaclip_spark.run.totals import RunTotals

N_ENTRIES = 5


class Killed(Exception):
    pass


class FakeSpark:
    """``run_chunk`` of a stage whose item ``k`` (an int) yields ``k + 1`` rows, counts entry
    ``k % N_ENTRIES`` ``k + 1`` times and fails when ``k`` is in ``failing``."""

    def __init__(self, out, failing=(), lie_about=()):
        self.out, self.failing, self.lie_about, self.calls = out, set(failing), set(lie_about), []

    def __call__(self, i, part):
        self.calls.append((i, list(part)))
        got = RunTotals(N_ENTRIES)
        for k in part:
            rows = k + 1
            if k in self.failing:
                got.files.append({"source": "item-%03d" % k, "output": None, "rows": 0, "failed": "boom",
                                  "seconds": 0.0})
                got.stats.add("failed")
                continue
            uri = os.path.join(self.out, "parts", "part-%03d.parquet" % k)
            outputs.write_table(uri, pa.table({"x": pa.array(np.arange(rows, dtype=np.int64))}))
            got.stats.add("rows", rows)
            got.add_counts([k % N_ENTRIES], [rows])
            got.files.append({"source": "item-%03d" % k, "output": uri,
                              "rows": rows + (1 if k in self.lie_about else 0), "failed": None, "seconds": 0.0})
        return got


def make_stage(out, fake, items=range(7), chunk_size=3, **over):
    def finish(totals, info):
        return {"stage": "demo", "rows": totals.stats["rows"], "counts": totals.dense_counts().tolist(),
                "files": len(totals.files), **info}

    kw = dict(name="demo", output=str(out), plan={"stage": "demo", "items": list(items), "chunk_size": chunk_size},
              items=list(items), chunk_size=chunk_size, run_chunk=fake, finish=finish,
              config_json='{"conf": 1}', n_entries=N_ENTRIES, temp_dirs=("parts",))
    kw.update(over)
    return runner.Stage(**kw)


def test_a_full_run_writes_plan_chunks_stats_config_and_marker_last(tmp_path):
    out = tmp_path / "run"
    fake = FakeSpark(str(out))
    order = []
    real_write = outputs.write_text

    def spy(uri, text):
        order.append(os.path.relpath(uri, out))
        return real_write(uri, text)

    outputs.write_text = spy
    try:
        summary = runner.run(make_stage(out, fake))
    finally:
        outputs.write_text = real_write
    assert fake.calls == [(0, [0, 1, 2]), (1, [3, 4, 5]), (2, [6])]
    # rows 1..7, entry k % 5 gets k + 1
    assert summary == {"stage": "demo", "rows": 28, "counts": [1 + 6, 2 + 7, 3, 4, 5], "files": 7,
                       "chunks": 3, "chunks_reused": 0, "chunk_size": 3}
    assert json.loads((out / "stats" / "demo.json").read_text()) == summary
    files = json.loads((out / "stats" / "demo-files.json").read_text())
    assert [f["output"] for f in files] == ["parts/part-%03d.parquet" % k for k in range(7)]   # relative
    assert (out / "config-demo.json").read_text() == '{"conf": 1}'
    assert json.loads((out / "chunks/demo/plan.json").read_text()) == {"stage": "demo", "items": list(range(7)),
                                                                      "chunk_size": 3}
    assert order[0] == runfolder.MARKER and order[-1] == "_SUCCESS"
    assert order[1:] == ["chunks/demo/plan.json",
                         "chunks/demo/chunk-00000/totals.json", "chunks/demo/chunk-00000/_SUCCESS",
                         "chunks/demo/chunk-00001/totals.json", "chunks/demo/chunk-00001/_SUCCESS",
                         "chunks/demo/chunk-00002/totals.json", "chunks/demo/chunk-00002/_SUCCESS",
                         "stats/demo.json", "stats/demo-files.json", "config-demo.json", "_SUCCESS"]
    assert not (out / runfolder.LOCK).exists()                   # released


def test_killed_run_resumes_only_the_chunks_not_committed(tmp_path):
    full = runner.run(make_stage(tmp_path / "full", FakeSpark(str(tmp_path / "full"))))
    out = tmp_path / "part"
    fake = FakeSpark(str(out))

    def kill_after_first(i):
        if i == 0:
            raise Killed()

    with pytest.raises(Killed):
        runner.run(make_stage(out, fake, after_chunk=kill_after_first))
    assert (out / "chunks/demo/chunk-00000/_SUCCESS").exists() and not (out / "_SUCCESS").exists()
    assert not (out / runfolder.LOCK).exists()
    (out / "parts" / ".tmp-0123456789ab-part-004.parquet").write_bytes(b"half-written")   # a killed task's
    fake.calls.clear()
    resumed = runner.run(make_stage(out, fake))
    assert fake.calls == [(1, [3, 4, 5]), (2, [6])]
    assert resumed == {**full, "chunks_reused": 1}
    assert not (out / "parts" / ".tmp-0123456789ab-part-004.parquet").exists()
    for name in os.listdir(tmp_path / "full" / "parts"):
        assert (out / "parts" / name).read_bytes() == (tmp_path / "full" / "parts" / name).read_bytes()
    # a finished run resumed again reuses everything
    fake.calls.clear()
    assert runner.run(make_stage(out, fake))["chunks_reused"] == 3 and fake.calls == []


def test_another_plan_is_refused_and_overwrite_resets(tmp_path):
    out = tmp_path / "run"
    fake = FakeSpark(str(out))
    resets = []
    with pytest.raises(Killed):
        runner.run(make_stage(out, fake, after_chunk=lambda i: (_ for _ in ()).throw(Killed()),
                              reset=lambda: resets.append(1)))
    assert resets == [1]                                         # a new run (no plan yet) starts clean
    with pytest.raises(ConfigError, match=r"unfinished demo run with other chunk_size"):
        runner.run(make_stage(out, fake, chunk_size=2))
    fake.calls.clear()
    got = runner.run(make_stage(out, fake, chunk_size=2, overwrite=True, reset=lambda: resets.append(2)))
    assert resets == [1, 2]
    assert [i for i, _ in fake.calls] == [0, 1, 2, 3] and got["chunks_reused"] == 0 and got["chunks"] == 4
    assert sorted(os.listdir(out / "chunks" / "demo")) == ["chunk-%05d" % i for i in range(4)] + ["plan.json"]


def test_a_chunk_whose_files_are_not_as_reported_is_not_committed(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(runfolder.OutputMissing, match=r"1 output file\(s\).*parts/part-004.parquet: 5 rows, "
                                                      r"task reported 6"):
        runner.run(make_stage(out, FakeSpark(str(out), lie_about={4})))
    assert (out / "chunks/demo/chunk-00000/_SUCCESS").exists()
    assert not (out / "chunks/demo/chunk-00001").exists() and not (out / "_SUCCESS").exists()


def test_committed_chunks_with_failed_items_are_redone_and_check_runs_before_the_marker(tmp_path):
    out = tmp_path / "run"

    def check(summary):
        if summary["files"] != summary["rows_files"]:
            raise RuntimeError("too many failed")

    def finish(totals, info):
        return {"files": len(totals.files), "rows_files": sum(1 for f in totals.files if f["output"]), **info}

    with pytest.raises(RuntimeError, match="too many failed"):
        runner.run(make_stage(out, FakeSpark(str(out), failing={4}), finish=finish, check=check))
    assert (out / "stats" / "demo.json").exists() and not (out / "_SUCCESS").exists()   # stats say what failed
    fake = FakeSpark(str(out))
    got = runner.run(make_stage(out, fake, finish=finish, check=check))
    assert fake.calls == [(1, [3, 4, 5])]                        # only the chunk with the failed item
    assert got["files"] == got["rows_files"] == 7 and (out / "_SUCCESS").exists()


def test_clean_chunk_runs_before_a_chunk_is_computed_and_the_marker_name_is_the_stages(tmp_path):
    out = tmp_path / "run"
    cleaned = []
    runner.run(make_stage(out, FakeSpark(str(out)), clean_chunk=lambda i, part: cleaned.append((i, part)),
                          success="curated/_SUCCESS", files_manifest=False))
    assert cleaned == [(0, [0, 1, 2]), (1, [3, 4, 5]), (2, [6])]
    assert (out / "curated" / "_SUCCESS").exists() and not (out / "_SUCCESS").exists()
    assert not (out / "stats" / "demo-files.json").exists()


def test_chunk_totals_round_trip_exactly(tmp_path):
    out = str(tmp_path)
    runner.run(make_stage(tmp_path, FakeSpark(out)))
    t = chunks.load(out, "demo", 1, N_ENTRIES)
    assert t.stats.counts == Stats({"rows": 4 + 5 + 6}).counts
    assert t.dense_counts().tolist() == [6, 0, 0, 4, 5]


def test_summary_lines():
    lines = runner.summary_lines({"stage": "balance", "t": 3.0, "curated_rows": 9, "files": [], "other": 1}, "/o/")
    assert lines == ['{\n  "stage": "balance",\n  "t": 3.0,\n  "curated_rows": 9\n}',
                     "output: /o/ (stats in /o/stats/)",
                     "curated set: /o/curated/ (img2dataset --input_format parquet --url_col url --caption_col text)"]
    assert runner.config_name("match") == "config-match.json"
