"""metaclip_spark.kernels.native: the compiled speed-ups are built where they can be, and can be turned off."""

import os
import shutil
import subprocess
import sys

import pytest

from metaclip_spark.kernels import native
from metaclip_spark.formats import warc
from metaclip_spark.formats import wat

needs_native = pytest.mark.skipif(not native.ENABLED, reason="metaclip_spark._speedups not built")


def test_speedups_are_built_here():
    """`pip install -e .` compiles the extension wherever a C compiler exists (this machine,
    CI); without one (or with METACLIP_NATIVE=0) the Python paths run alone."""
    if os.environ.get("METACLIP_NATIVE") == "0":
        assert not native.ENABLED and not wat.NATIVE
    elif shutil.which("cc") or shutil.which("gcc"):
        assert native.ENABLED, "the C extension metaclip_spark._speedups was not built"
        assert wat.NATIVE and warc._native_headers is not None
        assert all(native.get(name) is not None for name in native.KERNELS)
    else:
        pytest.skip("no C compiler on this machine")

@needs_native
def test_pure_python_switch():
    """METACLIP_NATIVE=0 turns every speed-up off (for A/B benchmarks)."""
    code = "from metaclip_spark.kernels import native; from metaclip_spark.formats import warc, wat; print(native.ENABLED, wat.NATIVE, warc._native_headers)"
    env = dict(os.environ, METACLIP_NATIVE="0")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False None"


@needs_native
def test_contains_is_bytes_in():
    import random

    rng = random.Random(5)
    contains = native.speedups.contains
    for _ in range(5000):
        hay = bytes(rng.choice(b"IMG@ab\x00") for _ in range(rng.randrange(12)))
        needle = bytes(rng.choice(b"IMG@ab\x00") for _ in range(rng.randrange(4)))
        assert contains(hay, needle) is (needle in hay), (hay, needle)
    assert contains(memoryview(b"xIMG@"), b"IMG@") is True
