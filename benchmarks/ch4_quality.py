"""Chapter 4 quality table: the fixed-context GRU encoder–decoder on dates -> ISO, both frameworks.

Trains the checkpoints that the chapter-4 notebooks load (llmbook/checkpoints/seq2seq_dates_{torch,tf}.npz), then
prints
  - dates: exact match on the test split (greedy and beam k=4);
  - training and decoding times.
`--skip-train` only evaluates the committed checkpoints. The translation models of chapters 4-6 (EN->ES Bible
verses) are trained and measured by benchmarks/ladder.py.

    python benchmarks/ch4_quality.py               # train both frameworks (~4 min on 2 CPU cores)
    python benchmarks/ch4_quality.py --skip-train  # evaluate the committed checkpoints (< 1 min)
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")   # steady torch timings on a shared 2-core machine

import llmbook  # noqa: E402
from llmbook.data import dates  # noqa: E402
from llmbook.data.seq2seq import PAD_ID, CharTokenizer, Seq2SeqBatches, encode_pairs  # noqa: E402
from llmbook.metrics import exact_match  # noqa: E402
from seq2seq_common import decode_all, framework, n_params  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CKPT = ROOT / "llmbook" / "checkpoints"
RESULTS = ROOT / "benchmarks" / "results" / "ch4_quality.json"

# The recipes, shared by both frameworks.
DATES_MODEL = dict(embed_dim=32, hidden_dim=128, dropout=0.0)
DATES_TRAIN = dict(batch_size=64, lr=3e-3, epochs=8, seed=0, max_len=12)
ALPHA = 0.6                                     # length normalisation: score = log P(Y|X) / |Y|**ALPHA


def dates_rows(fw: str, train: bool) -> list[dict]:
    F = framework(fw)
    Seq2Seq, fit, greedy, beam, save, load = F.Seq2Seq, F.fit, F.greedy, F.beam, F.save, F.load
    data = dates()
    src_tok = CharTokenizer.build(s for s, _ in data.train)
    tgt_tok = CharTokenizer.build(t for _, t in data.train)
    xs, ys = encode_pairs(data.train, src_tok, tgt_tok)
    vx, _ = encode_pairs(data.validation, src_tok, tgt_tok)
    tx, _ = encode_pairs(data.test, src_tok, tgt_tok)
    config = dict(src_vocab_size=len(src_tok), tgt_vocab_size=len(tgt_tok), pad_id=PAD_ID, **DATES_MODEL)
    path = CKPT / f"seq2seq_dates_{fw}.npz"
    T = DATES_TRAIN
    seconds = None
    if train:
        llmbook.seed(T["seed"])
        model, best, seconds = Seq2Seq(**config), -1.0, 0.0
        for epoch in range(T["epochs"]):
            hist = fit(model, Seq2SeqBatches(xs, ys, T["batch_size"], seed=T["seed"] + epoch), epochs=1, lr=T["lr"],
                       ignore_index=PAD_ID, progress=False)
            seconds += hist["seconds"][0]
            out, _ = decode_all(greedy, model, vx, max_len=T["max_len"])
            em = exact_match([tgt_tok.decode(o) for o in out], [t for _, t in data.validation])
            print(f"  dates {fw} epoch {epoch + 1}: loss {hist['loss'][0]:.4f}  val exact match {em:.3f}  "
                  f"({hist['seconds'][0]:.0f} s)", flush=True)
            if em > best:                                 # keep the best epoch on validation
                best = em
                save(model, path, **config)
    model = load(Seq2Seq, path)
    refs = [t for _, t in data.test]
    rows = []
    for name, decode, kw in (("greedy", greedy, {}), ("beam k=4", beam, dict(k=4, alpha=ALPHA))):
        out, dec_s = decode_all(decode, model, tx, max_len=T["max_len"], **kw)
        rows.append(dict(task="dates -> ISO", framework=fw, decoding=name, metric="exact match %",
                         value=100 * exact_match([tgt_tok.decode(o) for o in out], refs),
                         params=n_params(model, fw), train_s=seconds, decode_s=dec_s))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-train", action="store_true", help="evaluate the committed checkpoints only")
    parser.add_argument("--frameworks", nargs="+", default=["torch", "tf"], choices=["torch", "tf"])
    parser.add_argument("--update-results", action="store_true",
                        help="with --skip-train: rewrite results/ch4_quality.json (training times kept)")
    args = parser.parse_args()
    train = not args.skip_train
    rows = []
    for fw in args.frameworks:
        rows += dates_rows(fw, train)
    print(f"\nChapter 4 — fixed-context GRU encoder-decoder (no attention); beam score log P / |Y|^{ALPHA}\n")
    print("| task | framework | decoding | metric | test | parameters | train s | decode s |")
    print("|---|---|---|---|---:|---:|---:|---:|")
    for r in rows:
        t = "" if r["train_s"] is None else f"{r['train_s']:.0f}"
        print(f"| {r['task']} | {r['framework']} | {r['decoding']} | {r['metric']} | {r['value']:.2f} | "
              f"{r['params']:,} | {t} | {r['decode_s']:.1f} |")
    if RESULTS.exists() and not train:     # evaluation only: keep the recorded training facts
        old = {(r["task"], r["framework"], r["decoding"]): r for r in json.loads(RESULTS.read_text())["rows"]}
        for r in rows:
            prev = old.get((r["task"], r["framework"], r["decoding"]), {})
            r["train_s"], r["best_epoch"] = prev.get("train_s"), prev.get("best_epoch")
    if train or args.update_results:       # keep the rows of frameworks not rerun now
        old = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        redone = {(r["task"], r["framework"]) for r in rows}
        rows = [r for r in old.get("rows", []) if (r["task"], r["framework"]) not in redone] + rows
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(dict(dates_model=DATES_MODEL, dates_train=DATES_TRAIN, alpha=ALPHA, rows=rows),
                                      indent=1) + "\n")
        print(f"\nwritten {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
