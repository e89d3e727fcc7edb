"""Greedy decoding and beam search: exact on tiny problems, k = 1 is greedy, PyTorch and TensorFlow agree."""
import numpy as np
import pytest
import torch

import llmbook
from llmbook.beam import exhaustive_search, normalised_score, search
from llmbook.parity import torch_to_tf
from llmbook.tf import decoding as tf_decoding
from llmbook.tf.seq2seq import Seq2Seq as TFSeq2Seq
from llmbook.torch import decoding as torch_decoding
from llmbook.torch.seq2seq import Seq2Seq

BOS, EOS = 2, 3
TINY = dict(src_vocab_size=9, tgt_vocab_size=6, embed_dim=5, hidden_dim=7)   # 4 specials + 2 words
DECODERS = {"torch": torch_decoding, "tf": tf_decoding}


def twin_models(sizes=TINY, seed=0, sharpen=3.0, eos_bias=1.0):
    """A PyTorch Seq2Seq with peaked, <eos>-friendly outputs and its TF twin (same weights)."""
    llmbook.seed(seed)
    t = Seq2Seq(**sizes).eval()
    with torch.no_grad():
        t.decoder.out.weight.mul_(sharpen)
        t.decoder.out.bias[EOS] += eos_bias
    f = TFSeq2Seq(**sizes)
    torch_to_tf(t, f)
    return {"torch": t, "tf": f}


def sources(n=6, vocab=9, length=5, seed=0):
    src = np.random.default_rng(seed).integers(4, vocab, (n, length))
    if n > 1:
        src[1, 3:] = 0        # a shorter, right-padded source
    return src


def next_log_probs(model, src_row):
    """log P(next | prefix, x) of a PyTorch Seq2Seq, by a teacher-forced pass over <bos> + prefix."""
    with torch.no_grad():
        c = model.encode(torch.as_tensor(src_row[None]))
    def log_prob(prefix):
        with torch.no_grad():
            logits, _ = model.decoder(torch.as_tensor([[BOS, *prefix]]), c)
        return torch.log_softmax(logits[0, -1].double(), dim=-1).numpy()
    return log_prob


@pytest.fixture(scope="module")
def models():
    return twin_models(seed=5, sharpen=8.0, eos_bias=1.0)


@pytest.mark.parametrize("framework", ["torch", "tf"])
@pytest.mark.parametrize("alpha", [0.0, 0.7, 1.0])
def test_wide_beam_equals_exhaustive_search(models, framework, alpha):
    max_len, V = 4, TINY["tgt_vocab_size"]
    src = sources()
    k = (V - 1) ** max_len                   # every unfinished prefix fits in the beam: nothing is pruned
    result = DECODERS[framework].beam_search(models[framework], src, bos_id=BOS, eos_id=EOS, k=k,
                                             max_len=max_len, alpha=alpha)
    for i in range(len(src)):
        best = exhaustive_search(next_log_probs(models["torch"], src[i]), V, eos_id=EOS, max_len=max_len,
                                 alpha=alpha)
        got = result.hypotheses[i][0]
        assert got.tokens == best.tokens, (f"source {i}, alpha={alpha}: beam found {got.tokens} (score "
                                           f"{got.score:.5f}) but the best sequence is {best.tokens} "
                                           f"({best.score:.5f}): pruned or stopped too early?")
        assert got.score == pytest.approx(best.score, abs=1e-5)
        assert got.logp == pytest.approx(best.logp, abs=1e-5)


@pytest.mark.parametrize("alpha", [0.0, 0.7, 1.0])
def test_exhaustive_case_is_not_trivial(models, alpha):
    """The best outputs of the tiny model differ in length; some end in <eos>, some are cut at max_len."""
    best = [exhaustive_search(next_log_probs(models["torch"], s), 6, eos_id=EOS, max_len=4, alpha=alpha)
            for s in sources()]
    assert len({len(h.tokens) for h in best}) >= 2 and {h.ended for h in best} == {True, False}, \
        [(h.tokens, h.ended) for h in best]


@pytest.mark.parametrize("framework", ["torch", "tf"])
@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_beam_of_width_one_is_greedy(models, framework, alpha):
    dec = DECODERS[framework]
    src = sources(n=8, seed=3)
    greedy = dec.greedy_decode(models[framework], src, bos_id=BOS, eos_id=EOS, max_len=6)
    beam = dec.beam_search(models[framework], src, bos_id=BOS, eos_id=EOS, k=1, max_len=6, alpha=alpha)
    assert beam.sequences == greedy


@pytest.mark.parametrize("k", [1, 2, 4])
def test_torch_and_tf_decode_identically(k):
    sizes = dict(src_vocab_size=30, tgt_vocab_size=25, embed_dim=8, hidden_dim=16)
    m = twin_models(sizes, seed=1, sharpen=4.0, eos_bias=0.5)
    src = sources(n=10, vocab=30, length=7, seed=2)
    kw = dict(bos_id=BOS, eos_id=EOS, max_len=12)
    g = {fw: DECODERS[fw].greedy_decode(m[fw], src, **kw) for fw in DECODERS}
    assert g["torch"] == g["tf"]
    b = {fw: DECODERS[fw].beam_search(m[fw], src, k=k, alpha=0.6, **kw) for fw in DECODERS}
    assert b["torch"].sequences == b["tf"].sequences
    np.testing.assert_allclose(b["torch"].scores, b["tf"].scores, atol=1e-5)


@pytest.mark.parametrize("framework", ["torch", "tf"])
def test_max_len_cuts_and_eos_ends(framework):
    dec = DECODERS[framework]
    never = twin_models(eos_bias=-50.0)[framework]        # <eos> never wins: every output is cut at max_len
    src = sources(n=3)
    assert all(len(s) == 5 for s in dec.greedy_decode(never, src, bos_id=BOS, eos_id=EOS, max_len=5))
    r = dec.beam_search(never, src, bos_id=BOS, eos_id=EOS, k=3, max_len=5)
    assert all(len(s) == 5 and not h[0].ended for s, h in zip(r.sequences, r.hypotheses))
    always = twin_models(eos_bias=50.0)[framework]        # <eos> first: empty outputs, ended
    assert dec.greedy_decode(always, src, bos_id=BOS, eos_id=EOS, max_len=5) == [[], [], []]
    r = dec.beam_search(always, src, bos_id=BOS, eos_id=EOS, k=3, max_len=5)
    assert r.sequences == [[], [], []] and all(h[0].ended and h[0].tokens == [EOS] for h in r.hypotheses)


def _markov_step(table):
    """A framework-free decoder: the next-token log-probabilities depend only on the previous token."""
    def step(tokens, state):
        return table[tokens], state
    return step, (lambda state, rows: state)


def test_search_length_normalisation_changes_the_winner():
    # from <bos>=0: <eos>=1 at once (p=0.4), or token 2 (p=0.6) then <eos> (p=0.6)
    p = np.full((3, 3), 1e-9)
    p[0, 1], p[0, 2] = 0.4, 0.6
    p[2, 1], p[2, 2] = 0.6, 0.4
    step, select = _markov_step(np.log(p / p.sum(1, keepdims=True)))
    short = search(step, select, None, 1, bos_id=0, eos_id=1, k=2, max_len=5, alpha=0.0)
    long = search(step, select, None, 1, bos_id=0, eos_id=1, k=2, max_len=5, alpha=1.0)
    assert short.sequences == [[]]                   # log 0.4 = -0.92  >  log 0.36 = -1.02
    assert long.sequences == [[2]]                   # -0.92 / 1  <  -1.02 / 2 = -0.51
    assert long.scores[0] == pytest.approx(normalised_score(np.log(0.36), 2, 1.0), abs=1e-6)


def test_search_rejects_bad_arguments():
    step, select = _markov_step(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="k and max_len"):
        search(step, select, None, 1, bos_id=0, eos_id=1, k=0)


def test_trace_records_beams_per_step(models):
    r = torch_decoding.beam_search(models["torch"], sources(n=1), bos_id=BOS, eos_id=EOS, k=2, max_len=4,
                                   trace=True)
    steps = r.trace[0]
    assert steps and steps[0]["step"] == 1 and len(steps[0]["beams"]) <= 2
    for s in steps:
        assert all(len(tokens) == s["step"] for tokens, _ in s["beams"])
        scores = [lp for _, lp in s["beams"]]
        assert scores == sorted(scores, reverse=True)


def test_map_structure_keeps_nesting():
    from collections import namedtuple

    from llmbook.beam import map_structure
    Pair = namedtuple("Pair", "keys values")
    tree = {"layers": [Pair(np.arange(2), np.arange(3))], "mask": None, "c": (np.ones(1),)}
    out = map_structure(lambda x: x * 2, tree)
    assert isinstance(out["layers"][0], Pair) and out["mask"] is None and isinstance(out["c"], tuple)
    np.testing.assert_array_equal(out["layers"][0].values, [0, 2, 4])
    np.testing.assert_array_equal(out["c"][0], [2.0])
