"""Gated recurrent unit (Cho et al. 2014), from scratch, in the form nn.GRU and Keras' GRU compute.

Twin of `llmbook.torch.gru` (same class names and arguments). Shapes: B batch, T time steps,
E input size, H hidden units. sigma is the logistic sigmoid, * is the elementwise product.

    z_t = sigma(x_t W_z + h_{t-1} U_z + b_z)                 update gate           (B, H)
    r_t = sigma(x_t W_r + h_{t-1} U_r + b_r)                 reset gate            (B, H)
    n_t = tanh(x_t W_n + b_n + r_t * (h_{t-1} U_n + b_hn))   candidate state       (B, H)
    h_t = (1 - z_t) * n_t + z_t * h_{t-1}                    new state             (B, H)

That is Keras' `GRU(reset_after=True)` (the default): kernel = [W_z, W_r, W_n] (E, 3H),
recurrent_kernel (H, 3H), and a bias of shape (2, 3H) whose first row is added to x W and second
to h U, inside the reset product for the candidate.
"""
from __future__ import annotations

import keras
import tensorflow as tf

from llmbook.tf.rnn import _check_sequence, _library_weights, _uniform

KERAS_ORDER = ("z", "r", "n")    # block order of Keras' GRU kernel, recurrent_kernel and bias


class GRUCellFromScratch(keras.layers.Layer):
    """One GRU step with a named weight matrix, recurrent matrix and bias per gate."""

    def __init__(self, input_dim: int, hidden_dim: int, **kwargs):
        super().__init__(**kwargs)
        self.hidden_dim = hidden_dim
        init = _uniform(hidden_dim)
        for g in ("z", "r", "n"):
            setattr(self, f"W_{g}", self.add_weight(shape=(input_dim, hidden_dim), initializer=init, name=f"W_{g}"))   # (E, H)
            setattr(self, f"U_{g}", self.add_weight(shape=(hidden_dim, hidden_dim), initializer=init, name=f"U_{g}"))  # (H, H)
            setattr(self, f"b_{g}", self.add_weight(shape=(hidden_dim,), initializer=init, name=f"b_{g}"))             # (H,)
        self.b_hn = self.add_weight(shape=(hidden_dim,), initializer=init, name="b_hn")                                # (H,)
        self.built = True

    def call(self, x, h, return_gates: bool = False):
        """h_t from x_t (B, E) and h_{t-1} (B, H); optionally the gate activations."""
        z = tf.sigmoid(x @ self.W_z + h @ self.U_z + self.b_z)                  # (B, H) update gate
        r = tf.sigmoid(x @ self.W_r + h @ self.U_r + self.b_r)                  # (B, H) reset gate
        n = tf.tanh(x @ self.W_n + self.b_n + r * (h @ self.U_n + self.b_hn))   # (B, H) candidate
        h = (1 - z) * n + z * h                                                 # (B, H)
        return (h, dict(z=z, r=r, n=n)) if return_gates else h


class GRUFromScratch(keras.layers.Layer):
    """The GRU cell unrolled over time."""

    def __init__(self, input_dim: int, hidden_dim: int, **kwargs):
        super().__init__(**kwargs)
        self.cell = GRUCellFromScratch(input_dim, hidden_dim)
        self.built = True

    def call(self, x, h0=None, return_gates: bool = False):
        """Hidden states (B, T, H) and the last one (B, H) for x (B, T, E); optionally gates, each (B, T, H)."""
        x = tf.convert_to_tensor(x)
        _check_sequence(x, self.cell.W_z.shape[0])
        h = tf.zeros((tf.shape(x)[0], self.cell.hidden_dim), x.dtype) if h0 is None else h0   # (B, H)
        hs, gates = [], {k: [] for k in "zrn"}
        for t in range(x.shape[1]):
            h, g = self.cell(x[:, t], h, return_gates=True)                     # (B, H)
            hs.append(h)
            for k in gates:
                gates[k].append(g[k])
        out = tf.stack(hs, axis=1)                                              # (B, T, H)
        if return_gates:
            return out, h, {k: tf.stack(v, axis=1) for k, v in gates.items()}   # (B, T, H) each
        return out, h

    def load_library_weights(self, layer) -> "GRUFromScratch":
        """Copy a Keras `GRU(reset_after=True)` (or its cell): split the z, r, n column blocks and the two bias rows."""
        cell = getattr(layer, "cell", layer)
        if not getattr(cell, "reset_after", False):
            raise ValueError("GRUFromScratch computes the reset_after=True form (nn.GRU's); "
                             "this Keras GRU was built with reset_after=False")
        kernel, recurrent, bias = _library_weights(layer)
        H = self.cell.hidden_dim
        for k, g in enumerate(KERAS_ORDER):
            cols = slice(k * H, (k + 1) * H)
            getattr(self.cell, f"W_{g}").assign(kernel[:, cols])                # (E, H)
            getattr(self.cell, f"U_{g}").assign(recurrent[:, cols])             # (H, H)
            if g == "n":
                self.cell.b_n.assign(bias[0, cols])                             # outside the reset product
                self.cell.b_hn.assign(bias[1, cols])                            # inside it
            else:
                getattr(self.cell, f"b_{g}").assign(bias[0, cols] + bias[1, cols])
        return self
