"""Attention twins: weights are a distribution over real tokens, PyTorch == TensorFlow, decoding protocol, errors."""
from functools import partial

import numpy as np
import pytest
import torch

import llmbook
from llmbook.data.seq2seq import BOS_ID, EOS_ID, PAD_ID, Seq2SeqBatches
from llmbook.parity import tf_to_torch, torch_to_tf
from llmbook.tf import attention as tf_att
from llmbook.tf.checkpoint import load_checkpoint as tf_load, save_checkpoint as tf_save
from llmbook.tf.decoding import beam_search as tf_beam, greedy_decode as tf_greedy
from llmbook.torch import attention as torch_att
from llmbook.torch.checkpoint import load_checkpoint as torch_load, save_checkpoint as torch_save
from llmbook.torch.decoding import beam_search as torch_beam, greedy_decode as torch_greedy

from seq2seq_helpers import attention_inputs, padded_batch, torch_logits

SIZES = dict(src_vocab_size=23, tgt_vocab_size=17, embed_dim=6, hidden_dim=10)
B, S, T, HQ, HK = 4, 7, 5, 6, 8

batch = partial(padded_batch, SIZES)          # (src (B, S), tgt (B, T)) ids, rows 1 and 3 padded


def qkm(seed=0, hq=HQ, hk=HK, three=False):
    """Random queries (B, [T,] hq), keys (B, S, hk), values (B, S, 3) and a mask with padding in two rows."""
    return attention_inputs(B, S, hq, hk, T if three else None, seed)


def layer_pair(score):
    """A PyTorch attention layer and its TF twin with the PyTorch weights copied in."""
    llmbook.seed(0)
    hk = HQ if score == "dot" else HK
    t = torch_att.make_attention(score, HQ, hk, 9)
    f = tf_att.make_attention(score, HQ, hk, 9)
    torch_to_tf(t, f)
    return t, f, hk


def run_torch(layer, q, k, v, m):
    with torch.no_grad():
        c, w = layer(torch.as_tensor(q), torch.as_tensor(k), torch.as_tensor(v), torch.as_tensor(m))
    return c.numpy(), w.numpy()


@pytest.mark.parametrize("three", [False, True], ids=["one query", "T queries"])
@pytest.mark.parametrize("score", ["additive", "dot", "general"])
def test_weights_sum_to_one_and_are_zero_on_padding(score, three):
    t, f, hk = layer_pair(score)
    q, k, v, m = qkm(hk=hk, three=three)
    for name, (c, w) in (("torch", run_torch(t, q, k, v, m)),
                         ("tf", tuple(x.numpy() for x in f(q, k, v, m)))):
        wm = w if three else w[:, None, :]                                   # (B, T, S)
        assert c.shape == ((B, T, 3) if three else (B, 3)), name
        sums = wm.sum(-1)
        assert np.abs(sums - 1).max() <= 1e-6, (
            f"{score} ({name}): weights do not sum to 1 over the source axis: {sums} (softmax over the wrong axis?)")
        assert (wm[~np.broadcast_to(m[:, None, :], wm.shape)] == 0).all(), (
            f"{score} ({name}): padding got weight {wm[1, :, 4:].max():.2e}, expected exactly 0 (mask not applied?)")
        assert (wm[np.broadcast_to(m[:, None, :], wm.shape)] > 0).all(), f"{score} ({name}): a real token got 0"
        assert np.allclose(wm[2, :, 0], 1.0), f"{score} ({name}): one real token must take all the weight"
        ctx = c if three else c[:, None, :]
        assert np.abs(ctx - wm @ v).max() <= 1e-5, f"{score} ({name}): context is not the weighted sum of values"


@pytest.mark.parametrize("score", ["additive", "dot", "general"])
def test_scores_torch_equals_tf(score):
    t, f, hk = layer_pair(score)
    for three in (False, True):
        q, k, v, m = qkm(seed=3, hk=hk, three=three)
        ct, wt = run_torch(t, q, k, v, m)
        cf, wf = (x.numpy() for x in f(q, k, v, m))
        gap = max(np.abs(ct - cf).max(), np.abs(wt - wf).max())
        assert gap <= 1e-5, f"{score}: PyTorch and TF attention differ by {gap:.2e} with the same weights"


def test_additive_attention_matches_the_formula():
    """e_s = v^T tanh(W_q q + W_k k_s), written out in NumPy from the layer's own weights."""
    t, _, _ = layer_pair("additive")
    q, k, v, m = qkm(seed=4)
    Wq, Wk, vv = (p.detach().numpy() for p in (t.W_q.weight, t.W_k.weight, t.v.weight))
    e = np.tanh((q @ Wq.T)[:, None, :] + k @ Wk.T) @ vv[0]                  # (B, S)
    e = np.where(m, e, -np.inf)
    a = np.exp(e - e.max(-1, keepdims=True))
    a /= a.sum(-1, keepdims=True)
    assert np.abs(run_torch(t, q, k, v, m)[1] - a).max() <= 1e-6


def test_dot_and_general_match_their_formulas():
    q, k, v, m = qkm(seed=5, hk=HQ)
    e = np.einsum("bh,bsh->bs", q, k)
    w = torch_att.DotProductAttention()(torch.as_tensor(q), torch.as_tensor(k))[1].numpy()   # no mask
    assert np.abs(w - np.exp(e) / np.exp(e).sum(-1, keepdims=True)).max() <= 1e-6
    ws = torch_att.DotProductAttention(scaled=True)(torch.as_tensor(q), torch.as_tensor(k))[1].numpy()
    es = e / np.sqrt(HQ)
    assert np.abs(ws - np.exp(es) / np.exp(es).sum(-1, keepdims=True)).max() <= 1e-6
    t, _, _ = layer_pair("general")
    q, k, v, m = qkm(seed=6)
    W = t.W.weight.detach().numpy()                                         # (HQ, HK)
    e = np.einsum("bq,qk,bsk->bs", q, W, k)
    e = np.where(m, e, -np.inf)
    a = np.exp(e - e.max(-1, keepdims=True))
    assert np.abs(run_torch(t, q, k, v, m)[1] - a / a.sum(-1, keepdims=True)).max() <= 1e-6


@pytest.mark.parametrize("framework", ["torch", "tf"])
def test_bad_shapes_raise_clear_errors(framework):
    mod = torch_att if framework == "torch" else tf_att
    conv = torch.as_tensor if framework == "torch" else (lambda x: x)
    q, k, v, m = qkm()
    add = mod.AdditiveAttention(HQ, HK, 9)
    with pytest.raises(ValueError, match="query must be"):
        add(conv(q[0]), conv(k))
    with pytest.raises(ValueError, match="keys and values must be"):
        add(conv(q), conv(k[0]))
    with pytest.raises(ValueError, match="share the batch size"):
        add(conv(q[:2]), conv(k))
    with pytest.raises(ValueError, match="mask must be"):
        add(conv(q), conv(k), conv(v), conv(m[:, :3]))
    with pytest.raises(ValueError, match="built for queries of 6 and keys of 8"):
        add(conv(k[:, 0]), conv(k))
    with pytest.raises(ValueError, match="same size"):
        mod.DotProductAttention()(conv(q), conv(k))
    with pytest.raises(ValueError, match="built for queries"):
        mod.GeneralAttention(HQ, HK)(conv(q), conv(q[:, None, :]))
    with pytest.raises(ValueError, match="unknown attention score 'cosine'"):
        mod.make_attention("cosine", HQ, HK, 9)
    with pytest.raises(ValueError, match="hidden_dim must be even"):
        mod.Seq2SeqAttention(**{**SIZES, "hidden_dim": 9})


@pytest.fixture(scope="module", params=["fixed", "additive", "dot", "general"])
def twins(request):
    llmbook.seed(0)
    t = torch_att.Seq2SeqAttention(**SIZES, score=request.param).eval()
    f = tf_att.Seq2SeqAttention(**SIZES, score=request.param)
    torch_to_tf(t, f)
    return t, f, request.param


def test_seq2seq_attention_shapes(twins):
    t, f, score = twins
    src, tgt = batch()
    assert torch_logits(t, src, tgt).shape == (5, 6, 17)
    assert tuple(f(src, tgt).shape) == (5, 6, 17)
    for model, conv in ((t, torch.as_tensor), (f, lambda x: x)):
        states, mask, summary = model.encode(conv(src))
        assert tuple(states.shape) == (5, 8, 10) and tuple(mask.shape) == (5, 8) and tuple(summary.shape) == (5, 10)
        state = model.initial_state((states, mask, summary))
        logits, state = model.step(conv(np.full(5, BOS_ID)), (states, mask, summary), state)
        assert tuple(logits.shape) == (5, 17) and tuple(state.shape) == (5, 10)
        if score == "fixed":
            with pytest.raises(ValueError, match="fixed context .* no attention weights"):
                model.attention_weights(src, tgt)
        else:
            assert tuple(model.attention_weights(src, tgt).shape) == (5, 6, 8)


def test_seq2seq_attention_torch_equals_tf(twins):
    t, f, score = twins
    src, tgt = batch(B=16, seed=1)
    gap = np.abs(torch_logits(t, src, tgt) - f(src, tgt).numpy()).max()
    assert gap <= 1e-5, f"Seq2SeqAttention: PyTorch and TF logits differ by {gap:.2e} with the same weights"
    if score != "fixed":
        wgap = np.abs(t.attention_weights(src, tgt).numpy() - f.attention_weights(src, tgt).numpy()).max()
        assert wgap <= 1e-5, f"attention weights differ by {wgap:.2e}"
    back = torch_att.Seq2SeqAttention(**SIZES, score=score)
    tf_to_torch(f, back)
    assert np.abs(torch_logits(back, src, tgt) - f(src, tgt).numpy()).max() <= 1e-5


def test_decodes_agree_across_frameworks(twins):
    t, f, score = twins
    src, _ = batch(B=6, seed=2)
    kw = dict(bos_id=BOS_ID, eos_id=EOS_ID, max_len=7)
    assert torch_greedy(t, src, **kw) == tf_greedy(f, src, **kw)
    never = dict(kw, eos_id=99)                                              # no <eos>: 7 tokens a row to compare
    g_t = torch_greedy(t, src, **never)
    assert g_t == tf_greedy(f, src, **never) and all(len(g) == 7 for g in g_t)
    b_t, b_f = torch_beam(t, src, k=3, alpha=0.6, **kw), tf_beam(f, src, k=3, alpha=0.6, **kw)
    assert b_t.sequences == b_f.sequences
    assert np.abs(np.asarray(b_t.scores) - np.asarray(b_f.scores)).max() <= 1e-5


def test_step_by_step_equals_teacher_forced(twins):
    """Decoding one token at a time through the protocol gives the logits of the parallel teacher-forced pass."""
    t, f, score = twins
    src, tgt = batch(seed=3)
    tgt_in = np.concatenate([np.full((5, 1), BOS_ID), tgt[:, :-1]], axis=1)
    for model, conv, logits in ((t, torch.as_tensor, torch_logits(t, src, tgt_in)),
                                (f, lambda x: x, f(src, tgt_in).numpy())):
        with torch.no_grad():
            memory = model.encode(conv(src))
            state = model.initial_state(memory)
            for i in range(tgt_in.shape[1]):
                step, state = model.step(conv(tgt_in[:, i]), memory, state)
                assert np.abs(np.asarray(step) - logits[:, i]).max() <= 1e-5


def test_padding_changes_nothing(twins):
    """A source with extra padding gives the same logits: the mask and the row-wise backward pass see to it."""
    t, f, score = twins
    src, tgt = batch()
    short = src[3:4, :2]
    assert np.abs(torch_logits(t, short, tgt[3:4])[0] - torch_logits(t, src, tgt)[3]).max() <= 1e-6
    assert np.abs(f(short, tgt[3:4]).numpy()[0] - f(src, tgt).numpy()[3]).max() <= 1e-6
    if score == "fixed":
        return
    w = t.attention_weights(src, tgt).numpy()
    assert (w[3, :, 2:] == 0).all() and np.abs(w.sum(-1) - 1).max() <= 1e-6


def test_fixed_context_is_the_summary_at_every_step():
    """score="fixed": the decoder's context is the encoder summary c at every step, and only attention's weights go."""
    llmbook.seed(0)
    fixed = torch_att.Seq2SeqAttention(**SIZES, score="fixed").eval()
    src, tgt = batch(seed=4)
    with torch.no_grad():
        states, mask, summary = fixed.encode(torch.as_tensor(src))            # (B, S, H), (B, S), (B, H)
        dec = fixed.decoder
        s, _ = dec.rnn(dec.embed(torch.as_tensor(tgt)), dec.initial_state(summary)[None])   # (B, T, H)
        c = summary[:, None].expand_as(s)                                       # (B, T, H)
        want = dec.out(torch.tanh(dec.combine(torch.cat([c, s], -1)))).numpy()  # (B, T, V)
    assert np.abs(torch_logits(fixed, src, tgt) - want).max() <= 1e-6
    names = {n: tuple(p.shape) for n, p in torch_att.Seq2SeqAttention(**SIZES).named_parameters()}
    fixed_names = {n: tuple(p.shape) for n, p in fixed.named_parameters()}
    assert fixed_names == {n: s for n, s in names.items() if not n.startswith("decoder.attention.")}
    with pytest.raises(ValueError, match="unknown attention score 'mean'.*fixed"):
        torch_att.Seq2SeqAttention(**SIZES, score="mean")
    with pytest.raises(ValueError, match="unknown attention score 'mean'.*fixed"):
        tf_att.Seq2SeqAttention(**SIZES, score="mean")


def test_reverse_padded_both_frameworks():
    x = np.arange(12, dtype="float32").reshape(2, 6)[..., None]              # (B, S, 1)
    lengths = np.array([6, 3])
    want = np.array([[5, 4, 3, 2, 1, 0], [8, 7, 6, 9, 10, 11]], dtype="float32")[..., None]
    assert (torch_att.reverse_padded(torch.as_tensor(x), torch.as_tensor(lengths)).numpy() == want).all()
    assert (tf_att.reverse_padded(x, lengths).numpy() == want).all()


def test_checkpoints_round_trip(tmp_path, twins):
    t, f, score = twins
    src, tgt = batch()
    cfg = dict(SIZES, score=score)
    torch_save(t, tmp_path / "a_torch.npz", **cfg)
    tf_save(f, tmp_path / "a_tf.npz", **cfg)
    ref = torch_logits(t, src, tgt)
    assert np.abs(torch_logits(torch_load(torch_att.Seq2SeqAttention, tmp_path / "a_torch.npz"), src, tgt) - ref).max() < 1e-2
    assert np.abs(tf_load(tf_att.Seq2SeqAttention, tmp_path / "a_tf.npz")(src, tgt).numpy() - ref).max() < 1e-2


@pytest.mark.parametrize("framework", ["torch", "tf"])
def test_training_lowers_the_loss_on_reversal(framework):
    """A task that needs alignment (reverse the source): a few epochs of the shared loop lower the loss."""
    llmbook.seed(0)
    rng = np.random.default_rng(0)
    xs = [rng.integers(4, 17, rng.integers(2, 7)) for _ in range(64)]
    ys = [x[::-1] for x in xs]
    data = Seq2SeqBatches(xs, ys, 16, shuffle=False)
    if framework == "torch":
        from llmbook.torch.train import evaluate, fit
        m, kw = torch_att.Seq2SeqAttention(**SIZES), dict(device="cpu")
    else:
        from llmbook.tf.train import evaluate, fit
        m, kw = tf_att.Seq2SeqAttention(**SIZES), {}
    before = evaluate(m, data, ignore_index=PAD_ID, **kw)
    fit(m, data, epochs=6, lr=1e-2, ignore_index=PAD_ID, progress=False, **kw)
    assert evaluate(m, data, ignore_index=PAD_ID, **kw) < before - 0.3


def test_torch_model_starts_from_keras_distributions():
    """Freshly built twins draw every weight from the same distribution (Keras' defaults), so they train alike."""
    from llmbook.parity import _triples
    sizes = dict(src_vocab_size=300, tgt_vocab_size=400, embed_dim=32, hidden_dim=64)
    llmbook.seed(0)
    t, f = torch_att.Seq2SeqAttention(**sizes), tf_att.Seq2SeqAttention(**sizes)
    f(np.full((2, 3), 5), np.full((2, 3), 5))                                  # build the Keras weights
    checked = 0
    for var, tensor, _ in _triples(t, f):
        a, b = tensor.detach().numpy(), np.asarray(var.numpy())
        if not b.any():                                                         # Keras biases start at zero
            assert not a.any(), f"{var.path}: Keras starts it at zero, PyTorch does not"
            continue
        # the two standard deviations, each estimated from n draws, agree within ~3 standard errors
        assert abs(a.std() / b.std() - 1) < 2 / np.sqrt(b.size), (var.path, a.std(), b.std())
        assert np.abs(a).max() <= np.abs(b).max() * (1 + 2 / np.sqrt(b.size)) + 1e-6, var.path
        checked += 1
    assert checked >= 10                  # embeddings, GRU kernels and recurrent kernels, dense and attention kernels
