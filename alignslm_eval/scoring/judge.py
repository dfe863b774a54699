"""LLM-judge scorers: an OpenAI-compatible chat model rates a continuation's transcript against its prompt's, 1-5.

The prompt templates shipped in `alignslm_eval/scoring/prompts/` are this project's own wording. The exact prompts of
the Align-SLM paper could not be obtained, so scores from them are comparable with each other but not with the
paper's numbers. Another wording is a template file, `--judge-prompt FILE` (option `judge_prompt`): plain text with
the placeholders {prompt} and {continuation}, or slamkit's placeholders [prompt_audio_transcription] and
[generated_audio_transcription]; a `.yaml`/`.yml` file is read as slamkit's judge config (`config/metric/
llm_as_judge.yaml`, Maimon et al. 2025), whose `instruction` field is the template.

Two registered scorers share one implementation, `LLMJudge`:

* `judge_gpt4o` (metric `gpt4o_score`): the evaluation score of Lin et al. (ACL 2025, "Align-SLM", arXiv
  2411.01834) -- how relevant and plausible the continuation is as a continuation of the prompt, rated by GPT-4o.
* `judge_rating` (metric `semantic_rating`): the 1-5 semantic rating Align-SLM has an LLM (Mistral, e.g. served by
  vLLM) give each sampled continuation when it builds preference data.

The score is read from the LAST `\\boxed{N}` of the answer, N an integer or decimal in [1, 5] (slamkit's convention for
GPT-4o scores, Maimon et al. 2025); any other answer scores None with status "unparsable" and keeps the raw answer.
A template that asks for another answer format comes with its own pattern, `--judge-answer-pattern REGEX` (option
`judge_answer_pattern`): the last match's first group is the score, e.g. `I would rate the score as\\s*(\\d)`.
Answers are cached before parsing, so a new pattern re-reads them without asking again. An answer with no readable
score is final (status "unparsable", a real answer, counted apart from "error: ..." failures) unless
`--judge-retry-unparsable` (option `judge_retry_unparsable`) asks for those samples again.

Requests: the official `openai` client against any chat-completions endpoint (`--judge-base-url`; the client's default,
the OpenAI API, otherwise), at most `judge_concurrency` in flight. `judge_timeout_s` bounds each attempt in all
(connect, wait and read), not each read. The client's own retries are off; `RetryPolicy` retries 408/429/5xx,
timeouts, connection errors and malformed responses (a body that is not a chat completion: truncated, HTML, no
message, cut off) with capped exponential backoff, and a sample that still fails gets `Score(None, "error: ...")`
while the rest of the batch is scored. Anything else going wrong in one request (a bug included) is that sample's
error too, never the batch's. The API key is read from the environment variable named by `judge_api_key_env` and
handed to the client only: it is never stored in the cache, `describe()`, logs or statuses. A base URL's user-info is
dropped (never sent: the client would send it as Basic auth in place of the key) and its query parameters (e.g.
`?api-version=`) go with every request; both are redacted wherever the URL is written.

Cache: every answer the judge gave (unparsable ones too -- they are real answers) is stored in SQLite under
`judge_cache_dir` (default `$ALIGNSLM_CACHE/judge`, i.e. `~/.cache/alignslm/judge`), keyed by the sha256 of model,
base URL, temperature, max_tokens and the full rendered messages. The base URL is part of the key because one model
name served by two endpoints may be two different models (a local vLLM "mistral" vs another's). Failures are not
cached, so a rerun sends requests only for the samples that failed or were never answered.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import queue
import random
import re
import sqlite3
import threading
import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Iterable, Iterator, Mapping, Optional, Sequence, cast
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from alignslm_eval.api.registry import register_scorer
from alignslm_eval.api.scorer import Continuation, ContinuationScorer, Score
from alignslm_eval.io.cache import default_cache_dir
from alignslm_eval.io.errors import UserError
from alignslm_eval.io.redaction import is_secret_parameter, redact_text, redact_url

log = logging.getLogger(__name__)

PROMPTS_DIR = Path(__file__).resolve().parent / "prompts"
#: bump when the cache key's recipe changes, so old entries are never read under a new meaning
CACHE_KEY_VERSION = 1

#: the default answer pattern: the text inside \\boxed{...}
BOXED_PATTERN = r"\\boxed\s*\{([^{}]*)\}"
_BOXED = re.compile(BOXED_PATTERN)
_NUMBER = re.compile(r"\s*(\d+(?:\.\d+)?)\s*")
#: each template slot and the placeholder spellings that fill it: ours, then slamkit's llm_as_judge config's
PLACEHOLDERS = {"prompt": ("{prompt}", "[prompt_audio_transcription]"),
                "continuation": ("{continuation}", "[generated_audio_transcription]")}
_PLACEHOLDER = re.compile("|".join(re.escape(p) for spellings in PLACEHOLDERS.values() for p in spellings))
_SLOT = {p: slot for slot, spellings in PLACEHOLDERS.items() for p in spellings}


# -- prompt and answer ------------------------------------------------------------------------------------------------


def compile_answer_pattern(pattern: str, flag: str = "--judge-answer-pattern") -> re.Pattern[str]:
    """Compile a judge answer pattern; it must capture the score in its first group."""
    try:
        compiled = re.compile(pattern)
    except re.error as e:
        raise UserError(f"{flag} '{pattern}': not a valid regular expression ({e}); fix it")
    if compiled.groups < 1:
        raise UserError(f"{flag} '{pattern}': has no group; capture the score in parentheses, e.g. 'score:\\s*(\\d)'")
    return compiled


def parse_score(answer: Optional[str], pattern: re.Pattern[str] = _BOXED) -> Optional[float]:
    """The score in the last match of `pattern` in `answer` (its first group) if that is a number in [1, 5], else
    None: the last match decides, even when it is unreadable, so a draft score is never taken for the final one."""
    if not answer:
        return None
    matches = list(pattern.finditer(answer))
    if not matches:
        return None
    m = _NUMBER.fullmatch(matches[-1].group(1) or "")
    if m is None:
        return None
    value = float(m.group(1))
    return value if 1.0 <= value <= 5.0 else None


def parse_rule(pattern: str) -> str:
    """How an answer becomes a score, in words, for results files."""
    return (f"last match of the regular expression {pattern} in the answer; its first group must be an integer or "
            "decimal in [1, 5]; anything else is unparsable")


def load_template(path: Path, flag: str = "--judge-prompt") -> str:
    """Read a prompt template (plain text, or a slamkit judge config's `instruction`) and check both slots are in it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{flag} {path}: cannot read the prompt template ({getattr(e, 'strerror', None) or e})")
    if path.suffix.lower() in (".yaml", ".yml"):
        text = _slamkit_instruction(text, path, flag)
    missing = [spellings for spellings in PLACEHOLDERS.values() if not any(p in text for p in spellings)]
    if missing:
        wanted = " and ".join(" or ".join(spellings) for spellings in missing)
        raise UserError(f"{flag} {path}: the template must contain {wanted}; add the placeholder(s)")
    return text


def _slamkit_instruction(text: str, path: Path, flag: str) -> str:
    import yaml

    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise UserError(f"{flag} {path}: not valid YAML ({' '.join(str(e).split())}); fix the file")
    instruction = config.get("instruction") if isinstance(config, dict) else None
    if not isinstance(instruction, str) or not instruction.strip():
        raise UserError(f"{flag} {path}: a YAML template needs a text field 'instruction' (slamkit's llm_as_judge "
                        "config shape); add it, or pass the template as a .txt file")
    return instruction


def render_prompt(template: str, prompt: str, continuation: str) -> str:
    """Fill the prompt and continuation slots in one pass (a transcript containing "{continuation}" stays literal,
    and the template may hold other braces such as \\boxed{N})."""
    values = {"prompt": prompt, "continuation": continuation}
    return _PLACEHOLDER.sub(lambda m: values[_SLOT[m.group(0)]], template)


def default_judge_cache_dir() -> Path:
    return default_cache_dir() / "judge"


# -- retries --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """Which failures are retried and how long to wait: `max_retries` retries after the first attempt, waiting
    `backoff_s * 2**retry` (at most `backoff_max_s`, or the server's Retry-After if longer, still capped) plus up to
    10% jitter. The jitter is seeded by the request's cache key: reproducible, yet concurrent requests that fail
    together do not all come back at the same instant."""

    max_retries: int = 5
    backoff_s: float = 1.0
    backoff_max_s: float = 30.0

    RETRY_STATUSES: ClassVar[frozenset[int]] = frozenset({408, 429})

    def is_retryable_status(self, status: int) -> bool:
        return status in self.RETRY_STATUSES or 500 <= status <= 599

    def delay(self, retry: int, seed: str, retry_after: Optional[float] = None) -> float:
        base = min(self.backoff_s * (2 ** retry), self.backoff_max_s)
        if retry_after is not None:
            base = min(max(base, retry_after), self.backoff_max_s)
        jitter = random.Random(f"{seed}/{retry}").uniform(0.0, 0.1 * base)
        return base + jitter


def _retry_after(response: Any) -> Optional[float]:
    headers = getattr(response, "headers", None) or {}
    for name, scale in (("retry-after-ms", 1e-3), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(0.0, float(value) * scale)
        except ValueError:
            continue  # an HTTP date: fall back to our own backoff
    return None


# -- cache ----------------------------------------------------------------------------------------------------------


class AnswerCache:
    """Judge answers in one SQLite file, keyed by `LLMJudge.cache_key`. Each answer is committed as it arrives, so an
    interrupted run keeps everything answered so far; SQLite's locking lets parallel runs share the file. A file that
    cannot be read or written (not a database, a full disk, a lock held past `LOCK_TIMEOUT_S`) is a UserError naming
    it; answers committed before stay in it."""

    LOCK_TIMEOUT_S: ClassVar[float] = 60.0

    def __init__(self, root: Path):
        root = Path(root)
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UserError(f"--judge-cache-dir {root}: cannot create the judge cache directory ({e.strerror or e})")
        self.path = root / "answers.sqlite"
        self._lock = threading.Lock()
        with self._failing("opened"):
            self._db = sqlite3.connect(self.path, timeout=self.LOCK_TIMEOUT_S, check_same_thread=False)
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, model TEXT, base_url TEXT, answer TEXT, "
                "created REAL)"
            )
            self._db.commit()

    @contextmanager
    def _failing(self, what: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as e:
            raise UserError(f"{self.path}: the judge answer cache cannot be {what} ({e}); free disk space, end the "
                            "process holding it, or pass --judge-cache-dir DIR (a rerun asks only what it lacks)")

    def get_many(self, keys: Iterable[str]) -> dict[str, str]:
        wanted = list(dict.fromkeys(keys))
        found: dict[str, str] = {}
        with self._lock, self._failing("read"):
            for start in range(0, len(wanted), 500):  # SQLite's bound-parameter limit
                chunk = wanted[start : start + 500]
                rows = self._db.execute(
                    f"SELECT key, answer FROM answers WHERE key IN ({','.join('?' * len(chunk))})", chunk
                )
                found.update(rows)
        return found

    def put(self, key: str, answer: str, model: str, base_url: Optional[str]) -> None:
        with self._lock, self._failing("written"):
            self._db.execute(
                "INSERT OR REPLACE INTO answers (key, model, base_url, answer, created) VALUES (?, ?, ?, ?, ?)",
                (key, model, base_url, answer, time.time()),
            )
            self._db.commit()

    def close(self) -> None:
        with self._lock:
            self._db.close()


# -- the scorer -----------------------------------------------------------------------------------------------------


@dataclass
class _Outcome:
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


def _option(options: Mapping[str, Any], name: str, default: Any) -> Any:
    value = options.get(name)
    return default if value is None else value


class LLMJudge(ContinuationScorer):
    """A chat model asked, per continuation, for a 1-5 score in `\\boxed{N}`; see the module docstring."""

    #: registry name, also reported by describe()
    name: ClassVar[str] = "llm_judge"
    metric = "llm_judge"
    direction = "higher"
    needs = ("text",)
    required_options = ("judge_model",)
    #: file in prompts/ used when no --judge-prompt is given
    default_template: ClassVar[str] = ""
    citation: ClassVar[str] = ""

    def __init__(
        self,
        model: str,
        *,
        base_url: Optional[str] = None,
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 8,
        timeout_s: float = 60.0,
        max_retries: int = 5,
        backoff_s: float = 1.0,
        backoff_max_s: float = 30.0,
        temperature: float = 0.0,
        max_tokens: int = 256,
        cache_dir: Optional[Path] = None,
        use_cache: bool = True,
        prompt_path: Optional[Path] = None,
        answer_pattern: str = BOXED_PATTERN,
        retry_unparsable: bool = False,
    ):
        from openai import OpenAI

        if not model:
            raise UserError(f"the {self.name} scorer needs a judge model: pass --judge-model NAME (e.g. gpt-4o)")
        if int(concurrency) < 1:
            raise UserError(f"--judge-concurrency {concurrency}: must be at least 1")
        if float(timeout_s) <= 0:
            raise UserError(f"--judge-timeout {timeout_s}: must be a positive number of seconds")
        if int(max_retries) < 0:
            raise UserError(f"judge_max_retries {max_retries}: must be 0 or more")
        self.model = str(model)
        self.concurrency = int(concurrency)
        self.timeout_s = float(timeout_s)
        self.temperature = float(temperature)
        self.max_tokens = int(max_tokens)
        self.retry_unparsable = bool(retry_unparsable)
        self.retry = RetryPolicy(int(max_retries), float(backoff_s), float(backoff_max_s))

        self.prompt_path = Path(prompt_path) if prompt_path else PROMPTS_DIR / self.default_template
        self.prompt_is_builtin = prompt_path is None
        self.template = load_template(self.prompt_path, "--judge-prompt" if prompt_path else "built-in template")
        self.prompt_sha256 = hashlib.sha256(self.template.encode("utf-8")).hexdigest()
        self.answer_pattern = compile_answer_pattern(str(answer_pattern))

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
        self._client = OpenAI(api_key=api_key, base_url=client_url, default_query=query or None,
                              timeout=self.timeout_s, max_retries=0)
        query_text = urlsplit(raw_url).query if raw_url else ""
        self.base_url = redact_url(str(self._client.base_url) + (f"?{query_text}" if query_text else ""))
        for name in TRANSPORT_LOGGERS:
            if _REDACTING_FILTER not in logging.getLogger(name).filters:
                logging.getLogger(name).addFilter(_REDACTING_FILTER)

        self._cache: Optional[AnswerCache] = None
        if use_cache:
            self._cache = AnswerCache(Path(cache_dir) if cache_dir else default_judge_cache_dir())
        self._stop = threading.Event()

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> "LLMJudge":
        cache_dir = options.get("judge_cache_dir")
        prompt = options.get("judge_prompt")
        return cls(
            options.get("judge_model") or "",
            base_url=options.get("judge_base_url") or None,
            api_key_env=_option(options, "judge_api_key_env", "OPENAI_API_KEY"),
            concurrency=_option(options, "judge_concurrency", 8),
            timeout_s=_option(options, "judge_timeout_s", 60.0),
            max_retries=_option(options, "judge_max_retries", 5),
            backoff_s=_option(options, "judge_backoff_s", 1.0),
            backoff_max_s=_option(options, "judge_backoff_max_s", 30.0),
            temperature=_option(options, "judge_temperature", 0.0),
            max_tokens=_option(options, "judge_max_tokens", 256),
            cache_dir=Path(cache_dir) if cache_dir else None,
            use_cache=bool(_option(options, "judge_cache", True)),
            prompt_path=Path(prompt) if prompt else None,
            answer_pattern=_option(options, "judge_answer_pattern", BOXED_PATTERN),
            retry_unparsable=bool(_option(options, "judge_retry_unparsable", False)),
        )

    # -- requests ---------------------------------------------------------------------------------------------------

    def messages(self, prompt_text: str, text: str) -> list[dict[str, str]]:
        # One user turn, no system turn: some served chat templates (older Mistral instruct ones) reject a system
        # role, and the whole instruction lives in the template anyway.
        return [{"role": "user", "content": render_prompt(self.template, prompt_text, text)}]

    def cache_key(self, messages: list[dict[str, str]]) -> str:
        """sha256 over everything that decides the judge's answer: endpoint model, base URL, sampling settings and
        the full rendered messages (so a changed template or transcript is a new key)."""
        payload = {"v": CACHE_KEY_VERSION, "model": self.model, "base_url": self.base_url,
                   "temperature": self.temperature, "max_tokens": self.max_tokens, "messages": messages}
        return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()

    def _redact(self, text: str) -> str:
        """`text` (a server's or an exception's message) with URLs redacted and the key and the base URL's query
        values replaced: a server may quote them back. The key is looked up again rather than kept on the scorer,
        so no attribute of ours ever holds it."""
        secrets = [os.environ.get(self.api_key_env), *_secret_values(self._client.default_query)]
        text = redact_text(text)
        for secret in secrets:
            if secret and secret != "EMPTY":
                text = text.replace(secret, "***")
        return text

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
        with self._client.chat.completions.with_streaming_response.create(
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

    def _ask(self, messages: list[dict[str, str]], key: str) -> _Outcome:
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
                    return _Outcome(error=self._not_retried(e), attempts=attempts)
                reason = f"HTTP {e.status_code} after {attempts} attempt(s)"
                retry_after = _retry_after(e.response)
            except Exception as e:  # unforeseen, a bug included: this sample's error, not the batch's crash
                message = self._redact(" ".join(str(e).split()))[:160]
                return _Outcome(error=f"error: unexpected {type(e).__name__} (not retried)"
                                + (f": {message}" if message else ""), attempts=attempts)
            else:
                if self._cache is not None:
                    self._cache.put(key, content, self.model, self.base_url)
                return _Outcome(answer=content, attempts=attempts)
            retry = attempts - 1
            if retry >= self.retry.max_retries or self._stop.is_set():
                return _Outcome(error=f"error: {reason}", attempts=attempts)
            if self._stop.wait(self.retry.delay(retry, key, retry_after)):
                return _Outcome(error=f"error: {reason} (run interrupted)", attempts=attempts)

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

    # -- the ContinuationScorer interface ---------------------------------------------------------------------------

    def score(self, items: Sequence[Continuation]) -> list[Score]:
        results: list[Optional[Score]] = [None] * len(items)
        requests: dict[str, list[dict[str, str]]] = {}
        waiting: dict[str, list[int]] = {}
        for i, item in enumerate(items):
            if item.text is None:
                results[i] = Score(None, "no transcript")
            elif item.prompt_text is None:
                results[i] = Score(None, "no prompt transcript")
            else:
                messages = self.messages(item.prompt_text, item.text)
                key = self.cache_key(messages)
                requests.setdefault(key, messages)
                waiting.setdefault(key, []).append(i)

        answers: dict[str, str] = self._cache.get_many(waiting) if self._cache else {}
        if self.retry_unparsable:
            # Asked again; the new answer replaces the cached one.
            answers = {k: a for k, a in answers.items() if parse_score(a, self.answer_pattern) is not None}
        outcomes: dict[str, _Outcome] = {k: _Outcome(answer=a) for k, a in answers.items()}
        todo = [k for k in waiting if k not in answers]
        if todo:
            outcomes.update(self._ask_all(todo, requests))

        failures: Counter[str] = Counter()
        for key, indices in waiting.items():
            outcome = outcomes[key]
            for i in indices:
                if outcome.answer is None:
                    results[i] = Score(None, outcome.error or "error: no answer", {"attempts": outcome.attempts})
                    failures[outcome.error or "error: no answer"] += 1
                    continue
                value = parse_score(outcome.answer, self.answer_pattern)
                # The raw answer is kept either way: the per-sample log shows what the judge said.
                results[i] = Score(value, "ok" if value is not None else "unparsable", {"answer": outcome.answer})
        if failures:
            summary = "; ".join(f"{n} x {reason}" for reason, n in failures.most_common())
            log.warning("%s: %d of %d samples got no answer from %s (%s); a rerun retries only those",
                        self.metric, sum(failures.values()), len(items), self.model, summary)
        assert all(r is not None for r in results), "every item gets a Score"
        return cast("list[Score]", results)

    def _ask_all(self, keys: list[str], requests: dict[str, list[dict[str, str]]]) -> dict[str, _Outcome]:
        """Ask for every key with at most `concurrency` requests in flight (each worker caches its answer as it
        arrives, so whatever ends this batch early, nothing answered is lost)."""
        self._stop.clear()
        outcomes: dict[str, _Outcome] = {}
        pool = ThreadPoolExecutor(max_workers=min(self.concurrency, len(keys)), thread_name_prefix="judge")
        try:
            futures: dict[Future[_Outcome], str] = {pool.submit(self._ask, requests[k], k): k for k in keys}
            for future in as_completed(futures):
                outcomes[futures[future]] = future.result()
        except BaseException:
            # Ctrl-C, or a cache that cannot be written: workers stop at their next backoff, not retrying on.
            self._stop.set()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
        return outcomes

    def is_final(self, score: Score) -> bool:
        """With `retry_unparsable`, a stored unparsable score is asked again too."""
        return super().is_final(score) and not (self.retry_unparsable and score.status == "unparsable")

    def describe(self) -> dict[str, Any]:
        # retry_unparsable is not here (nor in the cache key): it decides what is asked, not what answers mean.
        return {
            "scorer": self.name,
            "metric": self.metric,
            "judge_model": self.model,
            "base_url": self.base_url,
            # Built-in templates by package path, so the description (and the run's score file key) does not
            # depend on where the package is installed.
            "prompt_template": (f"alignslm_eval/scoring/prompts/{self.default_template}" if self.prompt_is_builtin
                                else str(self.prompt_path)),
            "prompt_template_builtin": self.prompt_is_builtin,
            "prompt_sha256": self.prompt_sha256,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "parse": parse_rule(self.answer_pattern.pattern),
            "citation": self.citation,
        }

    def close(self) -> None:
        """Close the HTTP client and the cache file."""
        self._client.close()
        if self._cache is not None:
            self._cache.close()

    def __enter__(self) -> "LLMJudge":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@register_scorer("judge_gpt4o")
class GPT4oScore(LLMJudge):
    """Align-SLM's evaluation score: relevance and plausibility of the continuation given the prompt, 1-5."""

    name = "judge_gpt4o"
    metric = "gpt4o_score"
    default_template = "gpt4o_score.txt"
    citation = ("Lin et al. 2025, Align-SLM, ACL (arXiv 2411.01834): GPT-4o continuation score; \\boxed{N} answer "
                "format as in slamkit, Maimon et al. 2025; prompt wording: alignslm's own unless --judge-prompt")


@register_scorer("judge_rating")
class SemanticRating(LLMJudge):
    """Align-SLM's preference-data rating: an LLM evaluator's 1-5 semantic rating of the continuation."""

    name = "judge_rating"
    metric = "semantic_rating"
    default_template = "semantic_rating.txt"
    citation = ("Lin et al. 2025, Align-SLM, ACL (arXiv 2411.01834): LLM (Mistral) semantic rating for preference "
                "data; prompt wording: alignslm's own unless --judge-prompt")
