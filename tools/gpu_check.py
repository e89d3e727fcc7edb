"""One script for a lent GPU: device checks, a short training run in fp32 and bf16, every chapter notebook
run in its PyTorch-only version (colab/pytorch/, what a learner opens in Colab), and the throughput /
MFU tables of chapter 6's Transformer and chapter 7's GPT; results in one JSON file.

Needs PyTorch and the course's Python packages, not TensorFlow: a PyTorch-only notebook that still
imports TensorFlow shows up with that as its first error.

    python tools/gpu_check.py                          # everything; writes benchmarks/results/gpu_check.json
    python tools/gpu_check.py --skip-notebooks         # device checks, training, throughput only
    python tools/gpu_check.py --smoke --notebooks colab/pytorch/06_transformer/01_attention.ipynb  # on a CPU
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "gpu_check.json"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

import numpy as np  # noqa: E402
import torch  # noqa: E402


def _attempt(name: str, fn) -> dict:
    """Run one check; record ok, its details and the error (type: message), never raise."""
    start = time.perf_counter()
    try:
        details = fn() or {}
        return dict(name=name, ok=True, error=None, seconds=round(time.perf_counter() - start, 2), **details)
    except Exception as e:   # noqa: BLE001 - a check that fails is a result
        return dict(name=name, ok=False, error=f"{type(e).__name__}: {e}", seconds=round(time.perf_counter() - start, 2),
                    trace=traceback.format_exc(limit=4))


def device_info() -> dict:
    import llmbook.torch
    from llmbook.torch.train import resolve_precision
    dev = llmbook.torch.device()
    info = dict(type=dev.type, torch=torch.__version__, cuda=torch.version.cuda,
                auto_precision=resolve_precision("auto", dev))
    if dev.type == "cuda":
        info.update(name=torch.cuda.get_device_name(), capability=list(torch.cuda.get_device_capability()),
                    bf16=torch.cuda.is_bf16_supported(),
                    memory_gb=round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1))
    return info


def checks() -> list[dict]:
    """Every llmbook PyTorch entry point on llmbook.torch.device(), compared with the CPU where it decides tokens."""
    import llmbook
    import llmbook.torch
    from llmbook.sampling import sample_tokens
    from llmbook.torch.checkpoint import load_checkpoint
    from llmbook.torch.decoding import beam_search, greedy_decode
    from llmbook.torch.lm import NNLM
    from llmbook.torch.rnn import CharRNN, hidden_grad_norms, next_logits_fn
    from llmbook.torch.seq2seq import Seq2Seq
    dev = llmbook.torch.device()

    def on_device(model):
        devices = {p.device.type for p in model.parameters()}
        if devices != {dev.type}:
            raise AssertionError(f"parameters on {devices}, expected {dev.type}")

    def checkpoint():
        model = load_checkpoint(NNLM, llmbook.checkpoint_path("nnlm_torch.npz"))
        on_device(model)
        ids = torch.zeros(4, model.context, dtype=torch.long, device=dev)      # (B, N)
        with torch.no_grad():
            return dict(logits_shape=list(model(ids).shape))

    def decoding():
        model = load_checkpoint(Seq2Seq, llmbook.checkpoint_path("seq2seq_dates_torch.npz"))
        on_device(model)
        cpu = load_checkpoint(Seq2Seq, llmbook.checkpoint_path("seq2seq_dates_torch.npz"), device="cpu")
        vocab = model.encoder.embed.num_embeddings
        src = np.random.default_rng(0).integers(4, vocab, (32, 12))
        kw = dict(bos_id=2, eos_id=3, max_len=12)
        g, g_cpu = greedy_decode(model, src, **kw), greedy_decode(cpu, src, **kw)
        b = beam_search(model, src, k=4, **kw).sequences
        b_cpu = beam_search(cpu, src, k=4, **kw).sequences
        return dict(greedy_same_as_cpu=float(np.mean([x == y for x, y in zip(g, g_cpu)])),
                    beam_same_as_cpu=float(np.mean([x == y for x, y in zip(b, b_cpu)])))

    def rnn_helpers():
        model = load_checkpoint(CharRNN, llmbook.checkpoint_path("char_rnn_torch.npz"))
        on_device(model)
        text = sample_tokens(next_logits_fn(model), [1, 2, 3], 20, temperature=0.8, seed=0)
        one = CharRNN(model.embed.num_embeddings, 16, 32).to(dev)
        ids = np.random.default_rng(0).integers(0, model.embed.num_embeddings, (4, 30))
        norms = hidden_grad_norms(one, ids, ids)
        return dict(sampled=len(text), grad_norms=len(norms))

    return [_attempt("load_checkpoint on the device", checkpoint),
            _attempt("greedy and beam search on the device", decoding),
            _attempt("rnn helpers on the device", rnn_helpers)]


def training(smoke: bool) -> list[dict]:
    """A reversal task (target = source reversed) trained by llmbook's fit in fp32 and bf16 from the same start."""
    import llmbook
    from llmbook.torch.train import fit
    from llmbook.torch.transformer import Transformer
    D, L, B, n, epochs = (32, 1, 16, 64, 2) if smoke else (256, 3, 128, 12800, 3)
    rng = np.random.default_rng(0)
    src = rng.integers(4, 40, (n, 20))
    tgt = np.concatenate([np.full((n, 1), 2), src[:, ::-1], np.full((n, 1), 3)], axis=1)   # <bos> reversed <eos>
    batches = [((src[i:i + B], tgt[i:i + B, :-1]), tgt[i:i + B, 1:]) for i in range(0, n, B)]
    rows = []
    for precision in ("fp32", "bf16"):
        def run(precision=precision):
            llmbook.seed(0)
            model = Transformer(40, 40, d_model=D, num_heads=max(1, D // 32), num_encoder_layers=L,
                                num_decoder_layers=L, d_ff=4 * D, dropout=0.1)
            for m in model.modules():
                if hasattr(m, "fused"):
                    m.fused = True
            hist = fit(model, batches, epochs=epochs, lr=1e-3, progress=False, precision=precision)
            if not np.isfinite(hist["loss"]).all():
                raise FloatingPointError(f"loss {hist['loss']}")
            return dict(precision=precision, loss=[round(v, 4) for v in hist["loss"]],
                        epoch_seconds=[round(v, 2) for v in hist["seconds"]])
        row = _attempt(f"fit {precision}", run)
        row.setdefault("precision", precision)
        rows.append(row)
    return rows


def notebooks(paths: list[Path], cell_timeout: int) -> list[dict]:
    """Each PyTorch-only notebook (colab/pytorch/) run alone in an empty folder; seconds and the first error."""
    import tempfile
    import nbformat
    from colab_sim import run_notebook
    rows = []
    kernel_path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))   # llmbook for the kernel
    env = dict(os.environ, PYTHONPATH=kernel_path)
    for path in paths:
        with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
            seconds, error = run_notebook(nbformat.read(path, as_version=4), Path(tmp), cell_timeout, env)
        rows.append(dict(notebook=path.relative_to(ROOT).as_posix(), seconds=round(seconds, 1), error=error))
        print(f"| {rows[-1]['notebook']} | {seconds:.0f} | {error or ''} |", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--smoke", action="store_true", help="allowed without a GPU; tiny training, no notebooks "
                        "unless --notebooks names some")
    parser.add_argument("--notebooks", nargs="*", default=None,
                        help="PyTorch-only notebooks (default: every one under colab/pytorch/)")
    parser.add_argument("--skip-notebooks", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--cell-timeout", type=int, default=600)
    parser.add_argument("--throughput-args", default="--sizes 512x6,1024x12,2048x16 --batch 64 --seq-len 256",
                        help="arguments for benchmarks/gpu_throughput.py (chapter 6's Transformer)")
    parser.add_argument("--gpt-throughput-args", default="--model gpt --sizes 384x6,768x12 --batch 16 --seq-len 1024",
                        help="arguments for benchmarks/gpu_throughput.py on chapter 7's GPT")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available() and not args.smoke:
        print("gpu_check: no CUDA device here; run it on a GPU machine (or --smoke to check the script)")
        return 0
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    result = dict(device=device_info())
    print("device:", json.dumps(result["device"]), flush=True)
    result["checks"] = checks()
    for c in result["checks"]:
        print(f"check {c['name']}: {'ok' if c['ok'] else c['error']}", flush=True)
    result["training"] = training(args.smoke)
    for r in result["training"]:
        print(f"fit {r['precision']}: {r.get('loss') if r['ok'] else r['error']}", flush=True)
    if args.skip_notebooks or (args.smoke and args.notebooks is None):
        paths = []
    elif args.notebooks:
        paths = [Path(p).resolve() for p in args.notebooks]
    else:
        paths = sorted((ROOT / "colab" / "pytorch").glob("*/*.ipynb"))
    if paths:
        print("\n| notebook (PyTorch only) | seconds | first error |\n|---|---:|---|", flush=True)
    result["notebooks"] = notebooks(paths, args.cell_timeout)
    if not args.skip_throughput:
        import importlib.util
        spec = importlib.util.spec_from_file_location("gpu_throughput", ROOT / "benchmarks" / "gpu_throughput.py")
        gt = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(gt)
        extra = ["--smoke"] if args.smoke else []
        for key, argline, name in (("throughput", args.throughput_args, "gpu_throughput.json"),
                                   ("throughput_gpt", args.gpt_throughput_args, "gpu_throughput_gpt.json")):
            out = args.out.with_name(name)
            gt.main(argline.split() + extra + ["--out", str(out)])
            result[key] = json.loads(out.read_text())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, default=str) + "\n")
    print(f"\nwritten: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
