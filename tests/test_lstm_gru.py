"""Chapter 3 twins: LSTM and GRU from scratch == nn.LSTM/nn.GRU == Keras LSTM/GRU, PyTorch == TF; the CNN encoder."""
import keras
import numpy as np
import pytest
import torch

import llmbook
from llmbook.parity import tf_to_torch, torch_to_tf
from llmbook.tf import cnn as tf_cnn
from llmbook.tf import gru as tf_gru
from llmbook.tf import lstm as tf_lstm
from llmbook.torch import cnn as torch_cnn
from llmbook.torch import gru as torch_gru
from llmbook.torch import lstm as torch_lstm

E, H, V = 5, 6, 11
TOL = 1e-5


def seq(batch=3, time=8, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, time, E)).astype(np.float32)


def randomize(layer, seed=0):
    """Keras starts biases at 0 (1 for the LSTM forget gate): random ones make a wrong bias mapping visible.

    (The kernels keep Keras' random initialisation: larger random recurrent weights make the
    recurrence chaotic, and float32 rounding differences then grow past 1e-5 within 20 steps.)
    """
    bias = getattr(layer, "cell", layer).bias
    bias.assign(np.random.default_rng(seed).normal(scale=0.5, size=bias.shape).astype(np.float32))


def test_lstm_cell_is_the_corrected_equation():
    """C_t = f*C_{t-1} + i*tanh(x W_C + h U_C + b_C) and h_t = o*tanh(C_t) (seed 003 has C_t = tanh(...), h_t = C_t*o)."""
    llmbook.seed(0)
    cell = torch_lstm.LSTMCellFromScratch(E, H)
    x, h, c = torch.randn(2, E), torch.randn(2, H), torch.randn(2, H)
    sig = torch.sigmoid
    f = sig(x @ cell.W_f + h @ cell.U_f + cell.b_f)
    i = sig(x @ cell.W_i + h @ cell.U_i + cell.b_i)
    o = sig(x @ cell.W_o + h @ cell.U_o + cell.b_o)
    c_new = f * c + i * torch.tanh(x @ cell.W_C + h @ cell.U_C + cell.b_C)
    (h2, c2), gates = cell(x, (h, c), return_gates=True)
    torch.testing.assert_close(c2, c_new, msg="cell state: is the old state C_{t-1} kept through the forget gate?")
    torch.testing.assert_close(h2, o * torch.tanh(c_new), msg="hidden state: h_t = o_t * tanh(C_t)")
    for name in "fio":
        g = gates[name]
        assert ((g > 0) & (g < 1)).all(), f"gate {name} must be a sigmoid in (0, 1)"


def test_lstm_scratch_equals_nn_lstm():
    llmbook.seed(0)
    lib = torch.nn.LSTM(E, H, batch_first=True)
    scratch = torch_lstm.LSTMFromScratch(E, H).load_library_weights(lib)
    x = torch.as_tensor(seq())
    h0, c0 = torch.randn(1, 3, H), torch.randn(1, 3, H)
    with torch.no_grad():
        y_lib, (h_lib, c_lib) = lib(x, (h0, c0))
        y, (h, c) = scratch(x, (h0[0], c0[0]))
    gap = (y_lib - y).abs().max().item()
    assert gap <= TOL, f"LSTMFromScratch vs nn.LSTM: {gap:.2e} (gate blocks i, f, g, o? both biases added?)"
    assert (c_lib[0] - c).abs().max().item() <= TOL and (h_lib[0] - h).abs().max().item() <= TOL


def test_lstm_scratch_equals_keras_lstm():
    lib = keras.layers.LSTM(H, return_sequences=True, return_state=True)
    lib(seq())
    randomize(lib)
    y_lib, h_lib, c_lib = lib(seq())
    scratch = tf_lstm.LSTMFromScratch(E, H).load_library_weights(lib)
    y, (h, c) = scratch(seq())
    gap = np.abs(y_lib.numpy() - y.numpy()).max()
    assert gap <= TOL, f"LSTMFromScratch vs keras LSTM: {gap:.2e} (column blocks i, f, c, o?)"
    assert np.abs(c_lib.numpy() - c.numpy()).max() <= TOL


def test_gru_scratch_equals_nn_gru():
    llmbook.seed(0)
    lib = torch.nn.GRU(E, H, batch_first=True)
    scratch = torch_gru.GRUFromScratch(E, H).load_library_weights(lib)
    x = torch.as_tensor(seq())
    with torch.no_grad():
        y_lib, h_lib = lib(x)
        y, h = scratch(x)
    gap = (y_lib - y).abs().max().item()
    assert gap <= TOL, f"GRUFromScratch vs nn.GRU: {gap:.2e} (blocks r, z, n? b_hn inside the reset product?)"
    assert (h_lib[0] - h).abs().max().item() <= TOL


def test_gru_scratch_equals_keras_gru_reset_after():
    lib = keras.layers.GRU(H, return_sequences=True, reset_after=True)
    lib(seq())
    randomize(lib)
    scratch = tf_gru.GRUFromScratch(E, H).load_library_weights(lib)
    gap = np.abs(lib(seq()).numpy() - scratch(seq())[0].numpy()).max()
    assert gap <= TOL, f"GRUFromScratch vs keras GRU: {gap:.2e} (blocks z, r, n? bias rows input/recurrent?)"
    other = keras.layers.GRU(H, reset_after=False)
    other(seq())
    with pytest.raises(ValueError, match="reset_after"):
        tf_gru.GRUFromScratch(E, H).load_library_weights(other)


@pytest.mark.parametrize("name,module_t,module_f", [
    ("LSTMCellFromScratch", torch_lstm, tf_lstm), ("LSTMFromScratch", torch_lstm, tf_lstm),
    ("GRUCellFromScratch", torch_gru, tf_gru), ("GRUFromScratch", torch_gru, tf_gru)])
def test_scratch_torch_equals_tf(name, module_t, module_f):
    llmbook.seed(0)
    t, f = getattr(module_t, name)(E, H), getattr(module_f, name)(E, H)
    torch_to_tf(t, f)
    x = seq()
    is_lstm = "LSTM" in name
    if "Cell" in name:
        h = np.random.default_rng(1).normal(size=(3, H)).astype(np.float32)
        state_t = (torch.as_tensor(h), torch.as_tensor(h / 3)) if is_lstm else torch.as_tensor(h)
        state_f = (h, h / 3) if is_lstm else h
        with torch.no_grad():
            a = t(torch.as_tensor(x[:, 0]), state_t)
        b = f(x[:, 0], state_f)
        a, b = (a[1], b[1]) if is_lstm else (a, b)          # compare C_t for the LSTM, h_t for the GRU
    else:
        with torch.no_grad():
            a, _, gates_t = t(torch.as_tensor(x), return_gates=True)
        b, _, gates_f = f(x, return_gates=True)
        for k in gates_t:
            assert np.abs(gates_t[k].numpy() - gates_f[k].numpy()).max() <= TOL, f"gate {k} differs"
            assert tuple(gates_f[k].shape) == (3, 8, H)
    gap = np.abs(np.asarray(a) - np.asarray(b)).max()
    assert gap <= TOL, f"{name}: PyTorch and TF differ by {gap:.2e} with the same weights"
    t2 = getattr(module_t, name)(E, H)
    tf_to_torch(f, t2)
    for p, q in zip(t.parameters(), t2.parameters()):
        torch.testing.assert_close(p, q)


def test_library_layers_torch_equal_keras_directly():
    """nn.LSTM == keras LSTM and nn.GRU == keras GRU(reset_after=True) via the StackedRNN twins' converter."""
    from llmbook.tf.rnn import StackedRNN as TFStack
    from llmbook.torch.rnn import StackedRNN as TorchStack
    llmbook.seed(0)
    for cell in ("lstm", "gru"):
        t, f = TorchStack(E, H, cell=cell).eval(), TFStack(E, H, cell=cell)
        torch_to_tf(t, f)
        layer = f.rnn[0]
        assert type(layer).__name__ == cell.upper() and type(t.rnn).__name__ == cell.upper()
        if cell == "gru":
            assert layer.cell.reset_after
        with torch.no_grad():
            y_t, _ = t.rnn(torch.as_tensor(seq()))
        y_f = layer(seq())[0]
        assert np.abs(y_t.numpy() - y_f.numpy()).max() <= TOL


def test_cnn_encoder_twins():
    llmbook.seed(0)
    t = torch_cnn.CNNEncoder(V, E, 4, widths=(2, 3)).eval()
    f = tf_cnn.CNNEncoder(V, E, 4, widths=(2, 3))
    torch_to_tf(t, f)
    ids = np.random.default_rng(0).integers(0, V, (3, 10))
    with torch.no_grad():
        a = t(torch.as_tensor(ids)).numpy()
    b = f(ids).numpy()
    assert a.shape == b.shape == (3, 8)
    assert np.abs(a - b).max() <= TOL
    # any length >= the widest filter gives the same size of vector
    assert tuple(f(ids[:, :3]).shape) == (3, 8)
    # max-pooling over time: moving a pattern elsewhere (away from the edges) does not change the vector
    x = np.full((1, 12), 1)
    y = x.copy()
    x[0, 2:5], y[0, 7:10] = [4, 5, 6], [4, 5, 6]
    with torch.no_grad():
        np.testing.assert_allclose(t(torch.as_tensor(x)).numpy(), t(torch.as_tensor(y)).numpy(), atol=1e-6)
    for model in (t, f):
        with pytest.raises(ValueError, match="widest filter"):
            model(torch.zeros(2, 2, dtype=torch.long) if model is t else np.zeros((2, 2), np.int64))
    t2 = torch_cnn.CNNEncoder(V, E, 4, widths=(2, 3)).eval()
    tf_to_torch(f, t2)
    with torch.no_grad():
        assert np.abs(t2(torch.as_tensor(ids)).numpy() - b).max() <= TOL
