"""A convolutional sentence encoder (Kim 2014): 1-D convolutions over embeddings, max over time, one vector.

Twin of `llmbook.torch.cnn` (same class name and arguments). Shapes: B batch, T tokens,
E embedding size, C channels (filters) per width, K widths.

    X = [e(w_1); ...; e(w_T)]                          embeddings                        (B, T, E)
    a^k_{t,c} = relu(b^k_c + sum_{j<k} e(w_{t+j}) . F^k_{c,j})   filter c of width k at t   (B, T-k+1, C)
    z^k_c = max_t a^k_{t,c}                            max-pooling over time             (B, C)
    z = [z^{k_1}; ...; z^{k_K}]                        the fixed-length encoding         (B, K C)

Keras' `Conv1D` works channels last, (B, T, E), and stores its filters as (k, E, C).
"""
from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf



class CNNEncoder(keras.layers.Layer):
    """Embeddings -> one Conv1D + ReLU per filter width -> max over time -> concatenated (B, K C) vector."""

    def __init__(self, vocab_size: int, embed_dim: int, channels: int, widths: Sequence[int] = (3, 4, 5), **kwargs):
        super().__init__(**kwargs)
        self.widths = tuple(widths)
        self.embed = keras.layers.Embedding(vocab_size, embed_dim)
        self.convs = [keras.layers.Conv1D(channels, k, activation="relu") for k in self.widths]
        self.embed.build((None, None))
        for conv in self.convs:
            conv.build((None, None, embed_dim))
        self.built = True

    def call(self, ids):
        """A fixed-length encoding (B, K C) of token ids (B, T), T >= the widest filter."""
        _check_length(ids, max(self.widths))
        x = self.embed(ids)                                                   # (B, T, E)
        pooled = [tf.reduce_max(conv(x), axis=1) for conv in self.convs]      # K x (B, T-k+1, C) -> K x (B, C)
        return tf.concat(pooled, axis=1)                                      # (B, K C)


def _check_length(ids, widest: int) -> None:
    if len(ids.shape) != 2:
        raise ValueError(f"expected token ids of shape (batch, time), got {tuple(ids.shape)}")
    if ids.shape[1] is not None and ids.shape[1] < widest:
        raise ValueError(f"sequences of {ids.shape[1]} tokens are shorter than the widest filter ({widest}): "
                         "pad them or use narrower filters")
