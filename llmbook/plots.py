"""The few plotting helpers the chapters share (matplotlib)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt


def line_plot(x: Sequence, series: Mapping[str, Sequence[float]], xlabel: str, ylabel: str,
              title: str = "", logy: bool = False, ax=None):
    """One line per named series over the same x values (or its own, given as an (x, y) pair); returns the axes."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 3.5))
    for name, ys in series.items():
        xs, ys = ys if isinstance(ys, tuple) else (x, ys)
        ax.plot(list(xs), list(ys), marker="o", label=name)
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


def power_law_plot(n: Sequence[float], loss: Sequence[float], labels: Sequence[str], a: float, alpha: float,
                   xlabel: str = "non-embedding parameters N", ylabel: str = "validation nats/char"):
    """Measured (N, L) points on log-log axes with the fitted line L = a N^-alpha; returns the axes."""
    import numpy as np
    from matplotlib.ticker import FuncFormatter, NullFormatter
    n, loss = np.asarray(n, float), np.asarray(loss, float)
    _, ax = plt.subplots(figsize=(5.5, 3.6))
    grid = np.geomspace(n.min() / 1.5, n.max() * 1.5, 50)                    # the line spans the points
    ax.loglog(grid, a * grid ** -alpha, "k:", label=f"fit: L = {a:.2f} N^-{alpha:.3f}")
    ax.loglog(n, loss, "o", label="measured")
    for x, y, name in zip(n, loss, labels):
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(6, 4))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))      # 1.6, not 1.6 x 10^0
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set(xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    return ax
