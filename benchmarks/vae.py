"""Appendix, VAE: a sequence VAE (Bowman et al., 2016) on short English Bible sentences, and what collapses without help.

Sentences of 4-15 words from the English side of the Bible corpus (llmbook.data.sentences: verses
split at sentence ends, the corpus's split by whole chapters). Two runs of the same PyTorch
`SentenceVAE`, same data, batches and initial weights:

- "annealed": KL weight from 0 to 1 linearly over `kl_warmup` steps, word dropout `word_dropout`
  on the decoder inputs (Bowman et al.'s two remedies for posterior collapse);
- "plain": the ELBO with KL weight 1 from the start and no word dropout (shorter run).

Each keeps the pass with the best validation ELBO (full KL weight). On the test sentences it reports,
per sentence in nats, the reconstruction NLL E_q[-log p(x|z)] (mean over `eval_samples` draws of
z), the KL, the ELBO = -(reconstruction + KL), a bound on perplexity per token exp(-ELBO / tokens),
and the active units (latent dimensions whose posterior mean varies across sentences,
Cov_x(E_q[z_j]) > 0.01, Burda et al., 2016).

The loop is written out here rather than using llmbook.torch.train.fit: the loss needs the step
(for the KL weight) and returns two terms, which fit's loss_fn(output, targets) cannot express.

Writes benchmarks/results/vae.json and llmbook/checkpoints/vae_torch.npz (float16, the annealed run)
with vae.json beside it (what the appendix page shows), then converts the checkpoint for
TensorFlow (vae_tf.npz, the same weights) and scores it there too.

    OMP_NUM_THREADS=1 nice -n 5 python benchmarks/vae.py           # both runs (~12 min on one thread)
    python benchmarks/vae.py --skip-train                          # evaluate the committed checkpoint
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

import llmbook  # noqa: E402
from llmbook.data.batching import similar_length_batches  # noqa: E402
from llmbook.data.sentences import (BOS_ID, EOS_ID, PAD_ID, encode_sentences, sentence_vocab,  # noqa: E402
                                    short_sentences, take, word_dropout)
from llmbook.torch.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from llmbook.torch.vae import SentenceVAE, elbo_terms, kl_weight  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CKPT = ROOT / "llmbook" / "checkpoints"
RESULTS = ROOT / "benchmarks" / "results" / "vae.json"
DATASET = "Bible sentences, 4-15 words (EN, held-out chapters)"
DATA = dict(min_words=4, max_words=15, min_count=3)
MODEL = dict(embed_dim=96, hidden_dim=192, latent_dim=16)
TRAIN = dict(batch_size=64, lr=1e-3, clip=5.0, seed=0, eval_samples=10,
             annealed=dict(epochs=6, kl_warmup=1000, word_dropout=0.4),
             plain=dict(epochs=2, kl_warmup=0, word_dropout=0.0))


def prepare():
    """(vocab, {split: (src, dec_in, targets)}, {split: sentences})."""
    sents = {s: short_sentences(s, DATA["min_words"], DATA["max_words"]) for s in ("train", "validation", "test")}
    vocab = sentence_vocab(sents["train"], DATA["min_count"])
    return vocab, {s: encode_sentences(x, vocab) for s, x in sents.items()}, sents


@torch.no_grad()
def evaluate(model, arrays, samples: int, seed: int = 0, batch_size: int = 256) -> dict:
    """Per-sentence reconstruction NLL, KL, ELBO (nats), perplexity bound and active units of `arrays`."""
    model.eval()
    src, dec_in, targets = arrays
    rng = np.random.default_rng(seed)
    rec_sum, kl_sum, mus = 0.0, 0.0, []
    n = len(src)
    for i in range(0, n, batch_size):
        s, d, t = (torch.as_tensor(a) for a in take(src, dec_in, targets, np.arange(i, min(n, i + batch_size))))
        mu, logvar = model.encode(s)                                       # (B, Z), (B, Z)
        mus.append(mu.numpy())
        batch_rec = 0.0
        for _ in range(samples):
            eps = torch.as_tensor(rng.standard_normal(mu.shape).astype(np.float32))  # (B, Z)
            logits, _ = model.decode(d, model.reparameterize(mu, logvar, eps))  # (B, T, V)
            rec, kl = elbo_terms(logits, t, mu, logvar, PAD_ID)           # KL: the same for every draw
            batch_rec += float(rec) * len(s) / samples
        rec_sum += batch_rec
        kl_sum += float(kl) * len(s)
    rec, kl = rec_sum / n, kl_sum / n
    tokens = float((targets != PAD_ID).sum()) / n                          # words + <eos> per sentence
    active = int((np.var(np.concatenate(mus), axis=0) > 0.01).sum())
    return dict(reconstruction=rec, kl=kl, elbo=-(rec + kl), ppl_bound=float(np.exp((rec + kl) / tokens)),
                tokens_per_sentence=tokens, active_units=active, sentences=n)


def train(name: str, vocab_size: int, arrays: dict, path: Path) -> dict:
    """Train one run; keep the pass with the best validation ELBO at `path`; return its log."""
    cfg = TRAIN[name]
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    llmbook.seed(TRAIN["seed"])
    model = SentenceVAE(vocab_size, **MODEL)
    opt = torch.optim.Adam(model.parameters(), lr=TRAIN["lr"])
    rng = np.random.default_rng(TRAIN["seed"])
    src, dec_in, targets = arrays["train"]
    lengths = (src != PAD_ID).sum(1)
    step, seconds, best, history = 0, 0.0, -np.inf, []
    for epoch in range(1, cfg["epochs"] + 1):
        model.train()
        start = time.perf_counter()
        sums = np.zeros(3)
        batches = similar_length_batches(lengths, TRAIN["batch_size"], rng)
        for idx in batches:
            s, d, t = take(src, dec_in, targets, idx)
            d = word_dropout(d, cfg["word_dropout"], rng)
            s, d, t = (torch.as_tensor(a) for a in (s, d, t))
            logits, mu, logvar = model(s, d)                               # (B, T, V), (B, Z), (B, Z)
            rec, kl = elbo_terms(logits, t, mu, logvar, PAD_ID)
            beta = kl_weight(step, cfg["kl_warmup"])
            loss = rec + beta * kl
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), TRAIN["clip"])
            opt.step()
            step += 1
            sums += (rec.item(), kl.item(), beta)
        seconds += time.perf_counter() - start
        val = evaluate(model, arrays["validation"], samples=1, seed=1)
        mean = sums / len(batches)
        history.append(dict(epoch=epoch, steps=step, train_reconstruction=mean[0], train_kl=mean[1],
                            kl_weight=kl_weight(step, cfg["kl_warmup"]), val_elbo=val["elbo"], val_kl=val["kl"],
                            val_reconstruction=val["reconstruction"], seconds=seconds))
        print(f"  {name} epoch {epoch} ({step} steps, {seconds:.0f} s): train rec {mean[0]:.2f} kl {mean[1]:.2f} "
              f"(weight {kl_weight(step, cfg['kl_warmup']):.2f}) | val ELBO {val['elbo']:.2f} "
              f"= -({val['reconstruction']:.2f} + {val['kl']:.2f})", flush=True)
        if val["elbo"] > best:
            best, best_epoch = val["elbo"], epoch
            save_checkpoint(model, path, vocab_size=vocab_size, **MODEL)
    return dict(train_s=seconds, best_epoch=best_epoch, steps=step, history=history, **cfg)


def samples(model, vocab, sents, arrays, n: int = 5, seed: int = 0) -> dict:
    """A few greedy sentences from the prior and reconstructions of test sentences, as text."""
    from llmbook.data import detokenize

    def text(ids):
        return detokenize([vocab.itos[i] for i in ids if i not in (PAD_ID, EOS_ID)])
    g = torch.Generator().manual_seed(seed)
    prior = model.decode_greedy(torch.randn(n, MODEL["latent_dim"], generator=g), BOS_ID, EOS_ID, 25)
    src = torch.as_tensor(take(*arrays["test"], np.arange(n))[0])
    recon = model.decode_greedy(model.encode(src)[0], BOS_ID, EOS_ID, 25)
    return dict(prior=[text(r) for r in prior.tolist()],
                reconstructions=[[sents["test"][i], text(r)] for i, r in enumerate(recon.tolist())])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--skip-train", action="store_true", help="evaluate the committed checkpoint")
    ap.add_argument("--runs", nargs="+", default=["annealed", "plain"], choices=["annealed", "plain"])
    args = ap.parse_args()
    vocab, arrays, sents = prepare()
    print(f"vocabulary {len(vocab)}; sentences: " + ", ".join(f"{s} {len(x):,}" for s, x in sents.items()))
    old = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    logs = old.get("runs", {})
    paths = {"annealed": CKPT / "vae_torch.npz", "plain": Path("/tmp") / "vae_plain_torch.npz"}
    for name in args.runs:
        if not args.skip_train:
            logs[name] = train(name, len(vocab), arrays, paths[name])
    scores = {}
    for name in ("annealed", "plain"):
        if paths[name].exists():
            model = load_checkpoint(SentenceVAE, paths[name], device="cpu")
            scores[name] = {s: evaluate(model, arrays[s], TRAIN["eval_samples"], seed=2)
                            for s in ("validation", "test")}
            scores[name]["samples"] = samples(model, vocab, sents, arrays)
            scores[name]["params"] = sum(p.numel() for p in model.parameters())
        elif name in old.get("scores", {}):
            scores[name] = old["scores"][name]
    labels = {"annealed": f"sentence VAE, KL annealing + word dropout {TRAIN['annealed']['word_dropout']}",
              "plain": "sentence VAE, plain ELBO (KL weight 1, no word dropout)"}
    rows = []
    for name, sc in scores.items():
        test = sc["test"]
        rows.append(dict(model=labels[name], framework="PyTorch", dataset=DATASET,
                         metric="test ELBO (nats/sentence)", value=test["elbo"], params=sc["params"],
                         train_s=logs.get(name, {}).get("train_s"), test_reconstruction=test["reconstruction"],
                         test_kl=test["kl"], test_ppl_bound=test["ppl_bound"], active_units=test["active_units"],
                         best_epoch=logs.get(name, {}).get("best_epoch")))
        print(f"{name:9s} test ELBO {test['elbo']:.2f} = -({test['reconstruction']:.2f} + {test['kl']:.2f}); "
              f"ppl <= {test['ppl_bound']:.1f}; active units {test['active_units']}/{MODEL['latent_dim']}")
        for s in sc["samples"]["prior"]:
            print("   prior:", s)
    # The same weights in TensorFlow (converted, not trained there).
    tf_path = CKPT / "vae_tf.npz"
    subprocess.run([sys.executable, str(ROOT / "tools" / "convert_checkpoint.py"), "vae.SentenceVAE",
                    str(paths["annealed"]), str(tf_path)], check=True)
    tf_check = tf_elbo(tf_path, arrays["test"])
    print(f"TensorFlow, converted weights: test ELBO {tf_check['elbo']:.2f} (eps = 0: z = mu) vs PyTorch "
          f"{tf_check['torch_elbo']:.2f}")
    result = dict(task="sentence VAE: held-out ELBO, KL and reconstruction", dataset=DATASET, data=DATA,
                  model=MODEL, train=TRAIN, vocab_size=len(vocab),
                  sentences={s: len(x) for s, x in sents.items()}, runs=logs, scores=scores,
                  tf_converted=tf_check, rows=rows)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    summary = dict(data=DATA, model=MODEL, train=TRAIN, vocab_size=len(vocab), dataset=DATASET,
                   runs={n: dict(train_s=log.get("train_s"), best_epoch=log.get("best_epoch"),
                                 steps=log.get("steps"), epochs=log.get("epochs"),
                                 history=log.get("history")) for n, log in logs.items()},
                   test={n: sc["test"] for n, sc in scores.items()},
                   params=scores["annealed"]["params"])
    (CKPT / "vae.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}, {(CKPT / 'vae.json').relative_to(ROOT)} and {tf_path.name}")


def tf_elbo(path: Path, arrays) -> dict:
    """Reconstruction + KL of the first 256 test sentences at z = mu, in TensorFlow and in PyTorch (same weights)."""
    from llmbook.tf.checkpoint import load_checkpoint as tf_load
    from llmbook.tf.vae import SentenceVAE as TFSentenceVAE
    from llmbook.tf.vae import elbo_terms as tf_elbo_terms
    s, d, t = take(*arrays, np.arange(256))
    eps = np.zeros((256, MODEL["latent_dim"]), np.float32)
    logits, mu, logvar = tf_load(TFSentenceVAE, path)(s, d, eps)
    rec, kl = (float(x) for x in tf_elbo_terms(logits, t, mu, logvar, PAD_ID))
    tm = load_checkpoint(SentenceVAE, CKPT / "vae_torch.npz", device="cpu")
    with torch.no_grad():
        logits, mu, logvar = tm(*(torch.as_tensor(a) for a in (s, d, eps)))
        trec, tkl = elbo_terms(logits, torch.as_tensor(t), mu, logvar, PAD_ID)
    return dict(elbo=-(rec + kl), torch_elbo=-(float(trec) + float(tkl)), sentences=256, eps="zero (z = mu)")


if __name__ == "__main__":
    main()
