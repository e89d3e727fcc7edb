"""Recurrent neural networks: the tanh recurrence from scratch, library stacks, a character language model.

Shapes: B batch, T time steps, E input (embedding) size, H hidden units, V vocabulary,
L layers, D directions (1, or 2 when bidirectional).

    h_t = tanh(x_t W_xh + h_{t-1} W_hh + b_h)      (B, H)   the recurrence (Elman 1990)
    y_t = h_t W_hy + b_y                            (B, V)   the output layer: next-token logits

Row vectors, as in code: x_t (B, E) @ W_xh (E, H). Papers often write the same thing with column
vectors, W_xh x_t. PyTorch's `nn.RNN` stores W_xh transposed, as `weight_ih_l0` (H, E), and adds two
biases, `bias_ih_l0 + bias_hh_l0`, where the equation has one.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

CELLS = ("rnn", "lstm", "gru")


def _uniform(*shape: int, hidden: int) -> nn.Parameter:
    """U(-1/sqrt(H), 1/sqrt(H)): the initialisation torch.nn uses for its recurrent layers."""
    k = 1 / math.sqrt(hidden)
    return nn.Parameter(torch.empty(*shape).uniform_(-k, k))


class RNNCellFromScratch(nn.Module):
    """One step of the tanh recurrence with explicit W_xh, W_hh and b_h."""

    def __init__(self, input_dim: int, hidden_dim: int):
        super().__init__()
        self.hidden_dim = hidden_dim
        self.W_xh = _uniform(input_dim, hidden_dim, hidden=hidden_dim)    # (E, H)
        self.W_hh = _uniform(hidden_dim, hidden_dim, hidden=hidden_dim)   # (H, H)
        self.b_h = _uniform(hidden_dim, hidden=hidden_dim)                # (H,)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """h_t from the input x_t (B, E) and the previous state h_{t-1} (B, H)."""
        return torch.tanh(x @ self.W_xh + h @ self.W_hh + self.b_h)      # (B, H)


class RNNFromScratch(nn.Module):
    """The cell unrolled over time: the same weights applied at every step by a Python loop."""

    def __init__(self, input_dim: int, hidden_dim: int):
        super().__init__()
        self.cell = RNNCellFromScratch(input_dim, hidden_dim)

    def forward(self, x: torch.Tensor, h0: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """All hidden states (B, T, H) and the last one (B, H) for inputs x (B, T, E)."""
        _check_sequence(x, self.cell.W_xh.shape[0])
        h = x.new_zeros(x.shape[0], self.cell.hidden_dim) if h0 is None else h0   # (B, H)
        states = []
        for t in range(x.shape[1]):
            h = self.cell(x[:, t], h)                  # (B, E), (B, H) -> (B, H)
            states.append(h)
        return torch.stack(states, dim=1), h           # (B, T, H), (B, H)

    def load_library_weights(self, layer: nn.RNN | nn.RNNCell) -> "RNNFromScratch":
        """Copy the weights of a one-layer `nn.RNN` (or `nn.RNNCell`): transpose, add the two biases."""
        w_ih, w_hh, b_ih, b_hh = _library_tensors(layer)
        with torch.no_grad():
            self.cell.W_xh.copy_(w_ih.T)                # (H, E) -> (E, H)
            self.cell.W_hh.copy_(w_hh.T)                # (H, H)
            self.cell.b_h.copy_(b_ih + b_hh)            # (H,)
        return self


class StackedRNN(nn.Module):
    """`nn.RNN` / `nn.LSTM` / `nn.GRU` with L layers, optionally bidirectional, batch first."""

    def __init__(self, input_dim: int, hidden_dim: int, num_layers: int = 1, cell: str = "rnn",
                 bidirectional: bool = False, dropout: float = 0.0):
        super().__init__()
        _check_cell(cell)
        self.cell, self.input_dim = cell, input_dim
        layer = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[cell]
        self.rnn = layer(input_dim, hidden_dim, num_layers=num_layers, batch_first=True,
                         bidirectional=bidirectional, dropout=dropout if num_layers > 1 else 0.0)

    def forward(self, x: torch.Tensor, state=None):
        """Top-layer outputs (B, T, D H) and the final state (L D, B, H) (an (h, c) pair for the LSTM)."""
        _check_sequence(x, self.input_dim)
        return self.rnn(x, state)                       # (B, T, D H), (L D, B, H)


class CharRNN(nn.Module):
    """A character language model: nn.Embedding -> StackedRNN (rnn, lstm or gru) -> dropout -> nn.Linear."""

    def __init__(self, vocab_size: int, embed_dim: int, hidden_dim: int, num_layers: int = 1,
                 cell: str = "rnn", dropout: float = 0.0):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.rnn = StackedRNN(embed_dim, hidden_dim, num_layers, cell, dropout=dropout)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(hidden_dim, vocab_size)

    def forward(self, ids: torch.Tensor, state=None, return_state: bool = False):
        """Next-character logits (B, T, V) for ids (B, T); with `return_state`, also the final state."""
        if ids.ndim != 2:
            raise ValueError(f"expected character ids of shape (batch, time), got {tuple(ids.shape)}")
        x = self.embed(ids)                             # (B, T, E)
        h, state = self.rnn(x, state)                   # (B, T, H), (L, B, H)
        logits = self.out(self.drop(h))                 # (B, T, V)
        return (logits, state) if return_state else logits


def next_logits_fn(model: CharRNN):
    """A `next_logits(history)` for llmbook.sampling.sample_tokens that carries the recurrent state.

    Only the tokens not yet read are fed, so sampling n tokens costs n steps, not n^2 / 2.
    """
    model.eval()
    memo = {"seen": 0, "state": None}

    @torch.no_grad()
    def next_logits(history: list[int]) -> np.ndarray:
        if len(history) < memo["seen"] or not history:
            raise ValueError("next_logits_fn: the history must grow from call to call (make a new one per sample)")
        dev = next(model.parameters()).device
        ids = torch.as_tensor([history[memo["seen"]:]], device=dev)          # (1, t)
        logits, memo["state"] = model(ids, memo["state"], return_state=True)  # (1, t, V)
        memo["seen"] = len(history)
        return logits[0, -1].float().cpu().numpy()                            # (V,)

    return next_logits


def hidden_grad_norms(model: CharRNN, ids: torch.Tensor, targets: torch.Tensor) -> np.ndarray:
    """||dL/dh_{T-k}|| for k = 0..T-1 (batch mean), L the loss of the last step's prediction.

    The library layer is run one step at a time so that every h_t is a node of the graph; for an
    LSTM, h_t is the hidden state (the cell state c_t is carried alongside). Only the top layer's
    h_t of a one-layer model is measured.
    """
    if model.rnn.rnn.num_layers != 1:
        raise ValueError("hidden_grad_norms measures one-layer models")
    model.eval()
    dev = next(model.parameters()).device
    x = model.embed(torch.as_tensor(ids, device=dev))   # (B, T, E)
    state, hs = None, []
    for t in range(x.shape[1]):
        _, state = model.rnn(x[:, t:t + 1], state)      # (L, B, H), or a pair of them
        hs.append(state[0] if isinstance(state, tuple) else state)
    logits = model.out(hs[-1][-1])                      # (B, V)
    loss = nn.functional.cross_entropy(logits, torch.as_tensor(targets, device=dev)[:, -1])
    grads = torch.autograd.grad(loss, hs)               # T x (1, B, H)
    norms = torch.stack([g[0].norm(dim=-1).mean() for g in grads])   # (T,)
    return norms.flip(0).detach().cpu().numpy()         # k = 0 (last step) .. T-1


def _library_tensors(layer) -> tuple[torch.Tensor, ...]:
    """(weight_ih, weight_hh, bias_ih, bias_hh) of a one-layer torch recurrent layer or cell."""
    if getattr(layer, "num_layers", 1) != 1 or getattr(layer, "bidirectional", False):
        raise ValueError("load_library_weights copies a one-layer, one-direction layer; "
                         f"got num_layers={layer.num_layers}, bidirectional={layer.bidirectional}")
    suffix = "_l0" if hasattr(layer, "weight_ih_l0") else ""
    names = [f"{n}{suffix}" for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    if not all(hasattr(layer, n) for n in names):
        raise ValueError(f"{type(layer).__name__} has no {names}: was it built with bias=False?")
    return tuple(getattr(layer, n) for n in names)


def _check_cell(cell: str) -> None:
    if cell not in CELLS:
        raise ValueError(f"cell must be one of {CELLS}, got {cell!r}")


def _check_sequence(x: torch.Tensor, input_dim: int) -> None:
    if x.ndim != 3 or x.shape[-1] != input_dim:
        raise ValueError(f"expected inputs of shape (batch, time, {input_dim}), got {tuple(x.shape)}")
