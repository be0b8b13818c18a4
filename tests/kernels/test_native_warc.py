"""The compiled WARC header parser (warc_headers in metaclip_spark/kernels/csrc/warc_frame.c) against
warc._parse_header_py: equal wherever it answers, NotImplemented where Unicode rules apply; and
the whole reader with runs of gzip members read in C (gzip_records) against the Python one
(warc._unit_records member by member)."""

import glob
import gzip as gz
import io
import random
import zlib

import pytest

from metaclip_spark.kernels import native
from metaclip_spark.formats import warc
from metaclip_spark.run.stats import Stats
from tests.conftest import SHARED
from tests.formats.test_warc import NATIVE_READERS, set_sizes

pytestmark = pytest.mark.skipif(not native.ENABLED, reason="metaclip_spark._speedups not built")
headers = native.speedups.warc_headers if native.ENABLED else None


def check(raw: bytes) -> bool:
    got = headers(raw)
    if got is NotImplemented:
        return False
    want = warc._parse_header_py(raw)
    assert got == want and list(got) == list(want), raw
    return True


@pytest.mark.parametrize("raw,want", [
    (b"WARC/1.0\r\nWARC-Type: response\r\nContent-Length: 12\r\nwarc-type: request",
     {"warc-type": "response", "content-length": "12"}),                       # first one wins
    (b"WARC/1.0\nA:1\rB :  x y \t\r\n\r\n  C\t: z:w\r\nno colon here\r\n:empty name\r\nD:",
     {"a": "1", "b": "x y", "c": "z:w", "": "empty name", "d": ""}),           # LF, CR, CRLF
    (b"A: not parsed, first line\r\nB: b", {"b": "b"}),
    (b"", {}), (b"WARC/1.0", {}), (b"\r\nA: a", {"a": "a"}), (b"\n\r\nA: a", {"a": "a"}),
    (b"WARC/1.0\r\nMiXeD-CaSe: KeEp", {"mixed-case": "KeEp"}),
])
def test_headers(raw, want):
    assert headers(raw) == want == warc._parse_header_py(raw)


@pytest.mark.parametrize("raw", [
    b"WARC/1.0\r\nA: caf\xc3\xa9", b"WARC/1.0\r\nA: \xff", b"WARC/1.0\x0bA: a", b"WARC/1.0\r\nA:\x0c a",
    b"WARC/1.0\r\n\x1cA: a", b"WARC/1.0\r\nA: a\x1f", b"WARC/1.0\r\nA: a\x7f", b"WARC/1.0\r\nA: \x00",
])
def test_unicode_rules_go_to_python(raw):
    assert headers(raw) is NotImplemented
    assert warc._parse_header(raw) == warc._parse_header_py(raw)


def test_fuzzed_headers_equal():
    rng = random.Random(30)
    common = [b"WARC/1.0", b"\r\n", b"\r", b"\n", b":", b" ", b"\t", b"A", b"b", b"Content-Length", b"x-Y",
              b"1", b"<urn:uuid:1>", b"WARC-Type"]
    rare = [b"\xc3\xa9", b"\x0b", b"\x85", b"\x1d", b"\x7f", b"\x00", b"\xe2\x80\xa8"]
    answered = 0
    for _ in range(20000):
        raw = b"".join(rng.choice(rare if rng.random() < 0.02 else common) for _ in range(rng.randrange(30)))
        answered += check(raw)
    assert 8000 < answered < 20000


def test_real_headers_equal(monkeypatch):
    """Every header of the real WARC/WAT/WET samples, as the reader hands it over."""
    files = sorted(glob.glob(str(SHARED / "data" / "*" / "*.warc*.gz")))
    if not files:
        pytest.skip("shared data not available: %s" % (SHARED / "data"))
    seen = []

    def both(raw):
        seen.append(check(raw))
        return warc._parse_header_py(raw)

    monkeypatch.setattr(warc, "_native_headers", both)
    monkeypatch.setattr(warc, "_native_records", None)     # every header through _parse_header
    for f in files:
        with open(f, "rb") as fh:
            for _ in warc.read_records(fh, types=set()):
                pass
    assert (len(seen), sum(seen)) == (1017, 1017)            # all printable ASCII


# ------------------------------------------------------------------ whole reader, native vs Python
def read_all(data: bytes, native_on: bool, monkeypatch, types=None, chunk=None):
    """(records as tuples, stats errors) of read_records over data."""
    with monkeypatch.context() as m:
        if not native_on:
            for name in NATIVE_READERS:
                m.setattr(warc, name, None)
        if chunk:
            set_sizes(m, CHUNK=chunk)
        st = Stats()
        recs = [(r.offset, r.type, r.headers, r.block, r.complete)
                for r in warc.read_records(io.BytesIO(data), st, "x", types)]
        return recs, st.errors


def damaged(data: bytes, rng: random.Random, first: bytes) -> bytes:
    """One random kind of damage to a multi-member gzip WARC (first: a clean record)."""
    op = rng.randrange(8)
    i = rng.randrange(len(data))
    if op == 0:
        return data[:i]                                            # truncated
    if op == 1:
        return data[:i] + bytes([data[i] ^ (1 << rng.randrange(8))]) + data[i + 1:]   # a flipped bit
    if op == 2:
        j = data.find(b"\x1f\x8b\x08", i)
        return data if j < 0 else data[:j] + b"junk\r\n" + data[j:]  # junk between members
    if op == 3:                                                     # a member with two records
        return gz.compress(first * 2, mtime=0) + data
    if op == 4:                                                     # a member larger than STEP
        return gz.compress(b"WARC/1.0\r\nWARC-Type: resource\r\nContent-Length: 200000\r\n\r\n"
                           + rng.randbytes(200000) + b"\r\n\r\n", mtime=0) + data
    if op == 5:
        raw = first.replace(b"Content-Length: ", b"Content-Length: 1", 1)  # a lying Content-Length
        return gz.compress(raw, mtime=0) + data
    if op == 6:                                                     # junk before the first member
        return rng.choice([b"\n", b"\r\n", rng.randbytes(rng.randrange(1, 9000))]) + data
    j = data.find(b"\x1f\x8b\x08", i)                               # an empty member (gzip </dev/null)
    return data + gz.compress(b"", mtime=0) if j < 0 else data[:j] + gz.compress(b"", mtime=0) + data[j:]


def test_reader_native_equals_python_on_damaged_files(tmp_path, monkeypatch):
    from metaclip_spark.synth import make_corpus

    make_corpus(str(tmp_path), pages=40, seed=3)
    files = sorted(glob.glob(str(tmp_path / "*.gz")))
    rng = random.Random(99)
    clean = [open(f, "rb").read() for f in files]
    firsts = [zlib.decompressobj(31).decompress(data) for data in clean]   # each file's first member
    for data in clean:
        assert read_all(data, True, monkeypatch) == read_all(data, False, monkeypatch)
    empty = gz.compress(b"", mtime=0)
    warc0 = clean[[f.endswith(".warc.gz") for f in files].index(True)]
    n_recs0 = len(read_all(warc0, False, monkeypatch)[0])
    assert n_recs0 == 121
    for data, n_recs, kinds in ((b"\n" + warc0, n_recs0, ["leading_junk"]),
                                (b"junk" * 5000 + warc0, n_recs0, ["leading_junk"]),
                                (empty + warc0, n_recs0, []), (empty, 0, ["empty_gzip"]),
                                (b"<Error/>", 0, ["not_gzip"])):
        recs, errors = read_all(data, True, monkeypatch, chunk=4096)
        assert (recs, errors) == read_all(data, False, monkeypatch, chunk=4096)
        assert len(recs) == n_recs and [e["kind"] for e in errors] == kinds
    for n in range(200):
        k = rng.randrange(len(clean))
        data = clean[k]
        for _ in range(rng.randint(1, 2)):
            data = damaged(data, rng, firsts[k])
        types = rng.choice([None, {"metadata"}, {"response"}, set()])
        chunk = rng.choice([None, 4096, 1 << 16])
        assert read_all(data, True, monkeypatch, types, chunk) == read_all(data, False, monkeypatch, types, chunk), n
