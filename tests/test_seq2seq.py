"""The encoder–decoder twins: shapes, padding, causality, PyTorch == TensorFlow, checkpoints, seq2seq batches."""
from functools import partial

import numpy as np
import pytest
import torch

import llmbook
from llmbook.data.seq2seq import (BOS_ID, EOS_ID, PAD_ID, CharTokenizer, Seq2SeqBatches, SubwordTokenizer,
                                  load_tokenizers, save_tokenizers)
from llmbook.parity import tf_to_torch, torch_to_tf
from llmbook.tf import seq2seq as tf_seq2seq
from llmbook.tf.checkpoint import load_checkpoint as tf_load, save_checkpoint as tf_save
from llmbook.torch import seq2seq as torch_seq2seq
from llmbook.torch.checkpoint import load_checkpoint as torch_load, save_checkpoint as torch_save

from seq2seq_helpers import padded_batch, torch_logits

SIZES = dict(src_vocab_size=23, tgt_vocab_size=17, embed_dim=6, hidden_dim=10)

batch = partial(padded_batch, SIZES)          # (src (B, S), tgt (B, T)) ids, rows 1 and 3 padded


@pytest.fixture(scope="module")
def twins():
    llmbook.seed(0)
    t, f = torch_seq2seq.Seq2Seq(**SIZES).eval(), tf_seq2seq.Seq2Seq(**SIZES)
    torch_to_tf(t, f)
    return t, f


def test_shapes_both_frameworks(twins):
    t, f = twins
    src, tgt = batch()
    assert torch_logits(t, src, tgt).shape == (5, 6, 17)
    assert tuple(f(src, tgt).shape) == (5, 6, 17)
    states, context = t.encoder(torch.as_tensor(src))
    assert states.shape == (5, 8, 10) and context.shape == (5, 10)
    states, context = f.encoder(src)
    assert tuple(states.shape) == (5, 8, 10) and tuple(context.shape) == (5, 10)
    logits, state = t.step(torch.full((5,), BOS_ID), context=torch.zeros(5, 10), state=torch.zeros(5, 10))
    assert logits.shape == (5, 17) and state.shape == (5, 10)
    logits, state = f.step(np.full(5, BOS_ID), np.zeros((5, 10), "float32"), np.zeros((5, 10), "float32"))
    assert tuple(logits.shape) == (5, 17) and tuple(state.shape) == (5, 10)


def test_torch_equals_tf_with_copied_weights(twins):
    t, f = twins
    src, tgt = batch(B=16, seed=1)
    gap = np.abs(torch_logits(t, src, tgt) - f(src, tgt).numpy()).max()
    assert gap <= 1e-5, f"Seq2Seq: PyTorch and TF logits differ by {gap:.2e} with the same weights (GRU gate order?)"
    back = torch_seq2seq.Seq2Seq(**SIZES)
    tf_to_torch(f, back)
    assert np.abs(torch_logits(back, src, tgt) - f(src, tgt).numpy()).max() <= 1e-5


def test_context_ignores_padding(twins):
    """c is read at each row's last real token: padding after it changes nothing."""
    t, f = twins
    src, tgt = batch()
    short = src[3:4, :2]                                             # row 3 without its padding
    full = torch_logits(t, src, tgt)[3]
    assert np.abs(torch_logits(t, short, tgt[3:4])[0] - full).max() <= 1e-6
    assert np.abs(f(short, tgt[3:4]).numpy()[0] - f(src, tgt).numpy()[3]).max() <= 1e-6


@pytest.mark.parametrize("framework", ["torch", "tf"])
def test_bad_padding_is_rejected(twins, framework):
    model = twins[0] if framework == "torch" else twins[1]
    enc = (lambda s: model.encoder(torch.as_tensor(s))) if framework == "torch" else model.encoder
    with pytest.raises(ValueError, match="right-padded"):
        enc(np.array([[0, 0, 5, 6]]))
    with pytest.raises(ValueError, match="all padding"):
        enc(np.array([[5, 6], [0, 0]]))


def test_decoder_is_causal(twins):
    """The logits at position t depend on decoder inputs up to t only (what teacher forcing relies on)."""
    t, f = twins
    src, tgt = batch()
    changed = tgt.copy()
    changed[:, 3:] = 4
    a, b = torch_logits(t, src, tgt), torch_logits(t, src, changed)
    assert np.abs(a[:, :3] - b[:, :3]).max() == 0 and np.abs(a[:, 3:] - b[:, 3:]).max() > 0
    a, b = f(src, tgt).numpy(), f(src, changed).numpy()
    assert np.abs(a[:, :3] - b[:, :3]).max() == 0


def test_checkpoints_round_trip(tmp_path, twins):
    t, f = twins
    src, tgt = batch()
    torch_save(t, tmp_path / "s_torch.npz", **SIZES)
    tf_save(f, tmp_path / "s_tf.npz", **SIZES)
    t2 = torch_load(torch_seq2seq.Seq2Seq, tmp_path / "s_torch.npz")
    f2 = tf_load(tf_seq2seq.Seq2Seq, tmp_path / "s_tf.npz")
    ref = torch_logits(t, src, tgt)
    assert np.abs(torch_logits(t2, src, tgt) - ref).max() < 1e-2          # float16 weights
    assert np.abs(f2(src, tgt).numpy() - ref).max() < 1e-2


def test_one_training_step_lowers_the_masked_loss():
    from llmbook.torch.train import evaluate, fit
    llmbook.seed(0)
    m = torch_seq2seq.Seq2Seq(**SIZES)
    rng = np.random.default_rng(0)
    xs = [rng.integers(4, 23, rng.integers(2, 7)) for _ in range(64)]
    ys = [x[::-1] % 17 for x in xs]
    data = Seq2SeqBatches(xs, ys, 16, shuffle=False)
    before = evaluate(m, data, ignore_index=PAD_ID, device="cpu")
    fit(m, data, epochs=3, lr=1e-2, ignore_index=PAD_ID, progress=False, device="cpu")
    assert evaluate(m, data, ignore_index=PAD_ID, device="cpu") < before - 0.3


def test_seq2seq_batches_shift_targets_right():
    xs, ys = [np.array([5, 6, 7]), np.array([8])], [np.array([10, 11]), np.array([12, 13, 14])]
    (src, dec_in), dec_out = next(iter(Seq2SeqBatches(xs, ys, 2, shuffle=False)))
    assert src.tolist() == [[5, 6, 7], [8, PAD_ID, PAD_ID]]
    assert dec_in.tolist() == [[BOS_ID, 10, 11, PAD_ID], [BOS_ID, 12, 13, 14]]
    assert dec_out.tolist() == [[10, 11, EOS_ID, PAD_ID], [12, 13, 14, EOS_ID]]
    (_, dec_in), dec_out = next(iter(Seq2SeqBatches(xs, ys, 2, shuffle=False, shift=False)))
    assert (dec_in == dec_out).all()               # seed 002's bug: the input is the answer


def test_seq2seq_batches_cover_every_pair_once_per_epoch():
    rng = np.random.default_rng(0)
    xs = [np.full(rng.integers(1, 9), i + 4) for i in range(203)]
    ys = [np.array([i + 4]) for i in range(203)]
    data = Seq2SeqBatches(xs, ys, 16, seed=3)
    seen = sorted(int(t[0]) for (_, _), out in data for t in out)
    assert seen == list(range(4, 207)) and len(data) == 13
    first = [out[:, 0].tolist() for _, out in Seq2SeqBatches(xs, ys, 16, seed=3)]
    assert first == [out[:, 0].tolist() for _, out in Seq2SeqBatches(xs, ys, 16, seed=3)]   # seeded


def test_char_tokenizer_round_trip():
    tok = CharTokenizer.build(["10. März 2037", "2037年3月10日"])
    assert tok.vocab.itos[:4] == ["<pad>", "<unk>", "<bos>", "<eos>"]
    assert tok.decode(tok.encode("März 2037")) == "März 2037"
    assert tok.decode([BOS_ID, *tok.encode("37"), EOS_ID, PAD_ID]) == "37"


def test_subword_tokenizer_specials_and_round_trip(tmp_path):
    sentences = ["Der Hund schläft.", "Die Katze schläft nicht.", "Der Hund bellt laut."] * 20
    tok = SubwordTokenizer.train(sentences, vocab_size=40)
    assert len(tok) == 40 and tok.pieces([PAD_ID, BOS_ID, EOS_ID]) == ["<pad>", "<s>", "</s>"]
    ids = tok.encode("Die Katze bellt.")
    assert ids.min() > EOS_ID and tok.decode([BOS_ID, *ids, EOS_ID]) == "Die Katze bellt."
    again = SubwordTokenizer.train(sentences, vocab_size=40)
    assert again.checksum == tok.checksum                       # deterministic training
    save_tokenizers(tmp_path / "tok.npz", de=tok)
    assert load_tokenizers(tmp_path / "tok.npz")["de"].checksum == tok.checksum
