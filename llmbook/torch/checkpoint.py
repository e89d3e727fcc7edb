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
