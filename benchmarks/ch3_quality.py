"""Chapters 2-3 quality table: character LMs, tanh RNN vs LSTM vs GRU x PyTorch vs TensorFlow, held-out plays.

Trains the checkpoints the chapter-2 and chapter-3 notebooks load
(llmbook/checkpoints/char_{rnn,lstm,gru}_{torch,tf}.npz), then prints the validation and test loss
(nats/char) and perplexity of each, with parameter counts and training time. The three cells get
about the same number of parameters (hidden sizes below) and the same data: `epochs` passes over the
training plays in windows of T characters (truncated BPTT: a fresh zero state per window, gradients
through at most T steps), one Adam optimizer whose learning rate drops to 1e-3 for the last
epoch, and global-norm gradient clipping. Every cell gets the same tuning effort: at seed 0 it is
trained at learning rates a factor 2 apart, starting from START_GRID, and the grid grows by one rate
beyond its edge until the rate with the lowest validation loss is interior (a worse rate tried on
either side; the test split is never used to choose). The kept rate is then trained again at the
other SEEDS, and the table reports their mean and standard deviation beside the seed-0 checkpoint.

Every trial run leaves one record, results/ch3_grid/{cell}_{framework}_lr{rate}_s{seed}.json (its
losses, history, time and recipe), so that trials run apart (in parallel, on other days) add up:

    python benchmarks/ch3_quality.py --todo                 # the trials still missing, one command each
    python benchmarks/ch3_quality.py --cells rnn --frameworks torch --lr 1.5e-3 --seed 0 --checkpoint-dir /tmp/ch3/a
    python benchmarks/ch3_quality.py --select               # choose from the records, write ch3_quality.json
    python benchmarks/ch3_quality.py                        # train every missing trial in turn, then --select
    python benchmarks/ch3_quality.py --skip-train           # evaluate the committed checkpoints (~1 min)
    python benchmarks/ch3_quality.py --skip-train --context # + how far back each checkpoint reads

One trial takes 7-17 min on one or two threads (3 epochs).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
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
TRIALS = ROOT / "benchmarks" / "results" / "ch3_grid"    # one record per trial run
# Hidden sizes chosen for ~355k parameters each (embeddings and output layer included).
HIDDEN = {"rnn": 530, "lstm": 256, "gru": 300}
MODEL = dict(embed_dim=64, num_layers=1, dropout=0.0)
# Initialisation (llmbook's StackedRNN, both frameworks): U(-1/sqrt(H), 1/sqrt(H)) for every weight and
# bias, as torch.nn. `--forget-bias 1` instead starts the LSTM's forget gate at bias 1 (Gers et al. 2000;
# Keras' unit_forget_bias): tried, and worse at this budget (chapter 3, "The learning rate decides the LSTM's rank").
INIT = dict(uniform="U(-1/sqrt(H), 1/sqrt(H))", lstm_forget_bias=None)
TRAIN = dict(batch_size=64, bptt=100, last_epoch_lr=1e-3, clip=1.0, epochs=3)
# The learning rates (before the last epoch) every cell is tried at first, at seed 0; the grid then
# grows by a factor 2 beyond whichever edge holds the best validation loss, until the best is interior.
START_GRID = (3e-3, 6e-3)
# The kept rate is trained at every one of these seeds (seed 0 is the grid's own run and the shipped checkpoint).
SEEDS = (0, 1, 2)
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
        from llmbook.tf import set_threads, tensorflow as tf
        set_threads(threads)                  # settable once, before TF runs anything
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
        forget_bias: float | None = None, lr: float | None = None, seed: int = 0) -> dict:
    """Train (or load) one character LM and evaluate it from its saved float16 checkpoint."""
    CharRNN, fit, evaluate, save, load, count, make_adam, set_lr = framework_api(framework)
    config = dict(vocab_size=len(corpus.vocab), hidden_dim=HIDDEN[cell], cell=cell, **MODEL)
    path = ckpt / checkpoint_name(cell, framework)
    seconds, history = None, []
    if train:
        llmbook.seed(seed)
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
            hist = fit(model, Batches(x, y, TRAIN["batch_size"], seed=seed + epoch), epochs=1,
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


def recipe(cell: str, epochs: int, forget_bias: float | None = None) -> dict:
    """What must match between the trials of one cell: everything but the learning rate and the seed."""
    return dict(hidden=HIDDEN[cell], model=MODEL, init=dict(INIT, lstm_forget_bias=forget_bias), eval=EVAL,
                train=dict(TRAIN, epochs=epochs))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def where(path: Path) -> str:
    """A path as a record keeps it: relative to the repository when inside it."""
    path = path.resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def trial_path(cell: str, fw: str, lr: float, seed: int, trials: Path = TRIALS) -> Path:
    return trials / f"{cell}_{fw}_lr{lr:g}_s{seed}.json"


def write_trial(row: dict, fw: str, seed: int, epochs: int, ckpt: Path, trials: Path = TRIALS) -> Path:
    """Record one finished trial run (its checkpoint stays in its scratch folder; the record names its hash)."""
    trials.mkdir(parents=True, exist_ok=True)
    path = ckpt / checkpoint_name(row["cell"], fw)
    record = dict(cell=row["cell"], framework=fw, lr=row["lr"], seed=seed, val_loss=row["val_loss"],
                  test_loss=row["test_loss"], params=row["params"], train_s=row["train_s"], history=row["history"],
                  threads=int(os.environ["OMP_NUM_THREADS"]), recipe=recipe(row["cell"], epochs),
                  checkpoint=where(path), checkpoint_sha256=sha256(path))
    out = trial_path(row["cell"], fw, row["lr"], seed, trials)
    out.write_text(json.dumps(record, indent=1) + "\n")
    return out


def read_trials(cells, frameworks, epochs: int, trials: Path = TRIALS) -> dict:
    """{(cell, fw): {(lr, seed): record}} from the records of the current recipe; other recipes are an error."""
    found = {}
    for f in sorted(trials.glob("*.json")) if trials.exists() else []:
        r = json.loads(f.read_text())
        if r["cell"] not in cells or r["framework"] not in frameworks:
            continue
        if r["recipe"] != recipe(r["cell"], epochs):
            raise ValueError(f"{f.name} was trained with another recipe than this script's ({epochs} epochs): "
                             f"{json.dumps(r['recipe'])}; move it out of {trials} or retrain it")
        found.setdefault((r["cell"], r["framework"]), {})[r["lr"], r["seed"]] = r
    return found


def grid_state(runs: dict) -> tuple[float | None, list[float]]:
    """(the best seed-0 rate once it is interior, else None; the seed-0 rates still to train)."""
    rates = sorted(lr for lr, seed in runs if seed == 0)
    missing = [lr for lr in START_GRID if lr not in rates]
    if missing:
        return None, missing
    for a, b in zip(rates, rates[1:]):
        if abs(b / a - 2) > 1e-9:
            raise ValueError(f"the grid's rates {rates} are not a factor 2 apart")
    best = min(rates, key=lambda lr: runs[lr, 0]["val_loss"])
    if best == rates[0]:
        return None, [best / 2]
    if best == rates[-1]:
        return None, [best * 2]
    return best, []


def todo(cells, frameworks, epochs: int, trials: Path = TRIALS) -> list[tuple[str, str, float, int]]:
    """The trials still missing: (cell, fw, lr, seed), seed-0 grid points first, then the other seeds."""
    found = read_trials(cells, frameworks, epochs, trials)
    out = []
    for cell in cells:
        for fw in frameworks:
            runs = found.get((cell, fw), {})
            best, missing = grid_state(runs)
            out += [(cell, fw, lr, 0) for lr in missing]
            if best is not None:
                out += [(cell, fw, best, s) for s in SEEDS if (best, s) not in runs]
    return sorted(out, key=lambda t: t[3] > 0)


def select(cells, frameworks, epochs: int, ckpt: Path = CKPT, trials: Path = TRIALS) -> dict:
    """Per (cell, framework): the interior best seed-0 rate, its checkpoint shipped to `ckpt`, and its seeds.

    The grid and seeds must be complete (`todo` is empty for them); the chosen checkpoint is copied from
    the trial's scratch folder when the shipped one is not already it (same SHA-256).
    """
    found = read_trials(cells, frameworks, epochs, trials)
    chosen = {}
    for cell in cells:
        for fw in frameworks:
            runs = found.get((cell, fw), {})
            best, missing = grid_state(runs)
            seeds = [s for s in SEEDS if (best, s) not in runs] if best is not None else []
            if missing or seeds:
                raise ValueError(f"{cell} {fw}: the grid or the seeds are incomplete (train lr {missing or best}, "
                                 f"seeds {seeds or [0]}; `--todo` lists the commands)")
            kept = runs[best, 0]
            dst = ckpt / checkpoint_name(cell, fw)
            if not dst.exists() or sha256(dst) != kept["checkpoint_sha256"]:
                src = ROOT / (kept["checkpoint"] or "no checkpoint recorded")
                if not src.is_file() or sha256(src) != kept["checkpoint_sha256"]:
                    raise FileNotFoundError(f"{cell} {fw} lr {best:g}: neither {dst} nor {src} is the checkpoint its "
                                            f"record names; retrain it with --lr {best:g} --seed 0")
                shutil.copyfile(src, dst)
            vals = [runs[best, s]["val_loss"] for s in SEEDS]
            tests = [runs[best, s]["test_loss"] for s in SEEDS]
            chosen[cell, fw] = dict(
                lr=best, val_loss=kept["val_loss"], train_s=kept["train_s"], history=kept["history"],
                grid=[dict(lr=lr, val_loss=r["val_loss"], test_loss=r["test_loss"], history=r["history"],
                           train_s=r["train_s"]) for (lr, s), r in sorted(runs.items()) if s == 0],
                seeds=[dict(seed=s, val_loss=runs[best, s]["val_loss"], test_loss=runs[best, s]["test_loss"],
                            train_s=runs[best, s]["train_s"]) for s in SEEDS],
                val_mean=statistics.mean(vals), val_std=statistics.stdev(vals),
                test_mean=statistics.mean(tests), test_std=statistics.stdev(tests))
    return chosen


def train_trial(args, corpus, cell: str, fw: str, lr: float, seed: int, ckpt: Path) -> dict:
    """Train one cell and framework at one learning rate and seed into `ckpt`; record it (not forget-bias trials)."""
    ckpt.mkdir(parents=True, exist_ok=True)
    row = run(cell, fw, corpus, train=True, epochs=args.epochs, ckpt=ckpt, forget_bias=args.forget_bias, lr=lr,
              seed=seed)
    if args.forget_bias is None:
        print(f"written {write_trial(row, fw, seed, args.epochs, ckpt)}", flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-train", action="store_true", help="evaluate the committed checkpoints only")
    parser.add_argument("--cells", nargs="+", default=list(HIDDEN), choices=list(HIDDEN))
    parser.add_argument("--frameworks", nargs="+", default=["torch", "tf"], choices=["torch", "tf"])
    parser.add_argument("--epochs", type=int, default=TRAIN["epochs"])
    parser.add_argument("--checkpoint-dir", type=Path, default=CKPT,
                        help="where to write/read the chosen checkpoints (a scratch folder for trial runs)")
    parser.add_argument("--lr", type=float, default=None,
                        help="train one trial: this learning rate (before the last epoch), into --checkpoint-dir")
    parser.add_argument("--seed", type=int, default=0, help="the trial's seed (initialisation and batch order)")
    parser.add_argument("--todo", action="store_true", help="print the trials still missing, one command per line")
    parser.add_argument("--select", action="store_true",
                        help="choose, per cell and framework, the best-on-validation rate among the records, ship "
                             "its seed-0 checkpoint to --checkpoint-dir, and record the table with its seeds")
    parser.add_argument("--forget-bias", type=float, default=None,
                        help="start the LSTM's forget-gate bias at this value (a trial: not recorded in the grid)")
    parser.add_argument("--context", action="store_true",
                        help="also score the PyTorch checkpoints with 64, 32 and 16 characters of guaranteed context")
    args = parser.parse_args()
    trial = args.lr is not None or args.forget_bias is not None
    if trial and args.checkpoint_dir == CKPT:
        parser.error("--lr and --forget-bias train trials: give a scratch --checkpoint-dir, not the shipped checkpoints' "
                     "folder (a full run without --lr trains every missing trial and chooses)")
    if (args.select or args.todo) and (trial or args.skip_train):
        parser.error("--select and --todo read the trial records: drop --lr, --forget-bias and --skip-train")
    if args.todo:
        for cell, fw, lr, seed in todo(args.cells, args.frameworks, args.epochs):
            print(f"--cells {cell} --frameworks {fw} --lr {lr:g} --seed {seed}")
        return
    args.checkpoint_dir.mkdir(parents=True, exist_ok=True)
    corpus = tokenized_shakespeare("char")
    if trial:                                                # one trial: train, record, report, stop
        lr = args.lr if args.lr is not None else START_GRID[0]
        rows = [train_trial(args, corpus, cell, fw, lr, args.seed, args.checkpoint_dir)
                for cell in args.cells for fw in args.frameworks]
        print_table(rows, corpus, args)
        return
    chosen = None
    if not args.skip_train:                                  # every missing trial, then the choice
        scratch = ROOT / "benchmarks" / "runs" / "ch3"
        while steps := todo(args.cells, args.frameworks, args.epochs):
            cell, fw, lr, seed = steps[0]
            train_trial(args, corpus, cell, fw, lr, seed, scratch / f"{cell}_{fw}_lr{lr:g}_s{seed}")
        chosen = select(args.cells, args.frameworks, args.epochs, args.checkpoint_dir)
    rows = []
    for cell in args.cells:
        for fw in args.frameworks:
            row = run(cell, fw, corpus, train=False, epochs=args.epochs, ckpt=args.checkpoint_dir)
            if chosen is not None:                           # the training facts of the chosen grid point
                c = chosen[cell, fw]
                if abs(c["val_loss"] - row["val_loss"]) > 1e-6:
                    raise RuntimeError(f"{cell} {fw}: the copied checkpoint scores {row['val_loss']:.6f}, its grid "
                                       f"point recorded {c['val_loss']:.6f}")
                row.update({k: v for k, v in c.items() if k != "val_loss"})
            rows.append(row)
    if chosen is None and RESULTS.exists():                  # evaluation only: keep the recorded training facts
        old = {(r["cell"], r["framework"]): r for r in json.loads(RESULTS.read_text())["rows"]}
        keep = ("lr", "train_s", "history", "grid", "seeds", "val_mean", "val_std", "test_mean", "test_std")
        for row in rows:
            prev = old.get((row["cell"], row["framework"]), {})
            row.update({k: prev[k] for k in keep if k in prev})
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
        RESULTS.write_text(json.dumps(dict(hidden=HIDDEN, model=MODEL, init=INIT,
                                           train=dict(TRAIN, epochs=args.epochs, start_grid=START_GRID, seeds=SEEDS),
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
    seeded = [r for r in rows if r.get("seeds")]
    if seeded:
        print(f"\nAt the kept rate, seeds {', '.join(map(str, SEEDS))}: mean ± standard deviation (nats/char):")
        for r in seeded:
            print(f"  {r['cell'].upper():>4} {r['framework']:<10} validation {r['val_mean']:.3f} ± {r['val_std']:.3f}"
                  f"   test {r['test_mean']:.3f} ± {r['test_std']:.3f}")
    for cell in args.cells:
        pair = [r["val_loss"] for r in rows if r["cell"] == cell]
        if len(pair) == 2:
            print(f"{cell.upper()}: PyTorch vs TensorFlow validation loss {100 * abs(pair[0] / pair[1] - 1):.1f} % apart")


if __name__ == "__main__":
    main()
