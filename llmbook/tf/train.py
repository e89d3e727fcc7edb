"""The one TensorFlow training loop of the course: mini-batches in, history out (twin of llmbook.torch.train)."""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import keras
import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from llmbook.tf import device as best_device

IGNORE_INDEX = -100


def cross_entropy(logits: tf.Tensor, targets: tf.Tensor, ignore_index: int = IGNORE_INDEX) -> tf.Tensor:
    """Mean token cross-entropy (nats) of logits (..., V) against ids (...), skipping `ignore_index`."""
    targets = tf.cast(targets, tf.int64)
    keep = tf.not_equal(targets, ignore_index)                                  # (...)
    nll = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.where(keep, targets, tf.zeros_like(targets)), logits=logits)  # (...)
    keep = tf.cast(keep, nll.dtype)
    return tf.reduce_sum(nll * keep) / tf.maximum(tf.reduce_sum(keep), 1.0)


def _to(batch):
    """NumPy arrays (or a tuple of them) -> a tuple of tensors."""
    if isinstance(batch, (tuple, list)):
        return tuple(tf.convert_to_tensor(b) for b in batch)
    return (tf.convert_to_tensor(batch),)


def fit(model: keras.Model, train: Iterable, *, epochs: int = 1, lr: float = 1e-3,
        optimizer: keras.optimizers.Optimizer | None = None, clip: float | None = 1.0,
        valid: Iterable | None = None, loss_fn: Callable = cross_entropy,
        ignore_index: int = IGNORE_INDEX, device: str | None = None,
        progress: bool = True) -> dict[str, list[float]]:
    """Train with Adam (or `optimizer`) and global-norm gradient clipping; return the loss history.

    `train` (and `valid`) yield (inputs, targets) NumPy batches and are iterated once per epoch;
    `inputs` is an array or a tuple of arrays passed to `model(*inputs, training=True)`.
    History: "loss" (mean train loss per epoch), "val_loss" (per epoch, if `valid`), "step_loss",
    "seconds" (wall time per epoch).
    """
    opt = optimizer or keras.optimizers.Adam(learning_rate=lr, epsilon=1e-8)  # torch's Adam epsilon

    @tf.function(reduce_retracing=True)
    def step(inputs, targets):
        with tf.GradientTape() as tape:
            loss = loss_fn(model(*inputs, training=True), targets, ignore_index=ignore_index)
        grads = tape.gradient(loss, model.trainable_variables)
        if clip is not None:
            grads, _ = tf.clip_by_global_norm(grads, clip)
        opt.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    hist: dict[str, list[float]] = {"loss": [], "val_loss": [], "step_loss": [], "seconds": []}
    with tf.device(device or best_device()):
        for epoch in range(epochs):
            start, total, count = time.perf_counter(), 0.0, 0
            bar = tqdm(train, desc=f"epoch {epoch + 1}/{epochs}", disable=not progress, leave=True)
            for inputs, targets in bar:
                inputs, (targets,) = _to(inputs), _to(targets)
                value = float(step(inputs, targets))
                if not np.isfinite(value):
                    raise FloatingPointError(f"training loss became {value} at step {len(hist['step_loss'])}: "
                                             "lower the learning rate or clip gradients")
                n = int(tf.reduce_sum(tf.cast(tf.not_equal(tf.cast(targets, tf.int64), ignore_index), tf.int32)))
                total, count = total + value * n, count + n
                hist["step_loss"].append(value)
                bar.set_postfix(loss=f"{value:.3f}")
            hist["loss"].append(total / max(count, 1))
            if valid is not None:
                hist["val_loss"].append(evaluate(model, valid, loss_fn=loss_fn, ignore_index=ignore_index))
            hist["seconds"].append(time.perf_counter() - start)
    return hist


def evaluate(model: keras.Model, batches: Iterable, loss_fn: Callable = cross_entropy,
             ignore_index: int = IGNORE_INDEX, device: str | None = None) -> float:
    """Mean loss per (non-ignored) target token over all batches, in inference mode."""
    @tf.function(reduce_retracing=True)
    def batch_loss(inputs, targets):
        return loss_fn(model(*inputs, training=False), targets, ignore_index=ignore_index)

    total, count = 0.0, 0
    with tf.device(device or best_device()):
        for inputs, targets in batches:
            inputs, (targets,) = _to(inputs), _to(targets)
            n = int(tf.reduce_sum(tf.cast(tf.not_equal(tf.cast(targets, tf.int64), ignore_index), tf.int32)))
            total += float(batch_loss(inputs, targets)) * n
            count += n
    if count == 0:
        raise ValueError("evaluate() got no target tokens: are the batches empty or all padding?")
    return total / count
