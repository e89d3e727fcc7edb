"""Every llmbook PyTorch entry point keeps tensors on the model's device (checked on a CPU with a pretend GPU).

On a CUDA runtime, a tensor built on the CPU and fed to a model on the GPU raises, and `.numpy()` of
a GPU tensor raises. `tests/device_guard.PretendGPU` reproduces both failures on a CPU-only machine
while computing the same numbers, so each test below also checks that the guarded run gives exactly
the unguarded result.
"""
import numpy as np
import pytest
import torch

import llmbook
from device_guard import ACCEL, DeviceMixError, PretendGPU
from llmbook.sampling import sample_tokens
from llmbook.torch import decoding
import llmbook.torch
from llmbook.torch.attention import Seq2SeqAttention
from llmbook.torch.checkpoint import load_checkpoint, save_checkpoint
from llmbook.torch.cnn import CNNEncoder
from llmbook.torch.lm import NNLM
from llmbook.torch.rnn import CharRNN, hidden_grad_norms, next_logits_fn
from llmbook.torch.seq2seq import Seq2Seq
from llmbook.torch.train import evaluate, fit
from llmbook.torch.transformer import Transformer

BOS, EOS = 2, 3
SIZES = dict(src_vocab_size=11, tgt_vocab_size=9)


def _seq2seq_batches(n=24, B=8, S=6, T=5, seed=0):
    rng = np.random.default_rng(seed)
    src = rng.integers(4, SIZES["src_vocab_size"], (n, S))
    src[1, 4:] = 0                                                     # a padded source
    tgt = rng.integers(4, SIZES["tgt_vocab_size"], (n, T + 1))
    return [((src[i:i + B], tgt[i:i + B, :-1]), tgt[i:i + B, 1:]) for i in range(0, n, B)], src


def _models():
    llmbook.seed(0)
    return {"Seq2Seq": Seq2Seq(**SIZES, embed_dim=8, hidden_dim=12),
            "Seq2SeqAttention": Seq2SeqAttention(**SIZES, embed_dim=8, hidden_dim=12),
            "Transformer": Transformer(**SIZES, d_model=16, num_heads=2, d_ff=32, dropout=0.1, max_len=16)}


def _to_accel(model):
    """Inside the guard: the model on the (pretend) GPU, as `fit` or `load_checkpoint` would leave it."""
    return model.to(llmbook.torch.device())


# -- the guard itself ------------------------------------------------------------------------------------
def test_guard_catches_cpu_inputs_and_numpy_of_gpu_tensors():
    llmbook.seed(0)
    model = CharRNN(7, 4, 6)
    x = np.array([[1, 2, 3]])
    with PretendGPU() as guard:
        model = _to_accel(model)
        dev = next(model.parameters()).device
        assert dev == ACCEL and llmbook.torch.device() == ACCEL
        with pytest.raises(DeviceMixError, match="same device"):
            model(torch.as_tensor(x))                                  # the bug of issue 15: CPU ids, GPU model
        logits = model(torch.as_tensor(x, device=dev))                 # (1, 3, V)
        with pytest.raises(DeviceMixError, match=r"\.cpu\(\)"):
            logits.detach().numpy()
        got = logits.detach().cpu().numpy()
        assert guard.checked_ops > 0
    with torch.no_grad():
        np.testing.assert_array_equal(got, model(torch.as_tensor(x)).numpy())   # same numbers without the guard
    assert next(model.parameters()).device.type == "cpu"               # nothing really moved


# -- training and evaluation -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["Seq2Seq", "Seq2SeqAttention", "Transformer"])
def test_fit_and_evaluate_stay_on_the_model_device(name):
    batches, _ = _seq2seq_batches()
    plain = _models()[name]
    llmbook.seed(1)
    want = fit(plain, batches, epochs=2, lr=3e-3, progress=False, valid=batches[:1], device="cpu")
    guarded = _models()[name]
    llmbook.seed(1)
    with PretendGPU() as guard:
        got = fit(guarded, batches, epochs=2, lr=3e-3, progress=False, valid=batches[:1])   # default device
        assert next(guarded.parameters()).device == ACCEL
        val = evaluate(guarded, batches)
    assert guard.checked_ops > 50
    assert got["loss"] == want["loss"] and got["val_loss"] == want["val_loss"]
    assert got["step_loss"] == want["step_loss"]
    assert val == evaluate(plain, batches)


def test_fit_of_language_models_and_cnn_stays_on_the_model_device():
    rng = np.random.default_rng(3)
    lm_batches = [(rng.integers(0, 12, (4, 3)), rng.integers(0, 12, (4,))) for _ in range(3)]
    char_batches = [(rng.integers(0, 12, (4, 7)), rng.integers(0, 12, (4, 7))) for _ in range(3)]
    cls_batches = [(rng.integers(1, 12, (4, 9)), rng.integers(0, 3, (4,))) for _ in range(3)]
    for make, batches in ((lambda: NNLM(12, 3, 5, 8), lm_batches),
                          (lambda: CharRNN(12, 5, 8, cell="lstm"), char_batches),
                          (lambda: CNNEncoder(12, 5, 4, widths=(2, 3)), cls_batches)):
        llmbook.seed(2)
        want = fit(make(), batches, epochs=1, progress=False, device="cpu")
        llmbook.seed(2)
        with PretendGPU():
            got = fit(make(), batches, epochs=1, progress=False)
        assert got["step_loss"] == want["step_loss"]


# -- decoding --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["Seq2Seq", "Seq2SeqAttention", "Transformer"])
def test_greedy_and_beam_search_stay_on_the_model_device(name):
    _, src = _seq2seq_batches()
    model = _models()[name].eval()
    want_g = decoding.greedy_decode(model, src[:5], bos_id=BOS, eos_id=EOS, max_len=6)
    want_b = decoding.beam_search(model, src[:5], bos_id=BOS, eos_id=EOS, k=3, max_len=6).sequences
    with PretendGPU() as guard:
        model = _to_accel(model)
        got_g = decoding.greedy_decode(model, src[:5], bos_id=BOS, eos_id=EOS, max_len=6)
        got_b = decoding.beam_search(model, src[:5], bos_id=BOS, eos_id=EOS, k=3, max_len=6).sequences
        if name == "Seq2SeqAttention":
            w = model.attention_weights(src[:2], np.full((2, 3), BOS))   # (B, T, S), on the device
            assert guard.on_accel(w)
            w.cpu().numpy()
    assert guard.checked_ops > 0
    assert got_g == want_g and got_b == want_b


# -- checkpoints -----------------------------------------------------------------------------------------
def test_load_checkpoint_puts_the_model_on_the_device(tmp_path):
    llmbook.seed(4)
    path = save_checkpoint(Seq2Seq(**SIZES, embed_dim=8, hidden_dim=12), tmp_path / "m.npz",
                           **SIZES, embed_dim=8, hidden_dim=12)
    _, src = _seq2seq_batches()
    on_cpu = load_checkpoint(Seq2Seq, path, device="cpu")
    assert {p.device.type for p in on_cpu.parameters()} == {"cpu"}
    want = decoding.greedy_decode(on_cpu, src[:4], bos_id=BOS, eos_id=EOS, max_len=5)
    with PretendGPU():
        model = load_checkpoint(Seq2Seq, path)                          # device=None: llmbook.torch.device()
        assert {p.device for p in model.parameters()} == {ACCEL}
        assert not model.training
        got = decoding.greedy_decode(model, src[:4], bos_id=BOS, eos_id=EOS, max_len=5)
    assert got == want


def test_shipped_checkpoint_runs_on_the_device():
    with PretendGPU():
        model = load_checkpoint(NNLM, llmbook.checkpoint_path("nnlm_torch.npz"))
        dev = next(model.parameters()).device
        ids = torch.zeros(2, model.context if hasattr(model, "context") else 3, dtype=torch.long, device=dev)
        with torch.no_grad():
            logits = model(ids)                                         # (2, V)
        assert logits.cpu().numpy().shape[0] == 2


# -- the recurrent-network helpers -----------------------------------------------------------------------
def test_rnn_helpers_stay_on_the_model_device():
    llmbook.seed(5)
    model = CharRNN(9, 4, 6, cell="lstm")
    ids = np.random.default_rng(0).integers(0, 9, (3, 8))
    want_norms = hidden_grad_norms(model, torch.as_tensor(ids), torch.as_tensor(ids))
    want_text = sample_tokens(next_logits_fn(model), [1, 2], 6, temperature=1.0,
                              seed=7)
    with PretendGPU() as guard:
        model = _to_accel(model)
        got_norms = hidden_grad_norms(model, ids, ids)                # NumPy in, NumPy out
        got_text = sample_tokens(next_logits_fn(model), [1, 2], 6, temperature=1.0,
                                 seed=7)
    assert guard.checked_ops > 0
    np.testing.assert_array_equal(got_norms, want_norms)
    assert got_text == want_text


def test_device_function_prefers_an_accelerator():
    dev = llmbook.torch.device()
    if torch.cuda.is_available():
        assert dev.type == "cuda"
    elif torch.backends.mps.is_available():
        assert dev.type == "mps"
    else:
        assert dev == torch.device("cpu")
