"""Recurrent neural networks: the tanh recurrence from scratch, library stacks, a character language model.

Twin of `llmbook.torch.rnn` (same class names and arguments). Shapes: B batch, T time steps,
E input (embedding) size, H hidden units, V vocabulary, L layers, D directions (1 or 2).

    h_t = tanh(x_t W_xh + h_{t-1} W_hh + b_h)      (B, H)   the recurrence (Elman 1990)
    y_t = h_t W_hy + b_y                            (B, V)   the output layer: next-token logits

Keras' `SimpleRNN` stores W_xh as `kernel` (E, H), W_hh as `recurrent_kernel` (H, H) and one `bias`.
"""
from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

CELLS = ("rnn", "lstm", "gru")


def _uniform(hidden: int) -> keras.initializers.Initializer:
    """U(-1/sqrt(H), 1/sqrt(H)), the initialisation of the PyTorch twin."""
    k = 1 / math.sqrt(hidden)
    return keras.initializers.RandomUniform(-k, k)


class RNNCellFromScratch(keras.layers.Layer):
    """One step of the tanh recurrence with explicit W_xh, W_hh and b_h."""

    def __init__(self, input_dim: int, hidden_dim: int, **kwargs):
        super().__init__(**kwargs)
        self.hidden_dim = hidden_dim
        init = _uniform(hidden_dim)
        self.W_xh = self.add_weight(shape=(input_dim, hidden_dim), initializer=init, name="W_xh")    # (E, H)
        self.W_hh = self.add_weight(shape=(hidden_dim, hidden_dim), initializer=init, name="W_hh")   # (H, H)
        self.b_h = self.add_weight(shape=(hidden_dim,), initializer=init, name="b_h")                # (H,)
        self.built = True

    def call(self, x, h):
        """h_t from the input x_t (B, E) and the previous state h_{t-1} (B, H)."""
        return tf.tanh(x @ self.W_xh + h @ self.W_hh + self.b_h)      # (B, H)


class RNNFromScratch(keras.layers.Layer):
    """The cell unrolled over time: the same weights applied at every step by a Python loop."""

    def __init__(self, input_dim: int, hidden_dim: int, **kwargs):
        super().__init__(**kwargs)
        self.cell = RNNCellFromScratch(input_dim, hidden_dim)
        self.built = True

    def call(self, x, h0=None):
        """All hidden states (B, T, H) and the last one (B, H) for inputs x (B, T, E)."""
        x = tf.convert_to_tensor(x)
        _check_sequence(x, self.cell.W_xh.shape[0])
        h = tf.zeros((tf.shape(x)[0], self.cell.hidden_dim), x.dtype) if h0 is None else h0   # (B, H)
        states = []
        for t in range(x.shape[1]):
            h = self.cell(x[:, t], h)                  # (B, E), (B, H) -> (B, H)
            states.append(h)
        return tf.stack(states, axis=1), h             # (B, T, H), (B, H)

    def load_library_weights(self, layer) -> "RNNFromScratch":
        """Copy the weights of a Keras `SimpleRNN` (or `SimpleRNNCell`): same layout, one bias."""
        kernel, recurrent, bias = _library_weights(layer)
        self.cell.W_xh.assign(kernel)                  # (E, H)
        self.cell.W_hh.assign(recurrent)               # (H, H)
        self.cell.b_h.assign(bias)                     # (H,)
        return self


class StackedRNN(keras.layers.Layer):
    """Keras `SimpleRNN` / `LSTM` / `GRU` layers, L of them, optionally each wrapped in `Bidirectional`.

    Inputs and states are laid out as in `torch.nn.RNN`: outputs (B, T, D H), states (L D, B, H)
    ordered layer by layer, forward before backward (an (h, c) pair for the LSTM). Every weight and
    bias starts from U(-1/sqrt(H), 1/sqrt(H)), as in the PyTorch twin, instead of Keras' defaults
    (Glorot and orthogonal kernels, zero biases, forget-gate bias 1): the twins then train alike.
    """

    def __init__(self, input_dim: int, hidden_dim: int, num_layers: int = 1, cell: str = "rnn",
                 bidirectional: bool = False, dropout: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        _check_cell(cell)
        self.cell, self.input_dim, self.hidden_dim = cell, input_dim, hidden_dim
        self.directions = 2 if bidirectional else 1
        layer = {"rnn": keras.layers.SimpleRNN, "lstm": keras.layers.LSTM, "gru": keras.layers.GRU}[cell]
        self.rnn = []
        init = dict(kernel_initializer=_uniform(hidden_dim), recurrent_initializer=_uniform(hidden_dim),
                    bias_initializer=_uniform(hidden_dim), **({"unit_forget_bias": False} if cell == "lstm" else {}))
        for _ in range(num_layers):
            rnn = layer(hidden_dim, return_sequences=True, return_state=True, **init)
            self.rnn.append(keras.layers.Bidirectional(rnn) if bidirectional else rnn)
        self.drop = keras.layers.Dropout(dropout)
        width = input_dim
        for rnn in self.rnn:
            rnn.build((None, None, width))
            width = hidden_dim * self.directions
        self.built = True

    def call(self, x, state=None, training: bool = False):
        """Top-layer outputs (B, T, D H) and the final state (L D, B, H) (an (h, c) pair for the LSTM)."""
        x = tf.convert_to_tensor(x)
        _check_sequence(x, self.input_dim)
        D, per = self.directions, 2 if self.cell == "lstm" else 1      # states per direction: h (and c)
        if state is not None and per == 1:
            state = (state,)
        finals = [[] for _ in range(per)]
        for layer, rnn in enumerate(self.rnn):
            if layer > 0:
                x = self.drop(x, training=training)                   # between layers, as nn.LSTM(dropout=)
            init = None
            if state is not None:                                     # Keras order: h_f, c_f, h_b, c_b
                init = [state[s][layer * D + d] for d in range(D) for s in range(per)]
            x, *states = rnn(x, initial_state=init, training=training)   # (B, T, D H), D per x (B, H)
            for s in range(per):
                finals[s].extend(states[s::per])
        stacked = [tf.stack(f, axis=0) for f in finals]               # (L D, B, H) each
        return x, (tuple(stacked) if per == 2 else stacked[0])


class CharRNN(keras.Model):
    """A character language model: Embedding -> StackedRNN (rnn, lstm or gru) -> dropout -> Dense.

    Initialised as the PyTorch twin: embeddings N(0, 1), the output layer U(-1/sqrt(H), 1/sqrt(H)).
    """

    def __init__(self, vocab_size: int, embed_dim: int, hidden_dim: int, num_layers: int = 1,
                 cell: str = "rnn", dropout: float = 0.0):
        super().__init__()
        self.embed = keras.layers.Embedding(vocab_size, embed_dim,
                                            embeddings_initializer=keras.initializers.RandomNormal(stddev=1.0))
        self.rnn = StackedRNN(embed_dim, hidden_dim, num_layers, cell, dropout=dropout)
        self.drop = keras.layers.Dropout(dropout)
        self.out = keras.layers.Dense(vocab_size, kernel_initializer=_uniform(hidden_dim),
                                      bias_initializer=_uniform(hidden_dim))
        self.embed.build((None, None))
        self.out.build((None, None, hidden_dim))
        self.built = True

    def call(self, ids, state=None, return_state: bool = False, training: bool = False):
        """Next-character logits (B, T, V) for ids (B, T); with `return_state`, also the final state."""
        if len(ids.shape) != 2:
            raise ValueError(f"expected character ids of shape (batch, time), got {tuple(ids.shape)}")
        x = self.embed(ids)                                         # (B, T, E)
        h, state = self.rnn(x, state, training=training)            # (B, T, H), (L, B, H)
        logits = self.out(self.drop(h, training=training))          # (B, T, V)
        return (logits, state) if return_state else logits


def next_logits_fn(model: CharRNN):
    """A `next_logits(history)` for llmbook.sampling.sample_tokens that carries the recurrent state.

    Only the tokens not yet read are fed, so sampling n tokens costs n steps, not n^2 / 2.
    """
    memo = {"seen": 0, "state": None}

    def next_logits(history: list[int]) -> np.ndarray:
        if len(history) < memo["seen"] or not history:
            raise ValueError("next_logits_fn: the history must grow from call to call (make a new one per sample)")
        ids = np.array([history[memo["seen"]:]])                              # (1, t)
        logits, memo["state"] = model(ids, memo["state"], return_state=True)  # (1, t, V)
        memo["seen"] = len(history)
        return logits[0, -1].numpy()                                          # (V,)

    return next_logits


def hidden_grad_norms(model: CharRNN, ids, targets) -> np.ndarray:
    """||dL/dh_{T-k}|| for k = 0..T-1 (batch mean), L the loss of the last step's prediction.

    The library layer is run one step at a time so that every h_t is a tensor the tape can
    differentiate against; for an LSTM, h_t is the hidden state (c_t is carried alongside).
    """
    if len(model.rnn.rnn) != 1:
        raise ValueError("hidden_grad_norms measures one-layer models")
    x = model.embed(np.asarray(ids))                          # (B, T, E)
    with tf.GradientTape() as tape:
        state, hs = None, []
        for t in range(x.shape[1]):
            _, state = model.rnn(x[:, t:t + 1], state)        # (L, B, H), or a pair of them
            hs.append(state[0] if isinstance(state, tuple) else state)
        logits = model.out(hs[-1][-1])                        # (B, V)
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=np.asarray(targets)[:, -1], logits=logits))
    grads = tape.gradient(loss, hs)                           # T x (1, B, H)
    norms = tf.stack([tf.reduce_mean(tf.norm(g[0], axis=-1)) for g in grads])   # (T,)
    return norms.numpy()[::-1].copy()                         # k = 0 (last step) .. T-1


def _library_weights(layer) -> tuple:
    """(kernel, recurrent_kernel, bias) of a built Keras recurrent layer or cell."""
    cell = getattr(layer, "cell", layer)
    if isinstance(layer, keras.layers.Bidirectional) or not hasattr(cell, "recurrent_kernel"):
        raise ValueError(f"load_library_weights copies one built, one-direction Keras layer, got {type(layer).__name__}")
    if getattr(cell, "bias", None) is None:
        raise ValueError(f"{type(layer).__name__} has no bias: was it built with use_bias=False?")
    return cell.kernel, cell.recurrent_kernel, cell.bias


def _check_cell(cell: str) -> None:
    if cell not in CELLS:
        raise ValueError(f"cell must be one of {CELLS}, got {cell!r}")


def _check_sequence(x, input_dim: int) -> None:
    if len(x.shape) != 3 or x.shape[-1] != input_dim:
        raise ValueError(f"expected inputs of shape (batch, time, {input_dim}), got {tuple(x.shape)}")
