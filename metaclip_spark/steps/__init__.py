"""The pipeline's steps, Spark-free: extract, language, match (stage 1 per file) and balance (stage 2)."""
