import pytest

from metaclip_spark.run.redact import MASK, scrub, scrub_obj, secret_values


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


# --- stored input names (issue #13 item 9): a pure function of the URI ---------------------

PRESIGNED = ("https://bob:hunter2pw@h.example:8443/d/f.warc.gz?X-Amz-Algorithm=AWS4-HMAC-SHA256"
             "&X-Amz-Credential=AKIAEXAMPLE%2F20240101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20240101T000000Z"
             "&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature=abcdef0123&X-Amz-Security-Token=TOK%2Bxyz")


def test_scrub_uri_masks_userinfo_and_credential_parameters_only():
    from metaclip_spark.run.redact import scrub_uri

    assert scrub_uri(PRESIGNED) == (
        "https://***@h.example:8443/d/f.warc.gz?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=***"
        "&X-Amz-Date=20240101T000000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature=***"
        "&X-Amz-Security-Token=***")
    assert scrub_uri("https://h/f.warc.gz?token=abc123&page=2") == "https://h/f.warc.gz?token=***&page=2"
    assert scrub_uri("https://acct.blob.core.windows.net/c/f.warc.gz?sv=2020-08-04&se=2030&sp=r&sig=Zm9v%2B") == \
        "https://acct.blob.core.windows.net/c/f.warc.gz?sv=2020-08-04&se=2030&sp=r&sig=***"
    assert scrub_uri("https://h/f?key=AIzaXYZ&api_key=k1&access_token=t1&auth=a1&X-Goog-Signature=s1#frag") == \
        "https://h/f?key=***&api_key=***&access_token=***&auth=***&X-Goog-Signature=***#frag"
    assert scrub_uri("s3://AKIDX:S3CRET@bucket/k/f.warc.gz") == "s3://***@bucket/k/f.warc.gz"
    unchanged = ["https://h/f.warc.gz?keyword=cat&tokens=3&max_tokens=5&signed=1&monkey=2&token=",
                 "s3://commoncrawl/crawl-data/CC-MAIN-2020-45/x.warc.wat.gz",
                 "/data/a?token=x.warc.gz", "rel/f.warc.gz", "https://h/@user/f.warc.gz", "", None, 5]
    for u in unchanged:
        assert scrub_uri(u) == u
    assert scrub_uri(scrub_uri(PRESIGNED)) == scrub_uri(PRESIGNED)          # idempotent


def test_scrub_uri_ignores_the_environment(monkeypatch):
    """Stored names must be the same on every executor: no environment lookups."""
    from metaclip_spark.run.redact import scrub_uri

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "segment-name-123")
    uri = "https://h/segment-name-123/f.warc.gz"
    assert scrub(uri) == "https://h/***/f.warc.gz"
    assert scrub_uri(uri) == uri


def test_scrub_masks_every_credential_parameter_of_urls_in_text():
    assert scrub("cannot read https://h/f.warc.gz?key=AIzaXYZ&n=1: HTTP 403") == \
        "cannot read https://h/f.warc.gz?key=***&n=1: HTTP 403"


@pytest.mark.parametrize("name", [
    "spark.hadoop.fs.s3a.secret.key", "spark.hadoop.fs.s3a.access.key", "spark.hadoop.fs.s3a.session.token",
    "spark.authenticate.secret", "spark.ssl.keyPassword", "spark.ssl.trustStorePassword",
    "spark.kubernetes.authenticate.driver.oauthToken", "spark.hadoop.fs.azure.account.key.acct.blob.core.windows.net",
    "password", "passwd", "token", "access_token", "api_key", "apiKey", "client_secret", "accessKey",
    "aws_secret_access_key", "AWS_SESSION_TOKEN", "X-Amz-Signature", "X-Amz-Credential", "X-Amz-Security-Token",
    "sig", "key", "Key", "X-Api-Key", "credentials"])
def test_secret_names(name):
    from metaclip_spark.run.redact import is_secret_name

    assert is_secret_name(name)


@pytest.mark.parametrize("name", [
    "entry_ids", "key_hash", "input.kind", "kind", "keyword", "keys", "monkey", "spark.ssl.keyStore",
    "spark.hadoop.fs.s3a.aws.credentials.provider", "max_tokens", "tokens", "tokenizer", "signed", "design",
    "spark.sql.shuffle.partitions", "source", "paths", "sample_seed", "X-Amz-Date", "X-Amz-SignedHeaders",
    "X-Amz-Algorithm", "Key-Pair-Id", "sv", "secretary", "spark.io.encryption.keySizeBits"])
def test_not_secret_names(name):
    from metaclip_spark.run.redact import is_secret_name

    assert not is_secret_name(name)


def test_mask_secret_keys():
    from metaclip_spark.run.redact import mask_secret_keys

    doc = {"spark": {"conf": {"spark.hadoop.fs.s3a.secret.key": "S3KRETVALUE", "spark.hadoop.fs.s3a.access.key": "AKID",
                              "spark.hadoop.fs.s3a.aws.credentials.provider": "org.Simple",
                              "spark.sql.shuffle.partitions": "4"}},
           "entry_ids": [1, 2], "key_hash": 7, "token": "", "password": None, "secret": ["a", ""],
           "input": {"kind": "wat", "paths": ["a"]}}
    assert mask_secret_keys(doc) == {
        "spark": {"conf": {"spark.hadoop.fs.s3a.secret.key": MASK, "spark.hadoop.fs.s3a.access.key": MASK,
                           "spark.hadoop.fs.s3a.aws.credentials.provider": "org.Simple",
                           "spark.sql.shuffle.partitions": "4"}},
        "entry_ids": [1, 2], "key_hash": 7, "token": "", "password": None, "secret": [MASK, ""],
        "input": {"kind": "wat", "paths": ["a"]}}
