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


def seed(n: int = 0, deterministic: bool | None = None) -> None:
    """Seed Python, NumPy, PyTorch and TensorFlow (those installed); optionally make their kernels deterministic.

    `deterministic=None` (the default) means deterministic kernels on a CPU-only machine (nbval compares
    outputs bit for bit there) and fast, non-deterministic ones when a GPU is present; True or False forces
    the choice. TensorFlow's op determinism stays off on a GPU even when asked: some ops (e.g. the
    embedding gradient's segment sums) have no deterministic GPU kernel and would raise.
    """
    random.seed(n)
    np.random.seed(n)
    os.environ["PYTHONHASHSEED"] = str(n)
    if importlib.util.find_spec("torch") is not None:
        import torch
        torch.manual_seed(n)   # also seeds every CUDA device
        gpu = torch.cuda.is_available() or (getattr(torch.backends, "mps", None) is not None
                                           and torch.backends.mps.is_available())
        det = (not gpu) if deterministic is None else bool(deterministic)
        if det:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")   # deterministic cuBLAS
        torch.use_deterministic_algorithms(det, warn_only=True)
        torch.backends.cudnn.benchmark = not det
    if importlib.util.find_spec("tensorflow") is not None:
        from llmbook.tf import tensorflow as tf   # quiet import
        tf.keras.utils.set_random_seed(n)
        tf_gpu = bool(tf.config.list_physical_devices("GPU"))
        if (not tf_gpu) if deterministic is None else (deterministic and not tf_gpu):
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
