"""`alignslm-eval`: score a speech unit LM on registered tasks; `ls`; `zerospeech-score`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

import yaml

from alignslm_eval.io.errors import ArgumentParser, UserError, run_command
from alignslm_eval.io.paths import check_directory, check_output_file
from alignslm_eval.io.redaction import redact_command

TOKENIZER_FILE = "alignslm_tokenizer.json"
VOCODER_FILE = "alignslm_vocoder.json"
DEMO_NAME = "demo"  # `--model demo`: the embedded tiny model and benchmark, built offline on first use


def _key_values(text: str, flag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        if "=" not in part:
            raise UserError(f"{flag} {text!r}: expected key=value pairs separated by commas")
        key, value = part.split("=", 1)
        out[key.strip()] = value.strip()
    return out


def _yaml_setting(item: str, usage: str) -> tuple[str, Any]:
    """`--set KEY=VALUE` -> (KEY, the VALUE read as YAML)."""
    if "=" not in item:
        raise UserError(f"--set {item!r}: expected {usage}")
    key, value = item.split("=", 1)
    try:
        return key, yaml.safe_load(value)
    except yaml.YAMLError:
        raise UserError(f"--set {item!r}: the value is not valid YAML (quote strings, e.g. '[a, b]')")


def _task_overrides(items: Sequence[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        usage = "TASK.KEY=VALUE, e.g. sstorycloze.reduction=sum"
        target, value = _yaml_setting(item, usage)
        if "." not in target:
            raise UserError(f"--set {item!r}: expected {usage}")
        task, key = target.split(".", 1)
        out.setdefault(task, {})[key] = value
    return out


def _task_data(items: Sequence[str]) -> dict[str, Path]:
    out = {}
    for item in items:
        if "=" not in item:
            raise UserError(f"--task-data {item!r}: expected TASK=DIR")
        task, path = item.split("=", 1)
        out[task] = Path(path)
    return out


def run_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="alignslm-eval",
        description="Score a textless speech LM on spoken benchmarks. Other commands: `alignslm-eval ls`, "
        "`alignslm-eval score` (re-score a saved continuation run), `alignslm-eval zerospeech-score`.",
    )
    p.add_argument("--model", required=True,
                   help="hub id, local checkpoint dir, or 'demo' (tiny model + benchmark built offline on first use)")
    p.add_argument("--model-backend", default="hf", help="registered model back-end (see `alignslm-eval ls`)")
    p.add_argument("--revision", help="hub revision (branch, tag or commit)")
    p.add_argument("--adapter", help="LoRA adapter dir (e.g. from alignslm-train) applied on top of --model")
    p.add_argument("--unit-convention", choices=["twist", "slam"], help="override how units map to token ids")
    p.add_argument("--unit-offset", type=int, help="TWIST convention: token id of unit 0")
    p.add_argument("--n-units", type=int, help="size of the unit inventory (default: from the checkpoint)")
    p.add_argument("--tasks", required=True, help="comma-separated task names, or 'all'")
    p.add_argument("--data-root", type=Path, help="folder holding each task's data_dir (e.g. lexical/, sSC/)")
    p.add_argument("--task-data", action="append", default=[], metavar="TASK=DIR", help="data dir for one task")
    p.add_argument("--set", action="append", default=[], metavar="TASK.KEY=VALUE",
                   help="override a task setting, e.g. swuggy.split=test or sstorycloze.reduction=sum")
    p.add_argument("--include-path", action="append", default=[], type=Path, help="extra folder of task YAMLs")
    p.add_argument("--tokenizer", help=f"registered speech tokenizer (default: the model dir's {TOKENIZER_FILE})")
    p.add_argument("--tokenizer-args", default="", help="key=value,... for the tokenizer, e.g. path=DIR,kmeans=F")
    p.add_argument("--output-path", type=Path, default=Path("runs"), help="results go under OUTPUT/<model name>/")
    p.add_argument("--cache-dir", type=Path, help="cache root for units, the demo build and judge answers (default "
                   "$ALIGNSLM_CACHE or ~/.cache/alignslm)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    p.add_argument("--limit", type=int, help="score only the first N choices of each task")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log-samples", action="store_true", help="write samples_<task>.jsonl with every item's scores")
    add_pipeline_arguments(p)
    return p


def add_pipeline_arguments(p: argparse.ArgumentParser) -> None:
    """Flags of the continuation pipeline (generation tasks and re-scoring)."""
    g = p.add_argument_group("continuation pipeline (continuation, gpt4o_score, audio_quality, signal_quality)")
    g.add_argument("--vocoder", help="NAME[:PATH] of a registered vocoder, or a directory holding a CodeHiFiGAN .pt and "
                   f"its config (default: the model dir's {VOCODER_FILE})")
    g.add_argument("--vocoder-args", default="", help="key=value,... for the vocoder")
    g.add_argument("--asr", help="NAME[:PATH] of a registered ASR, e.g. whisper:DIR (default: pocketsphinx, offline "
                   "English; when re-scoring, the ASR that transcribed the run)")
    g.add_argument("--asr-args", default="", help="key=value,... for the ASR, e.g. language=en,batch_size=8")
    g.add_argument("--text-lm", help="hub id or dir of the causal text LM for GenPPL (e.g. Llama-3.2-1B)")
    g.add_argument("--judge-model", help="model name at the OpenAI-compatible judge endpoint, e.g. gpt-4o")
    g.add_argument("--judge-base-url", help="judge endpoint base URL (default: the OpenAI API)")
    g.add_argument("--judge-api-key-env", default="OPENAI_API_KEY",
                   help="environment variable holding the judge API key (the key is never written anywhere)")
    g.add_argument("--judge-concurrency", type=int, default=8, help="judge requests in flight at most")
    g.add_argument("--judge-timeout", type=float, default=60.0,
                   help="seconds one judge request may take in all (connect, wait and read), before it is retried")
    g.add_argument("--judge-prompt", type=Path, help="judge prompt template: a text file with {prompt} and "
                   "{continuation}, or slamkit's llm_as_judge.yaml")
    g.add_argument("--judge-answer-pattern", help="regular expression whose last match's first group is the judge's "
                   "score (default: the N in \\boxed{N})")
    g.add_argument("--mos-checkpoint", type=Path, help="UTMOS weights for audio_quality (the authors' .ckpt or SpeechMOS's .pt), "
                   "or TorchAudio-SQUIM subjective weights for the squim_mos scorer")
    g.add_argument("--judge-max-retries", type=int, default=5, help="retries of a failed judge request")
    g.add_argument("--judge-temperature", type=float, default=0.0)
    g.add_argument("--judge-max-tokens", type=int, default=256)
    g.add_argument("--judge-retry-unparsable", action="store_true",
                   help="ask the judge again for samples whose cached answer held no readable score (they are "
                   "otherwise final: an unparsable answer is a real answer)")


def _component_spec(value: str, args_text: str, flag: str) -> tuple[str, dict[str, str]]:
    """`NAME[:PATH]` plus `key=value,...` -> (name, kwargs); a PATH becomes the `path` argument."""
    name, _, path = value.partition(":")
    kwargs = _key_values(args_text, f"{flag}-args")
    if path:
        kwargs.setdefault("path", path)
    return name, kwargs


def pipeline_components(args: argparse.Namespace, model_dir: Optional[str]):
    """Lazy vocoder / ASR factories and scorer options from the CLI flags."""
    from alignslm_eval.api.registry import ASRS, VOCODERS
    from alignslm_eval.evaluate.generation import PipelineComponents

    def vocoder():
        if args.vocoder and Path(args.vocoder).is_dir():
            name, kwargs = _vocoder_dir(Path(args.vocoder))
            kwargs.update(_key_values(args.vocoder_args, "--vocoder-args"))
        elif args.vocoder:
            name, kwargs = _component_spec(args.vocoder, args.vocoder_args, "--vocoder")
        else:
            name, kwargs = _spec_file(Path(model_dir) / VOCODER_FILE if model_dir else None, "--vocoder")
            kwargs.update(_key_values(args.vocoder_args, "--vocoder-args"))
        return VOCODERS.get(name).from_args(**kwargs)

    def asr():
        name, kwargs = _component_spec(args.asr or "pocketsphinx", args.asr_args, "--asr")
        return ASRS.get(name).from_args(**kwargs)

    return PipelineComponents(vocoder, asr, scorer_options(args))


def _vocoder_dir(folder: Path) -> tuple[str, dict[str, str]]:
    """`--vocoder DIR`: the directory's alignslm_vocoder.json, else a CodeHiFiGAN directory (.pt + config)."""
    if (folder / VOCODER_FILE).is_file():
        return _spec_file(folder / VOCODER_FILE, "--vocoder")
    return "code_hifigan", {"path": str(folder)}


def scorer_options(args: argparse.Namespace) -> dict[str, Any]:
    options = {
        "text_lm": args.text_lm, "judge_model": args.judge_model, "judge_base_url": args.judge_base_url,
        "judge_api_key_env": args.judge_api_key_env, "judge_concurrency": args.judge_concurrency,
        "judge_timeout_s": args.judge_timeout, "judge_max_retries": args.judge_max_retries,
        "judge_temperature": args.judge_temperature, "judge_max_tokens": args.judge_max_tokens,
        "judge_retry_unparsable": args.judge_retry_unparsable,
        "device": getattr(args, "device", "cpu"),
        "mos_checkpoint": str(args.mos_checkpoint) if args.mos_checkpoint else None,
    }
    if args.judge_prompt:
        options["judge_prompt"] = str(args.judge_prompt)
    if args.judge_answer_pattern:
        options["judge_answer_pattern"] = args.judge_answer_pattern
    return options


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


def model_name(model: str, adapter: Optional[str] = None) -> str:
    """Folder name of a run: the checkpoint dir's name or the hub id, plus the adapter's round when one is applied."""
    path = Path(model)
    name = (path.name if path.exists() else model.replace("/", "__")) or "model"
    if adapter:
        a = Path(adapter).resolve()
        name += "+" + (a.parent.name if a.name == "adapter" else a.name)
    return name


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


def speech_tokenizer(args: argparse.Namespace, model_dir: Optional[str]):
    """The speech tokenizer from --tokenizer flags, else the one the model dir names."""
    from alignslm_eval.api.registry import TOKENIZERS

    if args.tokenizer:
        return TOKENIZERS.get(args.tokenizer).from_args(**_key_values(args.tokenizer_args, "--tokenizer-args"))
    name, kwargs = _spec_file(Path(model_dir) / TOKENIZER_FILE if model_dir else None, "--tokenizer")
    kwargs.update(_key_values(args.tokenizer_args, "--tokenizer-args"))
    return TOKENIZERS.get(name).from_args(**kwargs)


def tokenizer_source(args: argparse.Namespace, model_dir: Optional[str]) -> str:
    """Where the speech tokenizer came from, for messages: its flag, or the model dir's spec file."""
    if args.tokenizer:
        return f"--tokenizer {args.tokenizer}"
    return str(Path(model_dir) / TOKENIZER_FILE) if model_dir else TOKENIZER_FILE


def check_pipeline_arguments(args: argparse.Namespace) -> None:
    """Pipeline flags that can be checked before anything is loaded or sampled."""
    from urllib.parse import urlparse

    for flag, value in (("--asr-args", args.asr_args), ("--vocoder-args", args.vocoder_args)):
        _key_values(value, flag)
    if args.judge_base_url:
        url = urlparse(args.judge_base_url)
        if url.scheme not in ("http", "https") or not url.netloc or " " in args.judge_base_url:
            raise UserError(f"--judge-base-url {args.judge_base_url}: not an http(s) URL; give e.g. "
                            "http://127.0.0.1:8000/v1")
    for flag, value in (("--judge-concurrency", args.judge_concurrency), ("--judge-max-tokens", args.judge_max_tokens)):
        if value < 1:
            raise UserError(f"{flag} {value}: must be at least 1")
    if args.judge_timeout <= 0 or args.judge_max_retries < 0:
        raise UserError("--judge-timeout must be positive and --judge-max-retries at least 0")
    if args.judge_answer_pattern is not None:
        from alignslm_eval.scoring.judge import compile_answer_pattern

        compile_answer_pattern(args.judge_answer_pattern)


def _check_run_arguments(args: argparse.Namespace) -> None:
    if args.batch_size < 1:
        raise UserError("--batch-size must be at least 1")
    if args.limit is not None and args.limit < 1:
        raise UserError("--limit must be at least 1")
    if args.n_units is not None and args.n_units < 1:
        raise UserError(f"--n-units {args.n_units}: must be at least 1")
    if args.unit_offset is not None and args.unit_offset < 0:
        raise UserError(f"--unit-offset {args.unit_offset}: must be 0 or more (the token id of unit 0)")
    check_directory(args.data_root, "--data-root", must_exist=True)
    check_directory(args.output_path, "--output-path")
    check_directory(args.cache_dir, "--cache-dir")
    check_pipeline_arguments(args)


def cmd_run(argv: Sequence[str]) -> int:
    args = run_parser().parse_args(argv)
    _check_run_arguments(args)
    from alignslm_eval.api.registry import MODELS
    from alignslm_eval.api.task import load_specs
    from alignslm_eval.io.cache import default_cache_dir
    from alignslm_eval.evaluate.likelihood import EvalSettings, evaluate, prepare_tasks
    from alignslm_eval.api.results import markdown_summary

    overrides = _task_overrides(args.set)
    requested = [t.strip() for t in args.tasks.split(",") if t.strip()]
    if not requested:
        raise UserError(f"--tasks {args.tasks!r}: names no task; give comma-separated names (see `alignslm-eval ls`) "
                        "or all")
    not_run = sorted(set(overrides) - set(requested)) if requested != ["all"] else []
    if not_run:
        raise UserError(f"--set for {', '.join(not_run)}: not among the tasks run ({args.tasks}); add it to --tasks or "
                        "drop the --set")
    model, data_root, cache_dir = args.model, args.data_root, args.cache_dir or default_cache_dir()
    if args.model == DEMO_NAME:
        # Task files and --set values are checked before the demo is built (a first build takes a minute or more).
        from alignslm_eval.api.registry import TASK_KINDS

        for spec in load_specs(requested, tuple(args.include_path), overrides):
            TASK_KINDS.get(spec.kind)(spec)
        from alignslm_eval.demo import ensure_demo

        demo = ensure_demo(cache_dir)
        model = str(demo.model_dir)
        if data_root is None:
            data_root = demo.data_root
            # The demo builds the SALMon parts a TTS can make; the override is recorded in the results.
            overrides.setdefault("salmon", {}).setdefault("parts", list(demo.salmon_parts))
        args.text_lm = args.text_lm or str(demo.text_lm_dir)
    specs = load_specs(requested, tuple(args.include_path), overrides)
    skipped = unrunnable_tasks(specs, scorer_options(args)) if requested == ["all"] else {}
    for name, reason in skipped.items():
        # Only `--tasks all` skips, and says so here and in the results file; a named task fails instead.
        print(f"alignslm-eval: skipping {name}: {reason}", file=sys.stderr)
    specs = [s for s in specs if s.name not in skipped]
    task_data = _task_data(args.task_data)
    unknown = sorted(set(task_data) - {s.name for s in specs} - set(skipped))
    if unknown:
        raise UserError(f"--task-data for {', '.join(unknown)}: not among the tasks run ({args.tasks})")
    output_dir = args.output_path / model_name(args.model, args.adapter)
    if args.limit is not None:
        # A partial run's files (submission, samples, items) go beside the full run's, never over them.
        output_dir = output_dir / f"limit-{args.limit}"
    settings = EvalSettings(
        output_dir=output_dir,
        data_root=data_root,
        task_data=task_data,
        cache_dir=cache_dir,
        batch_size=args.batch_size,
        limit=args.limit,
        seed=args.seed,
        log_samples=args.log_samples,
        command=redact_command(["alignslm-eval", *argv]),
        skipped=skipped,
    )
    tasks = prepare_tasks(specs, settings)
    lm = MODELS.get(args.model_backend).from_args(
        model, device=args.device, dtype=args.dtype, revision=args.revision,
        unit_convention=args.unit_convention, unit_offset=args.unit_offset, n_units=args.n_units,
        adapter=args.adapter,
    )
    tokenizer = speech_tokenizer(args, lm.describe().get("local_dir"))
    lm.vocab.check_tokenizer(tokenizer.n_units, tokenizer_source(args, lm.describe().get("local_dir")))
    settings.components = pipeline_components(args, lm.describe().get("local_dir"))
    results, path = evaluate(tasks, lm, tokenizer, settings)
    print(markdown_summary(results))
    print(f"results: {path}")
    return _report_unscored_tasks(results)


def _report_unscored_tasks(results: dict[str, Any]) -> int:
    """Exit status 1 (results kept) when a generation task scored no sample at all, e.g. every judge call failed."""
    failed = 0
    for name, entry in results["tasks"].items():
        headline = entry["result"]["headline"]
        if "pipeline" in entry and entry["result"]["metrics"][headline]["n"] == 0:
            reasons = entry.get("unscored", {}).get(headline, {})
            top = next(iter(reasons), "no sample")
            retry = ", and a rerun retries the failed requests" if str(top).startswith("error") else ""
            print(f"alignslm-eval: {name}: no sample could be scored ({top!r} x{reasons.get(top, 0)}); the results "
                  f"file is kept{retry}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


def cmd_ls(argv: Sequence[str]) -> int:
    p = ArgumentParser(prog="alignslm-eval ls", description="List registered tasks and components.")
    p.add_argument("--include-path", action="append", default=[], type=Path)
    args = p.parse_args(argv)
    from alignslm_eval.api.registry import ASRS, MODELS, SCORERS, TASK_KINDS, TOKENIZERS, VOCODERS
    from alignslm_eval.api.task import task_files

    print("tasks:")
    for name, path in task_files(tuple(args.include_path)).items():
        print(f"  {name:16s} {path}")
    for title, registry in (("model back-ends", MODELS), ("speech tokenizers", TOKENIZERS), ("vocoders", VOCODERS),
                            ("ASR", ASRS), ("task kinds", TASK_KINDS), ("scorers", SCORERS)):
        print(f"{title}: {', '.join(registry.names())}")
    return 0


def cmd_zerospeech_score(argv: Sequence[str]) -> int:
    p = ArgumentParser(
        prog="alignslm-eval zerospeech-score",
        description="Score a ZeroSpeech 2021 submission file (`<filename> <score>` lines) against a gold.csv.",
    )
    p.add_argument("submission", type=Path, help="e.g. submission/lexical/dev.txt")
    p.add_argument("--gold", type=Path, required=True, help="folder holding gold.csv (e.g. DATA/lexical/dev)")
    p.add_argument("--kind", choices=["lexical", "syntactic"], required=True)
    p.add_argument("--output", type=Path, help="also write the result as JSON here")
    args = p.parse_args(argv)
    from alignslm_eval.api.results import markdown_summary, write_json
    from alignslm_eval.evaluate.zerospeech import score_submission

    result = score_submission(args.submission, args.gold, args.kind).to_json()
    doc = {"tasks": {args.kind: {"result": result}}}
    print(markdown_summary(doc))
    if args.output:
        write_json(args.output, {"submission": str(args.submission), "gold": str(args.gold), **doc})
    return 0


def cmd_score(argv: Sequence[str]) -> int:
    p = ArgumentParser(
        prog="alignslm-eval score",
        description="Re-score a saved continuation run with other scorers, without sampling again. The run's own "
        "wavs and transcripts are reused (their vocoder and ASR are not loaded); --vocoder / --asr choose others, and "
        "make what the run lacks.",
    )
    p.add_argument("run_dir", type=Path, help="a continuation run dir (the run_dir recorded in a results file)")
    p.add_argument("--scorers", required=True, help="comma-separated registered scorers, e.g. genppl,auto_bleu")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a scorer setting, as a task sets it, e.g. genppl_include_prompt=true or auto_bleu_n=3")
    p.add_argument("--output", type=Path, help="results JSON (default: RUN_DIR/rescored_<timestamp>.json)")
    p.add_argument("--log-samples", action="store_true", help="also write every sample's scores, beside --output")
    p.add_argument("--device", default="cpu")
    add_pipeline_arguments(p)
    args = p.parse_args(argv)
    check_pipeline_arguments(args)
    from alignslm_eval.api.registry import SCORERS
    from alignslm_eval.evaluate.continuation_store import ContinuationRun
    from alignslm_eval.evaluate.generation import prepare_scorers, score_continuations, unscored_reasons, write_samples_log
    from alignslm_eval.api.results import (SCHEMA_VERSION, environment, markdown_summary, timestamp, write_json,
                                       write_new_json)
    from alignslm_tasks.continuation import aggregate_scores

    run = ContinuationRun(args.run_dir)
    names = [n.strip() for n in args.scorers.split(",") if n.strip()]
    if not names:
        raise UserError(f"--scorers {args.scorers!r}: names no scorer; see `alignslm-eval ls` for the scorers")
    scorers = [SCORERS.get(n) for n in names]
    if not all(isinstance(s, type) and hasattr(s, "from_options") for s in scorers):
        raise UserError(f"--scorers {args.scorers}: only continuation scorers can re-score a run")
    settings = dict(_yaml_setting(item, "KEY=VALUE, e.g. genppl_include_prompt=true") for item in args.set)
    accepted = sorted({key for s in scorers for key in s.task_settings})
    unknown = sorted(set(settings) - set(accepted))
    if unknown:
        raise UserError(f"--set {', '.join(unknown)}: not a setting of the scorers {args.scorers} (theirs: "
                        f"{', '.join(accepted) or 'none'})")
    created = timestamp()
    if args.output:
        check_output_file(args.output, "--output", "rescored.json")
    components = pipeline_components(args, run.identity["model"].get("local_dir"))
    # The run's own wavs and transcripts, unless the flags name another vocoder or ASR (its arguments alone do too).
    needs = {need for s in scorers for need in s.needs}
    if needs & {"wav", "text"} and not (args.vocoder or args.vocoder_args):
        components.recorded_vocoder = run.recorded("vocoder")
    if "text" in needs and not (args.asr or args.asr_args):
        components.recorded_asr = run.recorded("asr")
    scorers = prepare_scorers(names, components, settings)
    items = run.items()
    scores, pipeline = score_continuations(run, items, run.prompts(), scorers, components)
    files = {"run_dir": str(run.root)}
    doc = {"schema_version": SCHEMA_VERSION, "created": created,
           "command": redact_command(["alignslm-eval", "score", *argv]),
           "environment": environment(), "model": run.identity["model"],
           "tasks": {"rescore": {"settings": settings, "pipeline": pipeline,
                                 "result": aggregate_scores(scores).to_json(), "unscored": unscored_reasons(scores),
                                 "files": files}}}
    if args.output:
        output = args.output
        write_json(output, doc)
    else:  # a name of its own: two re-scorings of one run finishing in the same second keep both files
        output = write_new_json(run.root, f"rescored_{created}", doc)
    if args.log_samples:
        files["samples"] = str(write_samples_log(output.with_name(f"{output.stem}_samples.jsonl"), items, scores))
        write_json(output, doc)
    print(markdown_summary(doc))
    print(f"results: {output}")
    return _report_unscored_tasks(doc)


COMMANDS = {"ls": cmd_ls, "zerospeech-score": cmd_zerospeech_score, "score": cmd_score}


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = COMMANDS.get(argv[0]) if argv else None
    return run_command("alignslm-eval", lambda: command(argv[1:]) if command else cmd_run(argv),
                       "scored items and units are saved, rerun the same command to resume")


if __name__ == "__main__":
    sys.exit(main())
