"""A unit LM served by vLLM: `--model-backend vllm --engine-url URL` scores and samples through the OpenAI-compatible
server of vLLM that the user started on the same checkpoint:

    python -m vllm.entrypoints.openai.api_server --model DIR --skip-tokenizer-init
    alignslm-eval --model DIR --model-backend vllm --engine-url http://HOST:8000/v1 ...

Nothing of the model is loaded here: its config.json and unit vocabulary are read exactly as `HFUnitLM` reads them
(`unit_vocabulary`), so sequences become the same token ids, and every request sends token ids, never text.

Protocol: the /v1/completions and /v1/models API of vLLM 0.10.2 or later (V1 engine), as in
vllm/entrypoints/openai/completion/protocol.py and serving.py of vLLM's main branch (2025-26):

- Likelihood: one request per sequence, `prompt` the token ids, `max_tokens` 1 at temperature 0, `prompt_logprobs` 1.
  The choice's `prompt_logprobs` is a list with one entry per prompt token: null for the first (it has no context),
  then an object keyed by token id (as a string) whose values are `{"logprob", "rank", "decoded_token"}`; the actual
  prompt token is always among the keys, whatever the top-k asked for. Those are the raw model log-probabilities
  (vLLM's default `--logprobs-mode raw_logprobs`), summed here for the tokens after the first: the tokens `HFUnitLM`
  scores. (1, not 0: the top-1 costs nothing, and the scored token is read by its id either way.)
- Sampling: one request per prompt with `n`, `seed`, `temperature`, `top_k`, `top_p`, `min_p`, `repetition_penalty`,
  `max_tokens`, `allowed_token_ids` (units and EOS), `stop_token_ids` [EOS] and `return_token_ids` (added in 0.10.2,
  vLLM PR #22587): each choice then carries the sampled ids in `token_ids`, the one way to read them back from a
  `--skip-tokenizer-init` server, whose `text` is empty. Every sampling parameter is sent, as vLLM otherwise takes its
  defaults from the checkpoint's generation_config.json, which `HFUnitLM` ignores.
- Vocabulary size: vLLM does not check prompt ids against the vocabulary when it runs without a tokenizer (an id past
  the embeddings would reach the GPU), but it does check `logit_bias` ids against the model's vocabulary size in every
  case. So the start-up probe sends a zero bias on token id V-1, which must be accepted, and on V, which must be
  refused with HTTP 400 ("... out-of-vocab token ids. Vocabulary size: N"): V is then the served model's size too.

Requests go out over urllib (JSON in, JSON out: token-id prompts and vLLM's extra fields need nothing else), at most
`engine_concurrency` at once, each attempt bounded in all by `engine_timeout_s`; HTTP 408/429/5xx, timeouts and
connection failures are retried with the judge's `RetryPolicy` backoff. A failure that outlasts the retries, a refused
request and a malformed answer are `UserError`s naming the sequence: no item is ever skipped.
"""

from __future__ import annotations

import json
import queue
import re
import socket
import threading
import urllib.error
import urllib.request
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from http.client import HTTPException
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Optional, Sequence, TypeVar

import numpy as np

from alignslm_eval.api.model import LikelihoodProtocol, LogLikelihood, SamplingConfig, UnitLM
from alignslm_eval.api.registry import register_model
from alignslm_eval.io.errors import UserError, first_line
from alignslm_eval.io.redaction import redact_text, redact_url
from alignslm_eval.models.adapters import read_chain
from alignslm_eval.models.hf_unit_lm import SLAM_MODEL_TYPE, unit_vocabulary
from alignslm_eval.models.loading import read_config, resolve_checkpoint, weights_fingerprint
from alignslm_eval.models.vocab import UnitVocabulary
from alignslm_eval.scoring.judge.retry import RetryPolicy, retry_after_of

T = TypeVar("T")
SERVER_COMMAND = "python -m vllm.entrypoints.openai.api_server --model {dir} --skip-tokenizer-init"
_VOCAB_SIZE_IN_MESSAGE = re.compile(r"[Vv]ocabulary size:?\s*(\d+)")
_INT64_SEEDS = 2**63


class EngineRefused(Exception):
    """The server answered with an HTTP status that retrying cannot change (e.g. 400 for a bad request)."""

    def __init__(self, status: int, message: str):
        super().__init__(f"HTTP {status}" + (f": {message}" if message else ""))
        self.status = status
        self.message = message


class EngineUnavailable(Exception):
    """No answer after every retry: timeouts, connection failures, or HTTP 408/429/5xx."""


class MalformedAnswer(Exception):
    """A 200 answer that is not the JSON the protocol describes; the message says what is wrong."""


class _AttemptTimedOut(Exception):
    pass


@dataclass
class _Reply:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass
class EngineClient:
    """HTTP to one vLLM server: JSON requests with a total deadline per attempt and retries with backoff."""

    base_url: str
    concurrency: int = 8
    timeout_s: float = 300.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")
        self.shown_url = redact_url(self.base_url) or ""
        self._stop = threading.Event()

    def get(self, path: str, key: str) -> Any:
        return self._json(self._with_retries("GET", path, None, key))

    def post(self, path: str, payload: dict[str, Any], key: str) -> Any:
        return self._json(self._with_retries("POST", path, payload, key))

    def post_once(self, path: str, payload: dict[str, Any], key: str) -> tuple[int, str]:
        """(status, error message) of a request whose refusal is an answer (a probe); retried like any other."""
        try:
            self.post(path, payload, key)
        except EngineRefused as e:
            return e.status, e.message
        return 200, ""

    def map(self, fn: Callable[[int], T], count: int, on_result: Callable[[int, T], None]) -> None:
        """fn(0..count-1) with at most `concurrency` calls at once; `on_result` in this thread as each ends. The
        first exception stops the rest (waiting workers give up at their next backoff) and is raised here."""
        if count == 0:
            return
        self._stop.clear()
        pool = ThreadPoolExecutor(max_workers=min(self.concurrency, count), thread_name_prefix="vllm")
        try:
            futures: dict[Future[T], int] = {pool.submit(fn, i): i for i in range(count)}
            for future in as_completed(futures):
                on_result(futures[future], future.result())
        except BaseException:
            self._stop.set()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True)

    def _with_retries(self, method: str, path: str, payload: Optional[dict[str, Any]], key: str) -> _Reply:
        attempts = 0
        while True:
            attempts += 1
            retry_after: Optional[float] = None
            try:
                reply = self._attempt(method, path, payload)
            except _AttemptTimedOut:
                reason = f"no answer within {self.timeout_s:g} s"
            except (OSError, HTTPException) as e:  # refused, reset, cut off mid-body, a socket timeout
                reason = f"connection failed ({type(e).__name__}: {first_line(e, 120)})"
            else:
                if 200 <= reply.status < 300:
                    return reply
                if not self.retry.is_retryable_status(reply.status):
                    raise EngineRefused(reply.status, _error_message(reply.body))
                reason = f"HTTP {reply.status}"
                retry_after = retry_after_of(reply)
            if attempts > self.retry.max_retries or self._stop.is_set():
                raise EngineUnavailable(f"{redact_text(reason)} after {attempts} attempt(s)")
            if self._stop.wait(self.retry.delay(attempts - 1, key, retry_after)):
                raise EngineUnavailable(f"{redact_text(reason)} (run stopped)")

    def _attempt(self, method: str, path: str, payload: Optional[dict[str, Any]]) -> _Reply:
        """One exchange within `timeout_s` in all. Socket timeouts bound each read only (a server trickling bytes
        would hold on far longer), so the exchange runs in a thread this one stops waiting for at the deadline."""
        ended: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=1)

        def run() -> None:
            try:
                ended.put((True, self._exchange(method, path, payload)))
            except BaseException as e:  # handed over to the waiting thread
                ended.put((False, e))

        threading.Thread(target=run, name=f"{threading.current_thread().name}-attempt", daemon=True).start()
        try:
            ok, value = ended.get(timeout=self.timeout_s)
        except queue.Empty:
            raise _AttemptTimedOut() from None
        if not ok:
            raise value
        return value

    def _exchange(self, method: str, path: str, payload: Optional[dict[str, Any]]) -> _Reply:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(self.base_url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json", "Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return _Reply(response.status, {k.lower(): v for k, v in response.headers.items()}, response.read())
        except urllib.error.HTTPError as e:  # a status outside 2xx: an answer, not a transport failure
            body = e.read() if e.fp is not None else b""
            return _Reply(e.code, {k.lower(): v for k, v in (e.headers or {}).items()}, body)
        except urllib.error.URLError as e:
            reason = e.reason if isinstance(e.reason, BaseException) else OSError(str(e.reason))
            raise reason from None
        except socket.timeout as e:
            raise TimeoutError(str(e)) from None

    @staticmethod
    def _json(reply: _Reply) -> Any:
        try:
            return json.loads(reply.body)
        except ValueError:  # JSONDecodeError, or bytes that are not UTF-8
            kind = reply.headers.get("content-type") or "no content type"
            raise MalformedAnswer(f"not JSON ({kind}, {len(reply.body)} bytes)") from None


def _error_message(body: bytes) -> str:
    """The message of a vLLM/OpenAI error body ({"error": {"message"}} or {"message"}), on one line."""
    try:
        payload = json.loads(body)
    except ValueError:
        return " ".join(body.decode("utf-8", "replace").split())[:200]
    if isinstance(payload, dict):
        inner = payload.get("error", payload)
        message = inner.get("message", inner) if isinstance(inner, dict) else inner
        return redact_text(" ".join(str(message).split()))[:300]
    return ""


@register_model("vllm")
class VLLMUnitLM(UnitLM):
    def __init__(self, client: EngineClient, served_model: str, vocab: UnitVocabulary, vocab_size: int,
                 max_model_len: Optional[int], provenance: dict[str, Any]):
        self.client = client
        self.served_model = served_model
        self.vocab = vocab
        self.vocab_size = vocab_size
        self.max_model_len = max_model_len
        self.provenance = provenance

    @classmethod
    def from_args(
        cls,
        model: str,
        engine_url: Optional[str] = None,
        engine_concurrency: int = 8,
        adapter: Optional[str] = None,
        unit_convention: Optional[str] = None,
        unit_offset: Optional[int] = None,
        n_units: Optional[int] = None,
        revision: Optional[str] = None,
        engine_timeout_s: float = 300.0,
        engine_retry: Optional[RetryPolicy] = None,
        **_: Any,
    ) -> "VLLMUnitLM":
        checkpoint, provenance = resolve_checkpoint(model, revision)
        if not engine_url:
            raise UserError("--model-backend vllm: pass --engine-url, the /v1 URL of the vLLM server serving --model "
                            f"(started with `{SERVER_COMMAND.format(dir=checkpoint)}`)")
        if adapter:
            _refuse_adapter(adapter, model)
        config = read_config(checkpoint)
        if config.get("model_type") == SLAM_MODEL_TYPE:
            raise UserError(f"{checkpoint / 'config.json'}: a slamkit speech_language_model checkpoint, which vLLM "
                            "cannot load; save its inner LM with save_pretrained (and alignslm_units.json) to a dir, "
                            "serve that and pass it as --model")
        lm_config = _transformers_config(checkpoint)
        vocab_size = int(getattr(lm_config.get_text_config(), "vocab_size", 0) or config.get("vocab_size", 0))
        if vocab_size < 1:
            raise UserError(f"{checkpoint / 'config.json'}: no vocab_size; re-save the model with save_pretrained")
        vocab = unit_vocabulary(checkpoint, config, vocab_size, lm_config, unit_convention, unit_offset, n_units)
        client = EngineClient(engine_url, engine_concurrency, engine_timeout_s, engine_retry or RetryPolicy())
        served = _served_model(client, model, checkpoint, provenance.get("hub_id"))
        _check_vocab_size(client, served["id"], vocab_size, vocab.offset, checkpoint)
        max_model_len = served.get("max_model_len")
        if not isinstance(max_model_len, int) or isinstance(max_model_len, bool) or max_model_len < 2:
            max_model_len = getattr(lm_config, "max_position_embeddings", None)
        provenance.update(
            backend="vllm",
            engine="vllm",
            engine_url=client.shown_url,
            engine_version=_server_version(client),
            served_model=served["id"],
            served_root=served.get("root"),
            max_model_len=max_model_len,
            architecture=(config.get("architectures") or [config.get("model_type")])[0],
            weights_fingerprint=weights_fingerprint(checkpoint),
        )
        return cls(client, served["id"], vocab, vocab_size, max_model_len, provenance)

    @property
    def sampler(self) -> str:
        # vLLM's own sampler, seeded per request: its draws may change with the vLLM version.
        return f"vllm {self.provenance.get('engine_version') or '(version not reported)'} per-request seed"

    def describe(self) -> dict[str, Any]:
        return {**self.provenance, "vocab": self.vocab.__dict__}

    def loglikelihood(
        self,
        sequences: Sequence[np.ndarray],
        protocol: LikelihoodProtocol,
        batch_size: int = 8,
        on_batch: Optional[Callable[[list[int], list[LogLikelihood]], None]] = None,
        names: Optional[Sequence[str]] = None,
    ) -> list[LogLikelihood]:
        """One request per sequence (the server batches them: `batch_size` does not apply), at most
        `engine_concurrency` in flight; `on_batch` gets each result as it arrives."""
        names = names or [f"sequence {i}" for i in range(len(sequences))]
        tokens = [self.vocab.encode(s, protocol.add_bos, protocol.add_eos, source=n) for s, n in zip(sequences, names)]
        if self.max_model_len:
            for name, t in zip(names, tokens):
                # vLLM needs room for the one token each request samples
                if len(t) >= self.max_model_len:
                    raise UserError(f"{name}: {len(t)} tokens, more than the {self.max_model_len - 1} the vLLM server "
                                    f"at {self.client.shown_url} takes (max_model_len {self.max_model_len}, less the "
                                    "one token it samples); use shorter audio")
        results: list[Optional[LogLikelihood]] = [None] * len(tokens)

        def score(i: int) -> LogLikelihood:
            return self._score(tokens[i], names[i])

        def arrived(i: int, result: LogLikelihood) -> None:
            results[i] = result
            if on_batch is not None:
                on_batch([i], [result])

        self.client.map(score, len(tokens), arrived)
        return results  # type: ignore[return-value]

    def generate(self, prompts: Sequence[np.ndarray], config: SamplingConfig,
                 seeds: Sequence[int]) -> list[list[np.ndarray]]:
        if len(seeds) != len(prompts):
            raise ValueError(f"{len(prompts)} prompts but {len(seeds)} seeds")
        tokens = [self.vocab.encode(p, add_bos=self.vocab.bos_id is not None, add_eos=False, source=f"prompt {i}")
                  for i, p in enumerate(prompts)]
        if self.max_model_len:
            for i, t in enumerate(tokens):
                if len(t) + config.max_new_tokens > self.max_model_len:
                    raise UserError(f"prompt {i}: {len(t)} tokens + {config.max_new_tokens} new tokens exceeds the "
                                    f"vLLM server's max_model_len {self.max_model_len}; use a shorter prompt or fewer "
                                    "new tokens")
        if config.n < 1 or config.max_new_tokens < 1:
            return [[np.zeros(0, dtype=np.int64) for _ in range(config.n)] for _ in prompts]
        # Only units (and EOS) may be sampled: special and unused text tokens are not speech.
        allowed = list(range(self.vocab.offset, self.vocab.offset + self.vocab.n_units))
        if self.vocab.eos_id is not None:
            allowed.append(self.vocab.eos_id)
        results: list[list[np.ndarray]] = [[] for _ in prompts]

        def sample(i: int) -> list[np.ndarray]:
            return self._sample(tokens[i], config, int(seeds[i]), allowed, f"prompt {i}")

        def arrived(i: int, continuations: list[np.ndarray]) -> None:
            results[i] = continuations

        self.client.map(sample, len(tokens), arrived)
        return results

    def _request(self, payload: dict[str, Any], name: str, key: str) -> dict[str, Any]:
        """POST /completions for item `name`; every failure is a UserError naming it and the server."""
        where = f"vLLM server {self.client.shown_url}"
        try:
            answer = self.client.post("/completions", {"model": self.served_model, **payload}, key)
        except EngineRefused as e:
            raise UserError(f"{name}: the {where} refused the request ({e}); check that it serves --model with the "
                            "vocabulary and max_model_len it was trained with")
        except EngineUnavailable as e:
            raise UserError(f"{name}: no answer from the {where}: {e}; check that it is up (a bigger "
                            "--engine-concurrency than it can take waits longer)")
        except MalformedAnswer as e:
            raise UserError(f"{name}: the {where} answered something that is no completion ({e}); is it vLLM "
                            "0.10.2 or later, not a proxy page?")
        choices = answer.get("choices") if isinstance(answer, dict) else None
        if not isinstance(choices, list) or not choices or not all(isinstance(c, dict) for c in choices):
            raise UserError(f"{name}: the {where} answered a completion without choices; is it vLLM 0.10.2 or later?")
        return answer

    def _score(self, tokens: np.ndarray, name: str) -> LogLikelihood:
        if len(tokens) < 2:  # nothing to score, as in HFUnitLM (and vLLM refuses an empty prompt)
            return LogLikelihood(0.0, max(0, len(tokens) - 1))
        prompt = tokens.tolist()
        answer = self._request({"prompt": prompt, "max_tokens": 1, "temperature": 0.0, "prompt_logprobs": 1},
                               name, key=f"{name}/score")
        entries = answer["choices"][0].get("prompt_logprobs")

        def malformed(what: str) -> UserError:
            return UserError(f"{name}: the vLLM server {self.client.shown_url} answered {what}; is it vLLM 0.10.2 or "
                             "later, serving --model?")

        if not isinstance(entries, list) or len(entries) != len(prompt):
            got = f"{len(entries)} entries" if isinstance(entries, list) else type(entries).__name__
            raise malformed(f"prompt_logprobs of {got} for a prompt of {len(prompt)} tokens")
        total = 0.0  # Python floats are doubles: long utterances sum hundreds of terms
        for position in range(1, len(prompt)):
            entry = entries[position]
            scored = entry.get(str(prompt[position])) if isinstance(entry, dict) else None
            logprob = scored.get("logprob") if isinstance(scored, dict) else scored
            if not isinstance(logprob, (int, float)) or isinstance(logprob, bool) or logprob != logprob:
                raise malformed(f"no log-probability of prompt token {prompt[position]} at position {position}")
            total += float(logprob)
        return LogLikelihood(total, len(prompt) - 1)

    def _sample(self, tokens: np.ndarray, config: SamplingConfig, seed: int, allowed: list[int],
                name: str) -> list[np.ndarray]:
        eos = self.vocab.eos_id
        payload = {
            "prompt": tokens.tolist(),
            "n": config.n,
            "seed": seed % _INT64_SEEDS,
            "temperature": config.temperature,
            "top_k": config.top_k if config.top_k else -1,  # -1: no top-k, in every vLLM version
            "top_p": config.top_p if config.top_p is not None else 1.0,
            "min_p": 0.0,
            "repetition_penalty": config.repetition_penalty,
            "max_tokens": config.max_new_tokens,
            "allowed_token_ids": allowed,
            "stop_token_ids": [eos] if eos is not None else [],
            "return_token_ids": True,
        }
        answer = self._request(payload, name, key=f"{name}/{seed}")
        choices = sorted(answer["choices"], key=lambda c: c.get("index", 0) if isinstance(c.get("index"), int) else 0)
        if len(choices) != config.n:
            raise UserError(f"{name}: the vLLM server {self.client.shown_url} answered {len(choices)} choices for "
                            f"n={config.n}")
        allowed_set = set(allowed)
        continuations = []
        for choice in choices:
            ids = choice.get("token_ids")
            if not isinstance(ids, list) or not all(isinstance(t, int) and not isinstance(t, bool) for t in ids):
                raise UserError(f"{name}: the vLLM server {self.client.shown_url} answered no token_ids; it needs "
                                "vLLM 0.10.2 or later (return_token_ids)")
            outside = [t for t in ids if t not in allowed_set]
            if outside:
                raise UserError(f"{name}: the vLLM server {self.client.shown_url} sampled token {outside[0]}, not a "
                                "unit or EOS, despite allowed_token_ids; is it vLLM, serving --model?")
            row = np.asarray(ids, dtype=np.int64)
            if eos is not None and (row == eos).any():
                row = row[: int(np.argmax(row == eos))]
            continuations.append(self.vocab.decode(row))
        return continuations


def _refuse_adapter(adapter: str, model: str) -> None:
    """vLLM serves one checkpoint here: an adapter (or a curriculum chain of them) is merged into it first, which also
    gives exactly the weights HFUnitLM would score with (vLLM's per-request LoRA needs --enable-lora, a matching max
    rank and adapters without trained embeddings, and is not supported)."""
    merge = f"alignslm-train merge --model {model} --adapter {adapter} --output MERGED"
    chain = read_chain(Path(adapter))
    what = f"an adapter with a chain of {len(chain)} earlier round(s)" if chain else "an adapter"
    raise UserError(f"--adapter {adapter}: {what}, which the vllm back-end does not apply; merge it first with "
                    f"`{merge}`, serve MERGED with vLLM and pass --model MERGED")


def _transformers_config(checkpoint: Path) -> Any:
    """The transformers config of a plain checkpoint (its special token ids, with the class defaults HFUnitLM's loaded
    model has too), read without the weights."""
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(checkpoint)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UserError(f"{checkpoint / 'config.json'}: not a transformers config ({first_line(e)}); re-save the "
                        "model with save_pretrained")


def _served_model(client: EngineClient, model: str, checkpoint: Path, hub_id: Optional[str]) -> dict[str, Any]:
    """The /v1/models entry of the server that stands for the checkpoint: its root or id is the checkpoint's path,
    its hub id, or a path ending in the checkpoint dir's name (the server may mount it elsewhere)."""
    flag = f"--engine-url {client.shown_url}"
    try:
        listing = client.get("/models", key="models")
    except EngineUnavailable as e:
        raise UserError(f"{flag}: no vLLM server answers there ({e}); start one with "
                        f"`{SERVER_COMMAND.format(dir=checkpoint)}` and pass its /v1 URL")
    except (EngineRefused, MalformedAnswer) as e:
        raise UserError(f"{flag}: GET /models answered {e}, not a vLLM model list; pass the server's /v1 URL")
    entries = listing.get("data") if isinstance(listing, dict) else None
    if not isinstance(entries, list) or not all(isinstance(e, dict) and isinstance(e.get("id"), str) for e in entries):
        raise UserError(f"{flag}: GET /models answered no model list; pass the /v1 URL of a vLLM server")
    bases = [e for e in entries if not e.get("parent")]  # entries with a parent are LoRA modules
    for entry in bases:
        if _names_checkpoint(entry, model, checkpoint, hub_id):
            return entry
    served = ", ".join(f"{e['id']} (root {e.get('root')})" for e in bases) or "no model"
    raise UserError(f"{flag}: the server serves {served}, not --model {model} ({checkpoint}); start it with "
                    f"`{SERVER_COMMAND.format(dir=checkpoint)}`, or pass the --model it serves")


def _names_checkpoint(entry: dict[str, Any], model: str, checkpoint: Path, hub_id: Optional[str]) -> bool:
    for name in (entry.get("root"), entry.get("id")):
        if not isinstance(name, str) or not name:
            continue
        if name in (model, str(checkpoint), hub_id):
            return True
        if PurePosixPath(name.rstrip("/")).name == checkpoint.name:
            return True
        try:
            if Path(name).expanduser().resolve() == checkpoint:
                return True
        except (OSError, ValueError, RuntimeError):
            continue
    return False


def _check_vocab_size(client: EngineClient, served: str, vocab_size: int, valid_token: int, checkpoint: Path) -> None:
    """A UserError unless the server's model has exactly `vocab_size` token ids (see the module docstring)."""
    flag = f"--engine-url {client.shown_url}"

    def probe(token_id: int) -> tuple[int, str]:
        payload = {"model": served, "prompt": [valid_token], "max_tokens": 1, "temperature": 0.0,
                   "logit_bias": {str(token_id): 0.0}}
        try:
            return client.post_once("/completions", payload, key=f"probe/{token_id}")
        except (EngineUnavailable, MalformedAnswer) as e:
            raise UserError(f"{flag}: the vocabulary-size probe got {e}; check that the server is up and is vLLM")

    ours = f"{checkpoint / 'config.json'} has {vocab_size}"
    status, message = probe(vocab_size - 1)
    if status != 200:
        if status != 400 or "vocab" not in message.lower():
            raise UserError(f"{flag}: the server refused a one-token probe (HTTP {status}: {message}); check that it "
                            "serves --model")
        found = _VOCAB_SIZE_IN_MESSAGE.search(message)
        theirs = f"{found.group(1)} token ids" if found else f"fewer than {vocab_size} token ids"
        raise UserError(f"{flag}: the served model has {theirs}, but {ours}; serve the same checkpoint as --model")
    status, message = probe(vocab_size)
    if status == 200:
        raise UserError(f"{flag}: the served model takes token id {vocab_size}, but {ours} (0..{vocab_size - 1}); "
                        "serve the same checkpoint as --model (vLLM 0.10.2 or later, which checks token ids)")
    if status != 400:
        raise UserError(f"{flag}: the vocabulary-size probe got HTTP {status} ({message}); check the server")


def _server_version(client: EngineClient) -> Optional[str]:
    """vLLM's version from GET /version beside /v1, or None where the server does not say (never fatal)."""
    root = client.base_url[: -len("/v1")] if client.base_url.endswith("/v1") else client.base_url
    probe = EngineClient(root, 1, min(client.timeout_s, 30.0), RetryPolicy(max_retries=0))
    try:
        answer = probe.get("/version", key="version")
    except (EngineRefused, EngineUnavailable, MalformedAnswer):
        return None
    version = answer.get("version") if isinstance(answer, dict) else None
    return str(version) if version is not None else None
