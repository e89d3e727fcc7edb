"""No rank-4 matmul in the course's TensorFlow layers (oneDNN's rank-4 batch matmul is broken on AVX-512).

TensorFlow's oneDNN kernel for a rank-4 batch matmul gives wrong numbers or aborts the process on
some CPUs (AVX-512; TF 2.19-2.21, tensorflow/tensorflow#117700, #123109), and Keras 3.10-3.13 send a
`Dense` on a rank-4 tensor there. These tests never run that kernel: they trace the layers into
graphs and inspect the matmul ops, check PyTorch == TensorFlow on the shapes that failed (batch 4
and 13, one query per row), and, under the pinned versions only, that the rank-3 forms give
bit-identical numbers to the rank-4 forms they replaced. tools/test_colab.sh runs this file under a
Colab runtime's versions, where Keras would reach the broken kernel.
"""
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
import torch

import llmbook
from llmbook.data.seq2seq import BOS_ID
from llmbook.parity import torch_to_tf
from llmbook.tf import attention as tf_att
from llmbook.tf import transformer as tf_tr
from llmbook.torch import attention as torch_att
from llmbook.torch import transformer as torch_tr

from seq2seq_helpers import attention_inputs, padded_batch

MATMULS = {"MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3", "Einsum"}
SCORES = ("additive", "dot", "general")
S, HQ, HK, A = 7, 6, 8, 9
SEQ = dict(src_vocab_size=23, tgt_vocab_size=17, embed_dim=6, hidden_dim=10)
TR = dict(src_vocab_size=23, tgt_vocab_size=17, d_model=16, num_heads=4, num_encoder_layers=2,
          num_decoder_layers=2, d_ff=24, dropout=0.0, max_len=32)


def _graphs(graph):
    """The graph and every function graph it calls (while-loop bodies, nested tf.functions)."""
    yield graph
    for fn in getattr(graph, "_functions", {}).values():
        inner = getattr(fn, "graph", None)
        if inner is not None:
            yield from _graphs(inner)


def rank4_matmuls(fn, *specs) -> list[str]:
    """Trace fn on tensors of these specs (nothing runs) -> 'op: input shapes' for each matmul of rank > 3."""
    graph = tf.function(fn).get_concrete_function(*specs).graph
    found = []
    for g in _graphs(graph):
        for op in g.get_operations():
            if op.type in MATMULS:
                ranks = [t.shape.rank for t in op.inputs]
                if any(r is None or r > 3 for r in ranks):
                    found.append(f"{op.type} {op.name}: {[tuple(t.shape) for t in op.inputs]}")
    return found


def spec(*shape, dtype=tf.float32):
    return tf.TensorSpec(shape, dtype)


def test_the_guard_sees_a_rank4_matmul_and_a_rank4_dense():
    """The inspection itself: a plain rank-4 tf.matmul is reported (traced only, never run)."""
    q = spec(4, 2, 1, 5)
    assert rank4_matmuls(lambda a, b: tf.matmul(a, b, transpose_b=True), q, q)
    assert not rank4_matmuls(lambda a, b: tf_att.batched_matmul(a, b, transpose_b=True), q, q)
    layer = keras.layers.Dense(1, use_bias=False)
    layer.build((None, 5))
    assert not rank4_matmuls(lambda x: tf_att.dense(layer, x), q)


@pytest.mark.parametrize("one", [True, False], ids=["one query", "T queries"])
@pytest.mark.parametrize("score", SCORES)
def test_attention_layers_have_no_rank4_matmul(score, one):
    hk = HQ if score == "dot" else HK
    layer = tf_att.make_attention(score, HQ, hk, A)
    q = spec(13, HQ) if one else spec(13, 5, HQ)
    found = rank4_matmuls(lambda q, k, m: layer(q, k, k, m), q, spec(13, S, hk), spec(13, S, dtype=tf.bool))
    assert not found, f"{score} attention runs a rank-4 matmul (broken in oneDNN on AVX-512): {found}"


@pytest.mark.parametrize("score", SCORES)
def test_seq2seq_attention_has_no_rank4_matmul(score):
    llmbook.seed(0)
    model = tf_att.Seq2SeqAttention(**SEQ, score=score)
    ids = spec(4, 8, dtype=tf.int64)
    found = rank4_matmuls(lambda s, t: model.decode_all(s, t), ids, spec(4, 6, dtype=tf.int64))

    def one_step(src, prev):
        memory = model.encode(src)
        return model.step(prev, memory, model.initial_state(memory))

    found += rank4_matmuls(one_step, ids, spec(4, dtype=tf.int64))
    assert not found, f"Seq2SeqAttention({score!r}) runs a rank-4 matmul: {found}"


def test_transformer_has_no_rank4_matmul():
    llmbook.seed(0)
    model = tf_tr.Transformer(**TR)
    ids = spec(4, 8, dtype=tf.int64)
    found = rank4_matmuls(lambda s, t: model(s, t), ids, spec(4, 6, dtype=tf.int64))
    found += rank4_matmuls(lambda s, t: model.attention(s, t), ids, spec(4, 6, dtype=tf.int64))

    def two_steps(src, prev):                      # the second step attends over a cache of length 1
        memory = model.encode(src)
        _, state = model.step(prev, memory, model.initial_state(memory))
        return model.step(prev, memory, state)

    found += rank4_matmuls(two_steps, ids, spec(4, dtype=tf.int64))
    assert not found, f"the Transformer runs a rank-4 matmul: {found}"


# ---- PyTorch == TensorFlow on the shapes that failed (one query per row) ---------------------------------

def qkm(B, hk, seed=0):
    """One query per row (B, HQ), keys (B, S, hk), values (B, S, 3), padding in rows 1 and 2."""
    return attention_inputs(B, S, HQ, hk, seed=seed)


@pytest.mark.parametrize("B", [4, 13])
@pytest.mark.parametrize("score", SCORES)
def test_one_query_per_row_matches_pytorch(score, B):
    llmbook.seed(0)
    hk = HQ if score == "dot" else HK
    t, f = torch_att.make_attention(score, HQ, hk, A), tf_att.make_attention(score, HQ, hk, A)
    torch_to_tf(t, f)
    q, k, v, m = qkm(B, hk, seed=B)
    with torch.no_grad():
        tc, tw = (x.numpy() for x in t(*map(torch.as_tensor, (q, k, v, m))))
    fc, fw = (x.numpy() for x in f(q, k, v, m))
    assert fw.shape == (B, S) and fc.shape == (B, 3)
    assert np.all(fw[~m] == 0.0), f"{score} (tf): a padding position got weight"
    assert np.all(fw[m] > 0.0), f"{score} (tf): a real token got weight 0"
    gap = max(np.abs(tw - fw).max(), np.abs(tc - fc).max())
    assert gap <= 1e-5, f"{score}, batch {B}: PyTorch and TF differ by {gap:.2e} with the same weights"


@pytest.mark.parametrize("B", [4, 13])
@pytest.mark.parametrize("score", SCORES)
def test_seq2seq_attention_step_matches_pytorch(score, B):
    llmbook.seed(0)
    t = torch_att.Seq2SeqAttention(**SEQ, score=score).eval()
    f = tf_att.Seq2SeqAttention(**SEQ, score=score)
    torch_to_tf(t, f)
    src, tgt = padded_batch(SEQ, B=B, seed=B)
    prev = np.full(B, BOS_ID)
    with torch.no_grad():
        memory = t.encode(torch.as_tensor(src))
        tl, _ = t.step(torch.as_tensor(prev), memory, t.initial_state(memory))
    memory = f.encode(src)
    fl, _ = f.step(tf.constant(prev), memory, f.initial_state(memory))
    gap = np.abs(tl.numpy() - fl.numpy()).max()
    assert gap <= 1e-5, f"Seq2SeqAttention({score!r}).step, batch {B}: PyTorch and TF differ by {gap:.2e}"


@pytest.mark.parametrize("B", [4, 13])
def test_transformer_step_matches_pytorch(B):
    llmbook.seed(0)
    t, f = torch_tr.Transformer(**TR).eval(), tf_tr.Transformer(**TR)
    torch_to_tf(t, f)
    src, _ = padded_batch(TR, B=B, seed=B)
    prev = np.full(B, BOS_ID)
    with torch.no_grad():
        memory = t.encode(torch.as_tensor(src))
        tl, state = t.step(torch.as_tensor(prev), memory, t.initial_state(memory))
        tl2, _ = t.step(torch.as_tensor(prev), memory, state)
    memory = f.encode(src)
    fl, state = f.step(tf.constant(prev), memory, f.initial_state(memory))
    fl2, _ = f.step(tf.constant(prev), memory, state)
    gap = max(np.abs(tl.numpy() - fl.numpy()).max(), np.abs(tl2.numpy() - fl2.numpy()).max())
    assert gap <= 1e-5, f"Transformer.step, batch {B}: PyTorch and TF differ by {gap:.2e}"


# ---- bit-identical to the rank-4 forms they replaced, under the pinned versions -------------------------

def _pinned() -> bool:
    pins = dict(line.strip().split("==") for line in
                (Path(__file__).resolve().parents[1] / "constraints.txt").read_text().splitlines()
                if "==" in line and not line.startswith("#"))
    return tf.__version__ == pins["tensorflow-cpu"] and keras.__version__ == pins["keras"]


pinned_only = pytest.mark.skipif(not _pinned(), reason="the rank-4 forms are run only under the pinned "
                                 "versions (constraints.txt): elsewhere they may reach the broken kernel")


@pinned_only
@pytest.mark.parametrize("B", [4, 13])
def test_additive_score_is_bit_identical_to_the_rank4_dense(B):
    llmbook.seed(0)
    layer = tf_att.AdditiveAttention(HQ, HK, A)
    q, k, _, _ = qkm(B, HK, seed=B)
    for query in (q[:, None, :], np.repeat(q[:, None, :], 5, axis=1)):         # one query, T queries
        qa = layer.W_q(query)[:, :, None, :]                                   # (B, T, 1, A)
        ka = layer.W_k(k)[:, None, :, :]                                       # (B, 1, S, A)
        before = layer.v(tf.tanh(qa + ka))[..., 0].numpy()                     # the old rank-4 Dense
        assert np.array_equal(layer.score(tf.constant(query), tf.constant(k)).numpy(), before)


@pinned_only
@pytest.mark.parametrize("masked", [False, True])
def test_scaled_dot_product_attention_is_bit_identical_to_rank4_matmul(masked):
    rng = np.random.default_rng(3)
    q, k, v = (rng.standard_normal((13, 4, T, 8)).astype("float32") for T in (1, 6, 6))
    ids = rng.integers(0, 3, (13, 6))
    ids[:, 0] = 1                                                              # no row is all padding
    mask = tf_tr.padding_mask(tf.constant(ids), 0) if masked else None
    out, w = tf_tr.scaled_dot_product_attention(q, k, v, mask)
    scores = tf.matmul(q, k, transpose_b=True) / np.sqrt(8.0)                  # the old rank-4 form
    if masked:
        scores = tf.where(mask, scores, tf.constant(-np.inf, scores.dtype))
    w0 = tf.nn.softmax(scores, axis=-1)
    assert np.array_equal(w.numpy(), w0.numpy())
    assert np.array_equal(out.numpy(), tf.matmul(w0, v).numpy())
