"""metaclip-spark: MetaCLIP curation of CommonCrawl image/alt-text pairs.

The packages follow the pipeline (docs/README.md has the map):

- ``inputs``   where the bytes come from (local, s3://, https://, crawl listings)
- ``formats``  WARC/WAT framing, WAT JSON, HTML and the page -> pair rules (bytes -> pages)
- ``steps``    the Spark-free steps: extract, language, match (stage 1 per file), balance (stage 2)
- ``kernels``  the compiled shortcuts (csrc/) and their binding
- ``metadata`` loading, checking and building MetaCLIP metadata
- ``run``      config, statistics, chunks/resume, run folders, outputs, progress, redaction
- ``report``   the HTML curation report
- ``spark``    Spark glue: session, shipped resources, each stage's job over files

``jobs/`` (top level) holds only the spark-submit entry files.
"""

__version__ = "0.1.0"
