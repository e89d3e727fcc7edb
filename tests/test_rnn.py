"""Chapter 2 twins: the tanh RNN from scratch == nn.RNN / SimpleRNN, PyTorch == TensorFlow, the character LM."""
import keras
import numpy as np
import pytest
import torch

import llmbook
from llmbook.data.batching import next_token_windows
from llmbook.parity import tf_to_torch, torch_to_tf
from llmbook.tf import rnn as tf_rnn
from llmbook.tf import train as tf_train
from llmbook.tf.checkpoint import load_checkpoint as tf_load
from llmbook.torch import rnn as torch_rnn
from llmbook.torch import train as torch_train
from llmbook.torch.checkpoint import load_checkpoint as torch_load

E, H, V = 5, 7, 13
TOL = 1e-5


def seq(batch=4, time=9, dim=E, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, time, dim)).astype(np.float32)


def ids(batch=4, time=9, seed=0):
    return np.random.default_rng(seed).integers(0, V, (batch, time))


def randomize(layer, seed=0):
    """Keras starts biases at 0 (1 for the LSTM forget gate): random ones make a wrong bias mapping visible.

    (The kernels keep Keras' random initialisation: larger random recurrent weights make the
    recurrence chaotic, and float32 rounding differences then grow past 1e-5 within 20 steps.)
    """
    bias = getattr(layer, "cell", layer).bias
    bias.assign(np.random.default_rng(seed).normal(scale=0.5, size=bias.shape).astype(np.float32))


def states(s):
    return [np.asarray(t) for t in (s if isinstance(s, tuple) else (s,))]


def test_cell_is_the_equation():
    llmbook.seed(0)
    cell = torch_rnn.RNNCellFromScratch(E, H)
    x, h = torch.randn(3, E), torch.randn(3, H)
    expected = torch.tanh(x @ cell.W_xh + h @ cell.W_hh + cell.b_h)
    torch.testing.assert_close(cell(x, h), expected)
    f = tf_rnn.RNNCellFromScratch(E, H)
    torch_to_tf(cell, f)
    gap = np.abs(f(x.numpy(), h.numpy()).numpy() - expected.detach().numpy()).max()
    assert gap <= TOL, f"one RNN step differs by {gap:.2e} between PyTorch and TF with the same weights"


def test_scratch_equals_nn_rnn():
    llmbook.seed(0)
    lib = torch.nn.RNN(E, H, batch_first=True)
    scratch = torch_rnn.RNNFromScratch(E, H).load_library_weights(lib)
    x = torch.as_tensor(seq())
    h0 = torch.randn(1, 4, H)
    with torch.no_grad():
        y_lib, h_lib = lib(x, h0)                     # (B, T, H), (1, B, H)
        y, h = scratch(x, h0[0])
    gap = (y_lib - y).abs().max().item()
    assert gap <= TOL, f"RNNFromScratch vs nn.RNN: {gap:.2e} (W_xh = weight_ih_l0.T? b_h = bias_ih + bias_hh?)"
    assert (h_lib[0] - h).abs().max().item() <= TOL
    assert y.shape == (4, 9, H) and h.shape == (4, H)


def test_scratch_equals_keras_simple_rnn():
    lib = keras.layers.SimpleRNN(H, return_sequences=True, return_state=True)
    lib(seq())
    randomize(lib)
    y_lib, h_lib = lib(seq())
    scratch = tf_rnn.RNNFromScratch(E, H).load_library_weights(lib)
    y, h = scratch(seq())
    assert np.abs(y_lib.numpy() - y.numpy()).max() <= TOL
    assert np.abs(h_lib.numpy() - h.numpy()).max() <= TOL
    assert tuple(y.shape) == (4, 9, H)


def test_scratch_rnn_torch_equals_tf():
    llmbook.seed(0)
    t, f = torch_rnn.RNNFromScratch(E, H), tf_rnn.RNNFromScratch(E, H)
    torch_to_tf(t, f)
    with torch.no_grad():
        y_t, _ = t(torch.as_tensor(seq()))
    assert np.abs(y_t.numpy() - f(seq())[0].numpy()).max() <= TOL
    t2 = torch_rnn.RNNFromScratch(E, H)
    tf_to_torch(f, t2)
    with torch.no_grad():
        assert np.abs(t2(torch.as_tensor(seq()))[0].numpy() - f(seq())[0].numpy()).max() <= TOL


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("layers,bidirectional", [(1, False), (2, False), (1, True), (2, True)])
def test_stacked_torch_equals_tf(cell, layers, bidirectional):
    llmbook.seed(0)
    kw = dict(num_layers=layers, cell=cell, bidirectional=bidirectional)
    t, f = torch_rnn.StackedRNN(E, H, **kw).eval(), tf_rnn.StackedRNN(E, H, **kw)
    torch_to_tf(t, f)
    D = 2 if bidirectional else 1
    x = seq()
    with torch.no_grad():
        y_t, s_t = t(torch.as_tensor(x))
    y_f, s_f = f(x)
    assert tuple(y_f.shape) == tuple(y_t.shape) == (4, 9, D * H)
    gap = np.abs(y_t.numpy() - y_f.numpy()).max()
    assert gap <= TOL, f"{cell} x{layers} bidirectional={bidirectional}: outputs differ by {gap:.2e}"
    for a, b in zip(states(s_t), states(s_f)):
        assert a.shape == b.shape == (layers * D, 4, H)
        assert np.abs(a - b).max() <= TOL, "final states differ: layer/direction order of the states?"
    # an initial state given in PyTorch's layout is used the same way
    h0 = np.random.default_rng(1).normal(size=(layers * D, 4, H)).astype(np.float32)
    init_t = (torch.as_tensor(h0), torch.as_tensor(h0 / 2)) if cell == "lstm" else torch.as_tensor(h0)
    init_f = (h0, h0 / 2) if cell == "lstm" else h0
    with torch.no_grad():
        y_t, _ = t(torch.as_tensor(x), init_t)
    assert np.abs(y_t.numpy() - f(x, init_f)[0].numpy()).max() <= TOL
    # and back: TF weights into a fresh PyTorch stack
    t2 = torch_rnn.StackedRNN(E, H, **kw).eval()
    tf_to_torch(f, t2)
    with torch.no_grad():
        assert np.abs(t2(torch.as_tensor(x))[0].numpy() - y_f.numpy()).max() <= TOL


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_char_rnn_torch_equals_tf(cell):
    llmbook.seed(0)
    t, f = torch_rnn.CharRNN(V, E, H, cell=cell).eval(), tf_rnn.CharRNN(V, E, H, cell=cell)
    torch_to_tf(t, f)
    with torch.no_grad():
        logits = t(torch.as_tensor(ids())).numpy()
    assert logits.shape == (4, 9, V)
    assert np.abs(logits - f(ids()).numpy()).max() <= TOL
    # running in two pieces with the carried state == running at once
    with torch.no_grad():
        a, s = t(torch.as_tensor(ids()[:, :4]), return_state=True)
        b = t(torch.as_tensor(ids()[:, 4:]), s)
    np.testing.assert_allclose(np.concatenate([a, b], 1), logits, atol=TOL)
    a, s = f(ids()[:, :4], return_state=True)
    np.testing.assert_allclose(np.concatenate([a, f(ids()[:, 4:], s)], 1), logits, atol=TOL)


def test_errors_name_the_expected_shape():
    with pytest.raises(ValueError, match=r"\(batch, time, 5\)"):
        torch_rnn.RNNFromScratch(E, H)(torch.zeros(2, 3, 6))
    with pytest.raises(ValueError, match=r"\(batch, time, 5\)"):
        tf_rnn.RNNFromScratch(E, H)(np.zeros((2, 3, 6), np.float32))
    with pytest.raises(ValueError, match=r"\(batch, time\)"):
        torch_rnn.CharRNN(V, E, H)(torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\(batch, time\)"):
        tf_rnn.CharRNN(V, E, H)(np.zeros(3, np.int64))
    for module in (torch_rnn, tf_rnn):
        with pytest.raises(ValueError, match="cell must be one of"):
            module.StackedRNN(E, H, cell="transformer")
    with pytest.raises(ValueError, match="one-layer"):
        torch_rnn.RNNFromScratch(E, H).load_library_weights(torch.nn.RNN(E, H, num_layers=2))
    with pytest.raises(ValueError, match="bias=False"):
        torch_rnn.RNNFromScratch(E, H).load_library_weights(torch.nn.RNN(E, H, bias=False))


def test_parity_refuses_different_stacks():
    with pytest.raises(ValueError, match="twin"):
        torch_to_tf(torch_rnn.StackedRNN(E, H, cell="gru"), tf_rnn.StackedRNN(E, H, cell="lstm"))
    with pytest.raises(ValueError, match="num_layers"):
        torch_to_tf(torch_rnn.StackedRNN(E, H, 1), tf_rnn.StackedRNN(E, H, 2))
    with pytest.raises(ValueError, match="same sizes"):
        torch_to_tf(torch_rnn.CharRNN(V, E, H), tf_rnn.CharRNN(V, E, H + 1))


def test_next_token_windows():
    stream = np.arange(20)
    x, y = next_token_windows(stream, 5)
    assert x.shape == y.shape == (3, 5)
    np.testing.assert_array_equal(y, x + 1)
    x, y = next_token_windows(stream, 6, stride=4, burn_in=2)
    scored = y[y >= 0]
    np.testing.assert_array_equal(scored, np.arange(3, 3 + len(scored)))   # each target once, in order
    assert (y[:, :2] == -100).all()
    assert next_token_windows(stream, 5, offset=2)[0][0, 0] == 2
    with pytest.raises(ValueError, match="skip targets"):
        next_token_windows(stream, 6, stride=5, burn_in=2)
    with pytest.raises(ValueError, match="too short"):
        next_token_windows(stream, 20)
    with pytest.raises(ValueError, match="burn_in"):
        next_token_windows(stream, 5, burn_in=5)


def test_training_loops_agree_on_a_char_lm():
    """Same weights, same windows, SGD, clipping: the same losses in the two training loops.

    A GRU, because nn.GRU and Keras' GRU(reset_after=True) have the same parameters. nn.LSTM and
    nn.RNN train one bias more than their Keras twins (b_ih and b_hh both move, so their sum moves
    twice as far per SGD step): the same function, but not the same training trajectory.
    """
    x, y = next_token_windows(np.random.default_rng(0).integers(0, V, 2000), 20)
    batches = [(x[i:i + 16], y[i:i + 16]) for i in range(0, 96, 16)]
    llmbook.seed(0)
    t, f = torch_rnn.CharRNN(V, E, H, cell="gru"), tf_rnn.CharRNN(V, E, H, cell="gru")
    torch_to_tf(t, f)
    ht = torch_train.fit(t, batches, epochs=2, optimizer=torch.optim.SGD(t.parameters(), lr=0.5), clip=0.5,
                         progress=False)
    hf = tf_train.fit(f, batches, epochs=2, optimizer=keras.optimizers.SGD(learning_rate=0.5), clip=0.5,
                      progress=False)
    np.testing.assert_allclose(ht["step_loss"], hf["step_loss"], rtol=1e-4)


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_hidden_grad_norms_twins_agree(cell):
    llmbook.seed(0)
    t, f = torch_rnn.CharRNN(V, E, H, cell=cell), tf_rnn.CharRNN(V, E, H, cell=cell)
    torch_to_tf(t, f)
    x, y = ids(time=12), ids(time=12, seed=1)
    a, b = torch_rnn.hidden_grad_norms(t, x, y), tf_rnn.hidden_grad_norms(f, x, y)
    assert a.shape == b.shape == (12,)
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-7)
    assert a[0] > 0 and np.all(np.isfinite(a))


def test_sampling_with_carried_state_matches_full_rerun():
    from llmbook.sampling import sample_tokens
    llmbook.seed(0)
    t = torch_rnn.CharRNN(V, E, H, cell="gru").eval()
    f = tf_rnn.CharRNN(V, E, H, cell="gru")
    torch_to_tf(t, f)

    @torch.no_grad()
    def rerun(history):
        return t(torch.as_tensor([history]))[0, -1].numpy()

    prompt = [1, 2, 3]
    expected = sample_tokens(rerun, prompt, 15, seed=3)
    assert sample_tokens(torch_rnn.next_logits_fn(t), prompt, 15, seed=3) == expected
    assert sample_tokens(tf_rnn.next_logits_fn(f), prompt, 15, seed=3) == expected
    step = torch_rnn.next_logits_fn(t)
    step([1, 2, 3])
    with pytest.raises(ValueError, match="grow"):
        step([1])


def test_shipped_char_checkpoints():
    from llmbook.data import tokenized_shakespeare
    V_char = len(tokenized_shakespeare("char").vocab)
    sizes = []
    for cell in ("rnn", "lstm", "gru"):
        for fw, load, cls in (("torch", torch_load, torch_rnn.CharRNN), ("tf", tf_load, tf_rnn.CharRNN)):
            path = llmbook.checkpoint_path(f"char_{cell}_{fw}.npz")
            assert path.stat().st_size < 1.5e6, f"{path.name} is {path.stat().st_size / 1e6:.2f} MB (limit 1.5 MB)"
            model = load(cls, path)
            logits = model(torch.zeros(1, 3, dtype=torch.long)) if fw == "torch" else model(np.zeros((1, 3), np.int64))
            assert tuple(logits.shape) == (1, 3, V_char)
            if fw == "torch":
                sizes.append(sum(p.numel() for p in model.parameters()))
    assert max(sizes) / min(sizes) < 1.03, f"the three cells should have about equal parameter counts: {sizes}"
