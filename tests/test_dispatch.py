"""The second kernel dispatch of `make test` really runs other CPU kernels, and pages print no noise.

`make test` runs nbval twice: once with the machine's best kernels, once with the environment in
the Makefile's DISPATCH2 line (PyTorch's ATen without vector instructions, TensorFlow's oneDNN
capped at AVX2, one thread). Both runs must pass, which is only a proof of stable outputs if the
second run computes differently in the last digits. These tests show that it does.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(ROOT.glob("chapters/*/[0-9][0-9]_*.ipynb")) + sorted(ROOT.glob("solutions/*.ipynb"))
PROBE = """
import json, sys
import numpy as np
rng = np.random.default_rng(0)
a = rng.standard_normal((64, 1000)).astype(np.float32)     # (B, K)
w = rng.standard_normal((1000, 333)).astype(np.float32)    # (K, N)
out = {}
if "torch" in sys.argv:
    import torch
    t, tw = torch.as_tensor(a), torch.as_tensor(w)
    out["torch_capability"] = torch.backends.cpu.get_cpu_capability()
    out["torch"] = [float(t.sum()), float((t @ tw).sum())]
if "tf" in sys.argv:
    import tensorflow as tf
    out["tf"] = [float(tf.reduce_sum(tf.matmul(a, w)))]
print(json.dumps(out))
"""


def dispatch2() -> dict[str, str]:
    """The environment of the second nbval run, read from the Makefile's DISPATCH2 line."""
    line = next((l for l in (ROOT / "Makefile").read_text().splitlines() if l.startswith("DISPATCH2")), None)
    assert line, "the Makefile has no DISPATCH2 line: the second kernel dispatch is gone from `make test`"
    pairs = dict(kv.split("=", 1) for kv in line.split(":=", 1)[1].split())
    assert {"ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA"} <= set(pairs), pairs
    return pairs


def probe(env_extra: dict[str, str], *frameworks: str) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in {"ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "OMP_NUM_THREADS"}}
    env.update(env_extra, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, "-c", PROBE, *frameworks], env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_second_dispatch_changes_pytorch_kernels():
    base, other = probe({}, "torch"), probe(dispatch2(), "torch")
    assert other["torch_capability"] == "DEFAULT" != base["torch_capability"], (base, other)
    # same sums to float32 precision, different in the last digits
    for x, y in zip(base["torch"], other["torch"]):
        assert x == pytest.approx(y, rel=1e-5)
    assert base["torch"] != other["torch"], "the second dispatch computed bit-identical results"


def test_second_dispatch_changes_tensorflow_kernels():
    if "avx512f" not in Path("/proc/cpuinfo").read_text():
        pytest.skip("this CPU tops out at AVX2, so ONEDNN_MAX_CPU_ISA=AVX2 selects TF's usual kernels")
    base, other = probe({}, "tf"), probe(dispatch2(), "tf")
    assert base["tf"][0] == pytest.approx(other["tf"][0], rel=1e-5)
    assert base["tf"] != other["tf"], "ONEDNN_MAX_CPU_ISA did not change TensorFlow's matmul"


GAP = re.compile(r"max \|[^|\n]*\|[^<>=\n]*(?<![<>])= *[-+]?\d")      # "max |a - b| = 2e-07": rounding noise


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_parity_cells_print_verdicts_not_noise(path):
    nb = nbformat.read(path, as_version=4)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or "nbval-ignore-output" in cell.metadata.get("tags", []):
            continue
        for out in cell.outputs:
            text = out.get("text", "") or out.get("data", {}).get("text/plain", "")
            for line in "".join(text).splitlines():
                assert not GAP.search(line), (
                    f"{path.name} cell {i} prints a floating-point gap ({line.strip()!r}); its last "
                    f"digits depend on the CPU: print the verdict against the tolerance instead")
