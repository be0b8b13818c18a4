"""metaclip-spark: MetaCLIP curation of CommonCrawl image/alt-text pairs.

The modules of this package are Spark-free stage logic (extraction, LID, matching,
balancing, metadata, io, config). The Spark glue lives in ``jobs/``, installed as
``metaclip_spark.jobs``.
"""

__version__ = "0.1.0"
