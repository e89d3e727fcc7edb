"""Small, framework-readable checkpoints: weights as float16 arrays in a compressed .npz, plus the constructor config."""
from __future__ import annotations

import json
import pickle
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


def save_training_state(path: str | Path, model: keras.Model, optimizer, state: dict) -> Path:
    """Pickle every model and optimizer variable, the optimizer's step and `state`, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")                                         # a kill mid-write keeps the last one
    with open(tmp, "wb") as f:                                             # the dropout layers' seeds included
        pickle.dump(dict(model=[v.numpy() for v in model.variables],
                         optimizer=[v.numpy() for v in optimizer.variables],
                         step=getattr(optimizer, "llmbook_step", 0), state=state), f)
    tmp.replace(path)
    return path


def read_training_state(path: str | Path) -> dict:
    """Everything `save_training_state` wrote, without building a model."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            return pickle.load(f)
    except (pickle.UnpicklingError, EOFError) as e:
        raise ValueError(f"{path} is not a complete training state ({e}): delete it to start the run again") from e


def restore_training_state(saved: dict, model: keras.Model, optimizer) -> dict:
    """Put `read_training_state`'s variables into a built model and its optimizer; return the run's `state`."""
    optimizer.build(model.trainable_variables)                             # the slots, then their values
    for dst, kept in ((model.variables, saved["model"]), (optimizer.variables, saved["optimizer"])):
        if len(dst) != len(kept) or any(tuple(v.shape) != np.shape(a) for v, a in zip(dst, kept)):
            raise ValueError(f"the saved training state does not fit this {type(model).__name__} "
                             f"({len(kept)} saved variables, {len(dst)} here): delete it to start the run again")
        for v, a in zip(dst, kept):
            v.assign(a)
    optimizer.llmbook_step = saved["step"]
    return saved["state"]
