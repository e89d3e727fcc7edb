"""Corpora, tokenisers, vocabularies and batching shared by the PyTorch and TensorFlow code."""
from .batching import Batches, context_windows, minibatches
from .shakespeare import (TEST_PLAYS, VALIDATION_PLAYS, ShakespeareSplits, TokenizedCorpus, load_shakespeare,
                          tokenized_shakespeare)
from .vocab import BOS, EOS, PAD, UNK, Vocab, char_tokens, detokenize, word_tokens

__all__ = ["Batches", "context_windows", "minibatches", "TEST_PLAYS", "VALIDATION_PLAYS", "ShakespeareSplits",
           "TokenizedCorpus", "load_shakespeare", "tokenized_shakespeare", "BOS", "EOS", "PAD", "UNK", "Vocab",
           "char_tokens", "detokenize", "word_tokens"]
