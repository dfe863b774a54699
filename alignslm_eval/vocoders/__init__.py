"""Built-in vocoders: unit HiFi-GAN with a duration predictor (`code_hifigan`, TWIST's) and a Griffin-Lim inverter of
the offline log-mel tokenizer's centroids (`griffin_lim`), so unit sequences can be turned back into speech."""

from __future__ import annotations

from typing import Optional

import numpy as np

from alignslm_eval.io.errors import UserError


def check_units(
    units: np.ndarray, durations: Optional[np.ndarray], n_units: int
) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """int64 copies of a unit sequence (ids 0 .. n_units - 1) and its optional non-negative frame durations."""
    units = np.asarray(units)
    if units.ndim != 1 or (units.size and not np.issubdtype(units.dtype, np.integer)):
        raise ValueError(f"units must be a 1-D integer array, got dtype {units.dtype} and shape {units.shape}")
    units = units.astype(np.int64)
    if units.size and (units.min() < 0 or units.max() >= n_units):
        bad = int(units[(units < 0) | (units >= n_units)][0])
        raise UserError(
            f"unit id {bad} is outside the vocoder's inventory 0..{n_units - 1}; the units come from another "
            "tokenizer than the one the vocoder was made for"
        )
    if durations is None:
        return units, None
    durations = np.asarray(durations)
    if durations.shape != units.shape or (durations.size and not np.issubdtype(durations.dtype, np.integer)):
        raise ValueError(f"durations must be integers shaped like units {units.shape}, got {durations.shape}")
    durations = durations.astype(np.int64)
    if durations.size and durations.min() < 0:
        raise ValueError("durations must be non-negative frame counts")
    return units, durations
