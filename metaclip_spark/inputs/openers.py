"""The openers :class:`~metaclip_spark.inputs.streams.ResumableStream` reads through:
http(s) with Range requests (connect and read timeouts of their own, userinfo as Basic
authentication) and S3 GetObject with Range; their errors sorted into retryable
(:class:`~metaclip_spark.inputs.streams.Transient`) and final
(:class:`~metaclip_spark.inputs.streams.InputReadError`), never holding credentials."""

from __future__ import annotations

import base64
import http.client
import re
import ssl
import urllib.error
import urllib.parse
import urllib.request
from typing import Callable

from metaclip_spark.inputs.streams import (_TRANSIENT_ERRORS, RETRY_STATUS, InputReadError, Transient, _describe,
                                           is_name_resolution_error)
from metaclip_spark.run.redact import scrub

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


class _TimedHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection whose connect attempt and socket reads have their own timeouts
    (``timeout``: the connect timeout; ``read_timeout``: set on the socket once connected)."""

    def __init__(self, *args, read_timeout: float | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._read_timeout = read_timeout

    def connect(self):
        super().connect()
        if self._read_timeout:
            self.sock.settimeout(self._read_timeout)


class _TimedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, *args, read_timeout: float | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._read_timeout = read_timeout

    def connect(self):
        super().connect()                   # TCP connect and TLS handshake: the connect timeout
        if self._read_timeout:
            self.sock.settimeout(self._read_timeout)


class _TimedHTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, read_timeout: float):
        super().__init__()
        self._read_timeout = read_timeout

    def http_open(self, req):
        return self.do_open(_TimedHTTPConnection, req, read_timeout=self._read_timeout)


class _TimedHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, read_timeout: float):
        super().__init__()
        self._read_timeout = read_timeout

    def https_open(self, req):
        return self.do_open(_TimedHTTPSConnection, req, context=self._context, read_timeout=self._read_timeout)


def https_opener(uri: str, timeout: float = 60.0, connect_timeout: float | None = None) -> Callable:
    """An opener for :class:`ResumableStream` over http(s) with Range requests
    (``user:password@`` in the URL is sent as HTTP Basic authentication). ``timeout``: seconds
    a socket read may wait; ``connect_timeout``: seconds per connection attempt (default:
    ``timeout``)."""
    url, auth = _basic_auth(uri)
    opener = urllib.request.build_opener(_TimedHTTPHandler(timeout), _TimedHTTPSHandler(timeout))
    connect_timeout = connect_timeout or timeout

    def open_at(start: int):
        headers = {"User-Agent": "metaclip-spark (https://github.com/facebookresearch/MetaCLIP)"}
        if start:
            headers["Range"] = "bytes=%d-" % start
        try:
            req = urllib.request.Request(url, headers=headers)
            if auth:      # not sent on to a redirect's target (another host must not get the password)
                req.add_unredirected_header("Authorization", auth)
            resp = opener.open(req, timeout=connect_timeout)
        except urllib.error.HTTPError as exc:
            exc.close()
            if exc.code in RETRY_STATUS:
                raise Transient("HTTP %d %s" % (exc.code, exc.reason), throttled=exc.code in (429, 503)) from None
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
            return Transient("S3 %s (HTTP %s)" % (code, status),
                             throttled=status in (429, 503) or code in ("SlowDown", "ServiceUnavailable"))
        if code in _AUTH_CODES or status == 403:
            return _auth_error(
                "cannot read %s: S3 refused the credentials (%s, HTTP %s); check AWS_ACCESS_KEY_ID / "
                "AWS_SECRET_ACCESS_KEY (or the profile) and AWS_ENDPOINT_URL" % (scrub(uri), code, status))
        if code in ("NoSuchKey", "NoSuchBucket", "404") or status == 404:
            return InputReadError("cannot read %s: not found (%s)" % (scrub(uri), code))
        return InputReadError("cannot read %s: S3 error %s (HTTP %s)" % (scrub(uri), code, status))
    if isinstance(exc, _TRANSIENT_ERRORS):
        err = Transient(scrub(_describe(exc)))
        err.dns = is_name_resolution_error(exc)     # the cause is dropped (from None): keep what it was
        return err
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

    def read1(self, n: int = -1) -> bytes:
        read1 = getattr(self._raw, "read1", None)
        return read1(n) if read1 is not None else self._raw.read(n)

    def close(self) -> None:
        self._raw.close()
