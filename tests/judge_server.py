"""A loopback OpenAI-compatible chat-completions server for tests and benchmarks.

`JudgeServer` answers POST /v1/chat/completions on 127.0.0.1 (a free port) from a background thread. What it does
for a request is scripted by a rule table: the first rule whose marker occurs in the request's messages decides
(an answer text; or, a number of times before an answer: an HTTP error, a hang, a raw 200 body that is no chat
completion, a connection reset mid-body, a body trickled byte by byte), and requests matching no rule get
`default`. It counts requests in total and per marker, records the peak number in flight, the Authorization headers
and the query strings it saw, and can add a fixed latency to every request.

It is bounded: a hang waits at most `hang_s` (and ends at shutdown), idle keep-alive connections close after a few
seconds, and the server shuts itself down after `max_lifetime_s` (30 min: longer than any test using it, even on
a loaded machine) even if a test forgets to.

    with JudgeServer({"#unparsable#": answer("no idea"), "#busy#": fail(429, times=1)}) as server:
        client = OpenAI(base_url=server.base_url, api_key="x")
"""

from __future__ import annotations

import hashlib
import json
import socket
import struct
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any, Iterator, Mapping, Optional
from urllib.parse import urlsplit

import pytest

from tests.loopback_http import LoopbackHandler, LoopbackServer


@dataclass(frozen=True)
class Behaviour:
    """What the server does for a matching request.

    kind "answer": reply with `text`. Every other kind misbehaves for the first `times` matching requests (every one
    when `times` is None), then replies with `text`. kind "fail": reply HTTP `status`; the error message is
    `message`, where "{auth}" becomes the request's Authorization header and "{path}" its path and query (a server
    quoting them back, as real ones partly do). kind "hang": send nothing for `hang_s` seconds. kind "raw": reply 200
    with `body` as it is, of type `content_type`. kind "reset": send the headers of a normal reply and its first
    `cut_after` body bytes, then reset the connection. kind "trickle": send a normal reply one byte every
    `interval_s` seconds.
    """

    kind: str
    text: str = "\\boxed{3}"
    status: int = 500
    times: Optional[int] = None
    hang_s: float = 0.0
    message: Optional[str] = None
    body: str = ""
    content_type: str = "application/json"
    cut_after: int = 0
    interval_s: float = 0.0
    #: kind "hash": about one request in this many, by its text, fails with `status` (0: none)
    fail_one_in: int = 0


def answer(text: str) -> Behaviour:
    return Behaviour("answer", text=text)


def score(n: float | int | str) -> Behaviour:
    """A well-formed judge answer ending with the score `n`."""
    return Behaviour("answer", text=f"The continuation follows the prompt reasonably. Score: \\boxed{{{n}}}")


def fail(status: int, times: Optional[int] = None, then: str = "\\boxed{3}",
         message: Optional[str] = None) -> Behaviour:
    return Behaviour("fail", text=then, status=status, times=times, message=message)


def hang(seconds: float, times: Optional[int] = None, then: str = "\\boxed{3}") -> Behaviour:
    return Behaviour("hang", text=then, times=times, hang_s=seconds)


def raw(body: str, content_type: str = "application/json", times: Optional[int] = None,
        then: str = "\\boxed{3}") -> Behaviour:
    """A 200 reply whose body is exactly `body` (truncated JSON, an HTML page, a completion without a message...)."""
    return Behaviour("raw", text=then, times=times, body=body, content_type=content_type)


def reset(cut_after: int = 20, times: Optional[int] = None, then: str = "\\boxed{3}") -> Behaviour:
    return Behaviour("reset", text=then, times=times, cut_after=cut_after)


def trickle(interval_s: float, times: Optional[int] = None, then: str = "\\boxed{3}") -> Behaviour:
    return Behaviour("trickle", text=then, times=times, interval_s=interval_s)


def hashed_score(fail_one_in: int = 0, status: int = 500) -> Behaviour:
    """A score from 1 to 5 that depends on the request's text only: varied across samples, stable across runs
    (what a training-loop test needs to form preference pairs deterministically). With `fail_one_in` N, about one
    request in N, chosen by its text too, gets HTTP `status` instead, every time it is sent."""
    return Behaviour("hash", status=status, fail_one_in=fail_one_in)



class JudgeServer(LoopbackServer):
    """A threaded HTTP server speaking the OpenAI chat-completions protocol; see the module docstring."""

    name = "judge-server"

    def __init__(self, rules: Optional[Mapping[str, Behaviour]] = None, default: Behaviour = score(3),
                 latency_s: float = 0.0, max_lifetime_s: float = 1800.0):
        super().__init__(max_lifetime_s)
        self.rules: dict[str, Behaviour] = dict(rules or {})
        self.default = default
        self.latency_s = latency_s
        self.total = 0
        self.per_marker: Counter[Optional[str]] = Counter()
        self.in_flight = 0
        self.peak_in_flight = 0
        self.auth_headers: set[str] = set()
        self.queries: set[str] = set()
        self.bodies: list[dict[str, Any]] = []

    def handler(self) -> type[BaseHTTPRequestHandler]:
        return _make_handler(self)

    # -- counters ---------------------------------------------------------------------------------------------------

    def count(self, marker: Optional[str]) -> int:
        """Requests that matched `marker` (None: requests that matched no rule)."""
        with self._lock:
            return self.per_marker[marker]

    def reset_counts(self) -> None:
        """Zero the request counters (and the per-rule failure budgets, so a `fail(times=1)` fails once again)."""
        with self._lock:
            self.total = 0
            self.per_marker.clear()
            self.peak_in_flight = 0
            self.bodies.clear()

    # -- request handling (called from handler threads) -------------------------------------------------------------

    def _match(self, text: str) -> tuple[Optional[str], Behaviour]:
        for marker, behaviour in self.rules.items():
            if marker in text:
                return marker, behaviour
        return None, self.default

    def _register(self, body: dict[str, Any], auth: Optional[str], query: str) -> tuple[Optional[str], Behaviour, int]:
        text = "\n".join(str(m.get("content", "")) for m in body.get("messages", []) if isinstance(m, dict))
        marker, behaviour = self._match(text)
        with self._lock:
            self.total += 1
            self.per_marker[marker] += 1
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            if auth is not None:
                self.auth_headers.add(auth)
            self.queries.add(query)
            self.bodies.append(body)
            return marker, behaviour, self.per_marker[marker]

    def _done(self) -> None:
        with self._lock:
            self.in_flight -= 1


def _make_handler(server: JudgeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(LoopbackHandler):
        def _send_json(self, status: int, payload: dict[str, Any]) -> None:
            self._send(status, json.dumps(payload).encode())

        def _send(self, status: int, data: bytes, content_type: str = "application/json", cut_after: int = -1,
                  interval_s: float = 0.0) -> None:
            """Send a response; `cut_after` >= 0: reset the connection after that many body bytes; `interval_s`:
            send the body one byte at a time, that far apart."""
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            if status == 429:
                self.send_header("Retry-After", "0")
            self.end_headers()
            if cut_after >= 0:
                self.wfile.write(data[:cut_after])
                self.wfile.flush()
                # SO_LINGER 0: closing sends RST instead of FIN, a reset rather than an orderly end. The socket
                # closes only once the file reading from it is closed too (the writer holds no reference).
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.rfile.close()
                self.connection.close()
                self.close_connection = True
            elif interval_s:
                self.wfile.flush()
                for i in range(len(data)):
                    if server._stop.wait(interval_s):
                        self.close_connection = True
                        return
                    self.wfile.write(data[i : i + 1])
                    self.wfile.flush()
            else:
                self.wfile.write(data)

        def _error(self, status: int, message: str) -> None:
            kind = "rate_limit_error" if status == 429 else "server_error" if status >= 500 else "invalid_request_error"
            self._send_json(status, {"error": {"message": message, "type": kind, "code": status}})

        def do_GET(self) -> None:
            if self.path.rstrip("/") == "/v1/models":
                self._send_json(200, {"object": "list", "data": [{"id": "loopback-judge", "object": "model"}]})
            else:
                self._error(404, f"no route {self.path}")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > 10_000_000:
                self._error(413, "request too large")
                return
            data = self.rfile.read(length)
            route = urlsplit(self.path)
            body = self.posted_json("/v1/chat/completions", route.path, data)
            if body is None:
                return
            marker, behaviour, nth = server._register(body, self.headers.get("Authorization"), route.query)
            misbehave = behaviour.times is None or nth <= behaviour.times
            try:
                if server.latency_s:
                    server._stop.wait(server.latency_s)
                if behaviour.kind == "hang" and misbehave:
                    server._stop.wait(behaviour.hang_s)
                    # The client gave up long ago; answering (into a closed socket) just ends the exchange.
                    self._reply(body, behaviour.text)
                elif behaviour.kind == "hash":
                    content = json.dumps(body.get("messages", []), sort_keys=True).encode()
                    digest = int(hashlib.sha256(content).hexdigest(), 16)
                    if behaviour.fail_one_in and digest // 5 % behaviour.fail_one_in == 0:
                        self._error(behaviour.status, f"scripted failure {behaviour.status} by content hash")
                    else:
                        self._reply(body, f"Rated by content hash. \\boxed{{{1 + digest % 5}}}")
                elif behaviour.kind == "fail" and misbehave:
                    message = behaviour.message or f"scripted failure {behaviour.status} for marker {marker!r}"
                    message = message.replace("{auth}", self.headers.get("Authorization", ""))
                    self._error(behaviour.status, message.replace("{path}", self.path))
                elif behaviour.kind == "raw" and misbehave:
                    self._send(200, behaviour.body.encode(), behaviour.content_type)
                elif behaviour.kind == "reset" and misbehave:
                    self._reply(body, behaviour.text, cut_after=behaviour.cut_after)
                elif behaviour.kind == "trickle" and misbehave:
                    self._reply(body, behaviour.text, interval_s=behaviour.interval_s)
                else:
                    self._reply(body, behaviour.text)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True
            finally:
                server._done()

        def _reply(self, body: dict[str, Any], text: str, **send: Any) -> None:
            self._send(200, json.dumps(completion(body, text)).encode(), **send)

    return Handler


def completion(request: dict[str, Any], text: str) -> dict[str, Any]:
    """A well-formed chat-completions response to `request` whose answer is `text`."""
    prompt_words = sum(len(str(m.get("content", "")).split()) for m in request.get("messages", []))
    completion_words = len(text.split())
    return {
        "id": f"chatcmpl-loopback-{time.monotonic_ns()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.get("model", "loopback-judge"),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                     "finish_reason": "stop", "logprobs": None}],
        "usage": {"prompt_tokens": prompt_words, "completion_tokens": completion_words,
                  "total_tokens": prompt_words + completion_words},
    }


@pytest.fixture
def judge_server() -> Iterator[JudgeServer]:
    """A started loopback server with no rules (every request gets `\\boxed{3}`); tests add rules to `.rules`."""
    with JudgeServer() as server:
        yield server
