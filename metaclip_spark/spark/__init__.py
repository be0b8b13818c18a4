"""Spark glue: the session, shipping resources, and each stage's job over files."""
