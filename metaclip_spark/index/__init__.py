"""The image index (docs/semantics.md section 9): images, not occurrences. Spark-free."""
