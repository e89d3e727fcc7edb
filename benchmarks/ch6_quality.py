"""Chapter 6 quality table: the Transformer encoder–decoder on dates -> ISO, both frameworks.

Trains the checkpoints that the chapter-6 notebooks load (llmbook/checkpoints/transformer_dates_{torch,tf}.npz),
then prints one table beside chapters 4 (and 5, when benchmarks/results/ch5_quality.json exists):
  - dates: exact match on the test split (greedy and beam k=4);
  - parameters, training and decoding times on this CPU.
Recipe: pre-norm Transformer, Adam with linear warm-up + inverse-square-root decay, label smoothing 0.1,
the best epoch kept (validation exact match), each training run stopped after its wall-clock budget.
`--skip-train` only evaluates the committed checkpoints. The translation models of chapters 4-6 (EN->ES Bible
verses) are trained and measured by benchmarks/ladder.py. The committed checkpoints came from one process per
framework, run in parallel:

    python benchmarks/ch6_quality.py --frameworks torch     # (and tf; other rows are kept)
    python benchmarks/ch6_quality.py                        # or both in one process
    python benchmarks/ch6_quality.py --skip-train           # evaluate the committed checkpoints (~1 min)
"""
from __future__ import annotations

import argparse
import fcntl
import json
import os
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")   # steady torch timings on a shared 2-core machine

import numpy as np  # noqa: E402

import llmbook  # noqa: E402
from llmbook.data import dates  # noqa: E402
from llmbook.data.seq2seq import PAD_ID, CharTokenizer, Seq2SeqBatches, encode_pairs  # noqa: E402
from llmbook.metrics import exact_match  # noqa: E402
from seq2seq_common import decode_all, framework, n_params  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CKPT = ROOT / "llmbook" / "checkpoints"
RESULTS = ROOT / "benchmarks" / "results"

# The recipes, shared by both frameworks.
DATES_MODEL = dict(d_model=64, num_heads=4, num_encoder_layers=2, num_decoder_layers=2, d_ff=128, dropout=0.1,
                   max_len=64)
DATES_TRAIN = dict(batch_size=64, peak_lr=2e-3, warmup=300, label_smoothing=0.1, epochs=20, budget_min=25, seed=0,
                   max_len=12)
ALPHA = 0.6                                     # length normalisation of beam search, as in chapter 4


def optimizer(fw: str, model):
    """Adam with Vaswani et al.'s beta_2 = 0.98 (the schedule sets the learning rate at every step)."""
    if fw == "torch":
        import torch
        return torch.optim.Adam(model.parameters(), lr=0.0, betas=(0.9, 0.98), eps=1e-9)
    import keras
    return keras.optimizers.Adam(learning_rate=0.0, beta_1=0.9, beta_2=0.98, epsilon=1e-9)


def train_facts_path(task: str, fw: str) -> Path:
    return RESULTS / f"ch6_train_{task}_{fw}.json"


def train(fw: str, task: str, config: dict, recipe: dict, xs, ys, vx, vy, path: Path, score=None) -> None:
    """Train epoch by epoch within the recipe's epoch and time budgets; keep the best epoch on validation."""
    F = framework(fw)
    Transformer, fit, evaluate, schedule, save = F.Transformer, F.fit, F.evaluate, F.warmup_inverse_sqrt, F.save
    R = recipe
    llmbook.seed(R["seed"])
    model = Transformer(**config)
    opt = optimizer(fw, model)
    lr = schedule(R["peak_lr"], R["warmup"])
    best, seconds, history = np.inf, 0.0, []
    for epoch in range(R["epochs"]):
        hist = fit(model, Seq2SeqBatches(xs, ys, R["batch_size"], seed=R["seed"] + epoch), epochs=1,
                   optimizer=opt, schedule=lr, label_smoothing=R["label_smoothing"], ignore_index=PAD_ID,
                   progress=False)
        seconds += hist["seconds"][0]
        val = evaluate(model, Seq2SeqBatches(vx, vy, 256, shuffle=False), ignore_index=PAD_ID)
        extra = score(model) if score else None
        history.append(dict(epoch=epoch + 1, train_loss=hist["loss"][0], val_loss=val, val_score=extra,
                            seconds=hist["seconds"][0]))
        print(f"  {task} {fw} epoch {epoch + 1}: train loss (smoothed) {hist['loss'][0]:.3f}  val loss {val:.3f}"
              + (f"  val score {extra:.3f}" if extra is not None else "") + f"  ({hist['seconds'][0]:.0f} s)",
              flush=True)
        key = -extra if extra is not None else val
        if key < best:
            best, best_epoch = key, epoch + 1
            save(model, path, **config)
        # facts after every epoch: a run stopped early still documents the checkpoint it left
        train_facts_path(task, fw).write_text(json.dumps(dict(train_s=seconds, best_epoch=best_epoch, epochs=len(history),
                                                              budget_min=R["budget_min"], history=history), indent=1) + "\n")
        if seconds > 60 * R["budget_min"]:
            print(f"  {task} {fw}: time budget of {R['budget_min']} min reached after {epoch + 1} epochs", flush=True)
            break


def facts(task: str, fw: str) -> dict:
    p = train_facts_path(task, fw)
    return json.loads(p.read_text()) if p.exists() else {}


def dates_rows(fw: str, do_train: bool) -> list[dict]:
    F = framework(fw)
    Transformer, greedy, beam, load = F.Transformer, F.greedy, F.beam, F.load
    data = dates()
    src_tok = CharTokenizer.build(s for s, _ in data.train)
    tgt_tok = CharTokenizer.build(t for _, t in data.train)
    xs, ys = encode_pairs(data.train, src_tok, tgt_tok)
    vx, vy = encode_pairs(data.validation, src_tok, tgt_tok)
    tx, _ = encode_pairs(data.test, src_tok, tgt_tok)
    config = dict(src_vocab_size=len(src_tok), tgt_vocab_size=len(tgt_tok), pad_id=PAD_ID, **DATES_MODEL)
    path = CKPT / f"transformer_dates_{fw}.npz"
    refs_val = [t for _, t in data.validation]

    def score(model):
        out, _ = decode_all(greedy, model, vx, max_len=DATES_TRAIN["max_len"])
        return exact_match([tgt_tok.decode(o) for o in out], refs_val)

    if do_train:
        train(fw, "dates", config, DATES_TRAIN, xs, ys, vx, vy, path, score)
    model = load(Transformer, path)
    refs, f = [t for _, t in data.test], facts("dates", fw)
    rows = []
    for name, decode, kw in (("greedy", greedy, {}), ("beam k=4", beam, dict(k=4, alpha=ALPHA))):
        out, dec_s = decode_all(decode, model, tx, max_len=DATES_TRAIN["max_len"], **kw)
        rows.append(dict(task="dates -> ISO", model="Transformer", framework=fw, decoding=name,
                         metric="exact match %", value=100 * exact_match([tgt_tok.decode(o) for o in out], refs),
                         params=n_params(model, fw), train_s=f.get("train_s"), best_epoch=f.get("best_epoch"),
                         decode_s=dec_s))
    return rows


def other_chapters() -> list[dict]:
    """Rows of chapters 4 and 5 from their result files (those present)."""
    rows = []
    for chapter, model in (("ch4", "Seq2Seq (GRU, fixed context)"), ("ch5", "Seq2Seq + attention")):
        p = RESULTS / f"{chapter}_quality.json"
        if not p.exists():
            continue
        for r in json.loads(p.read_text())["rows"]:
            rows.append(dict(r, model=r.get("model", model), chapter=chapter))
    return rows


def print_table(rows: list[dict]) -> None:
    print(f"\nChapters 4-6 on the same splits; beam score log P / |Y|^{ALPHA}; times on this CPU (1 thread)\n")
    print("| task | model | framework | decoding | metric | test | parameters | train s | decode s |")
    print("|---|---|---|---|---|---:|---:|---:|---:|")
    for r in sorted(rows, key=lambda r: (r["task"], r.get("chapter", "ch6"), r["framework"])):
        t = "" if r.get("train_s") is None else f"{r['train_s']:.0f}"
        print(f"| {r['task']} | {r['model']} | {r['framework']} | {r['decoding']} | {r['metric']} | {r['value']:.2f} | "
              f"{r['params']:,} | {t} | {r['decode_s']:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-train", action="store_true", help="evaluate the committed checkpoints only")
    parser.add_argument("--frameworks", nargs="+", default=["torch", "tf"], choices=["torch", "tf"])
    parser.add_argument("--no-write", action="store_true", help="do not update results/ch6_quality.json")
    parser.add_argument("--budget-min", type=float, default=None,
                        help="wall-clock training budget per checkpoint in minutes (default: the recipe's)")
    args = parser.parse_args()
    if args.budget_min is not None:
        DATES_TRAIN["budget_min"] = args.budget_min
    do_train = not args.skip_train
    rows = []
    for fw in args.frameworks:
        rows += dates_rows(fw, do_train)
    out = RESULTS / "ch6_quality.json"
    if not args.no_write:                  # keep the rows of frameworks not rerun now
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(Path(tempfile.gettempdir()) / "llmbook_ch6_quality.lock", "w") as lock:   # parallel runs
            fcntl.flock(lock, fcntl.LOCK_EX)
            old = json.loads(out.read_text()) if out.exists() else {}
            redone = {(r["task"], r["framework"]) for r in rows}
            rows = [r for r in old.get("rows", []) if (r["task"], r["framework"]) not in redone] + rows
            out.write_text(json.dumps(dict(dates_model=DATES_MODEL, dates_train=DATES_TRAIN, alpha=ALPHA, rows=rows),
                                      indent=1) + "\n")
        print(f"\nwritten {out.relative_to(ROOT)}")
    print_table(other_chapters() + rows)


if __name__ == "__main__":
    main()
