"""The vllm back-end against a loopback vLLM stand-in (tests/vllm_server.py) backed by the same tiny checkpoints
HFUnitLM loads; and, opt-in, against a real vLLM server (ALIGNSLM_VLLM_URL and ALIGNSLM_VLLM_MODEL_DIR)."""

import json
import os
import socket

import numpy as np
import pytest

from alignslm_eval.api.model import LikelihoodProtocol, SamplingConfig
from alignslm_eval.components import ModelOptions, build_unit_lm
from alignslm_eval.io.errors import UserError
from alignslm_eval.models.adapters import ADAPTER_CHAIN_FILE, CONFIG_FILE
from alignslm_eval.models.hf_unit_lm import HFUnitLM
from alignslm_eval.models.vllm_unit_lm import VLLMUnitLM
from alignslm_eval.scoring.judge.retry import RetryPolicy
from tests.tiny_models import save_slam_llama, save_slam_qwen2, save_twist_llama
from tests.vllm_server import VLLMServer, fail, hang, raw

FAST_RETRY = RetryPolicy(max_retries=3, backoff_s=0.01, backoff_max_s=0.05)
PROTOCOLS = [LikelihoodProtocol(True, False), LikelihoodProtocol(True, True), LikelihoodProtocol(False, False)]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("vllm-ckpt")
    return {
        "twist_llama": save_twist_llama(root / "twist_llama"),
        "slam_llama": save_slam_llama(root / "slam_llama", n_units=64),
        "other_llama": save_twist_llama(root / "other_llama", seed=1),
        "slam_llama_70": save_slam_llama(root / "slam_llama_70", n_units=70),
    }


@pytest.fixture(scope="module")
def servers(checkpoints):
    """One running stand-in per checkpoint, started on first use and stopped with the module."""
    started: dict[str, VLLMServer] = {}

    def get(name: str) -> VLLMServer:
        if name not in started:
            started[name] = VLLMServer(checkpoints[name]).start()
        started[name].reset()
        return started[name]

    yield get
    for server in started.values():
        server.stop()


def connect(path, server, **kwargs) -> VLLMUnitLM:
    kwargs.setdefault("engine_retry", FAST_RETRY)
    return VLLMUnitLM.from_args(str(path), engine_url=server.base_url, **kwargs)


def random_sequences(n: int, n_units: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, n_units, size=int(rng.integers(2, 50))) for _ in range(n)]


def one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("name", ["twist_llama", "slam_llama"])
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_likelihoods_equal_hf_unit_lm(checkpoints, servers, name, protocol):
    hf = HFUnitLM.from_args(str(checkpoints[name]))
    lm = connect(checkpoints[name], servers(name), engine_concurrency=4)
    assert lm.vocab == hf.vocab
    seqs = random_sequences(12, hf.vocab.n_units)
    arrived: list[int] = []
    got = lm.loglikelihood(seqs, protocol, on_batch=lambda idx, batch: arrived.extend(idx))
    want = hf.loglikelihood(seqs, protocol, batch_size=5)
    assert sorted(arrived) == list(range(len(seqs)))
    for ours, theirs in zip(got, want):
        assert ours.n_tokens == theirs.n_tokens
        assert ours.sum == pytest.approx(theirs.sum, abs=1e-4)
        assert ours.mean == pytest.approx(theirs.mean, abs=1e-4)


def test_requests_are_token_ids_with_prompt_logprobs_and_bounded_concurrency(checkpoints, servers):
    server = servers("twist_llama")
    lm = connect(checkpoints["twist_llama"], server, engine_concurrency=2)
    server.reset()
    seqs = random_sequences(8, lm.vocab.n_units, seed=3)
    lm.loglikelihood(seqs, LikelihoodProtocol(True, False))
    assert server.completions == len(seqs) and server.peak_in_flight <= 2
    prompts = sorted(tuple(b["prompt"]) for b in server.bodies)
    assert prompts == sorted(tuple(lm.vocab.encode(s, True, False).tolist()) for s in seqs)
    assert all(b["prompt_logprobs"] == 1 and b["max_tokens"] == 1 for b in server.bodies)


def test_seeded_samples_are_reproducible_and_only_units_or_eos(checkpoints, servers):
    server = servers("slam_llama")
    lm = connect(checkpoints["slam_llama"], server)
    prompts = random_sequences(3, lm.vocab.n_units, seed=1)
    config = SamplingConfig(n=3, max_new_tokens=12, temperature=1.0, top_k=None)
    server.reset()
    first = lm.generate(prompts, config, seeds=[5, 6, 7])
    sampled = list(server.sampled)
    again = lm.generate(prompts, config, seeds=[5, 6, 7])
    alone = lm.generate(prompts[1:2], config, seeds=[6])
    other = lm.generate(prompts, config, seeds=[8, 9, 10])
    assert len(first) == 3 and all(len(rows) == 3 for rows in first)
    assert [[r.tolist() for r in rows] for rows in first] == [[r.tolist() for r in rows] for rows in again]
    assert [r.tolist() for r in alone[0]] == [r.tolist() for r in first[1]]
    assert [[r.tolist() for r in rows] for rows in other] != [[r.tolist() for r in rows] for rows in first]
    units_and_eos = set(range(lm.vocab.offset, lm.vocab.offset + lm.vocab.n_units)) | {lm.vocab.eos_id}
    assert sampled and all(set(ids) <= units_and_eos for ids in sampled)
    body = server.bodies[0]
    assert sorted(body["allowed_token_ids"]) == sorted(units_and_eos)
    assert body["stop_token_ids"] == [lm.vocab.eos_id] and body["return_token_ids"] is True
    assert (body["n"], body["top_k"], body["top_p"], body["max_tokens"]) == (3, -1, 1.0, 12)
    for rows in first:
        for row in rows:
            assert row.dtype == np.int64 and ((row >= 0) & (row < lm.vocab.n_units)).all()


def test_a_continuation_is_cut_at_eos(checkpoints, servers):
    server = servers("twist_llama")
    lm = connect(checkpoints["twist_llama"], server)
    off, eos = lm.vocab.offset, lm.vocab.eos_id
    answer = {"choices": [{"index": 0, "text": "", "token_ids": [off + 7, off + 3, eos], "finish_reason": "stop"}]}
    server.faults.append(raw(json.dumps(answer)))
    [[continuation]] = lm.generate([np.array([1, 2])], SamplingConfig(n=1, max_new_tokens=5), seeds=[0])
    assert continuation.tolist() == [7, 3]


@pytest.mark.parametrize("fault", [fail(429, times=2), fail(500, times=1), fail(503, times=3), hang(5.0, times=1)],
                         ids=["429x2", "500x1", "503x3", "hang"])
def test_transient_failures_are_retried(checkpoints, servers, fault):
    server = servers("twist_llama")
    lm = connect(checkpoints["twist_llama"], server, engine_timeout_s=1.0)
    seqs = random_sequences(4, lm.vocab.n_units, seed=2)
    want = lm.loglikelihood(seqs, LikelihoodProtocol())
    server.reset()
    server.faults.append(fault)
    times = fault.times
    got = lm.loglikelihood(seqs, LikelihoodProtocol())
    assert [g.sum for g in got] == [w.sum for w in want]
    assert server.completions == len(seqs) + times


def test_failures_past_the_retries_name_the_item(checkpoints, servers):
    server = servers("twist_llama")
    lm = connect(checkpoints["twist_llama"], server)
    server.faults.append(fail(500, times=10))
    with pytest.raises(UserError) as error:
        lm.loglikelihood([np.array([1, 2, 3])], LikelihoodProtocol(), names=["clips/a.wav"])
    message = one_line(error)
    assert message.startswith("clips/a.wav: no answer from the vLLM server")
    assert "HTTP 500 after 4 attempt(s)" in message


@pytest.mark.parametrize("body, expected", [
    ("{not json", "answered something that is no completion (not JSON"),
    (json.dumps({"choices": [{"index": 0, "text": ""}]}), "answered prompt_logprobs of NoneType for a prompt of"),
    (json.dumps({"choices": [{"index": 0, "prompt_logprobs": [None, {"999": {"logprob": -1.0}}, None]}]}),
     "no log-probability of prompt token"),
    (json.dumps({"object": "list"}), "answered a completion without choices"),
], ids=["not-json", "no-prompt-logprobs", "wrong-token", "no-choices"])
def test_a_malformed_answer_names_the_item(checkpoints, servers, body, expected):
    server = servers("twist_llama")
    lm = connect(checkpoints["twist_llama"], server)
    server.faults.append(raw(body, times=1))
    with pytest.raises(UserError) as error:
        lm.loglikelihood([np.array([1, 2])], LikelihoodProtocol(), names=["clips/b.wav"])
    message = one_line(error)
    assert message.startswith("clips/b.wav: ") and expected in message


def test_a_server_serving_another_model_is_one_line(checkpoints, servers):
    server = servers("other_llama")
    with pytest.raises(UserError) as error:
        connect(checkpoints["twist_llama"], server)
    message = one_line(error)
    assert str(checkpoints["other_llama"]) in message and str(checkpoints["twist_llama"]) in message


@pytest.mark.parametrize("model, served, expected", [
    ("slam_llama", "slam_llama_70", "takes token id 66, but"),
    ("slam_llama_70", "slam_llama", "the served model has 66 token ids, but"),
])
def test_a_vocabulary_size_mismatch_is_one_line(checkpoints, model, served, expected):
    # The same path on the server's side (a mount elsewhere), another vocabulary behind it.
    with VLLMServer(checkpoints[served], served_name="units", root=str(checkpoints[model])) as server:
        with pytest.raises(UserError) as error:
            connect(checkpoints[model], server)
    message = one_line(error)
    assert expected in message and "config.json has" in message


def test_adapters_are_refused_with_the_merge_hint(checkpoints, servers, tmp_path):
    server = servers("twist_llama")
    first, second = tmp_path / "round-1" / "adapter", tmp_path / "round-2" / "adapter"
    for adapter in (first, second):
        adapter.mkdir(parents=True)
        (adapter / CONFIG_FILE).write_text("{}")
    (second / ADAPTER_CHAIN_FILE).write_text(json.dumps(["../../round-1/adapter"]))
    with pytest.raises(UserError) as error:
        connect(checkpoints["twist_llama"], server, adapter=str(second))
    message = one_line(error)
    assert "chain of 1 earlier round(s)" in message and "alignslm-train merge --model" in message
    with pytest.raises(UserError, match="alignslm-train merge"):
        connect(checkpoints["twist_llama"], server, adapter=str(first))
    assert server.completions == 0


def test_slamkit_format_and_missing_server_are_one_line(tmp_path):
    slamkit = save_slam_qwen2(tmp_path / "slamkit")
    with pytest.raises(UserError, match="speech_language_model checkpoint, which vLLM cannot load"):
        VLLMUnitLM.from_args(str(slamkit), engine_url="http://127.0.0.1:9/v1")
    twist = save_twist_llama(tmp_path / "twist")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    with pytest.raises(UserError) as error:
        VLLMUnitLM.from_args(str(twist), engine_url=f"http://127.0.0.1:{port}/v1", engine_retry=RetryPolicy(0))
    assert "no vLLM server answers there" in one_line(error)
    with pytest.raises(UserError, match="pass --engine-url"):
        VLLMUnitLM.from_args(str(twist))


def test_describe_records_the_engine_and_too_long_input_is_refused(checkpoints, servers):
    server = servers("twist_llama")
    options = ModelOptions(model=str(checkpoints["twist_llama"]), model_backend="vllm", engine_url=server.base_url)
    lm = build_unit_lm(options)
    described = lm.describe()
    assert (described["engine"], described["engine_url"], described["engine_version"]) == (
        "vllm", server.base_url, "loopback")
    assert described["served_model"] == str(checkpoints["twist_llama"]) and described["max_model_len"] == 512
    assert described["vocab"]["offset"] == lm.vocab.offset and described["weights_fingerprint"]
    json.dumps(described)
    assert lm.sampler == "vllm loopback per-request seed" != HFUnitLM.sampler  # runs of two engines never mix
    with pytest.raises(UserError, match="too_long.wav: 513 tokens, more than the 511"):
        lm.loglikelihood([np.zeros(512, dtype=np.int64)], LikelihoodProtocol(), names=["too_long.wav"])
    with pytest.raises(UserError, match="prompt 0: 501 tokens . 20 new tokens exceeds"):
        lm.generate([np.zeros(500, dtype=np.int64)], SamplingConfig(max_new_tokens=20), seeds=[0])


# --- opt-in: a real vLLM server ---------------------------------------------------------------------------------

REAL_URL = os.environ.get("ALIGNSLM_VLLM_URL")
REAL_MODEL = os.environ.get("ALIGNSLM_VLLM_MODEL_DIR")


@pytest.mark.skipif(not (REAL_URL and REAL_MODEL), reason="set ALIGNSLM_VLLM_URL and ALIGNSLM_VLLM_MODEL_DIR (a "
                    "vLLM >= 0.10.2 server started with --model DIR --skip-tokenizer-init --dtype float32)")
def test_a_real_vllm_server_matches_hf_unit_lm():
    # Tolerance per token: the server's kernels differ from CPU transformers even in float32.
    atol_per_token = float(os.environ.get("ALIGNSLM_VLLM_ATOL", "2e-3"))
    hf = HFUnitLM.from_args(REAL_MODEL)
    lm = VLLMUnitLM.from_args(REAL_MODEL, engine_url=REAL_URL)
    assert lm.vocab == hf.vocab
    seqs = random_sequences(16, hf.vocab.n_units, seed=4)
    for protocol in PROTOCOLS:
        for ours, theirs in zip(lm.loglikelihood(seqs, protocol), hf.loglikelihood(seqs, protocol)):
            assert ours.n_tokens == theirs.n_tokens
            assert ours.sum == pytest.approx(theirs.sum, abs=atol_per_token * max(1, theirs.n_tokens))
    config = SamplingConfig(n=4, max_new_tokens=30)
    first = lm.generate(seqs[:3], config, seeds=[1, 2, 3])
    again = lm.generate(seqs[:3], config, seeds=[1, 2, 3])
    assert [[r.tolist() for r in rows] for rows in first] == [[r.tolist() for r in rows] for rows in again]
    assert all(len(rows) == 4 and all(len(r) <= 30 for r in rows) for rows in first)
    # every sampled id decoded to a unit: the back-end raises on anything outside units + EOS
    assert all(((r >= 0) & (r < lm.vocab.n_units)).all() for rows in first for r in rows)
