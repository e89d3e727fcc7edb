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


def attention_cost_plot(cost: dict):
    """Time and memory of one attention layer against sequence length, log-log (benchmarks/attention_cost.py)."""
    import numpy as np
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator
    n = np.array([r["n"] for r in cost["rows"]])                             # the measured lengths
    fig, (t_ax, m_ax) = plt.subplots(1, 2, figsize=(9, 3.4))
    for fw, name, marker in (("torch", "PyTorch", "o"), ("tf", "TensorFlow", "s")):
        t_ax.loglog(n, [1e3 * r[f"{fw}_s"] for r in cost["rows"]], marker=marker,
                    label=f"{name} (slope {cost['exponent'][fw]:.2f} for n ≥ 512)")
    t_ax.loglog(n, 1e3 * cost["rows"][-1]["torch_s"] * (n / n[-1]) ** 2, "k:", label="∝ n²")
    t_ax.set(xlabel="sequence length n", ylabel="ms per attention", title="time (CPU, one thread for PyTorch)")
    m_ax.loglog(n, [r["weights_bytes"] / 2**20 for r in cost["rows"]], marker="o")
    m_ax.set(xlabel="sequence length n", ylabel="MiB", title=f"attention weights ({cost['heads']} × n × n float32)")
    plain = FuncFormatter(lambda v, _: f"{v:g}")                             # 0.01, 1, 100 rather than 10^-2
    for ax in (t_ax, m_ax):
        ax.xaxis.set_major_locator(FixedLocator(n))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_major_formatter(plain)
        ax.yaxis.set_major_formatter(plain)
        ax.tick_params(axis="x", labelrotation=45)
        ax.grid(alpha=0.3)
    t_ax.legend(loc="upper left", fontsize=8)             # the curves rise to the right: the upper left is empty
    fig.tight_layout()
    return t_ax, m_ax
