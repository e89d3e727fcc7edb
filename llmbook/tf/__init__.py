"""TensorFlow/Keras implementations; every module has a PyTorch twin of the same name in `llmbook.torch`."""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")   # before TensorFlow is imported

from llmbook._quiet import quiet_stderr  # noqa: E402

with quiet_stderr():                                 # oneDNN / absl lines printed by C++ at import
    import tensorflow  # noqa: E402


def enable_memory_growth() -> None:
    """Let TF take GPU memory as needed, so TensorFlow and PyTorch can share one GPU."""
    for gpu in tensorflow.config.list_physical_devices("GPU"):
        try:
            tensorflow.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:          # already initialised: growth can only be set before first use
            pass


def set_threads(n: int) -> bool:
    """Run TF's ops on `n` threads (its own pools ignore OMP_NUM_THREADS); False if TF was already running."""
    try:
        tensorflow.config.threading.set_intra_op_parallelism_threads(n)
        tensorflow.config.threading.set_inter_op_parallelism_threads(n)
    except RuntimeError:          # settable only before TF has run anything: it keeps its threads
        return False
    return True


def device() -> str:
    """The TF device string to place work on: the first GPU if there is one, else the CPU."""
    return "/GPU:0" if tensorflow.config.list_physical_devices("GPU") else "/CPU:0"


enable_memory_growth()
