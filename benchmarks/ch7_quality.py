"""Chapter 7 quality: a decoder-only Transformer (GPT) character LM on chapter 3's held-out plays.

Same data, tokenisation and evaluation as `ch3_quality.py` (character vocabulary of the training
plays; validation and test scored in windows of 256 characters overlapping by 64, every scored
character with at least 64 characters of history), at about chapter 3's parameter budget (~355k).
Training: random windows of `context` characters from the training stream, AdamW, linear warmup then
cosine decay to a tenth of the peak rate over `steps`, global-norm clipping. The validation loss is
measured every `eval_every` steps; the checkpoint (llmbook/checkpoints/gpt_char_torch.npz, float16)
and the results JSON are written whenever it improves; training stops after `patience` evaluations
without improvement or at the end of the schedule.

    python benchmarks/ch7_quality.py                     # the recipe below (~60 min on one thread)
    python benchmarks/ch7_quality.py --skip-train        # evaluate the committed checkpoint (~1 min)
    python benchmarks/ch7_quality.py --pilot 240 --lr 6e-3 --out /tmp/p1   # a 4-minute pilot into a scratch folder
    python benchmarks/ch7_quality.py --framework tf      # TensorFlow replays the PyTorch run (~40 min)
    python benchmarks/ch7_quality.py --large             # 835 k parameters, both cores, one hour

`--large` is the larger CPU run: `LARGE` sizes (d_model 128, 4 layers), two threads, a 54-minute
budget and an evaluation every 500 steps, so that training and its evaluations fit in one hour. It
writes llmbook/checkpoints/gpt_char_large_torch.npz and results/ch7_quality_large.json (with
`--framework tf`: its replay, gpt_char_large_tf_trained.npz and ch7_quality_large_tf.json).

A TensorFlow replay can pause and resume: after each evaluation it keeps its whole state (weights,
AdamW moments, the window generator, the log, the best checkpoint so far) in
benchmarks/state/<checkpoint>.state, the one file to commit while a run is paused. `--pause-after
MIN` stops it at the first evaluation after MIN minutes of wall clock; the same command without it
resumes from the state file (a run killed between evaluations resumes from the last one) and
deletes the file when the run is finished. The resumed run takes exactly the steps it would have.

The TensorFlow run (`--framework tf`, llmbook.tf.train.fit) replays the PyTorch run, so that the two
differ in the framework only: the same initial weights (PyTorch's, seeded, copied with
llmbook.parity), the same windows in the same order, the same learning rate at every step (the
PyTorch run's cosine followed its wall-clock budget, so its logged rates are replayed, see
`replayed_lr`), the same AdamW, clipping, evaluation and stopping rule, and no step past the PyTorch
run's last (with an evaluation there): a replay that went on would train on windows, at rates, that
PyTorch never saw. (The replays of 2026-12 before that rule, results/ch7_quality_tf.json and
ch7_quality_tf_pos0.02.json, went on until their own patience ran out.) It writes
llmbook/checkpoints/gpt_char_tf_trained.npz and results/ch7_quality_tf.json. (gpt_char_tf.npz stays
the PyTorch weights converted, which the generation page needs to show both frameworks decoding
the same model.) Both runs' validation curves are shipped in llmbook/checkpoints/gpt_char_curves.json.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

import llmbook  # noqa: E402
from llmbook.data import Batches, tokenized_shakespeare  # noqa: E402
from llmbook.data.batching import next_token_windows  # noqa: E402
from llmbook.metrics import perplexity  # noqa: E402
from llmbook.torch.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from llmbook.torch.gpt import GPT  # noqa: E402
from llmbook.torch.train import evaluate  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CKPT = ROOT / "llmbook" / "checkpoints" / "gpt_char_torch.npz"
RESULTS = ROOT / "benchmarks" / "results" / "ch7_quality.json"
TF_CKPT = ROOT / "llmbook" / "checkpoints" / "gpt_char_tf_trained.npz"
TF_RESULTS = ROOT / "benchmarks" / "results" / "ch7_quality_tf.json"
CURVES = CKPT.parent / "gpt_char_curves.json"   # both runs' validation curves, for chapter 7's page
CH3 = ROOT / "benchmarks" / "results" / "ch3_quality.json"
STATE = ROOT / "benchmarks" / "state"     # paused TensorFlow replays
MODEL = dict(d_model=96, num_heads=4, num_layers=3, d_ff=360, max_len=256, dropout=0.0, pos_std=1.0)
TRAIN = dict(context=256, batch_size=16, lr=6e-3, warmup=200, min_lr_ratio=0.1, weight_decay=0.1,
             betas=(0.9, 0.99), clip=1.0, steps=20000, eval_every=250, patience=4, seed=0,
             budget_min=55.0)
LARGE = dict(MODEL, d_model=128, num_layers=4, d_ff=512)          # 835 k parameters
LARGE_TRAIN = dict(TRAIN, eval_every=500, budget_min=54.0)
LARGE_THREADS = 2
# During training the validation loss is measured on its first VAL_LIMIT windows (a third of the
# split, to keep evaluations short); the kept checkpoint is then scored on the whole split.
VAL_LIMIT = 500
EVAL = dict(length=256, burn_in=64)        # as ch3_quality.py


def outputs(framework: str, large: bool) -> tuple[Path, Path]:
    """(checkpoint, results JSON) of the run of `framework` ("torch" or "tf"), standard or `--large`."""
    if not large:
        return (CKPT, RESULTS) if framework == "torch" else (TF_CKPT, TF_RESULTS)
    stem = "gpt_char_large_torch" if framework == "torch" else "gpt_char_large_tf_trained"
    name = "ch7_quality_large.json" if framework == "torch" else "ch7_quality_large_tf.json"
    return CKPT.parent / f"{stem}.npz", RESULTS.parent / name


def eval_batches(ids: np.ndarray, limit: int | None = None) -> Batches:
    """The held-out stream as scored windows (see EVAL); `limit` keeps the first windows only."""
    x, y = next_token_windows(ids, EVAL["length"], stride=EVAL["length"] - EVAL["burn_in"], burn_in=EVAL["burn_in"])
    return Batches(x[:limit], y[:limit], 128, shuffle=False)


def lr_at(step: int, tr: dict, time_frac: float = 0.0) -> float:
    """Linear warmup to the peak, then cosine decay to min_lr_ratio * peak at tr['steps'].

    With a wall-clock budget, the decay follows whichever is further along: the steps or the time
    (`time_frac` = training seconds / budget), so the schedule ends when the budget does.
    """
    if step < tr["warmup"]:
        return tr["lr"] * (step + 1) / tr["warmup"]
    frac = min(1.0, max(time_frac, (step - tr["warmup"]) / max(1, tr["steps"] - tr["warmup"])))
    return tr["lr"] * (tr["min_lr_ratio"] + (1 - tr["min_lr_ratio"]) * 0.5 * (1 + math.cos(math.pi * frac)))


def replayed_lr(reference: dict):
    """step (0-based) -> the learning rate the reference run used at that step.

    The warm-up is the formula; after it, each logged rate gives its cosine fraction (the inverse of
    `lr_at`), the fraction is interpolated linearly between logged steps (from 0 at the end of the
    warm-up) and continued at the last segment's slope past the last log, up to 1.
    """
    tr = reference["train"]
    peak, r = tr["lr"], tr["min_lr_ratio"]
    steps = np.array([tr["warmup"]] + [h["step"] - 1 for h in reference["history"]], dtype=float)
    cos = np.clip(2 * (np.array([h["lr"] for h in reference["history"]]) / peak - r) / (1 - r) - 1, -1, 1)
    fracs = np.concatenate([[0.0], np.arccos(cos) / math.pi])
    slope = (fracs[-1] - fracs[-2]) / (steps[-1] - steps[-2])

    def lr(step: int) -> float:
        if step < tr["warmup"]:
            return lr_at(step, tr)
        frac = (np.interp(step, steps, fracs) if step <= steps[-1]
                else min(1.0, fracs[-1] + slope * (step - steps[-1])))
        return peak * (r + (1 - r) * 0.5 * (1 + math.cos(math.pi * frac)))
    return lr


def decays(name: str, p) -> bool:
    """Whether AdamW decays this PyTorch parameter: matrices only (not biases, LayerNorm gains or positions)."""
    return p.ndim == 2 and not name.startswith("pos")


def optimizer(model: GPT, tr: dict) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (not on biases, LayerNorm gains or positions)."""
    decay = [p for n, p in model.named_parameters() if decays(n, p)]
    other = [p for n, p in model.named_parameters() if not decays(n, p)]
    return torch.optim.AdamW([dict(params=decay, weight_decay=tr["weight_decay"]),
                              dict(params=other, weight_decay=0.0)], lr=tr["lr"], betas=tr["betas"])


class ValidationLog:
    """A run's evaluations: printed, written to `out` as they come, the checkpoint saved on each new best."""

    def __init__(self, result: dict, out: Path, patience: int, save):
        self.result, self.out, self.patience, self.save = result, out, patience, save
        self.best, self.bad = math.inf, 0
        result["history"] = []

    def __call__(self, entry: dict) -> bool:
        """Record one evaluation (step, tokens, train_loss, val_loss, lr, seconds); True: stop, patience is spent."""
        self.result["history"].append(entry)
        print(f"step {entry['step']:6d}  train {entry['train_loss']:.3f}  val {entry['val_loss']:.4f}  "
              f"lr {entry['lr']:.2e}  {entry['seconds']:6.0f} s  {entry['tokens'] / entry['seconds']:,.0f} tok/s",
              flush=True)
        if entry["val_loss"] < self.best - 1e-4:
            self.best, self.bad = entry["val_loss"], 0
            self.save()
            self.result.update(best_step=entry["step"], best_val_loss=entry["val_loss"], train_s=entry["seconds"])
        else:
            self.bad += 1
        self.out.write_text(json.dumps(self.result, indent=1) + "\n")
        if self.bad >= self.patience:
            print(f"stop: no validation improvement in {self.bad} evaluations", flush=True)
        return self.bad >= self.patience


def train(corpus, model_cfg: dict, tr: dict, ckpt: Path, out: Path, pilot_s: float | None,
          val_limit: int | None) -> dict:
    """Train with the schedule of `tr`, checkpointing on every validation improvement."""
    llmbook.seed(tr["seed"])
    config = dict(vocab_size=len(corpus.vocab), **model_cfg)
    model = GPT(**config)
    opt = optimizer(model, tr)
    rng = np.random.default_rng(tr["seed"])
    data = torch.from_numpy(corpus.train.astype(np.int64))
    T, B = tr["context"], tr["batch_size"]
    val_b = eval_batches(corpus.validation, val_limit)
    params = sum(p.numel() for p in model.parameters())
    print(f"GPT {model_cfg} = {params:,} parameters; train {tr}", flush=True)
    seconds, tokens = 0.0, 0
    result = dict(model=model_cfg, train=tr, eval=EVAL, params=params, val_limit=val_limit)
    log = ValidationLog(result, out, tr["patience"], lambda: save_checkpoint(model, ckpt, **config))
    start = time.perf_counter()
    running = None
    budget = None if tr.get("budget_min") is None else 60 * tr["budget_min"]
    time_frac = lambda: 0.0 if budget is None else (time.perf_counter() - start) / budget  # noqa: E731
    for step in range(tr["steps"]):
        lr = lr_at(step, tr, time_frac())
        for g in opt.param_groups:
            g["lr"] = lr
        starts = torch.from_numpy(rng.integers(0, len(data) - T - 1, B))  # (B,)
        idx = starts[:, None] + torch.arange(T + 1)                        # (B, T+1)
        chunk = data[idx]                                                  # (B, T+1)
        model.train()
        logits = model(chunk[:, :-1])                                      # (B, T, V)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), chunk[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), tr["clip"])
        opt.step()
        tokens += B * T
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        done = (step + 1 == tr["steps"] or (pilot_s is not None and time.perf_counter() - start > pilot_s)
                or time_frac() >= 1.0)
        if (step + 1) % tr["eval_every"] == 0 or done:
            seconds = time.perf_counter() - start
            t0 = time.perf_counter()
            val = evaluate(model, val_b)
            start += time.perf_counter() - t0                              # evaluation time not counted
            if log(dict(step=step + 1, tokens=tokens, train_loss=running, val_loss=val, lr=lr, seconds=seconds)):
                break
        if done:
            break
    return result


def train_tf(corpus, model_cfg: dict, tr: dict, reference: dict, ckpt: Path, out: Path,
             val_limit: int | None, state: Path | None = None, pause_s: float | None = None) -> dict:
    """The PyTorch run `reference` replayed in TensorFlow (see the module's docstring).

    With `state`, it resumes from that file if it exists and keeps it after each evaluation; with
    `pause_s`, it stops at the first evaluation after that many seconds and returns with "paused".
    """
    import keras
    from llmbook.parity import _triples, torch_to_tf
    from llmbook.tf import gpt as tf_gpt
    from llmbook.tf import set_threads
    from llmbook.tf.checkpoint import read_training_state, restore_training_state, save_training_state
    from llmbook.tf.checkpoint import save_checkpoint as tf_save
    from llmbook.tf.train import evaluate as tf_evaluate, fit
    if reference["model"] != model_cfg or reference["train"]["seed"] != tr["seed"]:
        raise SystemExit(f"the PyTorch run in {RESULTS.name} used {reference['model']}, seed "
                         f"{reference['train']['seed']}: replay it with the same model and seed")
    set_threads(int(os.environ["OMP_NUM_THREADS"]))   # unless TF already runs (a test session)
    llmbook.seed(tr["seed"])
    config = dict(vocab_size=len(corpus.vocab), **model_cfg)
    twin = GPT(**config)                                                   # PyTorch's initial weights
    model = tf_gpt.GPT(**config)
    model(np.zeros((1, 2), np.int64))                                      # build the variables
    torch_to_tf(twin, model)
    names = {id(p): n for n, p in twin.named_parameters()}
    keep = [var for var, t, _ in _triples(twin, model) if not decays(names[id(t)], t)]   # as `optimizer`
    opt = keras.optimizers.AdamW(learning_rate=tr["lr"], weight_decay=tr["weight_decay"], beta_1=tr["betas"][0],
                                 beta_2=tr["betas"][1], epsilon=1e-8)      # torch's epsilon
    opt.exclude_from_weight_decay(var_list=keep)
    lr = replayed_lr(reference)
    rng = np.random.default_rng(tr["seed"])
    data, T, B = corpus.train.astype(np.int64), tr["context"], tr["batch_size"]
    val_b = eval_batches(corpus.validation, val_limit)

    def windows(n: int):
        """n batches of random windows, drawn as the PyTorch loop draws them."""
        for _ in range(n):
            chunk = data[rng.integers(0, len(data) - T - 1, B)[:, None] + np.arange(T + 1)]   # (B, T+1)
            yield chunk[:, :-1], chunk[:, 1:]                                               # (B, T) each

    params = int(sum(np.prod(v.shape) for v in model.weights))
    print(f"TF GPT {model_cfg} = {params:,} parameters; replaying the PyTorch run's rates", flush=True)
    end = min(tr["steps"], reference["history"][-1]["step"])              # no step the PyTorch run did not take
    result = dict(model=model_cfg, train=dict(tr, budget_min=None, steps=end,
                                              schedule="replay of the PyTorch run's rates"),
                  eval=EVAL, params=params, val_limit=val_limit)
    log = ValidationLog(result, out, tr["patience"], lambda: tf_save(model, ckpt, **config))
    seconds, step, running = 0.0, 0, None
    if state is not None and state.exists():
        saved = read_training_state(state)
        if saved["state"]["model_cfg"] != model_cfg or saved["state"]["train"] != tr:
            raise SystemExit(f"{state} is a paused run of another model or recipe: delete it to start again")
        kept = restore_training_state(saved, model, opt)
        rng.bit_generator.state = kept["rng"]
        seconds, step, running = kept["seconds"], kept["step"], kept["running"]
        log.best, log.bad = kept["best"], kept["bad"]
        result.update(kept["result"], train=result["train"])                 # the recipe as this code runs it
        if kept.get("checkpoint") is not None:                            # the best so far, on a fresh clone too
            ckpt.parent.mkdir(parents=True, exist_ok=True)
            ckpt.write_bytes(kept["checkpoint"])
        print(f"resumed from {state.name} at step {step:,}", flush=True)
    wall = time.perf_counter()
    while step < end:
        n = min(tr["eval_every"], end - step)                              # and an evaluation at its last step
        hist = fit(model, windows(n), optimizer=opt, clip=tr["clip"], progress=False,
                   schedule=lambda k: lr(k - 1))                           # fit counts steps from 1
        step, seconds = step + n, seconds + hist["seconds"][0]
        for loss in hist["step_loss"]:                                     # the PyTorch loop's running mean
            running = loss if running is None else 0.98 * running + 0.02 * loss
        val = tf_evaluate(model, val_b)
        if log(dict(step=step, tokens=step * B * T, train_loss=running, val_loss=val, lr=lr(step - 1),
                    seconds=seconds)):
            break
        if state is not None:
            save_training_state(state, model, opt, dict(
                model_cfg=model_cfg, train=tr, rng=rng.bit_generator.state, seconds=seconds, step=step,
                running=running, best=log.best, bad=log.bad, result=result, checkpoint=ckpt.read_bytes()))
        if pause_s is not None and time.perf_counter() - wall > pause_s:
            print(f"paused at step {step:,}: run the same command again to resume", flush=True)
            return dict(result, paused=True)
    if state is not None:
        state.unlink(missing_ok=True)                                      # finished: nothing to resume
    return result


def table_rows(result: dict) -> list[dict]:
    """Chapter 3's PyTorch character rows from their result file, then every GPT run's rows (this one last)."""
    rows = []
    if CH3.exists():
        for r in json.loads(CH3.read_text())["rows"]:
            if r["framework"] == "PyTorch":
                rows.append(dict(model=r["cell"].upper(), framework="PyTorch", params=r["params"],
                                 val=r["val_loss"], test=r["test_loss"], train_s=r.get("train_s")))
    files = [outputs(fw, large)[1] for large in (False, True) for fw in ("torch", "tf")]
    others = [json.loads(p.read_text()) for p in files if p.exists()]
    same = lambda o: o.get("framework") == result["framework"] and o["model"] == result["model"]  # noqa: E731
    for r in [o for o in others if not same(o) and "val_loss" in o] + [result]:
        rows.append(dict(model="GPT (decoder-only)", framework=r["framework"], params=r["params"],
                         val=r["val_loss"], test=r["test_loss"], train_s=r.get("train_s")))
    return rows


def quality_row(result: dict) -> dict:
    """The run as one row of the course's quality table (benchmarks/quality_table.py)."""
    return dict(model="GPT (decoder-only)", framework=result["framework"],
                dataset="Shakespeare, characters (held-out plays)", params=result["params"],
                val_loss=result["val_loss"], test_loss=result["test_loss"], test_ppl=result["test_ppl"],
                train_s=result.get("train_s"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--framework", choices=("torch", "tf"), default="torch",
                        help="tf: replay the PyTorch run of results/ch7_quality.json in TensorFlow")
    parser.add_argument("--skip-train", action="store_true", help="evaluate the committed checkpoint only")
    parser.add_argument("--pilot", type=float, default=None, metavar="SECONDS",
                        help="a pilot: stop after this many seconds of training (needs --out; PyTorch)")
    parser.add_argument("--out", type=Path, default=None, help="scratch folder for a pilot's checkpoint and JSON")
    parser.add_argument("--val-limit", type=int, default=VAL_LIMIT, help="score only the first N validation windows")
    parser.add_argument("--pause-after", type=float, default=None, metavar="MIN",
                        help="TensorFlow: pause at the first evaluation after MIN minutes; rerun to resume")
    parser.add_argument("--large", action="store_true",
                        help=f"the larger run: LARGE sizes, LARGE_TRAIN, {LARGE_THREADS} threads (see above)")
    for k, v in {**MODEL, **TRAIN}.items():
        if k != "betas":
            parser.add_argument("--" + k.replace("_", "-"), type=float if k == "budget_min" else type(v), default=None)
    args = parser.parse_args()
    base_model, base_train = (LARGE, LARGE_TRAIN) if args.large else (MODEL, TRAIN)
    if args.large:
        os.environ["OMP_NUM_THREADS"] = str(LARGE_THREADS)
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    model_cfg = {k: v if getattr(args, k) is None else getattr(args, k) for k, v in base_model.items()}
    tr = {k: v if getattr(args, k, None) is None else getattr(args, k) for k, v in base_train.items()}
    if (args.pilot is not None or model_cfg != base_model or tr != base_train) and args.out is None \
            and not args.skip_train:
        parser.error("a pilot or a changed recipe trains into a scratch folder: give --out DIR")
    if args.framework == "torch" and args.pause_after is not None:
        parser.error("--pause-after is for the TensorFlow replay; a PyTorch run follows its clock")
    if args.framework == "tf" and args.pilot is not None:
        parser.error("--pilot is for PyTorch; the TensorFlow run replays a finished PyTorch run")
    ckpt, out = outputs(args.framework, args.large)
    reference = outputs("torch", args.large)[1]
    if args.out is not None:
        ckpt, out, reference = args.out / ckpt.name, args.out / out.name, args.out / reference.name
    corpus = tokenized_shakespeare("char")
    if args.skip_train:
        result = json.loads(out.read_text()) if out.exists() else dict(model=model_cfg, train=tr, eval=EVAL)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        if args.framework == "tf":
            if not reference.exists():
                parser.error(f"{reference} is missing: the TensorFlow run replays a PyTorch run, train it first")
            result = train_tf(corpus, model_cfg, tr, json.loads(reference.read_text()), ckpt, out, args.val_limit,
                              state=(args.out or STATE) / f"{ckpt.stem}.state",
                              pause_s=None if args.pause_after is None else 60 * args.pause_after)
            if result.get("paused"):
                return
        else:
            result = train(corpus, model_cfg, tr, ckpt, out, args.pilot, args.val_limit)
        if args.pilot is not None:                           # pilots compare the training curves only
            print(f"pilot: best val {result.get('best_val_loss', math.inf):.4f} at step {result.get('best_step')}")
            return
    val, test, params = final_scores(args.framework, ckpt, corpus)
    result.update(params=params, val_loss=val, val_ppl=perplexity(val), test_loss=test, test_ppl=perplexity(test),
                  framework={"torch": "PyTorch", "tf": "TensorFlow"}[args.framework],
                  threads=int(os.environ["OMP_NUM_THREADS"]), checkpoint_kb=ckpt.stat().st_size / 1024)
    result["rows"] = [quality_row(result)]                  # for the appendix's quality table
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"\nCharacter LMs on held-out plays (nats/char; float16 checkpoints)\n")
    print("| model | framework | parameters | val loss | val PPL | test loss | test PPL | train s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in table_rows(result):
        t = "" if r["train_s"] is None else f"{r['train_s']:.0f}"
        print(f"| {r['model']} | {r['framework']} | {r['params']:,} | {r['val']:.3f} | {perplexity(r['val']):.2f} | "
              f"{r['test']:.3f} | {perplexity(r['test']):.2f} | {t} |")
    if args.out is None and not args.large:
        write_curves()
    print(f"\nwritten {out}")


def write_curves() -> None:
    """Ship the validation curves (on the first VAL_LIMIT windows) of the runs of both frameworks."""
    runs = [json.loads(p.read_text()) for p in (RESULTS, TF_RESULTS) if p.exists()]
    CURVES.write_text(json.dumps({r["framework"]: dict(step=[h["step"] for h in r["history"]],
                                                       val_loss=[round(h["val_loss"], 5) for h in r["history"]],
                                                       best_step=r["best_step"], val_limit=r["val_limit"])
                                  for r in runs if "framework" in r}, indent=1) + "\n")


def final_scores(framework: str, ckpt: Path, corpus) -> tuple[float, float, int]:
    """(validation, test) nats/char of the kept checkpoint on the whole splits, and its parameter count."""
    if framework == "torch":
        model = load_checkpoint(GPT, ckpt)
        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
        params = sum(p.numel() for p in model.parameters())
        return evaluate(model, eval_batches(corpus.validation)), evaluate(model, eval_batches(corpus.test)), params
    from llmbook.tf import gpt as tf_gpt
    from llmbook.tf.checkpoint import load_checkpoint as tf_load
    from llmbook.tf.train import evaluate as tf_evaluate
    model = tf_load(tf_gpt.GPT, ckpt)
    params = int(sum(np.prod(v.shape) for v in model.weights))
    return tf_evaluate(model, eval_batches(corpus.validation)), tf_evaluate(model, eval_batches(corpus.test)), params


if __name__ == "__main__":
    main()
