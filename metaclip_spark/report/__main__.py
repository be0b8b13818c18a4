"""`python -m metaclip_spark.report.page`: the report of a run folder (report.page.main)."""

import sys

from metaclip_spark.report.page.page import main

sys.exit(main())
