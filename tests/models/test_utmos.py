import pytest
import torch

from alignslm_eval.io.audio import load_audio
from alignslm_eval.io.errors import UserError
from alignslm_eval.models.utmos import load_utmos
from tests.tiny_models import Tripwire, save_utmos, tiny_utmos_parts

SPEECH = "audio/librispeech_dev-clean_2412-153948-0000.flac"


@pytest.fixture(scope="module")
def speech(shared_data):
    return torch.from_numpy(load_audio(shared_data / SPEECH, 16000)[: 2 * 16000].copy())[None]


@pytest.mark.parametrize("fmt", ["lightning", "speechmos"])
def test_published_formats_load_every_wav2vec2_weight(tmp_path, fmt):
    model, loaded_format = load_utmos(save_utmos(tmp_path / "utmos", fmt))
    assert loaded_format == fmt
    expected = tiny_utmos_parts()["torchaudio_ssl"]
    got = model.ssl.state_dict()
    assert got.keys() == expected.keys()
    assert all(torch.equal(got[k], expected[k]) for k in expected)


def test_both_formats_of_the_same_weights_score_alike_and_match_the_published_head(tmp_path, speech):
    lightning, _ = load_utmos(save_utmos(tmp_path / "a.ckpt", "lightning"))
    speechmos, _ = load_utmos(save_utmos(tmp_path / "b.pt", "speechmos"))
    score = float(lightning(speech)[0])
    assert score == pytest.approx(float(speechmos(speech)[0]), abs=1e-5)

    # The head written out from the paper's description, with the rows the authors' demo uses: domain 0, judge 288.
    parts = tiny_utmos_parts()
    from torchaudio.models import wav2vec2_model

    ssl = wav2vec2_model("group_norm", [(16, 10, 5)] + [(16, 3, 2)] * 4 + [(16, 2, 2)] * 2, False, 64, 0.0, 16, 4, 2,
                         1, 0.0, 128, 0.0, 0.0, False, 0.0, None).eval()
    ssl.load_state_dict(parts["torchaudio_ssl"])
    blstm = torch.nn.LSTM(80, 16, batch_first=True, bidirectional=True)
    blstm.load_state_dict(parts["blstm"])
    first, last = torch.nn.Linear(32, 32), torch.nn.Linear(32, 1)
    first.load_state_dict(parts["proj0"])
    last.load_state_dict(parts["proj_last"])
    with torch.no_grad():
        frames = ssl(speech)[0][0]
        x = torch.cat([frames, parts["domains"][0].expand(len(frames), -1),
                       parts["judges"][288].expand(len(frames), -1)], dim=1)
        expected = float(last(torch.relu(first(blstm(x[None])[0][0]))).mean()) * 2 + 3
    assert score == pytest.approx(expected, abs=1e-5)


def test_the_published_full_size_shapes_load(tmp_path):
    """wav2vec 2.0 base (12 heads of 64), 3000 listeners, BLSTM 512, projection 2048, in the authors' format."""
    model, _ = load_utmos(save_utmos(tmp_path / "full.ckpt", "lightning", full_size=True))
    assert model.ssl.encoder.transformer.layers[0].attention.num_heads == 12
    assert len(model.ssl.encoder.transformer.layers) == 12
    assert model.blstm.input_size == 768 + 128 + 128 and model.blstm.hidden_size == 512
    assert torch.isfinite(model(0.1 * torch.randn(1, 8000))).all()


def test_the_listener_row_is_the_one_inference_uses(tmp_path, speech):
    score = float(load_utmos(save_utmos(tmp_path / "a.ckpt", "lightning"))[0](speech)[0])
    row_288 = float(load_utmos(save_utmos(tmp_path / "b.pt", "speechmos", judge_id=288))[0](speech)[0])
    row_287 = float(load_utmos(save_utmos(tmp_path / "c.pt", "speechmos", judge_id=287))[0](speech)[0])
    assert score == pytest.approx(row_288, abs=1e-5) and score != pytest.approx(row_287, abs=1e-4)


def test_lightning_hyper_parameters_are_never_rebuilt(tmp_path):
    Tripwire.rebuilt = False
    load_utmos(save_utmos(tmp_path / "a.ckpt", "lightning"))
    assert not Tripwire.rebuilt


def test_a_squim_state_dict_is_named_and_pointed_at_its_scorer(tmp_path):
    from torchaudio.models import squim_subjective_base

    torch.save(squim_subjective_base().state_dict(), tmp_path / "squim.pth")
    with pytest.raises(UserError, match="squim_mos"):
        load_utmos(tmp_path / "squim.pth")


def test_a_phoneme_encoder_checkpoint_is_refused(tmp_path):
    path = save_utmos(tmp_path / "a.ckpt", "lightning")
    checkpoint = torch.load(path, weights_only=False)
    checkpoint["state_dict"]["feature_extractors.2.embedding.weight"] = torch.zeros(40, 8)
    checkpoint["state_dict"]["feature_extractors.2.encoder.weight_ih_l0"] = torch.zeros(4, 8)
    torch.save(checkpoint, path)
    with pytest.raises(UserError, match="phoneme encoder"):
        load_utmos(path)


@pytest.mark.parametrize("content", [b"", b"not a checkpoint", None])
def test_unreadable_files_are_one_line_errors(tmp_path, content):
    path = tmp_path / "utmos.ckpt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(UserError) as e:
        load_utmos(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_a_truncated_lightning_checkpoint_names_what_is_missing(tmp_path):
    path = save_utmos(tmp_path / "a.ckpt", "lightning")
    checkpoint = torch.load(path, weights_only=False)
    del checkpoint["state_dict"]["output_layers.1.net.3.weight"]
    torch.save(checkpoint, path)
    with pytest.raises(UserError, match="projection"):
        load_utmos(path)


def test_a_large_or_xlsr_encoder_is_refused_not_scored_with_the_base_forward(tmp_path):
    path = save_utmos(tmp_path / "a.ckpt", "lightning")
    checkpoint = torch.load(path, weights_only=False)
    for i in range(1, 7):
        checkpoint["state_dict"][f"feature_extractors.0.ssl_model.feature_extractor.conv_layers.{i}.2.1.weight"] = \
            torch.ones(16)
    torch.save(checkpoint, path)
    with pytest.raises(UserError, match="wav2vec 2.0 base"):
        load_utmos(path)


def test_a_projection_that_does_not_end_in_one_score_is_refused_at_load(tmp_path):
    path = save_utmos(tmp_path / "a.ckpt", "lightning")
    checkpoint = torch.load(path, weights_only=False)
    checkpoint["state_dict"]["output_layers.1.net.3.weight"] = torch.zeros(2, 32)
    checkpoint["state_dict"]["output_layers.1.net.3.bias"] = torch.zeros(2)
    torch.save(checkpoint, path)
    with pytest.raises(UserError, match="not one score"):
        load_utmos(path)
