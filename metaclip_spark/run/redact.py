"""Keeping credentials out of logs, stats, saved configs and exception messages.

``scrub(text)`` removes: the values of credential environment variables present in this
process (AWS keys, session tokens, ...), the user:password part of URLs, and the values of
secret-looking query parameters and ``key=value`` pairs (signatures, tokens, passwords).
``scrub_obj`` applies it to every string of a JSON-like structure. Every file the jobs write
beside their outputs and every message the CLI prints goes through here.

``scrub_uri(uri)`` is the stored name of an input: a pure function of the URI (the same on
every machine and executor, unlike ``scrub``, which also masks this process's environment
secrets): the userinfo (``user:password@``) and the values of credential query parameters
are masked, nothing else changes. ``is_secret_name`` decides which parameter and setting
names are credentials (see its doc); ``mask_secret_keys`` masks the values of such keys in
a JSON-like structure (the saved config).
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any
from urllib.parse import unquote

MASK = "***"

# Environment variables whose values are secrets (exact names, then name patterns).
SECRET_ENV = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ACCESS_KEY_ID",
              "GOOGLE_APPLICATION_CREDENTIALS_JSON", "AZURE_STORAGE_KEY", "HF_TOKEN")
_SECRET_ENV_RE = re.compile(r"(SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL|API_KEY|ACCESS_KEY)", re.I)
MIN_SECRET_LEN = 6       # shorter env values are not masked (they would mask ordinary words)

_USERINFO_RE = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/@\s]+)@")
_PAIR_RE = re.compile(
    r"(?<![A-Za-z0-9_])(?P<key>(?:x-amz-(?:signature|credential|security-token)|signature|sig|token|access_token|"
    r"password|passwd|secret|aws_secret_access_key|aws_session_token|aws_access_key_id|"
    r"secret_key|access_key|api_key|apikey)[\"']?\s*[=:]\s*[\"']?)(?P<value>[^&\s\"',;}]+)",
    re.I)


# A name (query parameter, config key, one dotted component at a time) is a credential when
# its last component ends with one of the words of _SECRET_LAST (camelCase and snake_case:
# "X-Amz-Security-Token", "keyPassword", "client_secret"), is the word key/apikey/sig/auth on
# its own or after - or _ ("secret.key", "api_key", "Key"), or ends with
# access/secret/private/account + key ("accessKey"); or when any other component is exactly
# key/secret/password/passwd/token ("fs.azure.account.key.<account>.blob.core.windows.net").
# Not credentials: entry_ids, key_hash, keyword, keyStore, monkey, max_tokens, tokenizer,
# credentials.provider, X-Amz-SignedHeaders, X-Amz-Date.
_SECRET_LAST_RE = re.compile(
    r"(?:secret|password|passwd|pwd|token|credentials?|signature)$"
    r"|(?:^|[-_])(?:key|apikey|sig|auth)$"
    r"|(?:access|secret|private|account)[-_]?key$", re.I)
_URL_IN_TEXT_RE = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s\"'<>]+")
_SECRET_PART = frozenset(("key", "secret", "password", "passwd", "token"))
_URI_RE = re.compile(r"^(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<netloc>[^/?#]*)(?P<path>[^?#]*)"
                     r"(?:\?(?P<query>[^#]*))?(?P<fragment>#.*)?$", re.S)


def is_secret_name(name: str) -> bool:
    """True when a setting or query parameter called ``name`` holds a credential (the rule
    is spelt out above ``_SECRET_LAST_RE``)."""
    parts = str(name).strip().split(".")
    if _SECRET_LAST_RE.search(parts[-1]):
        return True
    return any(p.lower() in _SECRET_PART for p in parts[:-1])


def scrub_uri(uri: Any) -> Any:
    """``uri`` with its userinfo and the values of credential query parameters masked.

    Deterministic (no environment lookups) and idempotent; names without a ``scheme://``
    (local paths, where ``?`` is part of the file name) are returned unchanged."""
    if not isinstance(uri, str):
        return uri
    m = _URI_RE.match(uri)
    if not m:
        return uri
    netloc = m.group("netloc")
    if "@" in netloc:
        netloc = MASK + "@" + netloc.rsplit("@", 1)[1]
    query = m.group("query")
    if query:
        fields = []
        for item in query.split("&"):
            name, eq, value = item.partition("=")
            if eq and value and is_secret_name(unquote(name)) and not _masked(value):
                item = name + "=" + MASK
            fields.append(item)
        query = "&".join(fields)
    return "%s%s%s%s%s" % (m.group("scheme"), netloc, m.group("path"),
                           "" if query is None else "?" + query, m.group("fragment") or "")


def mask_secret_keys(obj: Any) -> Any:
    """A copy of a JSON-like structure whose values under credential keys
    (``is_secret_name``) are masked; empty and null values are kept (nothing to hide)."""
    if isinstance(obj, dict):
        return {k: _mask_value(v) if isinstance(k, str) and is_secret_name(k) else mask_secret_keys(v)
                for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [mask_secret_keys(v) for v in obj]
    return obj


def _mask_value(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _mask_value(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_mask_value(x) for x in v]
    return v if v is None or v == "" else MASK


def secret_values(environ: dict | None = None) -> list[str]:
    """Secret strings from the environment, longest first (so overlaps mask fully)."""
    env = os.environ if environ is None else environ
    out = set()
    for name, value in env.items():
        if not value or len(value) < MIN_SECRET_LEN:
            continue
        if name in SECRET_ENV or _SECRET_ENV_RE.search(name):
            out.add(value)
    return sorted(out, key=len, reverse=True)


def scrub(text: Any, extra: list[str] | None = None) -> Any:
    """``text`` with credentials masked (non-strings are returned unchanged)."""
    return _scrub(text, list(extra or []) + secret_values())


def _scrub(text: Any, secrets: list[str]) -> Any:
    if not isinstance(text, str) or not text:
        return text
    for value in secrets:
        if value and value in text:
            text = text.replace(value, MASK)
    text = _USERINFO_RE.sub(lambda m: m.group("scheme") + MASK + "@", text)
    text = _PAIR_RE.sub(_mask_pair, text)
    return _URL_IN_TEXT_RE.sub(lambda m: scrub_uri(m.group(0)), text) if "://" in text else text


def _mask_pair(m: re.Match) -> str:
    """key=value with the value masked; a value masked already (``***`` and punctuation, e.g.
    the ``:`` after a scrubbed URL in ``"%s: error" % scrub(uri)``) is left as it is, so that
    scrubbing twice changes nothing."""
    return m.group(0) if _masked(m.group("value")) else m.group("key") + MASK


def _masked(value: str) -> bool:
    """A value masked already: ``***``, or ``***`` and punctuation that followed it."""
    return value.startswith(MASK) and not any(c.isalnum() for c in value[len(MASK):])


def scrub_obj(obj: Any, _secrets: list[str] | None = None) -> Any:
    """``scrub`` applied to every string (keys too) of nested dicts/lists/tuples (the
    environment's secrets are looked up once per call, not once per string)."""
    secrets = secret_values() if _secrets is None else _secrets
    if isinstance(obj, str):
        return _scrub(obj, secrets)
    if isinstance(obj, dict):
        return {_scrub(k, secrets): scrub_obj(v, secrets) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [scrub_obj(v, secrets) for v in obj]
    return obj


class ScrubFilter(logging.Filter):
    """A logging filter that masks credentials in every record's final message."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True
        clean = scrub(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


def install_log_filter() -> None:
    """Attach :class:`ScrubFilter` to every handler of the root logger (call after basicConfig)."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, ScrubFilter) for f in handler.filters):
            handler.addFilter(ScrubFilter())
