"""Long short-term memory (Hochreiter & Schmidhuber 1997, with the forget gate of Gers et al. 2000), from scratch.

Shapes: B batch, T time steps, E input size, H hidden units. sigma is the logistic sigmoid, * is
the elementwise product.

    f_t = sigma(x_t W_f + h_{t-1} U_f + b_f)        forget gate                    (B, H)
    i_t = sigma(x_t W_i + h_{t-1} U_i + b_i)        input gate                     (B, H)
    o_t = sigma(x_t W_o + h_{t-1} U_o + b_o)        output gate                    (B, H)
    g_t = tanh(x_t W_C + h_{t-1} U_C + b_C)         candidate cell state, C~_t     (B, H)
    C_t = f_t * C_{t-1} + i_t * g_t                 cell state                     (B, H)
    h_t = o_t * tanh(C_t)                           hidden state (the output)      (B, H)

`nn.LSTM` keeps the four gates stacked in one matrix in the order i, f, g, o:
weight_ih_l0 = [W_i; W_f; W_C; W_o]^T (4H, E), weight_hh_l0 likewise (4H, H), and two biases
bias_ih_l0 + bias_hh_l0 where the equations have one.
"""
from __future__ import annotations

import torch
from torch import nn

from llmbook.torch.rnn import _check_sequence, _library_tensors, _uniform

GATES = ("i", "f", "C", "o")     # the order of nn.LSTM's (and Keras') stacked gate blocks


class LSTMCellFromScratch(nn.Module):
    """One LSTM step with a named weight matrix, recurrent matrix and bias per gate."""

    def __init__(self, input_dim: int, hidden_dim: int):
        super().__init__()
        self.hidden_dim = hidden_dim
        for g in GATES:
            setattr(self, f"W_{g}", _uniform(input_dim, hidden_dim, hidden=hidden_dim))   # (E, H)
            setattr(self, f"U_{g}", _uniform(hidden_dim, hidden_dim, hidden=hidden_dim))  # (H, H)
            setattr(self, f"b_{g}", _uniform(hidden_dim, hidden=hidden_dim))              # (H,)

    def _affine(self, g: str, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return x @ getattr(self, f"W_{g}") + h @ getattr(self, f"U_{g}") + getattr(self, f"b_{g}")  # (B, H)

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor], return_gates: bool = False):
        """(h_t, C_t) from x_t (B, E) and (h_{t-1}, C_{t-1}) (B, H) each; optionally the gate activations."""
        h, c = state
        f = torch.sigmoid(self._affine("f", x, h))     # (B, H) forget gate
        i = torch.sigmoid(self._affine("i", x, h))     # (B, H) input gate
        o = torch.sigmoid(self._affine("o", x, h))     # (B, H) output gate
        g = torch.tanh(self._affine("C", x, h))        # (B, H) candidate C~_t
        c = f * c + i * g                              # (B, H) C_t
        h = o * torch.tanh(c)                          # (B, H) h_t
        return ((h, c), dict(f=f, i=i, o=o, g=g)) if return_gates else (h, c)


class LSTMFromScratch(nn.Module):
    """The LSTM cell unrolled over time."""

    def __init__(self, input_dim: int, hidden_dim: int):
        super().__init__()
        self.cell = LSTMCellFromScratch(input_dim, hidden_dim)

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None,
                return_gates: bool = False):
        """Hidden states (B, T, H) and the final (h_T, C_T) for x (B, T, E); optionally gates, each (B, T, H)."""
        _check_sequence(x, self.cell.W_i.shape[0])
        if state is None:
            zeros = x.new_zeros(x.shape[0], self.cell.hidden_dim)     # (B, H)
            state = (zeros, zeros)
        hs, gates = [], {k: [] for k in "fiog"}
        for t in range(x.shape[1]):
            state, g = self.cell(x[:, t], state, return_gates=True)   # (B, H) each
            hs.append(state[0])
            for k in gates:
                gates[k].append(g[k])
        out = torch.stack(hs, dim=1)                                  # (B, T, H)
        if return_gates:
            return out, state, {k: torch.stack(v, dim=1) for k, v in gates.items()}   # (B, T, H) each
        return out, state

    def load_library_weights(self, layer: nn.LSTM | nn.LSTMCell) -> "LSTMFromScratch":
        """Copy a one-layer `nn.LSTM` (or `nn.LSTMCell`): split the i, f, g, o blocks, transpose, add the biases."""
        w_ih, w_hh, b_ih, b_hh = _library_tensors(layer)
        H = self.cell.hidden_dim
        with torch.no_grad():
            for k, g in enumerate(GATES):
                rows = slice(k * H, (k + 1) * H)
                getattr(self.cell, f"W_{g}").copy_(w_ih[rows].T)                # (H, E) -> (E, H)
                getattr(self.cell, f"U_{g}").copy_(w_hh[rows].T)                # (H, H)
                getattr(self.cell, f"b_{g}").copy_(b_ih[rows] + b_hh[rows])     # (H,)
        return self
