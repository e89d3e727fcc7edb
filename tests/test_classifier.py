"""Appendix, encoder-only: genre data split by whole plays, the EncoderClassifier twins, the bag-of-words baseline."""
import numpy as np
import pytest
import torch

import llmbook
from llmbook.bow import MultinomialNB, bag_of_words, bootstrap_accuracy, confusion_matrix
from llmbook.data.genre import (FOLIO_GENRES, GENRES, NOT_IN_FOLIO, genre_split, passages, speeches,
                                title)
from llmbook.data.shakespeare import play_files
from llmbook.parity import tf_to_torch, torch_to_tf
from llmbook.tf import classifier as tf_cls
from llmbook.torch import classifier as torch_cls

SIZES = dict(vocab_size=29, num_classes=3, d_model=16, num_heads=4, num_layers=2, d_ff=24, dropout=0.1,
             max_len=20, pad_id=0)
TOL = 1e-5      # as the other PyTorch == TensorFlow tests


def padded_ids(B=4, S=12, seed=0):
    """Ids (B, S) of different lengths, right-padded with 0."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, SIZES["vocab_size"], size=(B, S))                  # (B, S)
    lengths = np.linspace(3, S, B).astype(int)
    ids[np.arange(S)[None, :] >= lengths[:, None]] = 0
    return ids


def twins():
    llmbook.seed(0)
    t = torch_cls.EncoderClassifier(**SIZES).eval()
    f = tf_cls.EncoderClassifier(**SIZES)
    torch_to_tf(t, f)
    return t, f


def torch_logits(model, ids):
    with torch.no_grad():
        return model(torch.as_tensor(ids)).numpy()


# ---- data ---------------------------------------------------------------------------------------------

def test_folio_table_covers_the_corpus():
    files = set(play_files())
    assert len(FOLIO_GENRES) == 36, "the First Folio has 36 plays"
    assert [sum(g == x for g in FOLIO_GENRES.values()) for x in GENRES] == [14, 10, 12]
    assert set(FOLIO_GENRES) <= files, f"Folio plays not in the corpus: {set(FOLIO_GENRES) - files}"
    assert files - set(FOLIO_GENRES) == set(NOT_IN_FOLIO), "every corpus play is either in the Folio or named"


def test_split_is_by_whole_plays_and_stratified():
    split = genre_split()
    sets = [set(v) for v in split.values()]
    assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2]), "a play is in two splits"
    assert set().union(*sets) == set(FOLIO_GENRES)
    for name in ("validation", "test"):
        assert sorted(FOLIO_GENRES[p] for p in split[name]) == sorted(GENRES * 2)
    assert genre_split() == split, "the split must not change between calls (fixed seed)"


def test_passages_respect_the_length_bounds():
    text = play_files()["macbeth"].read_text(encoding="utf-8")
    sp = speeches(text)
    assert sp[0] == "When shall we three meet again\nIn thunder, lightning, or in rain?", "speaker names left in?"
    ps = passages(sp, 10, 20)
    assert all(10 <= len(p) <= 20 for p in ps)
    with pytest.raises(ValueError, match="min_tokens"):
        passages(sp, 30, 20)
    assert title("henry-iv-part-1") == "Henry IV Part 1"
    assert title("a-midsummer-night-s-dream") == "A Midsummer Night's Dream"


# ---- the encoder classifier -----------------------------------------------------------------------------

def test_torch_equals_tf_with_copied_weights():
    t, f = twins()
    ids = padded_ids()
    a, b = torch_logits(t, ids), f(ids).numpy()
    assert a.shape == b.shape == (4, 3)
    gap = np.abs(a - b).max()
    assert gap <= TOL, f"EncoderClassifier: PyTorch and TF logits differ by {gap:.2e} with the same weights"
    back = torch_cls.EncoderClassifier(**SIZES).eval()
    tf_to_torch(f, back)
    assert np.abs(torch_logits(back, ids) - a).max() == 0.0


@pytest.mark.parametrize("framework", ["torch", "tf"])
def test_pooling_ignores_padding(framework):
    """More padding after a passage, or other ids hidden under the mask, leave its logits unchanged."""
    t, f = twins()
    logits = (lambda x: torch_logits(t, x)) if framework == "torch" else (lambda x: f(x).numpy())
    ids = padded_ids(S=12)
    longer = np.concatenate([ids, np.zeros((4, 8), dtype=ids.dtype)], axis=1)   # (B, S + 8)
    np.testing.assert_allclose(logits(longer), logits(ids), atol=TOL)
    alone = np.stack([logits(ids[i:i + 1, :max(1, int((ids[i] != 0).sum()))])[0] for i in range(4)])
    np.testing.assert_allclose(alone, logits(ids), atol=TOL,
                               err_msg="a passage's logits depend on the other passages' lengths: "
                                       "padding reaches the pooling or the attention")


def test_masked_mean_counts_real_tokens_only():
    x = np.arange(2 * 3 * 2, dtype=np.float32).reshape(2, 3, 2)             # (B, S, D)
    keep = np.array([[True, True, False], [True, False, False]])
    want = np.stack([x[0, :2].mean(0), x[1, :1].mean(0)])
    np.testing.assert_allclose(torch_cls.masked_mean(torch.as_tensor(x), torch.as_tensor(keep)).numpy(), want)
    np.testing.assert_allclose(tf_cls.masked_mean(x, keep).numpy(), want)


def test_bad_input_shape_is_named():
    t, f = twins()
    with pytest.raises(ValueError, match="batch, length"):
        t(torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="batch, length"):
        f(np.zeros(5, dtype=np.int64))


# ---- the bag-of-words baseline and the scores -----------------------------------------------------------

def test_naive_bayes_on_a_toy_corpus():
    docs = [np.array([1, 1, 2]), np.array([1, 2]), np.array([3, 3]), np.array([3, 4])]
    counts = bag_of_words(docs, 5)
    assert counts[0].tolist() == [0, 2, 1, 0, 0]
    nb = MultinomialNB(1.0).fit(counts, np.array([0, 0, 1, 1]), 2)
    np.testing.assert_allclose(np.exp(nb.log_likelihood).sum(1), 1.0)
    # class 0 saw 5 tokens: P(1 | 0) = (3 + 1) / (5 + 5)
    assert np.isclose(np.exp(nb.log_likelihood[0, 1]), 0.4)
    assert nb.predict(bag_of_words([np.array([1]), np.array([4])], 5)).tolist() == [0, 1]
    with pytest.raises(ValueError, match="alpha"):
        MultinomialNB(0.0)


def test_confusion_matrix_and_bootstrap():
    cm = confusion_matrix(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 0]), 3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 0]], "rows are true classes, columns predictions"
    correct = np.array([1] * 70 + [0] * 30)
    lo, hi = bootstrap_accuracy(correct)
    assert lo < 0.7 < hi and hi - lo < 0.25
    plays = np.array(["a"] * 50 + ["b"] * 50)
    lo2, hi2 = bootstrap_accuracy(correct, groups=plays)
    assert (lo2, hi2) == (0.4, 1.0), "two plays: the play bootstrap sees only a, b or both"
