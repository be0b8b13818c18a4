"""Reading formats: WARC/WAT framing, WAT JSON, HTML and the page -> pair rules (bytes -> pages)."""
