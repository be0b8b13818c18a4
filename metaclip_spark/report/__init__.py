"""The HTML curation report of a run folder."""
