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
"""

from __future__ import annotations

import base64
import http.client
import io
import random
import re
import socket
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Callable

from .redact import scrub

RETRY_STATUS = frozenset((408, 429, 500, 502, 503, 504))


class InputReadError(OSError):
    """An input that cannot be read (after retries where retrying can help)."""


class Transient(Exception):
    """A failure worth retrying (throttling, 5xx, timeouts, resets, early end of body)."""


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8       # consecutive failed attempts per file before giving up
    base_seconds: float = 1.0   # first delay; delays double per attempt ...
    cap_seconds: float = 60.0   # ... up to this
    jitter: float = 0.5         # each delay is multiplied by a random factor in [1, 1 + jitter]

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
        self.retries, self.resumes = 0, 0
        self.failure: InputReadError | None = None   # set when the stream failed for good
        self.resume_points: list[int] = []           # byte positions the stream was reopened at
        self.name = uri
        self._raw = None
        self._connect(first=True)

    def readable(self) -> bool:
        return True

    def _connect(self, first: bool = False) -> None:
        attempt = 0
        while True:
            try:
                raw, total, etag = self._opener(self.pos)
                if first:
                    self.total, self.etag = total, etag
                elif self.etag and etag and etag != self.etag:
                    raw.close()
                    raise InputReadError("%s changed while being read (ETag %s, then %s)"
                                         % (scrub(self.uri), self.etag, etag))
                skip = self.pos - getattr(raw, "start", self.pos)
                while skip > 0:                    # the server ignored the Range header
                    got = raw.read(min(skip, 1 << 20))
                    if not got:
                        raise Transient("body ended while skipping to byte %d" % self.pos)
                    skip -= len(got)
                self._raw = raw
                if not first:
                    self.resumes += 1
                return
            except InputReadError as exc:
                self.failure = exc
                raise
            except _TRANSIENT_ERRORS as exc:
                if attempt + 1 >= self.policy.max_attempts:
                    self.failure = InputReadError("%s: gave up after %d attempts at byte %d: %s" % (
                        scrub(self.uri), attempt + 1, self.pos, scrub(_describe(exc))))
                    raise self.failure from None
                self._sleep(self.policy.delay(attempt))
                self.retries += 1
                attempt += 1

    def readinto(self, b) -> int:
        if not len(b):
            return 0
        while True:
            if self.total is not None and self.pos >= self.total:
                return 0
            try:
                if self._raw is None:
                    raise Transient("no open connection")
                data = self._raw.read(len(b))
                if not data and self.total is not None and self.pos < self.total:
                    raise Transient("body ended at byte %d of %d" % (self.pos, self.total))
            except InputReadError:
                raise
            except _TRANSIENT_ERRORS:
                self._close_raw()
                self.resume_points.append(self.pos)
                self._connect()
                continue
            n = len(data)
            b[:n] = data
            self.pos += n
            return n

    def _close_raw(self) -> None:
        raw, self._raw = self._raw, None
        if raw is not None:
            try:
                raw.close()
            except Exception:
                pass

    def close(self) -> None:
        self._close_raw()
        super().close()


def _describe(exc: BaseException) -> str:
    return "%s: %s" % (type(exc).__name__, exc)


_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


def _basic_auth(uri: str) -> tuple[str, str | None]:
    """(``uri`` without its userinfo, the Basic Authorization header of it or None):
    urllib would take ``user:password@host`` for a host name."""
    parts = urllib.parse.urlsplit(uri)
    if "@" not in parts.netloc:
        return uri, None
    userinfo, host = parts.netloc.rsplit("@", 1)
    user, _, password = userinfo.partition(":")
    token = base64.b64encode(("%s:%s" % (urllib.parse.unquote(user), urllib.parse.unquote(password))).encode())
    return urllib.parse.urlunsplit(parts._replace(netloc=host)), "Basic " + token.decode("ascii")


def https_opener(uri: str, timeout: float = 60.0) -> Callable:
    """An opener for :class:`ResumableStream` over http(s) with Range requests
    (``user:password@`` in the URL is sent as HTTP Basic authentication)."""
    url, auth = _basic_auth(uri)

    def open_at(start: int):
        headers = {"User-Agent": "metaclip-spark (https://github.com/facebookresearch/MetaCLIP)"}
        if auth:
            headers["Authorization"] = auth
        if start:
            headers["Range"] = "bytes=%d-" % start
        try:
            resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
        except urllib.error.HTTPError as exc:
            exc.close()
            if exc.code in RETRY_STATUS:
                raise Transient("HTTP %d %s" % (exc.code, exc.reason)) from None
            if exc.code == 416 and start:
                raise Transient("HTTP 416 at byte %d" % start) from None
            raise InputReadError("cannot read %s: HTTP %d %s" % (scrub(uri), exc.code, exc.reason)) from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, ssl.SSLCertVerificationError):   # retrying cannot fix it
                raise InputReadError("cannot read %s: %s" % (scrub(uri), exc.reason)) from None
            raise
        except ValueError as exc:
            raise InputReadError("cannot read %s: %s" % (scrub(uri), exc)) from None
        total, got_start = None, 0
        m = _CONTENT_RANGE.match(resp.headers.get("Content-Range", "") or "")
        if resp.status == 206 and m:
            got_start = int(m.group(1))
            total = int(m.group(3)) if m.group(3) != "*" else None
        elif resp.headers.get("Content-Length", "").isdigit():
            total = int(resp.headers["Content-Length"])
        resp.start = got_start
        return resp, total, resp.headers.get("ETag")

    return open_at


_AUTH_CODES = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "ExpiredToken",
               "InvalidToken", "AuthorizationHeaderMalformed", "403"}


def _auth_error(message: str) -> InputReadError:
    err = InputReadError(message)
    err.auth = True
    return err


def s3_error(uri: str, exc: BaseException) -> InputReadError | Transient:
    """A clear error for a failed S3 request (credentials never included)."""
    import botocore.exceptions as bce

    if isinstance(exc, bce.NoCredentialsError):
        return _auth_error(
            "cannot read %s: no AWS credentials found (CommonCrawl refuses unsigned S3 requests: configure "
            "the AWS credential chain, e.g. AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a profile, or read "
            "over https with --source https)" % scrub(uri))
    if isinstance(exc, bce.ClientError):
        err = exc.response.get("Error", {})
        code = str(err.get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if status in RETRY_STATUS or code in ("SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout"):
            return Transient("S3 %s (HTTP %s)" % (code, status))
        if code in _AUTH_CODES or status == 403:
            return _auth_error(
                "cannot read %s: S3 refused the credentials (%s, HTTP %s); check AWS_ACCESS_KEY_ID / "
                "AWS_SECRET_ACCESS_KEY (or the profile) and AWS_ENDPOINT_URL" % (scrub(uri), code, status))
        if code in ("NoSuchKey", "NoSuchBucket", "404") or status == 404:
            return InputReadError("cannot read %s: not found (%s)" % (scrub(uri), code))
        return InputReadError("cannot read %s: S3 error %s (HTTP %s)" % (scrub(uri), code, status))
    if isinstance(exc, _TRANSIENT_ERRORS):
        return Transient(scrub(_describe(exc)))
    return InputReadError("cannot read %s: %s" % (scrub(uri), scrub(_describe(exc))))


def s3_opener(uri: str, bucket: str, key: str, client_factory: Callable) -> Callable:
    """An opener for :class:`ResumableStream` over S3 GetObject with Range."""

    def open_at(start: int):
        kwargs = {"Bucket": bucket, "Key": key}
        if start:
            kwargs["Range"] = "bytes=%d-" % start
        try:
            resp = client_factory().get_object(**kwargs)
        except Exception as exc:
            raise s3_error(uri, exc) from None
        body = resp["Body"]
        raw = body._raw_stream if hasattr(body, "_raw_stream") else body
        total, got_start = None, 0
        m = _CONTENT_RANGE.match(resp.get("ContentRange") or "")
        if m:
            got_start, total = int(m.group(1)), (int(m.group(3)) if m.group(3) != "*" else None)
        elif resp.get("ContentLength") is not None:
            total = int(resp["ContentLength"])
        try:
            raw.start = got_start
        except AttributeError:
            raw = _Started(raw, got_start)
        return raw, total, resp.get("ETag")

    return open_at


class _Started:
    """A raw stream wrapper that carries the byte position it starts at."""

    def __init__(self, raw, start: int):
        self._raw, self.start = raw, start

    def read(self, n: int = -1) -> bytes:
        return self._raw.read(n)

    def close(self) -> None:
        self._raw.close()
