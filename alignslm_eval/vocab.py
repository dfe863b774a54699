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

from alignslm_eval.errors import UserError

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
        if units.size and (units.min() < 0 or units.max() >= self.n_units):
            bad = int(units.max() if units.max() >= self.n_units else units.min())
            raise UserError(
                f"{source}: unit id {bad} is outside the model's {self.n_units}-unit vocabulary; "
                "use the speech tokenizer the model was trained with"
            )
        parts = []
        if add_bos:
            parts.append([self._special("bos_id")])
        parts.append(units + self.offset)
        if add_eos:
            parts.append([self._special("eos_id")])
        return np.concatenate([np.asarray(p, dtype=np.int64) for p in parts])

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
        try:
            data = json.loads(Path(path).read_text())
            return cls(**data)
        except (OSError, ValueError, TypeError) as e:
            raise UserError(f"{path}: not a unit vocabulary file ({e}); fields: {list(cls.__dataclass_fields__)}")
