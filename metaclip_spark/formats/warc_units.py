"""The units a WARC is read in, for :mod:`metaclip_spark.formats.warc`: the members of a
(multi-member) gzip stream, inflated one at a time, or the whole of an uncompressed file;
finding where the first one starts behind junk; and the :class:`Record` the readers yield.
"""

from __future__ import annotations

from typing import BinaryIO

try:  # fastest first (member by member on CC-sized files: zlib-ng 0.16 s, isal 0.19 s,
    # zlib 0.25 s CPU; bench/OPTIMISATIONS.md); all three have the same decompressobj interface
    from zlib_ng.zlib_ng import decompressobj as _decompressobj
except ImportError:  # pragma: no cover
    try:
        from isal.isal_zlib import decompressobj as _decompressobj
    except ImportError:
        from zlib import decompressobj as _decompressobj

CHUNK = 1 << 20          # bytes read from the input at a time
STEP = 32 << 10          # compressed bytes fed to the decompressor at a time (doubles per member)
PREFIX = 64 << 10        # bytes kept of a block that is too large to materialise
DEFAULT_MAX_BLOCK = 64 << 20

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
