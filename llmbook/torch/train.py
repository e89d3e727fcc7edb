"""The one PyTorch training loop of the course: mini-batches in, history out."""
from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from llmbook.torch import device as best_device

IGNORE_INDEX = -100


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor, ignore_index: int = IGNORE_INDEX,
                  label_smoothing: float = 0.0) -> torch.Tensor:
    """Mean token cross-entropy (nats) of logits (..., V) against ids (...), skipping `ignore_index`.

    With label smoothing eps the target is (1 - eps) one-hot + eps / V uniform:
    loss = (1 - eps) (-log p_y) + eps mean_v(-log p_v).
    """
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=ignore_index,
                           label_smoothing=label_smoothing)


def warmup_inverse_sqrt(peak_lr: float, warmup_steps: int) -> Callable[[int], float]:
    """Learning rate at step s = 1, 2, ...: linear warm-up to `peak_lr` over `warmup_steps`, then peak * sqrt(warmup / s).

    Vaswani et al.'s d_model^-0.5 min(s^-0.5, s warmup^-1.5) is this with peak_lr = (d_model warmup)^-0.5.
    """
    if warmup_steps < 1 or peak_lr <= 0:
        raise ValueError(f"need warmup_steps >= 1 and peak_lr > 0, got {warmup_steps} and {peak_lr}")
    return lambda s: peak_lr * min(s / warmup_steps, (warmup_steps / max(s, 1)) ** 0.5)


PRECISIONS = ("fp32", "bf16", "fp16", "auto")
SYNC_EVERY = 50   # steps between host reads of the loss (progress bar, finiteness check)


def _to(batch, dev):
    """NumPy arrays (or a tuple of them) -> tensors on `dev`."""
    if isinstance(batch, (tuple, list)):
        return tuple(torch.as_tensor(b, device=dev) for b in batch)
    return (torch.as_tensor(batch, device=dev),)


def resolve_precision(precision: str, device: torch.device | str) -> str:
    """'fp32', 'bf16' or 'fp16' for a requested precision on `device`; 'auto' = bf16 on a GPU that has it, else fp32."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    dev = torch.device(device)
    if precision == "auto":
        return "bf16" if dev.type == "cuda" and torch.cuda.is_bf16_supported() else "fp32"
    return precision


def autocast(device: torch.device | str, precision: str):
    """The torch.autocast context for a resolved precision (fp32: a disabled one, i.e. plain float32)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    return torch.autocast(torch.device(device).type, dtype=dtype)


def _read(losses: list[torch.Tensor], start: int, hist: dict) -> None:
    """Copy step losses[start:] to the host (one sync), append them to hist['step_loss'], fail if not finite."""
    values = torch.stack(losses[start:]).float().cpu().tolist() if len(losses) > start else []
    for i, value in enumerate(values):
        if not np.isfinite(value):
            raise FloatingPointError(f"training loss became {value} at step {len(hist['step_loss']) + i}: "
                                     "lower the learning rate or clip gradients (or use precision='fp32')")
    hist["step_loss"].extend(values)


def fit(model: torch.nn.Module, train: Iterable, *, epochs: int = 1, lr: float = 1e-3,
        optimizer: torch.optim.Optimizer | None = None, clip: float | None = 1.0,
        valid: Iterable | None = None, loss_fn: Callable = cross_entropy,
        ignore_index: int = IGNORE_INDEX, device: torch.device | str | None = None,
        progress: bool = True, schedule: Callable[[int], float] | None = None,
        label_smoothing: float = 0.0, precision: str = "fp32") -> dict[str, list[float]]:
    """Train with Adam (or `optimizer`) and global-norm gradient clipping; return the loss history.

    `schedule(step)` (step = 1, 2, ... counted over calls on the same optimizer) sets the learning rate
    before each update, e.g. `warmup_inverse_sqrt`; `label_smoothing` > 0 is passed to `loss_fn`
    (training loss only: "val_loss" stays the plain cross-entropy).

    `precision`: "fp32"; "bf16" or "fp16" run the forward pass and loss under `torch.autocast` (weights and
    optimizer stay float32; fp16 also scales the loss with a GradScaler so small gradients do not
    underflow); "auto" = bf16 on a GPU that supports it, else fp32. The model moves to `device`
    (default `llmbook.torch.device()`); losses stay on the device and are read every SYNC_EVERY steps.

    `train` (and `valid`) yield (inputs, targets) NumPy batches and are iterated once per epoch;
    `inputs` is an array or a tuple of arrays passed to `model(*inputs)`.
    History: "loss" (mean train loss per epoch), "val_loss" (per epoch, if `valid`), "step_loss",
    "seconds" (wall time per epoch).
    """
    dev = torch.device(device) if device is not None else best_device()
    precision = resolve_precision(precision, dev)
    model.to(dev)
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
    opt = optimizer or torch.optim.Adam(model.parameters(), lr=lr)
    scaler = torch.amp.GradScaler(dev.type) if precision == "fp16" else None
    smooth = {"label_smoothing": label_smoothing} if label_smoothing else {}
    hist: dict[str, list[float]] = {"loss": [], "val_loss": [], "step_loss": [], "seconds": []}
    for epoch in range(epochs):
        model.train()
        start = time.perf_counter()
        losses, counts, read = [], [], 0                 # per-step 0-d tensors, kept on the device
        bar = tqdm(train, desc=f"epoch {epoch + 1}/{epochs}", disable=not progress, leave=True)
        for inputs, targets in bar:
            inputs, (targets,) = _to(inputs, dev), _to(targets, dev)
            if schedule is not None:
                opt.llmbook_step = getattr(opt, "llmbook_step", 0) + 1
                for group in opt.param_groups:
                    group["lr"] = schedule(opt.llmbook_step)
            with autocast(dev, precision):
                loss = loss_fn(model(*inputs), targets, ignore_index=ignore_index, **smooth)
            opt.zero_grad(set_to_none=True)
            if scaler is None:
                loss.backward()
                if clip is not None:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
                opt.step()
            else:
                scaler.scale(loss).backward()
                scaler.unscale_(opt)                       # clip the true gradients, not the scaled ones
                if clip is not None:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
                scaler.step(opt)                           # skips the step if a gradient overflowed
                scaler.update()
            losses.append(loss.detach())
            counts.append((targets != ignore_index).sum())
            if len(losses) - read >= SYNC_EVERY:
                _read(losses, read, hist)
                read = len(losses)
                bar.set_postfix(loss=f"{hist['step_loss'][-1]:.3f}")
        _read(losses, read, hist)
        if losses:
            n = torch.stack(counts).cpu().double()                                  # (steps,)
            total = (torch.stack(losses).cpu().double() * n).sum()
            hist["loss"].append(float(total / max(float(n.sum()), 1.0)))
        else:
            hist["loss"].append(0.0)
        if valid is not None:
            hist["val_loss"].append(evaluate(model, valid, loss_fn=loss_fn, ignore_index=ignore_index, device=dev,
                                             precision=precision))
        hist["seconds"].append(time.perf_counter() - start)
    return hist


@torch.no_grad()
def evaluate(model: torch.nn.Module, batches: Iterable, loss_fn: Callable = cross_entropy,
             ignore_index: int = IGNORE_INDEX, device: torch.device | str | None = None,
             precision: str = "fp32") -> float:
    """Mean loss per (non-ignored) target token over all batches, in eval mode (`precision` as in `fit`)."""
    dev = torch.device(device) if device is not None else next(model.parameters()).device
    precision = resolve_precision(precision, dev)
    model.eval()
    losses, counts = [], []
    for inputs, targets in batches:
        inputs, (targets,) = _to(inputs, dev), _to(targets, dev)
        with autocast(dev, precision):
            loss = loss_fn(model(*inputs), targets, ignore_index=ignore_index)
        losses.append(loss.detach())
        counts.append((targets != ignore_index).sum())
    n = torch.stack(counts).cpu().double() if counts else torch.zeros(0, dtype=torch.float64)   # (batches,)
    if float(n.sum()) == 0:
        raise ValueError("evaluate() got no target tokens: are the batches empty or all padding?")
    return float((torch.stack(losses).cpu().double() * n).sum() / n.sum())
