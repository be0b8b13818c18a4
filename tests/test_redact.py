from metaclip_spark.redact import MASK, scrub, scrub_obj, secret_values


def test_scrub_env_secrets_urls_and_pairs(monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t-value-XYZ")
    monkeypatch.setenv("MY_API_TOKEN", "tok-123456")
    monkeypatch.setenv("HOME_DIR_X", "not-a-secret-123")
    assert "s3cr3t-value-XYZ" in secret_values() and "not-a-secret-123" not in secret_values()
    assert scrub("key s3cr3t-value-XYZ and tok-123456") == "key %s and %s" % (MASK, MASK)
    assert scrub("https://bob:pw@host/x.gz") == "https://%s@host/x.gz" % MASK
    assert scrub("https://h/x?X-Amz-Signature=abc&X-Amz-Credential=AK/1&a=1") == \
        "https://h/x?X-Amz-Signature=%s&X-Amz-Credential=%s&a=1" % (MASK, MASK)
    assert scrub('{"password": "hunter2"}') == '{"password": "%s"}' % MASK
    assert scrub("design=1 tokens=3 signatures") == "design=1 tokens=3 signatures"
    assert scrub_obj({"a": ["s3cr3t-value-XYZ", 3], "b": None}) == {"a": [MASK, 3], "b": None}
