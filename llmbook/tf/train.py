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
    logits = tf.cast(logits, tf.float32)                                        # mixed precision: loss in float32
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


PRECISIONS = ("fp32", "bf16", "fp16", "auto")
SYNC_EVERY = 50   # steps between host reads of the loss (progress bar, finiteness check)
_POLICIES = {"fp32": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}


def resolve_precision(precision: str, device: str | None = None) -> str:
    """'fp32', 'bf16' or 'fp16' for a requested precision; 'auto' = bf16 on a GPU that has it (compute capability >= 8), else fp32."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision != "auto":
        return precision
    if device is not None and "GPU" not in device.upper():
        return "fp32"
    for gpu in tf.config.list_physical_devices("GPU"):
        if tf.config.experimental.get_device_details(gpu).get("compute_capability", (0, 0)) >= (8, 0):
            return "bf16"
    return "fp32"


class _policy:
    """Context: every layer of `model` computes in `precision` (variables stay float32); restored on exit."""

    def __init__(self, model, precision: str):
        self.layers = [model] + list(model._flatten_layers(include_self=False))
        self.policy = _POLICIES[precision]

    def __enter__(self):
        self.saved = [layer.dtype_policy for layer in self.layers]
        if self.policy != "float32":
            for layer in self.layers:
                layer.dtype_policy = self.policy
        return self

    def __exit__(self, *exc):
        if self.policy != "float32":
            for layer, policy in zip(self.layers, self.saved):
                layer.dtype_policy = policy
        return False


def _read(losses: list, start: int, hist: dict) -> None:
    """Copy step losses[start:] to the host (one sync), append them to hist['step_loss'], fail if not finite."""
    values = [float(v) for v in tf.stack(losses[start:]).numpy()] if len(losses) > start else []
    for i, value in enumerate(values):
        if not np.isfinite(value):
            raise FloatingPointError(f"training loss became {value} at step {len(hist['step_loss']) + i}: "
                                     "lower the learning rate or clip gradients (or use precision='fp32')")
    hist["step_loss"].extend(values)


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
        label_smoothing: float = 0.0, precision: str = "fp32") -> dict[str, list[float]]:
    """Train with Adam (or `optimizer`) and global-norm gradient clipping; return the loss history.

    `schedule(step)` (step = 1, 2, ... counted over calls on the same optimizer) sets the learning rate
    before each update, e.g. `warmup_inverse_sqrt`; `label_smoothing` > 0 is passed to `loss_fn`
    (training loss only: "val_loss" stays the plain cross-entropy).

    `precision`: "fp32"; "bf16" or "fp16" give every layer the Keras mixed-precision policy for the call
    (variables stay float32, the loss is computed in float32; fp16 also scales the loss with a
    LossScaleOptimizer); "auto" = bf16 on a GPU that supports it, else fp32. Losses stay on the device
    and are read every SYNC_EVERY steps.

    `train` (and `valid`) yield (inputs, targets) NumPy batches and are iterated once per epoch;
    `inputs` is an array or a tuple of arrays passed to `model(*inputs, training=True)`.
    History: "loss" (mean train loss per epoch), "val_loss" (per epoch, if `valid`), "step_loss",
    "seconds" (wall time per epoch).
    """
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
    precision = resolve_precision(precision, device)
    opt = optimizer or keras.optimizers.Adam(learning_rate=lr, epsilon=1e-8)  # torch's Adam epsilon
    if precision == "fp16":       # one loss-scale wrapper per optimizer, so its scale carries over between calls
        if getattr(opt, "llmbook_scaler", None) is None:
            opt.llmbook_scaler = keras.optimizers.LossScaleOptimizer(opt)
        scaler = opt.llmbook_scaler
    else:
        scaler = None
    smooth = {"label_smoothing": label_smoothing} if label_smoothing else {}

    def make_step():
        @tf.function(reduce_retracing=True)
        def step(inputs, targets):
            with tf.GradientTape() as tape:
                loss = loss_fn(model(*inputs, training=True), targets, ignore_index=ignore_index, **smooth)
                scaled = loss if scaler is None else scaler.scale_loss(loss)
            grads = tape.gradient(scaled, model.trainable_variables)
            if scaler is None:
                if clip is not None:
                    grads, _ = tf.clip_by_global_norm(grads, clip)
                opt.apply_gradients(zip(grads, model.trainable_variables))
            else:   # gradients are S g: clipping S g at S clip is clipping g at clip; the wrapper unscales
                if clip is not None:
                    grads, _ = tf.clip_by_global_norm(grads, clip * tf.cast(scaler.dynamic_scale, tf.float32))
                scaler.apply_gradients(zip(grads, model.trainable_variables))   # skipped on overflow
            n = tf.reduce_sum(tf.cast(tf.not_equal(tf.cast(targets, tf.int64), ignore_index), tf.float32))
            return loss, n
        return step

    # with the caller's optimizer, one compiled step per (model, optimizer, loss settings): calling fit once
    # per epoch then traces only once (the cached step keeps `opt` alive, so its id cannot be reused)
    step = (make_step() if optimizer is None else
            _compiled(model, ("fit", id(opt), loss_fn, ignore_index, clip, label_smoothing, precision),
                      make_step))

    hist: dict[str, list[float]] = {"loss": [], "val_loss": [], "step_loss": [], "seconds": []}
    with tf.device(device or best_device()), _policy(model, precision):
        for epoch in range(epochs):
            start = time.perf_counter()
            losses, counts, read = [], [], 0             # per-step scalars, kept on the device
            bar = tqdm(train, desc=f"epoch {epoch + 1}/{epochs}", disable=not progress, leave=True)
            for inputs, targets in bar:
                inputs, (targets,) = _to(inputs), _to(targets)
                if schedule is not None:
                    opt.llmbook_step = getattr(opt, "llmbook_step", 0) + 1
                    opt.learning_rate.assign(schedule(opt.llmbook_step))
                if scaler is not None and not scaler.built:   # its scale variable must exist before tracing
                    model(*inputs, training=False)
                    scaler.build(model.trainable_variables)
                loss, n = step(inputs, targets)
                losses.append(loss)
                counts.append(n)
                if len(losses) - read >= SYNC_EVERY:
                    _read(losses, read, hist)
                    read = len(losses)
                    bar.set_postfix(loss=f"{hist['step_loss'][-1]:.3f}")
            _read(losses, read, hist)
            if losses:
                n = np.array([float(c) for c in tf.stack(counts).numpy()])               # (steps,)
                total = (tf.stack(losses).numpy().astype(np.float64) * n).sum()
                hist["loss"].append(float(total / max(n.sum(), 1.0)))
            else:
                hist["loss"].append(0.0)
            if valid is not None:
                hist["val_loss"].append(evaluate(model, valid, loss_fn=loss_fn, ignore_index=ignore_index,
                                                 precision=precision))
            hist["seconds"].append(time.perf_counter() - start)
    return hist


def evaluate(model: keras.Model, batches: Iterable, loss_fn: Callable = cross_entropy,
             ignore_index: int = IGNORE_INDEX, device: str | None = None, precision: str = "fp32") -> float:
    """Mean loss per (non-ignored) target token over all batches, in inference mode (`precision` as in `fit`)."""
    precision = resolve_precision(precision, device)

    def make_loss():
        @tf.function(reduce_retracing=True)
        def batch_loss(inputs, targets):
            loss = loss_fn(model(*inputs, training=False), targets, ignore_index=ignore_index)
            n = tf.reduce_sum(tf.cast(tf.not_equal(tf.cast(targets, tf.int64), ignore_index), tf.float32))
            return loss, n
        return batch_loss

    batch_loss = _compiled(model, ("evaluate", loss_fn, ignore_index, precision), make_loss)

    losses, counts = [], []
    with tf.device(device or best_device()), _policy(model, precision):
        for inputs, targets in batches:
            inputs, (targets,) = _to(inputs), _to(targets)
            loss, n = batch_loss(inputs, targets)
            losses.append(loss)
            counts.append(n)
    n = np.array([float(c) for c in tf.stack(counts).numpy()]) if counts else np.zeros(0)   # (batches,)
    if n.sum() == 0:
        raise ValueError("evaluate() got no target tokens: are the batches empty or all padding?")
    return float((tf.stack(losses).numpy().astype(np.float64) * n).sum() / n.sum())
