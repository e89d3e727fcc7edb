"""The Transformer encoder–decoder (Vaswani et al., 2017), from scratch with Keras building blocks.

Twin of `llmbook.torch.transformer` (same class names and arguments). Shapes: B batch, S source
length, T target length, N rows decoded at once (B, or B k for a beam of width k), D model width
(d_model), h heads, d_k = D / h per head, F feed-forward width, V vocabulary, t the number of target
positions already decoded (the length of the key/value cache).

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V      the softmax runs over the keys j for each query i
    head_i = Attention(Q W_i^Q, K W_i^K, V W_i^V),   MultiHead(Q, K, V) = Concat(head_1..head_h) W^O
    FFN(x) = max(0, x W_1 + b_1) W_2 + b_2
    x <- x + Sublayer(LayerNorm(x))                        PRE-NORM residual blocks (Xiong et al., 2020),
                                                           plus a final LayerNorm after each stack

Masks are boolean with True = "may attend" (as in `keras.layers.MultiHeadAttention`). Masked scores
become -inf, so their softmax weights are exactly 0. The decoder's output projection shares its
matrix with the target embedding (Press & Wolf, 2017). LayerNorm epsilon is PyTorch's 1e-5.
"""
from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from llmbook.tf.attention import batched_matmul

EPS = 1e-5   # torch.nn.LayerNorm's default (Keras' is 1e-3)


def scaled_dot_product_attention(q, k, v, mask=None, dropout=None,
                                 training: bool = False):
    """softmax(q k^T / sqrt(d_k)) v over the last two axes -> out, weights.

    `mask` (True = may attend) broadcasts to (..., T, S)."""
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"attention needs q (..., T, d_k), k (..., S, d_k), "
                         f"v (..., S, d_v); got {tuple(q.shape)}, "
                         f"{tuple(k.shape)}, {tuple(v.shape)}")
    # (..., T, d_k) @ (..., d_k, S) -> (..., T, S); batched_matmul runs rank 4
    # (B, h, ...) as rank 3 (B h, ...), away from oneDNN's broken rank-4 kernel
    scores = batched_matmul(q, k, transpose_b=True)             # (..., T, S)
    scores = scores / math.sqrt(q.shape[-1])                    # (..., T, S)
    if mask is not None:
        if mask.dtype != tf.bool:
            raise ValueError(f"attention mask must be boolean (True = may "
                             f"attend), got {mask.dtype}")
        blocked = tf.constant(-np.inf, scores.dtype)       # blocked keys: -inf
        scores = tf.where(mask, scores, blocked)          # (..., T, S)
    weights = tf.nn.softmax(scores, axis=-1)  # (..., T, S): rows sum to 1
    if dropout is not None:
        weights = dropout(weights, training=training)           # (..., T, S)
    return batched_matmul(weights, v), weights   # (..., T, d_v), (..., T, S)


def causal_mask(T: int, device=None, S: int | None = None):
    """(T, S) boolean (S = T by default): query i, the last T of S positions, may attend to keys j <= S - T + i."""
    S = T if S is None else S
    return tf.cast(tf.linalg.band_part(tf.ones([T, S]), -1, S - T), tf.bool)   # (T, S)


def padding_mask(ids, pad_id: int):
    """(B, S) ids -> (B, 1, 1, S) boolean, True at real tokens (broadcasts over heads and queries)."""
    return tf.not_equal(ids, tf.cast(pad_id, ids.dtype))[:, None, None, :]   # (B, 1, 1, S)


def _dense(units: int, in_dim: int) -> keras.layers.Dense:
    layer = keras.layers.Dense(units)
    layer.build((None, in_dim))
    return layer


class MultiHeadAttention(keras.layers.Layer):
    """h scaled dot-product attentions on learned projections of D-wide queries, keys and values."""

    def __init__(self, d_model: int, num_heads: int, dropout: float = 0.0, causal: bool = False):
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"d_model={d_model} is not divisible by num_heads={num_heads}: choose d_model = h * d_k")
        self.d_model, self.num_heads, self.d_k = d_model, num_heads, d_model // num_heads
        self.W_q, self.W_k = _dense(d_model, d_model), _dense(d_model, d_model)
        self.W_v, self.W_o = _dense(d_model, d_model), _dense(d_model, d_model)
        self.drop = keras.layers.Dropout(dropout)
        self.causal = causal  # True: each query sees only keys up to its own position (the last T of S keys)

    def split(self, x):
        """(B, L, D) -> (B, h, L, d_k)."""
        B, L = tf.shape(x)[0], tf.shape(x)[1]
        x = tf.reshape(x, [B, L, self.num_heads, self.d_k])               # (B, L, h, d_k)
        return tf.transpose(x, [0, 2, 1, 3])                               # (B, h, L, d_k)

    def keys_values(self, key, value):
        """Projected, split keys and values: (B, S, D) each -> (B, h, S, d_k) each."""
        return self.split(self.W_k(key)), self.split(self.W_v(value))      # (B, h, S, d_k) each

    def call(self, query, key=None, value=None, attn_mask=None, kv=None,
             training: bool = False):
        """query (B, T, D), key/value (B, S, D) -> (B, T, D), weights (B, h, T, S).

        `kv`: keys and values already projected and split, (B, h, S, d_k) each."""
        if len(query.shape) != 3 or query.shape[-1] != self.d_model:
            raise ValueError(f"query must be (batch, length, {self.d_model}), "
                             f"got {tuple(query.shape)}")
        B, T = tf.shape(query)[0], tf.shape(query)[1]
        q = self.split(self.W_q(query))                         # (B, h, T, d_k)
        if kv is None:
            kv = self.keys_values(key, value)
        k, v = kv                                         # (B, h, S, d_k) each
        if self.causal:
            causal = causal_mask(T, None, tf.shape(k)[2])               # (T, S)
            attn_mask = (causal if attn_mask is None
                         else tf.logical_and(attn_mask, causal))  # (B, h, T, S)
        out, weights = scaled_dot_product_attention(
            q, k, v, attn_mask, self.drop, training)  # (B, h, T, d_k), weights
        out = tf.transpose(out, [0, 2, 1, 3])                   # (B, T, h, d_k)
        out = tf.reshape(out, [B, T, self.d_model])  # (B, T, D): heads concat
        return self.W_o(out), weights               # (B, T, D), (B, h, T, S)


def library_twin(mha: MultiHeadAttention) -> keras.layers.MultiHeadAttention:
    """A `keras.layers.MultiHeadAttention` holding the same weights (its kernels are (D, h, d_k) and (h, d_k, D))."""
    D, h, dk = mha.d_model, mha.num_heads, mha.d_k
    lib = keras.layers.MultiHeadAttention(num_heads=h, key_dim=dk)
    lib.build((None, None, D), (None, None, D))
    for dense, w in ((lib.query_dense, mha.W_q), (lib.key_dense, mha.W_k), (lib.value_dense, mha.W_v)):
        dense.kernel.assign(tf.reshape(w.kernel, [D, h, dk]))              # (D, D) -> (D, h, d_k)
        dense.bias.assign(tf.reshape(w.bias, [h, dk]))                     # (D,) -> (h, d_k)
    lib.output_dense.kernel.assign(tf.reshape(mha.W_o.kernel, [h, dk, D]))   # (D, D) -> (h, d_k, D)
    lib.output_dense.bias.assign(mha.W_o.bias)                             # (D,)
    return lib


def sinusoidal_encoding(max_len: int, d_model: int) -> np.ndarray:
    """PE[pos, 2i] = sin(pos / 10000^(2i/D)), PE[pos, 2i+1] = cos(pos / 10000^(2i/D)) -> (max_len, D) float32."""
    if d_model % 2:
        raise ValueError(f"sinusoidal positions need an even d_model, got {d_model}")
    pos = np.arange(max_len)[:, None]                                      # (L, 1)
    freq = 10000.0 ** (-np.arange(0, d_model, 2) / d_model)                # (D/2,)
    pe = np.zeros((max_len, d_model))                                      # (L, D)
    pe[:, 0::2], pe[:, 1::2] = np.sin(pos * freq), np.cos(pos * freq)      # (L, D/2) each
    return pe.astype(np.float32)


class PositionalEncoding(keras.layers.Layer):
    """Adds position vectors to embeddings: fixed sinusoids (Vaswani et al.) or a learned table."""

    def __init__(self, d_model: int, max_len: int = 256, learned: bool = False, std: float = 1.0):
        super().__init__()
        self.max_len, self.learned = max_len, learned
        if learned:   # std 1: the scale of token embeddings multiplied by sqrt(D), so positions are seen
            self.table = self.add_weight(shape=(max_len, d_model), name="table",
                                         initializer=keras.initializers.RandomNormal(stddev=std))    # (L, D), trained
        else:
            self.table = tf.constant(sinusoidal_encoding(max_len, d_model))                          # (L, D), fixed

    def call(self, x, start=0):
        """x (B, L, D) at positions start .. start+L-1 -> x + PE (B, L, D)."""
        L = tf.shape(x)[1]
        if isinstance(start, int) and x.shape[1] is not None and start + x.shape[1] > self.max_len:
            raise ValueError(f"position {start + x.shape[1] - 1} is beyond max_len={self.max_len}: "
                             "build the model with a larger max_len or shorten the input")
        return x + tf.cast(self.table[start:start + L], x.dtype)           # (B, L, D) + (L, D), in x's precision


class FeedForward(keras.layers.Layer):
    """Position-wise feed-forward network: Dense(F) -> ReLU -> dropout -> Dense(D)."""

    def __init__(self, d_model: int, d_ff: int, dropout: float = 0.0):
        super().__init__()
        self.lin1, self.lin2, self.drop = _dense(d_ff, d_model), _dense(d_model, d_ff), keras.layers.Dropout(dropout)

    def call(self, x, training: bool = False):
        """(B, L, D) -> (B, L, D), the same network at every position."""
        return self.lin2(self.drop(tf.nn.relu(self.lin1(x)), training=training))   # (B, L, F) -> (B, L, D)


def _norm(d_model: int) -> keras.layers.LayerNormalization:
    layer = keras.layers.LayerNormalization(epsilon=EPS)
    layer.build((None, d_model))
    return layer


class EncoderLayer(keras.layers.Layer):
    """Pre-norm self-attention block and feed-forward block, each wrapped in a residual connection."""

    def __init__(self, d_model: int, num_heads: int, d_ff: int, dropout: float = 0.0):
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, num_heads, dropout)
        self.ff = FeedForward(d_model, d_ff, dropout)
        self.norm1, self.norm2 = _norm(d_model), _norm(d_model)
        self.drop = keras.layers.Dropout(dropout)

    def call(self, x, src_mask, training: bool = False):
        """x (B, S, D), src_mask (B, 1, 1, S) -> x (B, S, D), self-attention weights (B, h, S, S)."""
        y = self.norm1(x)                                                  # (B, S, D)
        a, weights = self.self_attn(y, y, y, src_mask, training=training)  # (B, S, D), (B, h, S, S)
        x = x + self.drop(a, training=training)                            # (B, S, D)
        return x + self.drop(self.ff(self.norm2(x), training=training), training=training), weights   # (B, S, D)


class DecoderLayer(keras.layers.Layer):
    """Pre-norm masked self-attention, cross-attention to the encoder output, feed-forward; residuals around each."""

    def __init__(self, d_model: int, num_heads: int, d_ff: int, dropout: float = 0.0):
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, num_heads, dropout, causal=True)
        self.cross_attn = MultiHeadAttention(d_model, num_heads, dropout)
        self.ff = FeedForward(d_model, d_ff, dropout)
        self.norm1, self.norm2, self.norm3 = _norm(d_model), _norm(d_model), _norm(d_model)
        self.drop = keras.layers.Dropout(dropout)

    def call(self, x, cross_kv, src_mask, tgt_mask=None, cache=None,
             training: bool = False):
        """x (B, T, D) -> x (B, T, D), weights, new cache (B, h, t+T, d_k) x 2.

        `cross_kv`: the encoder output's projected keys and values,
        (B, h, S, d_k) each; `cache`: the keys and values of the t earlier
        target positions (None = none), to which this call's T positions are
        appended. Weights: self (B, h, T, t+T), cross (B, h, T, S). The
        self-attention is causal by construction; `tgt_mask` (True = may
        attend) is an extra mask on top.
        """
        y = self.norm1(x)                                            # (B, T, D)
        k, v = self.self_attn.keys_values(y, y)       # (B, h, T, d_k) each
        if cache is not None:
            k = tf.concat([cache[0], k], axis=2)            # (B, h, t+T, d_k)
            v = tf.concat([cache[1], v], axis=2)            # (B, h, t+T, d_k)
        a, self_w = self.self_attn(y, attn_mask=tgt_mask, kv=(k, v),
                                   training=training)                # (B, T, D)
        x = x + self.drop(a, training=training)                      # (B, T, D)
        a, cross_w = self.cross_attn(self.norm2(x), attn_mask=src_mask,
                                     kv=cross_kv, training=training) # (B, T, D)
        x = x + self.drop(a, training=training)                      # (B, T, D)
        a = self.ff(self.norm3(x), training=training)                # (B, T, D)
        x = x + self.drop(a, training=training)                      # (B, T, D)
        return x, (self_w, cross_w), (k, v)


class _EmbeddedStack(keras.layers.Layer):
    """What Encoder and Decoder share: embedding * sqrt(D) + positions, N layers of `layer`, a final LayerNorm."""

    def __init__(self, layer: type, vocab_size: int, d_model: int, num_heads: int, num_layers: int, d_ff: int,
                 dropout: float, max_len: int, learned_positions: bool):
        super().__init__()
        self.embed = keras.layers.Embedding(vocab_size, d_model,
                                            embeddings_initializer=keras.initializers.RandomNormal(stddev=d_model ** -0.5))
        self.embed.build((None, None))
        self.pos = PositionalEncoding(d_model, max_len, learned_positions)
        self.layers_ = [layer(d_model, num_heads, d_ff, dropout) for _ in range(num_layers)]
        self.norm = _norm(d_model)
        self.drop = keras.layers.Dropout(dropout)
        self.scale = math.sqrt(d_model)

    def embed_tokens(self, ids, start=0, training: bool = False):
        """Ids (B, L) at positions start .. start+L-1 -> dropout(embedding * sqrt(D) + PE), (B, L, D)."""
        return self.drop(self.pos(self.embed(ids) * self.scale, start=start), training=training)   # (B, L, D)


class Encoder(_EmbeddedStack):
    """Embedding * sqrt(D) + positions, N encoder layers, final LayerNorm."""

    def __init__(self, vocab_size: int, d_model: int, num_heads: int, num_layers: int, d_ff: int,
                 dropout: float = 0.0, max_len: int = 256, learned_positions: bool = False):
        super().__init__(EncoderLayer, vocab_size, d_model, num_heads, num_layers, d_ff, dropout, max_len,
                         learned_positions)

    def call(self, src, src_mask, training: bool = False):
        """Source ids (B, S), mask (B, 1, 1, S) -> encoder output (B, S, D), per-layer weights (B, h, S, S)."""
        x = self.embed_tokens(src, training=training)                      # (B, S, D)
        weights = []
        for layer in self.layers_:
            x, w = layer(x, src_mask, training=training)                   # (B, S, D), (B, h, S, S)
            weights.append(w)
        return self.norm(x), weights                                       # (B, S, D)


class Decoder(_EmbeddedStack):
    """Embedding * sqrt(D) + positions, N decoder layers, final LayerNorm, output = embedding matrix transposed."""

    def __init__(self, vocab_size: int, d_model: int, num_heads: int, num_layers: int, d_ff: int,
                 dropout: float = 0.0, max_len: int = 256, learned_positions: bool = False):
        super().__init__(DecoderLayer, vocab_size, d_model, num_heads, num_layers, d_ff, dropout, max_len,
                         learned_positions)

    def cross_keys_values(self, memory) -> tuple:
        """Each layer's cross-attention keys and values of the encoder output (B, S, D) -> ((B, h, S, d_k) x 2) per layer."""
        return tuple(layer.cross_attn.keys_values(memory, memory) for layer in self.layers_)

    def call(self, tgt_in, cross_kv, src_mask, cache=None, training: bool = False):
        """Target ids (B, T) after t cached positions -> logits (B, T, V), weights per layer, new cache per layer."""
        t = 0 if cache is None else tf.shape(cache[0][0])[2]               # positions already decoded
        x = self.embed_tokens(tgt_in, start=t, training=training)          # (B, T, D)
        weights, new_cache = [], []
        for i, layer in enumerate(self.layers_):
            x, w, kv = layer(x, cross_kv[i], src_mask, None, None if cache is None else cache[i],
                             training=training)   # (B, T, D); the self-attention is causal
            weights.append(w)
            new_cache.append(kv)
        logits = tf.matmul(self.norm(x), self.embed.embeddings, transpose_b=True)   # (B, T, D) @ (D, V) -> (B, T, V)
        return logits, weights, tuple(new_cache)


class Transformer(keras.Model):
    """The encoder–decoder Transformer; `call` is the teacher-forced pass used in training."""

    def __init__(self, src_vocab_size: int, tgt_vocab_size: int, d_model: int = 128, num_heads: int = 4,
                 num_encoder_layers: int = 2, num_decoder_layers: int = 2, d_ff: int = 256, dropout: float = 0.1,
                 max_len: int = 256, learned_positions: bool = False, pad_id: int = 0):
        super().__init__()
        self.pad_id, self.num_heads, self.d_k = pad_id, num_heads, d_model // num_heads
        self.encoder = Encoder(src_vocab_size, d_model, num_heads, num_encoder_layers, d_ff, dropout, max_len,
                               learned_positions)
        self.decoder = Decoder(tgt_vocab_size, d_model, num_heads, num_decoder_layers, d_ff, dropout, max_len,
                               learned_positions)
        self.built = True

    def source_mask(self, src):
        """(B, S) ids -> (B, 1, 1, S) boolean mask of real tokens; rejects bad shapes and all-padding rows."""
        if len(src.shape) != 2:
            raise ValueError(f"expected source ids of shape (batch, source length), got {tuple(src.shape)}")
        keep = padding_mask(src, self.pad_id)                              # (B, 1, 1, S)
        if tf.executing_eagerly() and bool(tf.reduce_any(~tf.reduce_any(keep, axis=-1))):
            raise ValueError("a source row is all padding: every source needs at least one real token")
        return keep

    def call(self, src, tgt_in, training: bool = False):
        """Logits of every target position given the source (B, S) and the shifted targets (B, T) -> (B, T, V)."""
        return self.attention(src, tgt_in, training=training)[0]          # (B, T, V)

    def attention(self, src, tgt_in, training: bool = False):
        """Logits (B, T, V) and every attention map: {"encoder": [(B, h, S, S)], "decoder": [(B, h, T, T)], "cross": [(B, h, T, S)]}."""
        src = tf.convert_to_tensor(src)                                    # (B, S)
        src_mask = self.source_mask(src)                                   # (B, 1, 1, S)
        memory, enc_w = self.encoder(src, src_mask, training=training)     # (B, S, D)
        logits, dec_w, _ = self.decoder(tgt_in, self.decoder.cross_keys_values(memory), src_mask,
                                        training=training)                 # (B, T, V)
        return logits, {"encoder": enc_w, "decoder": [w[0] for w in dec_w], "cross": [w[1] for w in dec_w]}

    # -- the decoding protocol of llmbook.tf.decoding -----------------------------------------------------
    def encode(self, src) -> dict:
        """Source ids (B, S) -> {"mask": (B, 1, 1, S), "cross": per layer ((B, h, S, d_k), (B, h, S, d_k))}."""
        src = tf.convert_to_tensor(src)                                    # (B, S)
        src_mask = self.source_mask(src)                                   # (B, 1, 1, S)
        memory, _ = self.encoder(src, src_mask)                            # (B, S, D)
        return {"mask": src_mask, "cross": self.decoder.cross_keys_values(memory)}

    def initial_state(self, memory: dict) -> tuple:
        """Empty key/value caches, one (k, v) pair per decoder layer, each (B, h, 0, d_k)."""
        B = tf.shape(memory["mask"])[0]
        empty = tf.zeros([B, self.num_heads, 0, self.d_k])                 # (B, h, 0, d_k)
        return tuple((empty, empty) for _ in self.decoder.layers_)

    def step(self, prev, memory: dict, state: tuple):
        """One step at t = cache length: tokens (N,) -> logits (N, V), caches.

        The caches grow to (N, h, t+1, d_k)."""
        logits, _, state = self.decoder(prev[:, None], memory["cross"],
                                        memory["mask"], state)    # (N, 1, V)
        return logits[:, 0], state                           # (N, V), caches
