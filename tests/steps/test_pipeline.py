"""The stage-1 steps: the Language step's per-file memo gives exactly the per-batch result
(real lid.176 model); pair batches are cut exactly."""

import numpy as np

from metaclip_spark.metadata import defaults
from metaclip_spark.steps import extract, language, pipeline
from metaclip_spark.steps.extract import Page
from metaclip_spark.steps.language import Language, LanguageId

TEXTS = ["a red car on the road", "logo", "image", "Ein rotes Auto", "logo", "un coche rojo",
         "a red car on the road", "image", "chat noir sur le toit", "logo"]


def test_lid_memo_equals_per_batch(monkeypatch):
    lid = LanguageId(defaults.default_lid_model_path(), 0.5)
    step = Language(lid)
    sizes = []
    monkeypatch.setattr(language, "MEMO_MAX", 4)      # 6 distinct texts: the memo is cleared
    for batch in (TEXTS[:4], TEXTS[4:], TEXTS, TEXTS[::-1]):
        want_labels, want_scores = Language(lid).predict(batch)
        labels, scores = step.predict(batch)
        assert labels == want_labels
        assert scores.dtype == np.float32 and scores.tolist() == want_scores.tolist()
        assert len(step.memo) <= max(4, len(set(batch)))
        sizes.append(len(step.memo))
    assert sizes == [4, 5, 6, 6]
    assert step.predict(TEXTS)[0][:4] == ["en", "en", "en", "de"]


def test_pair_batches_cut_exactly_and_keep_columns_aligned():
    pages = [Page("f", "p%d" % i, "r%d" % i, 100 * i, [("u%d-%d" % (i, j), "t%d-%d" % (i, j), None)
                                                    for j in range(i % 4 + 1)])
             for i in range(10)]
    flat = [(p.source, p.page_url, p.record_id, p.record_offset, u, t) for p in pages for u, t, _ in p.pairs]
    assert len(flat) == 23
    for n in (1, 3, 7, 23, 100):
        batches = list(extract.pair_batches(iter(pages), n))
        assert [len(b["url"]) for b in batches] == [n] * (23 // n) + ([23 % n] if 23 % n else [])
        got = [row for b in batches
               for row in zip(b["source"], b["page_url"], b["record_id"], b["record_offset"], b["url"], b["text"])]
        assert got == flat
    assert list(extract.pair_batches(iter([]), 5)) == []


def test_inputs_without_any_record_are_failed_inputs(tmp_path):
    """Issue #13: a file that yields no record at all (empty, not gzip/WARC, an empty gzip) is
    listed in failed_inputs with its damage; one with leading junk is read in full."""
    import gzip

    from metaclip_spark.steps.extract import ExtractLimits
    from metaclip_spark.run.totals import RunTotals

    sample = (defaults.sample_dir() / "SYNTH-1-00000.warc.gz").read_bytes()
    inputs = {"clean.warc.gz": sample, "junk.warc.gz": b"\n" + sample, "empty.warc.gz": b"",
              "s3-error.warc.gz": b'<?xml version="1.0"?><Error><Code>AccessDenied</Code></Error>',
              "empty-gzip.warc.gz": gzip.compress(b"", mtime=0)}
    lid = LanguageId(defaults.default_lid_model_path(), 0.5)
    totals, results = RunTotals(1), {}
    for name, data in inputs.items():
        (tmp_path / name).write_bytes(data)
        results[name] = r = pipeline.extract_file(str(tmp_path / name), str(tmp_path / "out"), lid, ExtractLimits())
        totals.add_file(r)
    assert [(f["source"].rsplit("/", 1)[-1], f["error"]) for f in totals.failed_inputs()] == [
        ("empty-gzip.warc.gz", "no WARC record read: empty_gzip: the gzip data holds no WARC record "
                               "(it inflates to 0 bytes)"),
        ("empty.warc.gz", "no WARC record read: empty_file: the input holds no bytes"),
        ("s3-error.warc.gz", "no WARC record read: not_gzip: neither gzip nor WARC; starts with b'<?xml'")]
    assert totals.stats["inputs"] == 5 and totals.stats["inputs_failed"] == 3
    assert {k: totals.stats["errors." + k] for k in ("empty_gzip", "empty_file", "not_gzip", "leading_junk")} == \
        {"empty_gzip": 1, "empty_file": 1, "not_gzip": 1, "leading_junk": 1}
    clean, junk = results["clean.warc.gz"], results["junk.warc.gz"]
    assert clean.failed is None and junk.failed is None and junk.rows == clean.rows == 171
    assert junk.stats["records_read"] == clean.stats["records_read"] == 91
    assert {k: v for k, v in junk.stats.counts.items() if k != "errors.leading_junk"} == dict(clean.stats.counts)
