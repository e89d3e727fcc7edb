"""The shipped EN->ES Bible corpus: equal to a fresh extraction, split by whole chapters, checksummed, clean."""
from __future__ import annotations

import gzip
import hashlib
import importlib.util
import json
import re
import shutil
import unicodedata
from pathlib import Path

import pytest

from llmbook.data import bible, en_es, load_bible_pairs
from llmbook.data.seq2seq import SubwordTokenizer, load_tokenizers
from conftest import load_script

REPO = Path(__file__).resolve().parents[1]
APT_LINE = "sudo apt-get install sword-text-web sword-text-sparv"
MANIFEST = json.loads(bible.MANIFEST_FILE.read_text(encoding="utf-8"))


def _tool():
    return load_script("tools/extract_bible.py")


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """The loader pointed at copies of the shipped files in tmp_path (cache cleared before and after)."""
    for name in ("DATA_FILE", "MANIFEST_FILE"):
        copy = tmp_path / getattr(bible, name).name
        shutil.copy(getattr(bible, name), copy)
        monkeypatch.setattr(bible, name, copy)
    bible.verses.cache_clear()
    yield tmp_path
    bible.verses.cache_clear()


def test_shipped_file_equals_a_fresh_extraction():
    tool = _tool()
    for key in tool.MODULES.values():
        if not (tool.SWORD_ROOT / "mods.d" / f"{key}.conf").exists():
            pytest.fail(f"SWORD module {key} is not installed: run `{APT_LINE}` (or `make setup`)", pytrace=False)
    if importlib.util.find_spec("pysword") is None:
        pytest.fail("pysword is not installed: run `make setup` (or `pip install pysword==0.2.8`)", pytrace=False)
    rows, meta = tool.extract()
    shipped = gzip.decompress(bible.DATA_FILE.read_bytes())
    fresh = tool.to_tsv(rows)
    assert hashlib.sha256(fresh).hexdigest() == MANIFEST["tsv_sha256"]
    assert fresh == shipped, "the shipped pairs differ from the extraction: run `python tools/extract_bible.py`"
    assert meta["extraction"] == MANIFEST["extraction"]


def test_manifest_checksums_and_counts_match_the_file():
    assert hashlib.sha256(bible.DATA_FILE.read_bytes()).hexdigest() == MANIFEST["sha256"]
    summary = bible.split_summary()
    for key in ("verses", "chapters", "pairs", "assignment_sha256", "split_checksum"):
        assert summary[key] == MANIFEST[key], key
    assert en_es().checksum == MANIFEST["split_checksum"]
    assert sum(MANIFEST["verses"].values()) == len(bible.verses()) == MANIFEST["extraction"]["kept"]


def test_split_is_by_whole_chapters_and_disjoint():
    split_of = {}
    for v in bible.verses():
        assert split_of.setdefault((v.book, v.chapter), v.split) == v.split, f"{v.book} {v.chapter} is in two splits"
        assert v.split == bible.chapter_split(v.book, v.chapter)
    held_out = {c for c, s in split_of.items() if s != "train"}
    assert not any((v.book, v.chapter) in held_out for v in bible.load_bible_verses("train", None))
    data = en_es()
    train = set(data.train)
    assert not train & set(data.validation) and not train & set(data.test)
    shares = {s: sum(v.split == s for v in bible.verses()) / len(bible.verses()) for s in bible.SPLITS}
    assert 0.85 < shares["train"] < 0.95 and 0.03 < shares["validation"] < 0.07 and 0.03 < shares["test"] < 0.07


def test_pairs_are_clean_nfc_text_within_the_length_limit():
    leftovers = re.compile(r"[<>\[\]{}¶\t]|&\w+;|^\d|\s[,.;:!?)]|  ")
    for v in bible.verses():
        for text in (v.en, v.es):
            assert text and text == text.strip() and not leftovers.search(text), (v.book, v.chapter, v.verse, text)
            assert unicodedata.is_normalized("NFC", text)
    for split in bible.SPLITS:
        assert all(len(en.split()) <= 30 and len(es.split()) <= 30 for en, es in load_bible_pairs(split))


def test_versification_cases_are_handled():
    got = {(v.book, v.chapter, v.verse): v for v in bible.verses()}
    # psalm titles: a heading in the WEB, inside verse 1 in the RV1909; both sides now carry it
    assert got[("Ps", 3, 1)].en.startswith("A Psalm by David") and got[("Ps", 3, 1)].es.startswith("Salmo de David")
    # Numbers 13 and Jonah 2 are shifted by one verse in the RV1909 (Hebrew division): dropped whole
    assert not any(k[:2] in {("Num", 13), ("Jonah", 2)} for k in got)
    # subscriptions after the RV1909's last "Amén." are cut; Romans 16:25-27 is in the WEB at 14:23
    assert got[("Gal", 6, 18)].es.endswith("Amén.") and ("Rom", 16, 27) not in got
    # the WEB glossary after Revelation 22:21 is not verse text
    assert len(got[("Rev", 22, 21)].en.split()) < 20
    # the RV1909's chapter-opening capitals are undone
    assert got[("Gen", 1, 1)].es.startswith("En el principio crió Dios")


def test_missing_debian_packages_say_what_to_install(tmp_path):
    with pytest.raises(FileNotFoundError, match=APT_LINE):
        _tool().read_module("engWEB2015eb", tmp_path)


def test_cleaning_rules_on_markup():
    tool = _tool()
    cleaner = tool._cleaner()
    raw = ('<w lemma="a">God</w><note placement="foot">1:1 a note</note><w lemma="b">created</w> '
           '<w>the</w> [heavens] &amp; <w>earth</w> .')
    assert tool.clean(raw, "en", cleaner) == "God created the heavens & earth."
    raw = '<title canonical="true" type="psalm">A Psalm.</title><l/>Yahweh, hear!'
    assert tool.clean(raw, "en", cleaner) == "A Psalm. Yahweh, hear!"
    raw = '<w>engendró</w><transChange type="added">un</transChange> <w>tráeme</w><transChange>lo</transChange>'
    assert tool.clean(raw, "es", cleaner) == "engendró un tráemelo"
    assert tool.undo_drop_cap("Y DESPUÉS movió el pueblo") == "Y después movió el pueblo"
    assert tool.undo_drop_cap("Salmo de David. OIGATE Jehová") == "Salmo de David. Oigate Jehová"


def test_missing_file_says_how_to_fix(isolated, monkeypatch):
    monkeypatch.setattr(bible, "DATA_FILE", isolated / "nothing.tsv.gz")
    with pytest.raises(FileNotFoundError, match=r"is missing.*tools/extract_bible.py"):
        load_bible_pairs("train")


def test_corrupt_file_says_how_to_fix(isolated):
    data = bytearray(bible.DATA_FILE.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bible.DATA_FILE.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"corrupt: SHA-256.*tools/extract_bible.py"):
        load_bible_pairs("test")


def test_unknown_split_names_the_choices():
    with pytest.raises(ValueError, match=r"unknown split 'valid': choose one of train, validation, test"):
        load_bible_pairs("valid")


def test_tokenisers_round_trip_held_out_text():
    toks = load_tokenizers(REPO / "llmbook" / "checkpoints" / "enes_spm.npz")
    info = MANIFEST["tokenizers"]
    for lang, col in (("en", 0), ("es", 1)):
        tok = toks[lang]
        assert len(tok) == info["vocab_size"][lang] and tok.checksum == info["checksum"][lang]
        for split in ("validation", "test"):
            for pair in load_bible_pairs(split, max_words=None):
                ids = tok.encode(pair[col])
                assert 1 not in ids, f"<unk> in {pair[col]!r}"           # UNK_ID: every character is covered
                assert tok.decode(ids) == pair[col]


def test_tokenisers_are_trained_on_the_train_split_only():
    tool = _tool()
    train = load_bible_pairs("train")
    shipped = load_tokenizers(REPO / "llmbook" / "checkpoints" / "enes_spm.npz")
    for lang, col in (("en", 0), ("es", 1)):
        retrained = SubwordTokenizer.train([p[col] for p in train], tool.SPM_VOCAB[lang])
        assert retrained.checksum == shipped[lang].checksum, f"{lang}: rerun `python tools/extract_bible.py`"
