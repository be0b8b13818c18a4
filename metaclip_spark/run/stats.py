"""Statistics as data: named counters that add up across files, tasks and chunks.

Names are flat strings. Drops always go through :meth:`Stats.drop` so that every
discarded item has a named reason under ``dropped.<reason>``; the reason must be declared
in :mod:`metaclip_spark.steps.drops` (an unregistered name raises ``UnknownDrop``).
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Iterable, Mapping

from metaclip_spark.steps.drops import COUNTED, UnknownDrop, check  # noqa: F401 (UnknownDrop re-exported)


class Stats:
    """A bag of named integer counts plus a list of per-input errors."""

    __slots__ = ("counts", "errors")

    def __init__(self, counts: Mapping[str, int] | None = None, errors: Iterable[dict] | None = None):
        self.counts: Counter = Counter(counts or {})
        self.errors: list[dict] = list(errors or [])

    def add(self, name: str, n: int = 1) -> None:
        self.counts[name] += n

    def drop(self, reason: str, n: int = 1) -> None:
        if reason not in COUNTED:
            check(reason)               # raises UnknownDrop
        self.counts["dropped." + reason] += n

    def error(self, source: str, kind: str, message: str) -> None:
        """Record a damaged or unreadable input (counted under ``errors.<kind>``)."""
        self.counts["errors." + kind] += 1
        self.errors.append({"source": source, "kind": kind, "message": message[:500]})

    def merge(self, other: "Stats") -> "Stats":
        self.counts.update(other.counts)
        self.errors.extend(other.errors)
        return self

    def __getitem__(self, name: str) -> int:
        return self.counts.get(name, 0)

    def dropped(self) -> dict:
        return {k[len("dropped."):]: v for k, v in sorted(self.counts.items()) if k.startswith("dropped.")}

    def prefixed(self, prefix: str) -> dict[str, int]:
        """``{rest: count}`` of the counters named ``prefix + rest``, sorted by name."""
        return {k[len(prefix):]: int(v) for k, v in sorted(self.counts.items()) if k.startswith(prefix)}

    def to_dict(self) -> dict:
        return {"counts": dict(sorted(self.counts.items())), "errors": self.errors}

    @classmethod
    def from_dict(cls, d: Mapping) -> "Stats":
        return cls(d.get("counts", {}), d.get("errors", []))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def __repr__(self) -> str:
        return "Stats(%r)" % dict(self.counts)
