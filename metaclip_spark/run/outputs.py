"""Writing outputs (local folders, s3://, gs://) through pyarrow filesystems.

Tasks write their own Parquet files under deterministic names, so a retried or
speculative task rewrites the same bytes and the output layout never depends on
Spark's partitioning. Local files are written to a temporary name and renamed on
commit; object stores make an object visible only when its upload completes.
"""

from __future__ import annotations

import os
import uuid
from typing import Iterable

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

PARQUET_OPTIONS = dict(compression="zstd", use_dictionary=True, write_statistics=True)

# Columns of (nearly) unique long strings: a dictionary never pays off for them and their
# min/max statistics prune nothing; skipping both cuts stage-2 write CPU ~8% (same bytes
# to within 1%; bench/OPTIMISATIONS.md). Other columns keep PARQUET_OPTIONS.
NO_DICTIONARY = frozenset(("url",))
NO_STATISTICS = frozenset(("url", "text", "page_url", "record_id"))


def parquet_options(schema: pa.Schema) -> dict:
    """ParquetWriter keyword arguments for ``schema``: PARQUET_OPTIONS, with dictionary
    encoding and statistics left out for the columns named above."""
    opts = dict(PARQUET_OPTIONS)
    names = schema.names
    if opts.get("use_dictionary") is True and NO_DICTIONARY.intersection(names):
        opts["use_dictionary"] = _leaf_paths(schema, NO_DICTIONARY)
    if opts.get("write_statistics") is True and NO_STATISTICS.intersection(names):
        opts["write_statistics"] = _leaf_paths(schema, NO_STATISTICS)
    return opts


def _leaf_paths(schema: pa.Schema, skip: frozenset) -> list[str]:
    """Parquet column paths of every field not in ``skip`` (list fields: ``name.list.element``)."""
    out = []
    for f in schema:
        if f.name in skip:
            continue
        if pa.types.is_list(f.type) or pa.types.is_large_list(f.type):
            out.append(f.name + ".list.element")
        else:
            out.append(f.name)
    return out


def resolve(uri: str) -> tuple[pafs.FileSystem, str]:
    """(filesystem, path) for a local path or URI."""
    if "://" not in uri:
        return pafs.LocalFileSystem(), os.path.abspath(uri)
    return pafs.FileSystem.from_uri(uri)


def join(uri: str, *parts: str) -> str:
    out = uri.rstrip("/")
    for p in parts:
        out += "/" + p.strip("/")
    return out


def is_local(fs: pafs.FileSystem) -> bool:
    return isinstance(fs, pafs.LocalFileSystem)


def _temp_name(path: str) -> str:
    """A hidden sibling name (skipped by readers that ignore dot files) for atomic renames."""
    parent, base = path.rsplit("/", 1)
    return "%s/.tmp-%s-%s" % (parent, uuid.uuid4().hex[:12], base)


def makedirs(uri: str) -> None:
    fs, path = resolve(uri)
    fs.create_dir(path, recursive=True)


def exists(uri: str) -> bool:
    fs, path = resolve(uri)
    return fs.get_file_info(path).type != pafs.FileType.NotFound


def write_bytes(uri: str, data: bytes) -> None:
    fs, path = resolve(uri)
    parent = path.rsplit("/", 1)[0]
    fs.create_dir(parent, recursive=True)
    target = _temp_name(path) if is_local(fs) else path
    with fs.open_output_stream(target) as out:
        out.write(data)
    if target != path:
        fs.move(target, path)


def write_text(uri: str, text: str) -> None:
    write_bytes(uri, text.encode("utf-8"))


def read_text(uri: str) -> str:
    fs, path = resolve(uri)
    with fs.open_input_stream(path) as fh:
        return fh.read().decode("utf-8")


def list_files(uri: str, suffix: str = "") -> list[str]:
    """Files directly inside folder ``uri`` whose name ends with ``suffix``, sorted (as URIs)."""
    fs, path = resolve(uri)
    if fs.get_file_info(path).type == pafs.FileType.NotFound:
        return []
    infos = fs.get_file_info(pafs.FileSelector(path, recursive=False))
    names = sorted(i.base_name for i in infos
                   if i.type == pafs.FileType.File and i.base_name.endswith(suffix)
                   and not i.base_name.startswith((".", "_")))
    return [join(uri, n) for n in names]


def delete_dir(uri: str) -> None:
    fs, path = resolve(uri)
    if fs.get_file_info(path).type != pafs.FileType.NotFound:
        fs.delete_dir(path)


class ParquetSink:
    """One Parquet file written batch by batch, made visible only on ``commit``.

    Batches are buffered into row groups of ``row_group_size`` rows (callers write small
    batches: stage 1 one per LID batch, stage 2 the kept rows of each read batch), so
    readers get a few large row groups instead of many small ones (bench/OPTIMISATIONS.md)."""

    def __init__(self, uri: str, schema: pa.Schema, row_group_size: int = 64 * 1024):
        self.uri = uri
        self.schema = schema
        self.rows = 0
        self._fs, self._path = resolve(uri)
        self._fs.create_dir(self._path.rsplit("/", 1)[0], recursive=True)
        self._target = _temp_name(self._path) if is_local(self._fs) else self._path
        self._stream = self._fs.open_output_stream(self._target)
        self._writer = pq.ParquetWriter(self._stream, schema, **parquet_options(schema))
        self._row_group_size = row_group_size
        self._pending: list[pa.Table] = []
        self._pending_rows = 0

    def write(self, batch: pa.RecordBatch | pa.Table) -> None:
        if batch.num_rows:
            table = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
            if not table.schema.equals(self.schema, check_metadata=False):
                raise ValueError("Table schema does not match schema used to create file: "
                                 "\ntable:\n%s vs. \nfile:\n%s" % (table.schema, self.schema))
            self._pending.append(table)
            self._pending_rows += table.num_rows
            self.rows += table.num_rows
            if self._pending_rows >= self._row_group_size:
                self._flush(final=False)

    def _flush(self, final: bool) -> None:
        if not self._pending:
            return
        table = pa.concat_tables(self._pending) if len(self._pending) > 1 else self._pending[0]
        n = table.num_rows if final else table.num_rows - table.num_rows % self._row_group_size
        if n:
            self._writer.write_table(table.slice(0, n), row_group_size=self._row_group_size)
        rest = table.slice(n)
        self._pending = [rest] if rest.num_rows else []
        self._pending_rows = rest.num_rows

    def commit(self) -> None:
        self._flush(final=True)
        self._writer.close()
        self._stream.close()
        if self._target != self._path:
            self._fs.move(self._target, self._path)

    def abort(self) -> None:
        self._pending, self._pending_rows = [], 0
        try:
            self._writer.close()
            self._stream.close()
        finally:
            if is_local(self._fs) and self._fs.get_file_info(self._target).type != pafs.FileType.NotFound:
                self._fs.delete_file(self._target)


def write_table(uri: str, table: pa.Table) -> None:
    sink = ParquetSink(uri, table.schema)
    sink.write(table)
    sink.commit()


def read_tables(uris: Iterable[str], columns: list[str] | None = None) -> pa.Table:
    tables = []
    for uri in uris:
        fs, path = resolve(uri)
        tables.append(pq.read_table(path, filesystem=fs, columns=columns))
    return pa.concat_tables(tables) if tables else None
