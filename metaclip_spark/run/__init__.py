"""Running a stage: config, statistics, chunks/resume, run folders, the output filesystem, progress, redaction."""
