"""Copy weights between twin PyTorch and TensorFlow models, so parity checks compare like with like.

Each twin pair is registered by class name. Its converter lists, in order, every
(TF variable, PyTorch tensor, transpose) triple: `transpose` is True where PyTorch stores
(out, in) (`nn.Linear.weight`) and Keras stores (in, out) (`Dense.kernel`).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

_PAIRS: dict[str, Callable] = {}


def pair(name: str):
    """Register the converter of the twin classes called `name` in llmbook.torch and llmbook.tf."""
    def register(fn):
        _PAIRS[name] = fn
        return fn
    return register


def _triples(torch_model, tf_model):
    name = type(torch_model).__name__
    if type(tf_model).__name__ != name:
        raise TypeError(f"not a twin pair: {name} (PyTorch) vs {type(tf_model).__name__} (TensorFlow)")
    if name not in _PAIRS:
        raise KeyError(f"no weight converter registered for {name}; known pairs: {sorted(_PAIRS)}")
    triples = _PAIRS[name](torch_model, tf_model)
    n_torch = sum(1 for _ in torch_model.parameters())
    if len(triples) != n_torch or len(triples) != len(tf_model.weights):
        raise ValueError(f"{name}: converter maps {len(triples)} tensors but the models have "
                         f"{n_torch} (PyTorch) and {len(tf_model.weights)} (TensorFlow)")
    for var, tensor, transpose in triples:
        shape = tuple(tensor.shape[::-1]) if transpose else tuple(tensor.shape)
        if tuple(var.shape) != shape:
            raise ValueError(f"{name}: TF variable {var.path} has shape {tuple(var.shape)} but the "
                             f"PyTorch weight gives {shape}: were both models built with the same sizes?")
    return triples


def torch_to_tf(torch_model, tf_model) -> None:
    """Set every weight of `tf_model` from its twin `torch_model`."""
    for var, tensor, transpose in _triples(torch_model, tf_model):
        value = tensor.detach().cpu().numpy()
        var.assign(value.T if transpose else value)


def tf_to_torch(tf_model, torch_model) -> None:
    """Set every weight of `torch_model` from its twin `tf_model`."""
    import torch
    with torch.no_grad():
        for var, tensor, transpose in _triples(torch_model, tf_model):
            value = np.asarray(var.numpy())
            tensor.copy_(torch.from_numpy(np.ascontiguousarray(value.T if transpose else value)))


@pair("NNLMFromScratch")
def _nnlm_from_scratch(tm, fm):
    names = ["C", "H", "d", "U", "b"] + (["W"] if tm.W is not None else [])
    return [(getattr(fm, n), getattr(tm, n), False) for n in names]


@pair("NNLM")
def _nnlm(tm, fm):
    out = [(fm.embed.embeddings, tm.embed.weight, False),
           (fm.hidden.kernel, tm.hidden.weight, True), (fm.hidden.bias, tm.hidden.bias, False),
           (fm.out.kernel, tm.out.weight, True), (fm.out.bias, tm.out.bias, False)]
    if tm.direct is not None:
        out.append((fm.direct.kernel, tm.direct.weight, True))
    return out
