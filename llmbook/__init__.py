"""From Language Models to Transformers: the course's importable package.

Framework code lives in `llmbook.torch` and `llmbook.tf` (same module, class and function names);
everything else (data, n-grams, metrics, widgets, grading) is framework-neutral.
"""
from __future__ import annotations

import importlib.util
import os
import random

import numpy as np

__version__ = "0.1.0"
REPOSITORY = "https://github.com/llmbook/llm-foundations"  # the one place the repository URL is written


def seed(n: int = 0, deterministic: bool = True) -> None:
    """Seed Python, NumPy, PyTorch and TensorFlow (those installed) and make their kernels deterministic.

    TensorFlow's op determinism is switched on only without a GPU: on a GPU some ops (e.g. the
    embedding gradient's segment sums) have no deterministic kernel and would raise.
    """
    random.seed(n)
    np.random.seed(n)
    os.environ["PYTHONHASHSEED"] = str(n)
    if importlib.util.find_spec("torch") is not None:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")   # deterministic cuBLAS
        import torch
        torch.manual_seed(n)   # also seeds every CUDA device
        if deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.benchmark = False
    if importlib.util.find_spec("tensorflow") is not None:
        from llmbook.tf import tensorflow as tf   # quiet import
        tf.keras.utils.set_random_seed(n)
        if deterministic and not tf.config.list_physical_devices("GPU"):
            tf.config.experimental.enable_op_determinism()


def checkpoint_path(name: str):
    """Path of a checkpoint shipped with the package, e.g. checkpoint_path('nnlm_torch.npz')."""
    from pathlib import Path
    path = Path(__file__).parent / "checkpoints" / name
    if not path.exists():
        shipped = sorted(p.name for p in path.parent.glob("*.npz"))
        raise FileNotFoundError(f"no checkpoint {name!r} in {path.parent}; shipped: {shipped}. "
                                "Checkpoints are trained by the scripts in benchmarks/.")
    return path
