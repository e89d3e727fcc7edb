"""Appendix, sentence VAE: the SentenceVAE twins, the ELBO's two terms, word dropout, KL annealing, the data."""
import numpy as np
import pytest
import torch

import llmbook
from llmbook.data.sentences import (BOS_ID, EOS_ID, PAD_ID, UNK_ID, encode_sentences, sentence_vocab,
                                    short_sentences, take, word_dropout)
from llmbook.parity import tf_to_torch, torch_to_tf
from llmbook.tf import vae as tf_vae
from llmbook.torch import vae as torch_vae

SIZES = dict(vocab_size=23, embed_dim=8, hidden_dim=12, latent_dim=5, pad_id=0)
TOL = 1e-5      # as the other PyTorch == TensorFlow tests


def batch(B=4, S=7, seed=0):
    """Encoder inputs (B, S), decoder inputs (B, S+1), targets (B, S+1) of different lengths, right-padded."""
    rng = np.random.default_rng(seed)
    lengths = np.linspace(2, S, B).astype(int)
    seqs = [rng.integers(4, SIZES["vocab_size"], size=n) for n in lengths]
    src = np.zeros((B, S), np.int64)
    dec_in = np.zeros((B, S + 1), np.int64)
    targets = np.zeros((B, S + 1), np.int64)
    for i, x in enumerate(seqs):
        src[i, :len(x)] = x
        dec_in[i, :len(x) + 1] = np.r_[BOS_ID, x]
        targets[i, :len(x) + 1] = np.r_[x, EOS_ID]
    return src, dec_in, targets


def twins():
    llmbook.seed(0)
    t = torch_vae.SentenceVAE(**SIZES).eval()
    f = tf_vae.SentenceVAE(**SIZES)
    torch_to_tf(t, f)
    return t, f


def numpy_kl(mu, logvar):
    """KL(N(mu, diag exp(logvar)) || N(0, I)) per row, the closed form."""
    return 0.5 * np.sum(mu ** 2 + np.exp(logvar) - 1.0 - logvar, axis=-1)


# ---- parity ------------------------------------------------------------------------------------------

def test_same_weights_same_eps_give_the_same_logits_mu_logvar_and_elbo():
    t, f = twins()
    src, dec_in, targets = batch()
    eps = np.random.default_rng(1).standard_normal((4, SIZES["latent_dim"])).astype(np.float32)   # (B, Z)
    with torch.no_grad():
        tl, tm, tv = t(torch.as_tensor(src), torch.as_tensor(dec_in), torch.as_tensor(eps))
        t_rec, t_kl = torch_vae.elbo_terms(tl, torch.as_tensor(targets), tm, tv, PAD_ID)
    fl, fm, fv = f(src, dec_in, eps)
    f_rec, f_kl = tf_vae.elbo_terms(fl, targets, fm, fv, PAD_ID)
    assert tuple(fl.shape) == tuple(tl.shape) == (4, 8, SIZES["vocab_size"])
    for name, a, b in (("mu", tm, fm), ("logvar", tv, fv), ("logits", tl, fl)):
        gap = np.abs(a.numpy() - b.numpy()).max()
        assert gap <= TOL, f"{name} differs by {gap:.2e} between PyTorch and TensorFlow with the same weights"
    assert abs(float(t_rec) - float(f_rec)) <= TOL * max(1.0, abs(float(t_rec))), (float(t_rec), float(f_rec))
    assert abs(float(t_kl) - float(f_kl)) <= TOL, (float(t_kl), float(f_kl))


def test_padding_after_a_sentence_changes_nothing():
    t, f = twins()
    src, dec_in, targets = batch()
    eps = np.zeros((4, SIZES["latent_dim"]), np.float32)
    wide = np.pad(src, ((0, 0), (0, 3)))
    with torch.no_grad():
        a = t(torch.as_tensor(src), torch.as_tensor(dec_in), torch.as_tensor(eps))[1].numpy()
        b = t(torch.as_tensor(wide), torch.as_tensor(dec_in), torch.as_tensor(eps))[1].numpy()
    np.testing.assert_allclose(a, b, atol=1e-6, err_msg="mu depends on padding: encoder state not read at the last real token?")
    np.testing.assert_allclose(f.encode(src)[0].numpy(), f.encode(wide)[0].numpy(), atol=1e-6)


def test_weights_go_back_from_tensorflow_to_pytorch():
    t, f = twins()
    other = torch_vae.SentenceVAE(**SIZES).eval()
    tf_to_torch(f, other)
    src, dec_in, _ = batch()
    eps = torch.ones(4, SIZES["latent_dim"])
    with torch.no_grad():
        a = t(torch.as_tensor(src), torch.as_tensor(dec_in), eps)[0]
        b = other(torch.as_tensor(src), torch.as_tensor(dec_in), eps)[0]
    assert float((a - b).abs().max()) <= TOL


def test_greedy_decoding_agrees_and_pads_after_eos():
    t, f = twins()
    z = np.random.default_rng(2).standard_normal((6, SIZES["latent_dim"])).astype(np.float32)
    a = t.decode_greedy(torch.as_tensor(z), BOS_ID, EOS_ID, max_len=9).numpy()
    b = f.decode_greedy(z, BOS_ID, EOS_ID, max_len=9).numpy()
    assert a.shape == b.shape == (6, 9)
    np.testing.assert_array_equal(a, b)
    for row in a:
        hits = np.flatnonzero(row == EOS_ID)
        if len(hits):
            assert (row[hits[0] + 1:] == PAD_ID).all(), f"tokens after <eos>: {row}"


# ---- the ELBO's terms ----------------------------------------------------------------------------------

@pytest.mark.parametrize("framework", ["torch", "tf"])
def test_kl_is_the_closed_form(framework):
    rng = np.random.default_rng(3)
    mu = rng.normal(size=(5, 4)).astype(np.float32)
    logvar = rng.normal(scale=0.7, size=(5, 4)).astype(np.float32)
    logits = np.zeros((5, 3, 7), np.float32)
    targets = np.ones((5, 3), np.int64)
    if framework == "torch":
        rec, kl = torch_vae.elbo_terms(*map(torch.as_tensor, (logits, targets, mu, logvar)), pad_id=0)
    else:
        rec, kl = tf_vae.elbo_terms(logits, targets, mu, logvar, pad_id=0)
    assert abs(float(kl) - numpy_kl(mu, logvar).mean()) <= 1e-5
    assert abs(float(rec) - 3 * np.log(7)) <= 1e-5, "uniform logits: -log p(x|z) = T log V per sentence"


def test_kl_matches_a_monte_carlo_estimate():
    """KL(q || p) = E_q[log q(z) - log p(z)], estimated from 400,000 samples of q."""
    rng = np.random.default_rng(4)
    mu, logvar = np.array([0.5, -1.0, 0.2]), np.array([-0.5, 0.3, 0.0])
    sigma = np.exp(0.5 * logvar)
    z = mu + sigma * rng.standard_normal((400_000, 3))
    log_q = -0.5 * (((z - mu) / sigma) ** 2 + logvar + np.log(2 * np.pi)).sum(1)
    log_p = -0.5 * (z ** 2 + np.log(2 * np.pi)).sum(1)
    mc = (log_q - log_p).mean()
    _, kl = torch_vae.elbo_terms(torch.zeros(1, 1, 2), torch.zeros(1, 1, dtype=torch.long),
                                 torch.as_tensor(mu[None]), torch.as_tensor(logvar[None]))
    assert abs(mc - float(kl)) < 0.01, f"closed form {float(kl):.4f} vs Monte Carlo {mc:.4f}"


@pytest.mark.parametrize("framework", ["torch", "tf"])
def test_kl_is_zero_when_q_is_the_prior(framework):
    zeros = np.zeros((3, 6), np.float32)
    logits, targets = np.zeros((3, 2, 5), np.float32), np.ones((3, 2), np.int64)
    mod = torch_vae if framework == "torch" else tf_vae
    args = (logits, targets, zeros, zeros)
    _, kl = mod.elbo_terms(*(map(torch.as_tensor, args) if framework == "torch" else args), pad_id=0)
    assert float(kl) == 0.0


def test_padding_costs_nothing_in_the_reconstruction():
    rng = np.random.default_rng(5)
    logits = torch.as_tensor(rng.normal(size=(2, 4, 6)).astype(np.float32))
    targets = torch.tensor([[3, 4, 0, 0], [5, 3, 2, 0]])
    mu = logvar = torch.zeros(2, 3)
    rec, _ = torch_vae.elbo_terms(logits, targets, mu, logvar, pad_id=0)
    logp = torch.log_softmax(logits, -1)
    want = -(logp[0, 0, 3] + logp[0, 1, 4] + logp[1, 0, 5] + logp[1, 1, 3] + logp[1, 2, 2]) / 2
    assert abs(float(rec) - float(want)) <= 1e-5, "padding counted, or not summed per sentence and averaged?"


def test_the_reparameterisation_passes_gradients_to_mu_and_logvar():
    mu = torch.tensor([[0.3, -0.2]], requires_grad=True)
    logvar = torch.tensor([[0.1, -0.4]], requires_grad=True)
    eps = torch.tensor([[1.5, -0.5]])
    z = torch_vae.SentenceVAE.reparameterize(mu, logvar, eps)
    z.sum().backward()
    np.testing.assert_allclose(mu.grad.numpy(), [[1.0, 1.0]])                  # dz/dmu = 1
    want = 0.5 * np.exp(0.5 * logvar.detach().numpy()) * eps.numpy()           # dz/dlogvar = sigma eps / 2
    np.testing.assert_allclose(logvar.grad.numpy(), want, rtol=1e-6)


def test_a_training_step_reaches_every_weight():
    llmbook.seed(0)
    t = torch_vae.SentenceVAE(**SIZES).train()
    src, dec_in, targets = map(torch.as_tensor, batch())
    logits, mu, logvar = t(src, dec_in)
    rec, kl = torch_vae.elbo_terms(logits, targets, mu, logvar)
    (rec + kl).backward()
    missing = [n for n, p in t.named_parameters() if p.grad is None or float(p.grad.abs().sum()) == 0]
    assert not missing, f"no gradient reaches {missing}"


# ---- word dropout and annealing -----------------------------------------------------------------------

@pytest.mark.parametrize("p", [0.0, 0.3, 1.0])
def test_word_dropout_rate_and_what_it_never_touches(p):
    rng = np.random.default_rng(6)
    dec_in = rng.integers(4, 50, size=(2000, 20))
    dec_in[:, 0] = BOS_ID
    dec_in[:, 15:] = PAD_ID
    out = word_dropout(dec_in, p, np.random.default_rng(7))
    words = (dec_in != BOS_ID) & (dec_in != PAD_ID)
    rate = (out[words] == UNK_ID).mean()
    assert abs(rate - p) < 0.005, f"dropped {rate:.3f} of the words, asked for {p}"
    assert (out[:, 0] == BOS_ID).all() and (out[:, 15:] == PAD_ID).all(), "<bos> or <pad> replaced"
    assert ((out == dec_in) | (out == UNK_ID)).all(), "word dropout may only write <unk>"


def test_word_dropout_rejects_a_bad_rate():
    with pytest.raises(ValueError, match="word dropout rate"):
        word_dropout(np.ones((2, 2), np.int64), 1.5, np.random.default_rng(0))


@pytest.mark.parametrize("mod", [torch_vae, tf_vae], ids=["torch", "tf"])
def test_kl_annealing_schedule(mod):
    assert mod.kl_weight(0, 1000) == 0.0
    assert mod.kl_weight(500, 1000) == 0.5
    assert mod.kl_weight(1000, 1000) == 1.0 and mod.kl_weight(5000, 1000) == 1.0
    assert mod.kl_weight(0, 0) == 1.0, "no warm-up: the full ELBO from the start"
    weights = [mod.kl_weight(s, 100) for s in range(0, 200, 7)]
    assert weights == sorted(weights), "the weight never falls"


# ---- data ---------------------------------------------------------------------------------------------

def test_short_sentences_keep_the_chapter_split():
    train, test = short_sentences("train"), short_sentences("test")
    assert len(train) > 10 * len(test) > 0
    assert all(4 <= len(s.split()) <= 15 for s in train[:2000] + test)
    shared = set(test) & set(train)          # formulas such as "Yahweh spoke to Moses, saying," recur
    assert len(shared) < 0.1 * len(set(test)), f"{len(shared)} test sentences also in training"


def test_encoded_sentences_are_shifted_for_teacher_forcing():
    vocab = sentence_vocab(["the man said to the woman .", "the woman said nothing ."], min_count=1)
    src, dec_in, targets = encode_sentences(["the man said .", "the woman ."], vocab)
    assert vocab.itos[:4] == ["<pad>", "<unk>", "<bos>", "<eos>"]
    assert src.shape == (2, 4) and dec_in.shape == targets.shape == (2, 5)
    assert (dec_in[:, 0] == BOS_ID).all() and (dec_in[:, 1:] == src).all()
    assert list(targets[1]) == [*src[1, :3], EOS_ID, PAD_ID]
    s, d, t = take(src, dec_in, targets, np.array([1]))
    assert s.shape == (1, 3) and d.shape == t.shape == (1, 4), "all-padding columns should be cut off"


def test_shipped_checkpoints_load_in_both_frameworks_and_agree():
    from llmbook.tf.checkpoint import load_checkpoint as tf_load
    from llmbook.torch.checkpoint import load_checkpoint
    t = load_checkpoint(torch_vae.SentenceVAE, llmbook.checkpoint_path("vae_torch.npz"), device="cpu")
    f = tf_load(tf_vae.SentenceVAE, llmbook.checkpoint_path("vae_tf.npz"))
    assert llmbook.shipped_results("vae")["model"]["latent_dim"] == t.to_mu.out_features
    src, dec_in, _ = batch()
    eps = np.zeros((4, t.to_mu.out_features), np.float32)
    with torch.no_grad():
        a = t(torch.as_tensor(src), torch.as_tensor(dec_in), torch.as_tensor(eps))[0].numpy()
    assert np.abs(a - f(src, dec_in, eps)[0].numpy()).max() <= 1e-4, "vae_tf.npz is not vae_torch.npz converted"
