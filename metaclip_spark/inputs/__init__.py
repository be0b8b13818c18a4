"""Where inputs come from: local files, s3:// and https:// streams with retries, crawl listings."""
