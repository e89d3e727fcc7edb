"""Small, framework-readable checkpoints: weights as float16 arrays in a compressed .npz, plus the constructor config."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from llmbook.torch import device as best_device


def save_checkpoint(model: torch.nn.Module, path: str | Path, **config) -> Path:
    """Save `model`'s weights (float16) and the keyword arguments that rebuild it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {k: v.detach().cpu().numpy().astype(np.float16) for k, v in model.state_dict().items()}
    np.savez_compressed(path, __config__=np.array(json.dumps(config)), **arrays)
    return path


def load_checkpoint(cls: type[torch.nn.Module], path: str | Path,
                    device: torch.device | str | None = None) -> torch.nn.Module:
    """Rebuild a `cls` model from a checkpoint (weights cast to float32) on `device` (None: llmbook.torch.device())."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} not found: run the benchmark script that trains it "
                                "(see benchmarks/README.md) or reinstall llmbook")
    with np.load(path) as z:
        config = json.loads(str(z["__config__"]))
        model = cls(**config)
        state = {k: torch.from_numpy(z[k].astype(np.float32)) for k in z.files if k != "__config__"}
    model.load_state_dict(state)
    model.to(torch.device(device) if device is not None else best_device())
    model.eval()
    return model


def save_training_state(path: str | Path, model: torch.nn.Module, optimizer, state: dict) -> Path:
    """torch.save the model, the optimizer, its step, the RNG and `state`, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")                                         # a kill mid-write keeps the last one
    torch.save(dict(model=model.state_dict(), optimizer=optimizer.state_dict(),
                    step=getattr(optimizer, "llmbook_step", 0), rng=torch.get_rng_state(), state=state), tmp)
    tmp.replace(path)
    return path


def read_training_state(path: str | Path) -> dict:
    """Everything `save_training_state` wrote, without building a model."""
    path = Path(path)
    try:
        return torch.load(path, weights_only=False)
    except (RuntimeError, EOFError) as e:                                  # torch's word for a truncated file
        raise ValueError(f"{path} is not a complete training state ({e}): delete it to start the run again") from e


def restore_training_state(saved: dict, model: torch.nn.Module, optimizer) -> dict:
    """Put `read_training_state`'s tensors into the model and its optimizer; return the run's `state`."""
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    if "rng" in saved:                                                     # dropout draws go on as if never stopped
        torch.set_rng_state(saved["rng"])
    optimizer.llmbook_step = saved["step"]
    return saved["state"]
