"""Count-based n-gram language models: add-k and interpolated Kneser–Ney smoothing (NumPy/Python)."""
from __future__ import annotations

import math
from collections import Counter, defaultdict

import numpy as np

from llmbook.sampling import sample_tokens

# The add-k constants that chapter 1 (and benchmarks/ch1_quality.py) try for each order n, keeping
# the one with the lowest perplexity on the validation plays: steps of about 3x from 0.1 to 1e-4.
ADD_K_GRID = (0.1, 0.03, 0.01, 0.003, 0.001, 0.0003, 0.0001)


class NGramLM:
    """An order-n Markov model P(w_t | w_{t-n+1..t-1}) estimated from counts.

    smoothing="add-k":  P = (c(h, w) + k) / (c(h) + k V)
    smoothing="kneser-ney" (interpolated, Chen & Goodman 1998), with discount D:
        P(w | h) = max(c(h, w) - D, 0) / c(h) + D N1+(h •) / c(h) * P(w | h[1:])
    where lower orders use continuation counts N1+(• h' w) instead of raw counts, and the
    lowest order interpolates with the uniform distribution 1/V so no token has probability 0.
    """

    def __init__(self, order: int, vocab_size: int, smoothing: str = "kneser-ney", k: float = 1.0,
                 discount: float = 0.75):
        if order < 1:
            raise ValueError(f"order must be >= 1, got {order}")
        if smoothing not in ("add-k", "kneser-ney"):
            raise ValueError(f"smoothing must be 'add-k' or 'kneser-ney', got {smoothing!r}")
        if smoothing == "add-k" and k <= 0:
            raise ValueError(f"add-k smoothing needs k > 0, got {k}")
        if not 0 < discount < 1:
            raise ValueError(f"the Kneser–Ney discount must be in (0, 1), got {discount}")
        self.order, self.V, self.smoothing, self.k, self.D = order, vocab_size, smoothing, k, discount

    def fit(self, ids) -> "NGramLM":
        """Count every m-gram (m <= order) of the id stream."""
        ids = [int(i) for i in ids]
        if max(ids) >= self.V:
            raise ValueError(f"token id {max(ids)} is outside the vocabulary of size {self.V}")
        n = self.order
        # counts[m][(h, w)] for m-grams, h a tuple of m-1 ids
        self.counts = [Counter() for _ in range(n + 1)]
        for m in range(1, n + 1):
            self.counts[m] = Counter(zip(*(ids[i:len(ids) - m + 1 + i] for i in range(m))))
        self._tables()
        return self

    def _tables(self) -> None:
        n = self.order
        # Totals and follower types per history for the highest order (raw counts).
        self.hist_total = [defaultdict(int) for _ in range(n + 1)]
        self.hist_types = [defaultdict(int) for _ in range(n + 1)]
        # Continuation counts: cont[m][gram] = number of distinct words preceding the m-gram.
        self.cont = [Counter() for _ in range(n + 1)]
        for m in range(2, n + 1):
            for gram in self.counts[m]:
                self.cont[m - 1][gram[1:]] += 1
        self.n_tokens = sum(self.counts[1].values())     # c(), the history count of a unigram
        for m in range(1, n + 1):
            table = self.counts[m] if m == n else self.cont[m]
            for gram, c in table.items():
                self.hist_total[m][gram[:-1]] += c
                self.hist_types[m][gram[:-1]] += 1

    def prob(self, history: tuple[int, ...], word: int) -> float:
        """P(word | the last order-1 ids of history)."""
        history = tuple(history)[-(self.order - 1):] if self.order > 1 else ()
        if self.smoothing == "add-k":
            m = len(history) + 1
            c_hw = self.counts[m].get((*history, word), 0)
            c_h = self.counts[m - 1].get(history, 0) if m > 1 else self.n_tokens
            return (c_hw + self.k) / (c_h + self.k * self.V)
        return self._kn(history, word)

    def _kn(self, history: tuple[int, ...], word: int) -> float:
        m = len(history) + 1
        if m == 1:
            lower = 1.0 / self.V
        else:
            lower = self._kn(history[1:], word)
        table = self.counts[m] if m == self.order else self.cont[m]   # raw counts only at the top order
        total = self.hist_total[m].get(history, 0)
        if total == 0:                       # unseen history: all mass to the lower order
            return lower
        c = table.get((*history, word), 0)
        return max(c - self.D, 0.0) / total + self.D * self.hist_types[m][history] / total * lower

    def nll(self, ids, start: int | None = None) -> float:
        """Mean negative log-likelihood (nats/token) of ids[start:], each given its preceding ids."""
        ids = [int(i) for i in ids]
        start = self.order - 1 if start is None else start
        if start < self.order - 1:
            raise ValueError(f"start={start} < order-1={self.order - 1}: early tokens would lack a full history")
        total = 0.0
        for t in range(start, len(ids)):
            total -= math.log(self.prob(tuple(ids[t - self.order + 1:t]) if self.order > 1 else (), ids[t]))
        return total / (len(ids) - start)

    def distribution(self, history: tuple[int, ...]) -> np.ndarray:
        """P(· | history) over the whole vocabulary, shape (V,)."""
        return np.array([self.prob(history, w) for w in range(self.V)])

    def sample(self, history, length: int, temperature: float = 1.0, seed: int = 0) -> list[int]:
        """Draw `length` ids after `history`, sampling from P^(1/temperature) renormalised."""
        context = lambda h: tuple(h[-(self.order - 1):]) if self.order > 1 else ()  # noqa: E731
        return sample_tokens(lambda h: np.log(self.distribution(context(h))), history, length, temperature, seed)
