from alignslm_train.pairs import Candidate, Sample, judge_threshold, perplexity, select_pairs


def cand(pid, scores, metric="semantic_rating", texts=None):
    samples = [Sample(i, [i], (texts or {}).get(i, f"sample {i} text here"), {metric: s}) for i, s in enumerate(scores)]
    return Candidate(pid, [1, 2], "the prompt", samples)


def test_judge_threshold_picks_best_and_worst_with_deterministic_ties():
    pair = judge_threshold(cand("p", [2, 5, 1, 5, 1]), chosen_min=3, rejected_max=1)
    assert (pair.chosen.sample, pair.rejected.sample) == (1, 2) and pair.pair_id == "p#1>2"


def test_judge_threshold_reasons():
    assert judge_threshold(cand("p", [2, 2]), chosen_min=3, rejected_max=1) == "no sample rated >= 3"
    assert judge_threshold(cand("p", [4, 3]), chosen_min=3, rejected_max=1) == "no sample rated <= 1"
    assert "fewer than 2" in judge_threshold(cand("p", [4, None]), chosen_min=3, rejected_max=1)


def test_perplexity_rule():
    pair = perplexity(cand("p", [50.0, 20.0, 80.0], metric="genppl"), min_ratio=2.0)
    assert (pair.chosen.sample, pair.rejected.sample) == (1, 2)
    assert "spread" in perplexity(cand("p", [50.0, 60.0], metric="genppl"), min_ratio=2.0)


def test_select_pairs_counts_reasons_and_filters_repetition():
    repetitive = {1: "go go go go go go go go"}
    cands = [cand("a", [5, 1]), cand("b", [2, 2]), cand("c", [1, 5], texts=repetitive)]
    pairs, reasons = select_pairs(cands, "judge_threshold", {"chosen_min": 3, "rejected_max": 1}, 0.3)
    assert [p.prompt_id for p in pairs] == ["a"]
    assert reasons == {"no sample rated >= 3": 1, "auto-BLEU filter": 1}
    pairs, _ = select_pairs(cands, "judge_threshold", {"chosen_min": 3, "rejected_max": 1}, None)
    assert [p.prompt_id for p in pairs] == ["a", "c"]


def test_equal_ratings_never_make_a_pair():
    assert judge_threshold(cand("p", [3, 3]), chosen_min=3, rejected_max=3) == "chosen and rejected would be rated the same"


def test_bad_schedule_is_refused_before_any_work(tmp_path, capsys):
    from alignslm_train.cli import main

    for schedule in ("3", "3:1:2", "", "2:3", "3:3"):
        code = main(["--model", str(tmp_path), "--prompts", str(tmp_path), "--output-dir", str(tmp_path / "o"),
                     "--schedule", schedule])
        assert code == 2 and "--schedule" in capsys.readouterr().err
