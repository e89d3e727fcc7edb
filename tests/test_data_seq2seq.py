"""The dates -> ISO corpus and padded teacher-forcing batches (the EN -> ES corpus: tests/test_data_bible.py)."""
import datetime as dt

import numpy as np
import pytest

from llmbook.data import dates, pad_sequences, teacher_forcing
from llmbook.data.dates import format_human


def test_dates_are_seeded_disjoint_and_correct():
    d = dates(n_train=2000, n_validation=200, n_test=200, seed=0)
    assert d.checksum == dates(n_train=2000, n_validation=200, n_test=200, seed=0).checksum
    assert d.checksum != dates(n_train=2000, n_validation=200, n_test=200, seed=1).checksum
    days = [{iso for _, iso in s} for s in (d.train, d.validation, d.test)]
    assert not days[0] & days[1] and not days[0] & days[2] and not days[1] & days[2]
    for text, iso in d.train[:50]:
        assert dt.date.fromisoformat(iso).year == int(iso[:4]) and iso[:4] in text   # 4-digit year always written


def test_dates_examples_in_four_languages():
    day = dt.date(2037, 3, 10)
    assert format_human(day, "fr_FR", "full") == "mardi 10 mars 2037"
    assert format_human(day, "de_DE", "long") == "10. März 2037"
    assert format_human(day, "zh_CN", "long") == "2037年3月10日"
    assert format_human(day, "en_US", "medium") == "Mar 10, 2037"
    with pytest.raises(ValueError, match="fmt"):
        format_human(day, "en_US", "short")


def test_pad_sequences_and_masks():
    ids, mask = pad_sequences([[5, 6, 7], [8]], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0]]
    assert mask.tolist() == [[True, True, True], [True, False, False]]
    assert pad_sequences([[1]], 0, length=4)[0].shape == (1, 4)
    with pytest.raises(ValueError, match="shorter"):
        pad_sequences([[1, 2, 3]], 0, length=2)


def test_teacher_forcing_shifts_targets_right():
    dec_in, dec_out = teacher_forcing([[10, 11, 12], [20]], bos_id=1, eos_id=2, pad_id=0)
    assert dec_in.tolist() == [[1, 10, 11, 12], [1, 20, 0, 0]]
    assert dec_out.tolist() == [[10, 11, 12, 2], [20, 2, 0, 0]]
    # the target at step t is the decoder input at step t + 1: the model never sees the token it predicts
    assert (dec_in[0, 1:] == dec_out[0, :-1]).all()
    assert np.array_equal(dec_out != 0, pad_sequences([[10, 11, 12, 2], [20, 2]], 0)[1])
