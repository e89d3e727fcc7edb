"""n-gram models: normalisation, hand-computed probabilities, perplexity and sampling."""
import math

import numpy as np
import pytest

from llmbook.metrics import mean_nll, perplexity
from llmbook.ngram import NGramLM
from llmbook.sampling import apply_temperature, sample_tokens

# a tiny corpus over V = 4 ids: 0 1 2 0 1 3 0 1 2
TINY = [0, 1, 2, 0, 1, 3, 0, 1, 2]


@pytest.mark.parametrize("smoothing", ["add-k", "kneser-ney"])
@pytest.mark.parametrize("order", [1, 2, 3])
def test_distributions_sum_to_one(smoothing, order):
    lm = NGramLM(order, 5, smoothing=smoothing, k=0.5).fit(TINY)
    for h in [(), (0,), (1,), (4,), (0, 1), (3, 3)]:
        p = lm.distribution(h)
        assert p.min() > 0
        assert p.sum() == pytest.approx(1.0, abs=1e-12)


def test_add_k_by_hand():
    lm = NGramLM(2, 4, smoothing="add-k", k=1.0).fit(TINY)
    # c(1, 2) = 2, c(1) as a history = 3, V = 4
    assert lm.prob((1,), 2) == pytest.approx((2 + 1) / (3 + 4))
    assert lm.prob((1,), 0) == pytest.approx(1 / 7)


def test_kneser_ney_by_hand():
    D = 0.75
    lm = NGramLM(2, 4, smoothing="kneser-ney", discount=D).fit(TINY)
    # continuation counts N1+(. w): w=0 after {2,3}: 2; w=1 after {0}: 1; w=2 after {1}: 1; w=3 after {1}: 1
    cont = {0: 2, 1: 1, 2: 1, 3: 1}
    total = sum(cont.values())
    p_uni = {w: max(c - D, 0) / total + D * 4 / total * (1 / 4) for w, c in cont.items()}
    assert sum(p_uni.values()) == pytest.approx(1.0)
    # bigram after history 1: c(1,2)=2, c(1,3)=1, c(1)=3, N1+(1 .)=2
    assert lm.prob((1,), 2) == pytest.approx((2 - D) / 3 + D * 2 / 3 * p_uni[2])
    assert lm.prob((1,), 0) == pytest.approx(D * 2 / 3 * p_uni[0])
    # history 3 was seen once, followed by 0: c(3,0)=1, c(3)=1, N1+(3 .)=1
    assert lm.prob((3,), 0) == pytest.approx((1 - D) / 1 + D * 1 / 1 * p_uni[0])
    assert lm.prob((3,), 2) == pytest.approx(D * p_uni[2])


def test_unseen_history_backs_off_to_continuation_counts():
    D = 0.75
    lm = NGramLM(3, 4, discount=D).fit(TINY)
    # The history (2, 1) never occurs, so all mass goes to the middle order, which uses continuation
    # counts N1+(. 1 w): (1, 2) is preceded by {0}, (1, 3) by {0}: 1 each, total 2, 2 types.
    p_uni = {0: (2 - D) / 5 + D * 4 / 5 / 4, 1: (1 - D) / 5 + D / 5, 2: (1 - D) / 5 + D / 5, 3: (1 - D) / 5 + D / 5}
    expected = {w: max((1 if w in (2, 3) else 0) - D, 0) / 2 + D * 2 / 2 * p_uni[w] for w in range(4)}
    for w in range(4):
        assert lm.prob((2, 1), w) == pytest.approx(expected[w])
    # ... which is not the standalone bigram model's raw-count estimate
    assert lm.prob((2, 1), 2) != pytest.approx(NGramLM(2, 4, discount=D).fit(TINY).prob((1,), 2))


def test_nll_matches_definition_and_perplexity():
    lm = NGramLM(2, 4).fit(TINY)
    test = [0, 1, 3, 0]
    expected = -np.mean([math.log(lm.prob((test[t - 1],), test[t])) for t in range(1, 4)])
    assert lm.nll(test) == pytest.approx(expected)
    assert perplexity(lm.nll(test)) == pytest.approx(math.exp(expected))
    with pytest.raises(ValueError, match="start"):
        NGramLM(3, 4).fit(TINY).nll(test, start=1)


def test_uniform_model_has_perplexity_v():
    logits = np.zeros((7, 11))
    assert perplexity(mean_nll(logits, np.arange(7))) == pytest.approx(11.0)


def test_bad_arguments_are_explained():
    with pytest.raises(ValueError, match="smoothing"):
        NGramLM(2, 4, smoothing="good-turing")
    with pytest.raises(ValueError, match="outside the vocabulary"):
        NGramLM(2, 3).fit([0, 1, 5])
    with pytest.raises(ValueError, match="temperature"):
        apply_temperature(np.zeros(3), 0.0)
    with pytest.raises(ValueError, match="finite"):
        perplexity(float("nan"))


def test_temperature_limits():
    logits = np.log(np.array([0.5, 0.3, 0.2]))
    assert apply_temperature(logits, 1.0) == pytest.approx([0.5, 0.3, 0.2])
    assert apply_temperature(logits, 1e-3)[0] == pytest.approx(1.0)
    assert apply_temperature(logits, 1e3) == pytest.approx([1 / 3] * 3, abs=1e-3)


def test_sampling_follows_the_distribution_and_is_seeded():
    p = np.array([0.7, 0.2, 0.1])
    draws = sample_tokens(lambda h: np.log(p), [0], length=4000, seed=3)
    freq = np.bincount(draws, minlength=3) / 4000
    assert np.abs(freq - p).max() < 0.03
    assert draws[:50] == sample_tokens(lambda h: np.log(p), [0], length=50, seed=3)
    lm = NGramLM(2, 4).fit(TINY)
    assert lm.sample([0], 5, seed=1) == lm.sample([0], 5, seed=1)
