"""A learned MOS predictor: TorchAudio-SQUIM's subjective model (Kumar et al. 2023, "TorchAudio-Squim:
Reference-less Speech Quality and Intelligibility measures in TorchAudio", ICASSP 2023).

It predicts a 1-5 MOS for a recording given a *non-matching* clean reference; the prompt's own audio (the first
seconds of a real utterance) serves as that reference. The architecture is torchaudio's; the published weights
(`squim_subjective_bvcc_daps.pth`, the state dict torchaudio's SQUIM_SUBJECTIVE bundle downloads) load from a
local path with `--mos-checkpoint FILE`, never from the network. This is not UTMOS: UTMOS's own checkpoint format is
not supported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from alignslm_eval.api.registry import register_scorer
from alignslm_eval.api.scorer import Continuation, ContinuationScorer, Score
from alignslm_eval.audio import file_sha256, load_audio
from alignslm_eval.errors import UserError

MIN_SECONDS = 0.5  # shorter continuations are too short to rate


@register_scorer("squim_mos")
class SquimMOS(ContinuationScorer):
    metric = "mos"
    direction = "higher"
    needs = ("wav",)
    required_options = ("mos_checkpoint",)

    def __init__(self, checkpoint: str, device: str = "cpu"):
        from torchaudio.models import squim_subjective_base

        path = Path(checkpoint)
        if not path.is_file():
            raise UserError(f"--mos-checkpoint {path}: file not found; download squim_subjective_bvcc_daps.pth "
                            "where there is network and pass its path")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # torch raises many types for a file that is not a safe state dict
            raise UserError(f"--mos-checkpoint {path}: not a torch state dict loadable without unpickling code "
                            f"({type(e).__name__})")
        self.model = squim_subjective_base()
        try:
            self.model.load_state_dict(state)
        except (RuntimeError, TypeError) as e:
            raise UserError(f"--mos-checkpoint {path}: does not match the SQUIM subjective model "
                            f"({str(e).splitlines()[0][:160]})")
        self.model.eval().to(device)
        self.device = device
        self.path = path
        self.sha256 = file_sha256(path)

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> "SquimMOS":
        if not options.get("mos_checkpoint"):
            raise UserError("the squim_mos scorer needs its weights: pass --mos-checkpoint squim_subjective_bvcc_daps.pth")
        return cls(options["mos_checkpoint"], device=options.get("device", "cpu"))

    @torch.inference_mode()
    def score(self, items: Sequence[Continuation]) -> list[Score]:
        from alignslm_eval.continuation import read_generated

        out = []
        for item in items:
            if not item.wav or not item.prompt_audio:
                out.append(Score(None, "no audio"))
                continue
            wav = read_generated(item.wav)
            if len(wav) < MIN_SECONDS * 16000:
                out.append(Score(None, f"shorter than {MIN_SECONDS} s"))
                continue
            reference = load_audio(Path(item.prompt_audio), 16000)
            if item.prompt_cut_s:
                reference = reference[: int(item.prompt_cut_s * 16000)]
            value = self.model(torch.from_numpy(np.ascontiguousarray(wav))[None].to(self.device),
                               torch.from_numpy(np.ascontiguousarray(reference))[None].to(self.device))
            out.append(Score(float(value[0]), "ok"))
        return out

    def describe(self) -> dict[str, Any]:
        return {"scorer": "squim_mos", "checkpoint": str(self.path), "sha256": self.sha256,
                "reference": "prompt audio", "citation": "Kumar et al. 2023, TorchAudio-Squim, ICASSP"}
