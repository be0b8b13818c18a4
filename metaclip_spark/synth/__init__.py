"""Deterministic generator of small CommonCrawl-style corpora with ground truth.

    python -m metaclip_spark.synth --pages N --seed S --out DIR [--files K]

or ``make_corpus(out_dir, pages, seed, files=1)``, which returns the manifest. For each
file ``i`` (zero-padded to 5 digits) it writes to ``DIR``:

``SYNTH-<seed>-<i>.warc.gz``
    a ``warcinfo`` record, then per capture a ``request``, a ``response`` and a
    ``metadata`` record; every record is its own gzip member (warcio's ``WARCWriter``,
    ``gzip=True``: zlib gzip headers carry no file name and mtime 0).
``SYNTH-<seed>-<i>.warc.wat.gz``
    a ``warcinfo`` record, then one ``metadata`` record (JSON, CommonCrawl WAT layout)
    per WARC record, in the same order, ``WARC-Refers-To`` = the WARC record id.
    HTML responses carry ``Envelope.Payload-Metadata.HTTP-Response-Metadata.HTML-Metadata``
    = ``{"Head": {Metas, Title, [Base], Link}, "Links": [...]}``; the ``Links``
    entries are the attribute values as an HTML parser returns them (entity-decoded,
    not resolved, first of a repeated attribute); ``IMG@/src`` entries carry ``alt``
    only when the ``<img>`` has an ``alt`` with a value. ``Container`` is
    ``{Filename, Compressed, Offset}`` with the offset a string, as in CC (CC's
    ``Gzip-Metadata`` and ``IsCompressed`` are left out, and requests/metadata records
    carry no digests, warcinfo id or IP address, to keep the files small).
``SYNTH-<seed>-<i>.truth.jsonl.gz``
    one line per HTML response (any status): ``page_url``, ``warc_record_id``,
    ``status``, ``lang``, ``charset`` (the real encoding), ``base_href``, ``pairs``
    ``[[abs_url, text], ...]`` following docs/semantics.md section 2.
``MANIFEST.json``
    files (size, sha256), record counts, HTML pages, truth pairs, languages, charsets.

The truth is computed from the generator's own page model (the decoded attribute
values it renders), never by parsing the HTML it writes; ``tests/test_synth.py`` checks
it against an independent ``html.parser`` derivation from the WARC bytes and against
the WAT ``Links``.

Everything is derived from the seed: a seeded ``random.Random`` per file, WARC-Date
values from the seed, record ids ``uuid5`` of (seed, file, record number). The same
arguments give byte-identical files (given the same zlib).

All host names are sub-domains of the IANA-reserved ``example.com``/``.org``/``.net``.
"""

from __future__ import annotations

import argparse
import json
import os


from metaclip_spark.synth.archive_consts import GENERATOR, GENERATOR_VERSION
from metaclip_spark.synth.archive import _make_file

def _merge(into: dict, d: dict) -> None:
    for k, v in d.items():
        into[k] = into.get(k, 0) + v


def make_corpus(out_dir, pages: int, seed: int, files: int = 1) -> dict:
    """Write ``files`` WARC/WAT/truth triples holding ``pages`` captures in all to
    ``out_dir`` (created if needed), then ``MANIFEST.json``; returns the manifest."""
    if pages < 1 or files < 1 or files > pages:
        raise ValueError("need 1 <= files <= pages (got pages=%d, files=%d)" % (pages, files))
    out_dir = os.fspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    per, extra = divmod(pages, files)
    parts, k = [], 0
    for i in range(files):
        n = per + (1 if i < extra else 0)
        parts.append(_make_file(out_dir, seed, i, k, n))
        k += n
    manifest: dict = {"generator": GENERATOR, "generator_version": GENERATOR_VERSION,
                      "seed": seed, "pages": pages, "n_files": files,
                      "html_pages": 0, "truth_pairs": 0, "img_tags": 0, "languages": {},
                      "charsets": {}, "statuses": {}, "content_types": {}, "warc_records": {},
                      "wat_records": 0, "files": {}, "parts": []}
    for p in parts:
        for key in ("html_pages", "truth_pairs", "img_tags", "wat_records"):
            manifest[key] += p[key]
        for key in ("languages", "charsets", "statuses", "content_types", "warc_records"):
            _merge(manifest[key], p[key])
        manifest["files"].update(p["files"])
        manifest["parts"].append({key: p[key] for key in ("index", "warc", "wat", "truth", "pages",
                                                           "html_pages", "truth_pairs")})
    for key in ("languages", "charsets", "statuses", "content_types", "warc_records"):
        manifest[key] = dict(sorted(manifest[key].items()))
    with open(os.path.join(out_dir, "MANIFEST.json"), "w", encoding="utf-8", newline="\n") as fh:
        fh.write(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m metaclip_spark.synth", description=__doc__.split("\n\n")[0])
    ap.add_argument("--pages", type=int, required=True, help="captures in all (request+response+metadata)")
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--files", type=int, default=1, help="number of WARC/WAT file pairs")
    args = ap.parse_args(argv)
    m = make_corpus(args.out, args.pages, args.seed, args.files)
    print("%s: %d captures, %d HTML pages, %d truth pairs, languages %s" % (
        args.out, m["pages"], m["html_pages"], m["truth_pairs"],
        ", ".join("%s=%d" % kv for kv in m["languages"].items())))
    return 0
