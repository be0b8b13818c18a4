"""Two other WARC readers, to benchmark ours (:data:`metaclip_spark.formats.warc.READERS`):
warcio's and FastWARC's, both stopping at the first damage and failing on LF-only headers."""

from __future__ import annotations

from typing import BinaryIO, Iterator

from metaclip_spark.formats.warc_units import DEFAULT_MAX_BLOCK, PREFIX, Record


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
