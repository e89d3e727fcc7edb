"""Chapters 2-3 quality table: character LMs, tanh RNN vs LSTM vs GRU x PyTorch vs TensorFlow, held-out plays.

Trains the checkpoints the chapter-2 and chapter-3 notebooks load
(llmbook/checkpoints/char_{rnn,lstm,gru}_{torch,tf}.npz), then prints the validation and test loss
(nats/char) and perplexity of each, with parameter counts and training time. The three cells get
about the same number of parameters (hidden sizes below) and the same data: `epochs` passes over the
training plays in windows of T characters (truncated BPTT: a fresh zero state per window, gradients
through at most T steps), one Adam optimizer whose learning rate drops to 1e-3 for the last
epoch, and global-norm gradient clipping. Every cell gets the same tuning effort: each is trained at
every learning rate of LR_GRID and keeps the one with the lowest validation loss (the test split is
never used to choose).

    python benchmarks/ch3_quality.py               # train the grid: 3 cells x 2 frameworks x 2 rates (~2 h, 2 CPU cores)
    python benchmarks/ch3_quality.py --skip-train  # evaluate the committed checkpoints (~1 min)
    python benchmarks/ch3_quality.py --cells rnn --frameworks tf --lr 6e-3 --checkpoint-dir /tmp/ch3/lr6   # one grid point
    python benchmarks/ch3_quality.py --select /tmp/ch3/lr3 /tmp/ch3/lr6   # choose among grid points trained apart
    python benchmarks/ch3_quality.py --skip-train --context    # + how far back each checkpoint reads
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")

import numpy as np  # noqa: E402

import llmbook  # noqa: E402
from llmbook.data import Batches, tokenized_shakespeare  # noqa: E402
from llmbook.data.batching import next_token_windows  # noqa: E402
from llmbook.metrics import perplexity  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CKPT = ROOT / "llmbook" / "checkpoints"
RESULTS = ROOT / "benchmarks" / "results" / "ch3_quality.json"
# Hidden sizes chosen for ~355k parameters each (embeddings and output layer included).
HIDDEN = {"rnn": 530, "lstm": 256, "gru": 300}
MODEL = dict(embed_dim=64, num_layers=1, dropout=0.0)
# Initialisation (llmbook's StackedRNN, both frameworks): U(-1/sqrt(H), 1/sqrt(H)) for every weight and
# bias, as torch.nn. `--forget-bias 1` instead starts the LSTM's forget gate at bias 1 (Gers et al. 2000;
# Keras' unit_forget_bias): tried, and worse at this budget (chapter 3, "Why not the LSTM, and what we tried").
INIT = dict(uniform="U(-1/sqrt(H), 1/sqrt(H))", lstm_forget_bias=None)
TRAIN = dict(batch_size=64, bptt=100, lr=3e-3, last_epoch_lr=1e-3, clip=1.0, epochs=3, seed=0)
# The learning rates (before the last epoch) every cell is tried at; each keeps its best on validation.
LR_GRID = (3e-3, 6e-3)
# Evaluation: windows of 256 characters overlapping by 64; those 64 are read as context, not
# scored, so every scored character has at least 64 characters of history.
EVAL = dict(length=256, burn_in=64)


def eval_batches(ids: np.ndarray) -> Batches:
    """The held-out stream as scored windows (see EVAL)."""
    x, y = next_token_windows(ids, EVAL["length"], stride=EVAL["length"] - EVAL["burn_in"], burn_in=EVAL["burn_in"])
    return Batches(x, y, 256, shuffle=False)


def checkpoint_name(cell: str, framework: str) -> str:
    return f"char_{cell}_{framework}.npz"


def framework_api(framework: str):
    """(CharRNN, fit, evaluate, save, load, n_params, make_adam, set_lr) of one framework."""
    threads = int(os.environ["OMP_NUM_THREADS"])
    if framework == "torch":
        import torch
        torch.set_num_threads(threads)
        from llmbook.torch.checkpoint import load_checkpoint, save_checkpoint
        from llmbook.torch.rnn import CharRNN
        from llmbook.torch.train import evaluate, fit
        count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
        make_adam = lambda m, lr: torch.optim.Adam(m.parameters(), lr=lr)  # noqa: E731

        def set_lr(opt, lr):
            for group in opt.param_groups:
                group["lr"] = lr
    else:
        import keras
        from llmbook.tf import tensorflow as tf
        if not getattr(framework_api, "tf_threads_set", False):   # settable once, before TF runs anything
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
            framework_api.tf_threads_set = True
        from llmbook.tf.checkpoint import load_checkpoint, save_checkpoint
        from llmbook.tf.rnn import CharRNN
        tf.get_logger().setLevel("ERROR")     # evaluate() traces a tf.function per call: no retracing advice
        from llmbook.tf.train import evaluate, fit
        count = lambda m: sum(int(np.prod(w.shape)) for w in m.weights)  # noqa: E731
        make_adam = lambda m, lr: keras.optimizers.Adam(learning_rate=lr, epsilon=1e-8)  # noqa: E731, as fit's default

        def set_lr(opt, lr):
            opt.learning_rate.assign(lr)
    return CharRNN, fit, evaluate, save_checkpoint, load_checkpoint, count, make_adam, set_lr


def set_forget_bias(model, framework: str, value: float) -> None:
    """Start a one-layer CharRNN LSTM's forget gate (block 2 of i, f, g|c, o) at bias `value`, in either framework."""
    H = model.rnn.hidden_dim if framework == "tf" else model.rnn.rnn.hidden_size
    if framework == "torch":
        import torch
        with torch.no_grad():
            model.rnn.rnn.bias_ih_l0[H:2 * H] = value        # (H,) PyTorch's two biases sum to `value`
            model.rnn.rnn.bias_hh_l0[H:2 * H] = 0.0          # (H,)
    else:
        bias = model.rnn.rnn[0].cell.bias.numpy()            # (4H,)
        bias[H:2 * H] = value
        model.rnn.rnn[0].cell.bias.assign(bias)


def run(cell: str, framework: str, corpus, train: bool, epochs: int, ckpt: Path = CKPT,
        forget_bias: float | None = None, lr: float | None = None) -> dict:
    """Train (or load) one character LM and evaluate it from its saved float16 checkpoint."""
    CharRNN, fit, evaluate, save, load, count, make_adam, set_lr = framework_api(framework)
    config = dict(vocab_size=len(corpus.vocab), hidden_dim=HIDDEN[cell], cell=cell, **MODEL)
    path = ckpt / checkpoint_name(cell, framework)
    seconds, history = None, []
    if train:
        llmbook.seed(TRAIN["seed"])
        model = CharRNN(**config)
        if forget_bias is not None and cell == "lstm":
            set_forget_bias(model, framework, forget_bias)
        opt = make_adam(model, lr)                     # one optimizer for all epochs
        best, seconds = np.inf, 0.0
        for epoch in range(epochs):
            if epoch == epochs - 1 and epochs > 1:
                set_lr(opt, TRAIN["last_epoch_lr"])
            # a different cut of the stream into windows each epoch
            x, y = next_token_windows(corpus.train, TRAIN["bptt"], offset=(epoch * 37) % TRAIN["bptt"])
            hist = fit(model, Batches(x, y, TRAIN["batch_size"], seed=TRAIN["seed"] + epoch), epochs=1,
                       optimizer=opt, clip=TRAIN["clip"], progress=False)
            seconds += hist["seconds"][0]
            val = evaluate(model, eval_batches(corpus.validation))
            history.append(dict(epoch=epoch + 1, train_loss=hist["loss"][0], val_loss=val, seconds=hist["seconds"][0]))
            print(f"  {cell:>4} {framework:>5} epoch {epoch + 1}: train {hist['loss'][0]:.3f}  val {val:.3f} nats/char "
                  f"({hist['seconds'][0]:.0f} s, {len(x) * TRAIN['bptt'] / hist['seconds'][0]:,.0f} chars/s)", flush=True)
            if val < best:                 # keep the best epoch on validation
                best = val
                save(model, path, **config)
    model = load(CharRNN, path)
    val, test = evaluate(model, eval_batches(corpus.validation)), evaluate(model, eval_batches(corpus.test))
    return dict(cell=cell, framework="PyTorch" if framework == "torch" else "TensorFlow", hidden=HIDDEN[cell],
                lr=lr, params=count(model), val_loss=val, val_ppl=perplexity(val), test_loss=test, test_ppl=perplexity(test),
                train_s=seconds, history=history, checkpoint_kb=path.stat().st_size / 1024)


def cross_check(corpus, ckpt: Path = CKPT) -> list[dict]:
    """Each PyTorch checkpoint evaluated in TensorFlow through llmbook.parity: the same loss."""
    from llmbook.parity import torch_to_tf
    TorchLM, _, _, _, torch_load, *_ = framework_api("torch")
    TFLM, _, tf_evaluate, *_ = framework_api("tf")
    out = []
    for cell in HIDDEN:
        path = ckpt / checkpoint_name(cell, "torch")
        if not path.exists():
            continue
        t = torch_load(TorchLM, path)
        f = TFLM(vocab_size=len(corpus.vocab), hidden_dim=HIDDEN[cell], cell=cell, **MODEL)
        torch_to_tf(t, f)
        out.append(dict(cell=cell, val_loss_in_tf=tf_evaluate(f, eval_batches(corpus.validation))))
    return out


def context_check(corpus, cells, ckpt: Path = CKPT, burn_ins=(64, 32, 16)) -> dict:
    """Validation loss of each PyTorch checkpoint when every scored character is guaranteed only `burn_in` of context.

    Windows of 2 x burn_in characters, the second half scored: the loss rises as the guarantee
    shrinks below the distance the model actually reads back.
    """
    TorchLM, _, evaluate, _, load, *_ = framework_api("torch")
    out = {}
    for cell in cells:
        model = load(TorchLM, ckpt / checkpoint_name(cell, "torch"))
        for b in burn_ins:
            x, y = next_token_windows(corpus.validation, 2 * b, stride=b, burn_in=b)
            out[cell, b] = evaluate(model, Batches(x, y, 256, shuffle=False))
    return out


def recipe(result: dict) -> dict:
    """What must match between grid points for a fair choice: everything but the learning rate."""
    return dict(hidden=result["hidden"], model=result["model"], init=result.get("init"), eval=result["eval"],
                train={k: v for k, v in result["train"].items() if k != "lr"})


def select(dirs: list[Path], cells, frameworks, ckpt: Path = CKPT) -> dict:
    """Per (cell, framework), the grid point with the lowest validation loss among trial folders; copies its checkpoint.

    Each folder holds the checkpoints and results JSON that one `--lr` run wrote (ch3_quality_partial.json).
    """
    candidates, recipes = {}, {}
    for d in dirs:
        files = [d / "ch3_quality_partial.json", d / RESULTS.name]
        found = next((f for f in files if f.exists()), None)
        if found is None:
            raise FileNotFoundError(f"{d} has no ch3_quality_partial.json: train a grid point there first with "
                                    f"--lr RATE --checkpoint-dir {d}")
        result = json.loads(found.read_text())
        recipes[str(d)] = recipe(result)
        for row in result["rows"]:
            fw = "torch" if row["framework"] == "PyTorch" else "tf"
            lr = row.get("lr", result["train"]["lr"])
            candidates.setdefault((row["cell"], fw), []).append(dict(row, lr=lr, dir=d))
    if len({json.dumps(r, sort_keys=True) for r in recipes.values()}) > 1:
        raise ValueError("the trial folders were trained with different recipes (not only the learning rate): "
                         + json.dumps(recipes, indent=1))
    chosen = {}
    for cell in cells:
        for fw in frameworks:
            runs = candidates.get((cell, fw), [])
            rates = sorted(r["lr"] for r in runs)
            if rates != sorted(LR_GRID):
                raise ValueError(f"{cell} {fw}: the folders hold learning rates {rates}, the grid is {list(LR_GRID)}")
            best = min(runs, key=lambda r: r["val_loss"])
            src = best["dir"] / checkpoint_name(cell, fw)
            if src.resolve() != (ckpt / checkpoint_name(cell, fw)).resolve():
                shutil.copyfile(src, ckpt / checkpoint_name(cell, fw))
            chosen[cell, fw] = dict(best, grid=[dict(lr=r["lr"], val_loss=r["val_loss"], test_loss=r["test_loss"],
                                                     history=r["history"], train_s=r["train_s"])
                                                for r in sorted(runs, key=lambda r: r["lr"])])
    return chosen


def train_grid_point(args, corpus, lr: float, ckpt: Path) -> list[dict]:
    """Train every requested cell and framework at one learning rate into `ckpt`; write its partial results there."""
    ckpt.mkdir(parents=True, exist_ok=True)
    rows = [run(cell, fw, corpus, train=True, epochs=args.epochs, ckpt=ckpt, forget_bias=args.forget_bias, lr=lr)
            for cell in args.cells for fw in args.frameworks]
    init = dict(INIT, lstm_forget_bias=args.forget_bias)
    (ckpt / "ch3_quality_partial.json").write_text(json.dumps(
        dict(hidden=HIDDEN, model=MODEL, init=init, train=dict(TRAIN, lr=lr, epochs=args.epochs), eval=EVAL, rows=rows),
        indent=1) + "\n")
    print(f"written {ckpt / 'ch3_quality_partial.json'}", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-train", action="store_true", help="evaluate the committed checkpoints only")
    parser.add_argument("--cells", nargs="+", default=list(HIDDEN), choices=list(HIDDEN))
    parser.add_argument("--frameworks", nargs="+", default=["torch", "tf"], choices=["torch", "tf"])
    parser.add_argument("--epochs", type=int, default=TRAIN["epochs"])
    parser.add_argument("--checkpoint-dir", type=Path, default=CKPT,
                        help="where to write/read the chosen checkpoints (a scratch folder for trial runs)")
    parser.add_argument("--lr", type=float, default=None,
                        help="train one grid point: this learning rate (before the last epoch), into --checkpoint-dir")
    parser.add_argument("--select", type=Path, nargs="+", default=None, metavar="DIR",
                        help="choose, per cell and framework, the best-on-validation grid point among these "
                             "folders (each trained with --lr), copy it to --checkpoint-dir, and record the table")
    parser.add_argument("--grid-dir", type=Path, default=None,
                        help="where a full run keeps every grid point (default: a temporary folder)")
    parser.add_argument("--forget-bias", type=float, default=None,
                        help="start the LSTM's forget-gate bias at this value (default: like every other bias)")
    parser.add_argument("--context", action="store_true",
                        help="also score the PyTorch checkpoints with 64, 32 and 16 characters of guaranteed context")
    args = parser.parse_args()
    trial = args.lr is not None or args.forget_bias is not None
    if trial and args.checkpoint_dir == CKPT:
        parser.error("--lr and --forget-bias train trials: give a scratch --checkpoint-dir, not the shipped checkpoints' "
                     "folder (a full run without --lr trains the whole grid and chooses)")
    if args.select and (trial or args.skip_train):
        parser.error("--select chooses among folders already trained: drop --lr, --forget-bias and --skip-train")
    args.checkpoint_dir.mkdir(parents=True, exist_ok=True)
    corpus = tokenized_shakespeare("char")
    if args.lr is not None:                                  # one grid point (or a trial): train, report, stop
        rows = train_grid_point(args, corpus, args.lr, args.checkpoint_dir)
        print_table(rows, corpus, args)
        return
    chosen = None
    if not args.skip_train:                                  # the whole grid, then the choice
        if args.select is None:
            grid = args.grid_dir or Path(tempfile.mkdtemp(prefix="ch3_grid_"))
            args.select = [grid / f"lr{lr:g}" for lr in LR_GRID]
            for lr, d in zip(LR_GRID, args.select):
                train_grid_point(args, corpus, lr, d)
        chosen = select(args.select, args.cells, args.frameworks, args.checkpoint_dir)
    rows = []
    for cell in args.cells:
        for fw in args.frameworks:
            row = run(cell, fw, corpus, train=False, epochs=args.epochs, ckpt=args.checkpoint_dir)
            if chosen is not None:                           # the training facts of the chosen grid point
                c = chosen[cell, fw]
                if abs(c["val_loss"] - row["val_loss"]) > 1e-6:
                    raise RuntimeError(f"{cell} {fw}: the copied checkpoint scores {row['val_loss']:.6f}, its grid "
                                       f"point recorded {c['val_loss']:.6f}")
                row.update(lr=c["lr"], train_s=c["train_s"], history=c["history"], grid=c["grid"])
            rows.append(row)
    if chosen is None and RESULTS.exists():                  # evaluation only: keep the recorded training facts
        old = {(r["cell"], r["framework"]): r for r in json.loads(RESULTS.read_text())["rows"]}
        for row in rows:
            prev = old.get((row["cell"], row["framework"]), {})
            row.update({k: prev[k] for k in ("lr", "train_s", "history", "grid") if k in prev})
    print_table(rows, corpus, args)
    cross = cross_check(corpus, args.checkpoint_dir)
    for c in cross:
        print(f"{c['cell'].upper()}: PyTorch checkpoint evaluated in TensorFlow: val loss {c['val_loss_in_tf']:.3f}")
    if args.context:
        ctx = context_check(corpus, args.cells, args.checkpoint_dir)
        print("\nPyTorch validation loss with at least 64 / 32 / 16 characters of context:")
        for cell in args.cells:
            print(f"  {cell.upper():>4}: " + " / ".join(f"{ctx[cell, b]:.4f}" for b in (64, 32, 16)))
    full = args.checkpoint_dir == CKPT and set(args.cells) == set(HIDDEN) and set(args.frameworks) == {"torch", "tf"}
    if chosen is not None and full:
        train = {k: v for k, v in TRAIN.items() if k != "lr"}
        RESULTS.write_text(json.dumps(dict(hidden=HIDDEN, model=MODEL, init=INIT, train=dict(train, lr_grid=LR_GRID),
                                           eval=EVAL, rows=rows, cross=cross), indent=1) + "\n")
        print(f"\nwritten {RESULTS}")


def print_table(rows: list[dict], corpus, args) -> None:
    """The markdown table of validation/test loss per cell and framework, with the learning rate each kept."""
    n_val, n_test = (int((eval_batches(s).y >= 0).sum()) for s in (corpus.validation, corpus.test))
    print(f"\nCharacter LMs on held-out plays (V = {len(corpus.vocab)}; {n_val:,} validation / {n_test:,} test "
          f"characters scored; {args.epochs} epochs of {len(corpus.train):,} training characters; "
          f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']})\n")
    print("| cell | framework | hidden | parameters | learning rate | val loss (nats/char) | val PPL | test loss | "
          "test PPL | train s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        t = "" if r.get("train_s") is None else f"{r['train_s']:.0f}"
        lr = "" if r.get("lr") is None else f"{r['lr']:g}"
        print(f"| {r['cell'].upper()} | {r['framework']} | {r['hidden']} | {r['params']:,} | {lr} | {r['val_loss']:.3f} | "
              f"{r['val_ppl']:.2f} | {r['test_loss']:.3f} | {r['test_ppl']:.2f} | {t} |")
    grid = [r for r in rows if r.get("grid")]
    if grid:
        print("\nValidation loss at each learning rate of the grid (the lowest is kept):")
        for r in grid:
            print(f"  {r['cell'].upper():>4} {r['framework']:<10} " +
                  "  ".join(f"{g['lr']:g}: {g['val_loss']:.3f}" for g in r["grid"]))
    for cell in args.cells:
        pair = [r["val_loss"] for r in rows if r["cell"] == cell]
        if len(pair) == 2:
            print(f"{cell.upper()}: PyTorch vs TensorFlow validation loss {100 * abs(pair[0] / pair[1] - 1):.1f} % apart")


if __name__ == "__main__":
    main()
