"""From Language Models to Transformers: the course's importable package.

Framework code lives in `llmbook.torch` and `llmbook.tf` (same module, class and function names);
everything else (data, n-grams, metrics, widgets, grading) is framework-neutral.
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import random
import sys
import warnings

import numpy as np

__version__ = "0.1.0"
REPOSITORY = "https://github.com/llmbook/llm-foundations"  # the one place the repository URL is written
# What a learner on Colab is told after the set-up cell (every page's first cell imports llmbook).
COLAB_RESTART = ("llmbook: if pip changed a package that was already imported, or a widget does\n"
                 "not show: Runtime > Restart session, then run the notebook from the top.")


# The frameworks seed() seeds (those installed). A single-framework notebook narrows it: use_frameworks().
_FRAMEWORKS: tuple[str, ...] = ("torch", "tensorflow")


def use_frameworks(*names: str) -> None:
    """Work with these frameworks only ("torch", "tensorflow"): llmbook.seed() then seeds, so imports, no other.

    The single-framework notebooks (colab/pytorch/..., colab/tensorflow/..., tools/colab_variants.py) call it
    in their set-up cell: Colab has both frameworks installed, and seed() would otherwise import the other
    one (its import time and GPU memory) in a kernel that never uses it.
    """
    unknown = [n for n in names if n not in ("torch", "tensorflow")]
    if unknown or not names:
        raise ValueError(f"use_frameworks: name one or both of 'torch' and 'tensorflow', not {names!r}")
    global _FRAMEWORKS
    _FRAMEWORKS = tuple(dict.fromkeys(names))


def seed(n: int = 0, deterministic: bool | None = None) -> None:
    """Seed Python, NumPy, PyTorch and TensorFlow (those installed); optionally make their kernels deterministic.

    `deterministic=None` (the default) means deterministic kernels on a CPU-only machine (nbval compares
    outputs bit for bit there) and fast, non-deterministic ones when a GPU is present; True or False forces
    the choice. TensorFlow's op determinism stays off on a GPU even when asked: some ops (e.g. the
    embedding gradient's segment sums) have no deterministic GPU kernel and would raise. After
    `use_frameworks("torch")` (or "tensorflow") the other framework is neither seeded nor imported.
    """
    random.seed(n)
    np.random.seed(n)
    os.environ["PYTHONHASHSEED"] = str(n)
    if "torch" in _FRAMEWORKS and importlib.util.find_spec("torch") is not None:
        import torch
        torch.manual_seed(n)   # also seeds every CUDA device
        gpu = torch.cuda.is_available() or (getattr(torch.backends, "mps", None) is not None
                                           and torch.backends.mps.is_available())
        det = (not gpu) if deterministic is None else bool(deterministic)
        if det:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")   # deterministic cuBLAS
        torch.use_deterministic_algorithms(det, warn_only=True)
        torch.backends.cudnn.benchmark = not det
    if "tensorflow" in _FRAMEWORKS and importlib.util.find_spec("tensorflow") is not None:
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


def shipped_results(name: str) -> dict:
    """A benchmark summary shipped with the package beside the checkpoints it describes, e.g. 'ladder'."""
    import json
    from pathlib import Path
    path = Path(__file__).parent / "checkpoints" / f"{name}.json"
    if not path.exists():
        shipped = sorted(p.stem for p in path.parent.glob("*.json"))
        raise FileNotFoundError(f"no benchmark summary {name!r} in {path.parent}; shipped: {shipped}. "
                                "Summaries are written by the scripts in benchmarks/ (e.g. ladder.py report --write).")
    return json.loads(path.read_text(encoding="utf-8"))


def stale_imports() -> list[str]:
    """'name loaded -> installed' for each imported package llmbook requires whose installed version differs."""
    import re
    try:
        wanted = {re.split(r"[\s<>=!~;\[@(]", r, maxsplit=1)[0].lower().replace("_", "-")
                  for r in importlib.metadata.requires("llmbook") or []}
    except importlib.metadata.PackageNotFoundError:   # llmbook run from a source tree, not installed
        return []
    owners = importlib.metadata.packages_distributions()
    stale = []
    for name, module in list(sys.modules.items()):
        dists = [d for d in owners.get(name, []) if d.lower().replace("_", "-") in wanted]
        if "." in name or len(dists) != 1:
            continue
        with warnings.catch_warnings():            # some packages deprecate __version__
            warnings.simplefilter("ignore")
            loaded = getattr(module, "__version__", None)
        installed = importlib.metadata.version(dists[0])
        if isinstance(loaded, str) and installed != loaded:
            stale.append(f"{name} {loaded} -> {installed}")
    return sorted(stale)


def colab_note() -> str:
    """The restart advice for Colab, naming the packages pip replaced after they were imported."""
    stale = stale_imports()
    if not stale:
        return COLAB_RESTART
    return ("llmbook: pip replaced packages this session had already imported:\n  "
            + "\n  ".join(stale) + "\nUse Runtime > Restart session, then run the notebook from the top.")


if "google.colab" in sys.modules:      # Colab only: local runs (and the book's outputs) print nothing
    print(colab_note())
