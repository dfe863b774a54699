"""The dataset card of a build folder: `dataset_card.json` (one entry per built benchmark, with sources and their
sha256, TTS engine and version, voices, seed, options and counts) and `DATASET_CARD.md`, its rendering. Several
builds into one folder share the card; each replaces only its own entry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from alignslm_eval import __version__
from alignslm_eval.builders.tts import EspeakTTS, Voice
from alignslm_eval.builders.wav import SAMPLE_RATE
from alignslm_eval.io.audio import file_sha256
from alignslm_eval.io.errors import UserError
from alignslm_eval.io.json_file import read_json_object

BUILDER_VERSION = "1.1"  # 1.1: a tSC distractor is never worded as the right ending it stands against
CARD_JSON = "dataset_card.json"
CARD_MD = "DATASET_CARD.md"

_CARD_NOTES = {
    "sblimp": "BLiMP (Warstadt et al. 2020, TACL) is CC BY 4.0; the audio is a derivative work under the same terms.",
    "swuggy": "The word list's own terms apply to the audio built from it (BabySLM's lexical list states no licence).",
    "storycloze": (
        "The Story Cloze Test (Mostafazadeh et al. 2016) is distributed by the University of Rochester on request; "
        "check its terms before sharing audio built from it."
    ),
    "pairs": "The source file's own terms apply to the audio built from it.",
}


def _tts_info(tts: EspeakTTS) -> dict[str, Any]:
    try:
        from importlib.metadata import version

        package = f"espeakng-loader {version('espeakng-loader')}"
    except Exception:
        package = "espeakng-loader (version unknown)"
    return {
        "engine": "espeak-ng",
        "version": tts.version,
        "package": package,
        "native_sample_rate": tts.sample_rate,
    }


def card_entry(
    builder: str, tts: EspeakTTS, sources: Sequence[Path], voices: Sequence[Voice], seed: int, layout: str,
    options: dict[str, Any], counts: dict[str, Any],
) -> dict[str, Any]:
    """The card entry of one build by `builder` (sblimp, swuggy, storycloze or pairs)."""
    return {
        "builder": builder,
        "builder_version": BUILDER_VERSION,
        "alignslm_version": __version__,
        "layout": layout,
        # the file name, not the path, so builds from different checkouts have identical cards
        "sources": [{"file": p.name, "sha256": file_sha256(p), "bytes": p.stat().st_size} for p in sources],
        "tts": _tts_info(tts),
        "audio": {
            "sample_rate": SAMPLE_RATE,
            "channels": 1,
            "format": "WAV PCM_16",
            "resampler": "scipy.signal.resample_poly (Kaiser-windowed polyphase FIR)",
        },
        "voices": [v.spec for v in voices],
        "seed": seed,
        "options": options,
        "counts": counts,
        "notes": _CARD_NOTES[builder],
    }


def _render_card(card: dict[str, Any]) -> str:
    lines = [
        "# Synthetic spoken benchmarks",
        "",
        "Built from text with `alignslm-data synth` (`alignslm_eval.builders.benchmarks`) using the espeak-ng "
        "formant synthesiser. The speech is synthetic and robotic: scores on it measure a speech language model's "
        "preferences on this material, and are not comparable with scores on the released (neural-TTS) "
        "benchmarks. Rebuilding with the same sources, voices, seed and software versions gives byte-identical "
        "files. Machine-readable details: `dataset_card.json`.",
        "",
    ]
    for key, entry in card["benchmarks"].items():
        tts, audio = entry["tts"], entry["audio"]
        lines += [f"## {key} ({entry['builder']})", ""]
        lines.append(f"- Layout: {entry['layout']}")
        for source in entry["sources"]:
            lines.append(f"- Source: `{source['file']}` ({source['bytes']} bytes, sha256 `{source['sha256']}`)")
        lines.append(
            f"- TTS: {tts['engine']} {tts['version']} ({tts['package']}), {tts['native_sample_rate']} Hz resampled "
            f"to {audio['sample_rate']} Hz mono {audio['format']} by {audio['resampler']}"
        )
        lines.append(f"- Voices: {', '.join(f'`{v}`' for v in entry['voices'])}")
        options = ", ".join(f"{k}={v}" for k, v in entry["options"].items())
        lines.append(f"- Seed: {entry['seed']}" + (f"; options: {options}" if options else ""))
        counts = entry["counts"]
        simple = ", ".join(f"{k}: {v}" for k, v in counts.items() if not isinstance(v, dict))
        lines.append(f"- Counts: {simple}")
        for name, breakdown in counts.items():
            if isinstance(breakdown, dict):
                lines.append(f"  - {name}: " + ", ".join(f"{k} {v}" for k, v in breakdown.items()))
        lines.append(f"- Builder: alignslm_eval.builders.benchmarks {entry['builder_version']} "
                     f"(alignslm {entry['alignslm_version']})")
        lines.append(f"- Terms: {entry['notes']}")
        lines.append("")
    return "\n".join(lines)


def update_card(out_root: Path, key: str, entry: dict[str, Any]) -> Path:
    """Store `entry` as `key` in `out_root`'s card, keeping other entries; rewrites both files, returns the JSON one."""
    path = out_root / CARD_JSON
    card: dict[str, Any] = {"card_format": 1, "benchmarks": {}}
    if path.is_file():
        card = read_json_object(path, "not an alignslm dataset card: delete it, or build into another folder")
        if not isinstance(card.get("benchmarks"), dict):
            raise UserError(f"{path}: not an alignslm dataset card; delete it, or build into another folder")
    card["benchmarks"][key] = entry
    card["benchmarks"] = dict(sorted(card["benchmarks"].items()))
    path.write_text(json.dumps(card, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    (out_root / CARD_MD).write_text(_render_card(card), encoding="utf-8")
    return path
