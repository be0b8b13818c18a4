"""Spark glue (installed as ``metaclip_spark.jobs``): session, distribution over input
files, broadcast and writing. Stage logic lives in the Spark-free ``metaclip_spark``
modules; each ``jobs/<name>.py`` is also a spark-submit entry file."""
