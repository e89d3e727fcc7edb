"""Chapter 7 scale: GPT character LMs of four sizes, each trained on the same number of tokens.

Same data, evaluation and recipe as `ch7_quality.py` (AdamW, warm-up then cosine decay, clipping), with
one change between the runs: the model's size (SIZES, 0.06 M to 3.2 M non-embedding parameters). Every
size reads TOKENS training characters (the same random windows, seed 0) with the same peak learning
rate, ch7_quality's (6e-3, tuned there for the 0.34 M size); the runs differ in nothing else. A run
writes results/ch7_scale/{size}_lr{rate}_{tokens}M_pos1.json (curve, final validation loss on the whole
split, parameters, compute, recipe) and keeps its checkpoint in runs/ (scratch). `report` fits the
runs of the current recipe and lists the others (pilots: at 2e-3 and 5 M tokens the xs and s sizes
were still leaving the bigram plateau, 2.434 and 2.197 nats/char, where 6e-3 gives s 1.87 at 5 M).
The position table starts at unit scale (COMMON's pos_std=1, GPT's default); the first runs of the four
sizes drew it at 0.02 (their records carry no _pos suffix) and are kept for the scale page's comparison.

    python benchmarks/ch7_scale.py train s        # one size (xs ~3-14 min ... l ~70-80 min on one thread)
    python benchmarks/ch7_scale.py train l --lr 3e-3           # one change to the recipe: another record,
    python benchmarks/ch7_scale.py train m --tokens 30000000   # listed by `report` but not fitted
    python benchmarks/ch7_scale.py train s --pos-std 0.02      # the position table of the first runs
    python benchmarks/ch7_scale.py report         # loss vs parameters: the table and the fitted power law

Parameters N count the weights of the blocks and the final LayerNorm, not the token and position
embeddings (Kaplan et al. 2020 found the law cleaner without them); compute is C = 6 N D for D
training tokens (a forward and a backward pass: 2 + 4 floating-point operations per weight per
token), the approximation of Kaplan et al., which leaves out attention's own O(T) work per token.
The fit is log L = log a - alpha log N by least squares over the sizes trained so far.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import ch7_quality  # noqa: E402
from llmbook.data import tokenized_shakespeare  # noqa: E402
from llmbook.torch.checkpoint import load_checkpoint  # noqa: E402
from llmbook.torch.gpt import GPT  # noqa: E402
from llmbook.torch.train import evaluate  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "ch7_scale"
RUNS = ROOT / "benchmarks" / "runs" / "ch7_scale"
# Width x depth; d_ff = 4 d_model, heads of 24-64 dimensions. Non-embedding parameters ~ 12 L D^2.
SIZES = {
    "xs": dict(d_model=48, num_heads=2, num_layers=2, d_ff=192),
    "s": dict(d_model=96, num_heads=4, num_layers=3, d_ff=384),
    "m": dict(d_model=160, num_heads=4, num_layers=4, d_ff=640),
    "l": dict(d_model=256, num_heads=4, num_layers=4, d_ff=1024),
}
COMMON = dict(max_len=256, dropout=0.0, pos_std=1.0)    # the runs before GPT's pos_std=1 default drew 0.02
TOKENS = 10_000_000                        # training characters per run (~2.6 passes over the training plays)
TRAIN = dict(ch7_quality.TRAIN, budget_min=None, patience=10 ** 9, eval_every=244)
TRAIN["steps"] = TOKENS // (TRAIN["batch_size"] * TRAIN["context"])


def run_name(size: str, tr: dict, pos_std: float) -> str:
    """The file stem of one size's run: its size, peak rate, training tokens and (when not 0.02) pos_std."""
    tokens = tr["steps"] * tr["batch_size"] * tr["context"]
    return f"{size}_lr{tr['lr']:g}_{tokens / 1e6:.3g}M" + ("" if pos_std == 0.02 else f"_pos{pos_std:g}")


def pos_std_of(run: dict) -> float:
    """A run's position-table std (records without one predate the key: 0.02)."""
    return run["model"].get("pos_std", 0.02)


def same_recipe(run: dict) -> bool:
    """Whether a run used the current TRAIN and COMMON's pos_std (JSON turns tuples into lists)."""
    return run["train"] == json.loads(json.dumps(TRAIN)) and pos_std_of(run) == COMMON["pos_std"]


def non_embedding_params(model: GPT) -> int:
    """Weights of the blocks and the final LayerNorm (the token and position tables left out)."""
    return sum(p.numel() for n, p in model.named_parameters() if not n.startswith(("embed", "pos")))


def fit_power_law(n: np.ndarray, loss: np.ndarray) -> dict:
    """Least squares of log L on log N: L = a N^-alpha; alpha's standard error when there are > 2 points."""
    x, y = np.log(np.asarray(n, float)), np.log(np.asarray(loss, float))
    if len(x) < 2:
        raise ValueError(f"a power law needs at least 2 sizes, got {len(x)}: train more sizes first")
    slope, intercept = np.polyfit(x, y, 1)
    se = None
    if len(x) > 2:
        resid = y - (slope * x + intercept)
        se = float(np.sqrt(resid @ resid / (len(x) - 2) / ((x - x.mean()) @ (x - x.mean()))))
    return dict(alpha=float(-slope), a=float(math.exp(intercept)), alpha_se=se, points=len(x))


def recipe(lr: float | None = None, tokens: int | None = None) -> dict:
    """TRAIN, with another peak rate and/or number of training characters."""
    tr = dict(TRAIN, lr=TRAIN["lr"] if lr is None else lr)
    if tokens is not None:
        if tokens < tr["batch_size"] * tr["context"] * tr["eval_every"]:
            raise ValueError(f"tokens={tokens:,} is less than one evaluation interval of "
                             f"{tr['batch_size'] * tr['context'] * tr['eval_every']:,} characters")
        tr["steps"] = tokens // (tr["batch_size"] * tr["context"])
    return tr


def train(size: str, lr: float | None = None, tokens: int | None = None, pos_std: float | None = None) -> dict:
    """Train one size on TOKENS characters (or `tokens`) at the recipe's peak rate (or `lr`); write its record."""
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    corpus = tokenized_shakespeare("char")
    cfg = dict(SIZES[size], **COMMON)
    if pos_std is not None:
        cfg["pos_std"] = pos_std
    tr = recipe(lr, tokens)
    RUNS.mkdir(parents=True, exist_ok=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = run_name(size, tr, cfg["pos_std"])
    ckpt, out = RUNS / f"{name}.npz", RESULTS / f"{name}.json"
    result = ch7_quality.train(corpus, cfg, tr, ckpt, out, None, ch7_quality.VAL_LIMIT)
    model = load_checkpoint(GPT, ckpt)
    tokens = result["history"][-1]["tokens"]
    n = non_embedding_params(model)
    val = evaluate(model, ch7_quality.eval_batches(corpus.validation))
    result.update(size=size, val_loss=val, non_embedding_params=n, tokens=tokens, flops=6 * n * tokens,
                  threads=int(os.environ["OMP_NUM_THREADS"]), framework="PyTorch")
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"{size}: {n:,} non-embedding parameters, validation {val:.4f} nats/char after {tokens:,} tokens")
    return result


def report() -> dict:
    """The table of the sizes trained so far and the power law fitted to them."""
    runs = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))]
    done = sorted((r for r in runs if "val_loss" in r), key=lambda r: r["non_embedding_params"])
    others = [r for r in done if not same_recipe(r)]
    runs = [r for r in done if same_recipe(r)]
    for r in others:
        print(f"other recipe (not fitted): {run_name(r['size'], r['train'], pos_std_of(r))}: "
              f"validation {r['val_loss']:.3f}")
    if not runs:
        sys.exit(f"no finished runs of the current recipe in {RESULTS}: python benchmarks/ch7_scale.py train xs")
    print("| size | d_model x layers | non-emb. params | all params | tokens | 6ND FLOPs | val nats/char | train min |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in runs:
        m = r["model"]
        print(f"| {r['size']} | {m['d_model']} x {m['num_layers']} | {r['non_embedding_params']:,} | "
              f"{r['params']:,} | {r['tokens']:,} | {r['flops']:.2e} | {r['val_loss']:.3f} | "
              f"{r['train_s'] / 60:.0f} |")
    fit = fit_power_law([r["non_embedding_params"] for r in runs], [r["val_loss"] for r in runs]) \
        if len(runs) > 1 else None
    if fit:
        se = "" if fit["alpha_se"] is None else f" ± {fit['alpha_se']:.3f}"
        print(f"\nL = {fit['a']:.2f} N^-{fit['alpha']:.3f}{se} over {fit['points']} sizes")
    return dict(runs=runs, fit=fit)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train one size")
    t.add_argument("size", choices=list(SIZES))
    t.add_argument("--lr", type=float, default=None, help=f"peak learning rate (default {TRAIN['lr']:g})")
    t.add_argument("--tokens", type=int, default=None, help=f"training characters (default {TOKENS:,})")
    t.add_argument("--pos-std", type=float, default=None,
                   help=f"the position table's starting std (default {COMMON['pos_std']:g}; GPT's default is 1)")
    sub.add_parser("report", help="the table and the fitted exponent")
    args = parser.parse_args()
    if args.cmd == "train":
        train(args.size, args.lr, args.tokens, args.pos_std)
    else:
        report()


if __name__ == "__main__":
    main()
