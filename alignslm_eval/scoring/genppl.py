"""GenPPL: perplexity of a continuation's transcript under a causal text LM.

slamkit (Maimon et al. 2025) transcribes continuations with Whisper and scores them with Llama-3.2-1B; any
transformers causal LM loads here (hub id from the local cache, or a directory). Whether the prompt's transcript is
part of the scored text is a setting: with `include_prompt` the perplexity is over prompt + continuation tokens;
without it, over the continuation tokens only, conditioned on the prompt transcript. Lower is better.

"prompt continuation" is tokenized as one text, and the continuation's tokens are those after the longest common
prefix with the prompt's own tokens. Tokenizing the continuation on its own would put a stray word-boundary token
("▁", from SentencePiece tokenizers such as Llama-2's and Mistral's) at the boundary and score it.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Optional, Sequence

from alignslm_eval.api.registry import register_scorer
from alignslm_eval.api.results import MetricInfo
from alignslm_eval.api.scorer import Continuation, ContinuationScorer, Score
from alignslm_eval.io.errors import UserError
from alignslm_eval.models.loading import resolve_checkpoint, weights_fingerprint


@register_scorer("genppl")
class GenPPL(ContinuationScorer):
    metric = "genppl"
    metric_info = MetricInfo("a perplexity", "lower", low=0.0, low_open=True)
    required_options = ("text_lm",)
    task_settings = ("genppl_include_prompt",)

    def __init__(self, text_lm: str, include_prompt: bool = False, device: str = "cpu",
                 revision: Optional[str] = None):
        # torch is imported where it is used, so that reading the scorer registry (the leaderboard looks up what
        # each metric is there) does not load it.
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        checkpoint, self.provenance = resolve_checkpoint(text_lm, revision, flag="--text-lm")
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(checkpoint)
        except (OSError, ValueError, TypeError):
            # transformers' reason here is a multi-line list of the files it looked for; the remedy says it better.
            raise UserError(f"--text-lm {text_lm}: has no loadable text tokenizer (tokenizer.json, tokenizer.model or "
                            "vocab files); give a transformers text LM with its tokenizer, e.g. Llama-3.2-1B (a unit "
                            "LM has none)")
        try:
            self.model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32).to(device).eval()
        except (OSError, ValueError) as e:
            raise UserError(f"--text-lm {text_lm}: not a loadable causal LM ({' '.join(str(e).split())[:200]}); give "
                            "a transformers causal LM directory or cached hub id")
        self.device = device
        self.include_prompt = include_prompt
        self.provenance["weights_fingerprint"] = weights_fingerprint(checkpoint)

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> "GenPPL":
        if not options.get("text_lm"):
            raise UserError("the genppl scorer needs a text LM: pass --text-lm <hub id or dir> (e.g. Llama-3.2-1B)")
        include_prompt = options.get("genppl_include_prompt", False)
        if not isinstance(include_prompt, bool):
            raise UserError(f"setting genppl_include_prompt={include_prompt!r}: must be true or false")
        return cls(options["text_lm"], include_prompt=include_prompt, device=options.get("device", "cpu"))

    def _split(self, context: str, text: str) -> tuple[list[int], list[int], int]:
        """(context ids with BOS, continuation ids, how many of the prompt's own tokens the tokenizer merged across
        the boundary, so they are scored with the continuation) of `context + " " + text`; see the module docstring."""
        bos = [self.tokenizer.bos_token_id] if self.tokenizer.bos_token_id is not None else []
        joined = self.tokenizer(f"{context} {text}" if context else text, add_special_tokens=False)["input_ids"]
        own = self.tokenizer(context, add_special_tokens=False)["input_ids"] if context else []
        n = 0
        while n < min(len(own), len(joined)) and own[n] == joined[n]:
            n += 1
        ctx, target = bos + joined[:n], joined[n:]
        if not ctx:
            ctx, target = target[:1], target[1:]  # no BOS: the first token is context only
        return ctx, target, len(own) - n

    def _perplexity(self, context: str, text: str) -> tuple[Optional[float], dict[str, int]]:
        """Perplexity of `text`'s tokens given `context`, and how many tokens it is over."""
        import torch

        ctx, target, merged = self._split(context, text)
        detail = {"tokens": len(target), **({"prompt_tokens_merged": merged} if merged else {})}
        if not target:
            return None, detail
        with torch.inference_mode():
            ids = torch.tensor([ctx + target], device=self.device)
            logits = self.model(input_ids=ids).logits[0, :-1].float()
            logp = logits.gather(-1, ids[0, 1:, None]).squeeze(-1) - torch.logsumexp(logits, dim=-1)
            return math.exp(-float(logp[len(ctx) - 1 :].mean())), detail

    def score(self, items: Sequence[Continuation]) -> list[Score]:
        out = []
        for item in items:
            if not item.text or not item.text.strip():
                out.append(Score(None, "empty transcript"))
                continue
            prompt = (item.prompt_text or "").strip()
            if self.include_prompt:
                value, detail = self._perplexity("", f"{prompt} {item.text}".strip())
            else:
                value, detail = self._perplexity(prompt, item.text.strip())
            out.append(Score(value, "ok", detail) if value is not None else Score(None, "no scorable token"))
        return out

    def describe(self) -> dict[str, Any]:
        return {"scorer": "genppl", "include_prompt": self.include_prompt, "text_lm": self.provenance,
                "tokenization": "prompt and continuation as one text; continuation = tokens after the prompt's own"}
