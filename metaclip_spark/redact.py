"""Keeping credentials out of logs, stats, saved configs and exception messages.

``scrub(text)`` removes: the values of credential environment variables present in this
process (AWS keys, session tokens, ...), the user:password part of URLs, and the values of
secret-looking query parameters and ``key=value`` pairs (signatures, tokens, passwords).
``scrub_obj`` applies it to every string of a JSON-like structure. Every file the jobs write
beside their outputs and every message the CLI prints goes through here.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any

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
    return _PAIR_RE.sub(lambda m: m.group("key") + MASK, text)


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
