"""Constants shared by the writers."""

import datetime as _dt
import uuid

GENERATOR = "metaclip_spark.synth"
GENERATOR_VERSION = 1
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://metaclip-spark.example.org/synth")
_EPOCH = _dt.datetime(2024, 2, 20, 0, 0, 0)
_USER_AGENT = "CCBot/2.0 (https://commoncrawl.org/faq/)"
