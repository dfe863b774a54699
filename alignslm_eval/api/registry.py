"""Name -> implementation registries, filled by decorators and by other packages' entry points.

Built-in implementations live in modules that are imported only when a registry is first asked for a name, so
start-up stays fast (`alignslm-eval ls` does not import torch models it will not use). Another package adds its own
by declaring an entry point in the registry's group whose value is a module to import, e.g.

    [project.entry-points."alignslm.models"]
    mylm = "my_package.my_backend"
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Callable, Generic, TypeVar

from alignslm_eval.io.errors import UserError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str, group: str, builtin_modules: tuple[str, ...]):
        self.kind = kind
        self.group = group
        self._builtin_modules = builtin_modules
        self._items: dict[str, T] = {}
        self._loaded = False

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            if name in self._items and self._items[name] is not obj:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = obj
            return obj

        return decorator

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for module in self._builtin_modules:
            importlib.import_module(module)
        for ep in entry_points(group=self.group):
            try:
                importlib.import_module(ep.value.split(":")[0])
            except ImportError as e:
                raise UserError(f"plugin {ep.name!r} (entry point group {self.group}) failed to import: {e}")

    def get(self, name: str) -> T:
        self._load()
        if name not in self._items:
            known = ", ".join(sorted(self._items)) or "none"
            raise UserError(f"unknown {self.kind} {name!r}; registered: {known}")
        return self._items[name]

    def names(self) -> list[str]:
        self._load()
        return sorted(self._items)


MODELS: Registry = Registry("model back-end", "alignslm.models",
                            ("alignslm_eval.models.hf_unit_lm", "alignslm_eval.models.vllm_unit_lm"))
TOKENIZERS: Registry = Registry(
    "speech tokenizer",
    "alignslm.tokenizers",
    ("alignslm_eval.tokenizers.hubert", "alignslm_eval.tokenizers.offline"),
)
TASK_KINDS: Registry = Registry(
    "task kind",
    "alignslm.task_kinds",
    ("alignslm_tasks.zerospeech", "alignslm_tasks.choice", "alignslm_tasks.continuation"),
)
SCORERS: Registry = Registry(
    "scorer",
    "alignslm.scorers",
    (
        "alignslm_eval.scoring.choice",
        "alignslm_eval.scoring.auto_bleu",
        "alignslm_eval.scoring.genppl",
        "alignslm_eval.scoring.signal_quality",
        "alignslm_eval.scoring.judge",
        "alignslm_eval.scoring.mos",
    ),
)

VOCODERS: Registry = Registry(
    "vocoder", "alignslm.vocoders", ("alignslm_eval.vocoders.code_hifigan", "alignslm_eval.vocoders.griffin_lim")
)
ASRS: Registry = Registry("speech recogniser", "alignslm.asr", ("alignslm_eval.asr.whisper", "alignslm_eval.asr.sphinx", "alignslm_eval.asr.word_ctc"))

register_model = MODELS.register
register_tokenizer = TOKENIZERS.register
register_task_kind = TASK_KINDS.register
register_scorer = SCORERS.register
register_vocoder = VOCODERS.register
register_asr = ASRS.register
