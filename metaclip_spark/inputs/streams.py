"""Streaming remote reads that survive throttling and broken connections.

:class:`ResumableStream` reads an object front to back through an ``opener(start)`` that
returns a raw stream from byte ``start``. Opening is retried on 503 / 5xx / 429, timeouts
and connection errors, with exponential backoff and jitter (never faster than one retry per
second per file, as CommonCrawl asks). A stream that breaks mid-file (connection reset,
timeout, a body shorter than announced) is reopened with an HTTP Range from the last byte
handed to the reader, so the consumer sees every byte exactly once: no record is lost or
emitted twice. If the object changed between requests (other ETag) the read fails.
Errors that retrying cannot fix (404, 403, wrong credentials) raise :class:`InputReadError`
at once with a message that holds no credentials.

Bounded time (:class:`RetryPolicy`, config ``input.*``): every connection attempt has a
connect timeout and every socket read a read timeout, so a silent server or an unreachable
host cannot block a read for long; reads take what has arrived (``read1``), so a trickling
server cannot hold one either. The stream keeps a clock of the time it spends waiting on
its source (connecting, reading, backing off; not the time the consumer spends on what was
read) and fails the input (:class:`InputReadError`, ``failure`` set) when:

- ``input_read_budget``: that time exceeds ``budget_seconds``;
- ``input_too_slow``: in a window of ``slow_window_seconds`` of waiting (back-off after
  throttling answers, 503/429/SlowDown, excluded) fewer than ``min_bytes_per_second`` bytes
  per second arrived: a trickling server, a silent one (each attempt ends in a read
  timeout), an unreachable host (connect timeouts, refusals and their back-off).

The openers of http(s):// and s3:// objects are in :mod:`metaclip_spark.inputs.openers`.
"""

from __future__ import annotations

import http.client
import io
import logging
import random
import socket
import time
from dataclasses import dataclass
from typing import Callable

from metaclip_spark.run.redact import scrub

RETRY_STATUS = frozenset((408, 429, 500, 502, 503, 504))

log = logging.getLogger("metaclip_spark.inputs.streams")


class InputReadError(OSError):
    """An input that cannot be read (after retries where retrying can help)."""


class Transient(Exception):
    """A failure worth retrying (throttling, 5xx, timeouts, resets, early end of body).
    ``throttled``: the server asked to slow down (503, 429, S3 SlowDown): its back-off does
    not count against the minimum throughput."""

    def __init__(self, message: str = "", throttled: bool = False):
        super().__init__(message)
        self.throttled = throttled


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8       # consecutive failed attempts per file before giving up
    base_seconds: float = 1.0   # first delay; delays double per attempt ...
    cap_seconds: float = 60.0   # ... up to this
    jitter: float = 0.5         # each delay is multiplied by a random factor in [1, 1 + jitter]
    # bounded time (config input.*, see the module doc); 0 turns a rule off
    connect_timeout: float = 10.0         # seconds per TCP/TLS connection attempt
    read_timeout: float = 60.0            # seconds a socket read may wait for data
    budget_seconds: float = 3600.0        # seconds of waiting on the source per input
    min_bytes_per_second: float = 4096.0  # ... averaged over each window of
    slow_window_seconds: float = 60.0     # ... this many seconds of waiting
    dns_attempts: int = 2       # attempts when the host name does not resolve (see the module doc)

    def delay(self, attempt: int, rng=random) -> float:
        """Delay before retry number ``attempt`` (0-based): >= base_seconds, jittered."""
        return min(self.cap_seconds, self.base_seconds * (2 ** attempt)) * (1.0 + self.jitter * rng.random())


DEFAULT_POLICY = RetryPolicy()
_TRANSIENT_ERRORS: tuple = (OSError, http.client.HTTPException, socket.timeout, Transient)
try:  # boto3's raw body is a urllib3 response; its errors are not OSErrors
    import urllib3.exceptions

    _TRANSIENT_ERRORS += (urllib3.exceptions.HTTPError,)
except ImportError:  # pragma: no cover
    pass
try:
    import botocore.exceptions as _bce

    _TRANSIENT_ERRORS += (_bce.ConnectionError, _bce.HTTPClientError, _bce.ResponseStreamingError)
except (ImportError, AttributeError):  # pragma: no cover
    pass


def is_name_resolution_error(exc: BaseException | None) -> bool:
    """True when ``exc`` is, or was caused by, a host name that did not resolve:
    ``socket.gaierror`` (urllib's URLError.reason, urllib3's NameResolutionError cause,
    botocore's EndpointConnectionError ``error``) or a :class:`Transient` marked ``dns``."""
    todo, seen = [exc], set()
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen or not isinstance(e, BaseException):
            continue
        seen.add(id(e))
        if isinstance(e, socket.gaierror) or getattr(e, "dns", False):
            return True
        if type(e).__name__ == "NameResolutionError":          # urllib3 >= 2
            return True
        kwargs = getattr(e, "kwargs", None)                     # botocore exceptions keep error=...
        todo += [e.__cause__, e.__context__, getattr(e, "reason", None),
                 kwargs.get("error") if isinstance(kwargs, dict) else None]
    return False


def log_retry(what: str, attempt: int, limit: int, exc: BaseException | str, delay: float) -> None:
    """One WARNING line per retry (credentials scrubbed): ``what`` is a URI or a short
    description of the request, ``attempt`` the 1-based attempt that failed."""
    err = exc if isinstance(exc, str) else _describe(exc)
    log.warning("%s: attempt %d/%d failed: %s; retrying in %s s", scrub(what), attempt, limit,
                scrub(" ".join(err.split())), "%.2f" % delay if delay < 1 else "%.1f" % delay)


class ResumableStream(io.RawIOBase):
    """A read-only stream of ``uri`` that retries and resumes; see the module doc.

    ``opener(start)`` returns ``(raw, total, etag)``: a stream positioned at byte ``start``
    (or at 0 when the server ignored the range: then ``raw.start`` is 0), the object's
    total size when known, and its ETag when known. It raises :class:`Transient` or a
    network error to be retried, :class:`InputReadError` to fail at once."""

    def __init__(self, uri: str, opener: Callable, policy: RetryPolicy = DEFAULT_POLICY,
                 sleep: Callable[[float], None] = time.sleep):
        super().__init__()
        self.uri, self._opener, self.policy, self._sleep = uri, opener, policy, sleep
        self.pos, self.total, self.etag = 0, None, None
        self.waited = 0.0                            # seconds spent waiting on the source
        self._window = (0.0, 0)                      # (self._slow_clock, self.pos) at the window start
        self._slow_clock = 0.0                       # self.waited without back-off after throttling
        self.retries, self.resumes = 0, 0
        self.failure: InputReadError | None = None   # set when the stream failed for good
        self.resume_points: list[int] = []           # byte positions the stream was reopened at
        self.name = uri
        self._raw = None
        self._connect(first=True)

    def readable(self) -> bool:
        return True

    def _fail(self, reason: str, detail: str) -> InputReadError:
        self.failure = InputReadError("%s: %s: %s (at byte %d)" % (scrub(self.uri), reason, detail, self.pos))
        self.failure.reason = reason
        return self.failure

    def _clock(self, seconds: float, throttled: bool = False) -> None:
        """Add ``seconds`` of waiting; raise (failing the input) when a time rule is broken."""
        p = self.policy
        self.waited += seconds
        if not throttled:
            self._slow_clock += seconds
        if p.budget_seconds and self.waited > p.budget_seconds:
            raise self._fail("input_read_budget", "%.1f s spent waiting on the source, over the budget of %g s "
                             "(input.read_budget_seconds)" % (self.waited, p.budget_seconds)) from None
        start, start_pos = self._window
        span = self._slow_clock - start
        if p.min_bytes_per_second and p.slow_window_seconds and span >= p.slow_window_seconds:
            got = self.pos - start_pos
            if got < p.min_bytes_per_second * span:
                raise self._fail("input_too_slow", "%d bytes in %.1f s of waiting, under the minimum of %g bytes/s "
                                 "(input.min_bytes_per_second over input.slow_window_seconds = %g s)"
                                 % (got, span, p.min_bytes_per_second, p.slow_window_seconds)) from None
            self._window = (self._slow_clock, self.pos)

    def _connect(self, first: bool = False) -> None:
        attempt = dns_failures = 0
        while True:
            t0, raw = time.monotonic(), None
            try:
                try:
                    raw, total, etag = self._opener(self.pos)
                    if first:
                        self.total, self.etag = total, etag
                    elif self.etag and etag and etag != self.etag:
                        raise InputReadError("%s changed while being read (ETag %s, then %s)"
                                             % (scrub(self.uri), self.etag, etag))
                    skip = self.pos - getattr(raw, "start", self.pos)
                    while skip > 0:                    # the server ignored the Range header
                        got = raw.read(min(skip, 1 << 20))
                        if not got:
                            raise Transient("body ended while skipping to byte %d" % self.pos)
                        skip -= len(got)
                finally:
                    self._clock(time.monotonic() - t0)     # may fail the input (time rules)
                self._raw = raw
                if not first:
                    self.resumes += 1
                return
            except InputReadError as exc:
                _close_quietly(raw)
                self.failure = exc
                raise
            except _TRANSIENT_ERRORS as exc:
                _close_quietly(raw)
                limit = self.policy.max_attempts
                if is_name_resolution_error(exc):       # not transient in practice: a short limit
                    dns_failures += 1
                    limit = min(limit, max(1, self.policy.dns_attempts))
                    if dns_failures >= limit:
                        self.failure = InputReadError("%s: host name not resolved, gave up after %d attempt(s): %s"
                                                      % (scrub(self.uri), dns_failures, scrub(_describe(exc))))
                        self.failure.reason = "input_dns"
                        raise self.failure from None
                if attempt + 1 >= self.policy.max_attempts:
                    self.failure = InputReadError("%s: gave up after %d attempts at byte %d: %s" % (
                        scrub(self.uri), attempt + 1, self.pos, scrub(_describe(exc))))
                    raise self.failure from None
                delay = self.policy.delay(attempt)
                if self.policy.budget_seconds:           # no back-off past the budget
                    delay = max(0.0, min(delay, self.policy.budget_seconds - self.waited + 0.001))
                log_retry("input %s%s" % (self.uri, " at byte %d" % self.pos if self.pos else ""),
                          dns_failures if is_name_resolution_error(exc) else attempt + 1, limit, exc, delay)
                self._sleep(delay)
                self._clock(delay, throttled=getattr(exc, "throttled", False))
                self.retries += 1
                attempt += 1

    def readinto(self, b) -> int:
        if not len(b):
            return 0
        while True:
            if self.total is not None and self.pos >= self.total:
                return 0
            t0, was_open = time.monotonic(), self._raw is not None
            try:
                if self._raw is None:
                    raise Transient("no open connection")
                read1 = getattr(self._raw, "read1", None)    # what has arrived: a trickle cannot block
                data = read1(len(b)) if read1 is not None else self._raw.read(len(b))
                if not data and self.total is not None and self.pos < self.total:
                    raise Transient("body ended at byte %d of %d" % (self.pos, self.total))
            except InputReadError:
                raise
            except _TRANSIENT_ERRORS as exc:
                self._close_raw()
                self._clock(time.monotonic() - t0)
                if was_open:
                    log.warning("input %s: read failed at byte %d: %s; reopening from that byte",
                                scrub(self.uri), self.pos, scrub(" ".join(_describe(exc).split())))
                self.resume_points.append(self.pos)
                self._connect()
                continue
            n = len(data)
            b[:n] = data
            self.pos += n
            self._clock(time.monotonic() - t0)
            return n

    def _close_raw(self) -> None:
        raw, self._raw = self._raw, None
        _close_quietly(raw)

    def close(self) -> None:
        self._close_raw()
        super().close()


def _close_quietly(raw) -> None:
    if raw is not None:
        try:
            raw.close()
        except Exception:
            pass


def _describe(exc: BaseException) -> str:
    return "%s: %s" % (type(exc).__name__, exc)
