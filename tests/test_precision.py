"""GPU paths checked on a CPU: mixed precision in both training loops, causal fused attention, few host syncs, seeding.

Tolerance for bf16 vs fp32: bfloat16 keeps 8 significant bits (relative rounding <= 2^-9 ~ 0.2 % per
value). Under autocast only the matrix products run in bf16; the loss, softmax and the float32
weights and optimizer state do not, so the rounding errors average out over a mean loss and a few
hundred updates. We allow 2 % relative difference per epoch loss: ~10 bf16 ulps, well above the
differences seen here (< 0.1 %), and far below what a broken cast does (a model that does not learn,
or a loss off by a constant factor).
"""
import traceback

import numpy as np
import pytest
import torch
from torch.overrides import TorchFunctionMode

import llmbook
from llmbook.tf import tensorflow as tf
from llmbook.tf import train as tf_train
from llmbook.tf import transformer as tf_tr
from llmbook.torch import train as torch_train
from llmbook.torch import transformer as torch_tr

V = 20
RTOL = 0.02


def _batches(n=64, B=16, S=9, T=8, seed=0):
    rng = np.random.default_rng(seed)
    src, tgt = rng.integers(1, V, (n, S)), rng.integers(1, V, (n, T))
    return [((src[i:i + B], tgt[i:i + B, :-1]), tgt[i:i + B, 1:]) for i in range(0, n, B)]


def _recording(loss_fn, seen):
    def wrapped(logits, targets, **kw):
        seen.append(logits.dtype)
        return loss_fn(logits, targets, **kw)
    return wrapped


@pytest.mark.parametrize("precision, dtype", [("bf16", torch.bfloat16), ("fp16", torch.float16)])
def test_torch_mixed_precision_trains_close_to_fp32(precision, dtype):
    batches, hist, seen = _batches(), {}, {}
    for p in ("fp32", precision):
        llmbook.seed(0)
        model = torch_tr.Transformer(V, V, d_model=32, num_heads=4, d_ff=64, dropout=0.0)
        seen[p] = []
        hist[p] = torch_train.fit(model, batches, epochs=3, lr=3e-3, progress=False, valid=batches, device="cpu",
                                  precision=p, loss_fn=_recording(torch_train.cross_entropy, seen[p]))
        assert all(w.dtype == torch.float32 for w in model.parameters())        # master weights stay fp32
    assert set(seen["fp32"]) == {torch.float32} and set(seen[precision]) == {dtype}   # autocast really ran
    low, full = np.array(hist[precision]["loss"]), np.array(hist["fp32"]["loss"])
    assert np.isfinite(low).all() and low[-1] < low[0] - 0.5                  # it learns
    np.testing.assert_allclose(low, full, rtol=RTOL)
    np.testing.assert_allclose(hist[precision]["val_loss"], hist["fp32"]["val_loss"], rtol=RTOL)
    assert hist[precision]["step_loss"] != hist["fp32"]["step_loss"]          # not secretly fp32


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_tf_mixed_precision_trains_close_to_fp32(precision):
    batches, hist, seen = _batches(), {}, {}
    for p in ("fp32", precision):
        llmbook.seed(0)
        model = tf_tr.Transformer(V, V, d_model=32, num_heads=4, d_ff=64, dropout=0.0)
        seen[p] = []
        hist[p] = tf_train.fit(model, batches, epochs=3, lr=3e-3, progress=False, valid=batches, precision=p,
                               loss_fn=_recording(tf_train.cross_entropy, seen[p]))
        assert {layer.dtype_policy.name for layer in model._flatten_layers()} == {"float32"}   # policy restored
        assert all(w.dtype == "float32" for w in model.weights)
    want = tf.bfloat16 if precision == "bf16" else tf.float16
    assert set(seen["fp32"]) == {tf.float32} and set(seen[precision]) == {want}
    low, full = np.array(hist[precision]["loss"]), np.array(hist["fp32"]["loss"])
    assert np.isfinite(low).all() and low[-1] < low[0] - 0.3
    np.testing.assert_allclose(low, full, rtol=RTOL)
    np.testing.assert_allclose(hist[precision]["val_loss"], hist["fp32"]["val_loss"], rtol=RTOL)


def test_positional_encoding_follows_the_input_dtype():
    pe = tf_tr.PositionalEncoding(8, 16)
    pe.dtype_policy = "mixed_bfloat16"                 # as fit(precision="bf16") sets it
    out = pe(tf.zeros([2, 5, 8], tf.bfloat16))         # a float32 table added to bf16 would raise
    assert out.dtype == tf.bfloat16
    np.testing.assert_allclose(tf.cast(out, tf.float32).numpy()[0], tf_tr.sinusoidal_encoding(16, 8)[:5], atol=1e-2)


@pytest.mark.parametrize("module", [torch_train, tf_train], ids=["torch", "tf"])
def test_precision_names(module):
    assert module.resolve_precision("auto", "cpu") == "fp32"      # no bf16 autocast on CPUs by default
    assert module.resolve_precision("bf16", "cpu") == "bf16"
    with pytest.raises(ValueError, match=r"precision must be one of \('fp32', 'bf16', 'fp16', 'auto'\)"):
        module.resolve_precision("float16", "cpu")


def test_auto_is_bf16_on_a_bf16_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert torch_train.resolve_precision("auto", "cuda") == "bf16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert torch_train.resolve_precision("auto", "cuda") == "fp32"      # e.g. a T4


# -- host syncs ------------------------------------------------------------------------------------------
class _CountSyncs(TorchFunctionMode):
    """Counts calls that copy a value to the host (what stalls a GPU pipeline).

    torch.optim's own `.item()` of its step counters is not counted: those counters live on the CPU
    on a GPU too (Adam without `capturable`), so reading them does not wait for the device.
    """
    SYNCS = {"item", "tolist", "cpu", "numpy", "__bool__", "__int__", "__float__"}

    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if getattr(func, "__name__", "") in self.SYNCS:
            caller = traceback.extract_stack(limit=2)[0].filename.replace("\\", "/")
            self.count += "/torch/optim/" not in caller
        return func(*args, **(kwargs or {}))


def test_fit_reads_the_loss_every_sync_every_steps_not_every_step():
    steps = 2 * torch_train.SYNC_EVERY + 7
    rng = np.random.default_rng(0)
    batches = [(rng.integers(0, 10, (4, 3)), rng.integers(0, 10, (4,))) for _ in range(steps)]
    from llmbook.torch.lm import NNLM
    with _CountSyncs() as syncs:
        hist = torch_train.fit(NNLM(10, 3, 4, 8), batches, epochs=1, progress=False, device="cpu")
    assert len(hist["step_loss"]) == steps and np.isfinite(hist["step_loss"]).all()
    assert syncs.count <= 3 * 2 + 6, f"{syncs.count} host syncs for {steps} steps"   # 3 reads, + the epoch totals


def test_fit_still_stops_on_a_non_finite_loss():
    from llmbook.torch.lm import NNLM
    batches = [(np.zeros((2, 3), np.int64), np.zeros(2, np.int64))] * 3
    nan_loss = lambda logits, targets, **kw: logits.sum() * float("nan")
    with pytest.raises(FloatingPointError, match="training loss became nan at step 0"):
        torch_train.fit(NNLM(10, 3, 4, 8), batches, progress=False, device="cpu", loss_fn=nan_loss)


# -- causal attention ------------------------------------------------------------------------------------
@pytest.mark.parametrize("T, S", [(6, 6), (1, 6), (3, 6)])
@pytest.mark.parametrize("padding", [False, True])
def test_causal_fused_attention_equals_the_masked_from_scratch_path(T, S, padding, monkeypatch):
    torch.manual_seed(0)
    mha = torch_tr.MultiHeadAttention(16, 4, causal=True).eval()
    q, kv_in = torch.randn(2, T, 16), torch.randn(2, S, 16)
    kv = mha.keys_values(kv_in, kv_in)                                   # (B, h, S, d_k) each
    pad = torch.ones(2, 1, 1, S, dtype=torch.bool)
    pad[1, ..., -2:] = False                                             # row 1: its last two keys are padding
    mask = pad if padding else None
    with torch.no_grad():
        ref, w = mha(q, attn_mask=mask, kv=kv)                           # from scratch, (B, T, D), (B, h, T, S)
        explicit = torch_tr.causal_mask(T, S=S) if mask is None else mask & torch_tr.causal_mask(T, S=S)
        plain = torch_tr.MultiHeadAttention(16, 4).eval()
        plain.load_state_dict(mha.state_dict())
        want, _ = plain(q, attn_mask=explicit, kv=kv)                    # the explicit (T, S) mask
        calls = []
        real = torch.nn.functional.scaled_dot_product_attention
        monkeypatch.setattr(torch_tr.F, "scaled_dot_product_attention",
                            lambda *a, **k: calls.append(k) or real(*a, **k))
        mha.fused = True
        fused, none = mha(q, attn_mask=mask, kv=kv)
    assert none is None
    torch.testing.assert_close(ref, want, rtol=0, atol=0)
    torch.testing.assert_close(fused, ref, rtol=1e-5, atol=1e-6)
    assert (w[..., :, :][..., torch.arange(T)[:, None] + S - T < torch.arange(S)] == 0).all()   # no future
    (kw,) = calls
    if not padding and T == S:
        assert kw.get("is_causal") is True and kw.get("attn_mask") is None   # Flash-eligible: no mask tensor
    elif not padding and T == 1:
        assert kw.get("attn_mask") is None and not kw.get("is_causal")      # one new query sees every key
    else:
        assert kw.get("attn_mask") is not None


def test_tf_causal_attention_equals_the_explicit_mask():
    mha = tf_tr.MultiHeadAttention(16, 4, causal=True)
    x = tf.random.stateless_normal([2, 5, 16], seed=[1, 2])
    got, w = mha(x, x, x)
    mha.causal = False
    want, _ = mha(x, x, x, attn_mask=tf_tr.causal_mask(5))
    np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-6)
    assert np.all(np.triu(w.numpy()[0, 0], k=1) == 0)
    kv = mha.keys_values(x, x)
    mha.causal = True
    last, _ = mha(x[:, -2:], kv=kv)                                      # the last 2 of 5 positions
    np.testing.assert_allclose(last.numpy(), got.numpy()[:, -2:], atol=1e-6)
    assert tf_tr.causal_mask(2, S=5).numpy().tolist() == torch_tr.causal_mask(2, S=5).tolist()


def test_transformer_fused_training_pass_equals_from_scratch():
    torch.manual_seed(0)
    model = torch_tr.Transformer(V, V, d_model=16, num_heads=2, d_ff=32, dropout=0.0).eval()
    src, tgt = torch.randint(1, V, (3, 7)), torch.randint(1, V, (3, 6))
    with torch.no_grad():
        ref = model(src, tgt)
        for m in model.modules():
            if isinstance(m, torch_tr.MultiHeadAttention):
                m.fused = True
        fused = model(src, tgt)
    torch.testing.assert_close(fused, ref, rtol=1e-5, atol=1e-5)


# -- seeding ---------------------------------------------------------------------------------------------
def test_seed_is_deterministic_on_cpu_by_default_and_switchable():
    try:
        llmbook.seed(0)
        assert torch.are_deterministic_algorithms_enabled() == (not torch.cuda.is_available())
        llmbook.seed(0, deterministic=False)
        assert not torch.are_deterministic_algorithms_enabled() and torch.backends.cudnn.benchmark
        llmbook.seed(0, deterministic=True)
        assert torch.are_deterministic_algorithms_enabled() and not torch.backends.cudnn.benchmark
    finally:
        llmbook.seed(0)
