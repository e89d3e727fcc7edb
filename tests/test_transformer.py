"""The Transformer twins: masks, causality, library parity, PyTorch == TensorFlow, incremental == full decoding."""
from functools import partial

import numpy as np
import pytest
import tensorflow as tf
import torch

import llmbook
from llmbook.data.seq2seq import BOS_ID, EOS_ID, PAD_ID
from llmbook.parity import tf_to_torch, torch_to_tf
from llmbook.tf import decoding as tf_decoding
from llmbook.tf import train as tf_train
from llmbook.tf import transformer as tf_tr
from llmbook.tf.checkpoint import load_checkpoint as tf_load, save_checkpoint as tf_save
from llmbook.torch import decoding as torch_decoding
from llmbook.torch import train as torch_train
from llmbook.torch import transformer as torch_tr
from llmbook.torch.checkpoint import load_checkpoint as torch_load, save_checkpoint as torch_save

from seq2seq_helpers import padded_batch, torch_logits

SIZES = dict(src_vocab_size=23, tgt_vocab_size=17, d_model=16, num_heads=4, num_encoder_layers=2,
             num_decoder_layers=2, d_ff=24, dropout=0.1, max_len=32)


batch = partial(padded_batch, SIZES)          # (src (B, S), tgt (B, T)) ids, rows 1 and 3 padded


def twins(learned=False, seed=0, sharpen=1.0):
    """A PyTorch Transformer and its TF twin with the same weights (output made peakier by `sharpen`)."""
    llmbook.seed(seed)
    t = torch_tr.Transformer(**SIZES, learned_positions=learned).eval()
    with torch.no_grad():
        t.decoder.embed.weight.mul_(sharpen)
    f = tf_tr.Transformer(**SIZES, learned_positions=learned)
    torch_to_tf(t, f)
    return t, f


@pytest.fixture(scope="module")
def models():
    return twins()


# ---- scaled dot-product attention and masks -----------------------------------------------------------

def qkv(B=2, h=3, T=4, S=5, d=8, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape).astype("float32") for shape in ((B, h, T, d), (B, h, S, d), (B, h, S, d))]


def reference_attention(q, k, v, mask=None):
    """NumPy, from the formula: softmax over keys j of q_i . k_j / sqrt(d_k), then the weighted sum of values."""
    scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    w = np.exp(scores - scores.max(-1, keepdims=True))
    w = w / w.sum(-1, keepdims=True)
    return w @ v, w


@pytest.mark.parametrize("framework", ["torch", "tf"])
def test_attention_matches_the_formula_and_rows_sum_to_one(framework):
    q, k, v = qkv()
    mask = np.ones((2, 1, 4, 5), bool)
    mask[1, :, :, 3:] = False                       # the second item's last two keys are padding
    want, want_w = reference_attention(q, k, v, mask)
    if framework == "torch":
        out, w = torch_tr.scaled_dot_product_attention(*map(torch.as_tensor, (q, k, v)), torch.as_tensor(mask))
    else:
        out, w = tf_tr.scaled_dot_product_attention(q, k, v, tf.constant(mask))
    out, w = np.asarray(out), np.asarray(w)
    assert np.abs(out - want).max() <= 1e-5, "attention output differs from softmax(q k^T / sqrt(d_k)) v"
    assert np.allclose(w.sum(-1), 1.0, atol=1e-6), "weights do not sum to 1 over the key axis: softmax over the wrong axis?"
    assert np.all(w[1, :, :, 3:] == 0.0), "padding keys got non-zero attention weight"


@pytest.mark.parametrize("framework", ["torch", "tf"])
def test_padding_and_future_get_exactly_zero_weight(models, framework):
    src, tgt = batch()
    model = models[0] if framework == "torch" else models[1]
    if framework == "torch":
        with torch.no_grad():
            _, maps = model.attention(torch.as_tensor(src), torch.as_tensor(tgt))
    else:
        _, maps = model.attention(src, tgt)
    pad = src == PAD_ID                                                  # (B, S)
    T = tgt.shape[1]
    future = np.triu(np.ones((T, T), bool), k=1)                         # (T, T): j > i
    for name in ("encoder", "cross"):
        for w in maps[name]:
            w = np.asarray(w)                                           # (B, h, *, S)
            assert np.all(w[np.broadcast_to(pad[:, None, None, :], w.shape)] == 0.0), f"{name}: padding attended"
    for w in maps["decoder"]:
        w = np.asarray(w)                                               # (B, h, T, T)
        assert np.all(w[..., future] == 0.0), "decoder self-attention looks at future positions"
        assert np.allclose(w.sum(-1), 1.0, atol=1e-6)


@pytest.mark.parametrize("framework", ["torch", "tf"])
def test_decoder_output_at_t_ignores_later_tokens(models, framework):
    src, tgt = batch()
    changed = tgt.copy()
    changed[:, 3:] = (changed[:, 3:] + 5) % SIZES["tgt_vocab_size"]      # change every token after position 2
    if framework == "torch":
        a, b = torch_logits(models[0], src, tgt), torch_logits(models[0], src, changed)
    else:
        a, b = models[1](src, tgt).numpy(), models[1](src, changed).numpy()
    assert np.abs(a[:, :3] - b[:, :3]).max() == 0.0, "logits at t < 3 changed when only tokens at t >= 3 did"
    assert np.abs(a[:, 3:] - b[:, 3:]).max() > 1e-3                      # the later positions do see them


@pytest.mark.parametrize("framework", ["torch", "tf"])
def test_padding_does_not_change_the_translation(models, framework):
    src, tgt = batch()
    padded = np.concatenate([src, np.full((src.shape[0], 3), PAD_ID)], axis=1)   # 3 more padding columns
    if framework == "torch":
        a, b = torch_logits(models[0], src, tgt), torch_logits(models[0], padded, tgt)
    else:
        a, b = models[1](src, tgt).numpy(), models[1](padded, tgt).numpy()
    assert np.abs(a - b).max() <= 1e-5, "extra source padding changed the logits: is the source mask applied?"


def test_causal_and_padding_masks():
    assert torch_tr.causal_mask(3).tolist() == [[True, False, False], [True, True, False], [True, True, True]]
    assert tf_tr.causal_mask(3).numpy().tolist() == torch_tr.causal_mask(3).tolist()
    ids = np.array([[5, 6, 0], [7, 0, 0]])
    want = [[[[True, True, False]]], [[[True, False, False]]]]
    assert torch_tr.padding_mask(torch.as_tensor(ids), 0).tolist() == want
    assert tf_tr.padding_mask(tf.constant(ids), 0).numpy().tolist() == want


# ---- multi-head attention: from scratch == library -----------------------------------------------------

def test_torch_mha_equals_nn_multiheadattention():
    llmbook.seed(1)
    mha = torch_tr.MultiHeadAttention(16, 4).eval()
    lib = torch_tr.library_twin(mha)
    rng = np.random.default_rng(0)
    x, mem = (torch.as_tensor(rng.standard_normal(s).astype("float32")) for s in ((3, 5, 16), (3, 7, 16)))
    keep = torch.ones(3, 7, dtype=torch.bool)
    keep[1, 4:] = False
    with torch.no_grad():
        ours, w = mha(x, mem, mem, attn_mask=keep[:, None, None, :])
        # the library's boolean key_padding_mask means the opposite: True = ignore this key
        theirs, lib_w = lib(x, mem, mem, key_padding_mask=~keep, average_attn_weights=False)
        causal_ours, _ = mha(x, x, x, attn_mask=torch_tr.causal_mask(5))
        causal_lib, _ = lib(x, x, x, attn_mask=~torch_tr.causal_mask(5))
    assert (ours - theirs).abs().max() <= 1e-5, "from-scratch MHA != torch.nn.MultiheadAttention (in_proj layout?)"
    assert (w - lib_w).abs().max() <= 1e-5
    assert (causal_ours - causal_lib).abs().max() <= 1e-5


def test_tf_mha_equals_keras_multiheadattention():
    llmbook.seed(1)
    mha = tf_tr.MultiHeadAttention(16, 4)
    lib = tf_tr.library_twin(mha)
    rng = np.random.default_rng(0)
    x, mem = (rng.standard_normal(s).astype("float32") for s in ((3, 5, 16), (3, 7, 16)))
    keep = np.ones((3, 7), bool)
    keep[1, 4:] = False
    ours, w = mha(x, mem, mem, attn_mask=tf.constant(keep[:, None, None, :]))
    theirs, lib_w = lib(x, mem, mem, attention_mask=np.broadcast_to(keep[:, None, :], (3, 5, 7)),
                        return_attention_scores=True)
    assert np.abs(ours.numpy() - theirs.numpy()).max() <= 1e-5, "from-scratch MHA != keras MultiHeadAttention"
    assert np.abs(w.numpy() - lib_w.numpy()).max() <= 1e-5
    causal = tf_tr.causal_mask(5)
    ours, _ = mha(x, x, x, attn_mask=causal)
    theirs = lib(x, x, x, attention_mask=np.broadcast_to(causal.numpy(), (3, 5, 5)))
    assert np.abs(ours.numpy() - theirs.numpy()).max() <= 1e-5


def test_torch_mha_equals_tf_mha():
    llmbook.seed(2)
    t, f = torch_tr.MultiHeadAttention(16, 4).eval(), tf_tr.MultiHeadAttention(16, 4)
    torch_to_tf(t, f)
    x = np.random.default_rng(0).standard_normal((2, 6, 16)).astype("float32")
    with torch.no_grad():
        a, _ = t(torch.as_tensor(x), torch.as_tensor(x), torch.as_tensor(x))
    b, _ = f(x, x, x)
    assert np.abs(a.numpy() - b.numpy()).max() <= 1e-5


# ---- the whole model ----------------------------------------------------------------------------------

@pytest.mark.parametrize("learned", [False, True])
def test_torch_equals_tf_with_copied_weights(learned):
    t, f = twins(learned=learned)
    src, tgt = batch(B=8, seed=1)
    gap = np.abs(torch_logits(t, src, tgt) - f(src, tgt).numpy()).max()
    assert gap <= 1e-5, f"Transformer: PyTorch and TF logits differ by {gap:.2e} with the same weights"
    back = torch_tr.Transformer(**SIZES, learned_positions=learned)
    tf_to_torch(f, back)
    assert np.abs(torch_logits(back, src, tgt) - torch_logits(t, src, tgt)).max() == 0.0


def test_shapes_both_frameworks(models):
    t, f = models
    src, tgt = batch()
    assert torch_logits(t, src, tgt).shape == (5, 6, 17)
    assert tuple(f(src, tgt).shape) == (5, 6, 17)
    h, dk = SIZES["num_heads"], SIZES["d_model"] // SIZES["num_heads"]
    for model, as_in in ((t, torch.as_tensor), (f, tf.constant)):
        mem = model.encode(as_in(src))
        assert tuple(mem["mask"].shape) == (5, 1, 1, 8)
        assert [tuple(k.shape) for k, _ in mem["cross"]] == [(5, h, 8, dk)] * 2
        state = model.initial_state(mem)
        assert [tuple(k.shape) for k, _ in state] == [(5, h, 0, dk)] * 2
        logits, state = model.step(as_in(np.full(5, BOS_ID)), mem, state)
        assert tuple(logits.shape) == (5, 17)
        assert [tuple(v.shape) for _, v in state] == [(5, h, 1, dk)] * 2


@pytest.mark.parametrize("framework", ["torch", "tf"])
def test_incremental_decoding_equals_full_recomputation(models, framework):
    src, tgt = batch(B=6, T=9, seed=3)
    model = models[0] if framework == "torch" else models[1]
    as_in = torch.as_tensor if framework == "torch" else tf.constant
    full = torch_logits(model, src, tgt) if framework == "torch" else model(src, tgt).numpy()   # (B, T, V)
    with torch.no_grad():
        memory = model.encode(as_in(src))
        state = model.initial_state(memory)
        steps = []
        for t in range(tgt.shape[1]):
            logits, state = model.step(as_in(tgt[:, t]), memory, state)    # one position at a time, KV cache
            steps.append(np.asarray(logits))
    gap = np.abs(np.stack(steps, axis=1) - full).max()
    assert gap <= 1e-5, f"{framework}: cached step-by-step logits differ from the full pass by {gap:.2e}"


def test_greedy_and_beam_decodes_agree_across_frameworks():
    t, f = twins(seed=4, sharpen=4.0)
    src, _ = batch(B=6, seed=5)
    kw = dict(bos_id=BOS_ID, eos_id=EOS_ID, max_len=12)
    greedy_t = torch_decoding.greedy_decode(t, src, **kw)
    assert greedy_t == tf_decoding.greedy_decode(f, src, **kw)
    assert any(len(s) > 1 for s in greedy_t)
    for k in (1, 3):
        bt = torch_decoding.beam_search(t, src, k=k, alpha=0.6, **kw)
        bf = tf_decoding.beam_search(f, src, k=k, alpha=0.6, **kw)
        assert bt.sequences == bf.sequences
        assert np.abs(np.asarray(bt.scores) - np.asarray(bf.scores)).max() <= 1e-4
    assert torch_decoding.beam_search(t, src, k=1, **kw).sequences == greedy_t


def test_tf_step_traces_a_bounded_number_of_times():
    _, f = twins(seed=6)
    src, _ = batch(B=4, seed=7)
    tf_decoding.greedy_decode(f, src, bos_id=BOS_ID, eos_id=-1, max_len=10)    # never stops early: 10 steps
    tf_decoding.beam_search(f, src, bos_id=BOS_ID, eos_id=-1, k=2, max_len=10)
    traces = tf_decoding._stepper(f).experimental_get_tracing_count()
    assert traces <= 4, f"the growing key/value cache retraced model.step {traces} times in 20 steps"


def test_checkpoints_round_trip(tmp_path, models):
    t, f = models
    src, tgt = batch()
    torch_save(t, tmp_path / "t.npz", **SIZES)
    tf_save(f, tmp_path / "f.npz", **SIZES)
    t2, f2 = torch_load(torch_tr.Transformer, tmp_path / "t.npz"), tf_load(tf_tr.Transformer, tmp_path / "f.npz")
    assert np.abs(torch_logits(t2, src, tgt) - torch_logits(t, src, tgt)).max() <= 1e-2     # float16 weights
    assert np.abs(f2(src, tgt).numpy() - torch_logits(t2, src, tgt)).max() <= 1e-5


# ---- positional encoding --------------------------------------------------------------------------------

def test_sinusoidal_encoding_formula_and_twins():
    pe = torch_tr.sinusoidal_encoding(50, 8)
    assert pe.shape == (50, 8)
    assert np.isclose(pe[7, 2], np.sin(7 / 10000 ** (2 / 8))) and np.isclose(pe[7, 3], np.cos(7 / 10000 ** (2 / 8)))
    assert np.array_equal(pe, tf_tr.sinusoidal_encoding(50, 8))
    # a fixed offset is a rotation: PE[pos + k] . PE[pos] depends on k only
    dots = [pe[p + 3] @ pe[p] for p in range(20)]
    assert np.allclose(dots, dots[0], atol=1e-5)


# ---- training extras: label smoothing and the warm-up schedule ------------------------------------------

def test_label_smoothing_is_the_same_loss_in_both_frameworks():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((4, 5, 11)).astype("float32")
    targets = rng.integers(0, 11, (4, 5))
    targets[0, 3:] = PAD_ID
    for eps in (0.0, 0.1, 0.3):
        a = float(torch_train.cross_entropy(torch.as_tensor(logits), torch.as_tensor(targets), PAD_ID, label_smoothing=eps))
        b = float(tf_train.cross_entropy(tf.constant(logits), tf.constant(targets), PAD_ID, label_smoothing=eps))
        # the definition: (1 - eps) NLL + eps * mean over the vocabulary of -log p, over non-padding tokens
        logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
        keep = targets != PAD_ID
        nll = -np.take_along_axis(logp, targets[..., None], -1)[..., 0]
        want = ((1 - eps) * nll - eps * logp.mean(-1))[keep].mean()
        assert abs(a - want) <= 1e-5 and abs(b - want) <= 1e-5, f"eps={eps}: torch {a}, tf {b}, formula {want}"


def test_warmup_schedule():
    for sched in (torch_train.warmup_inverse_sqrt(1e-3, 100), tf_train.warmup_inverse_sqrt(1e-3, 100)):
        assert sched(1) == pytest.approx(1e-5) and sched(100) == pytest.approx(1e-3)
        assert sched(400) == pytest.approx(5e-4)                          # sqrt(100 / 400) = 1/2
    d, w = 512, 4000                                                     # Vaswani et al.'s formula
    vaswani = lambda s: d ** -0.5 * min(s ** -0.5, s * w ** -1.5)        # noqa: E731
    ours = torch_train.warmup_inverse_sqrt((d * w) ** -0.5, w)
    assert all(ours(s) == pytest.approx(vaswani(s)) for s in (1, 100, 4000, 10000))
    with pytest.raises(ValueError, match="warmup_steps"):
        torch_train.warmup_inverse_sqrt(1e-3, 0)


@pytest.mark.parametrize("framework", ["torch", "tf"])
def test_fit_applies_schedule_and_smoothing(framework):
    llmbook.seed(0)
    src, tgt = batch(B=8, seed=8)
    data = [((src, tgt), tgt)] * 3
    small = dict(SIZES, num_encoder_layers=1, num_decoder_layers=1)   # a smaller graph for TF to trace
    if framework == "torch":
        model = torch_tr.Transformer(**small)
        opt = torch.optim.Adam(model.parameters())
        hist = torch_train.fit(model, data, epochs=2, optimizer=opt, schedule=lambda s: 1e-3 * s,
                               label_smoothing=0.1, ignore_index=PAD_ID, progress=False)
        lr = opt.param_groups[0]["lr"]
    else:
        import keras
        model = tf_tr.Transformer(**small)
        opt = keras.optimizers.Adam()
        hist = tf_train.fit(model, data, epochs=2, optimizer=opt, schedule=lambda s: 1e-3 * s,
                            label_smoothing=0.1, ignore_index=PAD_ID, progress=False)
        lr = float(opt.learning_rate.numpy())
    assert lr == pytest.approx(6e-3)                                    # 6 steps, schedule(6)
    assert hist["step_loss"][-1] < hist["step_loss"][0]
    with pytest.raises(ValueError, match="label_smoothing"):
        (torch_train if framework == "torch" else tf_train).fit(model, data, label_smoothing=1.5, progress=False)


# ---- clear errors ------------------------------------------------------------------------------------------

def test_clear_errors(models):
    t, f = models
    with pytest.raises(ValueError, match="divisible"):
        torch_tr.MultiHeadAttention(10, 4)
    with pytest.raises(ValueError, match="divisible"):
        tf_tr.MultiHeadAttention(10, 4)
    bad = np.array([[5, 6], [0, 0]])
    with pytest.raises(ValueError, match="all padding"):
        t(torch.as_tensor(bad), torch.as_tensor(bad))
    with pytest.raises(ValueError, match="all padding"):
        f(bad, bad)
    with pytest.raises(ValueError, match="source ids of shape"):
        t(torch.zeros(3, dtype=torch.long), torch.zeros(1, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="max_len"):
        t(torch.ones(1, 40, dtype=torch.long), torch.ones(1, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="boolean"):
        torch_tr.scaled_dot_product_attention(*map(torch.as_tensor, qkv()), torch.ones(4, 5))
    with pytest.raises(ValueError, match="boolean"):
        tf_tr.scaled_dot_product_attention(*qkv(), tf.ones([4, 5]))
    with pytest.raises(ValueError, match="even d_model"):
        torch_tr.sinusoidal_encoding(10, 7)


def test_fused_torch_attention_gives_the_same_model_output(models):
    t = models[0]
    src, tgt = batch()
    plain = torch_logits(t, src, tgt)
    mhas = [m for m in t.modules() if isinstance(m, torch_tr.MultiHeadAttention)]
    try:
        for m in mhas:
            m.fused = True                       # F.scaled_dot_product_attention, same boolean mask convention
        fused = torch_logits(t, src, tgt)
    finally:
        for m in mhas:
            m.fused = False
    assert np.abs(fused - plain).max() <= 1e-5


@pytest.mark.filterwarnings("ignore:Widget.widgets is deprecated")
def test_frame_selector_links_every_level_to_its_dropdown():
    import ipywidgets as widgets
    from llmbook.widgets import HAS_STACK, frame_selector, shaded_heatmap_html
    frames = {(s, k, h): shaded_heatmap_html([[1.0, 0.0], [0.25, 0.75]], ["a", "b"], ["x", "y"], title=f"{s}{k}{h}")
              for s in ("s1", "s2") for k in ("enc", "cross") for h in ("h1", "h2", "h3") if (k, h) != ("cross", "h3")}
    box = frame_selector(frames, ["sentence", "kind", "head"], missing="none here")
    pickers, top = box.children[0].children, box.children[1]
    assert [p.options for p in pickers] == [("s1", "s2"), ("enc", "cross"), ("h1", "h2", "h3")]
    leaf = top.children[1].children[1].children[2]                # s2 / cross / h3: not in frames
    assert isinstance(leaf, widgets.HTML) and "none here" in leaf.value
    assert "s2crossh2" in top.children[1].children[1].children[1].value
    if HAS_STACK:                                                 # ipywidgets 8: jslinked Stacks
        links = [w for w in widgets.Widget.widgets.values() if type(w).__name__ == "Link"
                 and w.source[0] in pickers]
        assert len(links) == 1 + 2 + 4                            # one per stack: 1 + 2 + 2*2
    assert "class=w10>" in frames[("s1", "enc", "h1")] and "class=w0>" in frames[("s1", "enc", "h1")]
    with pytest.raises(ValueError, match="labels"):
        frame_selector({("a",): "x"}, ["one", "two"])
