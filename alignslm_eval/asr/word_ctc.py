"""A closed-vocabulary word recogniser fitted on local speech: CTC over whole words, no pretrained weights.

It exists for synthetic worlds such as the story demo (`alignslm_eval.demo.story_world`), whose speech uses a known
lexicon and whose vocoded continuations no downloadable-free recogniser can read (PocketSphinx's WER on the demo's
Griffin-Lim speech is about 0.9). Fitted on that world's speech, raw and vocoded, it reads both; it knows no other
word, so it is not a general English recogniser and its WERs say nothing about one.

Features: a 64-band log-mel spectrogram of 16 kHz audio (512-sample window, 320-sample hop: 50 Hz), each band
normalised to zero mean and unit variance over the utterance. Model: two 1-D convolutions (the second with stride 2,
so 25 Hz), four residual convolutions dilated 1, 2, 4 and 8 (about 1.3 s of context either side), and a 1x1
convolution over the words plus the CTC blank; convolutions, not a recurrent net, because they train several times
faster on a CPU (measured on the story world: 16 epochs in about 80 s on 2 cores). Decoding is greedy
(best class per frame, repeats merged, blanks removed), one utterance at a time, so a transcript does not depend on
what else is in the batch.

`WordCTC.fit(utterances, ...)` trains it; `save(DIR)` writes `word_ctc.json` (vocabulary, features, shape and the
training record) and `word_ctc.pt`; `--asr word_ctc:DIR` loads it.
"""

from __future__ import annotations

import json
import math
import re
import time
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from alignslm_eval.api.asr import ASR
from alignslm_eval.api.registry import register_asr
from alignslm_eval.io.errors import UserError
from alignslm_eval.io.threads import TRAINING_THREADS, torch_threads

CONFIG_FILE = "word_ctc.json"
WEIGHTS_FILE = "word_ctc.pt"
_FORMAT = "alignslm-word-ctc"
FEATURES: dict[str, Any] = {"sample_rate": 16000, "n_fft": 512, "hop_length": 320, "n_mels": 64}
SHAPE: dict[str, int] = {"channels": 192, "layers": 4}


def words_of(text: str) -> list[str]:
    """The recogniser's view of a transcript: lower-case runs of letters and apostrophes."""
    return re.findall(r"[a-z']+", text.lower())


def _network(n_words: int, shape: dict[str, int]):
    import torch.nn as nn

    class Residual(nn.Module):
        def __init__(self, channels: int, dilation: int) -> None:
            super().__init__()
            self.conv = nn.Conv1d(channels, channels, 5, padding=2 * dilation, dilation=dilation)

        def forward(self, x):
            return x + self.conv(x).relu()

    class Network(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            c = shape["channels"]
            self.front = nn.Sequential(nn.Conv1d(FEATURES["n_mels"], c, 5, padding=2), nn.ReLU(),
                                       nn.Conv1d(c, c, 5, padding=2, stride=2), nn.ReLU())
            self.body = nn.Sequential(*[Residual(c, 2 ** i) for i in range(shape["layers"])])
            self.out = nn.Conv1d(c, n_words + 1, 1)  # class 0 is the CTC blank

        def forward(self, x):  # [batch, frames, mels] -> [batch, frames / 2, words + 1] log-probabilities
            return self.out(self.body(self.front(x.transpose(1, 2)))).transpose(1, 2).log_softmax(-1)

    return Network()


def _out_lengths(frames):
    return (frames - 1) // 2 + 1  # the stride-2 convolution (kernel 5, padding 2)


class _Features:
    def __init__(self) -> None:
        import torchaudio

        self.mel = torchaudio.transforms.MelSpectrogram(FEATURES["sample_rate"], n_fft=FEATURES["n_fft"],
                                                        hop_length=FEATURES["hop_length"], n_mels=FEATURES["n_mels"])

    def __call__(self, wav: np.ndarray):
        import torch

        wav = np.asarray(wav, dtype=np.float32)
        if wav.ndim != 1:
            raise ValueError(f"expected a mono waveform of shape [samples], got {wav.shape}")
        with torch.no_grad():
            x = torch.log(self.mel(torch.from_numpy(np.ascontiguousarray(wav))) + 1e-6).T  # [frames, mels]
            return (x - x.mean(0)) / (x.std(0, unbiased=False) + 1e-5)


@register_asr("word_ctc")
class WordCTC(ASR):
    """Greedy CTC decoding over a fixed word list (see the module docstring)."""

    def __init__(self, network: Any, vocabulary: list[str], record: dict[str, Any], source: Optional[Path] = None):
        self.network = network.eval()
        self.vocabulary = list(vocabulary)
        self.record = dict(record)
        self.source = source
        self.features = _Features()

    @classmethod
    @torch_threads(TRAINING_THREADS)
    def fit(cls, utterances: Sequence[tuple[np.ndarray, str]], epochs: int, seed: int = 0, batch_size: int = 16,
            learning_rate: float = 3e-3, progress: bool = True) -> "WordCTC":
        """Train on (16 kHz waveform, transcript) pairs; the vocabulary is every word of the transcripts."""
        import torch
        import torch.nn as nn
        from torch.nn.utils.rnn import pad_sequence
        from tqdm.auto import tqdm

        if not utterances:
            raise UserError("word_ctc asr: no utterances to fit on")
        started = time.time()
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        vocabulary = sorted({w for _, text in utterances for w in words_of(text)})
        index = {w: i + 1 for i, w in enumerate(vocabulary)}
        features = _Features()
        data = [(features(wav), torch.tensor([index[w] for w in words_of(text)])) for wav, text in utterances]
        network = _network(len(vocabulary), SHAPE)
        optimizer = torch.optim.AdamW(network.parameters(), lr=learning_rate)
        steps = epochs * math.ceil(len(data) / batch_size)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, learning_rate, total_steps=steps, pct_start=0.15)
        ctc = nn.CTCLoss(zero_infinity=True)
        losses: list[float] = []
        network.train()
        with tqdm(total=steps, desc="fitting word recogniser", unit="step", disable=not progress) as bar:
            for _ in range(epochs):
                order = rng.permutation(len(data))
                for start in range(0, len(order), batch_size):
                    batch = [data[i] for i in order[start : start + batch_size]]
                    x = pad_sequence([b[0] for b in batch], batch_first=True)
                    lengths = torch.tensor([len(b[0]) for b in batch])
                    targets = torch.cat([b[1] for b in batch])
                    target_lengths = torch.tensor([len(b[1]) for b in batch])
                    log_probs = network(x).transpose(0, 1)
                    loss = ctc(log_probs, targets, _out_lengths(lengths), target_lengths)
                    optimizer.zero_grad()
                    loss.backward()
                    nn.utils.clip_grad_norm_(network.parameters(), 1.0)
                    optimizer.step()
                    schedule.step()
                    losses.append(loss.item())
                    bar.update()
        record = {"utterances": len(data), "epochs": epochs, "steps": steps, "batch_size": batch_size,
                  "learning_rate": learning_rate, "seed": seed, "shape": SHAPE,
                  "loss_first_epoch": float(np.mean(losses[: steps // epochs])),
                  "loss_last_epoch": float(np.mean(losses[-(steps // epochs):])),
                  "seconds": round(time.time() - started, 1)}
        return cls(network, vocabulary, record)

    def save(self, folder: Path) -> None:
        import torch

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        torch.save(self.network.state_dict(), folder / WEIGHTS_FILE)
        config = {"format": _FORMAT, "vocabulary": self.vocabulary, "features": FEATURES, "shape": SHAPE,
                  "training": self.record}
        (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")

    @classmethod
    def load(cls, folder: Path) -> "WordCTC":
        import torch

        folder = Path(folder)
        config_path = folder / CONFIG_FILE
        if not config_path.is_file() or not (folder / WEIGHTS_FILE).is_file():
            raise UserError(f"word_ctc asr: {folder} holds no {CONFIG_FILE} and {WEIGHTS_FILE}; give the folder "
                            "WordCTC.save wrote (the story demo's is <cache>/demo/stories-*/asr)")
        try:
            config = json.loads(config_path.read_text())
            if config.get("format") != _FORMAT or config.get("features") != FEATURES:
                raise ValueError(f"format {config.get('format')!r} with features {config.get('features')}")
            network = _network(len(config["vocabulary"]), config["shape"])
            network.load_state_dict(torch.load(folder / WEIGHTS_FILE, map_location="cpu", weights_only=True))
        except (ValueError, KeyError, RuntimeError) as e:
            raise UserError(f"word_ctc asr: {folder}: not a recogniser this version reads ({e}); refit it")
        return cls(network, config["vocabulary"], config.get("training", {}), source=folder)

    @classmethod
    def from_args(cls, **kwargs: str) -> "WordCTC":
        """`word_ctc:DIR` (or `--asr word_ctc --asr-args path=DIR`)."""
        unknown = sorted(set(kwargs) - {"path"})
        if unknown or not kwargs.get("path"):
            raise UserError("word_ctc asr: give the recogniser's folder as word_ctc:DIR"
                            + (f" (unknown argument(s) {', '.join(unknown)})" if unknown else ""))
        return cls.load(Path(kwargs["path"]))

    def transcribe(self, wavs: Sequence[np.ndarray]) -> list[str]:
        import torch

        texts = []
        with torch.no_grad():
            for wav in wavs:
                if np.asarray(wav).size <= FEATURES["n_fft"] // 2:  # too short for one analysis window: no words
                    texts.append("")
                    continue
                x = self.features(wav)
                best = self.network(x[None])[0].argmax(-1).tolist()
                words, previous = [], 0
                for c in best:
                    if c != previous and c != 0:
                        words.append(self.vocabulary[c - 1])
                    previous = c
                texts.append(" ".join(words))
        return texts

    def describe(self) -> dict[str, Any]:
        from alignslm_eval.io.audio import file_sha256

        weights = self.source / WEIGHTS_FILE if self.source else None
        return {"kind": "word_ctc", "path": str(self.source) if self.source else None,
                "weights_sha256": file_sha256(weights) if weights else None, "vocabulary_size": len(self.vocabulary),
                "features": FEATURES, "shape": SHAPE, "decoding": "greedy CTC, one utterance at a time",
                "sample_rate": self.sample_rate}
