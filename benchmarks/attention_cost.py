"""Cost of attention vs sequence length on this CPU, both frameworks: time and memory grow as n^2.

Times one forward pass of the from-scratch `scaled_dot_product_attention` (llmbook.{torch,tf}.transformer)
for self-attention over n positions (batch 1, h heads of d_k each) and records the bytes of the (h, n, n)
weight tensor it returns, then fits the exponent of time ~ n^p for n >= 512. Each time is the fastest of 7
runs, to see through other jobs' load. Writes llmbook/checkpoints/attention_cost.json (shipped with the package), which the chapter-6 page plots.

    python benchmarks/attention_cost.py            # ~1 min on 2 CPU cores
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

RESULTS = Path(__file__).resolve().parents[1] / "llmbook" / "checkpoints" / "attention_cost.json"   # shipped
LENGTHS = (32, 64, 128, 256, 512, 1024, 2048)
HEADS, D_K, REPEATS = 4, 32, 7


def timed(fn, repeats: int = REPEATS) -> float:
    """Fastest of `repeats` timed runs of `fn()` (after one untimed warm-up run): on a shared machine the minimum
    is the run least disturbed by other jobs."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.min(times))


def measure() -> list[dict]:
    import torch
    torch.set_num_threads(1)
    from llmbook.tf import tensorflow as tf
    from llmbook.tf.transformer import scaled_dot_product_attention as tf_attention
    from llmbook.torch.transformer import scaled_dot_product_attention as torch_attention
    rows = []
    for n in LENGTHS:
        x = np.random.default_rng(0).standard_normal((1, HEADS, n, D_K)).astype("float32")   # (1, h, n, d_k)
        tx, fx = torch.as_tensor(x), tf.constant(x)
        causal_t = torch.ones(n, n, dtype=torch.bool).tril()                                 # (n, n)
        causal_f = tf.constant(causal_t.numpy())
        with torch.no_grad():
            t_s = timed(lambda: torch_attention(tx, tx, tx, causal_t))
            weights = torch_attention(tx, tx, tx, causal_t)[1]                               # (1, h, n, n)
        f_s = timed(lambda: tf_attention(fx, fx, fx, causal_f)[0].numpy())
        rows.append(dict(n=n, torch_s=t_s, tf_s=f_s, weights_bytes=weights.element_size() * weights.numel()))
        print(f"  n={n:5d}: torch {1e3 * t_s:8.2f} ms  tf {1e3 * f_s:8.2f} ms  weights "
              f"{rows[-1]['weights_bytes'] / 2**20:8.2f} MiB", flush=True)
    return rows


def main() -> None:
    rows = measure()
    long = [r for r in rows if r["n"] >= 512]
    fit = {fw: float(np.polyfit(np.log([r["n"] for r in long]), np.log([r[f"{fw}_s"] for r in long]), 1)[0])
           for fw in ("torch", "tf")}
    print(f"\nfitted exponent p of time ~ n^p for n >= 512: torch {fit['torch']:.2f}, tf {fit['tf']:.2f} "
          "(memory of the weights: exactly n^2)")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(dict(heads=HEADS, d_k=D_K, repeats=REPEATS, rows=rows, exponent=fit), indent=1) + "\n")
    print(f"written {RESULTS}")


if __name__ == "__main__":
    main()
