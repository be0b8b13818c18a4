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

try:  # fastest first (member by member on CC-sized files: zlib-ng 0.16 s, isal 0.19 s,
    # zlib 0.25 s CPU; bench/OPTIMISATIONS.md); all three have the same decompressobj interface
    from zlib_ng.zlib_ng import decompressobj as _decompressobj
except ImportError:  # pragma: no cover
    try:
        from isal.isal_zlib import decompressobj as _decompressobj
    except ImportError:
        from zlib import decompressobj as _decompressobj

from metaclip_spark.kernels.native import speedups

# the same dict for (printable-ASCII) headers, ~20x faster, and whole runs of well-formed
# one-record gzip members read in C (metaclip_spark/kernels/native.py)
_native_headers = speedups.warc_headers if speedups is not None else None
_native_records = speedups.gzip_records if speedups is not None else None

CHUNK = 1 << 20          # bytes read from the input at a time
STEP = 32 << 10          # compressed bytes fed to the decompressor at a time (doubles per member)
HEADER_MAX = 1 << 20     # a WARC header longer than this is junk
PREFIX = 64 << 10        # bytes kept of a block that is too large to materialise
DEFAULT_MAX_BLOCK = 64 << 20

_HDR_END = re.compile(rb"\r?\n\r?\n")
_GZIP_MAGIC = b"\x1f\x8b\x08"


class Record:
    """One WARC record. ``headers``: lower-case names -> values (first occurrence wins).
    ``block``: the record block (bytes), None when not requested; ``complete`` is False when
    only the first ``PREFIX`` bytes of an oversized block were kept. ``offset``: byte offset of
    the record's gzip member (of the record itself in an uncompressed file)."""

    __slots__ = ("offset", "type", "headers", "block", "complete")

    def __init__(self, offset: int, type: str, headers: dict, block: bytes | None, complete: bool = True):
        self.offset, self.type, self.headers, self.block, self.complete = offset, type, headers, block, complete

    def get(self, name: str, default=None):
        return self.headers.get(name, default)

    def __repr__(self) -> str:
        return "Record(%d, %r, %s)" % (self.offset, self.type, self.headers.get("warc-record-id"))


class _Truncated(Exception):
    pass


class _Corrupt(Exception):
    pass


class _Gzip:
    """The decompressed data of a multi-member gzip stream, one member at a time."""

    gzip = True

    def __init__(self, fh: BinaryIO, head: bytes):
        self.fh, self.data, self.mv, self.pos, self.base = fh, head, memoryview(head), 0, 0
        self.eof, self.done, self.d, self.offset, self.step = False, True, None, 0, STEP
        self.inflated = 0        # bytes inflated by read() (the members the C reader takes not counted)

    def _fill(self) -> bool:
        if self.eof:
            return False
        try:
            chunk = self.fh.read(CHUNK)
        except Exception as exc:  # a broken stream ends the input; what was read counts
            self.eof, self.read_error = True, exc
            return False
        if not chunk:
            self.eof = True
            return False
        self.base += self.pos
        self.data = self.data[self.pos:] + chunk
        self.mv, self.pos = memoryview(self.data), 0
        return True

    def next_unit(self):
        """Start the next member and return its offset; None at the end of the input.
        Raises _Corrupt when the bytes there are not a gzip header."""
        while len(self.data) - self.pos < 3 and self._fill():
            pass
        if self.pos >= len(self.data):
            return None
        if self.data[self.pos:self.pos + 3] != _GZIP_MAGIC:
            raise _Corrupt("no gzip header at offset %d" % (self.base + self.pos))
        self.d, self.offset, self.done, self.step = _decompressobj(31), self.base + self.pos, False, STEP
        return self.offset

    def read(self) -> bytes:
        """The next piece of the current member; b"" once the member is complete."""
        while not self.done:
            if self.pos >= len(self.data) and not self._fill():
                self.done = True
                raise _Truncated("input ends inside the gzip member at offset %d" % self.offset)
            chunk = self.mv[self.pos:self.pos + self.step]
            try:
                out = self.d.decompress(chunk)
            except Exception as exc:
                self.done = True
                raise _Corrupt("corrupt gzip member at offset %d: %s" % (self.offset, exc))
            if self.d.eof:
                self.pos += len(chunk) - len(self.d.unused_data)
                self.done = True
            else:
                self.pos += len(chunk)
                self.step = min(self.step * 2, CHUNK)
            if out:
                self.inflated += len(out)
                return out
        return b""

    def resync(self) -> bool:
        """Skip to the next gzip header after the current position."""
        start = self.pos + 1
        while True:
            i = self.data.find(_GZIP_MAGIC, start)
            if i >= 0:
                self.pos = i
                return True
            self.pos = max(self.pos, len(self.data) - 2)
            if not self._fill():
                self.pos = len(self.data)
                return False
            start = 0


class _Plain:
    """An uncompressed WARC: one unit spanning the whole file."""

    gzip = False

    def __init__(self, fh: BinaryIO, head: bytes, offset: int = 0):
        self.fh, self.head, self.started, self.done, self.offset = fh, head, False, False, offset

    def next_unit(self):
        if self.started:
            return None
        self.started = True
        return self.offset

    def read(self) -> bytes:
        if self.head:
            out, self.head = self.head, b""
            return out
        try:
            out = self.fh.read(CHUNK)
        except Exception as exc:
            self.read_error = exc
            out = b""
        if not out:
            self.done = True
        return out

    def resync(self) -> bool:
        return False


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


def _skip_junk(fh: BinaryIO, buf: bytes):
    """Find the start of a WARC whose first bytes ``buf`` are neither a gzip header nor a
    ``WARC/`` line: the first gzip header, or the first ``WARC/`` at a line start, whichever
    comes first. Returns (source, offset, blank) -- source positioned there, ``blank`` when
    only CR/LF came before -- or None when the input holds neither. Reads on as far as needed
    (junk between members is skipped the same way); keeps at most CHUNK + 5 bytes."""
    base, blank = 0, True
    while True:
        g = buf.find(_GZIP_MAGIC)
        w = buf.find(b"\nWARC/", 0, g + 5 if g >= 0 else len(buf))
        if g >= 0 or w >= 0:
            i = w + 1 if w >= 0 and (g < 0 or w < g) else g
            blank = blank and not buf[:i].strip(b"\r\n")
            if i == g:
                src = _Gzip(fh, buf[i:])
                src.base = base + i
                return src, base + i, blank
            return _Plain(fh, buf[i:], base + i), base + i, blank
        k = max(0, len(buf) - 5)                 # a header cut by the chunk end is found next time
        blank = blank and not buf[:k].strip(b"\r\n")
        more = fh.read(CHUNK)
        if not more:
            return None
        buf, base = buf[k:] + more, base + k


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


# ------------------------------------------------------------------ other readers (benchmarks)
def _adapt(name, make_items, stats, source, types, max_block) -> Iterator[Record]:
    """Records from the ``(offset, header pairs, read(n))`` triples of another library."""
    try:
        for offset, pairs, read in make_items():
            headers = {}
            for k, v in pairs:
                headers.setdefault(k.lower(), v)
            rtype = headers.get("warc-type", "").lower()
            block = read(max_block + 1) if types is None or rtype in types else None
            complete = block is None or len(block) <= max_block
            yield Record(offset, rtype, headers, block if complete else block[:PREFIX], complete)
    except Exception as exc:  # these readers stop at the first damage
        if stats is not None:
            stats.error(source, "reader_error", "%s: %s: %s" % (name, type(exc).__name__, exc))


def read_records_warcio(fh: BinaryIO, stats=None, source: str = "", types=None,
                        max_block: int = DEFAULT_MAX_BLOCK) -> Iterator[Record]:
    """Records via warcio's ArchiveIterator (no digest checks, no HTTP parsing)."""
    from warcio.archiveiterator import ArchiveIterator

    def items():
        it = ArchiveIterator(fh, no_record_parse=True)
        return ((it.offset, rec.rec_headers.headers, rec.raw_stream.read) for rec in it)

    return _adapt("warcio", items, stats, source, types, max_block)


def read_records_fastwarc(fh: BinaryIO, stats=None, source: str = "", types=None,
                          max_block: int = DEFAULT_MAX_BLOCK) -> Iterator[Record]:
    """Records via FastWARC's ArchiveIterator (no digest checks, no HTTP parsing)."""
    from fastwarc.warc import ArchiveIterator

    def items():
        return ((rec.stream_pos, rec.headers.items(), rec.reader.read) for rec in ArchiveIterator(fh, parse_http=False))

    return _adapt("fastwarc", items, stats, source, types, max_block)


READERS = {"native": read_records, "warcio": read_records_warcio, "fastwarc": read_records_fastwarc}
