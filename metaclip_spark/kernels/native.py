"""The optional compiled speed-ups (the extension metaclip_spark._speedups, sources in
metaclip_spark/kernels/csrc/), bound here and only here.

``pip install`` compiles them where a C compiler exists (setup.py marks the extension
optional, so an install without one still works). Every function there answers only what it
can prove equal to the Python code it shortcuts and returns ``NotImplemented`` otherwise; the
callers then run the Python path, which stays the reference (the equality tests listed in
:data:`KERNELS` fuzz it). ``METACLIP_NATIVE=0`` in the environment turns them off (A/B
benchmarks).

A caller binds a kernel with one line, ``_native_x = native.get("x")``: the compiled
function, or None when the extension is off, missing, or an older build without that symbol
(then the caller's Python reference runs alone).
"""

from __future__ import annotations

import os
from typing import NamedTuple

speedups = None
if os.environ.get("METACLIP_NATIVE", "1") != "0":
    try:
        from metaclip_spark import _speedups as speedups
    except ImportError:  # no compiler at install time, or a platform the build did not cover
        speedups = None

ENABLED = speedups is not None


class Kernel(NamedTuple):
    source: str      # the C file, under metaclip_spark/kernels/csrc/
    reference: str   # the Python code it shortcuts ("module:qualified.name"), the reference
    caller: str      # where it is bound (with native.get) and NotImplemented falls back
    test: str        # the test file that checks compiled == reference


KERNELS = {
    "warc_headers": Kernel("warc_frame.c", "metaclip_spark.formats.warc:_parse_header_py",
                           "metaclip_spark.formats.warc:_parse_header", "tests/kernels/test_native_warc.py"),
    "gzip_records": Kernel("warc_frame.c", "metaclip_spark.formats.warc:_unit_records",
                           "metaclip_spark.formats.warc:read_records", "tests/kernels/test_native_warc.py"),
    "wat_scan": Kernel("wat_json.c", "metaclip_spark.formats.wat:wat_images_py",
                       "metaclip_spark.formats.wat:wat_images", "tests/kernels/test_native_wat.py"),
    "contains": Kernel("module.c", "builtins:bytes.__contains__",
                       "metaclip_spark.formats.wat:classify", "tests/kernels/test_native.py"),
    "page_pairs": Kernel("page_rules.c", "metaclip_spark.formats.pairs:page_pairs_py",
                         "metaclip_spark.formats.pairs:page_pairs", "tests/kernels/test_native_pairs.py"),
    "nesting_work": Kernel("nesting.c", "metaclip_spark.formats.html:nesting_work_py",
                           "metaclip_spark.formats.html:nesting_work", "tests/kernels/test_native_nesting.py"),
    # the matcher has a third implementation: pyahocorasick, the fallback without this one
    # (tests/steps/test_match.py runs every case on both automata and against naive_match)
    "Automaton": Kernel("ac_match.c", "metaclip_spark.steps.match:naive_match",
                        "metaclip_spark.steps.match:Matcher", "tests/kernels/test_native_matching.py"),
    # the same type under the name of its keys mode (section 10's keys) and flat files (to_bytes,
    # from_buffer over an mmap); tests/steps/test_world_match.py runs every case on it, on
    # pyahocorasick and against naive_world_match
    "WorldAutomaton": Kernel("ac_match.c", "metaclip_spark.steps.world_match:naive_world_match",
                             "metaclip_spark.steps.world_automata:mapped_automaton",
                             "tests/kernels/test_native_world.py"),
}


def get(name: str):
    """The compiled kernel ``name`` (a key of :data:`KERNELS`), or None: extension off
    (``METACLIP_NATIVE=0``), not built, or built before that kernel existed."""
    if name not in KERNELS:
        raise KeyError("no compiled kernel %r (known: %s)" % (name, ", ".join(sorted(KERNELS))))
    return getattr(speedups, name, None)
