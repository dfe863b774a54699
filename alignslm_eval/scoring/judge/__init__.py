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

The package, one thing a module: `templates` (the prompt templates: read, checked, filled), `answers` (the answer
pattern and the score it reads), `retry` (which failures are retried, and the wait), `cache` (the answer cache and
its key), `client` (the endpoint: requests, deadlines, retries, redaction) and `scorer` (the registered scorers).
Importing the package registers the scorers.
"""

from alignslm_eval.scoring.judge.answers import compile_answer_pattern, parse_score
from alignslm_eval.scoring.judge.cache import AnswerCache
from alignslm_eval.scoring.judge.retry import RetryPolicy
from alignslm_eval.scoring.judge.scorer import GPT4oScore, LLMJudge, SemanticRating
from alignslm_eval.scoring.judge.templates import render_prompt

__all__ = ["AnswerCache", "GPT4oScore", "LLMJudge", "RetryPolicy", "SemanticRating", "compile_answer_pattern",
           "parse_score", "render_prompt"]
