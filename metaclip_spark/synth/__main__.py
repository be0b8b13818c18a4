import sys

from metaclip_spark.synth import main

sys.exit(main())
