"""Inference for encoder–decoders, as loops separate from training: greedy decoding and beam search.

Twin of `llmbook.torch.decoding` (same functions, arguments and decoding protocol:
`encode(src) -> memory`, `initial_state(memory) -> state`,
`step(prev (N,), memory, state) -> (logits (N, V), state)`, memory and state being tensors or
nested tuples/lists/dicts of tensors with the rows first). Shapes: B sources, S source length,
N decoder rows (B, or B k in a beam of width k), V target vocabulary. The beam bookkeeping is
framework-neutral (`llmbook.beam`); this module supplies the decoder step, compiled once per model.
"""
from __future__ import annotations

import weakref

import numpy as np
import tensorflow as tf

from llmbook import beam as _beam
from llmbook.beam import map_structure


def _cut(ids: list[int], eos_id: int) -> list[int]:
    """The tokens before the first <eos>."""
    return ids[:ids.index(eos_id)] if eos_id in ids else ids


_STEPS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _stepper(model):
    """The model's decoding step as a compiled graph, made once per model (shapes left free)."""
    if model not in _STEPS:
        _STEPS[model] = tf.function(model.step, reduce_retracing=True)
    return _STEPS[model]


def greedy_decode(model, src, *, bos_id: int, eos_id: int, max_len: int = 50) -> list[list[int]]:
    """Translate each source (B, S) by always taking the most likely next token; stop at <eos> or max_len.

    Returns B lists of token ids, without <bos> and <eos>.
    """
    src = tf.convert_to_tensor(np.asarray(src))                              # (B, S)
    memory = model.encode(src)                                               # e.g. c (B, H)
    state = model.initial_state(memory)                                      # e.g. s_0 = c (B, H)
    prev = tf.fill([src.shape[0]], tf.constant(bos_id, src.dtype))           # (B,)
    done = tf.zeros([src.shape[0]], dtype=tf.bool)                           # (B,)
    step, out = _stepper(model), []
    for _ in range(max_len):
        logits, state = step(prev, memory, state)                           # (B, V), state
        prev = tf.argmax(logits, axis=-1, output_type=src.dtype)             # (B,)
        out.append(prev)
        done = done | (prev == eos_id)
        if bool(tf.reduce_all(done)):
            break
    ids = tf.stack(out, axis=1).numpy().tolist()                             # (B, t)
    return [_cut(row, eos_id) for row in ids]


def beam_search(model, src, *, bos_id: int, eos_id: int,
                k: int = 4, max_len: int = 50, alpha: float = 0.0,
                trace: bool = False) -> _beam.BeamResult:
    """Beam search of width k, B sources at once (see `llmbook.beam`).

    Score log P(Y|X) / len(Y)**alpha; `.sequences` holds B lists of token ids
    without <bos> and <eos>; k = 1 gives greedy decoding.
    """
    src = tf.convert_to_tensor(np.asarray(src))                       # (B, S)
    memory = map_structure(lambda x: tf.repeat(x, k, axis=0),
                           model.encode(src))  # (N, ...): each source k times
    decoder_step = _stepper(model)

    def step(tokens: np.ndarray, state):
        prev = tf.convert_to_tensor(tokens, dtype=src.dtype)           # (N,)
        logits, state = decoder_step(prev, memory, state)    # (N, V), state
        m = min(2 * k, logits.shape[-1])
        best = tf.math.top_k(tf.nn.log_softmax(logits, axis=-1), k=m)  # (N, m)
        return (best.values.numpy(), best.indices.numpy()), state

    def select(state, rows: np.ndarray):
        return map_structure(lambda x: tf.gather(x, rows), state)  # survivors

    return _beam.search(step, select, model.initial_state(memory),
                        int(src.shape[0]), bos_id=bos_id, eos_id=eos_id, k=k,
                        max_len=max_len, alpha=alpha, trace=trace)
