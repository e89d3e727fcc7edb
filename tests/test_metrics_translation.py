"""Translation metrics of llmbook.metrics against sacreBLEU itself."""
import numpy as np
import pytest
import sacrebleu

from llmbook.metrics import bleu_by_length, corpus_bleu, corpus_chrf, pick_samples, repeated_4gram_rate

REFS = ["el perro come pan", "la casa es grande y blanca", "yo tengo un libro nuevo aqui",
        "ella canta", "nosotros vivimos en la ciudad de los reyes", "el cielo es azul"] * 5
HYPS = ["el perro come", "la casa grande y blanca", "tengo un libro aqui", "ella canta",
        "vivimos en la ciudad", "el mar es azul"] * 5
SRCS = ["the dog eats bread", "the house is big and white", "i have a new book here", "she sings",
        "we live in the city of the kings", "the sky is blue"] * 5


def test_corpus_chrf_is_sacrebleus():
    score = corpus_chrf(HYPS, REFS)
    assert score.score == sacrebleu.corpus_chrf(HYPS, [REFS]).score
    assert score.signature.startswith("nrefs:1|case:mixed") and "nc:6|nw:0" in score.signature
    with pytest.raises(ValueError, match="corpus_chrf needs one reference per hypothesis"):
        corpus_chrf(HYPS, REFS[:-1])
    with pytest.raises(ValueError, match="corpus_bleu needs one reference per hypothesis"):
        corpus_bleu(HYPS, [])
    assert corpus_bleu(HYPS, REFS).score == sacrebleu.corpus_bleu(HYPS, [REFS]).score


def test_bleu_by_length_scores_each_bucket_alone_with_a_repeatable_interval():
    buckets = ((1, 4), (5, 9))
    out = bleu_by_length(HYPS, REFS, SRCS, buckets, n_bootstrap=200)
    lengths = [len(s.split()) for s in SRCS]
    for row, (lo, hi) in zip(out, buckets):
        idx = [i for i, n in enumerate(lengths) if lo <= n <= hi]
        assert row["n"] == len(idx) and row["bucket"] == f"{lo}-{hi}"
        assert row["bleu"] == pytest.approx(corpus_bleu([HYPS[i] for i in idx], [REFS[i] for i in idx]).score)
        assert 0 < row["ci95"] < 50
    assert bleu_by_length(HYPS, REFS, SRCS, buckets, n_bootstrap=200) == out
    with pytest.raises(ValueError, match="no source of 20-30 words"):
        bleu_by_length(HYPS, REFS, SRCS, ((20, 30),))


def test_repeated_4gram_rate():
    assert repeated_4gram_rate(["a b c d a b c d"]) == pytest.approx(1 / 5)
    assert repeated_4gram_rate(["a b c d e", "a b c d"]) == 0.0     # repeats count within one text only
    assert repeated_4gram_rate(["a b"]) == 0.0


def test_pick_samples_orders_by_sentence_chrf():
    refs = [f"frase numero {i} con palabras distintas" for i in range(12)]
    hyps = list(refs)
    hyps[7], hyps[2] = "nada que ver", "zzz"                            # the two worst
    hyps[5] = "frase numero 5 con palabras"                             # nearly right
    picked = pick_samples(hyps, refs, k=2)
    assert set(picked["bad"]) == {2, 7}
    assert 5 not in picked["good"] and set(picked["good"]) <= set(range(12)) - {2, 5, 7}
    chrf = sacrebleu.metrics.CHRF()
    score = {i: chrf.sentence_score(hyps[i], [refs[i]]).score for i in range(12)}
    assert min(score[i] for i in picked["good"]) >= max(score[i] for i in picked["typical"]) >= max(
        score[i] for i in picked["bad"])
    with pytest.raises(ValueError, match="at least 9"):
        pick_samples(hyps[:8], refs[:8])


def test_shipped_results_name_what_is_there(tmp_path, monkeypatch):
    import llmbook
    with pytest.raises(FileNotFoundError, match="no benchmark summary 'nothing'.*ladder.py report --write"):
        llmbook.shipped_results("nothing")
