"""The story world: the grammar's stories, the held-out split by story, and what a (small) build writes and
measures."""

from __future__ import annotations

import json
from collections import Counter

import pytest
import yaml

from alignslm_eval.demo.story_world import GRAMMAR, VOCODER_N_ITER, make_stories, read_grammar
from alignslm_eval.io.errors import UserError


def test_every_combination_is_one_story_and_the_held_out_pairs_are_whole_stories():
    grammar = read_grammar()
    stories = make_stories(grammar)
    n_actions = sum(len(a) for a in grammar["places"].values())
    assert len(stories) == len(grammar["times"]) * len(grammar["agents"]) * n_actions
    assert len({s.text for s in stories}) == len(stories)
    held = {tuple(p) for p in grammar["held_out"]}
    assert {(s.agent, s.place) for s in stories if s.held_out} == held
    assert not {(s.agent, s.place) for s in stories if not s.held_out} & held
    # an opening's two stories share one voice, and the voice says nothing about the place
    by_opening = {}
    for s in stories:
        assert by_opening.setdefault(s.prompt_id, s.voice) == s.voice
    assert all(len(Counter(s.voice for s in stories if s.place == p)) > 1 for p in grammar["places"])


def test_the_stories_are_the_same_on_every_call():
    assert make_stories(read_grammar()) == make_stories(read_grammar())


def test_a_held_out_pair_outside_the_grammar_is_refused(tmp_path):
    grammar = yaml.safe_load(GRAMMAR.read_text())
    grammar["held_out"].append(["the purple whale", "river"])
    path = tmp_path / "stories.yaml"
    path.write_text(yaml.safe_dump(grammar))
    with pytest.raises(UserError, match=r"held_out entry \['the purple whale', 'river'\]"):
        read_grammar(path)


@pytest.mark.slow
def test_a_build_records_held_out_losses_and_the_recognisers_error_rates(story_world):
    record = story_world.record()
    assert record["stories"]["held_out"] == len(story_world.split(True)) > 0
    for lm in ("unit_lm", "text_lm"):
        assert record[lm]["held_out_loss"] > 0 and record[lm]["n_held_out"] == record["stories"]["held_out"]
        assert record[lm]["held_out_curve"][-1]["step"] == record[lm]["steps"]
    assert record["asr"]["held_out_vocoded_second_sentences"]["n_utterances"] == len(story_world.split(True))
    assert record["asr"]["held_out_openings"]["n_utterances"] == record["prompts"]["held_out"]
    assert all(0 <= record["asr"][split]["wer"] for split in ("held_out_openings", "held_out_vocoded_second_sentences"))
    # held-out openings are the evaluation prompts; training ones are apart
    held = {p.stem for p in story_world.held_out_prompts.glob("*.wav")}
    train = {p.stem for p in story_world.train_prompts.glob("*.wav")}
    assert held == {s.prompt_id for s in story_world.split(True)} and not held & train
    rows = (story_world.data_root / "sSC" / "transcripts.csv").read_text().splitlines()
    assert len(rows) == 1 + 2 * len(story_world.split(True))
    vocoder = json.loads((story_world.model_dir / "alignslm_vocoder.json").read_text())
    assert vocoder["args"]["n_iter"] == str(VOCODER_N_ITER)


@pytest.mark.slow
def test_the_unit_lm_trains_to_the_same_weights_whatever_torch_s_thread_count(story_world, tmp_path):
    """The weights must not depend on the machine's core count (torch's default thread count): with 1 and 3
    threads, 60 steps gave other weights before training ran on a fixed count."""
    import numpy as np
    import torch

    from alignslm_eval.demo.story_world import N_UNITS, SCALES, SEED, UNIT_LM_SHAPE
    from alignslm_eval.demo.train_lm import train_unit_lm

    units = json.loads((story_world.root / "units.json").read_text())["story"]
    train = [np.array(units[s.id]) for s in story_world.split(False)]
    weights = []
    before = torch.get_num_threads()
    try:
        for threads in (1, 3):
            torch.set_num_threads(threads)
            out = tmp_path / f"threads-{threads}"
            train_unit_lm(train, N_UNITS, out, steps=SCALES["small"].unit_lm_steps, seed=SEED, shape=UNIT_LM_SHAPE)
            assert torch.get_num_threads() == threads  # the caller's count is restored
            weights.append((out / "model.safetensors").read_bytes())
    finally:
        torch.set_num_threads(before)
    assert weights[0] == weights[1]
