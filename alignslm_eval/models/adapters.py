"""LoRA adapters on a unit LM: read an adapter dir and the chain of earlier rounds under it, check each adapter against
the model it is applied to, and merge them in.

A curriculum round k+1 trains a fresh adapter on the model with rounds 1..k merged in (so its DPO reference is round
k's policy); its dir lists those earlier adapters in `alignslm_adapter_chain.json`, paths relative to it.

An adapter is applied only to the model it was trained on, which peft records in adapter_config.json's
`base_model_name_or_path`: the directory the model was loaded from (alignslm loads a hub model from its snapshot in
the Hugging Face cache, and the demo from its cache dir) or a hub id. It matches `--model` when it is
- the same directory (paths resolved), or a directory with the same weights (`weights_fingerprint`): a copy, or the
  demo built in another cache dir when the build came out byte-identical;
- the same hub repo (a hub id, or a snapshot dir of a hub cache on any machine), at the same commit where both say.
Anything else is refused, a recorded directory missing here included: nothing then shows that `--model` is the same
model, and the error says how to record the new place. A merged checkpoint (`alignslm-train merge`) is a model of its
own: an adapter trained on its origin, or already merged into it, does not apply to it.
An adapter that records no base (peft leaves it empty for a model built from a config, as alignslm's Slam loader did
before it recorded the checkpoint dir) cannot be checked: it is applied with a warning, since its weights' shapes are
still checked and refusing would leave no way to use it but editing its config.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import torch

from alignslm_eval.io.errors import UserError, first_line
from alignslm_eval.io.json_file import read_json_object
from alignslm_eval.models.loading import looks_like_local_path, weights_fingerprint
from alignslm_eval.models.torch_checkpoint import load_tensors
from alignslm_eval.models.vocab import VOCAB_FILE, UnitVocabulary

ADAPTER_CHAIN_FILE = "alignslm_adapter_chain.json"
MERGED_FROM_FILE = "alignslm_merged_from.json"  # written by `alignslm-train merge` into the checkpoint it makes
#: written by alignslm-train beside each adapter: its base's weights fingerprint, which still identifies the base
#: when the recorded path is gone (the run moved to another machine or scratch dir)
BASE_RECORD_FILE = "alignslm_adapter_base.json"
CONFIG_FILE = "adapter_config.json"
LORA_FIELDS = ("peft_type", "r", "lora_alpha", "target_modules")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BaseModel:
    """The model adapters are applied to: `--model` as given, the local dir it was loaded from, and for a hub model
    its repo id and commit."""

    given: str
    local_dir: Path
    hub_id: Optional[str] = None
    commit: Optional[str] = None

    def hub_repo(self) -> Optional[tuple[str, Optional[str]]]:
        """(lower-case repo id, commit) when the model came from the hub or sits in a hub cache."""
        if self.hub_id:
            return self.hub_id.lower(), self.commit
        return hub_snapshot(self.local_dir)


def hub_snapshot(path: Path) -> Optional[tuple[str, str]]:
    """(lower-case repo id, commit) of a `.../models--ORG--NAME/snapshots/COMMIT` dir of a Hugging Face cache."""
    repo = path.parent.parent.name
    if path.parent.name != "snapshots" or not repo.startswith("models--"):
        return None
    return repo[len("models--"):].replace("--", "/").lower(), path.name  # the hub forbids "--" inside names


def apply_adapter_chain(
    lm: torch.nn.Module, adapter_dir: Path, model: BaseModel, vocab: UnitVocabulary
) -> tuple[torch.nn.Module, list[dict[str, Any]]]:
    """Merge the adapter at `adapter_dir`, after the adapters its chain lists, into `lm` (loaded from `model`, read
    with `vocab`). Every adapter's config, base model and unit vocabulary is checked before any weights load.
    Returns the model and, for the results file, each adapter's path and weights fingerprint in order."""
    top = f"--adapter {adapter_dir}"
    if not adapter_dir.is_dir():
        raise UserError(f"{top}: directory does not exist; pass a LoRA adapter dir written by alignslm-train "
                        "(e.g. runs/align/round-1/adapter)")
    if not (adapter_dir / CONFIG_FILE).is_file():
        raise UserError(f"{top}: no {CONFIG_FILE}; pass a LoRA adapter dir written by alignslm-train "
                        "(e.g. runs/align/round-1/adapter)")
    order = adapter_chain(adapter_dir)
    labels = [f"{top}: chained adapter {path}" for path in order[:-1]] + [top]
    configs = [read_adapter_config(path) for path in order]
    for path, config, label in zip(order, configs, labels):
        check_base(path, config, label, model)
        check_vocabulary(path, label, vocab)
    applied = []
    for path, config, label in zip(order, configs, labels):
        lm = _merge(lm, path, config, label, model)
        applied.append({"path": str(path), "weights_fingerprint": weights_fingerprint(path)})
    return lm, applied


def read_chain(adapter_dir: Path) -> list[Path]:
    """The resolved adapter dirs `adapter_dir/alignslm_adapter_chain.json` lists (none without the file)."""
    chain_file = adapter_dir / ADAPTER_CHAIN_FILE
    if not chain_file.exists():
        return []
    example = 'e.g. ["../../round-1/adapter"]'
    try:
        entries = json.loads(chain_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise UserError(f"{chain_file}: not valid JSON ({first_line(e)}); it lists the earlier rounds' adapter dirs, "
                        f"{example}")
    if not isinstance(entries, list) or not all(isinstance(entry, str) and entry.strip() for entry in entries):
        raise UserError(f"{chain_file}: not a JSON list of adapter dir paths (relative to {adapter_dir}); expected "
                        f"{example}")
    paths = []
    for entry in entries:
        try:
            path = (adapter_dir / entry).resolve()
        except (OSError, ValueError):  # a NUL byte, a symlink loop
            path = None
        if path is None or not (path / CONFIG_FILE).is_file():
            raise UserError(f"{chain_file}: lists {entry!r}, which is no adapter dir ({adapter_dir / entry}); keep the "
                            "curriculum's round dirs together as alignslm-train wrote them")
        paths.append(path)
    return paths


def adapter_chain(adapter_dir: Path) -> list[Path]:
    """The adapter dirs to merge, earliest first, ending with `adapter_dir` itself. A chain that names an adapter
    twice or itself, or that disagrees with the chains of the adapters it lists (a cycle among them, or rounds out of
    order), is a UserError."""
    chain_file = adapter_dir / ADAPTER_CHAIN_FILE
    top = adapter_dir.resolve()
    order = [*read_chain(adapter_dir), top]
    keep = "keep the round dirs as alignslm-train wrote them"
    for i, path in enumerate(order):
        if path in order[:i]:
            what = "the adapter itself (a cycle)" if path == top else f"{path} twice"
            raise UserError(f"{chain_file}: lists {what}; it names each earlier round's adapter once, {keep}")
    for i, path in enumerate(order[:-1]):
        own = read_chain(path)
        if own == order[:i]:
            continue
        later = next((p for p in own if p in order[i:]), None)
        if later is not None:
            raise UserError(f"{chain_file}: a cycle: {path} was trained on top of {later}, which this chain merges "
                            f"after it; {keep}")
        raise UserError(f"{chain_file}: merges {len(order[:i])} adapter(s) before {path}, but its own "
                        f"{ADAPTER_CHAIN_FILE} lists {[str(p) for p in own]}; {keep}")
    return order


def read_adapter_config(adapter_dir: Path) -> dict[str, Any]:
    """adapter_config.json of a LoRA adapter, with the fields merging depends on checked."""
    file = adapter_dir / CONFIG_FILE
    again = "copy the adapter dir again from its training run"
    if not file.is_file():
        raise UserError(f"{adapter_dir}: no {CONFIG_FILE}; {again}")
    config = read_json_object(file, f"{again} (a LoRA {CONFIG_FILE} as peft writes it has {', '.join(LORA_FIELDS)})",
                              LORA_FIELDS)
    if config["peft_type"] != "LORA":
        raise UserError(f"{file}: peft_type is {config['peft_type']!r}; only LoRA adapters ('LORA', what "
                        "alignslm-train writes) can be merged into the model")
    rank, alpha, targets = config["r"], config["lora_alpha"], config["target_modules"]
    if not _is_int(rank) or rank < 1:
        raise UserError(f"{file}: r is {rank!r}, not a positive integer (the LoRA rank)")
    if not (_is_int(alpha) or isinstance(alpha, float)) or not alpha > 0:
        raise UserError(f"{file}: lora_alpha is {alpha!r}, not a positive number")
    if not ((isinstance(targets, str) and targets) or (
            isinstance(targets, list) and targets and all(isinstance(t, str) and t for t in targets))):
        raise UserError(f"{file}: target_modules is {targets!r}; expected module names such as [\"q_proj\", \"v_proj\"]")
    base = config.get("base_model_name_or_path")
    if base is not None and not isinstance(base, str):
        raise UserError(f"{file}: base_model_name_or_path is {base!r}, not a path or hub id")
    return config


def check_base(adapter_dir: Path, config: dict[str, Any], label: str, model: BaseModel) -> None:
    """A UserError unless the adapter (its `config` read by read_adapter_config) was trained on `model`; only an
    adapter that records no base passes unchecked, with a warning."""
    merged = _merged_from(model.local_dir)
    if merged is not None and str(adapter_dir) in merged[1]:
        raise UserError(f"{label}: already merged into --model {model.given} (see its {MERGED_FROM_FILE}); evaluate "
                        f"{model.given} without --adapter, or pass --model {merged[0]} with the adapter")
    recorded = (config.get("base_model_name_or_path") or "").strip()
    if not recorded:
        log.warning("%s: %s names no base model (base_model_name_or_path is empty), so it cannot be checked against "
                    "--model %s; applied because its weights fit", label, CONFIG_FILE, model.given)
        return
    problem = _base_mismatch(recorded, model)
    if problem and _trained_on_these_weights(adapter_dir, model):
        return
    if problem:
        note = f" ({model.given} is {merged[0]} with adapters merged in, see its {MERGED_FROM_FILE})" if merged else ""
        raise UserError(f"{label}: {problem}{note}")


def check_vocabulary(adapter_dir: Path, label: str, vocab: UnitVocabulary) -> None:
    """A UserError when the adapter was trained with another unit vocabulary than the model is read with."""
    file = adapter_dir / VOCAB_FILE
    if not file.is_file():
        return
    trained = UnitVocabulary.load(file)
    if trained != vocab:
        raise UserError(f"{label}: trained with the units of {file} ({trained.summary()}), but the model is read as "
                        f"{vocab.summary()}; drop --unit-convention/--unit-offset/--n-units, or pass the ones it was "
                        "trained with")


def _base_mismatch(recorded: str, model: BaseModel) -> Optional[str]:
    """Why an adapter whose base is `recorded` is not for `model`, or None when it is."""
    path = Path(recorded).expanduser()
    if path.exists():
        if path.is_dir() and (path.resolve() == model.local_dir.resolve() or _same_weights(path, model.local_dir)):
            return None
        return f"trained on {recorded}, not on --model {model.given}; pass --model {recorded}"
    local = looks_like_local_path(recorded) or path.is_absolute()
    repo = hub_snapshot(path) if local else (recorded.lower(), None)
    if repo is None:
        return (f"trained on {recorded}, which is not here to compare with --model {model.given}; pass that model, "
                f"or, if {model.given} is a copy of it, set base_model_name_or_path in {CONFIG_FILE} to "
                f"{model.local_dir}")
    mine = model.hub_repo()
    if mine is not None and mine[0] == repo[0]:
        if repo[1] is None or mine[1] is None or repo[1] == mine[1]:
            return None
        return (f"trained on {repo[0]} at commit {repo[1]}, but --model {model.given} is commit {mine[1]}; pass "
                f"--revision {repo[1]}")
    copy = "" if mine else (f", or, if {model.given} is a copy of it, set base_model_name_or_path in {CONFIG_FILE} "
                            f"to {model.local_dir}")
    return f"trained on the hub model {repo[0]}, not on --model {model.given}; pass --model {repo[0]}{copy}"


def write_base_record(adapter_dir: Path, base_dir: Path) -> None:
    """Record the weights an adapter was trained on, beside it (see BASE_RECORD_FILE)."""
    record = {"base": str(base_dir), "weights_fingerprint": weights_fingerprint(base_dir)}
    (Path(adapter_dir) / BASE_RECORD_FILE).write_text(json.dumps(record, indent=2) + "\n")


def _trained_on_these_weights(adapter_dir: Path, model: BaseModel) -> bool:
    """Whether alignslm-train recorded that the adapter was trained on weights identical to `model`'s."""
    file = adapter_dir / BASE_RECORD_FILE
    try:
        recorded = json.loads(file.read_text(encoding="utf-8")).get("weights_fingerprint") if file.is_file() else None
    except (OSError, ValueError, AttributeError):
        return False  # an unreadable record proves nothing; the path check's verdict stands
    return bool(recorded) and recorded == weights_fingerprint(model.local_dir)


def _same_weights(a: Path, b: Path) -> bool:
    try:
        # An empty dir fingerprints as the hash of nothing: no weights is no evidence of the same model.
        return weights_fingerprint(a) == weights_fingerprint(b) and any(a.iterdir())
    except OSError:  # a dir that cannot be read shows nothing either
        return False


def _merged_from(model_dir: Path) -> Optional[tuple[str, set[str]]]:
    """(origin model, resolved paths of the adapters merged in) of a checkpoint `alignslm-train merge` wrote."""
    file = model_dir / MERGED_FROM_FILE
    if not file.is_file():
        return None
    try:
        record = json.loads(file.read_text(encoding="utf-8"))
        adapters = {str(Path(a["path"]).resolve()) for a in record.get("adapter") or []}
        return str(record.get("local_dir") or record.get("model")), adapters
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as e:
        raise UserError(f"{file}: not the record alignslm-train merge writes ({first_line(e)}); merge again")


def _merge(lm: torch.nn.Module, adapter_dir: Path, config: dict[str, Any], label: str,
           model: BaseModel) -> torch.nn.Module:
    from peft import LoraConfig, PeftModel, set_peft_model_state_dict

    weights = _adapter_weights(adapter_dir, label)
    try:
        lora = LoraConfig.from_pretrained(str(adapter_dir))
    except (TypeError, ValueError, KeyError) as e:
        raise UserError(f"{adapter_dir / CONFIG_FILE}: not a usable LoRA config ({first_line(e)})")
    targets = config["target_modules"]
    try:
        adapted = PeftModel(lm, lora)
    except ValueError as e:  # peft: no module of the model is among target_modules
        layers = sorted({name.rsplit(".", 1)[-1] for name, m in lm.named_modules() if isinstance(m, torch.nn.Linear)})
        raise UserError(f"{label}: target_modules {targets} name no layer of --model {model.given} "
                        f"({first_line(e, 120)}); its linear layers are {', '.join(layers)}: the adapter is for "
                        "another architecture")
    try:
        result = set_peft_model_state_dict(adapted, weights)
    except RuntimeError as e:  # weights of other shapes: trained on another base
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        reason = next((line for line in lines if line.startswith("size mismatch")), first_line(e))[:160]
        if config.get("base_model_name_or_path"):
            raise UserError(f"{label}: does not fit --model {model.given} ({reason}), though it records that model as "
                            "its base; was the model changed after the adapter was trained?")
        raise UserError(f"{label}: does not fit --model {model.given} ({reason}); its {CONFIG_FILE} does not say "
                        "which base it was trained on: pass that model as --model")
    unexpected = sorted(result.unexpected_keys)
    missing = sorted(key for key in result.missing_keys if "lora_" in key)
    if unexpected:
        raise UserError(f"{label}: {len(unexpected)} tensor(s) of its weights adapt no layer its target_modules "
                        f"{targets} select (e.g. {unexpected[0]}); its weights and {CONFIG_FILE} are from different "
                        "adapters")
    if missing:
        raise UserError(f"{label}: its weights lack {len(missing)} LoRA tensor(s) of target_modules {targets} (e.g. "
                        f"{missing[0]}); its weights and {CONFIG_FILE} are from different adapters")
    return adapted.merge_and_unload()


def _adapter_weights(adapter_dir: Path, label: str) -> dict[str, torch.Tensor]:
    safetensors_file, pickle_file = adapter_dir / "adapter_model.safetensors", adapter_dir / "adapter_model.bin"
    if safetensors_file.is_file():
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(safetensors_file))
        except (SafetensorError, OSError) as e:  # a damaged file
            raise UserError(f"{safetensors_file}: not a readable safetensors file ({first_line(e)}); copy the adapter "
                            "dir again from its training run")
    if pickle_file.is_file():
        return load_tensors(pickle_file, str(pickle_file))
    raise UserError(f"{label}: no adapter weights (adapter_model.safetensors or adapter_model.bin) next to "
                    f"{CONFIG_FILE}; copy the whole adapter dir from its training run")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
