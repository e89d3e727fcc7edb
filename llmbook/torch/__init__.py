"""PyTorch implementations; every module has a TensorFlow twin of the same name in `llmbook.tf`."""
from __future__ import annotations

import torch


def device() -> torch.device:
    """The best available torch device: CUDA, then Apple MPS, then CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")
