"""Bengio et al. (2003) neural probabilistic language model, from scratch and with Keras layers.

Twin of `llmbook.torch.lm` (same class names and arguments). Shapes: B batch, N = n-1 context
tokens, E embedding size, h hidden units (the paper's letter; H is the hidden layer's weight
matrix), V vocabulary.

    x = [C(w_{t-N}); ...; C(w_{t-1})]            concatenated embeddings, oldest first, (B, N E)
    a = tanh(d + x H)                            hidden layer, (B, h)
    y = b + x W + a U                            logits (the direct term x W is optional), (B, V)
"""
from __future__ import annotations

import math

import keras
import tensorflow as tf


class NNLMFromScratch(keras.Model):
    """The NNLM written with explicit parameter matrices, as in the paper's equations."""

    def __init__(self, vocab_size: int, context: int, embed_dim: int, hidden_dim: int,
                 direct: bool = False, dropout: float = 0.0):
        super().__init__()
        self.context = context
        fan_in = context * embed_dim
        u = lambda fan: keras.initializers.RandomUniform(-1 / math.sqrt(fan), 1 / math.sqrt(fan))  # noqa: E731
        self.C = self.add_weight(shape=(vocab_size, embed_dim), initializer=keras.initializers.RandomNormal(stddev=0.1), name="C")  # (V, E)
        self.H = self.add_weight(shape=(fan_in, hidden_dim), initializer=u(fan_in), name="H")            # (N E, h)
        self.d = self.add_weight(shape=(hidden_dim,), initializer="zeros", name="d")                     # (h,)
        self.U = self.add_weight(shape=(hidden_dim, vocab_size), initializer=u(hidden_dim), name="U")    # (h, V)
        self.b = self.add_weight(shape=(vocab_size,), initializer="zeros", name="b")                      # (V,)
        self.W = self.add_weight(shape=(fan_in, vocab_size), initializer=u(fan_in), name="W") if direct else None  # (N E, V)
        self.drop = keras.layers.Dropout(dropout)

    def call(self, ids, training: bool = False):
        """Logits of the next token given the previous `context` token ids (B, N) -> (B, V)."""
        _check_context(ids, self.context)
        x = tf.reshape(tf.gather(self.C, ids), (-1, self.context * self.C.shape[1]))  # (B, N) -> (B, N, E) -> (B, N E)
        a = tf.tanh(self.d + x @ self.H)                                            # (B, h)
        y = self.b + self.drop(a, training=training) @ self.U                       # (B, V)
        if self.W is not None:
            y = y + x @ self.W                                                      # (B, V)
        return y


class NNLM(keras.Model):
    """The same NNLM from library layers: Embedding -> Dense(tanh) -> Dense."""

    def __init__(self, vocab_size: int, context: int, embed_dim: int, hidden_dim: int,
                 direct: bool = False, dropout: float = 0.0):
        super().__init__()
        self.context, self.embed_dim = context, embed_dim
        self.embed = keras.layers.Embedding(vocab_size, embed_dim)                  # C
        self.hidden = keras.layers.Dense(hidden_dim, activation="tanh")             # H, d
        self.out = keras.layers.Dense(vocab_size)                                   # U, b
        self.direct = keras.layers.Dense(vocab_size, use_bias=False) if direct else None  # W
        self.drop = keras.layers.Dropout(dropout)
        self.build((None, context))

    def build(self, input_shape):
        self.embed.build(input_shape)
        self.hidden.build((None, self.context * self.embed_dim))
        self.out.build((None, self.hidden.units))
        if self.direct is not None:
            self.direct.build((None, self.context * self.embed_dim))
        self.built = True

    def call(self, ids, training: bool = False):
        """Logits of the next token given the previous `context` token ids (B, N) -> (B, V)."""
        _check_context(ids, self.context)
        x = tf.reshape(self.embed(ids), (-1, self.context * self.embed_dim))  # (B, N E)
        a = self.hidden(x)                                                     # (B, h)
        y = self.out(self.drop(a, training=training))                          # (B, V)
        if self.direct is not None:
            y = y + self.direct(x)                                             # (B, V)
        return y


def _check_context(ids, context: int) -> None:
    if len(ids.shape) != 2 or (ids.shape[1] is not None and ids.shape[1] != context):
        raise ValueError(f"expected token ids of shape (batch, {context}) — the {context} previous tokens — "
                         f"got {tuple(ids.shape)}")
