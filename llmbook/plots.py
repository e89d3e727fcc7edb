"""The few plotting helpers the chapters share (matplotlib)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt


def line_plot(x: Sequence, series: Mapping[str, Sequence[float]], xlabel: str, ylabel: str,
              title: str = "", logy: bool = False, ax=None):
    """One line per named series over the same x values; returns the axes."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 3.5))
    for name, ys in series.items():
        ax.plot(list(x), list(ys), marker="o", label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return ax


def loss_curves(histories: Mapping[str, Sequence[float]], title: str = "training loss", ax=None):
    """Per-step loss curves of several runs (e.g. PyTorch vs TensorFlow); returns the axes."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 3.5))
    for name, ys in histories.items():
        ax.plot(range(1, len(ys) + 1), list(ys), label=name, alpha=0.8)
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats/token)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return ax
