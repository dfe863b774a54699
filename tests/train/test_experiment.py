"""`alignslm-train demo-experiment`, reduced (small world, one seed, one round, few openings): the experiment's
mechanics, not the size of its effect. Held-out openings never reach training, every policy is evaluated with the
same sampling, and the table, numbers and plot are written."""

from __future__ import annotations

import json
import shutil

import pytest

from alignslm_eval.io.errors import UserError
from alignslm_train.experiment import (METRICS, ExperimentConfig, _failure, _findings, check_disjoint,
                                       installed_constraints, mean_ci, render_markdown, run_experiment, summarise)


def test_mean_ci_is_students_t_over_seeds():
    ci = mean_ci([1.0, 2.0, 3.0])
    assert ci["mean"] == 2.0 and ci["n"] == 3
    assert ci["ci95"] == pytest.approx(4.302652729911275 * 1.0 / 3 ** 0.5)
    assert mean_ci([None, 5.0]) == {"mean": 5.0, "ci95": None, "n": 1}


def test_the_findings_are_read_off_the_numbers():
    def policy(genppl: float, ssc: float) -> dict:
        return {key: 0.5 for key, *_ in METRICS} | {"genppl_geomean": genppl, "sstorycloze": ssc, "auto_bleu": 0.01,
                                                   "words": 7.0}

    genppl = {0: [100.0, 110.0, 90.0], 1: [80.0, 85.0, 95.0]}  # round 1: lower in 2 of 3 seeds, -13.3 on average
    per_seed = {seed: {"rounds": {1: {"pairs": 8, "seconds": 1.0}},
                       "policies": {k: policy(genppl[k][i], 0.5 + k * (0.2 + 0.01 * i)) for k in (0, 1)}}
                for i, seed in enumerate((0, 1, 2))}
    record = json.loads(json.dumps({"config": {"rounds": 1}, "per_seed": per_seed,
                                    "summary": summarise(per_seed, 1)}))
    change = record["summary"]["metrics"]["genppl_geomean"][1]["change_from_base"]
    assert change["mean"] == pytest.approx(-40 / 3)
    findings = _findings(record)
    assert findings[0] == (f"- Round 1: the rewarded metric, held-out GenPPL, changes by -13.3 ± {change['ci95']:.1f} "
                           "(-13%) from the base, lower in 2 of 3 seeds: not a significant change at 95%.")
    assert "auto-BLEU (repeated word bigrams) stays within 0.010–0.010" in findings[1]
    assert findings[2].startswith("- sSC (held-out stories): significant changes from the base: round 1 +0.210 ± ")
    assert findings[3] == "- tSC (held-out stories): within the CIs of the base in every round."


def test_a_failed_step_is_reported_by_its_own_error_line(tmp_path):
    log = tmp_path / "log.txt"
    log.write_text("scoring: 50%|#####     | 1/2\ralignslm-eval: error: --text-lm lm/: no config.json; pass a model\n"
                   "warning: alignslm-eval: cache is cold\n")
    said = _failure("alignslm-eval", 2, log)
    assert said.startswith("alignslm-eval: error: --text-lm lm/: no config.json; pass a model (log: ")
    log.write_text("warning: alignslm-eval: cache is cold\n")
    assert _failure("alignslm-eval", 1, log).startswith("alignslm-eval exited with 1 (log: ")


def test_the_constraints_pin_every_installed_distribution_but_alignslm():
    from importlib.metadata import version

    lines = installed_constraints().splitlines()
    pins = dict(line.split("==") for line in lines if not line.startswith("#"))
    assert pins["torch"] == version("torch") and pins["transformers"] == version("transformers")
    assert "alignslm" not in pins and len(pins) == len(lines) - 1


def test_overlapping_openings_are_refused(story_world, tmp_path):
    train, held = tmp_path / "train", tmp_path / "held"
    shutil.copytree(story_world.held_out_prompts, held)
    train.mkdir()
    opening = next(held.glob("*.wav"))
    shutil.copy(opening, train / opening.name)
    with pytest.raises(UserError, match=r"training and held-out openings overlap"):
        check_disjoint(story_world, train, held)


@pytest.mark.slow
def test_a_reduced_experiment_evaluates_every_policy_on_held_out_openings_only(story_world, tmp_path):
    config = ExperimentConfig(output_dir=tmp_path / "out", leaderboard=tmp_path / "lb" / "align-demo.md", seeds=[0],
                              rounds=1, scale="small", train_prompts=8, held_out_prompts=4, samples_per_prompt=4,
                              eval_samples=1)
    table = run_experiment(config, story_world.root.parent.parent, ["alignslm-train", "demo-experiment", "..."])
    record = json.loads(table.with_suffix(".json").read_text())
    for suffix in (".png", ".svg"):
        assert table.with_suffix(suffix).stat().st_size > 0
    assert table.read_text() == render_markdown(record)
    assert "| metric (held-out openings) | base | round 1 |" in table.read_text()
    assert record["environment"]["packages"]["peft"]
    assert f"pip install -e . -c {table.with_suffix('.constraints.txt')}`" in table.read_text()
    assert "torch==" in table.with_suffix(".constraints.txt").read_text()

    # held out by story: no training opening, and no agent + place pair, among the evaluated ones
    train_ids = {json.loads(line)["prompt_id"] for line in
                 (config.output_dir / "seed-0" / "train" / "round-1" / "scores.jsonl").read_text().splitlines()}
    by_id = {s.prompt_id: s for s in story_world.stories}
    evaluated = {}
    for k, run in ((0, "model"), (1, "model+round-1")):
        run_dir = config.output_dir / "seed-0" / "eval" / run / "limit-4"
        rows = [json.loads(line) for line in (run_dir / "samples_continuation.jsonl").read_text().splitlines()]
        evaluated[k] = {r["prompt_id"] for r in rows}
        assert all(by_id[i].held_out for i in evaluated[k]) and len(evaluated[k]) == 4
        assert {"genppl", "auto_bleu", "semantic_rating"} <= set(rows[0]["scores"])
        assert {r["scores"]["semantic_rating"]["status"] for r in rows} == {"ok"}  # the local judge answered
        results = json.loads(next(run_dir.glob("results_*.json")).read_text())
        assert set(results["tasks"]) == {"continuation", "sstorycloze", "tstorycloze"}
        evaluated[f"settings{k}"] = results["tasks"]["continuation"]["protocol"]["settings"]
        assert (results["settings"]["adapter"] is None) == (k == 0)
    assert train_ids and not train_ids & evaluated[0]
    assert not {(by_id[i].agent, by_id[i].place) for i in train_ids} & {(by_id[i].agent, by_id[i].place)
                                                                        for i in evaluated[0]}
    assert evaluated[0] == evaluated[1] and evaluated["settings0"] == evaluated["settings1"]
    assert record["disjoint"]["shared_prompts"] == 0 and record["disjoint"]["train_prompts"] == 8
    policies = record["per_seed"]["0"]["policies"]
    assert set(policies) == {"0", "1"} and all(p["samples"] == 4 for p in policies.values())
    assert record["summary"]["pairs"][0]["per_seed"] == [record["per_seed"]["0"]["rounds"]["1"]["pairs"]]
    assert (config.output_dir / "seed-0" / "log.txt").stat().st_size > 0  # the worker's output went to its log

    # a rerun resumes: nothing is trained or scored again, the figures are the same, the wall time adds up
    evaluated_at = (config.output_dir / "seed-0" / "eval" / "round-1.json").stat().st_mtime_ns
    run_experiment(config, story_world.root.parent.parent, ["alignslm-train", "demo-experiment", "..."])
    again = json.loads(table.with_suffix(".json").read_text())
    assert (config.output_dir / "seed-0" / "eval" / "round-1.json").stat().st_mtime_ns == evaluated_at
    assert again["per_seed"] == record["per_seed"]
    spent = [json.loads(line)["seconds"] for line in
             (config.output_dir / "invocations.jsonl").read_text().splitlines()]
    assert len(spent) == 2 and again["wall_seconds"] == pytest.approx(sum(spent), abs=0.2)
