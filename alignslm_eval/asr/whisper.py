"""Whisper speech recognition through transformers (`WhisperForConditionalGeneration` + `WhisperProcessor`).

Arguments (`--asr whisper --asr-args path=...,language=en`):

* `path`: a directory saved with `save_pretrained` (model + processor: config.json, generation_config.json, weights,
  preprocessor_config.json and tokenizer files), or a hub id such as `openai/whisper-large-v3` already in the local
  Hugging Face cache (with `HF_HUB_OFFLINE=1` nothing is downloaded); `revision` pins a hub revision.
* `language` (default en): forced, never detected; a code (`en`), a name (`english`) or a token (`<|en|>`). The task
  is always `transcribe`. English-only checkpoints (`*.en`) take no language token, so only `en` is accepted there.
* `num_beams` (default 1, greedy) and `max_new_tokens` (default: the checkpoint's generation config, 448 tokens for
  OpenAI's). Decoding never samples, so a transcript is a function of the audio and these settings.
* `batch_size` (default 8), `device` (default cpu), `dtype` (float32, float16 or bfloat16; default float32).
* `long_form` (default sequential): what to do with clips longer than 30 s, see below.

Clips of up to 30 s are decoded in batches without timestamps (`<|notimestamps|>`), each padded to Whisper's fixed
30 s window, in a single decoder pass per batch (`force_unique_generate_call`; otherwise transformers would re-decode
from any timestamp token the model emits after all). A clip's transcript does not depend on its batch-mates.

Longer clips: with `long_form=sequential`, each is transcribed alone with transformers' sequential long-form algorithm
(the Whisper paper, section 3.8): the model predicts timestamps, and decoding moves through the audio from the last
complete segment. Temperature fallback and the no-speech/log-prob/compression thresholds are off and segments are not
conditioned on previous text, so the result stays deterministic. It needs a checkpoint whose generation config has
`no_timestamps_token_id` (all OpenAI checkpoints do). With `long_form=truncate`, longer clips are cut to their first
30 s by the feature extractor, and the rest is not transcribed.

Empty waveforms give "" without running the model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from alignslm_eval.api.asr import ASR
from alignslm_eval.api.registry import register_asr
from alignslm_eval.io.errors import UserError, first_line
from alignslm_eval.models.loading import hub_offline, looks_like_local_path, read_model_config

_ARGS = ("path", "language", "batch_size", "device", "dtype", "num_beams", "max_new_tokens", "long_form", "revision")
_DTYPES = ("float32", "float16", "bfloat16")
_LONG_FORM = ("sequential", "truncate")


def _positive_int(name: str, text: str) -> int:
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise UserError(f"whisper asr: {name}={text!r} is not an integer; pass e.g. {name}=1")
    if value < 1:
        raise UserError(f"whisper asr: {name}={value} must be at least 1")
    return value


@register_asr("whisper")
class WhisperASR(ASR):
    """Whisper: forced language, task transcribe, greedy (or beam) decoding, batched for clips up to 30 s."""

    def __init__(
        self,
        path: str | Path,
        language: str = "en",
        batch_size: int = 8,
        device: str = "cpu",
        dtype: str = "float32",
        num_beams: int = 1,
        max_new_tokens: int | None = None,
        long_form: str = "sequential",
        revision: str | None = None,
    ):
        import torch

        if dtype not in _DTYPES:
            raise UserError(f"whisper asr: dtype={dtype!r} is not supported; use one of {', '.join(_DTYPES)}")
        if long_form not in _LONG_FORM:
            raise UserError(f"whisper asr: long_form={long_form!r} is not supported; use sequential or truncate")
        self.path = str(path)
        self.revision = revision
        self.batch_size = batch_size
        self.num_beams = num_beams
        self.max_new_tokens = max_new_tokens
        self.long_form = long_form
        self.dtype_name = dtype
        self.dtype = getattr(torch, dtype)

        self.model, self.processor, self.model_dir = self._load()
        self.feature_extractor = self.processor.feature_extractor
        self.tokenizer = self.processor.tokenizer
        self.language, self._language_kwargs = self._resolve_language(language)
        # The decoder prompt (start, language, task, no-timestamps) takes up to 4 of the model's target positions.
        limit = int(self.model.config.max_target_positions) - 4
        if max_new_tokens is not None and max_new_tokens > limit:
            raise UserError(
                f"whisper asr: max_new_tokens={max_new_tokens} is too large; this model allows at most {limit}"
            )
        try:
            self.device = torch.device(device)
            self.model.to(device=self.device).eval()
        except (RuntimeError, AssertionError, ValueError) as e:
            raise UserError(
                f"whisper asr: cannot use device={device!r} ({first_line(e)}); use cpu or an available cuda:N"
            )
        self._weights_hash: str | None = None

    @classmethod
    def from_args(cls, **kwargs: str) -> "WhisperASR":
        """Build from `path=DIR_OR_HUB_ID[, language=en][, batch_size=8][, device=cpu][, dtype=float32]
        [, num_beams=1][, max_new_tokens=N][, long_form=sequential|truncate][, revision=REV]`."""
        unknown = sorted(set(kwargs) - set(_ARGS))
        if unknown:
            raise UserError(f"whisper asr: unknown argument(s) {', '.join(unknown)}; accepted: {', '.join(_ARGS)}")
        if not kwargs.get("path"):
            raise UserError("whisper asr: missing path=; pass --asr-args path=MODEL_DIR_OR_HUB_ID")
        max_new = kwargs.get("max_new_tokens")
        return cls(
            path=kwargs["path"],
            language=kwargs.get("language") or "en",
            batch_size=_positive_int("batch_size", kwargs.get("batch_size") or "8"),
            device=kwargs.get("device") or "cpu",
            dtype=kwargs.get("dtype") or "float32",
            num_beams=_positive_int("num_beams", kwargs.get("num_beams") or "1"),
            max_new_tokens=_positive_int("max_new_tokens", max_new) if max_new else None,
            long_form=kwargs.get("long_form") or "sequential",
            revision=kwargs.get("revision") or None,
        )

    def _load(self) -> tuple[Any, Any, Path]:
        from transformers import WhisperForConditionalGeneration, WhisperProcessor
        from transformers.utils import cached_file

        local = Path(self.path).expanduser()
        if local.exists():
            read_model_config(
                local,
                ("whisper",),
                "Whisper",
                "give a Whisper directory saved with save_pretrained (model and processor) or a hub id",
            )
            source = str(local)
        elif looks_like_local_path(self.path):
            raise UserError(f"{self.path}: no such model directory; check the path or give a hub id like org/name")
        else:
            source = self.path

        kwargs: dict[str, Any] = {}
        if hub_offline():
            kwargs["local_files_only"] = True
        if self.revision:
            kwargs["revision"] = self.revision
        try:
            model, info = WhisperForConditionalGeneration.from_pretrained(
                source, dtype=self.dtype, output_loading_info=True, **kwargs
            )
            processor = WhisperProcessor.from_pretrained(source, **kwargs)
            model_dir = Path(cached_file(source, "config.json", **kwargs)).parent
        except (OSError, ValueError, TypeError, KeyError) as e:
            if source == self.path and hub_offline():
                raise UserError(
                    f"whisper asr: path={self.path} is not a local directory and not in the local Hugging Face cache "
                    "(HF_HUB_OFFLINE is set); download it where there is network (e.g. `hf download "
                    f"{self.path}`) and pass path=LOCAL_DIR"
                )
            raise UserError(
                f"{self.path}: cannot load a Whisper model and processor ({first_line(e)}); give a directory with "
                "config.json, weights, preprocessor_config.json and tokenizer files, or a cached hub id"
            )
        if model.config.model_type != "whisper":
            raise UserError(f"{self.path}: model_type is {model.config.model_type!r}, not 'whisper'")
        # Missing weights would be silently random-initialised; proj_out is tied to the token embeddings.
        missing = sorted(k for k in info.get("missing_keys", ()) if not k.startswith("proj_out"))
        if missing:
            raise UserError(
                f"{self.path}: checkpoint lacks {len(missing)} Whisper weight(s), e.g. {missing[0]}; "
                "give a complete WhisperForConditionalGeneration checkpoint"
            )
        return model, processor, model_dir

    def _resolve_language(self, language: str) -> tuple[str, dict[str, str]]:
        """Canonical language code and the generate() kwargs that force it with task=transcribe."""
        from transformers.models.whisper.tokenization_whisper import TO_LANGUAGE_CODE

        gen = self.model.generation_config
        text = language.strip().lower()
        code = text[2:-2] if text.startswith("<|") and text.endswith("|>") else TO_LANGUAGE_CODE.get(text, text)
        if getattr(gen, "is_multilingual", True) is False:
            if code != "en":
                raise UserError(
                    f"whisper asr: {self.path} is an English-only model; language={language!r} is not possible, "
                    "use language=en or a multilingual checkpoint"
                )
            return "en", {}
        lang_to_id = getattr(gen, "lang_to_id", None)
        if not lang_to_id or not getattr(gen, "task_to_id", None):
            raise UserError(
                f"{self.path}: generation_config.json has no lang_to_id/task_to_id, so the language cannot be "
                "forced; copy generation_config.json from the matching OpenAI Whisper checkpoint"
            )
        if f"<|{code}|>" not in lang_to_id:
            known = ", ".join(sorted(t[2:-2] for t in lang_to_id))
            raise UserError(f"whisper asr: language={language!r} is not supported by {self.path}; known: {known}")
        return code, {"language": code, "task": "transcribe"}

    def _is_long(self, n_samples: int) -> bool:
        # Whisper's window is nb_max_frames (3000) frames of hop_length samples; the feature extractor drops a last
        # partial frame, so a clip is long-form exactly when it yields more frames than one window.
        fe = self.feature_extractor
        return self.long_form == "sequential" and n_samples // fe.hop_length > fe.nb_max_frames

    def transcribe(self, wavs: Sequence[np.ndarray]) -> list[str]:
        """One transcript per 16 kHz mono float32 waveform, in input order (surrounding whitespace stripped)."""
        arrays = []
        for i, wav in enumerate(wavs):
            arr = np.asarray(wav, dtype=np.float32)
            if arr.ndim != 1:
                raise ValueError(f"waveform {i}: expected a mono waveform of shape [samples], got {arr.shape}")
            arrays.append(arr)
        texts = [""] * len(arrays)
        short = [i for i, a in enumerate(arrays) if a.size and not self._is_long(a.size)]
        long = [i for i, a in enumerate(arrays) if a.size and self._is_long(a.size)]
        for start in range(0, len(short), self.batch_size):
            batch = short[start : start + self.batch_size]
            for i, text in zip(batch, self._generate([arrays[i] for i in batch], long_form=False)):
                texts[i] = text
        for i in long:
            texts[i] = self._generate([arrays[i]], long_form=True)[0]
        return texts

    def _generate(self, batch: list[np.ndarray], long_form: bool) -> list[str]:
        import torch

        fe_kwargs: dict[str, Any] = {
            "sampling_rate": self.sample_rate,
            "return_tensors": "pt",
            "return_attention_mask": True,
        }
        gen_kwargs: dict[str, Any] = {"num_beams": self.num_beams, "do_sample": False, **self._language_kwargs}
        if self.max_new_tokens is not None:
            gen_kwargs["max_new_tokens"] = self.max_new_tokens
        if long_form:
            if getattr(self.model.generation_config, "no_timestamps_token_id", None) is None:
                seconds = batch[0].size / self.sample_rate
                raise UserError(
                    f"whisper asr: a clip is {seconds:.1f} s long and {self.path} has no timestamp tokens in its "
                    "generation_config.json, which long-form transcription needs; pass long_form=truncate to "
                    "transcribe only the first 30 s"
                )
            fe_kwargs.update(truncation=False, padding="longest")
            gen_kwargs.update(return_timestamps=True, temperature=0.0, condition_on_prev_tokens=False)
        else:
            gen_kwargs.update(return_timestamps=False, force_unique_generate_call=True)
        features = self.feature_extractor(batch, **fe_kwargs)
        input_features = features.input_features.to(self.device, self.dtype)
        # Whisper's encoder ignores this mask; passing it only spares generate()'s "no attention mask" warning.
        attention_mask = features.attention_mask.to(self.device)
        with torch.inference_mode():
            sequences = self.model.generate(input_features, attention_mask=attention_mask, **gen_kwargs)
        # skip_special_tokens drops the prompt and <|...|> control tokens; decode() also strips timestamp tokens.
        return [text.strip() for text in self.tokenizer.batch_decode(sequences, skip_special_tokens=True)]

    def describe(self) -> dict[str, Any]:
        """Model source, revision and weights quick hash; language, task and decoding settings."""
        import transformers

        from alignslm_eval.models.loading import weights_fingerprint

        if self._weights_hash is None:
            self._weights_hash = weights_fingerprint(self.model_dir)
        local = Path(self.path).expanduser()
        out: dict[str, Any] = {"kind": "whisper", "path": self.path}
        if local.exists():
            out["local_dir"] = str(local.resolve())
        else:
            out["hub_id"] = self.path
            out["revision"] = self.revision
            out["resolved_commit"] = self.model_dir.name
        out.update(
            {
                "weights_quick_sha256": self._weights_hash,
                "language": self.language,
                "task": "transcribe",
                "decoding": "greedy" if self.num_beams == 1 else "beam",
                "num_beams": self.num_beams,
                "max_new_tokens": self.max_new_tokens,
                "long_form": self.long_form,
                "dtype": self.dtype_name,
                "device": str(self.device),
                "sample_rate": self.sample_rate,
                "transformers_version": transformers.__version__,
            }
        )
        return out
