"""Chapter 4 quality table: the fixed-context GRU encoder–decoder on dates -> ISO and EN -> DE, both frameworks.

Trains the checkpoints that the chapter-4 notebooks load (llmbook/checkpoints/seq2seq_{dates,ende}_{torch,tf}.npz,
and the EN->DE SentencePiece tokenisers ende_spm.npz), then prints
  - dates: exact match on the test split (greedy and beam k=4);
  - EN->DE: sacreBLEU corpus BLEU on the test split for greedy decoding and beam k in {1, 2, 4, 8};
  - training and decoding times.
`--skip-train` only evaluates the committed checkpoints.

    python benchmarks/ch4_quality.py               # train everything (~40 min on 2 CPU cores)
    python benchmarks/ch4_quality.py --tasks ende  # retrain EN->DE only (rows of the other task are kept)
    python benchmarks/ch4_quality.py --skip-train  # evaluate the committed checkpoints (~5 min)
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")   # steady torch timings on a shared 2-core machine

import numpy as np  # noqa: E402

import llmbook  # noqa: E402
from llmbook.data import dates, en_de  # noqa: E402
from llmbook.data.seq2seq import (PAD_ID, CharTokenizer, Seq2SeqBatches, SubwordTokenizer,  # noqa: E402
                                  encode_pairs, load_tokenizers, save_tokenizers)
from llmbook.metrics import corpus_bleu, exact_match  # noqa: E402
from seq2seq_common import decode_all, framework, n_params  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CKPT = ROOT / "llmbook" / "checkpoints"
RESULTS = ROOT / "benchmarks" / "results" / "ch4_quality.json"

# The recipes, shared by both frameworks.
DATES_MODEL = dict(embed_dim=32, hidden_dim=128, dropout=0.0)
DATES_TRAIN = dict(batch_size=64, lr=3e-3, epochs=8, seed=0, max_len=12)
ENDE_VOCAB = dict(en=2000, de=2000)             # SentencePiece BPE pieces per language, specials included
ENDE_MODEL = dict(embed_dim=64, hidden_dim=160, dropout=0.3)
ENDE_TRAIN = dict(batch_size=64, lr=3e-3, epochs=28, seed=0, max_len=50)
ALPHA = 0.6                                     # length normalisation: score = log P(Y|X) / |Y|**ALPHA
BEAMS = (1, 2, 4, 8)








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


def ende_tokenizers(train: bool, pairs) -> tuple[SubwordTokenizer, SubwordTokenizer]:
    path = CKPT / "ende_spm.npz"
    if train:
        en = SubwordTokenizer.train([s for s, _ in pairs], ENDE_VOCAB["en"])
        de = SubwordTokenizer.train([t for _, t in pairs], ENDE_VOCAB["de"])
        save_tokenizers(path, en=en, de=de)
    toks = load_tokenizers(path)
    return toks["en"], toks["de"]


def ende_rows(fw: str, train: bool, train_tokenizers: bool) -> list[dict]:
    F = framework(fw)
    Seq2Seq, fit, evaluate, greedy, beam, save, load = F.Seq2Seq, F.fit, F.evaluate, F.greedy, F.beam, F.save, F.load
    data = en_de()
    en, de = ende_tokenizers(train_tokenizers, data.train)
    xs, ys = encode_pairs(data.train, en, de)
    vx, vy = encode_pairs(data.validation, en, de)
    tx, _ = encode_pairs(data.test, en, de)
    config = dict(src_vocab_size=len(en), tgt_vocab_size=len(de), pad_id=PAD_ID, **ENDE_MODEL)
    path = CKPT / f"seq2seq_ende_{fw}.npz"
    T = ENDE_TRAIN
    seconds, best_epoch = None, None
    if train:
        llmbook.seed(T["seed"])
        model, best, seconds = Seq2Seq(**config), np.inf, 0.0
        for epoch in range(T["epochs"]):
            hist = fit(model, Seq2SeqBatches(xs, ys, T["batch_size"], seed=T["seed"] + epoch), epochs=1, lr=T["lr"],
                       valid=Seq2SeqBatches(vx, vy, 256, shuffle=False), ignore_index=PAD_ID, progress=False)
            seconds += hist["seconds"][0]
            print(f"  EN-DE {fw} epoch {epoch + 1}: train loss {hist['loss'][0]:.3f}  val loss "
                  f"{hist['val_loss'][0]:.3f}  ({hist['seconds'][0]:.0f} s)", flush=True)
            if hist["val_loss"][0] < best:                # keep the best epoch on validation
                best, best_epoch = hist["val_loss"][0], epoch + 1
                save(model, path, **config)
    model = load(Seq2Seq, path)
    val_loss = evaluate(model, Seq2SeqBatches(vx, vy, 256, shuffle=False), ignore_index=PAD_ID)
    refs = [t for _, t in data.test]
    rows, outputs = [], {}
    settings = [("greedy", greedy, {})] + [(f"beam k={k}", beam, dict(k=k, alpha=ALPHA)) for k in BEAMS]
    for name, decode, kw in settings:
        out, dec_s = decode_all(decode, model, tx, max_len=T["max_len"], **kw)
        hyps = [de.decode(o) for o in out]
        bleu = corpus_bleu(hyps, refs)
        outputs[name] = hyps[:5]
        rows.append(dict(task="EN -> DE", framework=fw, decoding=name, metric="BLEU", value=bleu.score,
                         signature=bleu.signature, params=n_params(model, fw), train_s=seconds, decode_s=dec_s,
                         val_loss=val_loss, best_epoch=best_epoch))
    print(f"  EN-DE {fw} first test translations:", flush=True)
    for (src, ref), g, b in zip(data.test[:3], outputs["greedy"], outputs["beam k=4"]):
        print(f"    {src} | ref: {ref} | greedy: {g} | beam 4: {b}", flush=True)
    return rows


def alpha_sweep(fw: str) -> list[dict]:
    """Validation BLEU of beam k=4 for a few length-normalisation exponents (how ALPHA was chosen)."""
    F = framework(fw)
    Seq2Seq, beam, load = F.Seq2Seq, F.beam, F.load
    data = en_de()
    en, de = ende_tokenizers(False, data.train)
    vx, _ = encode_pairs(data.validation, en, de)
    model = load(Seq2Seq, CKPT / f"seq2seq_ende_{fw}.npz")
    rows = []
    for alpha in (0.0, 0.3, 0.6, 1.0):
        out, _ = decode_all(beam, model, vx, max_len=ENDE_TRAIN["max_len"], k=4, alpha=alpha)
        bleu = corpus_bleu([de.decode(o) for o in out], [t for _, t in data.validation])
        rows.append(dict(framework=fw, alpha=alpha, val_bleu=bleu.score))
        print(f"  alpha {alpha}: validation BLEU (beam 4) {bleu.score:.2f}", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-train", action="store_true", help="evaluate the committed checkpoints only")
    parser.add_argument("--frameworks", nargs="+", default=["torch", "tf"], choices=["torch", "tf"])
    parser.add_argument("--tasks", nargs="+", default=["dates", "ende"], choices=["dates", "ende"])
    parser.add_argument("--update-results", action="store_true",
                        help="with --skip-train: rewrite results/ch4_quality.json (training times kept)")
    args = parser.parse_args()
    train = not args.skip_train
    rows, sweep = [], []
    for i, fw in enumerate(args.frameworks):
        if "dates" in args.tasks:
            rows += dates_rows(fw, train)
        if "ende" in args.tasks:
            rows += ende_rows(fw, train, train_tokenizers=train and i == 0)
            sweep += alpha_sweep(fw)
    print(f"\nChapter 4 — fixed-context GRU encoder-decoder (no attention); beam score log P / |Y|^{ALPHA}\n")
    print("| task | framework | decoding | metric | test | parameters | train s | decode s |")
    print("|---|---|---|---|---:|---:|---:|---:|")
    for r in rows:
        t = "" if r["train_s"] is None else f"{r['train_s']:.0f}"
        print(f"| {r['task']} | {r['framework']} | {r['decoding']} | {r['metric']} | {r['value']:.2f} | "
              f"{r['params']:,} | {t} | {r['decode_s']:.1f} |")
    sig = next((r["signature"] for r in rows if "signature" in r), None)
    if sig:
        print(f"\nsacreBLEU signature: {sig}")
    if RESULTS.exists() and not train:     # evaluation only: keep the recorded training facts
        old = {(r["task"], r["framework"], r["decoding"]): r for r in json.loads(RESULTS.read_text())["rows"]}
        for r in rows:
            prev = old.get((r["task"], r["framework"], r["decoding"]), {})
            r["train_s"], r["best_epoch"] = prev.get("train_s"), prev.get("best_epoch")
    if train or args.update_results:       # keep the rows of tasks and frameworks not rerun now
        old = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        redone = {(r["task"], r["framework"]) for r in rows}
        rows = [r for r in old.get("rows", []) if (r["task"], r["framework"]) not in redone] + rows
        sweep = [r for r in old.get("alpha_sweep", []) if r["framework"] not in args.frameworks
                 or "ende" not in args.tasks] + sweep
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(dict(dates_model=DATES_MODEL, dates_train=DATES_TRAIN, ende_vocab=ENDE_VOCAB,
                                           ende_model=ENDE_MODEL, ende_train=ENDE_TRAIN, alpha=ALPHA, rows=rows,
                                           alpha_sweep=sweep), indent=1) + "\n")
        print(f"\nwritten {RESULTS.relative_to(ROOT)}")

if __name__ == "__main__":
    main()
