"""The one PyTorch training loop of the course: mini-batches in, history out."""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from llmbook.torch import device as best_device

IGNORE_INDEX = -100


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor, ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """Mean token cross-entropy (nats) of logits (..., V) against ids (...), skipping `ignore_index`."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=ignore_index)


def _to(batch, dev):
    """NumPy arrays (or a tuple of them) -> tensors on `dev`."""
    if isinstance(batch, (tuple, list)):
        return tuple(torch.as_tensor(b, device=dev) for b in batch)
    return (torch.as_tensor(batch, device=dev),)


def fit(model: torch.nn.Module, train: Iterable, *, epochs: int = 1, lr: float = 1e-3,
        optimizer: torch.optim.Optimizer | None = None, clip: float | None = 1.0,
        valid: Iterable | None = None, loss_fn: Callable = cross_entropy,
        ignore_index: int = IGNORE_INDEX, device: torch.device | str | None = None,
        progress: bool = True) -> dict[str, list[float]]:
    """Train with Adam (or `optimizer`) and global-norm gradient clipping; return the loss history.

    `train` (and `valid`) yield (inputs, targets) NumPy batches and are iterated once per epoch;
    `inputs` is an array or a tuple of arrays passed to `model(*inputs)`.
    History: "loss" (mean train loss per epoch), "val_loss" (per epoch, if `valid`), "step_loss",
    "seconds" (wall time per epoch).
    """
    dev = torch.device(device) if device is not None else best_device()
    model.to(dev)
    opt = optimizer or torch.optim.Adam(model.parameters(), lr=lr)
    hist: dict[str, list[float]] = {"loss": [], "val_loss": [], "step_loss": [], "seconds": []}
    for epoch in range(epochs):
        model.train()
        start, total, count = time.perf_counter(), 0.0, 0
        bar = tqdm(train, desc=f"epoch {epoch + 1}/{epochs}", disable=not progress, leave=True)
        for inputs, targets in bar:
            inputs, (targets,) = _to(inputs, dev), _to(targets, dev)
            loss = loss_fn(model(*inputs), targets, ignore_index=ignore_index)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            opt.step()
            value = loss.item()
            if not np.isfinite(value):
                raise FloatingPointError(f"training loss became {value} at step {len(hist['step_loss'])}: "
                                         "lower the learning rate or clip gradients")
            n = int((targets != ignore_index).sum())
            total, count = total + value * n, count + n
            hist["step_loss"].append(value)
            bar.set_postfix(loss=f"{value:.3f}")
        hist["loss"].append(total / max(count, 1))
        if valid is not None:
            hist["val_loss"].append(evaluate(model, valid, loss_fn=loss_fn, ignore_index=ignore_index, device=dev))
        hist["seconds"].append(time.perf_counter() - start)
    return hist


@torch.no_grad()
def evaluate(model: torch.nn.Module, batches: Iterable, loss_fn: Callable = cross_entropy,
             ignore_index: int = IGNORE_INDEX, device: torch.device | str | None = None) -> float:
    """Mean loss per (non-ignored) target token over all batches, in eval mode."""
    dev = torch.device(device) if device is not None else next(model.parameters()).device
    model.eval()
    total, count = 0.0, 0
    for inputs, targets in batches:
        inputs, (targets,) = _to(inputs, dev), _to(targets, dev)
        n = int((targets != ignore_index).sum())
        total += loss_fn(model(*inputs), targets, ignore_index=ignore_index).item() * n
        count += n
    if count == 0:
        raise ValueError("evaluate() got no target tokens: are the batches empty or all padding?")
    return total / count
