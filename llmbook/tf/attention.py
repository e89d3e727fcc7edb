"""Attention: scores -> softmax weights -> weighted sum, and a GRU encoder–decoder that attends (Keras layers).

Twin of `llmbook.torch.attention` (same class names and arguments). Shapes: B batch, S source length
(keys and values), T target length (queries), N rows decoded at once (B, or B k in a beam of width k),
E embedding size, H hidden units, A attention units, V vocabulary. A query may be one vector per row
(B, Hq) or one per target position (B, T, Hq).

    e_s   = score(q, k_s)                     one number per source position, (B, [T,] S)
    a     = softmax(e) over unmasked s        the attention weights, 0 on padding, sum 1, (B, [T,] S)
    c     = sum_s a_s v_s                     the context vector, (B, [T,] Hv)

Scores: additive (Bahdanau et al., 2015) v^T tanh(W_q q + W_k k); dot (Luong et al., 2015) q^T k;
general (Luong) q^T W k. The model `Seq2SeqAttention` follows Luong et al.'s global attention: the
decoder GRU reads y_{t-1}, its new state s_t is the query over all encoder states, and
tanh(W_c [c_t; s_t]) predicts y_t, so training runs the GRU over the whole target at once.
With `score="fixed"` the same model has no attention: c_t = c, the encoder's summary, at every
step (the fixed context of Cho et al., 2014), so the two differ in exactly one thing.
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from llmbook.tf.seq2seq import source_lengths

SCORES = ("additive", "dot", "general")
CONTEXTS = ("fixed", *SCORES)     # "fixed": no attention, the decoder reads the summary c at every step


# TensorFlow's oneDNN batch matmul on rank-4 tensors gives wrong numbers or crashes on some CPUs
# (AVX-512, TF 2.19-2.21: tensorflow/tensorflow#117700, #123109), and Keras 3.10-3.13's `Dense`
# sends rank-4 inputs there. The two helpers below keep every matmul at rank 2 or 3; on the pinned
# versions they give bit-identical results (tests/test_tf_rank4.py).

def dense(layer: keras.layers.Dense, x):
    """Apply `layer` to x (..., F) as one rank-2 matmul: (N, F) -> (N, U), reshaped back to (..., U)."""
    x = tf.convert_to_tensor(x)                                                # (..., F)
    lead = tf.shape(x)[:-1]                                                    # the leading axes (...)
    y = layer(tf.reshape(x, [-1, x.shape[-1]]))                                # (N, F) -> (N, U)
    y = tf.reshape(y, tf.concat([lead, [layer.units]], axis=0))               # (..., U)
    y.set_shape(x.shape[:-1].concatenate([layer.units]))
    return y


def batched_matmul(a, b, transpose_b: bool = False):
    """a (..., M, K) @ b (..., K, N) (or b (..., N, K) with transpose_b) -> (..., M, N), at most rank 3.

    The leading axes (...) of a and b broadcast; they are merged into one batch axis for the matmul.
    """
    a, b = tf.convert_to_tensor(a), tf.convert_to_tensor(b)
    if len(a.shape) <= 3 and len(b.shape) <= 3:
        return tf.matmul(a, b, transpose_b=transpose_b)                        # (B, M, N) or (M, N)
    n = b.shape[-2] if transpose_b else b.shape[-1]
    static = tf.broadcast_static_shape(a.shape[:-2], b.shape[:-2]).concatenate([a.shape[-2], n])
    lead = tf.broadcast_dynamic_shape(tf.shape(a)[:-2], tf.shape(b)[:-2])      # the batch axes (...)
    a = tf.broadcast_to(a, tf.concat([lead, tf.shape(a)[-2:]], axis=0))        # (..., M, K)
    b = tf.broadcast_to(b, tf.concat([lead, tf.shape(b)[-2:]], axis=0))        # (..., K, N) or (..., N, K)
    a3 = tf.reshape(a, tf.concat([[-1], tf.shape(a)[-2:]], axis=0))            # (L, M, K), L = prod(...)
    b3 = tf.reshape(b, tf.concat([[-1], tf.shape(b)[-2:]], axis=0))            # (L, K, N) or (L, N, K)
    out = tf.matmul(a3, b3, transpose_b=transpose_b)                           # (L, M, N)
    out = tf.reshape(out, tf.concat([lead, tf.shape(out)[-2:]], axis=0))       # (..., M, N)
    out.set_shape(static)
    return out


def _check(query, keys, values, mask) -> None:
    """Clear errors for the shapes attention accepts (static shapes; unknown sizes are not checked)."""
    q, k, v = tuple(query.shape), tuple(keys.shape), tuple(values.shape)
    if len(q) not in (2, 3):
        raise ValueError(f"query must be (batch, features) or (batch, targets, features), got {q}")
    if len(k) != 3 or len(v) != 3:
        raise ValueError(f"keys and values must be (batch, source length, features), got keys {k} and values {v}")
    same = lambda *xs: len({x for x in xs if x is not None}) <= 1   # noqa: E731
    if not same(q[0], k[0], v[0]) or not same(k[1], v[1]):
        raise ValueError(f"query {q}, keys {k} and values {v} must share the batch size, "
                         "and keys and values the source length")
    if mask is not None:
        m = tuple(mask.shape)
        if len(m) != 2 or not same(m[0], k[0]) or not same(m[1], k[1]):
            raise ValueError(f"mask must be (batch, source length) = {k[:2]} with True on real tokens, got {m}")


def masked_softmax(scores, mask):
    """Softmax over the last axis (S) of scores (B, [T,] S), with weight exactly 0 where mask (B, S) is False."""
    if mask is not None:
        keep = tf.cast(mask, tf.bool)                                          # (B, S)
        keep = keep if len(scores.shape) == 2 else keep[:, None, :]            # (B, S) or (B, 1, S)
        scores = tf.where(keep, scores, tf.constant(-np.inf, scores.dtype))    # (B, [T,] S)
    return tf.nn.softmax(scores, axis=-1)                                      # (B, [T,] S)


class _Attention(keras.layers.Layer):
    """Common part: score every key, mask, softmax, weighted sum of the values."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True   # `mask` is our source mask (B, S); it is used here, not passed on

    def compute_mask(self, inputs, previous_mask=None):
        return None

    def score(self, query, keys):
        raise NotImplementedError

    def call(self, query, keys, values=None, mask=None):
        """Query (B, [T,] Hq), keys (B, S, Hk), values (B, S, Hv) (default: the keys), mask (B, S)
        -> context (B, [T,] Hv), weights (B, [T,] S)."""
        query, keys = tf.convert_to_tensor(query), tf.convert_to_tensor(keys)
        values = keys if values is None else tf.convert_to_tensor(values)
        mask = None if mask is None else tf.convert_to_tensor(mask)
        _check(query, keys, values, mask)
        one = len(query.shape) == 2
        q = query[:, None, :] if one else query                                # (B, T, Hq), T = 1 for one query
        weights = masked_softmax(self.score(q, keys), mask)                    # (B, T, S)
        context = tf.matmul(weights, values)                                   # (B, T, S) @ (B, S, Hv) -> (B, T, Hv)
        if one:
            return context[:, 0], weights[:, 0]                                # (B, Hv), (B, S)
        return context, weights


class AdditiveAttention(_Attention):
    """Bahdanau's additive score e_s = v^T tanh(W_q q + W_k k_s)."""

    def __init__(self, query_dim: int, key_dim: int, attn_dim: int):
        super().__init__()
        self.query_dim, self.key_dim = query_dim, key_dim
        self.W_q = keras.layers.Dense(attn_dim, use_bias=False)
        self.W_k = keras.layers.Dense(attn_dim, use_bias=False)
        self.v = keras.layers.Dense(1, use_bias=False)
        self.W_q.build((None, query_dim))
        self.W_k.build((None, key_dim))
        self.v.build((None, attn_dim))

    def score(self, query, keys):
        """Queries (B, T, Hq), keys (B, S, Hk) -> scores (B, T, S)."""
        if query.shape[-1] != self.query_dim or keys.shape[-1] != self.key_dim:
            raise ValueError(f"AdditiveAttention was built for queries of {self.query_dim} and keys of "
                             f"{self.key_dim} features, got {query.shape[-1]} and {keys.shape[-1]}")
        q = self.W_q(query)[:, :, None, :]                                     # (B, T, 1, A)
        k = self.W_k(keys)[:, None, :, :]                                      # (B, 1, S, A)
        return dense(self.v, tf.tanh(q + k))[..., 0]                           # (B, T, S, A) -> (B, T, S)


class DotProductAttention(_Attention):
    """Luong's dot score e_s = q^T k_s (optionally divided by sqrt(H), as the Transformer will)."""

    def __init__(self, scaled: bool = False):
        super().__init__()
        self.scaled = scaled

    def score(self, query, keys):
        """Queries (B, T, H), keys (B, S, H) -> scores (B, T, S)."""
        if query.shape[-1] != keys.shape[-1]:
            raise ValueError(f"dot-product attention needs queries and keys of the same size, got {query.shape[-1]} "
                             f"and {keys.shape[-1]}: project one of them, or use GeneralAttention")
        scores = tf.matmul(query, keys, transpose_b=True)                      # (B, T, H) @ (B, H, S) -> (B, T, S)
        return scores / float(query.shape[-1]) ** 0.5 if self.scaled else scores


class GeneralAttention(_Attention):
    """Luong's general score e_s = q^T W k_s (a learned bilinear form; queries and keys may differ in size)."""

    def __init__(self, query_dim: int, key_dim: int):
        super().__init__()
        self.query_dim, self.key_dim = query_dim, key_dim
        self.W = keras.layers.Dense(query_dim, use_bias=False)
        self.W.build((None, key_dim))

    def score(self, query, keys):
        """Queries (B, T, Hq), keys (B, S, Hk) -> scores (B, T, S)."""
        if query.shape[-1] != self.query_dim or keys.shape[-1] != self.key_dim:
            raise ValueError(f"GeneralAttention was built for queries of {self.query_dim} and keys of "
                             f"{self.key_dim} features, got {query.shape[-1]} and {keys.shape[-1]}")
        return tf.matmul(query, self.W(keys), transpose_b=True)                # (B, T, Hq) @ (B, Hq, S) -> (B, T, S)


def make_attention(score: str, query_dim: int, key_dim: int, attn_dim: int) -> _Attention:
    """The attention layer for a score name: 'additive', 'dot' or 'general'."""
    if score == "additive":
        return AdditiveAttention(query_dim, key_dim, attn_dim)
    if score == "dot":
        return DotProductAttention()
    if score == "general":
        return GeneralAttention(query_dim, key_dim)
    raise ValueError(f"unknown attention score {score!r}: choose one of {SCORES}")


def reverse_padded(x, lengths):
    """Reverse the first lengths[b] positions of each row of x (B, S, ...); padding stays where it is."""
    return tf.reverse_sequence(x, tf.cast(lengths, tf.int64), seq_axis=1, batch_axis=0)   # (B, S, ...)


class BidirectionalEncoder(keras.layers.Layer):
    """Two GRUs of H/2 units read the source forwards and backwards; state s is [h_fwd_s; h_bwd_s], (B, S, H).

    The backward GRU reads each row's real tokens reversed, so padding never reaches a real position.
    """

    def __init__(self, vocab_size: int, embed_dim: int, hidden_dim: int, pad_id: int = 0, dropout: float = 0.0):
        super().__init__()
        if hidden_dim % 2:
            raise ValueError(f"hidden_dim must be even (two directions of hidden_dim / 2 units), got {hidden_dim}")
        self.pad_id = pad_id
        self.embed = keras.layers.Embedding(vocab_size, embed_dim)
        self.fwd = keras.layers.GRU(hidden_dim // 2, return_sequences=True)
        self.bwd = keras.layers.GRU(hidden_dim // 2, return_sequences=True)
        self.drop = keras.layers.Dropout(dropout)
        self.embed.build((None, None))
        self.fwd.build((None, None, embed_dim))
        self.bwd.build((None, None, embed_dim))

    def call(self, src, training: bool = False):
        """Source ids (B, S) -> states (B, S, H), mask (B, S) (True on real tokens), summary (B, H)."""
        src = tf.convert_to_tensor(src)
        lengths = source_lengths(src, self.pad_id)                             # (B,)
        x = self.drop(self.embed(src), training=training)                      # (B, S, E)
        fwd = self.fwd(x, training=training)                                   # (B, S, H/2)
        bwd = self.bwd(reverse_padded(x, lengths), training=training)          # (B, S, H/2), reversed order
        bwd = reverse_padded(bwd, lengths)                                     # (B, S, H/2), source order
        summary = tf.concat([tf.gather(fwd, lengths - 1, batch_dims=1), bwd[:, 0]], axis=-1)  # (B, H)
        mask = tf.not_equal(src, tf.cast(self.pad_id, src.dtype))              # (B, S)
        return tf.concat([fwd, bwd], axis=-1), mask, summary                   # (B, S, H), (B, S), (B, H)


class AttentionDecoder(keras.layers.Layer):
    """A GRU over the target; at every step its state queries all encoder states for a fresh context c_t."""

    def __init__(self, vocab_size: int, embed_dim: int, hidden_dim: int, score: str = "additive",
                 dropout: float = 0.0):
        super().__init__()
        if score not in CONTEXTS:
            raise ValueError(f"unknown attention score {score!r}: choose one of {CONTEXTS}")
        self.embed = keras.layers.Embedding(vocab_size, embed_dim)
        self.init = keras.layers.Dense(hidden_dim)
        self.rnn = keras.layers.GRU(hidden_dim, return_sequences=True, return_state=True)
        self.attention = None if score == "fixed" else make_attention(score, hidden_dim, hidden_dim, hidden_dim)
        self.combine = keras.layers.Dense(hidden_dim)
        self.out = keras.layers.Dense(vocab_size)
        self.drop = keras.layers.Dropout(dropout)
        self.embed.build((None, None))
        self.init.build((None, hidden_dim))
        self.rnn.build((None, None, embed_dim))
        self.combine.build((None, 2 * hidden_dim))
        self.out.build((None, hidden_dim))

    def initial_state(self, summary):
        """s_0 = tanh(W_init [h_fwd_last; h_bwd_first]), (B, H)."""
        return tf.tanh(self.init(summary))                                     # (B, H)

    def call(self, tgt_in, memory, state, training: bool = False):
        """Inputs (B, T), memory (encoder states (B, S, H), mask (B, S), summary (B, H)), state (B, H)
        -> logits (B, T, V), last state (B, H), attention weights (B, T, S) (None for a fixed context)."""
        states, mask, summary = memory                                         # (B, S, H), (B, S), (B, H)
        y = self.drop(self.embed(tgt_in), training=training)                   # (B, T, E)
        s, last = self.rnn(y, initial_state=[state], training=training)        # (B, T, H), (B, H)
        if self.attention is None:                                             # fixed: c_t = c at every step
            context, weights = tf.broadcast_to(summary[:, None], tf.shape(s)), None   # (B, T, H)
        else:
            context, weights = self.attention(s, states, states, mask)         # (B, T, H), (B, T, S)
        h = tf.tanh(self.combine(tf.concat([context, s], axis=-1)))            # (B, T, 2H) -> (B, T, H)
        return self.out(self.drop(h, training=training)), last, weights        # (B, T, V), (B, H), (B, T, S)


class Seq2SeqAttention(keras.Model):
    """Bidirectional GRU encoder -> all its states -> GRU decoder with attention (or a fixed context); teacher-forced."""

    def __init__(self, src_vocab_size: int, tgt_vocab_size: int, embed_dim: int = 64, hidden_dim: int = 128,
                 score: str = "additive", dropout: float = 0.0, pad_id: int = 0):
        super().__init__()
        self.encoder = BidirectionalEncoder(src_vocab_size, embed_dim, hidden_dim, pad_id, dropout)
        self.decoder = AttentionDecoder(tgt_vocab_size, embed_dim, hidden_dim, score, dropout)
        self.built = True

    def call(self, src, tgt_in, training: bool = False):
        """Logits of every target position given the source (B, S) and the shifted targets (B, T) -> (B, T, V)."""
        return self.decode_all(src, tgt_in, training=training)[0]             # (B, T, V)

    def decode_all(self, src, tgt_in, training: bool = False):
        """Teacher-forced pass: logits (B, T, V) and attention weights (B, T, S)."""
        memory = self.encoder(src, training=training)                          # (B, S, H), (B, S), (B, H)
        logits, _, weights = self.decoder(tgt_in, memory, self.decoder.initial_state(memory[2]),
                                          training=training)
        return logits, weights                                                 # (B, T, V), (B, T, S) or None

    def attention_weights(self, src, tgt_in):
        """Weights (B, T, S) of target inputs (B, T) (e.g. <bos> + a decoded output) over the source (B, S)."""
        if self.decoder.attention is None:
            raise ValueError("this model has a fixed context (score='fixed'): it has no attention weights")
        return self.decode_all(tf.convert_to_tensor(src), tf.convert_to_tensor(tgt_in))[1]   # (B, T, S)

    def encode(self, src):
        """Memory of each source (B, S): encoder states (B, S, H), mask (B, S), summary (B, H)."""
        return self.encoder(src)

    def initial_state(self, memory):
        """The decoder state before <bos>, (B, H)."""
        return self.decoder.initial_state(memory[2])                           # (B, H)

    def step(self, prev, memory, state):
        """One decoding step: previous tokens (N,), memory, state (N, H) -> logits (N, V), new state (N, H)."""
        logits, state, _ = self.decoder(prev[:, None], memory, state)         # (N, 1, V), (N, H)
        return logits[:, 0], state                                             # (N, V), (N, H)
