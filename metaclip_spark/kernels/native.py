"""The optional compiled speed-ups (the extension metaclip_spark._speedups, sources in
metaclip_spark/kernels/csrc/), or None.

``pip install`` compiles them where a C compiler exists (setup.py marks the extension
optional, so an install without one still works). Every function there answers only what it
can prove equal to the Python code it shortcuts and returns ``NotImplemented`` otherwise; the
callers then run the Python path, which stays the reference (tests/test_native_*.py fuzz the
equality). ``METACLIP_NATIVE=0`` in the environment turns them off (A/B benchmarks)."""

from __future__ import annotations

import os

speedups = None
if os.environ.get("METACLIP_NATIVE", "1") != "0":
    try:
        from metaclip_spark import _speedups as speedups
    except ImportError:  # no compiler at install time, or a platform the build did not cover
        speedups = None

ENABLED = speedups is not None
