"""Chapter 5 quality table: the GRU encoder–decoder with attention vs chapter 4's fixed context, both frameworks.

Trains the checkpoints that the chapter-5 notebooks load (llmbook/checkpoints/attention_dates_{torch,tf}.npz)
with the same data, tokenisers, training loop and decoders as chapter 4, then prints
  - with / without attention rows: dates exact match (greedy and beam k=4) on the test split,
    "without" being chapter 4's committed checkpoints (seq2seq_dates_{torch,tf}.npz);
  - dates exact match by input length, and a cheaper pair of models (hidden 16) trained for 2 epochs with and
    without attention, where chapter 4's full-size model is already near 100 %.
`--skip-train` only evaluates the committed checkpoints (the cheap dates pair is always trained).
The translation models of chapters 4-6 (EN->ES Bible verses) are trained and measured by benchmarks/ladder.py.

    python benchmarks/ch5_quality.py                        # train everything (~15 min on 2 busy CPU cores)
    python benchmarks/ch5_quality.py --frameworks tf        # one framework (rows of the other are kept)
    python benchmarks/ch5_quality.py --skip-train           # evaluate the committed checkpoints (~6 min)
"""
from __future__ import annotations

import argparse
import fcntl
import json
import os
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")   # steady torch timings on a shared 2-core machine

import llmbook  # noqa: E402
from llmbook.data import dates  # noqa: E402
from llmbook.data.seq2seq import PAD_ID, CharTokenizer, Seq2SeqBatches, encode_pairs  # noqa: E402
from llmbook.metrics import exact_match  # noqa: E402
from seq2seq_common import decode_all, framework, n_params  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CKPT = ROOT / "llmbook" / "checkpoints"
RESULTS = ROOT / "benchmarks" / "results" / "ch5_quality.json"
SHIPPED = CKPT / "ch5_dates.json"           # the dates table of the chapter-5 page, shipped with the package

# The recipes, shared by both frameworks (sizes as chapter 4's models, so the comparison is like for like).
DATES_MODEL = dict(embed_dim=32, hidden_dim=128, score="additive", dropout=0.0)
DATES_TRAIN = dict(batch_size=64, lr=3e-3, epochs=4, seed=0, max_len=12)
CHEAP_MODEL = dict(embed_dim=16, hidden_dim=16)               # the cheap pair: with and without attention
CHEAP_TRAIN = dict(batch_size=64, lr=3e-3, epochs=2, seed=0, max_len=12)
ALPHA = 0.6                                     # chapter 4's length normalisation: log P(Y|X) / |Y|**ALPHA
CHAR_BUCKETS = ((1, 12), (13, 17), (18, 99))                # date source length in characters


def bucket_of(n: int, buckets) -> str:
    lo, hi = next(b for b in buckets if b[0] <= n <= b[1])
    return f"{lo}-{hi}" if hi < 99 else f"{lo}+"


def dates_data():
    data = dates()
    src_tok = CharTokenizer.build(s for s, _ in data.train)
    tgt_tok = CharTokenizer.build(t for _, t in data.train)
    return data, src_tok, tgt_tok


def train_dates(F: dict, cls, config: dict, T: dict, path: Path, fw: str, label: str) -> float:
    """Train on dates, keep the epoch with the best validation exact match; return the training seconds."""
    data, src_tok, tgt_tok = dates_data()
    xs, ys = encode_pairs(data.train, src_tok, tgt_tok)
    vx, _ = encode_pairs(data.validation, src_tok, tgt_tok)
    llmbook.seed(T["seed"])
    model, best, seconds = cls(**config), -1.0, 0.0
    for epoch in range(T["epochs"]):
        hist = F.fit(model, Seq2SeqBatches(xs, ys, T["batch_size"], seed=T["seed"] + epoch), epochs=1, lr=T["lr"],
                        ignore_index=PAD_ID, progress=False)
        seconds += hist["seconds"][0]
        out, _ = decode_all(F.greedy, model, vx, max_len=T["max_len"])
        em = exact_match([tgt_tok.decode(o) for o in out], [t for _, t in data.validation])
        print(f"  dates {label} {fw} epoch {epoch + 1}: loss {hist['loss'][0]:.4f}  val exact match {em:.3f}  "
              f"({hist['seconds'][0]:.0f} s)", flush=True)
        if em > best:
            best = em
            F.save(model, path, **config)
    return seconds


def dates_eval(F: dict, model, fw: str, model_name: str, train_s, decodings=("greedy", "beam k=4")) -> tuple[list, list]:
    """Exact-match rows on the test split, and greedy exact match by input length."""
    data, src_tok, tgt_tok = dates_data()
    tx, _ = encode_pairs(data.test, src_tok, tgt_tok)
    refs = [t for _, t in data.test]
    rows, buckets = [], []
    for name in decodings:
        kw = {} if name == "greedy" else dict(k=4, alpha=ALPHA)
        decode = F.greedy if name == "greedy" else F.beam
        out, dec_s = decode_all(decode, model, tx, max_len=DATES_TRAIN["max_len"], **kw)
        hyps = [tgt_tok.decode(o) for o in out]
        rows.append(dict(task="dates -> ISO", framework=fw, model=model_name, decoding=name, metric="exact match %",
                         value=100 * exact_match(hyps, refs), params=n_params(model, fw), train_s=train_s,
                         decode_s=dec_s))
        if name == "greedy":
            for b in CHAR_BUCKETS:
                label = bucket_of(b[0], CHAR_BUCKETS)
                idx = [i for i, (s, _) in enumerate(data.test) if bucket_of(len(s), CHAR_BUCKETS) == label]
                buckets.append(dict(framework=fw, model=model_name, bucket=label, n=len(idx),
                                    exact_match=100 * exact_match([hyps[i] for i in idx], [refs[i] for i in idx])))
    return rows, buckets


def dates_rows(fw: str, train: bool) -> tuple[list, list]:
    F = framework(fw)
    _, src_tok, tgt_tok = dates_data()
    config = dict(src_vocab_size=len(src_tok), tgt_vocab_size=len(tgt_tok), pad_id=PAD_ID, **DATES_MODEL)
    path = CKPT / f"attention_dates_{fw}.npz"
    seconds = train_dates(F, F.Seq2SeqAttention, config, DATES_TRAIN, path, fw, "attention") if train else None
    rows, buckets = dates_eval(F, F.load(F.Seq2SeqAttention, path), fw, "attention (additive)", seconds)
    r, b = dates_eval(F, F.load(F.Seq2Seq, CKPT / f"seq2seq_dates_{fw}.npz"), fw, "no attention (ch. 4)", None)
    return r + rows, b + buckets


def cheap_dates_rows(fw: str, tmp: Path) -> tuple[list, list]:
    """Hidden 16, 2 epochs: the same small budget with and without attention."""
    F = framework(fw)
    _, src_tok, tgt_tok = dates_data()
    rows, buckets = [], []
    for cls, name, extra in ((F.Seq2Seq, "no attention, hidden 16", {}),
                             (F.Seq2SeqAttention, "attention, hidden 16", dict(score="additive"))):
        config = dict(src_vocab_size=len(src_tok), tgt_vocab_size=len(tgt_tok), pad_id=PAD_ID, **CHEAP_MODEL, **extra)
        path = tmp / f"cheap_{fw}_{cls.__name__}.npz"
        seconds = train_dates(F, cls, config, CHEAP_TRAIN, path, fw, name)
        r, b = dates_eval(F, F.load(cls, path), fw, name, seconds, decodings=("greedy",))
        rows, buckets = rows + r, buckets + b
    return rows, buckets


def merge(key_fields, old: list, new: list) -> list:
    """Old rows not redone now, then the new ones."""
    redone = {tuple(r[k] for k in key_fields) for r in new}
    return [r for r in old if tuple(r[k] for k in key_fields) not in redone] + new


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-train", action="store_true", help="evaluate the committed checkpoints only")
    parser.add_argument("--frameworks", nargs="+", default=["torch", "tf"], choices=["torch", "tf"])
    parser.add_argument("--no-write", action="store_true", help="do not update results/ch5_quality.json")
    parser.add_argument("--ship-only", action="store_true",
                        help="only rewrite llmbook/checkpoints/ch5_dates.json from results/ch5_quality.json")
    args = parser.parse_args()
    if args.ship_only:
        return ship_dates(json.loads(RESULTS.read_text()))
    train = not args.skip_train
    rows, date_buckets = [], []
    tmp = Path(tempfile.mkdtemp(prefix="ch5_cheap_"))      # the cheap pair's checkpoints are not kept
    for fw in args.frameworks:
        r, b = dates_rows(fw, train)
        r2, b2 = cheap_dates_rows(fw, tmp)
        rows, date_buckets = rows + r + r2, date_buckets + b + b2
    print(f"\nChapter 5 — GRU encoder-decoder with and without attention; beam score log P / |Y|^{ALPHA}\n")
    print("| task | framework | model | decoding | metric | test | parameters | train s | decode s |")
    print("|---|---|---|---|---|---:|---:|---:|---:|")
    for r in rows:
        t = "" if r["train_s"] is None else f"{r['train_s']:.0f}"
        print(f"| {r['task']} | {r['framework']} | {r['model']} | {r['decoding']} | {r['metric']} | {r['value']:.2f} | "
              f"{r['params']:,} | {t} | {r['decode_s']:.1f} |")
    if date_buckets:
        print("\nDates test exact match (greedy) by input length in characters\n")
        print("| framework | model | bucket | dates | exact match % |")
        print("|---|---|---|---:|---:|")
        for b in date_buckets:
            print(f"| {b['framework']} | {b['model']} | {b['bucket']} | {b['n']} | {b['exact_match']:.1f} |")
    if args.no_write:
        return
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with open(Path(tempfile.gettempdir()) / "ch5_quality.lock", "w") as lock:    # two frameworks may train in parallel
        fcntl.flock(lock, fcntl.LOCK_EX)
        old = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        if not train:                                        # evaluation only: keep the recorded training facts
            prev = {(r["task"], r["framework"], r["model"], r["decoding"]): r for r in old.get("rows", [])}
            for r in rows:
                p = prev.get((r["task"], r["framework"], r["model"], r["decoding"]))
                if p is not None and r["train_s"] is None:
                    r["train_s"], r["best_epoch"], r["history"] = p.get("train_s"), p.get("best_epoch"), p.get("history")
        out = dict(dates_model=DATES_MODEL, dates_train=DATES_TRAIN, cheap_model=CHEAP_MODEL, cheap_train=CHEAP_TRAIN,
                   alpha=ALPHA, rows=merge(("task", "framework", "model", "decoding"), old.get("rows", []), rows),
                   dates_buckets=merge(("framework", "model", "bucket"), old.get("dates_buckets", []), date_buckets))
        RESULTS.write_text(json.dumps(out, indent=1) + "\n")
    print(f"\nwritten {RESULTS.relative_to(ROOT)}")
    ship_dates(out)


def ship_dates(out: dict) -> None:
    """The dates rows the chapter-5 page prints, shipped with the package (llmbook.shipped_results('ch5_dates'))."""
    rows = [r for r in out["rows"] if r["task"] == "dates -> ISO" and r["decoding"] == "greedy"]
    keep = ("framework", "model", "params", "value")
    SHIPPED.write_text(json.dumps(dict(metric="exact match %", split="test", rows=[{k: r[k] for k in keep} for r in rows],
                                       buckets=out["dates_buckets"]), indent=1) + "\n")
    print(f"written {SHIPPED.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
