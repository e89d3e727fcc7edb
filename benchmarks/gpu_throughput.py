"""Chapter 6 on a GPU: training throughput (target tokens/s) of the same PyTorch Transformer four ways.

fp32 vs bfloat16 autocast, and the from-scratch attention (softmax(q k^T / sqrt(d_k)) v written out) vs
`torch.nn.functional.scaled_dot_product_attention` (fused flash / memory-efficient kernels), on synthetic
batches of a fixed shape. Needs CUDA: on a machine without it the script says so and exits cleanly.

    python benchmarks/gpu_throughput.py                 # default sizes (a base-size Transformer)
    python benchmarks/gpu_throughput.py --steps 50 --seq-len 256
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results" / "gpu_throughput.json"


def run(fused: bool, bf16: bool, args) -> float:
    """Target tokens per second of `args.steps` training steps (after `args.warmup` untimed ones)."""
    from llmbook.torch.train import cross_entropy
    from llmbook.torch.transformer import MultiHeadAttention, Transformer
    torch.manual_seed(0)
    model = Transformer(args.vocab, args.vocab, d_model=args.d_model, num_heads=args.heads,
                        num_encoder_layers=args.layers, num_decoder_layers=args.layers, d_ff=4 * args.d_model,
                        dropout=0.1, max_len=args.seq_len + 1).cuda()
    for m in model.modules():
        if isinstance(m, MultiHeadAttention):
            m.fused = fused
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    src = torch.randint(4, args.vocab, (args.batch, args.seq_len), device="cuda")   # (B, S)
    tgt = torch.randint(4, args.vocab, (args.batch, args.seq_len), device="cuda")   # (B, T)
    ctx = torch.autocast("cuda", dtype=torch.bfloat16) if bf16 else nullcontext()
    for i in range(args.warmup + args.steps):
        if i == args.warmup:
            torch.cuda.synchronize()
            start = time.perf_counter()
        with ctx:
            loss = cross_entropy(model(src, tgt), tgt)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    torch.cuda.synchronize()
    return args.steps * args.batch * args.seq_len / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--d-model", type=int, default=512)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--vocab", type=int, default=8000)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("gpu_throughput: no CUDA device here, nothing to measure (run it on a GPU machine; "
              "see benchmarks/README.md)")
        return 0
    rows = []
    print(f"{torch.cuda.get_device_name()}: Transformer d_model={args.d_model}, {args.layers}+{args.layers} layers, "
          f"batch {args.batch} x {args.seq_len} tokens\n")
    print("| precision | attention | target tokens/s |\n|---|---|---:|")
    for bf16 in (False, True):
        for fused in (False, True):
            tps = run(fused, bf16, args)
            rows.append(dict(precision="bf16 autocast" if bf16 else "fp32",
                             attention="F.scaled_dot_product_attention" if fused else "from scratch", tokens_per_s=tps))
            print(f"| {rows[-1]['precision']} | {rows[-1]['attention']} | {tps:,.0f} |", flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(dict(device=torch.cuda.get_device_name(), config=vars(args), rows=rows), indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
