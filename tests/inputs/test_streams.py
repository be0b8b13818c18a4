"""ResumableStream (inputs/streams.py) through the http(s) opener (inputs/openers.py),
against a real local server (tests/servers.py): the byte offsets it resumes at over several
resets, an object that changes between requests, a server that ignores Range, and the clock
of the retry policy (what counts as waiting, back-off capped by the budget, throttling
excluded from the throughput rule).

test_faults.py covers single faults end to end (503s, one reset, the time rules against
trickling, silent and unreachable servers, stage 1); this file pins the stream's own
bookkeeping. Back-off sleeps are recorded instead of slept, so the clock is exact."""

import io
import os
import random
import time

import pytest

from metaclip_spark.inputs.openers import https_opener
from metaclip_spark.inputs.streams import InputReadError, ResumableStream, RetryPolicy, Transient
from tests.servers import FaultServer

DATA = random.Random(15).randbytes(300_000)
PATH = "/obj.bin"
FAST = RetryPolicy(base_seconds=0.01, jitter=0, max_attempts=6)


@pytest.fixture
def server(tmp_path):
    (tmp_path / PATH[1:]).write_bytes(DATA)
    srv = FaultServer(root=str(tmp_path))
    srv.folder = tmp_path
    yield srv
    srv.stop()


def open_stream(server, policy=FAST, wrap=None):
    """(buffered reader, raw stream, the back-off delays asked for)."""
    sleeps = []
    opener = https_opener(server.url + PATH, 5.0, 5.0)
    raw = ResumableStream(server.url + PATH, wrap(opener) if wrap else opener, policy, sleep=sleeps.append)
    return io.BufferedReader(raw), raw, sleeps


def with_resets(server, plan):
    """An opener wrapper that makes the server reset each of the next responses after the
    planned number of body bytes."""
    plan = list(plan)

    def wrap(opener):
        def open_at(start):
            if plan:
                server.reset_after[PATH] = plan.pop(0)
            return opener(start)
        return open_at
    return wrap


def test_each_resume_asks_for_the_first_byte_not_handed_over(server):
    plan = (40_000, 70_000, 100_000)                 # body bytes sent before each reset
    fh, raw, sleeps = open_stream(server, wrap=with_resets(server, plan))
    with fh:
        assert fh.read() == DATA                     # every byte once, in order
    assert raw.total == len(DATA) == raw.pos and raw.etag
    assert raw.resumes == 3 and raw.retries == 0 and sleeps == []   # a resume is no retry: no back-off
    points = raw.resume_points
    assert len(points) == 3 and points == sorted(points)
    start = 0
    for at, n in zip(points, plan):                  # response k runs from the last point and sends n bytes:
        assert start <= at <= start + n              # a reset may lose what was in flight, never more
        start = at
    log = server.requests_for(PATH)
    assert [r[3] for r in log] == ["reset", "reset", "reset", 206 if points[-1] else 200]
    assert [r[2] for r in log] == [None] + [("bytes=%d-" % at if at else None) for at in points]


def test_resume_points_are_exact_when_the_consumer_reads_in_pieces(server):
    """The consumer's own reads decide nothing: the stream resumes from what it handed over."""
    fh, raw, _ = open_stream(server, wrap=with_resets(server, (100_000,)))
    got = bytearray()
    with raw:
        while True:
            piece = raw.read(7_919)                  # RawIOBase.read -> readinto
            if not piece:
                break
            got += piece
            assert raw.pos == len(got)
    assert bytes(got) == DATA and raw.resumes == 1
    assert server.requests_for(PATH)[1][2] == ("bytes=%d-" % raw.resume_points[0] if raw.resume_points[0] else None)


def test_object_changed_between_requests_fails_at_once(server):
    """Another ETag on the resumed request: the bytes would not belong to one object."""
    calls = []

    def wrap(opener):
        def open_at(start):
            calls.append(start)
            if len(calls) == 1:
                server.reset_after[PATH] = 50_000
            else:                                    # the object is rewritten before the resume
                full = server.folder / PATH[1:]
                st = os.stat(full)
                os.utime(full, ns=(st.st_atime_ns, st.st_mtime_ns + 10 ** 9))
            return opener(start)
        return open_at

    fh, raw, sleeps = open_stream(server, wrap=wrap)
    with pytest.raises(InputReadError, match=r"obj\.bin changed while being read \(ETag \"\w+\", then \"\w+\"\)") as err:
        fh.read()
    assert raw.failure is err.value and len(calls) == 2 and sleeps == []      # not retried
    assert len(server.requests_for(PATH)) == 2


def test_server_ignoring_range_is_skipped_to_the_position(server):
    """A server that answers every request from byte 0 (200, no Content-Range): the stream
    reads and drops the bytes it already handed over."""
    def wrap(opener):
        inner = with_resets(server, (120_000,))(opener)
        return lambda start: inner(0)
    fh, raw, _ = open_stream(server, wrap=wrap)
    with fh:
        assert fh.read() == DATA
    assert raw.resumes == 1
    assert [r[2:] for r in server.requests_for(PATH)] == [(None, "reset"), (None, 200)]


# ------------------------------------------------------------------ the policy's clock
def test_back_off_stops_at_the_budget(server):
    """Always 503: delays 10 s, then only what is left of the 25 s budget (not 20 s); the
    input fails once the waiting passes the budget, after two requests."""
    server.fail_first[PATH] = 100
    policy = RetryPolicy(base_seconds=10, jitter=0, max_attempts=100, budget_seconds=25, min_bytes_per_second=0)
    sleeps = []
    with pytest.raises(InputReadError, match=r": input_read_budget: 25\.0 s spent waiting on the source, over the "
                                             r"budget of 25 s \(input.read_budget_seconds\) \(at byte 0\)") as err:
        ResumableStream(server.url + PATH, https_opener(server.url + PATH, 5.0, 5.0), policy, sleep=sleeps.append)
    assert err.value.reason == "input_read_budget"
    assert sleeps[0] == 10.0 and 14.5 < sleeps[1] <= 15.001 and len(sleeps) == 2
    assert [r[3] for r in server.requests_for(PATH)] == [503, 503]


def test_throttled_back_off_is_not_counted_as_slowness_other_failures_are(server):
    """The same four failures and 3 s back-offs under a 1000 bytes/s over 5 s rule: after
    503 Slow Down (throttled) the stream waits and reads the whole object; after a failure
    that is no throttling (here an HTTP 500 answer) the window of waiting fills with no byte
    and the input fails as too slow after the second back-off."""
    policy = RetryPolicy(base_seconds=3, cap_seconds=3, jitter=0, max_attempts=10, budget_seconds=0,
                         min_bytes_per_second=1000, slow_window_seconds=5)
    server.fail_first[PATH] = 4
    fh, raw, sleeps = open_stream(server, policy)
    with fh:
        assert fh.read() == DATA
    assert sleeps == [3.0] * 4 and raw.retries == 4 and raw.waited >= 12.0

    def failing(opener):
        left = [4]

        def open_at(start):
            if left[0]:
                left[0] -= 1
                raise Transient("HTTP 500 Internal Server Error")       # throttled=False
            return opener(start)
        return open_at

    with pytest.raises(InputReadError, match=r": input_too_slow: 0 bytes in [\d.]+ s of waiting, under the minimum "
                                             r"of 1000 bytes/s") as err:
        open_stream(server, policy, wrap=failing)
    assert err.value.reason == "input_too_slow"


def test_time_the_consumer_spends_is_not_waiting(server):
    fh, raw, _ = open_stream(server, RetryPolicy(budget_seconds=0.5, min_bytes_per_second=0))
    with fh:
        first = fh.read(1000)
        time.sleep(0.8)                              # longer than the whole budget
        rest = fh.read()
    assert first + rest == DATA and raw.failure is None
    assert raw.waited < 0.5


def test_policy_delays():
    p = RetryPolicy(base_seconds=2, cap_seconds=10, jitter=0.5)

    class Fixed:
        def __init__(self, u):
            self.u = u

        def random(self):
            return self.u
    assert [p.delay(i, Fixed(0.0)) for i in range(5)] == [2, 4, 8, 10, 10]
    assert [p.delay(i, Fixed(1.0)) for i in range(5)] == [3, 6, 12, 15, 15]
