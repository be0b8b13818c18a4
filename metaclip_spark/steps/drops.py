"""The registry of drop reasons: every ``dropped.<reason>`` counter is declared here, once.

Each :class:`Drop` names the step that emits it, the funnel transition it belongs to (the
report's "step" column) and a one-line meaning. Everything else reads this table:
:class:`metaclip_spark.run.stats.Stats` refuses an unregistered name, the step classes
(:mod:`metaclip_spark.steps.base`) declare theirs from it, ``formats.pairs.PageCounts``
takes its slots from :data:`IMAGE`, the C loop's counter names
(``kernels/csrc/page_rules.c`` ``COUNT_NAMES``) are tested against it, and the report's
funnel and LID tables, the README's and ``docs/drops.md``'s tables are made from it
(``python -m metaclip_spark.steps.drops`` prints the Markdown table).

This module imports nothing from the package (``run.stats`` imports it).
"""

from __future__ import annotations

from typing import NamedTuple


class Drop(NamedTuple):
    name: str
    step: str          # the step that emits it: extract, language, match, balance, build_metadata
    funnel: str        # the funnel transition it leaves (report: "step")
    meaning: str       # one line
    unit: str          # what is dropped: record, image, pair, row, page (a Wikipedia page), line
    derived: bool = False   # computed by the report, never counted (not a Stats name)


# Order: funnel order (the report lists drops in it); per step, emission order. The eight
# "image" reasons are in the order of page_rules.c's counters (C_NO_ALT .. C_DUPLICATE).
REGISTRY: tuple[Drop, ...] = (
    # extract, per record / page (steps/extract.py _html_page, _wat_page); semantics 2.1-2.3
    Drop("not_html", "extract", "records -> pages", "record is not an HTML response (not HTTP, or Content-Type not HTML)", "record"),
    Drop("html_too_large", "extract", "records -> pages", "HTML page over extract.max_html_bytes (stored, decoded, or its WAT JSON)", "record"),
    Drop("html_too_deep", "extract", "records -> pages", "HTML nests too deeply to parse in bounded time (extract.max_nesting_work)", "record"),
    Drop("undecodable_page", "extract", "records -> pages", "page could not be decoded (charset codec or HTML parser raised)", "record"),
    # extract, per image (formats/pairs.py page_pairs_py, kernels/csrc/page_rules.c); semantics 2.4
    Drop("no_alt", "extract", "images -> with alt", "<img> without an alt attribute", "image"),
    Drop("empty_alt", "extract", "with alt -> pairs", "alt text empty after whitespace normalisation", "image"),
    Drop("empty_src", "extract", "with alt -> pairs", "src empty after strip()", "image"),
    Drop("non_http_url", "extract", "with alt -> pairs", "resolved URL is not http(s) (data:, javascript:, ...)", "image"),
    Drop("invalid_url", "extract", "with alt -> pairs", "URL could not be resolved (urljoin raised ValueError)", "image"),
    Drop("text_too_long", "extract", "with alt -> pairs", "alt text over extract.max_text_chars", "image"),
    Drop("url_too_long", "extract", "with alt -> pairs", "URL over extract.max_url_chars", "image"),
    Drop("duplicate_in_page", "extract", "with alt -> pairs", "same (url, text) kept earlier in the page", "image"),
    # language (steps/language.py); semantics 3
    Drop("not_english", "language", "pairs -> English", "fastText top label is not English", "pair"),
    Drop("lid_low_score", "language", "pairs -> English", "English, but LID score below lid.threshold "
         "(worldwide: any language, below worldwide.lid_threshold(s))", "pair"),
    Drop("no_metadata_language", "language", "pairs -> English", "worldwide: the text's language (its LID label "
         "mapped by worldwide.lid_map) has no metadata list", "pair"),
    # match (steps/pipeline.py Match); semantics 4 (worldwide: 10)
    Drop("no_match", "match", "English -> matched", "text contains no metadata entry (worldwide: of its language)", "pair"),
    # balance (stage 2, steps/curated.py); semantics 5
    Drop("url_unencodable", "balance", "matched -> curated", "drawn row whose URL has no request form (urls.request_url is None)", "row"),
    Drop("not_drawn", "balance", "matched -> curated", "balancing: none of the pair's entries was drawn (pool - curated - url_unencodable)", "row", True),
    # build-metadata (metadata/wikipedia.py)
    Drop("page_truncated", "build_metadata", "dump -> articles", "a dump split ends inside a page it owns", "page"),
    Drop("page_bad_xml", "build_metadata", "dump -> articles", "page XML does not parse (also an error)", "page"),
    Drop("page_not_main_namespace", "build_metadata", "dump -> articles", "page <ns> is not 0", "page"),
    Drop("page_redirect", "build_metadata", "dump -> articles", "page is a redirect", "page"),
    Drop("page_disambiguation", "build_metadata", "dump -> articles", "disambiguation template or title", "page"),
    Drop("page_parse_error", "build_metadata", "dump -> articles", "wikitext parsing or text extraction raised (also an error)", "page"),
    Drop("pageviews_bad_line", "build_metadata", "pageviews -> counts", "pageviews line with < 3 fields or non-integer views", "line"),
)

BY_NAME: dict[str, Drop] = {d.name: d for d in REGISTRY}
# names a Stats may count (the derived ones are computed by the report only)
COUNTED: frozenset[str] = frozenset(d.name for d in REGISTRY if not d.derived)
STEPS: tuple[str, ...] = tuple(dict.fromkeys(d.step for d in REGISTRY))


def of_step(step: str, unit: str | None = None) -> tuple[str, ...]:
    """The reasons ``step`` emits (of ``unit`` only, if given), in registry order."""
    return tuple(d.name for d in REGISTRY if d.step == step and (unit is None or d.unit == unit) and not d.derived)


PAGE: tuple[str, ...] = of_step("extract", "record")     # per record / page
IMAGE: tuple[str, ...] = of_step("extract", "image")     # per image: PageCounts slots, C counters (this order)
# per-image reasons after which the image is still a candidate (url, text, drop): rules 4-6
CANDIDATE: tuple[str, ...] = IMAGE[IMAGE.index("non_http_url"):]
LID: tuple[str, ...] = of_step("language")
MATCH: tuple[str, ...] = of_step("match")
BALANCE: tuple[str, ...] = of_step("balance")


class UnknownDrop(KeyError):
    """A drop reason that is not in :data:`REGISTRY`."""


def check(name: str) -> str:
    """``name`` if it is a countable registered reason, else :class:`UnknownDrop`."""
    if name not in COUNTED:
        raise UnknownDrop("drop reason %r is not registered in metaclip_spark/steps/drops.py" % (name,))
    return name


def markdown(steps: tuple[str, ...] | None = None) -> str:
    """The registry as a Markdown table (the README's and docs/drops.md's drop tables)."""
    lines = ["| reason | step | funnel | unit | meaning |", "|---|---|---|---|---|"]
    for d in REGISTRY:
        if steps is None or d.step in steps:
            name = d.name + (" (derived, report only)" if d.derived else "")
            lines.append("| `%s` | %s | %s | %s | %s |" % (name, d.step, d.funnel, d.unit,
                                                           d.meaning.replace("|", "\\|").replace("<", "&lt;")))
    return "\n".join(lines) + "\n"


if __name__ == "__main__":   # python -m metaclip_spark.steps.drops
    print(markdown(), end="")
