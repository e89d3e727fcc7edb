"""On-device decoding rules for one step's logits (..., V): twin of llmbook.sampling (NumPy)."""
from __future__ import annotations

import numpy as np
import tensorflow as tf


def greedy(logits) -> tf.Tensor:
    """The most probable id at each row: argmax over the last axis."""
    return tf.argmax(logits, axis=-1, output_type=tf.int64)                # (...,)


def top_k_filter(logits, k: int) -> tf.Tensor:
    """Keep the k largest logits of each row (exactly k), the rest -> -inf."""
    logits = tf.convert_to_tensor(logits)
    V = logits.shape[-1]
    if not 1 <= k <= V:
        raise ValueError(f"top_k must be in 1..{V} (the vocabulary size), got {k}")
    idx = tf.math.top_k(logits, k=k).indices                               # (..., k)
    keep = tf.reduce_any(tf.one_hot(idx, V, dtype=tf.int32) > 0, axis=-2)  # (..., V)
    return tf.where(keep, logits, tf.constant(-np.inf, logits.dtype))


def top_p_filter(logits, p: float) -> tf.Tensor:
    """Keep the smallest set of most probable ids whose probability mass is >= p, the rest -> -inf."""
    if not 0 < p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {p}")
    logits = tf.convert_to_tensor(logits)
    order = tf.argsort(logits, axis=-1, direction="DESCENDING", stable=True)   # (..., V) best first
    sorted_p = tf.nn.softmax(tf.gather(logits, order, batch_dims=len(logits.shape) - 1), axis=-1)   # (..., V)
    before = tf.cumsum(sorted_p, axis=-1) - sorted_p                       # mass of the better ids
    rank = tf.argsort(order, axis=-1, stable=True)                         # (..., V) position of each id
    keep = tf.gather(before < p, rank, batch_dims=len(logits.shape) - 1)   # (..., V)
    return tf.where(keep, logits, tf.constant(-np.inf, logits.dtype))


def sample(logits, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
           generator: tf.random.Generator | int | None = 0) -> tf.Tensor:
    """Draw one id per row: logits / temperature, then top-k, then top-p; temperature 0 is greedy."""
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0 (0 = greedy), got {temperature}")
    logits = tf.convert_to_tensor(logits)
    if temperature == 0:
        return greedy(logits)
    if generator is None or isinstance(generator, int):
        generator = tf.random.Generator.from_seed(generator or 0)
    z = tf.cast(logits, tf.float32) / temperature                          # (..., V)
    if top_k is not None:
        z = top_k_filter(z, top_k)
    if top_p is not None:
        z = top_p_filter(z, top_p)
    flat = tf.reshape(z, [-1, z.shape[-1]])                                # (N, V)
    seed = generator.make_seeds(1)[:, 0]                                   # (2,)
    ids = tf.random.stateless_categorical(flat, 1, seed=seed, dtype=tf.int64)[:, 0]   # (N,)
    return tf.reshape(ids, tf.shape(z)[:-1])
