"""Benchmark builder throughput: seconds of audio synthesised (espeak-ng, resampled, written) per wall second.

The baseline is real time: `extra_info["audio_seconds"] / mean` is the speed-up over it.
"""

import itertools

from alignslm_eval.builders.benchmarks import build_sblimp


def test_sblimp_build_throughput(benchmark, tmp_path, shared_data):
    source = shared_data / "blimp" / "passive_1.jsonl"
    roots = (tmp_path / f"build{i}" for i in itertools.count())
    report = benchmark.pedantic(
        lambda root: build_sblimp(source, root, ["en-us", "en-us+f3"], n_per_phenomenon=25, seed=0, progress=False),
        setup=lambda: ((next(roots),), {}), rounds=3,
    )
    benchmark.extra_info["audio_seconds"] = report.audio_seconds
    assert report.n_files == 25 * 2 * 2 and report.audio_seconds > 25 * 2 * 2 * 0.5
