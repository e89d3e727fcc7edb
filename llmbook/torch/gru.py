"""Gated recurrent unit (Cho et al. 2014), from scratch, in the form nn.GRU and Keras' GRU compute.

Shapes: B batch, T time steps, E input size, H hidden units. sigma is the logistic sigmoid, * is
the elementwise product.

    z_t = sigma(x_t W_z + h_{t-1} U_z + b_z)                 update gate           (B, H)
    r_t = sigma(x_t W_r + h_{t-1} U_r + b_r)                 reset gate            (B, H)
    n_t = tanh(x_t W_n + b_n + r_t * (h_{t-1} U_n + b_hn))   candidate state       (B, H)
    h_t = (1 - z_t) * n_t + z_t * h_{t-1}                    new state             (B, H)

The reset gate multiplies h_{t-1} U_n *after* the matrix product, with its own bias b_hn inside the
product: that is nn.GRU's formula and Keras' `reset_after=True` (its default). Cho et al. reset
before the product, tanh(x W_n + (r_t * h_{t-1}) U_n + b_n), which is Keras' `reset_after=False`.
`nn.GRU` stacks the gate blocks in the order r, z, n; Keras in the order z, r, h.
"""
from __future__ import annotations

import torch
from torch import nn

from llmbook.torch.rnn import _check_sequence, _library_tensors, _uniform

TORCH_ORDER = ("r", "z", "n")    # block order of nn.GRU's weight_ih_l0, weight_hh_l0 and biases


class GRUCellFromScratch(nn.Module):
    """One GRU step with a named weight matrix, recurrent matrix and bias per gate."""

    def __init__(self, input_dim: int, hidden_dim: int):
        super().__init__()
        self.hidden_dim = hidden_dim
        for g in ("z", "r", "n"):
            setattr(self, f"W_{g}", _uniform(input_dim, hidden_dim, hidden=hidden_dim))   # (E, H)
            setattr(self, f"U_{g}", _uniform(hidden_dim, hidden_dim, hidden=hidden_dim))  # (H, H)
            setattr(self, f"b_{g}", _uniform(hidden_dim, hidden=hidden_dim))              # (H,)
        self.b_hn = _uniform(hidden_dim, hidden=hidden_dim)                               # (H,)

    def forward(self, x: torch.Tensor, h: torch.Tensor, return_gates: bool = False):
        """h_t from x_t (B, E) and h_{t-1} (B, H); optionally the gate activations."""
        z = torch.sigmoid(x @ self.W_z + h @ self.U_z + self.b_z)                  # (B, H) update gate
        r = torch.sigmoid(x @ self.W_r + h @ self.U_r + self.b_r)                  # (B, H) reset gate
        n = torch.tanh(x @ self.W_n + self.b_n + r * (h @ self.U_n + self.b_hn))   # (B, H) candidate
        h = (1 - z) * n + z * h                                                    # (B, H)
        return (h, dict(z=z, r=r, n=n)) if return_gates else h


class GRUFromScratch(nn.Module):
    """The GRU cell unrolled over time."""

    def __init__(self, input_dim: int, hidden_dim: int):
        super().__init__()
        self.cell = GRUCellFromScratch(input_dim, hidden_dim)

    def forward(self, x: torch.Tensor, h0: torch.Tensor | None = None, return_gates: bool = False):
        """Hidden states (B, T, H) and the last one (B, H) for x (B, T, E); optionally gates, each (B, T, H)."""
        _check_sequence(x, self.cell.W_z.shape[0])
        h = x.new_zeros(x.shape[0], self.cell.hidden_dim) if h0 is None else h0   # (B, H)
        hs, gates = [], {k: [] for k in "zrn"}
        for t in range(x.shape[1]):
            h, g = self.cell(x[:, t], h, return_gates=True)                        # (B, H)
            hs.append(h)
            for k in gates:
                gates[k].append(g[k])
        out = torch.stack(hs, dim=1)                                               # (B, T, H)
        if return_gates:
            return out, h, {k: torch.stack(v, dim=1) for k, v in gates.items()}    # (B, T, H) each
        return out, h

    def load_library_weights(self, layer: nn.GRU | nn.GRUCell) -> "GRUFromScratch":
        """Copy a one-layer `nn.GRU` (or `nn.GRUCell`): split the r, z, n blocks, transpose, add the z and r biases."""
        w_ih, w_hh, b_ih, b_hh = _library_tensors(layer)
        H = self.cell.hidden_dim
        with torch.no_grad():
            for k, g in enumerate(TORCH_ORDER):
                rows = slice(k * H, (k + 1) * H)
                getattr(self.cell, f"W_{g}").copy_(w_ih[rows].T)                # (H, E) -> (E, H)
                getattr(self.cell, f"U_{g}").copy_(w_hh[rows].T)                # (H, H)
                if g == "n":
                    self.cell.b_n.copy_(b_ih[rows])                             # outside the reset product
                    self.cell.b_hn.copy_(b_hh[rows])                            # inside it
                else:
                    getattr(self.cell, f"b_{g}").copy_(b_ih[rows] + b_hh[rows])
        return self
