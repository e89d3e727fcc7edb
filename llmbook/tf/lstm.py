"""Long short-term memory (Hochreiter & Schmidhuber 1997, with the forget gate of Gers et al. 2000), from scratch.

Twin of `llmbook.torch.lstm` (same class names and arguments). Shapes: B batch, T time steps,
E input size, H hidden units. sigma is the logistic sigmoid, * is the elementwise product.

    f_t = sigma(x_t W_f + h_{t-1} U_f + b_f)        forget gate                    (B, H)
    i_t = sigma(x_t W_i + h_{t-1} U_i + b_i)        input gate                     (B, H)
    o_t = sigma(x_t W_o + h_{t-1} U_o + b_o)        output gate                    (B, H)
    g_t = tanh(x_t W_C + h_{t-1} U_C + b_C)         candidate cell state, C~_t     (B, H)
    C_t = f_t * C_{t-1} + i_t * g_t                 cell state                     (B, H)
    h_t = o_t * tanh(C_t)                           hidden state (the output)      (B, H)

Keras' `LSTM` keeps the four gates side by side in the order i, f, c, o (the same order as
nn.LSTM's i, f, g, o): kernel = [W_i, W_f, W_C, W_o] (E, 4H), recurrent_kernel (H, 4H), one bias (4H,).
"""
from __future__ import annotations

import keras
import tensorflow as tf

from llmbook.tf.rnn import _check_sequence, _library_weights, _uniform

GATES = ("i", "f", "C", "o")     # the order of Keras' (and nn.LSTM's) stacked gate blocks


class LSTMCellFromScratch(keras.layers.Layer):
    """One LSTM step with a named weight matrix, recurrent matrix and bias per gate."""

    def __init__(self, input_dim: int, hidden_dim: int, **kwargs):
        super().__init__(**kwargs)
        self.hidden_dim = hidden_dim
        init = _uniform(hidden_dim)
        for g in GATES:
            setattr(self, f"W_{g}", self.add_weight(shape=(input_dim, hidden_dim), initializer=init, name=f"W_{g}"))   # (E, H)
            setattr(self, f"U_{g}", self.add_weight(shape=(hidden_dim, hidden_dim), initializer=init, name=f"U_{g}"))  # (H, H)
            setattr(self, f"b_{g}", self.add_weight(shape=(hidden_dim,), initializer=init, name=f"b_{g}"))             # (H,)
        self.built = True

    def _affine(self, g: str, x, h):
        return x @ getattr(self, f"W_{g}") + h @ getattr(self, f"U_{g}") + getattr(self, f"b_{g}")   # (B, H)

    def call(self, x, state, return_gates: bool = False):
        """(h_t, C_t) from x_t (B, E) and (h_{t-1}, C_{t-1}) (B, H) each; optionally the gate activations."""
        h, c = state
        f = tf.sigmoid(self._affine("f", x, h))        # (B, H) forget gate
        i = tf.sigmoid(self._affine("i", x, h))        # (B, H) input gate
        o = tf.sigmoid(self._affine("o", x, h))        # (B, H) output gate
        g = tf.tanh(self._affine("C", x, h))           # (B, H) candidate C~_t
        c = f * c + i * g                              # (B, H) C_t
        h = o * tf.tanh(c)                             # (B, H) h_t
        return ((h, c), dict(f=f, i=i, o=o, g=g)) if return_gates else (h, c)


class LSTMFromScratch(keras.layers.Layer):
    """The LSTM cell unrolled over time."""

    def __init__(self, input_dim: int, hidden_dim: int, **kwargs):
        super().__init__(**kwargs)
        self.cell = LSTMCellFromScratch(input_dim, hidden_dim)
        self.built = True

    def call(self, x, state=None, return_gates: bool = False):
        """Hidden states (B, T, H) and the final (h_T, C_T) for x (B, T, E); optionally gates, each (B, T, H)."""
        x = tf.convert_to_tensor(x)
        _check_sequence(x, self.cell.W_i.shape[0])
        if state is None:
            zeros = tf.zeros((tf.shape(x)[0], self.cell.hidden_dim), x.dtype)   # (B, H)
            state = (zeros, zeros)
        hs, gates = [], {k: [] for k in "fiog"}
        for t in range(x.shape[1]):
            state, g = self.cell(x[:, t], state, return_gates=True)   # (B, H) each
            hs.append(state[0])
            for k in gates:
                gates[k].append(g[k])
        out = tf.stack(hs, axis=1)                                    # (B, T, H)
        if return_gates:
            return out, tuple(state), {k: tf.stack(v, axis=1) for k, v in gates.items()}   # (B, T, H) each
        return out, tuple(state)

    def load_library_weights(self, layer) -> "LSTMFromScratch":
        """Copy a Keras `LSTM` (or `LSTMCell`): split the i, f, c, o column blocks (one bias, no transpose)."""
        kernel, recurrent, bias = _library_weights(layer)
        H = self.cell.hidden_dim
        for k, g in enumerate(GATES):
            cols = slice(k * H, (k + 1) * H)
            getattr(self.cell, f"W_{g}").assign(kernel[:, cols])         # (E, H)
            getattr(self.cell, f"U_{g}").assign(recurrent[:, cols])      # (H, H)
            getattr(self.cell, f"b_{g}").assign(bias[cols])              # (H,)
        return self
