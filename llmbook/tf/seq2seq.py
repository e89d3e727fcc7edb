"""Encoder–decoder (Seq2Seq) with a fixed-length context, built from Keras library layers (GRU).

Twin of `llmbook.torch.seq2seq` (same class names and arguments). Shapes: B batch, S source length,
T target length, N rows decoded at once (B, or B k for a beam of width k), E embedding size,
H hidden units, V vocabulary (source or target, as the line says).

    h_s = GRU_enc(emb(x_s), h_{s-1})                       encoder states, (B, S, H)
    c   = h_{|x|}                                          the context: state after the last real source token, (B, H)
    s_0 = c,   s_t = GRU_dec([emb(y_{t-1}); c], s_{t-1})   decoder states, (B, T, H)
    P(y_t | y_<t, c) = softmax(W s_t + b)                  (B, T, V)

`keras.layers.GRU` with `reset_after=True` (the default) computes the same cell as `torch.nn.GRU`;
only the gate order of the weights differs, which `llmbook.parity` handles.
"""
from __future__ import annotations

import keras
import tensorflow as tf


class Encoder(keras.layers.Layer):
    """Reads the source ids with a GRU; returns every state and the fixed-length context c."""

    def __init__(self, vocab_size: int, embed_dim: int, hidden_dim: int, pad_id: int = 0, dropout: float = 0.0):
        super().__init__()
        self.pad_id = pad_id
        self.embed = keras.layers.Embedding(vocab_size, embed_dim)
        self.rnn = keras.layers.GRU(hidden_dim, return_sequences=True)
        self.drop = keras.layers.Dropout(dropout)
        self.embed.build((None, None))
        self.rnn.build((None, None, embed_dim))

    def call(self, src, training: bool = False):
        """Source ids (B, S) -> states (B, S, H) and context c (B, H)."""
        lengths = source_lengths(src, self.pad_id)                         # (B,)
        x = self.drop(self.embed(src), training=training)                  # (B, S, E)
        states = self.rnn(x, training=training)                            # (B, S, H)
        context = tf.gather(states, lengths - 1, batch_dims=1)             # (B, H)
        return states, context


class Decoder(keras.layers.Layer):
    """A GRU language model of the target that starts from state c and reads c again at every step."""

    def __init__(self, vocab_size: int, embed_dim: int, hidden_dim: int, dropout: float = 0.0):
        super().__init__()
        self.embed = keras.layers.Embedding(vocab_size, embed_dim)
        self.rnn = keras.layers.GRU(hidden_dim, return_sequences=True, return_state=True)
        self.out = keras.layers.Dense(vocab_size)
        self.drop = keras.layers.Dropout(dropout)
        self.embed.build((None, None))
        self.rnn.build((None, None, embed_dim + hidden_dim))
        self.out.build((None, hidden_dim))

    def call(self, tgt_in, context, state=None, training: bool = False):
        """Decoder inputs (B, T), context (B, H), state (B, H) or None (= c) -> logits (B, T, V), last state (B, H)."""
        y = self.drop(self.embed(tgt_in), training=training)               # (B, T, E)
        B, T = tf.shape(tgt_in)[0], tf.shape(tgt_in)[1]
        c = tf.broadcast_to(context[:, None, :], [B, T, context.shape[-1]])  # (B, H) -> (B, T, H)
        s0 = context if state is None else state                           # (B, H)
        states, last = self.rnn(tf.concat([y, c], axis=-1), initial_state=[s0], training=training)  # (B, T, H), (B, H)
        return self.out(self.drop(states, training=training)), last        # (B, T, V), (B, H)


class Seq2Seq(keras.Model):
    """Encoder -> fixed-length context c -> decoder; `call` is the teacher-forced pass used in training."""

    def __init__(self, src_vocab_size: int, tgt_vocab_size: int, embed_dim: int = 64, hidden_dim: int = 128,
                 dropout: float = 0.0, pad_id: int = 0):
        super().__init__()
        self.encoder = Encoder(src_vocab_size, embed_dim, hidden_dim, pad_id, dropout)
        self.decoder = Decoder(tgt_vocab_size, embed_dim, hidden_dim, dropout)
        self.built = True

    def call(self, src, tgt_in, training: bool = False):
        """Logits of every target position given the source (B, S) and the shifted targets (B, T) -> (B, T, V)."""
        _, context = self.encoder(src, training=training)                 # (B, H)
        logits, _ = self.decoder(tgt_in, context, training=training)      # (B, T, V)
        return logits

    def encode(self, src):
        """The context c of each source (B, S) -> (B, H)."""
        return self.encoder(src)[1]

    def initial_state(self, context):
        """The decoder state before <bos>: s_0 = c, (B, H)."""
        return context

    def step(self, prev, context, state):
        """One decoding step: previous tokens (N,), context (N, H), state (N, H) -> logits (N, V), new state (N, H)."""
        logits, state = self.decoder(prev[:, None], context, state)       # (N, 1, V), (N, H)
        return logits[:, 0], state                                         # (N, V), (N, H)


def source_lengths(src, pad_id: int):
    """Number of real tokens in each right-padded row of (B, S) ids -> (B,); rejects empty or left-padded rows."""
    if len(src.shape) != 2:
        raise ValueError(f"expected source ids of shape (batch, source length), got {tuple(src.shape)}")
    real = tf.not_equal(src, tf.cast(pad_id, src.dtype))                   # (B, S)
    lengths = tf.reduce_sum(tf.cast(real, tf.int64), axis=1)               # (B,)
    if tf.executing_eagerly():
        if bool(tf.reduce_any(lengths == 0)):
            raise ValueError("a source row is all padding: every source needs at least one real token")
        if bool(tf.reduce_any(real[:, 1:] & ~real[:, :-1])):
            raise ValueError(f"sources must be right-padded with pad_id={pad_id} (a real token follows padding): "
                             "use llmbook.data.pad_sequences")
    return lengths
