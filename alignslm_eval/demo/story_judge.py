"""The story world's judge: a rubric written as rules, served on 127.0.0.1 as an OpenAI-compatible chat endpoint.

`alignslm-train demo-experiment` starts it so that the LLM-judge path (`judge_rating`, the `judge_threshold` pair
rule, the answer cache and retries) runs end to end offline, exactly as against a hosted model: the judge scorer
sends its rendered template (`JUDGE_TEMPLATE` of the world) to POST /v1/chat/completions and reads the rating from
the answer's final \\boxed{N}.

The rating of a continuation, from the opening's transcript (who went where) and the continuation's:
1, plus one point for each that holds: it starts with the pronoun of the opening's agent; it holds an action of the
opening's place; it holds one of the grammar's endings; it is exactly "pronoun action and ending". An opening whose
agent or place the transcript does not name gives no point for that part.
"""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Optional

from alignslm_eval.demo.story_world import read_grammar

MODEL_NAME = "story-rules"
_MARKED = re.compile(r"Opening: <<(.*?)>>\s*Continuation: <<(.*?)>>", re.S)


def _has(words: list[str], phrase: str) -> bool:
    target = phrase.split()
    return any(words[i : i + len(target)] == target for i in range(len(words) - len(target) + 1))


def rate(grammar: dict[str, Any], opening: str, continuation: str) -> tuple[int, list[str]]:
    """The 1-5 rating of `continuation` after `opening` (transcripts), and the rules it met."""
    before, words = opening.lower().split(), continuation.lower().split()
    agent = next((a for a in grammar["agents"] if _has(before, a)), None)
    place = next((p for p in grammar["places"] if _has(before, f"the {p}")), None)
    actions = grammar["places"].get(place, [])
    pronoun = grammar["agents"].get(agent)
    met = []
    if pronoun and words[:1] == [pronoun]:
        met.append("pronoun")
    action = next((a for a in actions if _has(words, a)), None)
    if action:
        met.append("action")
    ending = next((e for e in grammar["endings"] if _has(words, e)), None)
    if ending:
        met.append("ending")
    if pronoun and action and ending and words == f"{pronoun} {action} and {ending}".split():
        met.append("exact")
    return 1 + len(met), met


def answer(grammar: dict[str, Any], content: str) -> str:
    """The judge's reply to one rendered template."""
    found = _MARKED.search(content)
    if not found:
        return "The request holds no 'Opening: <<...>> Continuation: <<...>>'; nothing to rate."
    rating, met = rate(grammar, found.group(1), found.group(2))
    return f"Rules met: {', '.join(met) or 'none'}. \\boxed{{{rating}}}"


class StoryJudgeServer:
    """`with StoryJudgeServer() as judge:` serves the rules at `judge.base_url` (a free port) from a thread."""

    def __init__(self, grammar: Optional[dict[str, Any]] = None, port: int = 0):
        self.grammar = grammar or read_grammar()
        self.requests = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # the requests are the judge's business, not the terminal's
                pass

            def _reply(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path.rstrip("/").endswith("/models"):
                    self._reply(200, {"object": "list", "data": [{"id": MODEL_NAME, "object": "model"}]})
                else:
                    self._reply(404, {"error": {"message": f"no route {self.path}"}})

            def do_POST(self) -> None:
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._reply(404, {"error": {"message": f"no route {self.path}"}})
                    return
                try:
                    request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                    content = "\n".join(str(m.get("content", "")) for m in request["messages"])
                except (ValueError, KeyError, TypeError) as e:
                    self._reply(400, {"error": {"message": f"not a chat completion request ({e})"}})
                    return
                server.requests += 1
                text = answer(server.grammar, content)
                self._reply(200, {
                    "id": f"chatcmpl-{server.requests}", "object": "chat.completion", "created": int(time.time()),
                    "model": request.get("model", MODEL_NAME),
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": text}}],
                    "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="story-judge", daemon=True)

    def __enter__(self) -> "StoryJudgeServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)
