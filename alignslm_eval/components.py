"""The public component API: build a run's unit LM, speech tokenizer, vocoder, ASR and scorer options from typed
settings, as `alignslm-eval`, `alignslm-train`, the mid-training callback and library code all do.

    from alignslm_eval.components import ModelOptions, TokenizerOptions, PipelineOptions, load_components
    parts = load_components(ModelOptions(model="demo"), TokenizerOptions(), PipelineOptions())
    parts.lm, parts.tokenizer, parts.pipeline     # UnitLM, SpeechTokenizer, PipelineComponents (vocoder/ASR lazy)

Each settings class is the one declaration of its flags (see `alignslm_eval.api.options`); a field's `section`
("sample", "score") names what the training loop's stored results depend on. `--model demo` is
resolved here and nowhere else: the embedded demo is built on first use and stands for its model dir, its benchmark
and its text LM.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence
from urllib.parse import urlparse

from alignslm_eval.api.options import Options, json_value, option, option_fields
from alignslm_eval.io.errors import UserError

TOKENIZER_FILE = "alignslm_tokenizer.json"
VOCODER_FILE = "alignslm_vocoder.json"
DEMO_NAME = "demo"  # `--model demo`: the embedded tiny model and benchmark, built offline on first use


def key_values(text: str, flag: str) -> dict[str, str]:
    """`key=value,...` -> a dict; `flag` names the setting in the error."""
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        if "=" not in part:
            raise UserError(f"{flag} {text!r}: expected key=value pairs separated by commas")
        key, value = part.split("=", 1)
        out[key.strip()] = value.strip()
    return out


def _parses_as_key_values(flag: str) -> tuple:
    def rule(text: str) -> bool:
        key_values(text, flag)  # raises the error that names the flag
        return True

    return rule, "key=value pairs separated by commas"


def _http_url(url: str) -> bool:
    parsed = urlparse(url)
    return parsed.scheme in ("http", "https") and bool(parsed.netloc) and " " not in url


def _answer_pattern(pattern: str) -> bool:
    from alignslm_eval.scoring.judge import compile_answer_pattern

    compile_answer_pattern(pattern)  # raises the error that says what is wrong with it
    return True


@dataclass
class ModelOptions(Options):
    model: str = option(help="hub id, local checkpoint dir, or 'demo' (tiny model + benchmark built offline on first "
                             "use)")
    model_backend: str = option("hf", help="registered model back-end (see `alignslm-eval ls`)")
    revision: Optional[str] = option(None, section="sample", help="hub revision (branch, tag or commit)")
    adapter: Optional[str] = option(None, help="LoRA adapter dir (e.g. from alignslm-train) applied on top of --model")
    unit_convention: Optional[str] = option(None, section="sample", choices=("twist", "slam"),
                                            help="override how units map to token ids")
    unit_offset: Optional[int] = option(None, section="sample", must=(lambda v: v >= 0, "0 or more (the token id of unit 0)"),
                                        help="TWIST convention: token id of unit 0")
    n_units: Optional[int] = option(None, section="sample", must=(lambda v: v >= 1, "at least 1"),
                                    help="size of the unit inventory (default: from the checkpoint)")
    device: str = option("cpu", help="torch device of the unit LM and the scorers' models, e.g. cuda")
    dtype: str = option("float32", choices=("float32", "bfloat16"), help="unit LM weights' dtype")
    engine_url: Optional[str] = option(
        None, must=(_http_url, "an http(s) URL, e.g. http://127.0.0.1:8000/v1"),
        help="the OpenAI-compatible URL of a vLLM server: with --model-backend vllm (alignslm-eval) it serves --model; "
             "alignslm-train samples each round through it (see docs/scaling.md)")
    engine_concurrency: int = option(8, must=(lambda v: v >= 1, "at least 1"),
                                     help="with --model-backend vllm: requests in flight at once")


@dataclass
class TokenizerOptions(Options):
    tokenizer: Optional[str] = option(None, section="sample", help=f"registered speech tokenizer (default: the model dir's "
                                                 f"{TOKENIZER_FILE})")
    tokenizer_args: str = option("", section="sample", must=_parses_as_key_values("--tokenizer-args"),
                                 help="key=value,... for the tokenizer, e.g. path=DIR,kmeans=F")


@dataclass
class PipelineOptions(Options):
    """The continuation pipeline's components and the scorers' options (generation tasks, re-scoring, training)."""

    _argument_group = "continuation pipeline (continuation, gpt4o_score, audio_quality, signal_quality)"

    vocoder: Optional[str] = option(None, section="score", help="NAME[:PATH] of a registered vocoder, or a directory holding a "
                                               f"CodeHiFiGAN .pt and its config (default: the model dir's "
                                               f"{VOCODER_FILE})")
    vocoder_args: str = option("", section="score", must=_parses_as_key_values("--vocoder-args"),
                               help="key=value,... for the vocoder")
    asr: Optional[str] = option(None, section="score", help="NAME[:PATH] of a registered ASR, e.g. whisper:DIR (default: pocketsphinx, "
                                           "offline English; when re-scoring, the ASR that transcribed the run)")
    asr_args: str = option("", section="score", must=_parses_as_key_values("--asr-args"),
                           help="key=value,... for the ASR, e.g. language=en,batch_size=8")
    text_lm: Optional[str] = option(None, scorer=True, section="score",
                                    help="hub id or dir of the causal text LM for GenPPL (e.g. Llama-3.2-1B)")
    judge_model: Optional[str] = option(None, scorer=True, section="score",
                                        help="model name at the OpenAI-compatible judge endpoint, e.g. gpt-4o")
    judge_base_url: Optional[str] = option(
        None, scorer=True, must=(_http_url, "an http(s) URL, e.g. http://127.0.0.1:8000/v1"),
        help="judge endpoint base URL (default: the OpenAI API)")
    judge_api_key_env: str = option("OPENAI_API_KEY", scorer=True,
                                    help="environment variable holding the judge API key (the key is never written "
                                         "anywhere)")
    judge_concurrency: int = option(8, scorer=True, must=(lambda v: v >= 1, "at least 1"),
                                    help="judge requests in flight at most")
    judge_timeout_s: float = option(60.0, scorer=True, flag="--judge-timeout", must=(lambda v: v > 0, "positive"),
                                    help="seconds one judge request may take in all (connect, wait and read), before "
                                         "it is retried")
    judge_prompt: Optional[Path] = option(None, scorer=True, section="score",
                                          help="judge prompt template: a text file with {prompt} and {continuation}, "
                                               "or slamkit's llm_as_judge.yaml")
    judge_answer_pattern: Optional[str] = option(
        None, scorer=True, section="score", must=(_answer_pattern, "a regular expression with one group"),
        help="regular expression whose last match's first group is the judge's score (default: the N in \\boxed{N})")
    mos_checkpoint: Optional[Path] = option(None, scorer=True,
                                            help="UTMOS weights for audio_quality (the authors' .ckpt or SpeechMOS's "
                                                 ".pt), or TorchAudio-SQUIM subjective weights for the squim_mos "
                                                 "scorer")
    judge_max_retries: int = option(5, scorer=True, must=(lambda v: v >= 0, "0 or more"),
                                    help="retries of a failed judge request")
    judge_temperature: float = option(0.0, scorer=True, section="score", help="judge sampling temperature")
    judge_max_tokens: int = option(256, scorer=True, section="score", must=(lambda v: v >= 1, "at least 1"),
                                   help="most tokens of one judge answer")
    judge_retry_unparsable: bool = option(False, scorer=True,
                                          help="ask the judge again for samples whose cached answer held no readable "
                                               "score (they are otherwise final: an unparsable answer is a real "
                                               "answer)")

    def scorer_options(self, device: str = "cpu") -> dict[str, Any]:
        """The options scorers are built from (`ContinuationScorer.from_options`)."""
        options = {f.name: json_value(getattr(self, f.name)) for f in option_fields(self) if f.metadata.get("scorer")}
        return {**options, "device": device}


@dataclass
class ResolvedModel:
    """What `--model` stands for: a checkpoint (hub id or dir), and the demo's benchmark and text LM when it is the
    demo."""

    path: str
    demo: Any = None  # alignslm_eval.demo.Demo when --model demo

    @property
    def data_root(self) -> Optional[Path]:
        return self.demo.data_root if self.demo else None

    @property
    def text_lm(self) -> Optional[str]:
        return str(self.demo.text_lm_dir) if self.demo else None


def resolve_model(model: str, cache_dir: Path) -> ResolvedModel:
    """`demo` -> the embedded demo (built under `cache_dir` on first use); anything else stands for itself."""
    if model != DEMO_NAME:
        return ResolvedModel(model)
    from alignslm_eval.demo import ensure_demo

    demo = ensure_demo(cache_dir)
    return ResolvedModel(str(demo.model_dir), demo)


def build_unit_lm(options: ModelOptions, path: Optional[str] = None):
    """The unit LM `options` name; `path` is its resolved checkpoint (`resolve_model`), default `options.model`."""
    from alignslm_eval.api.registry import MODELS

    return MODELS.get(options.model_backend).from_args(
        path or options.model, device=options.device, dtype=options.dtype, revision=options.revision,
        unit_convention=options.unit_convention, unit_offset=options.unit_offset, n_units=options.n_units,
        adapter=options.adapter, engine_url=options.engine_url, engine_concurrency=options.engine_concurrency,
    )


def _spec_file(path: Optional[Path], flag: str) -> tuple[str, dict[str, str]]:
    """A component named in a model dir file: {"name": ..., "args": {...}}; relative paths resolve against the dir
    so the model dir can move."""
    if path is None or not path.is_file():
        raise UserError(f"pass {flag} NAME (see `alignslm-eval ls`), or put {path.name if path else 'a spec file'} "
                        "in the model dir")
    try:
        spec = json.loads(path.read_text())
        name, kwargs = spec["name"], dict(spec.get("args", {}))
    except (ValueError, KeyError, TypeError) as e:
        raise UserError(f"{path}: expected {{\"name\": ..., \"args\": {{...}}}} ({e})")
    for key in ("path", "kmeans", "checkpoint", "config", "tokenizer"):
        if key in kwargs and not Path(kwargs[key]).is_absolute():
            kwargs[key] = str(path.parent / kwargs[key])
    return name, kwargs


def build_tokenizer(options: TokenizerOptions, model_dir: Optional[str]):
    """The speech tokenizer `options` name, else the one the model dir's alignslm_tokenizer.json names."""
    from alignslm_eval.api.registry import TOKENIZERS

    if options.tokenizer:
        return TOKENIZERS.get(options.tokenizer).from_args(**key_values(options.tokenizer_args, "--tokenizer-args"))
    name, kwargs = _spec_file(Path(model_dir) / TOKENIZER_FILE if model_dir else None, "--tokenizer")
    kwargs.update(key_values(options.tokenizer_args, "--tokenizer-args"))
    return TOKENIZERS.get(name).from_args(**kwargs)


def tokenizer_source(options: TokenizerOptions, model_dir: Optional[str]) -> str:
    """Where the speech tokenizer came from, for messages: its flag, or the model dir's spec file."""
    if options.tokenizer:
        return f"--tokenizer {options.tokenizer}"
    return str(Path(model_dir) / TOKENIZER_FILE) if model_dir else TOKENIZER_FILE


def _component_spec(value: str, args_text: str, flag: str) -> tuple[str, dict[str, str]]:
    """`NAME[:PATH]` plus `key=value,...` -> (name, kwargs); a PATH becomes the `path` argument."""
    name, _, path = value.partition(":")
    kwargs = key_values(args_text, f"{flag}-args")
    if path:
        kwargs.setdefault("path", path)
    return name, kwargs


@dataclass(frozen=True)
class UnitCounts:
    """What the vocoder's unit embeddings are checked against when it loads: the model's unit vocabulary and the
    speech tokenizer's centroid count (with where each came from, for the message)."""

    vocab: Any  # alignslm_eval.models.vocab.UnitVocabulary
    tokenizer_units: int
    tokenizer: str
    n_units_flag: bool = True


def build_pipeline(options: PipelineOptions, model_dir: Optional[str], device: str = "cpu",
                   units: Optional[UnitCounts] = None):
    """The continuation pipeline's lazy vocoder and ASR factories and its scorer options; with `units`, a vocoder
    with fewer unit embeddings than the model has units is refused when it loads."""
    from alignslm_eval.api.registry import ASRS, VOCODERS
    from alignslm_eval.evaluate.generation import PipelineComponents

    def vocoder():
        if options.vocoder and Path(options.vocoder).is_dir():
            folder = Path(options.vocoder)
            # a directory's alignslm_vocoder.json, else a CodeHiFiGAN directory (.pt + config)
            if (folder / VOCODER_FILE).is_file():
                name, kwargs = _spec_file(folder / VOCODER_FILE, "--vocoder")
            else:
                name, kwargs = "code_hifigan", {"path": str(folder)}
            kwargs.update(key_values(options.vocoder_args, "--vocoder-args"))
        elif options.vocoder:
            name, kwargs = _component_spec(options.vocoder, options.vocoder_args, "--vocoder")
        else:
            name, kwargs = _spec_file(Path(model_dir) / VOCODER_FILE if model_dir else None, "--vocoder")
            kwargs.update(key_values(options.vocoder_args, "--vocoder-args"))
        loaded = VOCODERS.get(name).from_args(**kwargs)
        if units is not None:
            where = f"--vocoder {options.vocoder}" if options.vocoder else f"vocoder {name} ({VOCODER_FILE})"
            units.vocab.check_vocoder(loaded.n_units, where, units.tokenizer_units, units.tokenizer,
                                      units.n_units_flag)
        return loaded

    def asr():
        name, kwargs = _component_spec(options.asr or "pocketsphinx", options.asr_args, "--asr")
        return ASRS.get(name).from_args(**kwargs)

    return PipelineComponents(vocoder, asr, options.scorer_options(device))


def missing_options(scorers: Sequence[str], options: dict[str, Any]) -> dict[str, str]:
    """Scorer name -> the flags of the required options it lacks (a judge endpoint, a text LM), for the message."""
    from alignslm_eval.api.registry import SCORERS

    out = {}
    for name in scorers:
        missing = [o for o in getattr(SCORERS.get(name), "required_options", ()) if not options.get(o)]
        if missing:
            out[name] = ", ".join(f"--{o.replace('_', '-')}" for o in missing)
    return out


def unrunnable_tasks(specs: list, options: dict[str, Any]) -> dict[str, str]:
    """Tasks whose scorers lack a required option, with the reason."""
    reasons = {}
    for spec in specs:
        names = spec.settings.get("scorers") if isinstance(spec.settings.get("scorers"), list) else []
        for name, flags in missing_options(names, options).items():
            reasons[spec.name] = f"scorer {name} needs {flags}"
    return reasons


@dataclass
class Components:
    """A loaded run: the unit LM, its speech tokenizer (checked against its vocabulary) and the pipeline."""

    lm: Any
    tokenizer: Any
    pipeline: Any
    model: ResolvedModel = field(default_factory=lambda: ResolvedModel(""))


def load_components(model: ModelOptions, tokenizer: TokenizerOptions, pipeline: PipelineOptions,
                    cache_dir: Optional[Path] = None, check_n_units_flag: bool = True) -> Components:
    """Resolve `--model` (the demo included), load the unit LM and the tokenizer, check that the tokenizer's unit
    count fits the LM's vocabulary, and make the pipeline (its vocoder and ASR load when a task needs them)."""
    from alignslm_eval.io.cache import default_cache_dir

    resolved = resolve_model(model.model, cache_dir or default_cache_dir())
    if resolved.text_lm and not pipeline.text_lm:
        pipeline.text_lm = resolved.text_lm  # the demo brings its own text LM
    lm = build_unit_lm(model, resolved.path)
    model_dir = lm.describe().get("local_dir")
    speech_tokenizer = build_tokenizer(tokenizer, model_dir)
    source = tokenizer_source(tokenizer, model_dir)
    lm.vocab.check_tokenizer(speech_tokenizer.n_units, source, n_units_flag=check_n_units_flag)
    units = UnitCounts(lm.vocab, speech_tokenizer.n_units, source, check_n_units_flag)
    return Components(lm, speech_tokenizer, build_pipeline(pipeline, model_dir, model.device, units), resolved)
