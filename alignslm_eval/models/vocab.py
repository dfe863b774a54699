"""How unit ids map to a language model's token ids: the convention is explicit, stored and recorded.

- TWIST (Hassid et al. 2023): unit u is token u + offset, where `offset` is read from the model config; BOS/EOS/PAD
  are the base model's special tokens.
- Slam / slamkit (Maimon et al. 2025): pad = 0, `<S>` = 1 serves as BOS and EOS, unit u is token u + 2.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from alignslm_eval.io.errors import UserError

VOCAB_FILE = "alignslm_units.json"


@dataclass(frozen=True)
class UnitVocabulary:
    convention: str
    n_units: int
    offset: int
    bos_id: Optional[int]
    eos_id: Optional[int]
    pad_id: Optional[int]

    @classmethod
    def slam(cls, n_units: int = 500) -> "UnitVocabulary":
        return cls("slam", n_units, offset=2, bos_id=1, eos_id=1, pad_id=0)

    @classmethod
    def twist(cls, n_units: int, offset: int, bos_id: Optional[int], eos_id: Optional[int],
              pad_id: Optional[int]) -> "UnitVocabulary":
        return cls("twist", n_units, offset, bos_id, eos_id, pad_id)

    def encode(self, units: np.ndarray, add_bos: bool, add_eos: bool, source: str = "sequence") -> np.ndarray:
        """Token ids for a unit sequence; a unit outside the inventory is a user error naming its source."""
        units = np.asarray(units, dtype=np.int64)
        self.check_units(units, source)
        parts = []
        if add_bos:
            parts.append([self._special("bos_id")])
        parts.append(units + self.offset)
        if add_eos:
            parts.append([self._special("eos_id")])
        return np.concatenate([np.asarray(p, dtype=np.int64) for p in parts])

    def check_units(self, units: np.ndarray, source: str) -> None:
        """A UserError naming `source` when a unit id lies outside this vocabulary's inventory."""
        units = np.asarray(units, dtype=np.int64)
        if units.size and (units.min() < 0 or units.max() >= self.n_units):
            bad = int(units.max() if units.max() >= self.n_units else units.min())
            raise UserError(
                f"{source}: unit id {bad} is outside the model's {self.n_units}-unit vocabulary; "
                "use the speech tokenizer the model was trained with"
            )

    def misfit(self, vocab_size: int, reserved: Optional[dict[str, int]] = None) -> Optional[str]:
        """Why this vocabulary cannot serve a model with `vocab_size` token embeddings, or None when it can: every unit
        and special token needs an embedding row, and no unit may share its token id with BOS, EOS or PAD, nor with
        the `reserved` ids (e.g. the model config's special tokens, by name; ids past the embeddings are ignored)."""
        end = self.offset + self.n_units
        if self.offset < 0:
            return f"unit offset {self.offset} is negative; unit 0 needs a token id from 0 to {vocab_size - 1}"
        if self.offset >= vocab_size:
            return f"unit 0 would be token id {self.offset}, past the model's {vocab_size} token ids (0..{vocab_size - 1})"
        if self.n_units < 1:
            return f"{self.n_units} units: at least 1 is needed"
        if end > vocab_size:
            return (f"{self.n_units} units at offset {self.offset} need token ids up to {end - 1}, past the model's "
                    f"{vocab_size} token ids (0..{vocab_size - 1})")
        for role, token_id in self.specials().items():
            if not 0 <= token_id < vocab_size:
                return f"{role} {token_id} is outside the model's {vocab_size} token ids (0..{vocab_size - 1})"
        own = self.specials()
        # a reserved id that is also one of this vocabulary's own specials is named once, by its role here
        taken = [*own.items(), *((name, i) for name, i in (reserved or {}).items() if i not in own.values())]
        clashes: dict[int, list[str]] = {}
        for role, token_id in taken:
            if self.offset <= token_id < end:
                clashes.setdefault(token_id, []).append(role)
        if clashes:
            token_id, roles = min(clashes.items())
            return (f"units 0..{self.n_units - 1} would be token ids {self.offset}..{end - 1}, so unit "
                    f"{token_id - self.offset} would be the {'/'.join(roles)} token {token_id}")
        return None

    def summary(self) -> str:
        """One phrase for messages, e.g. "slam: 64 units, unit 0 = token 2"."""
        return f"{self.convention}: {self.n_units} units, unit 0 = token {self.offset}"

    def specials(self) -> dict[str, int]:
        """The special token ids that are set, by field name."""
        return {field: getattr(self, field) for field in ("bos_id", "eos_id", "pad_id") if getattr(self, field) is not None}

    def check_tokenizer(self, tokenizer_units: int, tokenizer: str, n_units_flag: bool = True) -> None:
        """A UserError unless the speech tokenizer (`tokenizer` names it) makes exactly the units this vocabulary
        maps: with more, some units have no token; with fewer, the model samples units no vocoder knows. The fix
        offered is `--n-units` where the command has it (`n_units_flag`), else the model dir's vocabulary file."""
        if tokenizer_units != self.n_units:
            fix = (f"--n-units {tokenizer_units} (with --unit-convention when the model dir has {VOCAB_FILE})"
                   if n_units_flag else f"an {VOCAB_FILE} with \"n_units\": {tokenizer_units} in the model dir (see "
                   "docs/scoring-protocol.md, Models)")
            raise UserError(
                f"{tokenizer}: makes {tokenizer_units} units, but the model's unit vocabulary has {self.n_units} "
                f"({self.summary()}); give the tokenizer the model was trained with, or {fix}"
            )

    def check_vocoder(self, vocoder_units: int, vocoder: str, tokenizer_units: int, tokenizer: str,
                      n_units_flag: bool = True) -> None:
        """A UserError when the vocoder (`vocoder` names it) has fewer unit embeddings than this vocabulary maps: the
        model would sample units it cannot speak. The message names all three counts (model, tokenizer centroids,
        vocoder rows) and the flag that sets the model's."""
        if vocoder_units < self.n_units:
            fix = "--n-units N" if n_units_flag else f"\"n_units\" in the model dir's {VOCAB_FILE}"
            raise UserError(
                f"{vocoder}: unit counts disagree: the model's vocabulary has {self.n_units} units ({self.summary()}), "
                f"the tokenizer {tokenizer_units} centroids ({tokenizer}), the vocoder {vocoder_units} unit embeddings; "
                f"give the vocoder made for this tokenizer, or set the model's count with {fix}")

    def decode(self, token_ids: np.ndarray) -> np.ndarray:
        """Unit ids of the unit tokens in `token_ids`; special tokens are dropped."""
        ids = np.asarray(token_ids, dtype=np.int64) - self.offset
        return ids[(ids >= 0) & (ids < self.n_units)]

    def _special(self, field: str) -> int:
        value = getattr(self, field)
        if value is None:
            raise UserError(f"the {self.convention} unit vocabulary has no {field}; set it in {VOCAB_FILE}")
        return value

    def save(self, model_dir: Path) -> None:
        (Path(model_dir) / VOCAB_FILE).write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> "UnitVocabulary":
        fields = list(cls.__dataclass_fields__)
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            vocab = cls(**data)
        except (OSError, ValueError, TypeError) as e:
            raise UserError(f"{path}: not a unit vocabulary file ({' '.join(str(e).split())}); fields: {fields}")
        for field in fields[1:]:
            value = getattr(vocab, field)
            # bool is an int subclass, and a "4" would only fail much later as a token id
            if not (isinstance(value, int) and not isinstance(value, bool)) and not (field.endswith("_id") and value is None):
                raise UserError(f"{path}: {field} is {value!r}, not an integer{' or null' if field.endswith('_id') else ''}")
        if vocab.convention not in ("twist", "slam"):
            raise UserError(f"{path}: convention is {vocab.convention!r}, not 'twist' or 'slam'")
        return vocab
