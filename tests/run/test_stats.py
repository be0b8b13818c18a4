from metaclip_spark.run.stats import Stats


def test_stats_add_up_and_round_trip():
    a, b = Stats(), Stats()
    a.add("records_read", 3)
    a.drop("no_alt")
    b.add("records_read", 2)
    b.drop("no_alt", 4)
    b.error("f.warc.gz", "truncated_gzip", "cut at 10")
    total = Stats().merge(a).merge(b)
    assert total["records_read"] == 5
    assert total.dropped() == {"no_alt": 5}
    assert total["errors.truncated_gzip"] == 1
    assert total.errors == [{"source": "f.warc.gz", "kind": "truncated_gzip", "message": "cut at 10"}]
    assert Stats.from_dict(total.to_dict()).to_dict() == total.to_dict()
    assert total["never_set"] == 0
