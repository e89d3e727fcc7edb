"""Chapters 6 and 7 on a GPU: training throughput, achieved TFLOP/s and MFU of the PyTorch Transformer
(`--model transformer`, the default) or of chapter 7's decoder-only GPT (`--model gpt`), four ways.

fp32 (TF32 matmuls on, as PyTorch users get them with `torch.backends.cuda.matmul.allow_tf32`) vs
bfloat16 autocast, and the from-scratch attention (softmax(q k^T / sqrt(d_k)) v written out) vs
`torch.nn.functional.scaled_dot_product_attention` (fused flash / memory-efficient kernels; the
decoder's causal self-attention passes `is_causal=True` and no mask), on synthetic batches of B
sources and targets of length S = T.

Model FLOPs per training step (forward + backward = 3 x forward; a matmul of m x k by k x n = 2mkn):

    dense:     6 N_S (B S) + 6 N_T (B T)            N = weights used in matmuls: every nn.Linear, and
                                                    the output projection V x D (tied to the target
                                                    embedding); embedding lookups are not matmuls.
                                                    N_S: the encoder's and the cross-attention key/value
                                                    projections (they read the S source positions);
                                                    N_T: the rest of the decoder (T target positions)
    attention: 12 L_enc D S^2 B                     encoder self-attention: q k^T and a v, 2 x 2 S^2 D fwd
             + 12 L_dec D T^2 B                     decoder self-attention (counted in full, as PaLM's
                                                    MFU does, although half of it is masked)
             + 12 L_dec D T S B                     cross-attention

The GPT (`--model gpt`, B sequences of T tokens): 6 N (B T) + 12 L D T^2 B, N = every nn.Linear of
its blocks + the tied output projection V x D; its blocks pass their causal mask as a tensor, so
the fused rows run PyTorch's memory-efficient kernel rather than Flash.

FLOPs per target token = that / (B T) (~ 6 N + 12 L D T for S = T). MFU = achieved model FLOP/s /
the GPU's dense peak for the precision (bf16 tensor cores; TF32 for the fp32 rows) from PEAKS; an
unknown GPU gets TFLOP/s only. Recomputed activations are not counted (there are none here).

    python benchmarks/gpu_throughput.py                          # D=512, 6+6 layers
    python benchmarks/gpu_throughput.py --sizes 512x6,1024x12,2048x12 --batch 64 --seq-len 256
    python benchmarks/gpu_throughput.py --model gpt --sizes 768x12 --batch 16 --seq-len 1024
    python benchmarks/gpu_throughput.py --smoke                  # any machine, seconds: checks the script
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

RESULTS = {"transformer": Path(__file__).resolve().parent / "results" / "gpu_throughput.json",
           "gpt": Path(__file__).resolve().parent / "results" / "gpu_throughput_gpt.json"}

# Dense (no structured sparsity) peak TFLOP/s from the vendors' data sheets: (bf16 tensor core, TF32 tensor core).
# The T4 (Turing) has no bf16: autocast to bf16 runs slowly there, and precision="auto" picks fp32.
PEAKS = {
    "H200": (989.0, 494.5),          # SXM, same tensor cores as the H100 SXM
    "H100 PCIe": (756.0, 378.0),
    "H100 NVL": (835.0, 417.5),
    "H100": (989.0, 494.5),          # SXM
    "A100": (312.0, 156.0),
    "A10G": (70.0, 35.0),
    "A10": (125.0, 62.5),
    "L40S": (362.0, 183.0),
    "L4": (121.0, 60.0),
    "T4": (None, None),              # fp16 65, fp32 8.1 (no TF32, no bf16)
}


def peak_tflops(name: str, precision: str) -> float | None:
    """Dense peak of the GPU called `name` for 'bf16' or 'fp32' (TF32), or None if the GPU is not in PEAKS."""
    for key in sorted(PEAKS, key=len, reverse=True):          # "H100 PCIe" before "H100", "A100" before "A10"
        if key.replace(" ", "").lower() in name.replace(" ", "").replace("-", "").lower():
            bf16, tf32 = PEAKS[key]
            return bf16 if precision == "bf16" else tf32
    return None


def dense_weights(model) -> tuple[int, int]:
    """Matmul weights applied per source position (encoder, cross-attention K/V) and per target position."""
    from torch import nn
    def linear(*modules):
        return sum(m.weight.numel() for mod in modules for m in mod.modules() if isinstance(m, nn.Linear))
    cross_kv = linear(*(mod for layer in model.decoder.layers for mod in (layer.cross_attn.W_k, layer.cross_attn.W_v)))
    n_source = linear(model.encoder) + cross_kv
    n_target = linear(model.decoder) - cross_kv + model.decoder.embed.weight.numel()   # + tied output projection
    return n_source, n_target


def flops_per_step(model, B: int, S: int, T: int) -> float:
    """Model FLOPs of one training step (forward + backward) of a Transformer on B pairs of lengths S, T."""
    n_source, n_target = dense_weights(model)
    D = model.encoder.embed.weight.shape[1]
    L_enc, L_dec = len(model.encoder.layers), len(model.decoder.layers)
    dense = 6 * n_source * B * S + 6 * n_target * B * T
    attention = 12 * D * B * (L_enc * S * S + L_dec * T * T + L_dec * T * S)
    return float(dense + attention)


def gpt_flops_per_step(model, B: int, T: int) -> float:
    """Model FLOPs of one training step (forward + backward) of the GPT on B sequences of T tokens."""
    from torch import nn
    n = sum(m.weight.numel() for m in model.layers.modules() if isinstance(m, nn.Linear))
    n += model.embed.weight.numel()                                        # the tied output projection
    return float(6 * n * B * T + 12 * model.num_layers * model.d_model * T * T * B)


def build(kind: str, d_model: int, layers: int, args):
    """The model measured: chapter 6's Transformer (`layers` per stack) or chapter 7's GPT."""
    from llmbook.torch.gpt import GPT
    from llmbook.torch.transformer import Transformer
    if kind == "gpt":
        return GPT(args.vocab, d_model=d_model, num_heads=max(1, d_model // 64), num_layers=layers,
                   d_ff=4 * d_model, max_len=args.seq_len, dropout=0.1)
    return Transformer(args.vocab, args.vocab, d_model=d_model, num_heads=max(1, d_model // 64),
                       num_encoder_layers=layers, num_decoder_layers=layers, d_ff=4 * d_model,
                       dropout=0.1, max_len=args.seq_len + 1)


def run(fused: bool, precision: str, d_model: int, layers: int, args, device: torch.device) -> dict:
    """One row: tokens/s, TFLOP/s and MFU of `args.steps` timed steps (after `args.warmup` untimed ones)."""
    from llmbook.torch.train import autocast, cross_entropy
    from llmbook.torch.transformer import MultiHeadAttention
    torch.manual_seed(0)
    model = build(args.model, d_model, layers, args).to(device)
    for m in model.modules():
        if isinstance(m, MultiHeadAttention):
            m.fused = fused
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, fused=device.type == "cuda")
    src = torch.randint(4, args.vocab, (args.batch, args.seq_len), device=device)   # (B, S)
    tgt = torch.randint(4, args.vocab, (args.batch, args.seq_len), device=device)   # (B, T)
    forward = (lambda: model(tgt)) if args.model == "gpt" else (lambda: model(src, tgt))   # (B, T, V)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for i in range(args.warmup + args.steps):
        if i == args.warmup:
            sync()
            start = time.perf_counter()
        with autocast(device, precision):
            loss = cross_entropy(forward(), tgt)                           # random tokens: speed, not learning
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    sync()
    seconds = time.perf_counter() - start
    per_step = ((lambda b: gpt_flops_per_step(model, b, args.seq_len)) if args.model == "gpt" else
                (lambda b: flops_per_step(model, b, args.seq_len, args.seq_len)))
    flops = per_step(args.batch) * args.steps
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    peak = peak_tflops(name, precision) if device.type == "cuda" else None
    tflops = flops / seconds / 1e12
    row = dict(model=args.model, d_model=d_model, layers=layers, precision=precision,
               attention="fused" if fused else "from scratch",
               parameters=sum(p.numel() for p in model.parameters()),
               flops_per_token=per_step(1) / args.seq_len,
               tokens_per_s=args.steps * args.batch * args.seq_len / seconds,
               tflops=tflops, mfu=None if peak is None else tflops / peak,
               loss=float(loss.detach()), peak_memory_gb=(torch.cuda.max_memory_allocated(device) / 2**30
                                                 if device.type == "cuda" else None))
    del model, opt
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    return row


def sizes(text: str) -> list[tuple[int, int]]:
    """'512x6,1024x12' -> [(512, 6), (1024, 12)] (d_model x layers per stack)."""
    try:
        out = [tuple(int(v) for v in part.lower().split("x")) for part in text.split(",")]
        assert all(len(p) == 2 and p[0] > 0 and p[1] > 0 for p in out)
    except (ValueError, AssertionError):
        raise argparse.ArgumentTypeError(f"--sizes wants DxL pairs such as 512x6,1024x12; got {text!r}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=("transformer", "gpt"), default="transformer",
                        help="chapter 6's encoder-decoder Transformer or chapter 7's decoder-only GPT")
    parser.add_argument("--sizes", type=sizes, default=sizes("512x6"),
                        help="d_model x layers (per stack for the Transformer), comma-separated")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--vocab", type=int, default=8000)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None, help="JSON results (default on a GPU: results/gpu_throughput.json, _gpt.json for the GPT)")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes, 2 steps, on the CPU when there is no GPU: checks the script, measures nothing")
    args = parser.parse_args(argv)
    if args.smoke:
        args.sizes, args.batch, args.seq_len, args.vocab, args.steps, args.warmup = [(32, 1)], 2, 16, 50, 2, 1
    if not torch.cuda.is_available() and not args.smoke:
        print("gpu_throughput: no CUDA device here, nothing to measure (run it on a GPU machine, or --smoke "
              "to check the script; see benchmarks/README.md)")
        return 0
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True       # fp32 rows: TF32 tensor cores, as measured against
        torch.backends.cudnn.allow_tf32 = True
    name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
    print(f"{name}, {args.model}: batch {args.batch} x {args.seq_len} tokens, vocabulary {args.vocab}; "
          f"peaks bf16/TF32: {peak_tflops(name, 'bf16')}/{peak_tflops(name, 'fp32')} TFLOP/s\n")
    print("| D x layers | parameters | precision | attention | FLOPs/token | tokens/s | TFLOP/s | MFU |")
    print("|---|---:|---|---|---:|---:|---:|---:|")
    rows = []
    for d_model, layers in args.sizes:
        for precision in ("fp32", "bf16"):
            for fused in (False, True):
                try:
                    row = run(fused, precision, d_model, layers, args, device)
                except torch.cuda.OutOfMemoryError:
                    print(f"| {d_model} x {layers} | | {precision} | {'fused' if fused else 'from scratch'} "
                          "| out of memory | | | |", flush=True)
                    torch.cuda.empty_cache()
                    continue
                rows.append(row)
                mfu = "–" if row["mfu"] is None else f"{row['mfu']:.1%}"
                print(f"| {d_model} x {layers} | {row['parameters'] / 1e6:.1f} M | {precision} "
                      f"| {row['attention']} | {row['flops_per_token'] / 1e6:.1f} M | {row['tokens_per_s']:,.0f} "
                      f"| {row['tflops']:.2f} | {mfu} |", flush=True)
    out = args.out if args.out is not None else (None if args.smoke else RESULTS[args.model])
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(dict(device=name, torch=torch.__version__, smoke=args.smoke,
                                       config={k: v for k, v in vars(args).items() if k != "out"},
                                       rows=rows), indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
