"""Inference for encoder–decoders, as loops separate from training: greedy decoding and beam search.

Shapes: B sources, S source length, N decoder rows (B, or B k in a beam of width k), V target
vocabulary. Works with any model that has the three methods of the decoding protocol:

    encode(src (B, S)) -> memory               what the decoder reads from the source
    initial_state(memory) -> state             the decoder state before <bos>
    step(prev (N,), memory, state) -> (logits (N, V), state)

where memory and state are tensors or (nested) tuples/lists/dicts of tensors with the rows first:
the fixed context c (B, H) of `llmbook.torch.seq2seq.Seq2Seq`, encoder states and a source mask for
an attention decoder, cached keys and values for a Transformer. The beam bookkeeping is
framework-neutral (`llmbook.beam`); this module supplies the decoder step.
"""
from __future__ import annotations

import numpy as np
import torch

from llmbook import beam as _beam
from llmbook.beam import map_structure


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def _cut(ids: list[int], eos_id: int) -> list[int]:
    """The tokens before the first <eos>."""
    return ids[:ids.index(eos_id)] if eos_id in ids else ids


@torch.no_grad()
def greedy_decode(model: torch.nn.Module, src, *, bos_id: int, eos_id: int, max_len: int = 50) -> list[list[int]]:
    """Translate each source (B, S) by always taking the most likely next token; stop at <eos> or max_len.

    Returns B lists of token ids, without <bos> and <eos>.
    """
    model.eval()
    src = torch.as_tensor(np.asarray(src), device=_device(model))           # (B, S)
    memory = model.encode(src)                                               # e.g. c (B, H)
    state = model.initial_state(memory)                                      # e.g. s_0 = c (B, H)
    prev = torch.full((src.shape[0],), bos_id, dtype=torch.long, device=src.device)   # (B,)
    done = torch.zeros(src.shape[0], dtype=torch.bool, device=src.device)   # (B,)
    out = []
    for _ in range(max_len):
        logits, state = model.step(prev, memory, state)                     # (B, V), state
        prev = logits.argmax(dim=-1)                                         # (B,)
        out.append(prev)
        done |= prev == eos_id
        if bool(done.all()):
            break
    ids = torch.stack(out, dim=1).cpu().tolist()                             # (B, t)
    return [_cut(row, eos_id) for row in ids]


@torch.no_grad()
def beam_search(model: torch.nn.Module, src, *, bos_id: int, eos_id: int,
                k: int = 4, max_len: int = 50, alpha: float = 0.0,
                trace: bool = False) -> _beam.BeamResult:
    """Beam search of width k, B sources at once (see `llmbook.beam`).

    Score log P(Y|X) / len(Y)**alpha; `.sequences` holds B lists of token ids
    without <bos> and <eos>; k = 1 gives greedy decoding.
    """
    model.eval()
    src = torch.as_tensor(np.asarray(src), device=_device(model))    # (B, S)
    memory = map_structure(lambda x: x.repeat_interleave(k, dim=0),
                           model.encode(src))  # (N, ...): each source k times

    def step(tokens: np.ndarray, state):
        prev = torch.as_tensor(tokens, device=src.device)              # (N,)
        logits, state = model.step(prev, memory, state)      # (N, V), state
        m = min(2 * k, logits.shape[-1])
        best = torch.log_softmax(logits, dim=-1).topk(m, dim=-1)  # (N, m) each
        return (best.values.cpu().numpy(), best.indices.cpu().numpy()), state

    def select(state, rows: np.ndarray):
        index = torch.as_tensor(rows, device=src.device)               # (N,)
        return map_structure(lambda x: x[index], state)  # (N, ...) survivors

    return _beam.search(step, select, model.initial_state(memory),
                        src.shape[0], bos_id=bos_id, eos_id=eos_id, k=k,
                        max_len=max_len, alpha=alpha, trace=trace)
