"""A loopback stand-in for vLLM's OpenAI-compatible server, for the vllm back-end's tests.

`VLLMServer` answers GET /v1/models, GET /version and POST /v1/completions on 127.0.0.1 (a free port) from a
background thread, in the subset of vLLM's protocol the back-end uses (see alignslm_eval/models/vllm_unit_lm.py):
token-id prompts; `prompt_logprobs` (null first, then {token id: {"logprob", "rank", "decoded_token"}} holding the
prompt token and the top-k) from one forward pass of a transformers model; sampling with `n`, `seed` (sample i of a
request seeded `seed + i`, as vLLM's parallel sampling does), `temperature`, `top_k`, `top_p`, `repetition_penalty`,
`max_tokens`, `allowed_token_ids`, `stop_token_ids` and `return_token_ids`, each sample on a `torch.Generator` of
its own. Token ids are checked as vLLM checks them: HTTP 400 for a prompt, `logit_bias`, `allowed_token_ids` or
`stop_token_ids` id outside the vocabulary (the `logit_bias` message states the vocabulary size, as vLLM's does), for
an unknown `model`, for a prompt with no room for `max_tokens` in `max_model_len`.

Faults are scripted for the next K completion requests (`fail(429, times=2)`, `hang(5, times=1)`, `raw("{", 1)`),
consumed in the order given; the server counts requests, keeps their bodies and the token ids it sampled, and shuts
itself down after `max_lifetime_s` even if a test forgets to.

    with VLLMServer(model_dir) as server:
        server.faults.append(fail(429, times=2))
        lm = VLLMUnitLM.from_args(str(model_dir), engine_url=server.base_url)
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Optional

import torch

from tests.loopback_http import LoopbackHandler, LoopbackServer

MAX_LOGPROBS = 20  # vLLM's default --max-logprobs


@dataclass
class Fault:
    """What the next `times` completion requests get: kind "fail" (HTTP `status`), "hang" (nothing for `hang_s`
    seconds, then the real answer into a socket the client has left), or "raw" (HTTP 200 with `body` as it is)."""

    kind: str
    times: int = 1
    status: int = 500
    hang_s: float = 0.0
    body: str = ""


def fail(status: int, times: int = 1) -> Fault:
    return Fault("fail", times, status=status)


def hang(seconds: float, times: int = 1) -> Fault:
    return Fault("hang", times, hang_s=seconds)


def raw(body: str, times: int = 1) -> Fault:
    return Fault("raw", times, body=body)


class BadRequest(Exception):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status



class VLLMServer(LoopbackServer):
    """A threaded HTTP server backed by the transformers checkpoint `model_dir`; see the module docstring. `served_name`
    and `root` are what /v1/models says it serves (default: the dir as given, as vLLM reports `--model DIR`)."""

    name = "vllm-server"

    def __init__(self, model_dir: Path, served_name: Optional[str] = None, root: Optional[str] = None,
                 max_model_len: Optional[int] = None, max_lifetime_s: float = 1800.0):
        super().__init__(max_lifetime_s)
        from transformers import AutoModelForCausalLM

        self.model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
        self.vocab_size = int(self.model.get_input_embeddings().weight.shape[0])
        self.max_model_len = max_model_len or int(self.model.config.max_position_embeddings)
        self.served_name = served_name or str(model_dir)
        self.root = root or str(model_dir)
        self.faults: list[Fault] = []
        self.completions = 0  # POST /v1/completions received, faults included
        self.bodies: list[dict[str, Any]] = []
        self.sampled: list[list[int]] = []  # token ids of every sample answered
        self.in_flight = 0
        self.peak_in_flight = 0
        self._model_lock = threading.Lock()  # one engine: forward passes run one at a time, as on one GPU

    def handler(self) -> type[BaseHTTPRequestHandler]:
        return _make_handler(self)

    def reset(self) -> None:
        with self._lock:
            self.faults.clear()
            self.completions = 0
            self.bodies.clear()
            self.sampled.clear()
            self.peak_in_flight = 0

    # -- request handling (handler threads) -----------------------------------------------------------------------

    def _register(self, body: dict[str, Any]) -> Optional[Fault]:
        with self._lock:
            self.completions += 1
            self.bodies.append(body)
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            while self.faults and self.faults[0].times <= 0:
                self.faults.pop(0)
            if not self.faults:
                return None
            fault = self.faults[0]
            fault.times -= 1
            return fault

    def _done(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def complete(self, body: dict[str, Any]) -> dict[str, Any]:
        """The completion for a request body; BadRequest where vLLM would refuse it."""
        if body.get("model") not in (None, self.served_name):
            raise BadRequest(f"The model `{body.get('model')}` does not exist.", 404)
        prompt = body.get("prompt")
        if not isinstance(prompt, list) or not all(isinstance(t, int) and not isinstance(t, bool) and t >= 0
                                                   for t in prompt):
            raise BadRequest("prompt: this server takes one list of non-negative token ids")
        if not prompt:
            raise BadRequest("The decoder prompt cannot be empty")
        if max(prompt) >= self.vocab_size:
            raise BadRequest(f"Token id {max(prompt)} is out of vocabulary")
        max_tokens = int(body.get("max_tokens", 16))
        n = int(body.get("n", 1))
        temperature = float(body.get("temperature", 1.0))
        top_k = int(body.get("top_k") or -1)
        top_p = float(body.get("top_p") if body.get("top_p") is not None else 1.0)
        penalty = float(body.get("repetition_penalty") or 1.0)
        if max_tokens < 1 or n < 1 or temperature < 0 or not 0 < top_p <= 1 or top_k < -1 or penalty <= 0:
            raise BadRequest("invalid sampling parameters")
        if temperature == 0 and n > 1:
            raise BadRequest(f"n must be 1 when using greedy sampling, got {n}.")
        if len(prompt) + max_tokens > self.max_model_len:
            raise BadRequest(f"This model's maximum context length is {self.max_model_len} tokens. However, you "
                             f"requested {len(prompt) + max_tokens} tokens")
        bias = body.get("logit_bias") or {}
        bad = [int(k) for k in bias if not 0 <= int(k) < self.vocab_size]
        if bad:
            raise BadRequest(f"token_id(s) {bad} in logit_bias contain out-of-vocab token ids. Vocabulary size: "
                             f"{self.vocab_size}")
        allowed = body.get("allowed_token_ids")
        if allowed is not None and (not allowed or not all(0 <= t < self.vocab_size for t in allowed)):
            raise BadRequest("allowed_token_ids contains out-of-vocab token id!")
        stops = list(body.get("stop_token_ids") or [])
        if not all(0 <= t < self.vocab_size for t in stops):
            raise BadRequest(f"token_id(s) in stop_token_ids contain out-of-vocab token ids. Vocabulary size: "
                             f"{self.vocab_size}")
        k_prompt = body.get("prompt_logprobs")
        if k_prompt is not None and not 0 <= int(k_prompt) <= MAX_LOGPROBS:
            raise BadRequest(f"Requested prompt logprobs of {k_prompt}, which is greater than max allowed: "
                             f"{MAX_LOGPROBS}")
        with self._model_lock:
            prompt_logprobs = self._prompt_logprobs(prompt, int(k_prompt)) if k_prompt is not None else None
            seed = body.get("seed")
            samples = [self._sample(prompt, max_tokens, temperature, top_k, top_p, penalty, allowed, stops,
                                    bias, None if seed is None else int(seed) + i) for i in range(n)]
        with self._lock:
            self.sampled.extend(ids for ids, _ in samples)
        ids_back = bool(body.get("return_token_ids"))
        choices = [{"index": i, "text": "", "logprobs": None, "finish_reason": finish,
                    "stop_reason": ids[-1] if finish == "stop" else None,
                    "token_ids": ids if ids_back else None, "prompt_logprobs": prompt_logprobs,
                    "prompt_token_ids": prompt if ids_back else None}
                   for i, (ids, finish) in enumerate(samples)]
        generated = sum(len(ids) for ids, _ in samples)
        return {"id": f"cmpl-loopback-{time.monotonic_ns()}", "object": "text_completion", "created": int(time.time()),
                "model": self.served_name, "choices": choices,
                "usage": {"prompt_tokens": len(prompt), "completion_tokens": generated,
                          "total_tokens": len(prompt) + generated}}

    @torch.inference_mode()
    def _prompt_logprobs(self, prompt: list[int], k: int) -> list[Optional[dict[str, dict[str, Any]]]]:
        logits = self.model(input_ids=torch.tensor([prompt])).logits[0].float()
        logp = torch.log_softmax(logits, dim=-1)
        out: list[Optional[dict[str, dict[str, Any]]]] = [None]
        for position in range(1, len(prompt)):
            row = logp[position - 1]
            token = prompt[position]
            entry = {str(token): {"logprob": float(row[token]), "rank": int((row > row[token]).sum()) + 1,
                                  "decoded_token": None}}
            if k:
                top = torch.topk(row, k)
                for rank, (value, index) in enumerate(zip(top.values.tolist(), top.indices.tolist()), start=1):
                    entry.setdefault(str(index), {"logprob": value, "rank": rank, "decoded_token": None})
            out.append(entry)
        return out

    @torch.inference_mode()
    def _sample(self, prompt: list[int], max_tokens: int, temperature: float, top_k: int, top_p: float,
                penalty: float, allowed: Optional[list[int]], stops: list[int], bias: dict[str, float],
                seed: Optional[int]) -> tuple[list[int], str]:
        generator = torch.Generator()
        generator.manual_seed(seed if seed is not None else int(time.monotonic_ns()))
        sequence, out = list(prompt), []
        for _ in range(max_tokens):
            x = self.model(input_ids=torch.tensor([sequence])).logits[0, -1].double()
            for token, b in bias.items():
                x[int(token)] += float(b)
            if penalty != 1.0:  # vLLM's repetition penalty: prompt and output tokens alike
                seen = torch.tensor(sorted(set(sequence)))
                x[seen] = torch.where(x[seen] > 0, x[seen] / penalty, x[seen] * penalty)
            if allowed is not None:
                keep = torch.full_like(x, float("-inf"))
                keep[torch.tensor(allowed)] = 0.0
                x = x + keep
            if temperature == 0:
                token = int(torch.argmax(x))
            else:
                x = x / temperature
                if top_k > 0 and top_k < int(torch.isfinite(x).sum()):
                    x = x.masked_fill(x < torch.topk(x, top_k).values[-1], float("-inf"))
                if top_p < 1.0:
                    ordered, order = torch.sort(x, descending=True)
                    probs = torch.softmax(ordered, dim=0)
                    drop = probs.cumsum(0) - probs >= top_p
                    x[order[drop]] = float("-inf")
                token = int(torch.multinomial(torch.softmax(x, dim=0), 1, generator=generator))
            out.append(token)
            sequence.append(token)
            if token in stops:  # the stop token stays in token_ids, as in vLLM
                return out, "stop"
        return out, "length"


def _make_handler(server: VLLMServer) -> type[BaseHTTPRequestHandler]:
    class Handler(LoopbackHandler):
        def _send(self, status: int, data: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if status == 429:
                self.send_header("Retry-After", "0")
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, message: str) -> None:
            kinds = {400: "BadRequestError", 404: "NotFoundError", 429: "RateLimitError"}
            kind = kinds.get(status, "InternalServerError")
            self._send(status, json.dumps({"error": {"message": message, "type": kind, "param": None,
                                                     "code": status}}).encode())

        def do_GET(self) -> None:
            path = self.path.rstrip("/")
            if path == "/v1/models":
                entry = {"id": server.served_name, "object": "model", "created": int(time.time()), "owned_by": "vllm",
                         "root": server.root, "parent": None, "max_model_len": server.max_model_len, "permission": []}
                self._send(200, json.dumps({"object": "list", "data": [entry]}).encode())
            elif path == "/version":
                self._send(200, json.dumps({"version": "loopback"}).encode())
            else:
                self._error(404, f"no route {self.path}")

        def do_POST(self) -> None:
            data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = self.posted_json("/v1/completions", self.path, data)
            if body is None:
                return
            fault = server._register(body)
            try:
                if fault is not None and fault.kind == "fail":
                    self._error(fault.status, f"scripted failure {fault.status}")
                elif fault is not None and fault.kind == "raw":
                    self._send(200, fault.body.encode())
                else:
                    if fault is not None and fault.kind == "hang":
                        server._stop.wait(fault.hang_s)
                    try:
                        answer = server.complete(body)
                    except BadRequest as e:
                        self._error(e.status, str(e))
                    else:
                        self._send(200, json.dumps(answer).encode())
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True
            finally:
                server._done()

    return Handler
