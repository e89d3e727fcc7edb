"""A PyTorch checkpoint's weights written as the TensorFlow twin's checkpoint (same values, same config).

    python tools/convert_checkpoint.py gpt.GPT llmbook/checkpoints/gpt_char_torch.npz \
        llmbook/checkpoints/gpt_char_tf.npz

`gpt.GPT` names the twin classes llmbook.torch.gpt.GPT and llmbook.tf.gpt.GPT; the weights go across
through llmbook.parity. Both checkpoints store float16, so the TensorFlow file holds exactly the
PyTorch file's values: a page that loads it shows the PyTorch-trained model in TensorFlow, and says
so. Where a TensorFlow training run exists, ship its checkpoint instead.
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

import numpy as np


def twins(name: str):
    """The (PyTorch, TensorFlow) classes called `module.Class` in llmbook.torch and llmbook.tf."""
    module, _, cls = name.rpartition(".")
    if not module or not cls:
        raise SystemExit(f"convert_checkpoint: name the model as module.Class (e.g. gpt.GPT), not {name!r}")
    try:
        return (getattr(importlib.import_module(f"llmbook.torch.{module}"), cls),
                getattr(importlib.import_module(f"llmbook.tf.{module}"), cls))
    except (ImportError, AttributeError) as e:
        raise SystemExit(f"convert_checkpoint: no twin classes {name} in llmbook.torch and llmbook.tf ({e})") from e


def convert(name: str, src: Path, dst: Path) -> Path:
    """Write the TensorFlow checkpoint `dst` holding the weights of the PyTorch checkpoint `src`."""
    from llmbook.parity import torch_to_tf
    from llmbook.tf.checkpoint import save_checkpoint
    from llmbook.torch.checkpoint import load_checkpoint
    torch_cls, tf_cls = twins(name)
    with np.load(src) as z:
        config = json.loads(str(z["__config__"]))
    tf_model = tf_cls(**config)
    if not tf_model.weights:
        raise SystemExit(f"convert_checkpoint: {name}(**config) builds no weights in its constructor")
    torch_to_tf(load_checkpoint(torch_cls, src, device="cpu"), tf_model)
    return save_checkpoint(tf_model, dst, **config)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="module.Class of the twins, e.g. gpt.GPT")
    parser.add_argument("src", type=Path, help="the PyTorch checkpoint (.npz)")
    parser.add_argument("dst", type=Path, help="the TensorFlow checkpoint to write (.npz)")
    args = parser.parse_args(argv)
    if not args.src.is_file():
        raise SystemExit(f"convert_checkpoint: {args.src} not found")
    print("written", convert(args.model, args.src, args.dst))
    return 0


if __name__ == "__main__":
    sys.exit(main())
