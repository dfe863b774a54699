import copy
import hashlib
import json
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from alignslm_eval.api.registry import VOCODERS
from alignslm_eval.io.errors import UserError
from alignslm_eval.vocoders.code_hifigan import CodeGenerator, CodeHiFiGANVocoder

# The key set and structure of TWIST's hifigan_lj_mhubert_base_25hz_config.json (a speech-resynthesis training
# config), with small channel counts so a random-weight generator runs in milliseconds; hop 5*4*4*4*2 = 640.
CONFIG: dict[str, Any] = {
    "resblock": "1",
    "num_gpus": 0,
    "batch_size": 16,
    "learning_rate": 0.0002,
    "adam_b1": 0.8,
    "adam_b2": 0.99,
    "lr_decay": 0.999,
    "seed": 1234,
    "upsample_rates": [5, 4, 4, 4, 2],
    "upsample_kernel_sizes": [11, 8, 8, 8, 4],
    "upsample_initial_channel": 64,
    "resblock_kernel_sizes": [3, 7, 11],
    "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
    "num_embeddings": 500,
    "embedding_dim": 16,
    "model_in_dim": 16,
    "segment_size": 8960,
    "code_hop_size": 640,
    "f0": False,
    "num_mels": 80,
    "num_freq": 1025,
    "n_fft": 1024,
    "hop_size": 256,
    "win_size": 1024,
    "dur_prediction_weight": 1.0,
    "dur_predictor_params": {
        "encoder_embed_dim": 16,
        "var_pred_hidden_dim": 16,
        "var_pred_kernel_size": 3,
        "var_pred_dropout": 0.5,
    },
    "sampling_rate": 16000,
    "fmin": 0,
    "fmax": 8000,
    "fmax_for_loss": None,
    "num_workers": 4,
    "dist_config": {"dist_backend": "nccl", "dist_url": "env://"},
}
HOP = 640
UNITS = np.array([3, 49, 7, 254, 30, 4, 7, 105, 250, 482, 465, 7, 48], dtype=np.int64)
DURATIONS = np.array([1, 2, 1, 1, 3, 1, 2, 1, 1, 1, 4, 1, 2], dtype=np.int64)


class NotATensor:
    """A custom class: saving an instance makes a checkpoint that only full unpickling can read."""

    def __init__(self) -> None:
        self.value = 1


def random_generator(cfg: dict[str, Any]) -> CodeGenerator:
    torch.manual_seed(0)
    model = CodeGenerator(cfg).eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (torch.nn.Conv1d, torch.nn.ConvTranspose1d)):
                module.weight.normal_(0.0, 0.1)
        if model.dur_predictor is not None:
            # Spread the predicted log(1 + d) over about 0.7..2 so durations differ between units.
            model.dur_predictor.proj.weight.normal_(0.0, 0.1)
            model.dur_predictor.proj.bias.fill_(1.3)
    return model


def weight_normed_state(model: CodeGenerator) -> dict[str, torch.Tensor]:
    """The state dict as speech-resynthesis saves it: generator convolutions as legacy weight_g / weight_v pairs."""
    state = {k: v.clone() for k, v in model.state_dict().items()}
    for name, module in model.named_modules():
        if isinstance(module, (torch.nn.Conv1d, torch.nn.ConvTranspose1d)) and not name.startswith("dur_predictor"):
            weight = state.pop(f"{name}.weight")
            state[f"{name}.weight_g"] = weight.norm(dim=(1, 2), keepdim=True)
            # v's scale is arbitrary: loading must normalise it away
            state[f"{name}.weight_v"] = 2.5 * weight
    return state


def save_checkpoint(directory: Path, cfg: dict[str, Any], state: dict[str, Any], name: str = "g.pt") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    torch.save({"generator": state}, directory / name)
    (directory / "config.json").write_text(json.dumps(cfg))
    return directory / name


@pytest.fixture(scope="module")
def model() -> CodeGenerator:
    return random_generator(CONFIG)


@pytest.fixture(scope="module")
def checkpoint(model: CodeGenerator, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_checkpoint(tmp_path_factory.mktemp("hifigan"), CONFIG, weight_normed_state(model))


@pytest.fixture(scope="module")
def vocoder(checkpoint: Path) -> CodeHiFiGANVocoder:
    return VOCODERS.get("code_hifigan").from_args(checkpoint=str(checkpoint))


def test_legacy_weight_norm_layout_matches_the_saved_format() -> None:
    # What torch.nn.utils.weight_norm (used by speech-resynthesis/textlesslib) stores, for both conv kinds.
    for conv in (torch.nn.Conv1d(6, 4, 7, padding=3), torch.nn.ConvTranspose1d(8, 4, 11, 5, padding=3)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            legacy = torch.nn.utils.weight_norm(copy.deepcopy(conv))
        shapes = {k: tuple(v.shape) for k, v in legacy.state_dict().items()}
        weight = conv.weight.detach()
        assert shapes == {
            "bias": tuple(conv.bias.shape),
            "weight_g": tuple(weight.norm(dim=(1, 2), keepdim=True).shape),
            "weight_v": tuple(weight.shape),
        }


def test_loads_through_from_args_and_reproduces_the_generator(
    vocoder: CodeHiFiGANVocoder, model: CodeGenerator, checkpoint: Path
) -> None:
    assert isinstance(vocoder, CodeHiFiGANVocoder)
    assert vocoder.hop == HOP and vocoder.sample_rate == 16000 and vocoder.n_units == 500
    wav = vocoder.synthesize(UNITS, DURATIONS)
    assert wav.dtype == np.float32 and wav.shape == (int(DURATIONS.sum()) * HOP,)
    assert np.all(np.isfinite(wav)) and np.abs(wav).max() > 0
    with torch.no_grad():
        reference = model(torch.from_numpy(UNITS), torch.from_numpy(DURATIONS)).numpy()
    np.testing.assert_allclose(wav, reference, atol=1e-5)
    np.testing.assert_array_equal(vocoder.synthesize(UNITS, DURATIONS), wav)
    described = vocoder.describe()
    assert described["checkpoint_sha256"] == hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    assert described["config"] == str(checkpoint.parent / "config.json")
    assert {k: described[k] for k in ("kind", "hop", "sample_rate", "n_units", "duration_predictor")} == {
        "kind": "code_hifigan",
        "hop": HOP,
        "sample_rate": 16000,
        "n_units": 500,
        "duration_predictor": True,
    }
    json.dumps(described)


def test_duration_predictor(vocoder: CodeHiFiGANVocoder, model: CodeGenerator) -> None:
    predicted = vocoder.predict_durations(UNITS)
    with torch.no_grad():
        log_dur = model.dur_predictor(model.dict(torch.from_numpy(UNITS)).unsqueeze(0))[0].double().numpy()
    expected = np.maximum(np.round(np.exp(log_dur) - 1.0), 1).astype(np.int64)
    np.testing.assert_array_equal(predicted, expected)
    assert predicted.min() >= 1 and len(set(predicted.tolist())) > 1
    wav = vocoder.synthesize(UNITS)
    assert wav.shape == (int(predicted.sum()) * HOP,) and wav.dtype == np.float32
    np.testing.assert_array_equal(wav, vocoder.synthesize(UNITS, predicted))
    np.testing.assert_array_equal(wav, vocoder.synthesize(UNITS))


def test_without_duration_predictor_one_frame_per_unit(tmp_path: Path) -> None:
    cfg = {k: v for k, v in CONFIG.items() if k not in ("dur_predictor_params", "dur_prediction_weight")}
    cfg["resblock"] = "2"
    cfg["resblock_dilation_sizes"] = [[1, 3], [1, 3], [1, 3]]
    model = random_generator(cfg)
    path = save_checkpoint(tmp_path, cfg, weight_normed_state(model))
    vocoder = CodeHiFiGANVocoder.from_args(checkpoint=str(path), config=str(tmp_path / "config.json"))
    wav = vocoder.synthesize(UNITS)
    assert wav.shape == (len(UNITS) * HOP,) and not vocoder.describe()["duration_predictor"]
    with torch.no_grad():
        reference = model(torch.from_numpy(UNITS), torch.ones(len(UNITS), dtype=torch.long)).numpy()
    np.testing.assert_allclose(wav, reference, atol=1e-5)
    with pytest.raises(UserError, match="no duration predictor"):
        vocoder.predict_durations(UNITS)


def test_odd_kernel_minus_stride_is_trimmed_to_the_frame_grid(tmp_path: Path) -> None:
    cfg = {**CONFIG, "upsample_kernel_sizes": [10, 8, 8, 8, 4]}  # 10 - 5 is odd: one extra sample there
    path = save_checkpoint(tmp_path, cfg, weight_normed_state(random_generator(cfg)))
    vocoder = CodeHiFiGANVocoder.from_args(checkpoint=str(path))
    assert vocoder.synthesize(UNITS, DURATIONS).shape == (int(DURATIONS.sum()) * HOP,)


def test_edge_cases(vocoder: CodeHiFiGANVocoder) -> None:
    assert vocoder.synthesize(np.zeros(0, np.int64)).shape == (0,)
    assert vocoder.synthesize(UNITS[:1], np.array([1])).shape == (HOP,)
    assert vocoder.synthesize(UNITS[:2], np.array([0, 2])).shape == (2 * HOP,)
    with pytest.raises(UserError, match="unit id 500 is outside"):
        vocoder.synthesize(np.array([1, 500]))
    with pytest.raises(ValueError):
        vocoder.synthesize(UNITS, DURATIONS[:-1])


def test_textlesslib_config_name_and_fused_or_parametrized_weights(model: CodeGenerator, tmp_path: Path) -> None:
    # TWIST's files: hifigan_lj_mhubert_base_25hz.pt beside hifigan_lj_mhubert_base_25hz_config.json
    torch.save({"generator": model.state_dict()}, tmp_path / "hifigan_lj_mhubert_base_25hz.pt")
    (tmp_path / "hifigan_lj_mhubert_base_25hz_config.json").write_text(json.dumps(CONFIG))
    fused = CodeHiFiGANVocoder.from_args(checkpoint=str(tmp_path / "hifigan_lj_mhubert_base_25hz.pt"))
    parametrized = copy.deepcopy(model)
    for name, module in parametrized.named_modules():
        if isinstance(module, (torch.nn.Conv1d, torch.nn.ConvTranspose1d)) and not name.startswith("dur_predictor"):
            torch.nn.utils.parametrizations.weight_norm(module)
    assert any(k.endswith("parametrizations.weight.original0") for k in parametrized.state_dict())
    path = save_checkpoint(tmp_path / "p", CONFIG, parametrized.state_dict())
    loaded = CodeHiFiGANVocoder.from_args(checkpoint=str(path))
    np.testing.assert_allclose(
        loaded.synthesize(UNITS, DURATIONS), fused.synthesize(UNITS, DURATIONS), atol=1e-5
    )


def test_renamed_key_is_named(model: CodeGenerator, tmp_path: Path) -> None:
    state = weight_normed_state(model)
    state["embedding.weight"] = state.pop("dict.weight")
    path = save_checkpoint(tmp_path, CONFIG, state)
    with pytest.raises(UserError, match=r"missing dict\.weight.*unexpected embedding\.weight"):
        CodeHiFiGANVocoder.from_args(checkpoint=str(path))
    state = weight_normed_state(model)
    state["conv_pre.weight_x"] = state.pop("conv_pre.weight_v")  # the gain is left without its direction
    with pytest.raises(UserError, match=r"missing conv_pre\.weight;.*conv_pre\.weight_g, conv_pre\.weight_x"):
        CodeHiFiGANVocoder.from_args(checkpoint=str(save_checkpoint(tmp_path / "v", CONFIG, state)))


def test_config_mismatch_and_bad_configs(model: CodeGenerator, tmp_path: Path) -> None:
    state = weight_normed_state(model)
    path = save_checkpoint(tmp_path, {**CONFIG, "num_embeddings": 100}, state)
    with pytest.raises(UserError, match=r"dict\.weight \[500, 16\] vs \[100, 16\]"):
        CodeHiFiGANVocoder.from_args(checkpoint=str(path))
    for broken, message in (
        ({k: v for k, v in CONFIG.items() if k != "upsample_rates"}, "missing upsample_rates"),
        ({**CONFIG, "f0": True}, "f0 set"),
        ({**CONFIG, "multispkr": True}, "multispkr set"),
        ({**CONFIG, "upsample_kernel_sizes": [11, 8]}, "differ in length"),
        ({**CONFIG, "dur_predictor_params": {"encoder_embed_dim": 16}}, "lacks var_pred_hidden_dim"),
    ):
        (tmp_path / "config.json").write_text(json.dumps(broken))
        with pytest.raises(UserError, match=message) as caught:
            CodeHiFiGANVocoder.from_args(checkpoint=str(path))
        assert "config.json" in str(caught.value) and "\n" not in str(caught.value)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(UserError, match="config.json: not valid JSON"):
        CodeHiFiGANVocoder.from_args(checkpoint=str(path))


def test_refuses_checkpoints_that_need_unpickling(model: CodeGenerator, tmp_path: Path) -> None:
    path = tmp_path / "g.pt"
    torch.save({"generator": weight_normed_state(model), "extra": NotATensor()}, path)
    (tmp_path / "config.json").write_text(json.dumps(CONFIG))
    with pytest.raises(UserError, match="full unpickling") as caught:
        CodeHiFiGANVocoder.from_args(checkpoint=str(path))
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_file_and_argument_errors(checkpoint: Path, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="checkpoint not found"):
        CodeHiFiGANVocoder.from_args(checkpoint=str(tmp_path / "absent.pt"))
    with pytest.raises(UserError, match="missing checkpoint="):
        CodeHiFiGANVocoder.from_args()
    with pytest.raises(UserError, match="unknown argument"):
        CodeHiFiGANVocoder.from_args(checkpoint=str(checkpoint), speaker="1")
    lonely = tmp_path / "lonely.pt"
    lonely.write_bytes(checkpoint.read_bytes())
    with pytest.raises(UserError, match="no vocoder config beside it"):
        CodeHiFiGANVocoder.from_args(checkpoint=str(lonely))
    (tmp_path / "config.json").write_text(json.dumps(CONFIG))
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"this is not a checkpoint")
    with pytest.raises(UserError, match="not a readable torch checkpoint"):
        CodeHiFiGANVocoder.from_args(checkpoint=str(garbage))
    torch.save({"model": {}}, tmp_path / "other.pt")
    with pytest.raises(UserError, match="'generator'"):
        CodeHiFiGANVocoder.from_args(checkpoint=str(tmp_path / "other.pt"))
    assert CodeHiFiGANVocoder.from_args(path=str(checkpoint)).describe()["checkpoint"] == str(checkpoint)
    with pytest.raises(UserError, match="disagree"):
        CodeHiFiGANVocoder.from_args(path=str(checkpoint), checkpoint=str(lonely))
    with pytest.raises(UserError, match="device="):
        CodeHiFiGANVocoder.from_args(checkpoint=str(checkpoint), device="nonsense")


def test_hop_is_the_upsampling_product() -> None:
    assert math.prod(CONFIG["upsample_rates"]) == HOP


def test_a_vocoder_directory_is_accepted_on_the_command_line(checkpoint: Path, tmp_path: Path) -> None:
    from alignslm_eval.cli.eval import run_parser
    from alignslm_eval.components import PipelineOptions, build_pipeline
    from alignslm_eval.api.options import from_namespace
    from alignslm_eval.io.errors import UserError

    def pipeline(args):
        return build_pipeline(from_namespace(PipelineOptions, args), None)

    args = run_parser().parse_args(["--model", "m", "--tasks", "t", "--vocoder", str(checkpoint.parent)])
    vocoder = pipeline(args).vocoder()
    assert isinstance(vocoder, CodeHiFiGANVocoder) and vocoder.describe()["checkpoint"] == str(checkpoint)
    # the durations it reports are the ones it vocodes with
    durations = vocoder.durations(UNITS)
    assert vocoder.synthesize(UNITS).shape == (int(durations.sum()) * HOP,)
    (tmp_path / "a.pt").write_bytes(b"")
    (tmp_path / "b.pt").write_bytes(b"")
    args = run_parser().parse_args(["--model", "m", "--tasks", "t", "--vocoder", str(tmp_path)])
    with pytest.raises(UserError, match=r"2 \.pt files \(a\.pt, b\.pt\) and no with a <name>_config\.json.*"
                                        r"pass --vocoder code_hifigan:FILE\.pt"):
        pipeline(args).vocoder()


def test_a_textlesslib_folder_with_several_checkpoints_picks_the_one_its_config_names(model: CodeGenerator,
                                                                                      tmp_path: Path) -> None:
    # textlesslib's checkpoint folder: the vocoder beside the HuBERT checkpoint
    torch.save({"generator": model.state_dict()}, tmp_path / "hifigan_lj_mhubert_base_25hz.pt")
    (tmp_path / "hifigan_lj_mhubert_base_25hz_config.json").write_text(json.dumps(CONFIG))
    (tmp_path / "mhubert_base_25hz_cp_mls_cv_sp_fisher.pt").write_bytes(b"not a vocoder")
    vocoder = CodeHiFiGANVocoder.from_args(checkpoint=str(tmp_path))
    assert Path(vocoder.describe()["checkpoint"]).name == "hifigan_lj_mhubert_base_25hz.pt"


def test_a_vocoder_with_fewer_unit_rows_than_the_model_is_refused_naming_the_three_counts(checkpoint: Path) -> None:
    from alignslm_eval.components import PipelineOptions, UnitCounts, build_pipeline
    from alignslm_eval.models.vocab import UnitVocabulary

    rows = CONFIG["num_embeddings"]
    vocab = UnitVocabulary.slam(rows + 8)  # e.g. a padded vocabulary read as units
    counts = UnitCounts(vocab, rows + 8, "--tokenizer hubert")
    pipeline = build_pipeline(PipelineOptions(vocoder=str(checkpoint.parent)), None, units=counts)
    with pytest.raises(UserError) as e:
        pipeline.vocoder()
    message = str(e.value)
    assert f"model's vocabulary has {rows + 8} units" in message and f"tokenizer {rows + 8} centroids" in message
    assert f"vocoder {rows} unit embeddings" in message and "--n-units N" in message
    ok = UnitCounts(UnitVocabulary.slam(rows), rows, "--tokenizer hubert")
    assert build_pipeline(PipelineOptions(vocoder=str(checkpoint.parent)), None, units=ok).vocoder().n_units == rows
