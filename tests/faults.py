"""Fault injection for tests of retry safety (never active unless a folder is given).

``fail_once(folder, key)`` raises the first time it is called for ``key`` (across
processes: a marker file in ``folder`` records the failure), and does nothing after,
so a Spark task fails on its first attempt and succeeds on the retry.
"""

from __future__ import annotations

import os


class InjectedFault(RuntimeError):
    pass


def fail_once(folder: str | None, key: str) -> None:
    if not folder:
        return
    marker = os.path.join(folder, key + ".failed")
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    os.close(fd)
    raise InjectedFault("injected failure for %s (first attempt)" % key)
