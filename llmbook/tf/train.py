"""The one TensorFlow training loop of the course: mini-batches in, history out (twin of llmbook.torch.train)."""
from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Iterable

import keras
import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from llmbook.tf import device as best_device

IGNORE_INDEX = -100


def cross_entropy(logits: tf.Tensor, targets: tf.Tensor, ignore_index: int = IGNORE_INDEX,
                  label_smoothing: float = 0.0) -> tf.Tensor:
    """Mean token cross-entropy (nats) of logits (..., V) against ids (...), skipping `ignore_index`.

    With label smoothing eps the target is (1 - eps) one-hot + eps / V uniform (Keras' definition):
    loss = (1 - eps) (-log p_y) + eps mean_v(-log p_v).
    """
    targets = tf.cast(targets, tf.int64)
    keep = tf.not_equal(targets, ignore_index)                                  # (...)
    labels = tf.where(keep, targets, tf.zeros_like(targets))                    # (...)
    if label_smoothing:
        nll = keras.losses.categorical_crossentropy(
            tf.one_hot(labels, tf.shape(logits)[-1], dtype=logits.dtype), logits,
            from_logits=True, label_smoothing=label_smoothing)                  # (...)
    else:
        nll = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)   # (...)
    keep = tf.cast(keep, nll.dtype)
    return tf.reduce_sum(nll * keep) / tf.maximum(tf.reduce_sum(keep), 1.0)


def warmup_inverse_sqrt(peak_lr: float, warmup_steps: int) -> Callable[[int], float]:
    """Learning rate at step s = 1, 2, ...: linear warm-up to `peak_lr` over `warmup_steps`, then peak * sqrt(warmup / s).

    Vaswani et al.'s d_model^-0.5 min(s^-0.5, s warmup^-1.5) is this with peak_lr = (d_model warmup)^-0.5.
    """
    if warmup_steps < 1 or peak_lr <= 0:
        raise ValueError(f"need warmup_steps >= 1 and peak_lr > 0, got {warmup_steps} and {peak_lr}")
    return lambda s: peak_lr * min(s / warmup_steps, (warmup_steps / max(s, 1)) ** 0.5)


def _to(batch):
    """NumPy arrays (or a tuple of them) -> a tuple of tensors."""
    if isinstance(batch, (tuple, list)):
        return tuple(tf.convert_to_tensor(b) for b in batch)
    return (tf.convert_to_tensor(batch),)


_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _compiled(model, key, make):
    """The graph function `make()` for this model and settings, built (and traced) once and reused by later calls."""
    cache = _COMPILED.setdefault(model, {})
    if key not in cache:
        cache[key] = make()
    return cache[key]


def fit(model: keras.Model, train: Iterable, *, epochs: int = 1, lr: float = 1e-3,
        optimizer: keras.optimizers.Optimizer | None = None, clip: float | None = 1.0,
        valid: Iterable | None = None, loss_fn: Callable = cross_entropy,
        ignore_index: int = IGNORE_INDEX, device: str | None = None,
        progress: bool = True, schedule: Callable[[int], float] | None = None,
        label_smoothing: float = 0.0) -> dict[str, list[float]]:
    """Train with Adam (or `optimizer`) and global-norm gradient clipping; return the loss history.

    `schedule(step)` (step = 1, 2, ... counted over calls on the same optimizer) sets the learning rate
    before each update, e.g. `warmup_inverse_sqrt`; `label_smoothing` > 0 is passed to `loss_fn`
    (training loss only: "val_loss" stays the plain cross-entropy).

    `train` (and `valid`) yield (inputs, targets) NumPy batches and are iterated once per epoch;
    `inputs` is an array or a tuple of arrays passed to `model(*inputs, training=True)`.
    History: "loss" (mean train loss per epoch), "val_loss" (per epoch, if `valid`), "step_loss",
    "seconds" (wall time per epoch).
    """
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
    opt = optimizer or keras.optimizers.Adam(learning_rate=lr, epsilon=1e-8)  # torch's Adam epsilon
    smooth = {"label_smoothing": label_smoothing} if label_smoothing else {}

    def make_step():
        @tf.function(reduce_retracing=True)
        def step(inputs, targets):
            with tf.GradientTape() as tape:
                loss = loss_fn(model(*inputs, training=True), targets, ignore_index=ignore_index, **smooth)
            grads = tape.gradient(loss, model.trainable_variables)
            if clip is not None:
                grads, _ = tf.clip_by_global_norm(grads, clip)
            opt.apply_gradients(zip(grads, model.trainable_variables))
            return loss
        return step

    # with the caller's optimizer, one compiled step per (model, optimizer, loss settings): calling fit once
    # per epoch then traces only once (the cached step keeps `opt` alive, so its id cannot be reused)
    step = (make_step() if optimizer is None else
            _compiled(model, ("fit", id(opt), loss_fn, ignore_index, clip, label_smoothing), make_step))

    hist: dict[str, list[float]] = {"loss": [], "val_loss": [], "step_loss": [], "seconds": []}
    with tf.device(device or best_device()):
        for epoch in range(epochs):
            start, total, count = time.perf_counter(), 0.0, 0
            bar = tqdm(train, desc=f"epoch {epoch + 1}/{epochs}", disable=not progress, leave=True)
            for inputs, targets in bar:
                inputs, (targets,) = _to(inputs), _to(targets)
                if schedule is not None:
                    opt.llmbook_step = getattr(opt, "llmbook_step", 0) + 1
                    opt.learning_rate.assign(schedule(opt.llmbook_step))
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
    def make_loss():
        @tf.function(reduce_retracing=True)
        def batch_loss(inputs, targets):
            return loss_fn(model(*inputs, training=False), targets, ignore_index=ignore_index)
        return batch_loss

    batch_loss = _compiled(model, ("evaluate", loss_fn, ignore_index), make_loss)

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
