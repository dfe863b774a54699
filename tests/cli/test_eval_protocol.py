"""`alignslm-eval --protocol`: the named presets score each item by the rule of the toolkit they name.

The rules are written out here a second time, independently of alignslm's scoring code: slamkit scores
`<S> units <S>` with the first `<S>` conditioned on and the last one scored, by the mean over scored tokens; TWIST's
reference code feeds `unit + offset` with no BOS.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoConfig, AutoModelForCausalLM

from alignslm_eval.cli.eval import main
from alignslm_eval.io.audio import load_audio
from alignslm_eval.io.units import from_frames
from alignslm_eval.tokenizers.offline import OfflineTokenizer
from tests.benchmark_fixtures import SPEECH, make_benchmark
from tests.tiny_models import TWIST_OFFSET, save_slam_qwen2, save_twist_llama

N_UNITS = 16
TASKS = "swuggy,sstorycloze"


def _with_tokenizer(model_dir: Path, shared_data: Path) -> Path:
    OfflineTokenizer.fit([shared_data / "audio" / SPEECH], n_units=N_UNITS, seed=0).save(model_dir / "tokenizer.npz")
    (model_dir / "alignslm_tokenizer.json").write_text(json.dumps({"name": "offline", "args": {"path": "tokenizer.npz"}}))
    return model_dir


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from tests.conftest import SHARED_DATA

    root = tmp_path_factory.mktemp("protocol")
    slam = _with_tokenizer(save_slam_qwen2(root / "slam"), SHARED_DATA)
    twist = _with_tokenizer(save_twist_llama(root / "twist"), SHARED_DATA)
    return make_benchmark(SHARED_DATA, root / "data"), slam, twist


def _slam_model(model_dir: Path) -> torch.nn.Module:
    config = json.loads((model_dir / "config.json").read_text())
    base = dict(config["base_config"])
    lm = AutoModelForCausalLM.from_config(AutoConfig.for_model(base.pop("model_type"), **base))
    state = {k[len("lm."):]: v for k, v in load_file(str(model_dir / "model.safetensors")).items()}
    lm.load_state_dict(state, strict=False)
    lm.tie_weights()
    return lm.eval()


def _token_logprobs(model: torch.nn.Module, tokens: list[int]) -> np.ndarray:
    """log p(token_t | tokens_<t) for t >= 1, from one unpadded pass."""
    ids = torch.tensor([tokens])
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=ids).logits[0].double(), dim=-1)
    return logp[torch.arange(len(tokens) - 1), ids[0, 1:]].numpy()


def _units(model_dir: Path, wav: Path) -> np.ndarray:
    tokenizer = OfflineTokenizer.load(model_dir / "tokenizer.npz")
    return from_frames(tokenizer.encode(load_audio(wav, tokenizer.sample_rate))).units


def _scored(data, model_dir, out, protocol, batch_size, capsys, *extra):
    code = main([str(a) for a in ["--model", model_dir, "--tasks", TASKS, "--data-root", data, "--output-path", out,
                                  "--protocol", protocol, "--batch-size", batch_size, "--n-units", N_UNITS,
                                  "--log-samples", *extra]])
    _, err = capsys.readouterr()
    assert code == 0, err
    results = json.loads(sorted(out.glob("*/results_*.json"))[-1].read_text())
    items = {}
    for task, entry in results["tasks"].items():
        for line in Path(entry["files"]["samples"]).read_text().splitlines():
            for c in json.loads(line)["candidates"]:
                items[(task, c["key"])] = c
    return results, items


@pytest.mark.parametrize("batch_size", [1, 7])
def test_slamkit_protocol_scores_each_item_by_slamkits_rule(setup, tmp_path, capsys, batch_size):
    data, slam, _ = setup
    results, items = _scored(data, slam, tmp_path / "runs", "slamkit", batch_size, capsys)
    model = _slam_model(slam)
    for (task, key), item in items.items():
        # <S> = 1 before and after, unit u = token u + 2; the first <S> is only conditioned on
        tokens = [1, *(_units(slam, Path(item["path"])) + 2).tolist(), 1]
        logp = _token_logprobs(model, tokens)
        assert item["n_tokens"] == len(tokens) - 1
        assert item["ll_mean"] == pytest.approx(logp.mean(), abs=1e-5), (task, key)
    for task, entry in results["tasks"].items():
        protocol = entry["protocol"]
        assert (protocol["add_bos"], protocol["add_eos"], protocol["reduction"], protocol["dedup"]) == (
            True, True, "mean", True)
        assert protocol["preset"]["name"] == "slamkit" and protocol["preset"]["overridden_by_set"] == {}
    assert results["settings"]["protocol"] == "slamkit" and results["model"]["dtype"] == "float32"


@pytest.mark.parametrize("batch_size", [1, 7])
def test_twist_protocol_feeds_offset_units_without_bos(setup, tmp_path, capsys, batch_size):
    data, _, twist = setup
    results, items = _scored(data, twist, tmp_path / "runs", "twist", batch_size, capsys)
    model = AutoModelForCausalLM.from_pretrained(twist).eval()
    for (task, key), item in items.items():
        tokens = (_units(twist, Path(item["path"])) + TWIST_OFFSET).tolist()
        logp = _token_logprobs(model, tokens)
        assert item["n_tokens"] == len(tokens) - 1
        assert item["ll_sum"] == pytest.approx(logp.sum(), abs=1e-5), (task, key)
        assert item["ll_mean"] == pytest.approx(logp.mean(), abs=1e-5), (task, key)
    # TWIST's code holds no reduction rule: the task files' own stay (sum on sWUGGY, mean on sStoryCloze)
    assert results["tasks"]["swuggy"]["protocol"]["reduction"] == "sum"
    assert results["tasks"]["sstorycloze"]["protocol"]["reduction"] == "mean"
    assert not results["tasks"]["swuggy"]["protocol"]["add_bos"]


def test_set_overrides_one_preset_value_and_is_recorded(setup, tmp_path, capsys):
    data, slam, _ = setup
    results, _ = _scored(data, slam, tmp_path / "runs", "slamkit", 8, capsys, "--set", "swuggy.reduction=sum",
                         "--dtype", "bfloat16")
    swuggy = results["tasks"]["swuggy"]["protocol"]
    assert swuggy["reduction"] == "sum" and swuggy["add_eos"] is True
    assert swuggy["preset"]["overridden_by_set"] == {"reduction": "sum"}
    assert results["tasks"]["sstorycloze"]["protocol"]["preset"]["overridden_by_set"] == {}
    # an explicit --dtype wins over the preset's
    assert results["model"]["dtype"] == "bfloat16"


def test_an_unknown_protocol_is_a_one_line_error(setup, tmp_path, capsys):
    data, slam, _ = setup
    code = main(["--model", str(slam), "--tasks", TASKS, "--data-root", str(data), "--protocol", "slamkt"])
    _, err = capsys.readouterr()
    assert code == 2 and "--protocol slamkt" in err and "slamkit" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_a_hubert_normalisation_disagreement_is_a_one_line_error(setup, tmp_path, capsys):
    import joblib
    from sklearn.cluster import KMeans

    from tests.tokenizers.test_hubert import HIDDEN, _make_model

    data, _, twist = setup
    hubert = _make_model(tmp_path / "mhubert", "mhubert25")
    (hubert / "preprocessor_config.json").write_text(json.dumps({"do_normalize": True}))
    points = np.random.default_rng(0).standard_normal((100, HIDDEN)).astype(np.float32)
    joblib.dump(KMeans(n_clusters=N_UNITS, n_init=1, random_state=0).fit(points), tmp_path / "km.bin")
    code = main(["--model", str(twist), "--tasks", "swuggy", "--data-root", str(data), "--n-units", str(N_UNITS),
                 "--tokenizer", "hubert", "--tokenizer-args", f"path={hubert},kmeans={tmp_path / 'km.bin'},layer=3",
                 "--output-path", str(tmp_path / "runs")])
    _, err = capsys.readouterr()
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "do_normalize: true" in err and "normalize=false to match them" in err
