"""The NNLM twins: shapes, scratch == library, PyTorch == TensorFlow, training loop, checkpoints."""
import numpy as np
import pytest
import torch

import llmbook
from llmbook.parity import tf_to_torch, torch_to_tf
from llmbook.tf import lm as tf_lm
from llmbook.tf import tensorflow as tf
from llmbook.tf import train as tf_train
from llmbook.tf import checkpoint as tf_checkpoint
from llmbook.tf.checkpoint import load_checkpoint as tf_load, save_checkpoint as tf_save
from llmbook.torch import lm as torch_lm
from llmbook.torch import train as torch_train
from llmbook.torch import checkpoint as torch_checkpoint
from llmbook.torch.checkpoint import load_checkpoint as torch_load, save_checkpoint as torch_save

SIZES = dict(vocab_size=37, context=3, embed_dim=8, hidden_dim=16)
PAIRS = ["NNLM", "NNLMFromScratch"]


def ids(batch=5, context=3, vocab=37, seed=0):
    return np.random.default_rng(seed).integers(0, vocab, (batch, context))


def torch_logits(model, x):
    with torch.no_grad():
        return model.eval()(torch.as_tensor(x)).numpy()


@pytest.mark.parametrize("name", PAIRS)
@pytest.mark.parametrize("direct", [False, True])
def test_torch_equals_tf_with_copied_weights(name, direct):
    llmbook.seed(1)
    t = getattr(torch_lm, name)(**SIZES, direct=direct)
    f = getattr(tf_lm, name)(**SIZES, direct=direct)
    torch_to_tf(t, f)
    x = ids(batch=64)
    gap = np.abs(torch_logits(t, x) - f(x).numpy()).max()
    assert gap <= 1e-5, f"{name}: PyTorch and TF logits differ by {gap:.2e} with the same weights"
    # and back: TF weights into a fresh PyTorch model
    t2 = getattr(torch_lm, name)(**SIZES, direct=direct)
    tf_to_torch(f, t2)
    assert np.abs(torch_logits(t2, x) - f(x).numpy()).max() <= 1e-5


def test_scratch_equals_library_torch():
    lib = torch_lm.NNLM(**SIZES)
    scratch = torch_lm.NNLMFromScratch(**SIZES)
    with torch.no_grad():
        scratch.C.copy_(lib.embed.weight)
        scratch.H.copy_(lib.hidden.weight.T)
        scratch.d.copy_(lib.hidden.bias)
        scratch.U.copy_(lib.out.weight.T)
        scratch.b.copy_(lib.out.bias)
    x = ids()
    assert np.abs(torch_logits(lib, x) - torch_logits(scratch, x)).max() <= 1e-5


def test_scratch_equals_library_tf():
    lib = tf_lm.NNLM(**SIZES)
    scratch = tf_lm.NNLMFromScratch(**SIZES)
    scratch.C.assign(lib.embed.embeddings)
    scratch.H.assign(lib.hidden.kernel)
    scratch.d.assign(lib.hidden.bias)
    scratch.U.assign(lib.out.kernel)
    scratch.b.assign(lib.out.bias)
    x = ids()
    assert np.abs(lib(x).numpy() - scratch(x).numpy()).max() <= 1e-5


@pytest.mark.parametrize("name", PAIRS)
def test_shapes_and_bad_input(name):
    t = getattr(torch_lm, name)(**SIZES)
    f = getattr(tf_lm, name)(**SIZES)
    assert t(torch.as_tensor(ids(batch=1))).shape == (1, 37)
    assert tuple(f(ids(batch=1)).shape) == (1, 37)
    with pytest.raises(ValueError, match=r"\(batch, 3\)"):
        t(torch.as_tensor(ids(context=4)))
    with pytest.raises(ValueError, match=r"\(batch, 3\)"):
        f(ids(context=4))


def test_parity_refuses_mismatched_models():
    with pytest.raises(TypeError, match="twin"):
        torch_to_tf(torch_lm.NNLM(**SIZES), tf_lm.NNLMFromScratch(**SIZES))
    with pytest.raises(ValueError, match="same sizes"):
        torch_to_tf(torch_lm.NNLM(**SIZES), tf_lm.NNLM(**{**SIZES, "hidden_dim": 17}))


def test_cross_entropy_twins_match_numpy():
    from llmbook.metrics import mean_nll
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4, 6, 9)).astype(np.float32)
    targets = rng.integers(0, 9, (4, 6))
    targets[0, :3] = -100
    expected = mean_nll(logits, targets, ignore_index=-100)
    assert float(torch_train.cross_entropy(torch.as_tensor(logits), torch.as_tensor(targets))) == pytest.approx(expected, rel=1e-5)
    assert float(tf_train.cross_entropy(tf.constant(logits), tf.constant(targets))) == pytest.approx(expected, rel=1e-5)


def test_training_loops_agree_from_the_same_weights():
    """Same initial weights, same batches, no dropout, plain SGD + clipping: the same losses in both loops.

    (SGD, not Adam: Keras' Adam adds epsilon to sqrt(v) before bias correction, PyTorch's after, so
    Adam runs drift apart by design wherever gradients are tiny.)
    """
    import keras
    rng = np.random.default_rng(0)
    x = rng.integers(0, 37, (256, 3))
    y = (x.sum(1) % 37)                        # a learnable rule
    batches = [(x[i:i + 32], y[i:i + 32]) for i in range(0, 256, 32)]
    llmbook.seed(0)
    t = torch_lm.NNLM(**SIZES)
    f = tf_lm.NNLM(**SIZES)
    torch_to_tf(t, f)
    ht = torch_train.fit(t, batches, epochs=3, optimizer=torch.optim.SGD(t.parameters(), lr=0.1), clip=0.5,
                         progress=False, valid=batches)
    hf = tf_train.fit(f, batches, epochs=3, optimizer=keras.optimizers.SGD(learning_rate=0.1), clip=0.5,
                      progress=False, valid=batches)
    assert ht["loss"][-1] < ht["loss"][0] - 0.05         # it learns
    np.testing.assert_allclose(ht["step_loss"], hf["step_loss"], rtol=1e-5)
    np.testing.assert_allclose(ht["val_loss"], hf["val_loss"], rtol=1e-5)
    assert set(ht) == set(hf) == {"loss", "val_loss", "step_loss", "seconds"}


def test_default_adam_learns_in_both_frameworks():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 37, (256, 3))
    batches = [(x[i:i + 32], x[i:i + 32, 0]) for i in range(0, 256, 32)]    # copy the first token
    for fit, model in ((torch_train.fit, torch_lm.NNLM(**SIZES)), (tf_train.fit, tf_lm.NNLM(**SIZES))):
        hist = fit(model, batches, epochs=10, lr=2e-2, progress=False)
        assert hist["loss"][-1] < 1.0 < np.log(37) < hist["loss"][0] + 0.2, hist["loss"]


def test_training_loss_that_explodes_is_reported():
    batches = [(ids(batch=8), np.zeros(8, int))]
    def nan_loss(loss_fn):
        return lambda logits, targets, ignore_index: loss_fn(logits, targets, ignore_index) * float("nan")
    with pytest.raises(FloatingPointError, match="learning rate"):
        torch_train.fit(torch_lm.NNLM(**SIZES), batches, loss_fn=nan_loss(torch_train.cross_entropy), progress=False)
    with pytest.raises(FloatingPointError, match="learning rate"):
        tf_train.fit(tf_lm.NNLM(**SIZES), batches, loss_fn=nan_loss(tf_train.cross_entropy), progress=False)


def test_evaluate_rejects_empty_batches():
    with pytest.raises(ValueError, match="no target tokens"):
        torch_train.evaluate(torch_lm.NNLM(**SIZES), [])
    with pytest.raises(ValueError, match="no target tokens"):
        tf_train.evaluate(tf_lm.NNLM(**SIZES), [])


@pytest.mark.parametrize("name", PAIRS)
def test_checkpoint_round_trip(tmp_path, name):
    t = getattr(torch_lm, name)(**SIZES)
    f = getattr(tf_lm, name)(**SIZES)
    t2 = torch_load(getattr(torch_lm, name), torch_save(t, tmp_path / "t.npz", **SIZES))
    f2 = tf_load(getattr(tf_lm, name), tf_save(f, tmp_path / "f.npz", **SIZES))
    x = ids()
    # float16 storage: equal to half precision
    assert np.abs(torch_logits(t, x) - torch_logits(t2, x)).max() < 1e-2
    assert np.abs(f(x).numpy() - f2(x).numpy()).max() < 1e-2
    with pytest.raises(FileNotFoundError, match="benchmark"):
        torch_load(torch_lm.NNLM, tmp_path / "missing.npz")


@pytest.mark.parametrize("fw", ["torch", "tf"])
def test_a_saved_training_state_resumes_as_if_never_stopped(tmp_path, fw):
    """Two epochs straight equal one epoch, a save, a fresh model and optimizer, a restore and one more."""
    import keras
    lm, train, ckpt = (torch_lm, torch_train, torch_checkpoint) if fw == "torch" else (tf_lm, tf_train, tf_checkpoint)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 37, (128, 3))
    batches = [(x[i:i + 32], x[i:i + 32, 0]) for i in range(0, 128, 32)]

    def fresh():
        llmbook.seed(0)
        model = lm.NNLM(**SIZES)
        opt = (torch.optim.Adam(model.parameters(), lr=1e-2) if fw == "torch"
               else keras.optimizers.Adam(learning_rate=1e-2))
        if fw == "tf":
            model(x[:1])                                                   # build the weights
        return model, opt

    def weights(model):
        return [v.detach().numpy() for v in model.state_dict().values()] if fw == "torch" else \
            [v.numpy() for v in model.variables]

    def epoch(model, opt):
        train.fit(model, batches, epochs=1, optimizer=opt, schedule=lambda k: 1e-2 / k, progress=False)

    straight, opt = fresh()
    epoch(straight, opt)
    epoch(straight, opt)
    first, opt = fresh()
    epoch(first, opt)
    path = ckpt.save_training_state(tmp_path / "run.state", first, opt, dict(epoch=1))
    resumed, opt = fresh()
    assert ckpt.restore_training_state(ckpt.read_training_state(path), resumed, opt) == dict(epoch=1)
    assert opt.llmbook_step == len(batches)                                # the schedule goes on from step 5
    epoch(resumed, opt)
    for a, b in zip(weights(straight), weights(resumed), strict=True):
        np.testing.assert_array_equal(a, b)
    path.write_bytes(path.read_bytes()[:100])                              # a kill mid-copy, say
    with pytest.raises(ValueError, match="not a complete training state.*delete it"):
        ckpt.read_training_state(path)


def test_a_tf_training_state_refuses_another_model(tmp_path):
    import keras
    small, big = tf_lm.NNLM(**SIZES), tf_lm.NNLM(**dict(SIZES, hidden_dim=32))
    for model in (small, big):
        model(ids())
    path = tf_checkpoint.save_training_state(tmp_path / "s.state", small, keras.optimizers.Adam(), {})
    with pytest.raises(ValueError, match="does not fit this NNLM.*delete it"):
        tf_checkpoint.restore_training_state(tf_checkpoint.read_training_state(path), big, keras.optimizers.Adam())


def test_shipped_checkpoints_match_the_word_vocabulary():
    from llmbook.data import tokenized_shakespeare
    V = len(tokenized_shakespeare("word").vocab)
    t = torch_load(torch_lm.NNLM, llmbook.checkpoint_path("nnlm_torch.npz"))
    f = tf_load(tf_lm.NNLM, llmbook.checkpoint_path("nnlm_tf.npz"))
    assert t.out.out_features == V and f.out.units == V
    with pytest.raises(FileNotFoundError, match="shipped"):
        llmbook.checkpoint_path("nope.npz")


def test_device_choice():
    from llmbook.tf import device as tf_device
    from llmbook.torch import device as torch_device
    assert torch_device().type in {"cuda", "mps", "cpu"}
    assert tf_device() in {"/GPU:0", "/CPU:0"}
