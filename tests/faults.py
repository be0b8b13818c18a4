"""Fault injection for tests of retry safety, done from the tests (production code has no hook).

``failing_once(fn, folder, key_of)`` wraps ``fn`` so that the first call for each key
(``key_of(*args)``) raises a RuntimeError (across processes: a marker file in
``folder`` records the failure) and later calls run ``fn``. A test monkeypatches a function a
Spark task calls (e.g. ``stage2.balance_group``) with it: the task closure is pickled with the
patched global, and the wrapper is a nested function, so it travels by value to the Python
workers (which cannot import ``tests``) together with its own imports.
"""

from __future__ import annotations


def failing_once(fn, folder: str, key_of):
    def wrapped(*args, **kwargs):
        import os

        marker = os.path.join(folder, key_of(*args, **kwargs) + ".failed")
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return fn(*args, **kwargs)
        os.close(fd)
        raise RuntimeError("injected failure for %s (first attempt)" % os.path.basename(marker))

    return wrapped
