"""Splitting one bzip2 file across tasks at compressed-block boundaries.

A bzip2 file is one or more streams (``BZh`` + level digit, then blocks, then an
end-of-stream marker and the combined CRC). Every block starts with the 48-bit magic
0x314159265359 and the end-of-stream marker is 0x177245385090; both are *bit* aligned
(blocks are packed back to back with no padding). So a byte range of the file can be
turned into whole blocks without reading anything before it: find the magics at any
bit offset, cut the bits from one block magic to the next magic, and wrap them into a
stand-alone stream ``BZh9`` + block + end-of-stream marker + CRC, where the combined
CRC of a one-block stream is the block's own CRC (the 32 bits after its magic).
``BZh9`` declares the largest block size, which decompresses blocks of any level.

This is what makes single-stream Wikipedia dumps (``pages-articles1.xml-p...bz2``) as
splittable as multistream ones: task i takes the blocks whose magic starts inside its
byte range [start, end), and may read on past ``end`` to finish its last page.

A 48-bit magic can also occur by chance inside compressed data (about once per 30 TB);
the two pieces of such a block then fail to decompress and are reported as
``bad_block`` instead of crashing the task.
"""

from __future__ import annotations

import bz2
from typing import BinaryIO, Iterator

BLOCK_MAGIC = bytes.fromhex("314159265359")
EOS_MAGIC = bytes.fromhex("177245385090")
CHUNK = 4 << 20


def find_magics(data: bytes) -> list[tuple[int, bool]]:
    """Sorted ``(bit offset, is_block)`` of every block / end-of-stream magic that lies
    wholly inside ``data``."""
    nbits = len(data) * 8
    if nbits < 48:
        return []
    x = int.from_bytes(data, "big")
    mask = (1 << nbits) - 1
    found = []
    for k in range(8):
        shifted = data if k == 0 else ((x << k) & mask).to_bytes(len(data), "big")
        for magic, is_block in ((BLOCK_MAGIC, True), (EOS_MAGIC, False)):
            i = shifted.find(magic)
            while i >= 0:
                pos = 8 * i + k
                if pos + 48 <= nbits:
                    found.append((pos, is_block))
                i = shifted.find(magic, i + 1)
    found.sort()
    return found


def _bits(data: bytes, start: int, stop: int) -> int:
    """Bits [start, stop) of ``data`` as an integer."""
    b0, b1 = start // 8, (stop + 7) // 8
    x = int.from_bytes(data[b0:b1], "big")
    x >>= (b1 * 8 - stop)
    return x & ((1 << (stop - start)) - 1)


def block_stream(data: bytes, start: int, stop: int) -> bytes:
    """A stand-alone bzip2 stream holding the block at bits [start, stop) of ``data``."""
    nbits = stop - start
    crc = _bits(data, start + 48, start + 80)
    x = _bits(data, start, stop)
    x = (((x << 48) | int.from_bytes(EOS_MAGIC, "big")) << 32) | crc
    total = nbits + 80
    pad = -total % 8
    return b"BZh9" + (x << pad).to_bytes((total + pad) // 8, "big")


def iter_blocks(fh: BinaryIO, base: int = 0, chunk: int = CHUNK) -> Iterator[tuple[int, bytes | None]]:
    """Decompressed blocks read from ``fh`` (positioned at byte ``base`` of the file),
    as ``(absolute bit offset of the block magic, data)``; ``data`` is None for a block
    that does not decompress. A block cut off by the end of the file is not yielded."""
    buf = b""                    # unconsumed bytes; buf[0] is file byte `off`
    off = base
    scan_from = 0                # byte of buf where the next magic search starts
    last = -1                    # bit offset (in buf) of the last magic handled
    pending: int | None = None   # bit offset (in buf) of a block magic awaiting its end
    while True:
        data = fh.read(chunk)
        if not data:
            return
        buf += data
        for p, is_block in find_magics(buf[scan_from:]):
            pos = scan_from * 8 + p
            if pos <= last:
                continue
            last = pos
            if pending is not None:
                yield (off * 8 + pending, _decompress(block_stream(buf, pending, pos)))
                pending = None
            if is_block:
                pending = pos
        scan_from = max(0, len(buf) - 6)     # a magic may straddle the end of buf
        keep = scan_from if pending is None else min(pending // 8, scan_from)
        if keep:
            buf = buf[keep:]
            off += keep
            scan_from -= keep
            last -= keep * 8
            if pending is not None:
                pending -= keep * 8


def _decompress(stream: bytes) -> bytes | None:
    try:
        return bz2.decompress(stream)
    except (OSError, ValueError, EOFError):
        return None
