"""The step frame: a step has a ``name``, its config section and the drop reasons it
declares (read from :mod:`metaclip_spark.steps.drops`, where they are registered once).

In the spirit of datatrove's filters, a step only says what it keeps and why it dropped
the rest; the base class does the counting::

    class Language(Step):
        name, section, kept_counter = "language", "lid", "english"
        def apply(self, batch):            # -> (kept batch, kept rows, {reason: rows})
            ...

    batch = step.run(batch, stats)         # counts ``english`` and ``dropped.<reason>``

A step may only count the reasons it declares (anything else raises ``UnknownDrop``).
Stage 1 per file (``steps.pipeline``) is ``Extract`` (pages -> pair batches, the parsing
is in ``formats/``) -> ``Language`` -> ``Match``; stage 2's ``balance`` step declares
``url_unencodable`` (``steps.curated``).
"""

from __future__ import annotations

from typing import Mapping

from metaclip_spark.steps import drops as registry


class Step:
    name: str = ""                     # the registry's step name
    section: str | None = None         # config section (run.config), None if it has none
    kept_counter: str | None = None    # counter of the rows a run keeps (e.g. "english")
    drops: tuple[str, ...] = ()        # declared reasons: set from the registry by ``name``

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.name:
            if cls.name not in registry.STEPS:
                raise registry.UnknownDrop("step %r has no drop reasons in the registry" % cls.name)
            cls.drops = registry.of_step(cls.name)

    def apply(self, batch):
        """Return ``(kept batch, number of kept rows, {reason: dropped rows})``."""
        raise NotImplementedError

    def run(self, batch, stats):
        """``apply`` the step to ``batch`` and count what it kept and dropped into ``stats``."""
        kept, n_kept, dropped = self.apply(batch)
        self.count(stats, n_kept, dropped)
        return kept

    def count(self, stats, n_kept: int, dropped: Mapping[str, int]) -> None:
        """Add the kept rows and the drops (declared reasons only, non-zero, registry order)."""
        undeclared = set(dropped) - set(self.drops)
        if undeclared:
            raise registry.UnknownDrop("step %r does not declare %s" % (self.name, ", ".join(sorted(undeclared))))
        for reason in self.drops:
            n = dropped.get(reason, 0)
            if n:
                stats.drop(reason, n)
        if n_kept and self.kept_counter:
            stats.add(self.kept_counter, n_kept)
