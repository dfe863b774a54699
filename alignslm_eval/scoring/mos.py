"""Learned MOS predictors of generated speech, each loading its published weights from `--mos-checkpoint FILE`
(never from the network). Both score one waveform at a time, so a score never depends on what else is in the run.

* `utmos`: UTMOS strong learner (Saeki et al. 2022, "UTMOS: UTokyo-SaruLab System for VoiceMOS Challenge 2022",
  Interspeech 2022), reference-free; the authors' Lightning checkpoint or SpeechMOS's repackaging (`models.utmos`).
* `squim_mos`: TorchAudio-SQUIM's subjective model (Kumar et al. 2023, "TorchAudio-Squim: Reference-less Speech
  Quality and Intelligibility measures in TorchAudio", ICASSP 2023), which rates a recording against a
  *non-matching* clean reference; the prompt's own audio (the first seconds of a real utterance) is that reference.
  Its weights are `squim_subjective_bvcc_daps.pth`, the state dict torchaudio's SQUIM_SUBJECTIVE bundle downloads.
"""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from alignslm_eval.api.registry import register_scorer
from alignslm_eval.api.results import MetricInfo
from alignslm_eval.api.scorer import Continuation, ContinuationScorer, Score
from alignslm_eval.io.audio import file_sha256, load_audio
from alignslm_eval.io.errors import UserError, first_line

if TYPE_CHECKING:  # torch is imported where it is used, so reading the scorer registry does not load it
    import torch

MIN_SECONDS = 0.5  # shorter continuations are too short to rate


class LearnedMOS(ContinuationScorer):
    """A MOS predictor with published weights at --mos-checkpoint, rating one continuation's audio at a time."""

    # Run without range clipping, so a mean may leave 1-5: any finite value is one.
    metric_info = MetricInfo("a MOS estimate", "higher")
    needs = ("wav",)
    required_options = ("mos_checkpoint",)
    #: the file(s) to name when --mos-checkpoint is missing
    weights_hint = ""

    def __init__(self, checkpoint: str, device: str = "cpu"):
        self.path = Path(checkpoint)
        self.device = device

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> "LearnedMOS":
        if not options.get("mos_checkpoint"):
            raise UserError(f"the {cls.metric} scorer needs its weights: pass --mos-checkpoint {cls.weights_hint}")
        return cls(str(options["mos_checkpoint"]), device=options.get("device", "cpu"))

    @abstractmethod
    def rate(self, wav: torch.Tensor, item: Continuation) -> Score:
        """Score one continuation from its waveform [1, T] (16 kHz, on the scorer's device)."""

    def score(self, items: Sequence[Continuation]) -> list[Score]:
        import torch

        from alignslm_eval.evaluate.continuation_store import read_generated

        out = []
        with torch.inference_mode():
            for item in items:
                wav = read_generated(item.wav) if item.wav else None
                if wav is None:
                    out.append(Score(None, "no audio"))
                elif len(wav) < MIN_SECONDS * 16000:
                    out.append(Score(None, f"shorter than {MIN_SECONDS} s"))
                else:
                    out.append(self.rate(torch.from_numpy(np.ascontiguousarray(wav))[None].to(self.device), item))
        return out


@register_scorer("utmos")
class UTMOSScorer(LearnedMOS):
    metric = "utmos"
    weights_hint = "epoch=3-step=7459.ckpt (the authors' UTMOS checkpoint) or SpeechMOS's utmos22_strong_step7459_v1.pt"

    def __init__(self, checkpoint: str, device: str = "cpu"):
        from alignslm_eval.models.utmos import load_utmos

        super().__init__(checkpoint, device)
        model, self.format = load_utmos(self.path)
        self.model = model.to(device)
        self.sha256 = file_sha256(self.path)

    def rate(self, wav: torch.Tensor, item: Continuation) -> Score:
        return Score(float(self.model(wav)[0]), "ok")

    def describe(self) -> dict[str, Any]:
        from alignslm_eval.models.utmos import DOMAIN_ID, JUDGE_ID

        return {"scorer": "utmos", "checkpoint": str(self.path), "sha256": self.sha256, "format": self.format,
                "domain_id": DOMAIN_ID, "judge_id": JUDGE_ID, "range_clipping": False,
                "citation": "Saeki et al. 2022, UTMOS, Interspeech (arXiv:2204.02152)"}


@register_scorer("squim_mos")
class SquimMOS(LearnedMOS):
    metric = "squim_mos"
    former_metrics = ("mos",)  # its name before UTMOS was added
    weights_hint = "squim_subjective_bvcc_daps.pth"

    def __init__(self, checkpoint: str, device: str = "cpu"):
        from torchaudio.models import squim_subjective_base

        from alignslm_eval.models.torch_checkpoint import load_checkpoint

        super().__init__(checkpoint, device)
        path = self.path
        state = load_checkpoint(path, "--mos-checkpoint")
        self.sha256 = file_sha256(path)
        if isinstance(state, Mapping) and ("state_dict" in state or "judge_emb" in state):
            raise UserError(f"--mos-checkpoint {path}: this is a UTMOS checkpoint, not SQUIM; score it with the utmos "
                            "scorer (the audio_quality task)")
        self.model = squim_subjective_base()
        try:
            self.model.load_state_dict(state)
        except (RuntimeError, TypeError) as e:
            raise UserError(f"--mos-checkpoint {path}: does not match the SQUIM subjective model "
                            f"({first_line(e, 160)})")
        self.model.eval().to(device)

    def rate(self, wav: torch.Tensor, item: Continuation) -> Score:
        import torch

        if not item.prompt_audio:
            return Score(None, "no prompt audio")
        reference = load_audio(Path(item.prompt_audio), 16000)
        if item.prompt_cut_s:
            reference = reference[: int(item.prompt_cut_s * 16000)]
        return Score(float(self.model(wav, torch.from_numpy(np.ascontiguousarray(reference))[None].to(self.device))[0]),
                     "ok")

    def describe(self) -> dict[str, Any]:
        return {"scorer": "squim_mos", "checkpoint": str(self.path), "sha256": self.sha256,
                "reference": "prompt audio", "citation": "Kumar et al. 2023, TorchAudio-Squim, ICASSP"}
