"""Corpora, tokenisers, vocabularies and batching shared by the PyTorch and TensorFlow code."""
from .bible import en_es, load_bible_pairs, load_bible_verses
from .batching import Batches, context_windows, minibatches, pad_sequences, teacher_forcing
from .dates import dates
from .pairs import ParallelSplits
from .shakespeare import (TEST_PLAYS, VALIDATION_PLAYS, ShakespeareSplits, TokenizedCorpus, load_shakespeare,
                          tokenized_shakespeare)
from .vocab import BOS, EOS, PAD, UNK, Vocab, char_tokens, detokenize, word_tokens

__all__ = ["Batches", "context_windows", "minibatches", "pad_sequences", "teacher_forcing", "dates",
           "ParallelSplits", "en_es", "load_bible_pairs", "load_bible_verses", "TEST_PLAYS", "VALIDATION_PLAYS",
           "ShakespeareSplits", "TokenizedCorpus", "load_shakespeare", "tokenized_shakespeare", "BOS", "EOS", "PAD",
           "UNK", "Vocab", "char_tokens", "detokenize", "word_tokens"]
