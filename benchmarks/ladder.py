"""The translation ladder of chapters 4-6 on the EN->ES Bible corpus: one recipe, one thing changed per rung.

Rungs (each differs from the one before in what the line says; `python benchmarks/ladder.py rungs`):
  a  GRU encoder-decoder, fixed context: the decoder reads the encoder's summary c at every step
  b  a + additive attention (Bahdanau): c_t = attention over all encoder states, nothing else changes
  c  b with the dot score (Luong), c2 with the general score (Luong)
  d  the Transformer (chapter 6) at about b's parameter count
  e  d stopped at b's mean time to its best epoch (`speed` times an epoch of each; `report` reads e's loss off d's runs;
     `train e` reruns d's seed to the budget, or copies d's results where that run stopped within it)
  f  d's parameter count in one decoder-only stack (chapter 7): a GPT reads `source <bos> target`, loss on the target

One recipe for every rung and both frameworks (RECIPE): SentencePiece 4k/4k (llmbook/checkpoints/enes_spm.npz),
batches of 128 sentence pairs of similar length, Adam with a linear warm-up and inverse-square-root decay,
label smoothing 0.1, dropout 0.2, gradient clipping at norm 1; every epoch ends with the validation loss (plain
cross-entropy), the best epoch is kept, and training stops when it has not improved for PATIENCE epochs.
One initialisation too: a TensorFlow run starts from the initial weights of its PyTorch twin of the same seed
(`start_like_pytorch`), so the two frameworks' runs differ in their arithmetic and dropout masks only.
The peak learning rate, 4e-3, was chosen from {1.5e-3, 4e-3} by the validation loss of 5-epoch pilots of
rungs b and d (PyTorch, seed 0; `ladder.py pilot`, results/ladder_pilots.json): both architectures learn
faster at 4e-3 (after 5 epochs: GRU 4.03 against 5.25, Transformer 3.33 against 3.96).
Test scores come from the saved (float16) best checkpoint: sacreBLEU and chrF with their signatures, greedy and
beam search (k=4), BLEU by source length, the repeated-4-gram rate, and every hypothesis (for paired bootstrap).

    python benchmarks/ladder.py train b --framework torch --seed 0   # resumes an interrupted run
    python benchmarks/ladder.py snapshot b                           # test scores of the best epoch so far of a run still training
    python benchmarks/ladder.py report [--write]                     # the ladder: mean ± std, paired bootstrap
    python benchmarks/ladder.py speed                                # seconds per epoch of each rung, side by side
    python benchmarks/ladder.py pilot b --lr 4e-3                     # 5 epochs at another peak learning rate

A run keeps its resumable state (model, optimizer, RNG, history) and its best checkpoint in benchmarks/state/,
committed at the end of a session while the run is unfinished (a session is shorter than a run: the next one
resumes it on a fresh machine) and deleted when the run has finished; when seed 0 has finished, or `snapshot` scores a run still training, its best checkpoint is
copied to llmbook/checkpoints/ladder_{rung}_{framework}.npz (the pages load it; their tables mark a snapshot).
Results: benchmarks/results/ladder/{rung}_{framework}_s{seed}.json.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")   # one thread per run: two runs share the 2-core machine

import numpy as np  # noqa: E402

import llmbook  # noqa: E402
from llmbook.data.bible import en_es  # noqa: E402
from llmbook.data.seq2seq import PAD_ID, Seq2SeqBatches, encode_pairs, load_tokenizers  # noqa: E402
from llmbook.metrics import bleu_by_length, repeated_4gram_rate  # noqa: E402
from seq2seq_common import decode_all, framework, n_params  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CKPT = ROOT / "llmbook" / "checkpoints"
RUNS = ROOT / "benchmarks" / "runs"       # scratch: pilots, snapshots (not committed)
# A run's resumable state and best checkpoint: committed at the end of a session while the run is unfinished,
# so that the next session (on a fresh machine) resumes it; deleted by `finish` once its results are written.
STATE = ROOT / "benchmarks" / "state"
RESULTS = ROOT / "benchmarks" / "results" / "ladder"

RECIPE = dict(batch_size=128, peak_lr=4e-3, warmup=400, label_smoothing=0.1, clip=1.0, patience=5,
              max_epochs=200, max_len=100, beam_k=4, alpha=0.6)
GRU = dict(embed_dim=64, hidden_dim=128, dropout=0.2)
TRANSFORMER = dict(d_model=96, num_heads=4, num_encoder_layers=3, num_decoder_layers=2, d_ff=256, dropout=0.2,
                   max_len=128)
RUNGS = {
    "a": ("Seq2SeqAttention", dict(GRU, score="fixed"), "fixed context c at every decoder step (Cho et al., 2014)"),
    "b": ("Seq2SeqAttention", dict(GRU, score="additive"), "a, with c_t from additive attention (Bahdanau et al.)"),
    "c": ("Seq2SeqAttention", dict(GRU, score="dot"), "b, with the dot score (Luong et al., 2015)"),
    "c2": ("Seq2SeqAttention", dict(GRU, score="general"), "b, with the general score (Luong et al., 2015)"),
    "d": ("Transformer", TRANSFORMER, "the Transformer at about b's parameter count"),
    "e": ("Transformer", TRANSFORMER, "d stopped at b's mean time to its best epoch (ladder.py speed)"),
    "f": ("GPTTranslator", dict(d_model=96, num_heads=4, num_layers=6, d_ff=224, dropout=0.2, max_len=256,
                                   pos_std=0.02),   # seed 0 was trained before GPT's pos_std=1 default
          "d as one decoder-only stack at d's parameter count: source <bos> target, loss on the target (chapter 7)"),
}
BUCKETS = ((1, 10), (11, 15), (16, 20), (21, 25), (26, 30))      # English source words


def data():
    """The corpus, its tokenisers and the token ids of each split."""
    corpus = en_es()
    toks = load_tokenizers(CKPT / "enes_spm.npz")
    en, es = toks["en"], toks["es"]
    ids = {s: encode_pairs(getattr(corpus, s), en, es) for s in ("train", "validation", "test")}
    return corpus, en, es, ids


def build(F, rung: str, en, es):
    cls_name, sizes, _ = RUNGS[rung]
    config = dict(src_vocab_size=len(en), tgt_vocab_size=len(es), pad_id=PAD_ID, **sizes)
    return getattr(F, cls_name), config


def start_like_pytorch(model, rung: str, en, es, seed: int) -> None:
    """Give a new TensorFlow model the initial weights of its PyTorch twin of the same seed (llmbook.parity).

    One initialisation for both frameworks: their runs then differ in the framework's arithmetic (and its
    dropout masks) only.
    """
    from llmbook.parity import torch_to_tf
    cls, config = build(framework("torch"), rung, en, es)
    llmbook.seed(seed)
    torch_to_tf(cls(**config), model)


def paths(rung: str, fw: str, seed: int) -> tuple[Path, Path, Path]:
    """Best checkpoint, resumable state, results file."""
    stem = STATE / f"ladder_{rung}_{fw}_s{seed}"
    return stem.with_suffix(".npz"), stem.with_suffix(".state"), RESULTS / f"{rung}_{fw}_s{seed}.json"


def shipped(rung: str, fw: str) -> Path:
    """Where seed 0's best checkpoint goes when its run has finished (package data, loaded by the pages)."""
    return CKPT / f"ladder_{rung}_{fw}.npz"


def train(rung: str, fw: str, seed: int, stop_after: int | None = None, recipe: dict | None = None,
          files: tuple[Path, Path, Path] | None = None) -> dict:
    """Train until the validation loss has not improved for PATIENCE epochs; keep the best epoch.

    `stop_after` interrupts after that many epochs (state["finished"] False); the next call resumes.
    `recipe` and `files` (best checkpoint, state, results) default to RECIPE and paths(); pilots pass their own.
    """
    F = framework(fw)
    corpus, en, es, ids = data()
    cls, config = build(F, rung, en, es)
    best_path, state_path, _ = files or paths(rung, fw, seed)
    R = recipe or RECIPE
    peak = R["peak_lr"]
    llmbook.seed(seed)
    model = cls(**config)
    if fw == "tf":
        start_like_pytorch(model, rung, en, es, seed)
    schedule = F.warmup_inverse_sqrt(peak, R["warmup"])
    state = dict(history=[], best_val=float("inf"), best_epoch=0, train_s=0.0)
    opt = make_optimizer(fw, model, peak)
    if state_path.exists():                                       # resume an interrupted run where it stopped
        state = load_state(fw, model, opt, state_path, ids["train"])
        print(f"{rung} {fw} s{seed}: resumed after epoch {len(state['history'])}", flush=True)
    valid = Seq2SeqBatches(*ids["validation"], 256, shuffle=False)
    budget = e_budget() if rung == "e" else None
    while True:
        epoch = len(state["history"]) + 1
        if stop_after is not None and epoch > stop_after:
            return dict(state, finished=False)
        if epoch - state["best_epoch"] > R["patience"] and state["best_epoch"]:
            print(f"{rung} {fw} s{seed}: stopped after epoch {epoch - 1}: no better validation loss in "
                  f"{R['patience']} epochs since epoch {state['best_epoch']}", flush=True)
            break
        if rung == "e" and epoch > budget:
            print(f"{rung} {fw} s{seed}: stopped at the budget of {budget} epochs (b's training time)", flush=True)
            break
        if epoch > R["max_epochs"]:
            raise RuntimeError(f"{rung} {fw} s{seed}: still improving after {R['max_epochs']} epochs")
        hist = F.fit(model, Seq2SeqBatches(*ids["train"], R["batch_size"], seed=1000 * seed + epoch), epochs=1,
                     optimizer=opt, schedule=schedule, clip=R["clip"], valid=valid, ignore_index=PAD_ID,
                     label_smoothing=R["label_smoothing"], progress=False)
        state["train_s"] += hist["seconds"][0]
        val = hist["val_loss"][0]
        state["history"].append(dict(epoch=epoch, train_loss=hist["loss"][0], val_loss=val,
                                     seconds=hist["seconds"][0]))
        better = val < state["best_val"]
        if better:
            state["best_val"], state["best_epoch"], state["best_train_s"] = val, epoch, state["train_s"]
            F.save(model, best_path, **config)
        print(f"{rung} {fw} s{seed} epoch {epoch}: train {hist['loss'][0]:.3f}  val {val:.3f}"
              f"{'  *' if better else ''}  ({hist['seconds'][0]:.0f} s)", flush=True)
        F.save_state(state_path, model, opt, state)
    return dict(state, finished=True)


SPEED = ROOT / "benchmarks" / "results" / "ladder_speed.json"


def speed(rungs: tuple[str, ...] = ("a", "b", "d", "f"), fw: str = "torch", n_pairs: int = 2560,
          rounds: int = 3, write: bool = True) -> dict:
    """Seconds per training epoch of each rung at the recipe's batch size, one thread, from `n_pairs` random
    training pairs (the same for every rung), the rungs taking turns `rounds` times.

    The fastest round of each rung is kept (other load on the machine only adds time) and scaled to the
    whole training split; the histories' epoch times cannot compare rungs, as their runs shared the CPU
    with different jobs.
    """
    F = framework(fw)
    _, en, es, ids = data()
    src, tgt = ids["train"]
    pick = np.random.default_rng(0).choice(len(src), size=min(n_pairs, len(src)), replace=False)
    sub = [src[i] for i in pick], [tgt[i] for i in pick]
    models = {}
    for rung in rungs:
        cls, config = build(F, rung, en, es)
        llmbook.seed(0)
        model = cls(**config)
        models[rung] = (model, make_optimizer(fw, model, RECIPE["peak_lr"]))
    seconds = {rung: [] for rung in rungs}
    for r in range(rounds):
        for rung in rungs:
            model, opt = models[rung]
            hist = F.fit(model, Seq2SeqBatches(*sub, RECIPE["batch_size"], seed=r), epochs=1, optimizer=opt,
                         clip=RECIPE["clip"], ignore_index=PAD_ID, label_smoothing=RECIPE["label_smoothing"],
                         progress=False)
            seconds[rung].append(hist["seconds"][0])
    scale = len(src) / len(pick)
    out = dict(framework=fw, threads=int(os.environ["OMP_NUM_THREADS"]), n_pairs=len(pick), train_pairs=len(src),
               rounds=rounds, epoch_s={rung: min(t) * scale for rung, t in seconds.items()}, rounds_s=seconds)
    for rung in rungs:
        print(f"{rung} {fw}: {out['epoch_s'][rung]:6.1f} s per epoch (fastest of {rounds} rounds on "
              f"{len(pick)} pairs, scaled to {len(src)})", flush=True)
    if write:
        SPEED.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {SPEED}")
    return out


PILOTS = ROOT / "benchmarks" / "results" / "ladder_pilots.json"


def pilot(rung: str, fw: str, lr: float, epochs: int = 5) -> list[dict]:
    """A short run at peak learning rate `lr` in a scratch folder; its history goes into results/ladder_pilots.json."""
    scratch = RUNS / "pilots" / f"{rung}_{fw}_{lr:g}"
    history = train(rung, fw, 0, stop_after=epochs, recipe=dict(RECIPE, peak_lr=lr),
                    files=(scratch / "best.npz", scratch / "state", scratch / "results.json"))["history"]
    record_pilot(rung, fw, lr, history)
    return history


def record_pilot(rung: str, fw: str, lr: float, history: list[dict]) -> None:
    """Keep one pilot's validation losses (replacing an earlier record of the same rung, framework and rate)."""
    old = json.loads(PILOTS.read_text(encoding="utf-8")) if PILOTS.exists() else []
    keep = [p for p in old if (p["rung"], p["framework"], p["peak_lr"]) != (rung, fw, lr)]
    others = {k: v for k, v in RECIPE.items() if k != "peak_lr"}          # the rest of the recipe, unchanged
    keep.append(dict(rung=rung, framework=fw, seed=0, peak_lr=lr, recipe=others,
                     val_loss=[round(h["val_loss"], 4) for h in history]))
    PILOTS.write_text(json.dumps(sorted(keep, key=lambda p: (p["rung"], p["framework"], p["peak_lr"])), indent=1)
                      + "\n", encoding="utf-8")


def make_optimizer(fw: str, model, lr: float):
    """Adam with the same settings in both frameworks."""
    if fw == "torch":
        import torch
        return torch.optim.Adam(model.parameters(), lr=lr)
    import keras
    return keras.optimizers.Adam(learning_rate=lr, epsilon=1e-8)        # as llmbook.tf.train.fit's default


def load_state(fw: str, model, opt, path: Path, train_ids) -> dict:
    """Restore a run's training state into a freshly built model and optimizer; return the run's state."""
    F = framework(fw)
    if fw == "tf":
        (src, dec_in), _ = next(iter(Seq2SeqBatches(*train_ids, 2, shuffle=False)))
        model(src, dec_in)                                        # build the weights before assigning them
    return F.restore_state(F.read_state(path), model, opt)


def evaluate(rung: str, fw: str, seed: int, state: dict, finished: bool = True,
             best_path: Path | None = None) -> dict:
    """Test scores of the saved best checkpoint (or `best_path`); writes the results file."""
    import sacrebleu
    F = framework(fw)
    corpus, en, es, ids = data()
    cls, config = build(F, rung, en, es)
    _, _, results_path = paths(rung, fw, seed)
    model = F.load(cls, best_path or paths(rung, fw, seed)[0])
    sources, refs = [s for s, _ in corpus.test], [t for _, t in corpus.test]
    out = dict(rung=rung, framework=fw, seed=seed, model=cls.__name__, config=config, recipe=RECIPE,
               what=RUNGS[rung][2], params=n_params(model, fw), best_epoch=state["best_epoch"],
               epochs=len(state["history"]), finished=finished, best_val_loss=state["best_val"], train_s=state.get("best_train_s"),
               total_train_s=state["train_s"], history=state["history"], split_checksum=corpus.checksum,
               device="cpu (1 thread)" if fw == "tf" or not _cuda() else "cuda", decodings={})
    for name in ("greedy", f"beam k={RECIPE['beam_k']}"):
        kw = {} if name == "greedy" else dict(k=RECIPE["beam_k"], alpha=RECIPE["alpha"])
        seqs, dec_s = decode_all(F.greedy if name == "greedy" else F.beam, model, ids["test"][0],
                                 max_len=RECIPE["max_len"], **kw)
        hyps = [es.decode(s) for s in seqs]
        bleu, chrf = sacrebleu.metrics.BLEU(), sacrebleu.metrics.CHRF()
        b, c = bleu.corpus_score(hyps, [refs]), chrf.corpus_score(hyps, [refs])
        buckets = bleu_by_length(hyps, refs, sources, filled_buckets(sources))
        out["decodings"][name] = dict(bleu=b.score, bleu_signature=str(bleu.get_signature()), chrf=c.score,
                                      chrf_signature=str(chrf.get_signature()), decode_s=dec_s,
                                      repeated_4gram_rate=repeated_4gram_rate(hyps), buckets=buckets,
                                      hypotheses=hyps)
        print(f"{rung} {fw} s{seed} {name}: BLEU {b.score:.2f}  chrF {c.score:.2f}", flush=True)
    out["reference_repeated_4gram_rate"] = repeated_4gram_rate(refs)
    results_path.parent.mkdir(parents=True, exist_ok=True)
    results_path.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    return out


def finish(rung: str, fw: str, seed: int, state: dict) -> dict:
    """A finished run: seed 0's best checkpoint copied to where the pages load it, then the test scores; the
    run's state and best checkpoint are deleted once the results (every hypothesis included) are written."""
    best_path, state_path, _ = paths(rung, fw, seed)
    if seed == 0:
        shutil.copyfile(best_path, shipped(rung, fw))
    result = evaluate(rung, fw, seed, state)
    best_path.unlink()
    state_path.unlink(missing_ok=True)
    return result


def snapshot(rung: str, fw: str, seed: int) -> dict:
    """Test scores of a run still training: its best epoch so far, marked finished: false (seed 0's is shipped).

    Safe beside the training process: the best checkpoint is copied first and used only if it loads and the
    state still names the same best epoch before and after the copy.
    """
    best_path, state_path, _ = paths(rung, fw, seed)
    if not state_path.exists():
        sys.exit(f"no run of {rung} {fw} s{seed} in {STATE}: start it with `ladder.py train {rung} --framework {fw}`")
    F = framework(fw)
    cls = getattr(F, RUNGS[rung][0])
    copy = RUNS / "snapshots" / best_path.name
    copy.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(10):
        before = read_state(fw, state_path)
        shutil.copyfile(best_path, copy)
        after = read_state(fw, state_path)
        try:
            F.load(cls, copy)
        except Exception:                                         # caught mid-write: try again
            time.sleep(30)
            continue
        if before["best_epoch"] == after["best_epoch"]:
            break
    else:
        sys.exit(f"could not copy a complete best checkpoint of {rung} {fw} s{seed}: try again")
    if seed == 0:
        shutil.copyfile(copy, shipped(rung, fw))
    print(f"{rung} {fw} s{seed}: best epoch {after['best_epoch']} of {len(after['history'])} so far", flush=True)
    return evaluate(rung, fw, seed, after, finished=False, best_path=copy)


def read_state(fw: str, path: Path) -> dict:
    """The history and best epoch kept in a run's resumable state (no model built)."""
    return framework(fw).read_state(path)["state"]


def filled_buckets(sources) -> list[tuple[int, int]]:
    """The BUCKETS that hold at least one source sentence."""
    lengths = [len(s.split()) for s in sources]
    return [(lo, hi) for lo, hi in BUCKETS if any(lo <= n <= hi for n in lengths)]


def _cuda() -> bool:
    import torch
    return torch.cuda.is_available()


ADJACENT = (("a", "b"), ("b", "c"), ("b", "c2"), ("b", "d"), ("b", "e"), ("d", "f"))   # (lower rung, the rung built on it)
SUMMARY = CKPT / "ladder.json"        # shipped with the package: what the pages print beside their own runs
QUALITY = ROOT / "benchmarks" / "results" / "ladder.json"          # the same rows for appendix/quality_table.md


def _mean_std(values) -> dict:
    v = np.asarray(values, dtype=float)
    return dict(mean=float(v.mean()), std=float(v.std(ddof=1)) if len(v) > 1 else None, n=len(v))


def summarise(runs: list[dict], refs: list[str], n_bootstrap: int = 1000) -> dict:
    """Seeds pooled per rung and framework; seed 0's bucket BLEU with bootstrap intervals (from its results file),
    its validation loss per epoch, and paired bootstrap tests between adjacent rungs on every seed both
    rungs have (seed s against seed s; seed 0's are the shipped checkpoints)."""
    from sacrebleu.metrics import BLEU
    from sacrebleu.significance import PairedTest
    groups: dict[tuple, list] = {}
    for r in runs:
        groups.setdefault((r["rung"], r["framework"]), []).append(r)
    rows, buckets, paired, curves = [], [], [], []
    for (rung, fw), rs in sorted(groups.items()):
        rs.sort(key=lambda r: r["seed"])
        row = dict(rung=rung, framework=fw, what=rs[0]["what"], params=rs[0]["params"], seeds=[r["seed"] for r in rs],
                   best_epochs=[r["best_epoch"] for r in rs], epochs=[r["epochs"] for r in rs],
                   finished=all(r.get("finished", True) for r in rs),
                   train_min=_mean_std([r["train_s"] / 60 for r in rs]), device=rs[0]["device"])
        for dec in rs[0]["decodings"]:
            row[dec] = {k: _mean_std([r["decodings"][dec][k] for r in rs])
                        for k in ("bleu", "chrf", "repeated_4gram_rate")}
        rows.append(row)
        seed0 = next((r for r in rs if r["seed"] == 0), None)
        if seed0 is None:
            continue
        buckets += [dict(rung=rung, framework=fw, decoding="greedy", **b)
                    for b in seed0["decodings"]["greedy"]["buckets"]]
        curves.append(dict(rung=rung, framework=fw, seed=0, val_loss=[h["val_loss"] for h in seed0["history"]]))
    by_seed = {(r["rung"], r["framework"], r["seed"]): r for r in runs}
    for fw in ("torch", "tf"):
        for lower, upper in ADJACENT:
            shared = sorted({s for (k, f, s) in by_seed if (k, f) == (lower, fw)}
                            & {s for (k, f, s) in by_seed if (k, f) == (upper, fw)})
            for seed in shared:                        # seed s of one rung against seed s of the other
                for dec in ("greedy", f"beam k={RECIPE['beam_k']}"):
                    systems = [(k, by_seed[(k, fw, seed)]["decodings"][dec]["hypotheses"]) for k in (lower, upper)]
                    _, res = PairedTest(systems, {"BLEU": BLEU()}, [refs], test_type="bs", n_samples=n_bootstrap)()
                    base, other = res["BLEU"]
                    paired.append(dict(framework=fw, decoding=dec, base=lower, system=upper, seed=seed,
                                       base_bleu=base.score, system_bleu=other.score, p_value=float(other.p_value)))
    any_run = runs[0]
    return dict(recipe=RECIPE, split_checksum=any_run["split_checksum"], n_bootstrap=n_bootstrap,
                bleu_signature=any_run["decodings"]["greedy"]["bleu_signature"],
                chrf_signature=any_run["decodings"]["greedy"]["chrf_signature"],
                reference_repeated_4gram_rate=any_run["reference_repeated_4gram_rate"],
                rows=rows, buckets=buckets, paired=paired, curves=curves)


def e_budget() -> int:
    """Rung e's epochs: rung b's mean epochs to its best (PyTorch seeds) in epochs of d, by ladder.py speed."""
    if not SPEED.exists():
        raise FileNotFoundError(f"{SPEED} is missing: run `python benchmarks/ladder.py speed` before training e")
    runs = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(RESULTS.glob("[bd]_torch_s*.json"))]
    if not {r["rung"] for r in runs} >= {"b", "d"}:
        raise FileNotFoundError(f"rung e needs finished PyTorch runs of b and d in {RESULTS}")
    return int(time_matched(runs, json.loads(SPEED.read_text(encoding="utf-8"))["epoch_s"])["budget_epochs"])


def e_from_d(fw: str, seed: int) -> dict | None:
    """Rung e's results for a seed whose run of d stopped on its own within e's budget (that run is e's),
    written without training; None when d's run of the seed is missing, unfinished or went past the budget."""
    d_path = paths("d", fw, seed)[2]
    if not d_path.exists():
        return None
    d = json.loads(d_path.read_text(encoding="utf-8"))
    budget = e_budget()
    if not d.get("finished", True) or d["epochs"] > budget:
        return None
    e = dict(d, rung="e", what=RUNGS["e"][2], same_run_as=f"d seed {seed}")
    out = paths("e", fw, seed)[2]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(e, indent=1) + "\n", encoding="utf-8")
    print(f"e {fw} s{seed}: d's run of seed {seed} stopped after epoch {d['epochs']}, within e's budget of "
          f"{budget} epochs, so it is e's run: wrote {out.name} from {d_path.name}", flush=True)
    return e


def time_matched(runs: list[dict], epoch_s: dict, base: str = "b", system: str = "d", fw: str = "torch") -> dict:
    """Rung e from rung d's runs: each seed's best validation loss within rung b's mean time to its best epoch.

    `epoch_s` (ladder.py speed) converts b's epochs into d's; d's trajectory up to that budget is its own run's
    (the same seed trains the same way; a run that stopped early would stop there under the budget too), so e
    needs no run of its own for its validation loss; its test scores need the checkpoint at `epoch_within`.
    """
    by = {k: sorted((r for r in runs if (r["rung"], r["framework"]) == (k, fw)), key=lambda r: r["seed"])
          for k in (base, system)}
    ratio = epoch_s[system] / epoch_s[base]
    budget = float(np.mean([r["best_epoch"] for r in by[base]])) / ratio      # in epochs of `system`
    seeds = []
    for r in by[system]:
        val = [h["val_loss"] for h in r["history"]]
        within = min(range(min(int(budget), len(val))), key=lambda e: val[e])   # a run that stopped earlier is e
        seeds.append(dict(seed=r["seed"], best_epoch=r["best_epoch"], best_val=r["best_val_loss"],
                          epoch_within=within + 1, val_within=val[within]))
    return dict(base=base, system=system, framework=fw, epoch_s={k: epoch_s[k] for k in (base, system)},
                ratio=ratio, base_best_epochs=[r["best_epoch"] for r in by[base]],
                base_best_val=[r["best_val_loss"] for r in by[base]], budget_epochs=budget,
                seeds=seeds)


def quality_rows(summary: dict) -> dict:
    """The summary's rows in the shape of benchmarks/quality_table.py: one row per rung, framework and decoding."""
    rows = []
    for r in summary["rows"]:
        for dec in ("greedy", f"beam k={RECIPE['beam_k']}"):
            seeds = len(r["seeds"])
            rows.append(dict(model=f"rung {r['rung']}: {r['what']}" + ("" if r["finished"] else " (still training)"),
                             framework=r["framework"], decoding=dec, params=r["params"],
                             metric="test BLEU" + (f" (mean of {seeds} seeds)" if seeds > 1 else ""),
                             value=r[dec]["bleu"]["mean"], train_s=60 * r["train_min"]["mean"],
                             signature=summary["bleu_signature"]))
    return dict(dataset="Bible verses, English to Spanish (held-out chapters)", rows=rows)


def _fmt(ms: dict, digits: int = 2) -> str:
    return f"{ms['mean']:.{digits}f}" + (f" ± {ms['std']:.{digits}f}" if ms["std"] is not None else "")


def report(write: bool) -> dict:
    """Print the ladder (mean ± std over seeds, bucket intervals, paired bootstrap); optionally ship the summary."""
    runs = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(RESULTS.glob("*.json"))]
    if not runs:
        sys.exit(f"no results in {RESULTS}: train a rung first (python benchmarks/ladder.py train b)")
    corpus = data()[0]
    summary = summarise(runs, [t for _, t in corpus.test])
    rungs = {(r["rung"], r["framework"]) for r in runs}
    if SPEED.exists() and {("b", "torch"), ("d", "torch")} <= rungs:
        summary["time_matched"] = tm = time_matched(runs, json.loads(SPEED.read_text(encoding="utf-8"))["epoch_s"])
    beam = f"beam k={RECIPE['beam_k']}"
    print(f"sacreBLEU {summary['bleu_signature']}\nchrF {summary['chrf_signature']}\n")
    print("| rung | framework | seeds | params | best epochs | train min | BLEU greedy | BLEU beam | chrF beam | rep. 4-grams |")
    print("|---|---|---:|---:|---|---:|---|---|---|---:|")
    for r in summary["rows"]:
        print(f"| {r['rung']} | {r['framework']} | {len(r['seeds'])} | {r['params']:,} | "
              f"{', '.join(map(str, r['best_epochs']))}{'' if r['finished'] else ' (training)'} | {_fmt(r['train_min'], 0)} | {_fmt(r['greedy']['bleu'])} | "
              f"{_fmt(r[beam]['bleu'])} | {_fmt(r[beam]['chrf'])} | {_fmt(r[beam]['repeated_4gram_rate'], 3)} |")
    print(f"\nreferences' repeated-4-gram rate: {summary['reference_repeated_4gram_rate']:.3f}")
    print("\nBLEU by English source length (greedy, seed 0; ± half the 95 % bootstrap interval):")
    for b in summary["buckets"]:
        print(f"  {b['rung']} {b['framework']:<5} {b['bucket']:>5} words ({b['n']:>3}): {b['bleu']:5.2f} ± {b['ci95']:.2f}")
    print(f"\npaired bootstrap ({summary['n_bootstrap']} resamples; seed s of one rung against seed s of the next):")
    for p in summary["paired"]:
        print(f"  {p['framework']:<5} {p['decoding']:<9} seed {p['seed']}  {p['base']} {p['base_bleu']:5.2f} -> "
              f"{p['system']} {p['system_bleu']:5.2f}  p = {p['p_value']:.4f}")
    if "time_matched" in summary:
        print(f"\nrung e: d within b's mean time to its best epoch ({tm['budget_epochs']:.0f} epochs of d; an epoch of d "
              f"costs {tm['ratio']:.2f} of b's, ladder.py speed):")
        for x in tm["seeds"]:
            print(f"  seed {x['seed']}: best epoch {x['best_epoch']} val {x['best_val']:.3f}; within the budget: "
                  f"epoch {x['epoch_within']} val {x['val_within']:.3f}")
    if write:
        SUMMARY.write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
        QUALITY.write_text(json.dumps(quality_rows(summary), indent=1) + "\n", encoding="utf-8")
        print(f"\nwrote {SUMMARY} and {QUALITY}")
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train one rung (resumes) and evaluate it")
    t.add_argument("rung", choices=sorted(RUNGS))
    t.add_argument("--framework", default="torch", choices=["torch", "tf"])
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--stop-after", type=int, help="interrupt after this many epochs in all (resume later)")
    snap = sub.add_parser("snapshot", help="test scores of a run still training (its best epoch so far)")
    snap.add_argument("rung", choices=sorted(RUNGS))
    snap.add_argument("--framework", default="torch", choices=["torch", "tf"])
    snap.add_argument("--seed", type=int, default=0)
    rep = sub.add_parser("report", help="print the ladder from benchmarks/results/ladder/")
    rep.add_argument("--write", action="store_true",
                     help=f"also write the summary the pages read ({SUMMARY.name}) and its quality-table rows")
    sub.add_parser("rungs", help="what each rung changes")
    sp = sub.add_parser("speed", help="seconds per training epoch of each rung, measured side by side")
    sp.add_argument("rungs", nargs="*", default=["a", "b", "d", "f"], choices=sorted(RUNGS))
    sp.add_argument("--framework", default="torch", choices=["torch", "tf"])
    sp.add_argument("--rounds", type=int, default=3)
    pil = sub.add_parser("pilot", help="a short run at another peak learning rate (results/ladder_pilots.json)")
    pil.add_argument("rung", choices=sorted(RUNGS))
    pil.add_argument("--lr", type=float, required=True)
    pil.add_argument("--framework", default="torch", choices=["torch", "tf"])
    pil.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    if args.cmd == "rungs":
        for k, (cls, sizes, what) in RUNGS.items():
            print(f"{k}: {what}\n   {cls}({sizes})")
    elif args.cmd == "pilot":
        history = pilot(args.rung, args.framework, args.lr, args.epochs)
        print("validation loss per epoch:", [round(h["val_loss"], 3) for h in history])
    elif args.cmd == "speed":
        speed(tuple(args.rungs), args.framework, rounds=args.rounds)
    elif args.cmd == "snapshot":
        snapshot(args.rung, args.framework, args.seed)
    elif args.cmd == "report":
        report(args.write)
    else:
        results_path = paths(args.rung, args.framework, args.seed)[2]
        if results_path.exists() and json.loads(results_path.read_text(encoding="utf-8")).get("finished", True):
            sys.exit(f"{results_path} holds a finished run: delete it to train {args.rung} {args.framework} "
                     f"s{args.seed} again")
        if args.rung == "e" and e_from_d(args.framework, args.seed) is not None:
            return
        start = time.time()
        state = train(args.rung, args.framework, args.seed, args.stop_after)
        if not state["finished"]:
            print(f"interrupted after epoch {len(state['history'])}: run the same command again to resume")
            return
        finish(args.rung, args.framework, args.seed, state)
        print(f"done in {(time.time() - start) / 60:.0f} min", flush=True)


if __name__ == "__main__":
    main()
