"""Vocoder speed on 2 s of units: Griffin-Lim (offline tokenizer) and a full-size TWIST-shaped unit HiFi-GAN.

Run with `python -m pytest tests/benchmarks --benchmark-enable`; seconds per call / 2 is the real-time factor on
this machine. Under the default (disabled) mode each runs once and the output length is checked.
"""

import numpy as np
import pytest
import torch

from alignslm_eval.tokenizers.offline import OfflineTokenizer
from alignslm_eval.vocoders.code_hifigan import CodeGenerator, CodeHiFiGANVocoder
from alignslm_eval.vocoders.griffin_lim import GriffinLimVocoder
from tests.vocoders.test_code_hifigan import CONFIG

FRAMES = 50  # 2 s at 25 Hz
HOP = 640


def test_griffin_lim_2s(benchmark, shared_data):
    tokenizer = OfflineTokenizer.fit([shared_data / "audio" / "ljspeech_LJ002-0020.wav"], n_units=16, seed=0)
    vocoder = GriffinLimVocoder.from_tokenizer(tokenizer)
    units = np.random.default_rng(0).integers(0, 16, FRAMES)
    wav = benchmark(vocoder.synthesize, units, np.ones(FRAMES, dtype=np.int64))
    assert wav.shape == (FRAMES * HOP,)


def test_code_hifigan_full_size_2s(benchmark):
    # TWIST's channel sizes (512 initial channels, 128-dim embeddings), random weights: speed only.
    cfg = {**CONFIG, "upsample_initial_channel": 512, "embedding_dim": 128, "model_in_dim": 128}
    cfg["dur_predictor_params"] = {**CONFIG["dur_predictor_params"], "encoder_embed_dim": 128}
    cfg["dur_predictor_params"]["var_pred_hidden_dim"] = 128
    torch.manual_seed(0)
    vocoder = CodeHiFiGANVocoder(CodeGenerator(cfg).eval(), cfg, {"checkpoint": None})
    units = np.random.default_rng(0).integers(0, 500, FRAMES)
    wav = benchmark(vocoder.synthesize, units, np.ones(FRAMES, dtype=np.int64))
    assert wav.shape == (FRAMES * HOP,)
