"""What the encoder-decoder benchmarks of chapters 4-6 share: one framework's API, parameter counts, batched decoding."""
from __future__ import annotations

import time
from types import SimpleNamespace

import numpy as np

from llmbook.data import pad_sequences
from llmbook.data.seq2seq import BOS_ID, EOS_ID, PAD_ID


def framework(name: str) -> SimpleNamespace:
    """The models, training loop, decoders and checkpoint functions of one framework ("torch" or "tf")."""
    if name == "torch":
        import torch
        torch.set_num_threads(1)                     # steady timings on a shared 2-core machine
        from llmbook.torch.attention import Seq2SeqAttention
        from llmbook.torch.checkpoint import (load_checkpoint, read_training_state, restore_training_state,
                                              save_checkpoint, save_training_state)
        from llmbook.torch.decoding import beam_search, greedy_decode
        from llmbook.torch.gpt import GPTTranslator
        from llmbook.torch.seq2seq import Seq2Seq
        from llmbook.torch.train import evaluate, fit, warmup_inverse_sqrt
        from llmbook.torch.transformer import Transformer
    elif name == "tf":
        from llmbook.tf import set_threads
        set_threads(1)                               # one thread, as for torch (unless TF is already running)
        from llmbook.tf.attention import Seq2SeqAttention
        from llmbook.tf.checkpoint import (load_checkpoint, read_training_state, restore_training_state,
                                           save_checkpoint, save_training_state)
        from llmbook.tf.decoding import beam_search, greedy_decode
        from llmbook.tf.gpt import GPTTranslator
        from llmbook.tf.seq2seq import Seq2Seq
        from llmbook.tf.train import evaluate, fit, warmup_inverse_sqrt
        from llmbook.tf.transformer import Transformer
    else:
        raise ValueError(f"framework must be 'torch' or 'tf', got {name!r}")
    return SimpleNamespace(Seq2Seq=Seq2Seq, Seq2SeqAttention=Seq2SeqAttention, Transformer=Transformer,
                           GPTTranslator=GPTTranslator, fit=fit,
                           evaluate=evaluate, warmup_inverse_sqrt=warmup_inverse_sqrt, greedy=greedy_decode,
                           beam=beam_search, save=save_checkpoint, load=load_checkpoint,
                           save_state=save_training_state, read_state=read_training_state,
                           restore_state=restore_training_state)


def n_params(model, fw: str) -> int:
    """Number of trainable and non-trainable weights of a model of either framework."""
    ws = model.parameters() if fw == "torch" else model.weights
    return int(sum(np.prod(tuple(w.shape)) for w in ws))


def decode_all(decode, model, sources: list[np.ndarray], batch: int = 500, **kw) -> tuple[list[list[int]], float]:
    """Decode every source in batches of `batch`; return the outputs and the seconds taken."""
    out, start = [], time.perf_counter()
    for i in range(0, len(sources), batch):
        src, _ = pad_sequences(sources[i:i + batch], PAD_ID)
        res = decode(model, src, bos_id=BOS_ID, eos_id=EOS_ID, **kw)
        out += res if isinstance(res, list) else res.sequences
    return out, time.perf_counter() - start
