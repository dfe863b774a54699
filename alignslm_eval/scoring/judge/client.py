"""The judge's side of the wire: `JudgeClient` asks an OpenAI-compatible chat-completions endpoint for answers, at
most `concurrency` in flight, each attempt bounded in all by `timeout_s` and failures retried by a `RetryPolicy`;
every failure is that request's error, never the batch's. Credentials in the base URL are never sent as user-info
and never written: the HTTP libraries' log lines and the error messages quoted back are redacted."""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any, Mapping, Optional, cast
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from alignslm_eval.io.errors import UserError
from alignslm_eval.io.redaction import is_secret_parameter, redact_text, redact_url
from alignslm_eval.scoring.judge.cache import AnswerCache
from alignslm_eval.scoring.judge.retry import RetryPolicy, retry_after_of

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    """One request's end: the judge's answer, or why there is none."""

    answer: Optional[str] = None
    error: Optional[str] = None
    attempts: int = 0


class MalformedResponse(Exception):
    """A 2xx response that is not a chat completion with a text answer; the message says what is wrong."""


class AttemptTimedOut(Exception):
    """An attempt ran past its total deadline."""


def answer_of(body: bytes, content_type: str) -> str:
    """The first choice's message content in a chat-completions response body; MalformedResponse otherwise."""
    try:
        payload = json.loads(body)
    except ValueError:  # JSONDecodeError, or bytes that are not UTF-8
        raise MalformedResponse(f"not JSON: {content_type or 'no content type'}, {len(body)} bytes") from None
    choices = payload.get("choices") if isinstance(payload, dict) else None
    if not isinstance(choices, list) or not choices:
        raise MalformedResponse("no choices")
    message = choices[0].get("message") if isinstance(choices[0], dict) else None
    if not isinstance(message, dict):
        raise MalformedResponse("no message")
    content = message.get("content")
    if content is None:
        # A real answer with no text (e.g. a reasoning model that spent max_tokens thinking): unparsable, not a fault.
        return ""
    if not isinstance(content, str):
        raise MalformedResponse(f"message content is {type(content).__name__}, not text")
    return content


def split_base_url(url: str) -> tuple[str, dict[str, str], bool]:
    """What the client gets of a base URL: the URL without user-info and query (the client would send user-info as
    Basic auth in place of the key, and append its paths after a query), the query parameters to send with every
    request, and whether user-info was dropped."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    return urlunsplit((parts.scheme, host, parts.path, "", "")), query, "@" in parts.netloc


def _secret_values(query: Mapping[str, object]) -> list[str]:
    """The values in `query` that `redact_url` hides (credential-like names or values)."""
    return [str(value) for name, value in query.items() if is_secret_parameter(name, str(value))]


class _RedactingFilter(logging.Filter):
    """Redacts URLs in the records of the HTTP libraries, which log each request's full URL (query included)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_text(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


#: loggers of the openai client and the HTTP libraries it has used that write request URLs
TRANSPORT_LOGGERS = ("openai", "openai._base_client", "httpx", "httpx2")
_REDACTING_FILTER = _RedactingFilter()


class JudgeClient:
    """One judge endpoint and the settings of every request to it. The API key is read from the environment variable
    `api_key_env` and handed to the openai client only; `base_url` is the endpoint as it may be written (redacted)."""

    def __init__(
        self,
        model: str,
        *,
        base_url: Optional[str],
        api_key_env: str,
        concurrency: int,
        timeout_s: float,
        retry: RetryPolicy,
        temperature: float,
        max_tokens: int,
    ):
        from openai import OpenAI

        self.model = model
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.retry = retry
        self.temperature = temperature
        self.max_tokens = max_tokens

        api_key = os.environ.get(api_key_env)
        if not api_key:
            if base_url is None and not os.environ.get("OPENAI_BASE_URL"):
                raise UserError(
                    f"--judge-api-key-env {api_key_env}: that environment variable is not set; export the judge API "
                    "key in it, or pass --judge-base-url for a local endpoint that needs no key"
                )
            api_key = "EMPTY"  # what vLLM and similar local servers accept when started without --api-key
        self.api_key_env = api_key_env
        raw_url = base_url or os.environ.get("OPENAI_BASE_URL") or None
        client_url, query, had_user_info = split_base_url(raw_url) if raw_url else (None, {}, False)
        if had_user_info:
            log.warning("the judge base URL's user:password part is not sent; the judge gets the key in $%s",
                        api_key_env)
        # Our RetryPolicy is the only retry loop (max_retries=0), so attempts and waits are ours to count and test.
        # The client's timeout bounds each read; _attempt bounds the whole attempt.
        self._openai = OpenAI(api_key=api_key, base_url=client_url, default_query=query or None,
                              timeout=self.timeout_s, max_retries=0)
        query_text = urlsplit(raw_url).query if raw_url else ""
        self.base_url = redact_url(str(self._openai.base_url) + (f"?{query_text}" if query_text else ""))
        for name in TRANSPORT_LOGGERS:
            if _REDACTING_FILTER not in logging.getLogger(name).filters:
                logging.getLogger(name).addFilter(_REDACTING_FILTER)
        self._stop = threading.Event()

    def ask_all(self, keys: list[str], requests: dict[str, list[dict[str, str]]],
                cache: Optional[AnswerCache]) -> dict[str, Outcome]:
        """Ask for every key with at most `concurrency` requests in flight (each worker puts its answer in `cache` as
        it arrives, so whatever ends this batch early, nothing answered is lost)."""
        self._stop.clear()
        outcomes: dict[str, Outcome] = {}
        pool = ThreadPoolExecutor(max_workers=min(self.concurrency, len(keys)), thread_name_prefix="judge")
        try:
            futures: dict[Future[Outcome], str] = {pool.submit(self._ask, requests[k], k, cache): k for k in keys}
            for future in as_completed(futures):
                outcomes[futures[future]] = future.result()
        except BaseException:
            # Ctrl-C, or a cache that cannot be written: workers stop at their next backoff, not retrying on.
            self._stop.set()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
        return outcomes

    def _ask(self, messages: list[dict[str, str]], key: str, cache: Optional[AnswerCache]) -> Outcome:
        """Request with retries, caching the answer the moment it arrives; never raises for a failure of the
        endpoint or of this one request's handling."""
        import openai

        attempts = 0
        while True:
            attempts += 1
            retry_after: Optional[float] = None
            try:
                content = self._attempt(messages)
            except (AttemptTimedOut, openai.APITimeoutError):
                reason = f"timed out after {attempts} attempt(s) of {self.timeout_s:g} s"
            except openai.APIConnectionError:
                reason = f"connection failed after {attempts} attempt(s)"
            except MalformedResponse as e:
                reason = f"malformed response ({e}) after {attempts} attempt(s)"
            except openai.APIStatusError as e:
                if not self.retry.is_retryable_status(e.status_code):
                    return Outcome(error=self._not_retried(e), attempts=attempts)
                reason = f"HTTP {e.status_code} after {attempts} attempt(s)"
                retry_after = retry_after_of(e.response)
            except Exception as e:  # unforeseen, a bug included: this sample's error, not the batch's crash
                message = self._redact(" ".join(str(e).split()))[:160]
                return Outcome(error=f"error: unexpected {type(e).__name__} (not retried)"
                               + (f": {message}" if message else ""), attempts=attempts)
            else:
                if cache is not None:
                    cache.put(key, content, self.model, self.base_url)
                return Outcome(answer=content, attempts=attempts)
            retry = attempts - 1
            if retry >= self.retry.max_retries or self._stop.is_set():
                return Outcome(error=f"error: {reason}", attempts=attempts)
            if self._stop.wait(self.retry.delay(retry, key, retry_after)):
                return Outcome(error=f"error: {reason} (run interrupted)", attempts=attempts)

    def _attempt(self, messages: list[dict[str, str]]) -> str:
        """One attempt's answer, within `timeout_s` in all; raises on any failure. The client's timeouts apply per
        read (a server trickling bytes would hold the attempt far longer), so the request runs in a thread of its
        own that this one stops waiting for at the deadline; the abandoned request ends at its next byte, or at the
        client's read timeout."""
        ended: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=1)
        abandoned = threading.Event()

        def run() -> None:
            try:
                ended.put((True, self._request(messages, abandoned)))
            except BaseException as e:  # handed to the waiting thread, which decides
                ended.put((False, e))

        threading.Thread(target=run, name=f"{threading.current_thread().name}-attempt", daemon=True).start()
        try:
            ok, value = ended.get(timeout=self.timeout_s)
        except queue.Empty:
            abandoned.set()
            raise AttemptTimedOut() from None
        if not ok:
            raise value
        return cast(str, value)

    def _request(self, messages: list[dict[str, str]], abandoned: threading.Event) -> str:
        """Send one request and read its body as it arrives, stopping early once `abandoned` is set."""
        with self._openai.chat.completions.with_streaming_response.create(
            model=self.model, messages=messages, temperature=self.temperature, max_tokens=self.max_tokens
        ) as response:
            body = bytearray()
            try:
                for chunk in response.iter_bytes():
                    if abandoned.is_set():
                        return ""  # nobody is waiting for this answer any more
                    body += chunk
            except Exception as e:  # reset or closed mid-body; the HTTP library's own error type
                raise MalformedResponse(f"body cut off after {len(body)} bytes, {type(e).__name__}") from None
            return answer_of(bytes(body), response.headers.get("content-type", ""))

    def _not_retried(self, e: Any) -> str:
        status = e.status_code
        if status in (401, 403):
            # Servers quote (parts of) the offending key in these messages: say nothing of the body.
            return f"error: HTTP {status} (not retried; check the key in ${self.api_key_env})"
        message = ""
        body = getattr(e, "body", None)
        if isinstance(body, Mapping):
            inner = body.get("error", body)
            message = str(inner.get("message", "")) if isinstance(inner, Mapping) else str(inner)
        message = self._redact(" ".join(message.split()))[:160]
        return f"error: HTTP {status} (not retried)" + (f": {message}" if message else "")

    def _redact(self, text: str) -> str:
        """`text` (a server's or an exception's message) with URLs redacted and the key and the base URL's query
        values replaced: a server may quote them back. The key is looked up again rather than kept on the client,
        so no attribute of ours ever holds it."""
        secrets = [os.environ.get(self.api_key_env), *_secret_values(self._openai.default_query)]
        text = redact_text(text)
        for secret in secrets:
            if secret and secret != "EMPTY":
                text = text.replace(secret, "***")
        return text

    def close(self) -> None:
        """Close the HTTP client."""
        self._openai.close()
