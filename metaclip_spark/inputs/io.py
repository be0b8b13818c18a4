"""Reading inputs from local paths, s3:// (boto3) and http(s)://, and listing them.

Everything streams: ``open_binary`` returns a file-like object that is read front to
back; nothing loads a whole input into memory. S3 uses the standard boto3
configuration (credential chain, ``AWS_ENDPOINT_URL``, region), so the same code
reads AWS, SeaweedFS or MinIO.
"""

from __future__ import annotations

import fnmatch
import glob
import gzip
import io
import logging
import os
import posixpath
import threading
from typing import BinaryIO, Iterable
from urllib.parse import urlsplit, urlunsplit

from metaclip_spark.run.redact import scrub, scrub_uri
from metaclip_spark.inputs.openers import https_opener, s3_error, s3_opener
from metaclip_spark.inputs.streams import (DEFAULT_POLICY, InputReadError, ResumableStream, RetryPolicy,
                                           is_name_resolution_error, log_retry)

log = logging.getLogger("metaclip_spark.inputs.io")

CC_HTTPS_ROOT = "https://data.commoncrawl.org/"
CC_S3_ROOT = "s3://commoncrawl/"

# File names that are WARC/WAT inputs, and names that are lists of paths.
INPUT_PATTERNS = ("*.warc", "*.warc.gz", "*.wat", "*.wat.gz", "*.arc.gz")
PATHS_LIST_PATTERNS = ("*.paths", "*.paths.gz", "*.txt", "*.txt.gz", "*.lst", "*.lst.gz")


class InputError(ValueError):
    """An input specification that cannot be resolved (raised on the driver, before Spark)."""


__all__ = ["InputError", "InputReadError", "RetryPolicy", "open_binary", "read_bytes", "expand_inputs",
           "read_paths_list", "list_s3_prefix", "s3_client", "peek_is_gzip", "scheme"]


def scheme(uri: str) -> str:
    s = urlsplit(uri).scheme.lower()
    return s if s in ("s3", "s3a", "s3n", "http", "https", "gs", "file") else ""


def _split_s3(uri: str) -> tuple[str, str]:
    parts = urlsplit(uri)
    return parts.netloc, parts.path.lstrip("/")


_local = threading.local()


def s3_client(connect_timeout: float = 20, read_timeout: float = 60):
    """One boto3 S3 client per thread and timeouts (boto3 clients are not fork-safe to share)."""
    clients = getattr(_local, "s3", None)
    if clients is None:
        clients = _local.s3 = {}
    client = clients.get((connect_timeout, read_timeout))
    if client is None:
        import boto3
        from botocore.config import Config

        client = boto3.session.Session().client(
            "s3", config=Config(retries={"mode": "adaptive", "max_attempts": S3_MAX_ATTEMPTS},
                                connect_timeout=connect_timeout, read_timeout=read_timeout))
        _log_s3_retries(client)
        clients[(connect_timeout, read_timeout)] = client
    return client


S3_MAX_ATTEMPTS = 10        # botocore's own attempts per request (adaptive mode: client-side rate limiting)


def _log_s3_retries(client, max_attempts: int = S3_MAX_ATTEMPTS,
                    dns_attempts: int = DEFAULT_POLICY.dns_attempts) -> None:
    """Make botocore's own retries visible and stop them early for unresolvable hosts.

    botocore retries every request itself (up to ``max_attempts``, silently: it logs at
    DEBUG). Its standard retry handler is replaced by a wrapper around a fresh one (same
    policy) that logs each retry as one WARNING line (operation, bucket/key, attempt, error,
    wait; credentials scrubbed) and refuses a retry after ``dns_attempts`` attempts whose
    error is a host name that does not resolve. This covers every S3 request of the
    project: task reads, and the driver's prefix listings and credential probe. Should a
    botocore version lay this out differently, the client keeps its own handler."""
    try:
        from botocore.retries import standard

        events = client.meta.events
        service = client.meta.service_model.service_id.hyphenize()
        unique = "retry-config-%s" % service
        events.unregister("needs-retry.%s" % service, unique_id=unique)
        handler = standard.register_retry_handler(client, max_attempts=max_attempts)
        events.unregister("needs-retry.%s" % service, unique_id=unique)
    except Exception as exc:  # noqa: BLE001 - logging retries must never break a client
        log.debug("S3 retry logging not installed: %s", exc)
        return

    def needs_retry(attempts=1, caught_exception=None, response=None, request_dict=None, operation=None, **kw):
        dns = caught_exception is not None and is_name_resolution_error(caught_exception)
        if dns and attempts >= dns_attempts:
            return None                          # botocore raises the error now
        delay = handler.needs_retry(attempts=attempts, caught_exception=caught_exception, response=response,
                                    request_dict=request_dict, operation=operation, **kw)
        if delay:
            url = (request_dict or {}).get("url", "")
            what = "S3 %s %s" % (getattr(operation, "name", "request"), url.split("?", 1)[0])
            if caught_exception is not None:
                err = caught_exception
            else:
                meta = (response[1] if response else {}) or {}
                err = "HTTP %s %s" % (meta.get("ResponseMetadata", {}).get("HTTPStatusCode", "?"),
                                      meta.get("Error", {}).get("Code", ""))
            log_retry(what, attempts, dns_attempts if dns else max_attempts, err, float(delay))
        return delay

    events.register("needs-retry.%s" % service, needs_retry, unique_id=unique)


def open_binary(uri: str, policy: RetryPolicy = DEFAULT_POLICY) -> BinaryIO:
    """Open ``uri`` for streaming binary reads. s3:// and http(s):// streams retry with
    backoff and resume by byte range (see :mod:`metaclip_spark.inputs.streams`); errors that
    retrying cannot fix raise :class:`InputReadError` with a clear, credential-free message.
    ``policy`` also bounds their time: connect and read timeouts, a budget of waiting per
    input and a minimum throughput (config ``input.*``); local files are not bounded."""
    s = scheme(uri)
    if s in ("s3", "s3a", "s3n"):
        bucket, key = _split_s3(uri)
        if not bucket or not key:
            raise InputError("not an s3 object URI: %s" % scrub(uri))
        timeouts = (policy.connect_timeout or 20, policy.read_timeout or 60)
        return io.BufferedReader(ResumableStream(uri, s3_opener(uri, bucket, key, lambda: s3_client(*timeouts)),
                                                 policy), buffer_size=1 << 20)
    if s in ("http", "https"):
        opener = https_opener(uri, policy.read_timeout or None, policy.connect_timeout or None)
        return io.BufferedReader(ResumableStream(uri, opener, policy), buffer_size=1 << 20)
    if s == "file":
        return open(urlsplit(uri).path, "rb")
    if s == "gs":
        raise InputError("gs:// inputs are not supported for reading WARC/WAT files: %s" % uri)
    return open(uri, "rb")


def probe(uri: str) -> None:
    """Check on the driver that an s3 input is readable with the configured credentials
    (HEAD request); raises InputError with a clear message when the credentials are
    missing or refused. Other failures are left to the task (it lists the input as failed)."""
    if scheme(uri) in ("s3", "s3a", "s3n"):
        bucket, key = _split_s3(uri)
        try:
            s3_client().head_object(Bucket=bucket, Key=key)
        except Exception as exc:
            err = s3_error(uri, exc)
            if getattr(err, "auth", False):
                raise InputError(str(err)) from None


def read_bytes(uri: str) -> bytes:
    """Read a small file (metadata, paths list, config) whole."""
    try:
        with open_binary(uri) as fh:
            return fh.read()
    except InputReadError as exc:
        raise InputError(str(exc)) from None


def _matches(name: str, patterns: Iterable[str]) -> bool:
    base = name.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatch(base, p) for p in patterns)


def is_paths_list(uri: str) -> bool:
    """By the file name (of a URL: its path, so ``lists/wat.paths?X-Amz-Signature=...`` is one)."""
    name = urlsplit(uri).path if "://" in uri else uri
    return _matches(name, PATHS_LIST_PATTERNS) and not _matches(name, INPUT_PATTERNS)


REMOTE_SCHEMES = ("s3", "s3a", "s3n", "http", "https", "gs")


def read_paths_list(uri: str, root: str | None = None) -> list[str]:
    """Lines of a paths list (plain or gzip). CommonCrawl-relative lines (``crawl-data/...``)
    are prefixed with ``root`` (default: the https mirror); other relative lines are taken
    relative to the list's own folder. Paths are normalised (``..`` resolved): a
    ``crawl-data/`` line that leaves ``crawl-data/`` is refused, and a list read from a
    remote location (https, s3) may name only remote files: a local path in it (absolute,
    ``file://``) is refused (InputError naming the entry, credentials scrubbed)."""
    data = read_bytes(uri)
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    remote = scheme(uri) in REMOTE_SCHEMES
    if "://" in uri:              # the list's folder, without its query (a signature is per object)
        parts = urlsplit(uri)
        base = urlunsplit(parts._replace(path=parts.path.rsplit("/", 1)[0] + "/", query="", fragment=""))
    else:
        base = uri.rsplit("/", 1)[0] + "/" if "/" in uri else ""
    out = []
    for n, raw in enumerate(data.decode("utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        s = scheme(line)
        if s == "file" or (not s and line.startswith("/")):
            if remote:
                raise InputError("paths list %s, line %d: %s is a local path; a list read from %s may only "
                                 "name remote files" % (scrub_uri(uri), n, scrub_uri(line), scheme(uri)))
            out.append(line if s else posixpath.normpath(line))
        elif s:
            out.append(_normalised(line))
        elif line.startswith("crawl-data/"):
            rel = posixpath.normpath(line)
            if not rel.startswith("crawl-data/"):
                raise InputError("paths list %s, line %d: %s leaves crawl-data/" % (scrub_uri(uri), n, line))
            out.append((root or CC_HTTPS_ROOT) + rel)
        else:
            out.append(_normalised(base + line) if remote or scheme(base) else posixpath.normpath(base + line))
    return out


def _normalised(uri: str) -> str:
    """``uri`` with ``.``/``..`` segments of its path resolved (query and the rest untouched)."""
    parts = urlsplit(uri)
    if not parts.path or not any(seg in (".", "..") for seg in parts.path.split("/")):
        return uri
    path = posixpath.normpath(parts.path)
    if parts.path.endswith("/") and not path.endswith("/"):
        path += "/"
    return urlunsplit(parts._replace(path=path if path.startswith("/") else "/" + path))


def list_s3_prefix(uri: str) -> list[str]:
    """Input files under an s3 prefix (listed with the same client and credentials as reads)."""
    bucket, prefix = _split_s3(uri)
    out = []
    try:
        for page in s3_client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                if _matches(obj["Key"], INPUT_PATTERNS):
                    out.append("s3://%s/%s" % (bucket, obj["Key"]))
    except Exception as exc:
        raise InputError(str(s3_error(uri, exc))) from None
    if not out:
        raise InputError("no input files under %s" % scrub(uri))
    return sorted(out)


def expand_inputs(specs: Iterable[str], cc_root: str | None = None) -> list[str]:
    """Resolve files, globs, directories, s3 prefixes and paths lists into input URIs.

    Order is kept per spec (lists in their own order, globs/directories sorted), and
    duplicates are removed, first occurrence first (URIs that differ only in credentials,
    ``scrub_uri``, are the same input). Paths lists: see :func:`read_paths_list`."""
    out: list[str] = []
    for spec in specs:
        spec = spec.strip()
        if not spec:
            continue
        s = scheme(spec)
        if is_paths_list(spec):
            out.extend(read_paths_list(spec, cc_root))
        elif s in ("s3", "s3a", "s3n") and spec.endswith("/"):
            out.extend(list_s3_prefix(spec))
        elif s:
            out.append(spec)
        elif os.path.isdir(spec):
            found = []
            for dirpath, _, files in os.walk(spec):
                found.extend(os.path.join(dirpath, f) for f in files if _matches(f, INPUT_PATTERNS))
            out.extend(sorted(os.path.abspath(f) for f in found))
        elif glob.has_magic(spec):
            hits = sorted(os.path.abspath(p) for p in glob.glob(spec) if os.path.isfile(p))
            if not hits:
                raise InputError("no input matches %r" % spec)
            out.extend(hits)
        elif os.path.isfile(spec):
            out.append(os.path.abspath(spec))
        else:
            raise InputError("input not found: %r" % spec)
    seen, unique = set(), []
    for u in out:                  # by stored name: one output file per name (pipeline.part_name)
        key = scrub_uri(u)
        if key not in seen:
            seen.add(key)
            unique.append(u)
    return unique


def peek_is_gzip(fh: BinaryIO) -> tuple[bool, BinaryIO]:
    """Tell whether a stream starts with the gzip magic, returning a stream that still
    yields those first bytes."""
    head = fh.read(2)
    return head == b"\x1f\x8b", Prepend(head, fh)


class Prepend(io.RawIOBase):
    """``head`` (bytes already read from ``fh``) followed by the rest of ``fh``."""

    def __init__(self, head: bytes, fh: BinaryIO):
        self._head, self._fh = head, fh

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        if self._head:
            n = min(len(b), len(self._head))
            b[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._fh.read(len(b))
        b[:len(data)] = data
        return len(data)

    def close(self) -> None:
        try:
            self._fh.close()
        finally:
            super().close()
