"""The decoder-only GPT twins: causality, PyTorch == TensorFlow, KV cache == full recomputation, cache memory."""
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import torch

import llmbook
from llmbook.parity import tf_to_torch, torch_to_tf
from llmbook.tf import gpt as tf_gpt
from llmbook.tf.checkpoint import load_checkpoint as tf_load, save_checkpoint as tf_save
from llmbook.torch import gpt as torch_gpt
from llmbook.torch.checkpoint import load_checkpoint as torch_load, save_checkpoint as torch_save
from conftest import load_script

ROOT = Path(__file__).resolve().parents[1]
SIZES = dict(vocab_size=19, d_model=16, num_heads=4, num_layers=2, d_ff=24, max_len=24, dropout=0.1)


def twins(seed=0, sharpen=1.0):
    """A PyTorch GPT and its TF twin with the same weights (output made peakier by `sharpen`)."""
    llmbook.seed(seed)
    t = torch_gpt.GPT(**SIZES).eval()
    with torch.no_grad():
        t.embed.weight.mul_(sharpen)
        t.pos.table.normal_(0, 0.5)         # positions that matter, so a wrong offset shows
    f = tf_gpt.GPT(**SIZES)
    torch_to_tf(t, f)
    return t, f


@pytest.fixture(scope="module")
def models():
    return twins()


def ids(B=3, T=10, seed=1):
    return np.random.default_rng(seed).integers(0, SIZES["vocab_size"], (B, T))


def logits(model, x, framework, cache=None):
    """Logits (B, T, V) as NumPy from either twin."""
    if framework == "torch":
        with torch.no_grad():
            return model(torch.as_tensor(x), cache=cache).numpy()
    return model(tf.constant(x), cache=cache).numpy()


def pick(models, framework):
    return models[0] if framework == "torch" else models[1]


@pytest.mark.parametrize("framework", ["torch", "tf"])
def test_causal_later_tokens_never_change_earlier_logits(models, framework):
    m = pick(models, framework)
    x = ids()
    base = logits(m, x, framework)
    for t in range(x.shape[1] - 1):
        y = x.copy()
        y[:, t + 1:] = (y[:, t + 1:] + 7) % SIZES["vocab_size"]           # change every token after t
        out = logits(m, y, framework)
        np.testing.assert_allclose(out[:, :t + 1], base[:, :t + 1], atol=1e-6,
                                   err_msg=f"logits at positions <= {t} changed when tokens after {t} did: "
                                           "the causal mask lets a position see the future")
        assert np.abs(out[:, t + 1] - base[:, t + 1]).max() > 1e-4, "changed tokens had no effect at all"


def test_torch_equals_tf_with_copied_weights(models):
    x = ids(T=SIZES["max_len"])
    a, b = logits(models[0], x, "torch"), logits(models[1], x, "tf")
    assert a.shape == b.shape == (3, SIZES["max_len"], SIZES["vocab_size"])
    assert np.abs(a - b).max() <= 1e-5


def test_tf_to_torch_round_trip():
    t, f = twins(seed=3)
    t2 = torch_gpt.GPT(**SIZES).eval()
    tf_to_torch(f, t2)
    for (n, p), q in zip(t.named_parameters(), t2.parameters()):
        assert torch.equal(p, q), n


def test_output_is_tied_to_the_input_embedding(models):
    t, f = models
    names = [n for n, _ in t.named_parameters()]
    assert not any("out" in n or "head" in n for n in names), names       # no separate output matrix
    x = ids(B=1, T=4)
    with torch.no_grad():
        t2 = torch_gpt.GPT(**SIZES).eval()
        t2.load_state_dict(t.state_dict())
        t2.embed.weight[5] += torch.linspace(-1, 1, SIZES["d_model"])     # one input row changed ...
        d = (t2(torch.as_tensor(x)) - t(torch.as_tensor(x)))[..., 5]       # ... moves its output logit
    assert d.abs().max() > 1e-3


@pytest.mark.parametrize("framework", ["torch", "tf"])
def test_cached_decoding_equals_full_recomputation(models, framework):
    m = pick(models, framework)
    x = ids(T=SIZES["max_len"])
    full = logits(m, x, framework)                                         # (B, T, V)
    cache = m.new_cache()
    prefill = logits(m, x[:, :5], framework, cache)                        # (B, 5, V)
    np.testing.assert_allclose(prefill, full[:, :5], atol=1e-5)
    for t in range(5, x.shape[1]):                                         # one token at a time, t > 0
        step = m.step(torch.as_tensor(x[:, t]) if framework == "torch" else tf.constant(x[:, t]), cache)
        step = step.detach().numpy() if framework == "torch" else step.numpy()
        np.testing.assert_allclose(step, full[:, t], atol=1e-5,
                                   err_msg=f"step at position {t} differs from the full pass")
        assert len(cache) == t + 1


@pytest.mark.parametrize("framework", ["torch", "tf"])
def test_cache_bytes_formula_matches_the_tensors(models, framework):
    m = pick(models, framework)
    cache = m.new_cache()
    logits(m, ids(B=2, T=7), framework, cache)
    L, h, dk = SIZES["num_layers"], SIZES["num_heads"], SIZES["d_model"] // SIZES["num_heads"]
    assert m.cache_bytes(7, batch=2) == 2 * L * h * dk * 7 * 4 * 2
    assert cache.nbytes() == m.cache_bytes(7, batch=2)
    for k, v in cache.layers:
        assert tuple(k.shape) == tuple(v.shape) == (2, h, 7, dk)


@pytest.mark.parametrize("framework", ["torch", "tf"])
def test_generate_with_and_without_cache_agree(models, framework):
    m = pick(models, framework)
    prompt = ids(B=2, T=3)
    p = torch.as_tensor(prompt) if framework == "torch" else tf.constant(prompt)
    n = 2 * SIZES["max_len"]                                               # passes the window twice
    for kw in (dict(temperature=0.0), dict(temperature=1.0, top_k=5, seed=4)):
        a = np.asarray(m.generate(p, n, use_cache=True, **kw))
        b = np.asarray(m.generate(p, n, use_cache=False, **kw))
        assert a.shape == (2, 3 + n)
        np.testing.assert_array_equal(a[:, :3], prompt)
        np.testing.assert_array_equal(a, b)


def test_greedy_generation_agrees_across_frameworks():
    t, f = twins(seed=2, sharpen=4.0)                                      # peaky: no near-ties
    prompt = ids(B=2, T=3)
    a = t.generate(torch.as_tensor(prompt), 15, temperature=0.0).numpy()
    b = f.generate(tf.constant(prompt), 15, temperature=0.0).numpy()
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("framework", ["torch", "tf"])
def test_generate_is_seeded(models, framework):
    m = pick(models, framework)
    p = ids(B=2, T=2)
    p = torch.as_tensor(p) if framework == "torch" else tf.constant(p)
    a, b = (np.asarray(m.generate(p, 20, seed=s)) for s in (7, 7))
    c = np.asarray(m.generate(p, 20, seed=8))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_dropout_is_active_in_training_only():
    t, f = twins()
    x = torch.as_tensor(ids())
    t.train()
    assert not torch.equal(t(x), t(x))
    t.eval()
    assert torch.equal(t(x), t(x))
    xt = tf.constant(ids())
    assert not np.array_equal(f(xt, training=True).numpy(), f(xt, training=True).numpy())


@pytest.mark.parametrize("framework", ["torch", "tf"])
def test_positions_start_at_the_scale_of_the_scaled_token_embeddings(framework):
    """x_0 = E[ids] sqrt(D) + P: both terms start with unit variance, so positions are visible at step 0.

    (A table at std 0.02 beside unit-variance tokens, as before, left the model nearly blind to order:
    see chapter 7's first page.)"""
    llmbook.seed(0)
    sizes = dict(SIZES, d_model=96, max_len=256)
    mod = torch_gpt if framework == "torch" else tf_gpt
    m = mod.GPT(**sizes)
    if framework == "torch":
        token, pos = m.embed.weight.detach().numpy() * m.scale, m.pos.table.detach().numpy()
    else:
        token, pos = m.embed.embeddings.numpy() * m.scale, m.pos.table.numpy()
    assert 0.9 < token.std() < 1.1 and 0.95 < pos.std() < 1.05           # 1,824 and 24,576 draws
    assert mod.GPT(**sizes, pos_std=0.02).hparams["pos_std"] == 0.02      # kept, so old runs reproduce


def test_checkpoints_round_trip(tmp_path, models):
    t, f = models
    x = ids()
    torch_save(t, tmp_path / "t.npz", **SIZES)
    tf_save(f, tmp_path / "f.npz", **SIZES)
    t2, f2 = torch_load(torch_gpt.GPT, tmp_path / "t.npz"), tf_load(tf_gpt.GPT, tmp_path / "f.npz")
    np.testing.assert_allclose(logits(t2, x, "torch"), logits(t, x, "torch"), atol=2e-2)   # float16 weights
    np.testing.assert_allclose(logits(f2, x, "tf"), logits(t2, x, "torch"), atol=1e-5)


@pytest.mark.parametrize("framework", ["torch", "tf"])
def test_clear_errors(models, framework):
    mod = torch_gpt if framework == "torch" else tf_gpt
    m = pick(models, framework)
    with pytest.raises(ValueError, match="divisible"):
        mod.GPT(vocab_size=5, d_model=10, num_heads=4)
    too_long = ids(B=1, T=SIZES["max_len"] + 1)
    with pytest.raises(ValueError, match="max_len"):
        logits(m, too_long, framework)
    with pytest.raises(ValueError, match="batch, length"):
        logits(m, too_long[0], framework)


def test_the_shipped_tensorflow_gpt_is_the_pytorch_checkpoint_converted(tmp_path):
    """gpt_char_tf.npz holds gpt_char_torch.npz's values (tools/convert_checkpoint.py), and computes its logits."""
    tool = load_script("tools/convert_checkpoint.py")
    shipped = llmbook.checkpoint_path("gpt_char_tf.npz")
    fresh = tool.convert("gpt.GPT", llmbook.checkpoint_path("gpt_char_torch.npz"), tmp_path / "tf.npz")
    with np.load(shipped) as a, np.load(fresh) as b:          # keys "003:gpt_2/...": the layer counter varies
        assert len(a.files) == len(b.files) and str(a["__config__"]) == str(b["__config__"])
        for k, j in zip(sorted(a.files), sorted(b.files)):
            assert k.split(":")[0] == j.split(":")[0] and np.array_equal(a[k], b[j]), \
                f"{k} differs: re-run tools/convert_checkpoint.py"
    pt = torch_load(torch_gpt.GPT, llmbook.checkpoint_path("gpt_char_torch.npz"), device="cpu")
    tf_model = tf_load(tf_gpt.GPT, shipped)
    ids = np.random.default_rng(0).integers(0, pt.hparams["vocab_size"], (2, 40))   # (B, T)
    with torch.no_grad():
        want = pt(torch.as_tensor(ids)).numpy()                                  # (B, T, V)
    # trained weights make activations and logits large (here |z| up to 12.2); float32 rounding in the
    # two frameworks' sums grows with that scale, also in a logit that comes out small, so the bound
    # is 1e-5 of the largest logit (measured: 1.4e-6 of it)
    got = tf_model(ids).numpy()                                                  # (B, T, V)
    assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max()
    with pytest.raises(SystemExit, match="module.Class"):
        tool.twins("GPT")


# -- translation as next-token prediction (GPTTranslator) -------------------------------------------------

PAIR_SIZES = dict(src_vocab_size=13, tgt_vocab_size=11, d_model=16, num_heads=4, num_layers=2, d_ff=24, max_len=24,
                  dropout=0.1)


@pytest.fixture(scope="module")
def translators():
    """A PyTorch GPTTranslator and its TF twin with the same weights (positions made to matter)."""
    llmbook.seed(0)
    t = torch_gpt.GPTTranslator(**PAIR_SIZES).eval()
    with torch.no_grad():
        t.gpt.pos.table.normal_(0, 0.5)
        t.gpt.embed.weight.mul_(3.0)
    f = tf_gpt.GPTTranslator(**PAIR_SIZES)
    torch_to_tf(t, f)
    return t, f


SRC = np.array([[5, 6, 7, 8, 3], [9, 10, 3, 0, 0], [4, 3, 0, 0, 0]])     # right-padded with <pad> = 0
TGT_IN = np.array([[2, 4, 5, 6], [2, 7, 0, 0], [2, 8, 9, 0]])            # <bos> = 2 first


def translate_logits(model, src, tgt_in, framework):
    """Teacher-forced logits (B, T, V_tgt) as NumPy from either twin."""
    if framework == "torch":
        with torch.no_grad():
            return model(torch.as_tensor(src), torch.as_tensor(tgt_in)).numpy()
    return model(tf.constant(src), tf.constant(tgt_in)).numpy()


@pytest.mark.parametrize("framework", ["torch", "tf"])
def test_the_translator_is_a_gpt_reading_source_then_target(translators, framework):
    """Unpadded: the target logits are the GPT's on `source ++ (target + offset)`, over the target rows."""
    model = pick(translators, framework)
    src, tgt = SRC[:1], TGT_IN[:1]
    joint = np.concatenate([src, tgt + PAIR_SIZES["src_vocab_size"]], axis=1)   # (1, S+T)
    full = logits(model.gpt, joint, framework)[:, src.shape[1]:, PAIR_SIZES["src_vocab_size"]:]   # (1, T, V_tgt)
    np.testing.assert_allclose(translate_logits(model, src, tgt, framework), full, atol=1e-5)


@pytest.mark.parametrize("framework", ["torch", "tf"])
def test_padding_changes_no_translator_logit(translators, framework):
    """Each padded row of a batch gets the logits of its sentence alone (masked pads, positions per row)."""
    model = pick(translators, framework)
    batch = translate_logits(model, SRC, TGT_IN, framework)                # (3, 4, V_tgt)
    for row in range(len(SRC)):
        s, t = int((SRC[row] != 0).sum()), int((TGT_IN[row] != 0).sum())
        alone = translate_logits(model, SRC[row:row + 1, :s], TGT_IN[row:row + 1, :t], framework)
        np.testing.assert_allclose(batch[row:row + 1, :t], alone, atol=1e-5)


def test_translator_torch_equals_tf_with_copied_weights(translators):
    t, f = translators
    np.testing.assert_allclose(translate_logits(t, SRC, TGT_IN, "torch"), translate_logits(f, SRC, TGT_IN, "tf"),
                               atol=1e-5)


@pytest.mark.parametrize("framework", ["torch", "tf"])
def test_translator_steps_equal_the_teacher_forced_pass(translators, framework):
    """encode + step after step (the decoding protocol, with its caches) == one teacher-forced pass."""
    model = pick(translators, framework)
    memory = model.encode(torch.as_tensor(SRC) if framework == "torch" else tf.constant(SRC))
    state, steps = model.initial_state(memory), []
    with torch.no_grad():
        for j in range(TGT_IN.shape[1]):
            prev = TGT_IN[:, j]
            out, state = model.step(torch.as_tensor(prev) if framework == "torch" else tf.constant(prev), memory, state)
            steps.append(np.asarray(out))
    np.testing.assert_allclose(np.stack(steps, axis=1), translate_logits(model, SRC, TGT_IN, framework), atol=1e-5)


@pytest.mark.parametrize("framework", ["torch", "tf"])
def test_translator_clear_errors(translators, framework):
    model = pick(translators, framework)
    as_ids = torch.as_tensor if framework == "torch" else tf.constant
    with pytest.raises(ValueError, match="pad on the right"):
        model(as_ids(np.array([[0, 5, 3]])), as_ids(TGT_IN[:1]))
    with pytest.raises(ValueError, match="max_len"):
        model(as_ids(np.full((1, 20), 5)), as_ids(np.full((1, 6), 4)))


REVERSER = dict(src_vocab_size=10, tgt_vocab_size=10, d_model=32, num_heads=4, num_layers=2, d_ff=64, max_len=16,
                dropout=0.0)


def train_reverser(framework: str):
    """A GPTTranslator trained with the course's loop to reverse three tokens; (model, held-out pairs)."""
    from llmbook.data.seq2seq import Seq2SeqBatches
    if framework == "torch":
        from llmbook.torch.train import fit
        cls = torch_gpt.GPTTranslator
    else:
        from llmbook.tf.train import fit
        cls = tf_gpt.GPTTranslator
    llmbook.seed(0)
    seqs = np.random.default_rng(0).integers(4, 10, (400, 3))             # tokens 4..9, no specials
    pairs = [(s, s[::-1]) for s in seqs]                                   # Seq2SeqBatches adds <bos>, <eos>
    model = cls(**REVERSER)
    fit(model, Seq2SeqBatches([s for s, _ in pairs[:300]], [t for _, t in pairs[:300]], 32, seed=0), epochs=25,
        lr=3e-3, ignore_index=0, progress=False)
    return model, pairs[300:]


@pytest.fixture(scope="module")
def torch_reverser():
    return train_reverser("torch")


@pytest.mark.parametrize("framework", ["torch", "tf"])
def test_a_translator_learns_to_reverse(framework, torch_reverser):
    """Greedy decoding of held-out sources after training: at least 90 % exactly reversed."""
    if framework == "torch":
        from llmbook.torch.decoding import greedy_decode
        model, test = torch_reverser
    else:
        from llmbook.tf.decoding import greedy_decode
        model, test = train_reverser("tf")
    out = greedy_decode(model, np.stack([s for s, _ in test]), bos_id=2, eos_id=3, max_len=5)
    exact = np.mean([o == list(t) for o, (_, t) in zip(out, test)])
    assert exact >= 0.9, exact


def test_translator_decoders_agree_across_frameworks(torch_reverser):
    """The trained PyTorch reverser and its TF copy decode the same tokens, greedy and with a beam."""
    from llmbook.tf.decoding import beam_search as tf_beam, greedy_decode as tf_greedy
    from llmbook.torch.decoding import beam_search, greedy_decode
    t, test = torch_reverser
    f = tf_gpt.GPTTranslator(**REVERSER)
    torch_to_tf(t, f)
    src, kw = np.stack([s for s, _ in test[:40]]), dict(bos_id=2, eos_id=3, max_len=5)
    greedy = greedy_decode(t, src, **kw)
    assert greedy == tf_greedy(f, src, **kw) and len({tuple(g) for g in greedy}) > 10
    assert beam_search(t, src, k=3, **kw).sequences == tf_beam(f, src, k=3, **kw).sequences
