"""Credentials never reach a file or the terminal: URLs and command lines are redacted before they are written.

A URL may carry a secret in two places: its user-info (`http://user:sk-...@host/v1`) and its query string
(`?api-key=sk-...`, `?token=...`, Azure's `?sig=...`). `redact_url` drops the user-info and replaces the value of any
query parameter whose name or value looks like a credential with `***`; `redact_text` does that to every URL inside
a text (an error message, a command line argument), so one call covers what is printed and what is written.
"""

from __future__ import annotations

import re
from typing import Iterable, Optional
from urllib.parse import unquote_plus, urlsplit, urlunsplit

REDACTED = "***"
#: query parameter names that carry credentials (compared lower-case, with '-' read as '_')
SECRET_PARAMETERS = frozenset({
    "api_key", "apikey", "key", "token", "access_token", "auth", "authorization", "password", "passwd", "pwd",
    "secret", "client_secret", "sig", "signature", "x_api_key", "code", "session", "sessionid",
})
#: values that are credentials whatever their parameter is called: OpenAI/Anthropic-style keys, bearer tokens, JWTs
_SECRET_VALUE = re.compile(r"^(sk|pk|rk|hf|ghp|gho|xox[abp])[-_][A-Za-z0-9_-]{6,}|^Bearer\s|^eyJ[A-Za-z0-9_-]{10,}\.")
#: a URL in running text; punctuation right after it (a colon, a closing bracket) is not part of it
_URL = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]*?)([.,:;)\]]*(?:\s|['\"<>]|$))")


def is_secret_parameter(name: str, value: str) -> bool:
    """Whether a query parameter carries a credential, by its name or by the look of its value."""
    return name.lower().replace("-", "_") in SECRET_PARAMETERS or bool(_SECRET_VALUE.match(value))


def _redact_parameter(part: str) -> str:
    name, sep, value = part.partition("=")
    return f"{name}={REDACTED}" if sep and is_secret_parameter(unquote_plus(name), unquote_plus(value)) else part


def redact_url(url: Optional[str]) -> Optional[str]:
    """`url` without user-info and with credential-like query values replaced by `***` (trailing '/' of the path
    dropped, so one endpoint always reads the same)."""
    if url is None:
        return None
    try:
        parts = urlsplit(str(url))
        port = parts.port
    except ValueError:  # not parseable as a URL (a bad port): say nothing of it rather than risk a secret
        return REDACTED
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port else host
    # Parameters are kept as written, but for the secret ones' values.
    query = "&".join(_redact_parameter(part) for part in parts.query.split("&")) if parts.query else ""
    fragment = REDACTED if parts.fragment and "=" in parts.fragment else parts.fragment
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), query, fragment))


def redact_text(text: str) -> str:
    """`text` with every URL in it redacted (see `redact_url`)."""
    return _URL.sub(lambda m: redact_url(m.group(1)) + m.group(2), text)


def redact_command(argv: Iterable[str]) -> list[str]:
    """A command line to record: every URL in every argument redacted."""
    return [redact_text(str(a)) for a in argv]
