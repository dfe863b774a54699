"""The registered judge scorers: `LLMJudge` renders each continuation's judge prompt, reads cached answers, has
`JudgeClient` ask for the rest and turns every answer into a Score; `judge_gpt4o` and `judge_rating` are two
templates and metrics of it."""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Mapping, Optional, Sequence, cast

from alignslm_eval.api.registry import register_scorer
from alignslm_eval.api.results import MetricInfo
from alignslm_eval.api.scorer import Continuation, ContinuationScorer, Score
from alignslm_eval.io.errors import UserError
from alignslm_eval.scoring.judge.answers import BOXED_PATTERN, compile_answer_pattern, parse_rule, parse_score
from alignslm_eval.scoring.judge.cache import AnswerCache, cache_key, default_judge_cache_dir
from alignslm_eval.scoring.judge.client import JudgeClient, Outcome
from alignslm_eval.scoring.judge.retry import RetryPolicy
from alignslm_eval.scoring.judge.templates import PROMPTS_DIR, load_template, render_prompt

if TYPE_CHECKING:
    from alignslm_eval.evaluate.world import World

log = logging.getLogger(__name__)


def _option(options: Mapping[str, Any], name: str, default: Any) -> Any:
    value = options.get(name)
    return default if value is None else value


class LLMJudge(ContinuationScorer):
    """A chat model asked, per continuation, for a 1-5 score in `\\boxed{N}`; see the package docstring."""

    #: registry name, also reported by describe()
    name: ClassVar[str] = "llm_judge"
    metric = "llm_judge"
    metric_info = MetricInfo("a 1-5 judge score", "higher", low=1.0, high=5.0)
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
        world: Optional["World"] = None,
    ):
        if not model:
            raise UserError(f"the {self.name} scorer needs a judge model: pass --judge-model NAME (e.g. gpt-4o)")
        if int(concurrency) < 1:
            raise UserError(f"--judge-concurrency {concurrency}: must be at least 1")
        if float(timeout_s) <= 0:
            raise UserError(f"--judge-timeout {timeout_s}: must be a positive number of seconds")
        if int(max_retries) < 0:
            raise UserError(f"judge_max_retries {max_retries}: must be 0 or more")
        # Every setting is converted before any file is read, so a bad value fails first whatever else is wrong.
        concurrency, timeout_s = int(concurrency), float(timeout_s)
        temperature, max_tokens = float(temperature), int(max_tokens)
        self.retry_unparsable = bool(retry_unparsable)
        retry = RetryPolicy(int(max_retries), float(backoff_s), float(backoff_max_s))

        self.prompt_path = Path(prompt_path) if prompt_path else PROMPTS_DIR / self.default_template
        self.prompt_is_builtin = prompt_path is None
        self.template = load_template(self.prompt_path, "--judge-prompt" if prompt_path else "built-in template")
        self.prompt_sha256 = hashlib.sha256(self.template.encode("utf-8")).hexdigest()
        self.answer_pattern = compile_answer_pattern(str(answer_pattern))

        self.client = JudgeClient(str(model), base_url=base_url, api_key_env=api_key_env, concurrency=concurrency,
                                  timeout_s=timeout_s, retry=retry, temperature=temperature, max_tokens=max_tokens)
        self._cache: Optional[AnswerCache] = None
        if use_cache:
            self._cache = AnswerCache(Path(cache_dir) if cache_dir else default_judge_cache_dir(), world)

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
            world=options.get("world"),
        )

    def messages(self, prompt_text: str, text: str) -> list[dict[str, str]]:
        # One user turn, no system turn: some served chat templates (older Mistral instruct ones) reject a system
        # role, and the whole instruction lives in the template anyway.
        return [{"role": "user", "content": render_prompt(self.template, prompt_text, text)}]

    def cache_key(self, messages: list[dict[str, str]]) -> str:
        """These messages' key in the answer cache: `cache_key` over this judge's model, endpoint and sampling."""
        client = self.client
        return cache_key(client.model, client.base_url, client.temperature, client.max_tokens, messages)

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
        outcomes: dict[str, Outcome] = {k: Outcome(answer=a) for k, a in answers.items()}
        todo = [k for k in waiting if k not in answers]
        if todo:
            outcomes.update(self.client.ask_all(todo, requests, self._cache))

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
                        self.metric, sum(failures.values()), len(items), self.client.model, summary)
        assert all(r is not None for r in results), "every item gets a Score"
        return cast("list[Score]", results)

    def is_final(self, score: Score) -> bool:
        """With `retry_unparsable`, a stored unparsable score is asked again too."""
        return super().is_final(score) and not (self.retry_unparsable and score.status == "unparsable")

    def describe(self) -> dict[str, Any]:
        # retry_unparsable is not here (nor in the cache key): it decides what is asked, not what answers mean.
        return {
            "scorer": self.name,
            "metric": self.metric,
            "judge_model": self.client.model,
            "base_url": self.client.base_url,
            # Built-in templates by package path, so the description (and the run's score file key) does not
            # depend on where the package is installed.
            "prompt_template": (f"alignslm_eval/scoring/prompts/{self.default_template}" if self.prompt_is_builtin
                                else str(self.prompt_path)),
            "prompt_template_builtin": self.prompt_is_builtin,
            "prompt_sha256": self.prompt_sha256,
            "temperature": self.client.temperature,
            "max_tokens": self.client.max_tokens,
            "parse": parse_rule(self.answer_pattern.pattern),
            "citation": self.citation,
        }

    def close(self) -> None:
        """Close the HTTP client and the cache file."""
        self.client.close()
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
