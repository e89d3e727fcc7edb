"""Small, framework-readable checkpoints: weights as float16 arrays in a compressed .npz, plus the constructor config."""
from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np


def save_checkpoint(model: keras.Model, path: str | Path, **config) -> Path:
    """Save `model`'s weights (float16) and the keyword arguments that rebuild it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {f"{i:03d}:{w.path}": np.asarray(w.numpy()).astype(np.float16) for i, w in enumerate(model.weights)}
    np.savez_compressed(path, __config__=np.array(json.dumps(config)), **arrays)
    return path


def load_checkpoint(cls: type[keras.Model], path: str | Path) -> keras.Model:
    """Rebuild a `cls` model from a checkpoint written by `save_checkpoint` (weights cast to float32)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} not found: run the benchmark script that trains it "
                                "(see benchmarks/README.md) or reinstall llmbook")
    with np.load(path) as z:
        config = json.loads(str(z["__config__"]))
        model = cls(**config)
        keys = sorted(k for k in z.files if k != "__config__")
        if len(keys) != len(model.weights):
            raise ValueError(f"{path} holds {len(keys)} weights but {cls.__name__}(**{config}) has {len(model.weights)}")
        for key, w in zip(keys, model.weights):
            w.assign(z[key].astype(np.float32))
    return model
