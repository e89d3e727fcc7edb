"""Decoding rules (NumPy, PyTorch, TensorFlow): greedy, temperature, top-k, top-p, seeds."""
import numpy as np
import pytest
import tensorflow as tf
import torch

from llmbook import sampling as np_s
from llmbook.tf import sampling as tf_s
from llmbook.torch import sampling as torch_s

FRAMEWORKS = ["numpy", "torch", "tf"]


def rows(N=6, V=12, seed=0, scale=2.0):
    return (np.random.default_rng(seed).standard_normal((N, V)) * scale).astype(np.float32)


def call(framework, name, logits, *args, **kw):
    """Run sampling function `name` of one framework on NumPy logits; NumPy result."""
    if framework == "numpy":
        return np.asarray(getattr(np_s, name)(logits, *args, **kw))
    if framework == "torch":
        return getattr(torch_s, name)(torch.as_tensor(logits), *args, **kw).numpy()
    return getattr(tf_s, name)(tf.constant(logits), *args, **kw).numpy()


def draws(framework, logits, n, seed=0, **kw):
    """n draws per row with one seeded generator: (n, N)."""
    if framework == "numpy":
        g = np.random.default_rng(seed)
        return np.stack([np_s.sample(logits, rng=g, **kw) for _ in range(n)])
    if framework == "torch":
        g = torch.Generator().manual_seed(seed)
        return np.stack([torch_s.sample(torch.as_tensor(logits), generator=g, **kw).numpy() for _ in range(n)])
    g = tf.random.Generator.from_seed(seed)
    return np.stack([tf_s.sample(tf.constant(logits), generator=g, **kw).numpy() for _ in range(n)])


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_greedy_is_argmax_and_temperature_zero_is_greedy(framework):
    x = rows()
    np.testing.assert_array_equal(call(framework, "greedy", x), x.argmax(-1))
    np.testing.assert_array_equal(call(framework, "sample", x, temperature=0.0), x.argmax(-1))
    low = draws(framework, x, 20, temperature=1e-3)                        # temperature -> 0
    assert (low == x.argmax(-1)).all(), "a near-zero temperature must sample the argmax"


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_top_k_keeps_exactly_the_k_best(framework):
    x = rows()
    for k in (1, 3, 12):
        out = call(framework, "top_k_filter", x, k)
        kept = np.isfinite(out)
        assert (kept.sum(-1) == k).all()
        best = np.argsort(-x, axis=-1)[:, :k]
        assert np.take_along_axis(kept, best, -1).all(), "top-k dropped one of the k best"
        np.testing.assert_array_equal(out[kept], x[kept])                  # kept logits unchanged


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_top_k_never_samples_outside_the_k_best(framework):
    x = rows(scale=0.5)                                                    # flat: all ids likely
    d = draws(framework, x, 300, top_k=3)
    best = np.argsort(-x, axis=-1)[:, :3]
    assert all(set(d[:, i]) <= set(best[i]) for i in range(x.shape[0]))
    assert all(len(set(d[:, i])) == 3 for i in range(x.shape[0])), "each of the 3 best should appear"


def smallest_nucleus(x, p):
    """Reference: the sizes of the smallest most-probable sets with mass >= p (by brute force)."""
    probs = np.exp(x - x.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    return [next(n for n in range(1, len(r) + 1) if np.sort(r)[::-1][:n].sum() >= p - 1e-7) for r in probs], probs


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("p", [0.05, 0.5, 0.9, 1.0])
def test_top_p_keeps_the_smallest_set_with_mass_at_least_p(framework, p):
    x = rows()
    sizes, probs = smallest_nucleus(x, p)
    kept = np.isfinite(call(framework, "top_p_filter", x, p))
    for i in range(x.shape[0]):
        assert kept[i].sum() == sizes[i], f"row {i}: kept {kept[i].sum()} ids, the smallest nucleus has {sizes[i]}"
        assert probs[i][kept[i]].sum() >= p - 1e-6
        assert probs[i][kept[i]].min() >= probs[i][~kept[i]].max(initial=0), "kept a less probable id"


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_sampling_follows_the_filtered_distribution(framework):
    x = rows(N=1, V=5, scale=1.0)
    d = draws(framework, np.repeat(x, 400, 0), 10, temperature=2.0).ravel()  # 4000 draws
    z = x[0] / 2.0
    p = np.exp(z - z.max())
    p /= p.sum()
    freq = np.bincount(d, minlength=5) / d.size
    assert np.abs(freq - p).max() < 0.03, (freq, p)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_seeds_reproduce(framework):
    x = rows(scale=0.5)
    a, b, c = draws(framework, x, 10, seed=3), draws(framework, x, 10, seed=3), draws(framework, x, 10, seed=4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_clear_errors(framework):
    x = rows()
    with pytest.raises(ValueError, match="top_k"):
        call(framework, "top_k_filter", x, 0)
    with pytest.raises(ValueError, match="top_p"):
        call(framework, "top_p_filter", x, 1.5)
    with pytest.raises(ValueError, match="temperature"):
        call(framework, "sample", x, temperature=-1.0)


def test_table_html_escapes_aligns_and_checks_widths():
    from llmbook.widgets import table_html
    out = table_html(["model", "val"], [("GRU <1>", "1.418"), ("GPT", "1,234")], caption="a & b")
    assert "GRU &lt;1&gt;" in out and "a &amp; b" in out                 # escaped
    assert out.count("<tr>") == 3                                          # header + 2 rows
    assert "text-align:right;padding:2px 8px'>1.418" in out              # numbers right-aligned
    numbers = table_html(["x"] * 7, [("+0.050", "-17.8 %", "99.8%", "3e-03", "1,542,542", "GRU", "k = 3")])
    assert numbers.count("text-align:right") == 5 and numbers.count("text-align:left") == 2 + 7
    with pytest.raises(ValueError, match="2 cells"):
        table_html(["model", "val"], [("GRU",)])
