"""WARC record readers: gzip member by member, robust to damaged inputs.

A reader is ``reader(fh, stats=None, source="", types=None, max_block=...)`` yielding
:class:`Record` objects in file order; only records whose WARC-Type is in ``types`` (all
when None) get their block, the others come with ``block=None`` (for counting).
``READERS`` holds three interchangeable ones, to benchmark: ours (default), warcio's and
FastWARC's (both stop at the first damage and fail on LF-only headers).

Ours inflates one gzip member at a time (zlib-ng, else isal, else zlib) and takes the member
boundary as the truth of CommonCrawl-style files (one record per member): a record whose
Content-Length is too long is cut at its member end, one whose Content-Length is too short
is extended to it (both ``errors.bad_content_length``), so no lie swallows the next record.
It also reads uncompressed WARCs and members holding several records (or a whole file).
Damage is counted with ``stats.error(source, kind, message)``, never raised:
``empty_file``; ``not_gzip`` (neither gzip nor WARC anywhere in the input, e.g. an S3 error
XML); ``leading_junk`` (bytes before the first gzip member or ``WARC/`` line: skipped to it,
the records from there on kept); ``empty_gzip`` (gzip data that holds no record and no damage,
e.g. the 20 bytes of ``gzip -c </dev/null``); ``truncated_gzip`` (the input ends inside a
member: its record is dropped, every complete record before it kept); ``bad_gzip``
(corrupt deflate data or junk between members: skipped to the next gzip header);
``truncated_record`` (an uncompressed file ends inside a record); ``bad_record`` (bytes
that are no WARC record: skipped to the next ``WARC/`` line or member); ``read_error`` (the
stream failed, e.g. a connection reset; what came before counts).
"""

from __future__ import annotations

import re
from typing import BinaryIO, Iterator

from metaclip_spark.formats.warc_bench import read_records_fastwarc, read_records_warcio
from metaclip_spark.formats.warc_units import (CHUNK, DEFAULT_MAX_BLOCK, PREFIX, STEP, Record, _Corrupt, _Gzip,
                                               _Plain, _skip_junk, _Truncated, _decompressobj)
from metaclip_spark.kernels import native

# the same dict for (printable-ASCII) headers, ~20x faster, and whole runs of well-formed
# one-record gzip members read in C (metaclip_spark/kernels/native.py)
_native_headers = native.get("warc_headers")
_native_records = native.get("gzip_records")

HEADER_MAX = 1 << 20     # a WARC header longer than this is junk

_HDR_END = re.compile(rb"\r?\n\r?\n")


def _parse_header(raw: bytes) -> dict:
    if _native_headers is not None:
        got = _native_headers(raw)
        if got is not NotImplemented:
            return got
    return _parse_header_py(raw)


def _parse_header_py(raw: bytes) -> dict:
    headers = {}
    for line in raw.decode("utf-8", "replace").splitlines()[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers.setdefault(name.strip().lower(), value.strip())
    return headers

def _header_end(buf: bytes, p: int):
    """(end of the header lines, start of the block) of the header at ``p``, or None."""
    i = buf.find(b"\r\n\r\n", p, p + HEADER_MAX)
    if i >= 0 and buf.find(b"\n\n", p, i) < 0:           # the common case, without a regex
        return i, i + 4
    m = _HDR_END.search(buf, p, p + HEADER_MAX)             # LF-only or mixed line ends
    return (m.start(), m.end()) if m is not None else None


def _strip_trailer(block: bytes) -> bytes:
    return block[:-4] if block.endswith(b"\r\n\r\n") else block.rstrip(b"\r\n")


def read_records(fh: BinaryIO, stats=None, source: str = "", types=None,
                 max_block: int = DEFAULT_MAX_BLOCK) -> Iterator[Record]:
    """Yield the records of a (multi-member gzip or plain) WARC stream; see the module doc."""
    n_errors = 0

    def error(kind, msg):
        nonlocal n_errors
        n_errors += 1
        if stats is not None:
            stats.error(source, kind, msg)

    head = b""
    try:
        while len(head) < 5:
            more = fh.read(5 - len(head))
            if not more:
                break
            head += more
    except Exception as exc:
        error("read_error", "%s: %r" % (type(exc).__name__, exc))
        return
    if not head:
        error("empty_file", "the input holds no bytes")
        return
    if head[:2] == b"\x1f\x8b":
        src = _Gzip(fh, head)
    elif head.strip() and b"WARC/".startswith(head.lstrip()[:5]):
        src = _Plain(fh, head)
    else:
        try:
            found = _skip_junk(fh, head)
        except Exception as exc:
            error("read_error", "%s: %r" % (type(exc).__name__, exc))
            return
        if found is None:
            error("not_gzip", "neither gzip nor WARC; starts with %r" % head)
            return
        src, start, blank = found
        if not (blank and not src.gzip):         # blank lines before a plain WARC's first record are no damage
            error("leading_junk", "%d bytes before the first %s, starting with %r"
                  % (start, "gzip member" if src.gzip else "WARC/ line", head[:start]))
    gz = src.gzip
    batch = _native_records if gz else None
    n_records = 0
    while True:
        if batch is not None:                    # runs of well-formed members, in C
            items, pos = batch(src.data, src.pos, _decompressobj, STEP, types)
            if items:
                base, src.pos = src.base, pos
                n_records += len(items)
                for off, rtype, headers, block in items:
                    yield Record(base + off, rtype, headers, block, True)
                continue
        try:
            off = src.next_unit()
        except _Corrupt as exc:
            error("bad_gzip", str(exc))
            if not src.resync():
                break
            continue
        if off is None:
            break
        try:
            for rec in _unit_records(src, gz, types, max_block, error):
                n_records += 1
                yield rec
        except _Truncated as exc:
            error("truncated_gzip", str(exc))
            break
        except _Corrupt as exc:
            error("bad_gzip", str(exc))
            if not src.resync():
                break
    exc = getattr(src, "read_error", None)
    if exc is not None:
        error("read_error", "%s: %r" % (type(exc).__name__, exc))
    if gz and not n_records and not n_errors:    # whole, undamaged gzip members without a record
        error("empty_gzip", "the gzip data holds no WARC record (it inflates to %d bytes)" % src.inflated)


def _unit_records(src, gz, types, max_block, error) -> Iterator[Record]:
    """Records of one gzip member (or of a whole uncompressed file)."""
    buf, base, p = src.read(), src.offset, 0     # base: unit offset of buf[0] (uncompressed files)
    done = src.done
    while True:
        if p > CHUNK:                            # drop what was parsed, amortised
            buf, base, p = buf[p:], base + p, 0
        while True:                              # skip the CRLFs between records
            n = len(buf)
            while p < n and buf[p] in (13, 10):
                p += 1
            if p < n or done:
                break
            buf += src.read()
            done = src.done
        if p >= len(buf):
            return
        m = _header_end(buf, p)
        while m is None and not done and len(buf) - p < HEADER_MAX:
            buf += src.read()
            done = src.done
            m = _header_end(buf, p)
        headers = _parse_header(buf[p:m[0]]) if m is not None and buf.startswith(b"WARC/", p) else None
        length = headers.get("content-length", "") if headers is not None else ""
        if headers is None or not length.isdigit():
            error("bad_record", "no WARC record at %s %d" % ("member" if gz else "offset", src.offset if gz else base + p))
            i = buf.find(b"\nWARC/", p + 1)
            if i >= 0:
                p = i + 1
                continue
            if done:
                return
            k = max(p, len(buf) - 6)
            buf, base, p = buf[k:] + src.read(), base + k, 0
            done = src.done
            continue
        rtype = headers.get("warc-type", "").lower()
        offset = src.offset if gz else base + p
        want = types is None or rtype in types
        bstart = m[1]
        bend = bstart + int(length)
        if len(buf) < bend and not done and (bend - bstart > max_block or not want and bend - len(buf) > CHUNK):
            # too large to materialise: keep a prefix of the block, skip the rest
            while len(buf) < bstart + PREFIX and not done:
                buf += src.read()
                done = src.done
            block = buf[bstart:bstart + PREFIX] if want else None
            end, rec_end = base + len(buf), base + bend          # unit offsets
            buf, p = b"", 0
            while end < rec_end and not done:
                piece = src.read()
                done = src.done
                if end + len(piece) > rec_end:                  # the next record starts in piece
                    buf, p = piece, rec_end - end
                end += len(piece)
            base = end - len(buf)
            if end < rec_end:
                if not gz:
                    error("truncated_record", "input ends inside the record at offset %d" % offset)
                    return
                error("bad_content_length", "record at member %d declares %s bytes, the member ends %d short"
                      % (offset, length, rec_end - end))
            yield Record(offset, rtype, headers, block, False)
            continue
        # a record is complete once its member is (gzip trailer checked) or once the next
        # record of the same member has begun; in an uncompressed file, at its end
        while not done and (len(buf) < bend + 4 or gz and not buf[bend:bend + 4096].lstrip(b"\r\n")):
            buf += src.read()
            done = src.done
        if len(buf) < bend:                      # the unit ends before the declared end
            if not gz:
                error("truncated_record", "input ends inside the record at offset %d" % offset)
                return
            error("bad_content_length", "record at member %d declares %s bytes, the member holds %d"
                  % (offset, length, len(buf) - bstart))
            block, p = _strip_trailer(buf[bstart:]), len(buf)
        else:
            block, p = buf[bstart:bend], bend
            if gz and done:                      # the member is the truth: what follows the block?
                tail = buf[bend:bend + 64].lstrip(b"\r\n")
                if tail and not tail.startswith(b"WARC/"):
                    error("bad_content_length", "record at member %d declares %s bytes, the member holds %d"
                          % (offset, length, len(_strip_trailer(buf[bstart:]))))
                    block, p = _strip_trailer(buf[bstart:]), len(buf)
        yield Record(offset, rtype, headers, block if want else None, True)


READERS = {"native": read_records, "warcio": read_records_warcio, "fastwarc": read_records_fastwarc}
