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
#: parts of query parameter names that mark a credential (`api-key`, `subscription-key`, `x-goog-api-key`,
#: `auth_token`, `client_secret`, `sig`, `password`...), matched within the lower-cased name
SECRET_NAME_PARTS = ("key", "token", "secret", "pass", "pwd", "auth", "sig", "cred", "session")
#: whole parameter names that are credentials without containing one of those parts (OAuth's authorization code)
SECRET_NAMES = frozenset({"code"})
#: values that are credentials whatever their parameter is called: OpenAI/Anthropic-style keys, bearer tokens, JWTs
_SECRET_VALUE = re.compile(r"(?<![A-Za-z0-9])(?:(?:sk|pk|rk|hf|ghp|gho|xox[abp])[-_][A-Za-z0-9_-]{6,}"
                           r"|eyJ[A-Za-z0-9_-]{10,}\.\S*)")
_BEARER = re.compile(r"(Bearer\s+)\S+")
#: a URL in running text; punctuation right after it (a colon, a closing bracket) is not part of it
_URL = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]*?)([.,:;)\]]*(?:\s|['\"<>]|$))")
#: what is left outside a well-formed URL: user-info before an '@' after '//' or ':/' (a typo'd scheme), and
#: credential-named parameters after '?' or '&' (a URL without a scheme)
_USER_INFO = re.compile(r"(:/{1,2})[^\s/'\"<>@]*@")
_PARAMETER = re.compile(r"([?&])([A-Za-z0-9_.-]+)=([^\s&#'\"<>]*)")


def is_secret_parameter(name: str, value: str) -> bool:
    """Whether a query parameter carries a credential, by its name or by the look of its value."""
    name = name.lower()
    return (any(part in name for part in SECRET_NAME_PARTS) or name in SECRET_NAMES
            or bool(_SECRET_VALUE.match(value) or _BEARER.match(value)))


def _redact_parameter(part: str) -> str:
    name, sep, value = part.partition("=")
    return f"{name}={REDACTED}" if sep and is_secret_parameter(unquote_plus(name), unquote_plus(value)) else part


def redact_url(url: Optional[str]) -> Optional[str]:
    """`url` without user-info and with credential-like query values replaced by `***` (trailing '/' of the path
    dropped, so one endpoint always reads the same)."""
    if url is None:
        return None
    # Lexically first: `user:12345#x@host` would parse as a port and a fragment, keeping the password.
    url = _USER_INFO.sub(r"\1", str(url))
    try:
        parts = urlsplit(url)
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
    """`text` with every URL in it redacted (see `redact_url`), and what would leak from a malformed one: user-info,
    credential-like query parameters, key-like values."""
    text = _URL.sub(lambda m: redact_url(m.group(1)) + m.group(2), text)
    text = _USER_INFO.sub(r"\1", text)
    text = _PARAMETER.sub(lambda m: m.group(0) if not is_secret_parameter(unquote_plus(m.group(2)),
                                                                          unquote_plus(m.group(3)))
                          else f"{m.group(1)}{m.group(2)}={REDACTED}", text)
    return _BEARER.sub(rf"\1{REDACTED}", _SECRET_VALUE.sub(REDACTED, text))


def redact_command(argv: Iterable[str]) -> list[str]:
    """A command line to record: every URL in every argument redacted."""
    return [redact_text(str(a)) for a in argv]
