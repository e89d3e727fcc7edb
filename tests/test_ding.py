"""benchmarks/ding.py, the Ding EN->DE reader only bible_stats.py uses, still gives the committed split."""
import json
from pathlib import Path

import pytest
from conftest import load_script

from llmbook.data.seq2seq import load_tokenizers

ROOT = Path(__file__).resolve().parents[1]
ding = load_script("benchmarks/ding.py")
COMMITTED = json.loads((ROOT / "benchmarks" / "results" / "bible_stats.json").read_text())["EN->DE Ding"]
INSTALLED = (ding.DICT_DIR / "english-german.index").exists()


def test_missing_dictionary_says_how_to_install(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"bible_stats\.py.*`sudo apt-get install dict-de-en`"):
        ding.load_en_de_pairs(tmp_path)


def test_split_pairs_rejects_impossible_sizes():
    with pytest.raises(ValueError, match="held-out"):
        ding.split_pairs([("A b.", "C d."), ("E f.", "G h.")], n_validation=1, n_test=1)


def test_tokenisers_are_those_of_the_committed_results():
    toks = load_tokenizers(ding.SPM_FILE)
    assert (len(toks["en"]), len(toks["de"])) == (COMMITTED["en"]["vocab_size"], COMMITTED["de"]["vocab_size"])


@pytest.mark.skipif(not INSTALLED, reason="Debian dict-de-en is not installed (only bible_stats.py needs it)")
def test_split_is_the_one_of_the_committed_results():
    data = ding.en_de()
    assert {s: len(getattr(data, s)) for s in ("train", "validation", "test")} == COMMITTED["pairs"]
    assert data.checksum == COMMITTED["checksum"], "dict-de-en 1.9-6 with seed 0 gives the committed split"
    train, val, test = ({en for en, _ in s} for s in (data.train, data.validation, data.test))
    assert not train & val and not train & test and not val & test
    for en, de in data.train[:2000]:
        assert en[0].isupper() and en[-1] in ".?!" and de[-1] in ".?!"
        assert not any(ch in en + de for ch in "[]{}…;")
