"""benchmarks/ladder.py on a tiny slice: early stopping, exact resumption, and what a results file holds."""
import importlib.util
import json
import os
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from llmbook.data.bible import en_es
from llmbook.data.pairs import ParallelSplits

from conftest import load_script

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def ladder(tmp_path, monkeypatch):
    """The benchmark module on 64 training pairs and tiny models, writing under tmp_path."""
    threads, env = torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location("ladder", ROOT / "benchmarks" / "ladder.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    full = en_es()
    small = ParallelSplits(full.train[:64], full.validation[:16], full.test[:12])
    real_data = module.data

    def data():
        _, en, es, _ = real_data()
        return small, en, es, {s: module.encode_pairs(getattr(small, s), en, es) for s in ("train", "validation", "test")}

    monkeypatch.setattr(module, "data", data)
    monkeypatch.setattr(module, "RUNS", tmp_path / "runs")
    monkeypatch.setattr(module, "STATE", tmp_path / "runs")
    monkeypatch.setattr(module, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(module, "SUMMARY", tmp_path / "ladder.json")
    monkeypatch.setattr(module, "QUALITY", tmp_path / "quality" / "ladder.json")
    monkeypatch.setattr(module, "SPEED", tmp_path / "ladder_speed.json")
    (tmp_path / "quality").mkdir()
    monkeypatch.setattr(module, "RECIPE", dict(module.RECIPE, batch_size=16, warmup=4, max_len=12, patience=2,
                                                peak_lr=2e-3))
    monkeypatch.setattr(module, "RUNGS", {
        "b": ("Seq2SeqAttention", dict(embed_dim=8, hidden_dim=16, dropout=0.2, score="additive"), "tiny b"),
        "d": ("Transformer", dict(d_model=16, num_heads=2, num_encoder_layers=1, num_decoder_layers=1, d_ff=32,
                                  dropout=0.2, max_len=128), "tiny d"),
        "e": ("Transformer", dict(d_model=16, num_heads=2, num_encoder_layers=1, num_decoder_layers=1, d_ff=32,
                                  dropout=0.2, max_len=128), "tiny e"),
        "f": ("GPTTranslator", dict(d_model=16, num_heads=2, num_layers=2, d_ff=32, dropout=0.2, max_len=256),
              "tiny f")})
    yield module
    torch.set_num_threads(threads)
    if env is None:
        os.environ.pop("OMP_NUM_THREADS", None)
    else:
        os.environ["OMP_NUM_THREADS"] = env
    sys.modules.pop("seq2seq_common", None)


def _saved(path: Path) -> dict:
    """A run's state file (torch.save for PyTorch, pickle for Keras) with the weights as NumPy arrays."""
    try:
        saved = torch.load(path, weights_only=False)
        return dict(saved, model={k: v.numpy() for k, v in saved["model"].items()})
    except Exception:
        with open(path, "rb") as f:
            saved = pickle.load(f)
        return dict(saved, model=dict(enumerate(saved["model"])))


@pytest.mark.parametrize("rung, fw", [("b", "torch"), ("d", "torch"), ("b", "tf"), ("f", "torch"), ("f", "tf")])
def test_an_interrupted_run_resumes_exactly(ladder, rung, fw):
    """Two epochs, stop, resume for a third: the same weights as three epochs in one go (dropout included)."""
    assert ladder.train(rung, fw, seed=1, stop_after=3)["finished"] is False
    _, state_path, _ = ladder.paths(rung, fw, 1)
    straight = _saved(state_path)
    state_path.unlink()
    ladder.train(rung, fw, seed=1, stop_after=2)
    assert len(_saved(state_path)["state"]["history"]) == 2
    ladder.train(rung, fw, seed=1, stop_after=3)
    resumed = _saved(state_path)
    assert resumed["step"] == straight["step"] == 3 * 4                     # 64 pairs / 16 per batch, 3 epochs
    for name, w in straight["model"].items():
        assert np.array_equal(w, resumed["model"][name]), f"{name} differs after resuming"
    assert [h["val_loss"] for h in resumed["state"]["history"]] == [h["val_loss"] for h in straight["state"]["history"]]


def test_training_stops_when_validation_stops_improving(ladder, monkeypatch):
    """Patience 2: losses 5, 4, 4.5, 4.2 -> stop after epoch 4 with epoch 2 kept; the results file says so."""
    real = ladder.framework
    losses = iter([5.0, 4.0, 4.5, 4.2, 3.0])

    def scripted(fw):
        F = real(fw)
        F.fit = lambda model, *a, **k: dict(loss=[1.0], val_loss=[next(losses)], seconds=[2.0])
        return F

    monkeypatch.setattr(ladder, "framework", scripted)
    state = ladder.train("b", "torch", seed=1)
    assert state["finished"] and [h["epoch"] for h in state["history"]] == [1, 2, 3, 4]
    assert (state["best_epoch"], state["best_val"], state["best_train_s"], state["train_s"]) == (2, 4.0, 4.0, 8.0)
    out = ladder.evaluate("b", "torch", 1, state)
    saved = json.loads(ladder.paths("b", "torch", 1)[2].read_text())
    assert saved["best_epoch"] == 2 and saved["epochs"] == 4 and saved["train_s"] == 4.0
    for dec in out["decodings"].values():
        assert len(dec["hypotheses"]) == 12
        assert sum(b["n"] for b in dec["buckets"]) == 12 and all(b["ci95"] >= 0 for b in dec["buckets"])
        assert "nrefs:1" in dec["bleu_signature"] and "nrefs:1" in dec["chrf_signature"]
        assert 0 <= dec["bleu"] <= 100 and 0 <= dec["chrf"] <= 100


@pytest.mark.parametrize("rung", ["b", "d"])
def test_a_tensorflow_run_starts_from_its_pytorch_twins_initial_weights(ladder, monkeypatch, rung):
    """One initialisation for both frameworks: the TF model that training receives is the PyTorch twin
    of the same seed, converted (and not what TF's own initialisers would have drawn)."""
    import llmbook
    from llmbook.parity import torch_to_tf
    real, seen = ladder.framework, {}

    def spy(fw):
        F = real(fw)

        def fit(model, *a, **k):
            seen.setdefault("weights", [np.array(w.numpy()) for w in model.weights])
            return dict(loss=[1.0], val_loss=[1.0], seconds=[1.0])
        F.fit = fit
        return F

    monkeypatch.setattr(ladder, "framework", spy)
    ladder.train(rung, "tf", seed=3, stop_after=1)
    _, en, es, _ = ladder.data()
    (pt_cls, config), tf_cls = ladder.build(real("torch"), rung, en, es), ladder.build(real("tf"), rung, en, es)[0]
    llmbook.seed(3)
    twin = pt_cls(**config)
    llmbook.seed(3)
    converted, own = tf_cls(**config), tf_cls(**config)
    torch_to_tf(twin, converted)
    assert len(seen["weights"]) == len(converted.weights)
    for got, want in zip(seen["weights"], converted.weights):
        assert np.array_equal(got, want.numpy())
    assert any(not np.array_equal(a, b.numpy()) for a, b in zip(seen["weights"], own.weights))


@pytest.mark.parametrize("rung, fw", [("b", "tf"), ("f", "torch")])
def test_a_rung_trains_and_scores(ladder, rung, fw):
    """A TensorFlow rung, and the decoder-only rung: validation loss falls, both decodings are scored."""
    state = ladder.train(rung, fw, seed=1, stop_after=2)
    assert not state["finished"] and [h["epoch"] for h in state["history"]] == [1, 2]
    assert state["history"][1]["val_loss"] < state["history"][0]["val_loss"]
    out = ladder.evaluate(rung, fw, 1, state)
    assert out["framework"] == fw and out["params"] > 0 and set(out["decodings"]) == {"greedy", "beam k=4"}


def test_report_pools_seeds_and_tests_adjacent_rungs(ladder, monkeypatch):
    """Three tiny runs (b seeds 0 and 1, d seed 0): mean ± std over seeds, buckets and a paired test b -> d."""
    monkeypatch.setattr(ladder, "paths", lambda r, fw, s: (ladder.RUNS / f"{r}{fw}{s}.npz", ladder.RUNS / f"{r}{fw}{s}.state",
                                                           ladder.RESULTS / f"{r}_{fw}_s{s}.json"))
    monkeypatch.setattr(ladder, "shipped", lambda r, fw: ladder.RUNS / f"shipped_{r}_{fw}.npz")
    best = {}
    for rung, seed in (("b", 0), ("b", 1), ("d", 0)):
        state = ladder.train(rung, "torch", seed, stop_after=1)
        best[rung, seed] = ladder.paths(rung, "torch", seed)[0].read_bytes()
        ladder.finish(rung, "torch", seed, state)
        assert not any(p.exists() for p in ladder.paths(rung, "torch", seed)[:2])    # the run's files are gone
    for rung in ("b", "d"):                                   # seed 0's best checkpoint is the one shipped
        assert ladder.shipped(rung, "torch").read_bytes() == best[rung, 0]
    summary = ladder.report(write=True)
    assert json.loads(ladder.SUMMARY.read_text()) == json.loads(json.dumps(summary))
    rows = {(r["rung"], r["framework"]): r for r in summary["rows"]}
    b = rows[("b", "torch")]
    assert b["seeds"] == [0, 1] and b["greedy"]["bleu"]["n"] == 2
    runs = [json.loads((ladder.RESULTS / f"b_torch_s{s}.json").read_text()) for s in (0, 1)]
    chrf = [r["decodings"]["greedy"]["chrf"] for r in runs]
    assert b["greedy"]["chrf"]["mean"] == pytest.approx(np.mean(chrf))
    assert b["greedy"]["chrf"]["std"] == pytest.approx(np.std(chrf, ddof=1))
    assert rows[("d", "torch")]["greedy"]["bleu"]["std"] is None               # one seed: no spread claimed
    # only seed 0 is shared by b and d: b's seed 1 is not tested against another seed of d
    assert [(p["base"], p["system"], p["seed"]) for p in summary["paired"]] == [("b", "d", 0), ("b", "d", 0)]
    assert all(0 < p["p_value"] <= 1 for p in summary["paired"])
    assert {x["rung"] for x in summary["buckets"]} == {"b", "d"} and all(x["n"] > 0 for x in summary["buckets"])
    seed0 = [x for x in summary["buckets"] if (x["rung"], x["framework"]) == ("b", "torch")]
    assert [{k: x[k] for k in ("bucket", "n", "bleu", "ci95")} for x in seed0] == \
        runs[0]["decodings"]["greedy"]["buckets"]                         # seed 0's buckets, as evaluated
    quality = load_script("benchmarks/quality_table.py").quality_rows(ladder.QUALITY.parent)["ladder.json"]
    assert len(quality) == 2 * 2                                 # rungs b and d, greedy and beam
    assert quality[0]["value"] == b["greedy"]["bleu"]["mean"] and quality[0]["metric"] == "test BLEU (mean of 2 seeds)"
    assert quality[0]["framework"] == "PyTorch" and quality[0]["model"].endswith(", greedy")
    assert quality[0]["signature"].startswith("nrefs:1") and quality[0]["params"] == b["params"]
    curves = {(c["rung"], c["framework"]): c["val_loss"] for c in summary["curves"]}
    assert curves[("b", "torch")] == [h["val_loss"] for h in runs[0]["history"]]      # seed 0's, every epoch
    assert set(curves) == {("b", "torch"), ("d", "torch")}


def test_a_pilot_runs_at_its_own_rate_in_a_scratch_folder(ladder, monkeypatch):
    """Two pilot epochs at another peak rate: recorded, nothing written where real runs live, the recipe untouched."""
    monkeypatch.setattr(ladder, "PILOTS", ladder.RUNS.parent / "pilots.json")
    seen = []
    real = ladder.make_optimizer
    monkeypatch.setattr(ladder, "make_optimizer", lambda fw, model, lr: seen.append(lr) or real(fw, model, lr))
    history = ladder.pilot("b", "torch", 3e-3, epochs=2)
    assert seen == [3e-3] and len(history) == 2
    record = json.loads(ladder.PILOTS.read_text())
    assert [(p["rung"], p["peak_lr"], len(p["val_loss"])) for p in record] == [("b", 3e-3, 2)]
    assert ladder.RECIPE["peak_lr"] == 2e-3
    assert not ladder.paths("b", "torch", 1)[1].exists()                  # the real run's state is untouched
    assert (ladder.RUNS / "pilots" / "b_torch_0.003" / "state").exists()


def test_a_snapshot_scores_the_best_epoch_so_far_and_says_it_is_unfinished(ladder, monkeypatch):
    """Interrupted after 2 epochs: the snapshot ships and scores the best checkpoint so far, marked unfinished;
    the report carries the mark; finishing the run later replaces the results file."""
    monkeypatch.setattr(ladder, "shipped", lambda r, fw: ladder.RUNS / f"shipped_{r}_{fw}.npz")
    state = ladder.train("b", "torch", seed=0, stop_after=2)
    out = ladder.snapshot("b", "torch", 0)
    assert out["finished"] is False and out["epochs"] == 2 and out["best_epoch"] == state["best_epoch"]
    assert ladder.shipped("b", "torch").read_bytes() == ladder.paths("b", "torch", 0)[0].read_bytes()
    assert ladder.report(write=False)["rows"][0]["finished"] is False
    done = ladder.finish("b", "torch", 0, dict(ladder.train("b", "torch", seed=0, stop_after=3), finished=True))
    assert done["finished"] is True and done["epochs"] == 3
    assert ladder.report(write=False)["rows"][0]["finished"] is True


def test_a_snapshot_of_a_run_that_never_started_says_how_to_start_it(ladder):
    with pytest.raises(SystemExit, match="ladder.py train d --framework torch"):
        ladder.snapshot("d", "torch", 0)


@pytest.mark.parametrize("rung, name", [("a", "attention.Seq2SeqAttention"), ("b", "attention.Seq2SeqAttention"),
                                        ("d", "transformer.Transformer"), ("f", "gpt.GPTTranslator")])
def test_a_shipped_tensorflow_rung_without_its_own_run_is_the_pytorch_checkpoint_converted(rung, name, tmp_path):
    """Until the summary has a TensorFlow row for a rung, ladder_{rung}_tf.npz holds ladder_{rung}_torch.npz's
    values (tools/convert_checkpoint.py; the pages say so) and computes its logits."""
    import llmbook
    from llmbook.tf.checkpoint import load_checkpoint as tf_load
    from llmbook.torch.checkpoint import load_checkpoint as torch_load
    if any(r["rung"] == rung and r["framework"] == "tf" for r in llmbook.shipped_results("ladder")["rows"]):
        pytest.skip(f"rung {rung} has its own TensorFlow run")
    tool = load_script("tools/convert_checkpoint.py")
    shipped = llmbook.checkpoint_path(f"ladder_{rung}_tf.npz")
    fresh = tool.convert(name, llmbook.checkpoint_path(f"ladder_{rung}_torch.npz"), tmp_path / "tf.npz")
    with np.load(shipped) as a, np.load(fresh) as b:          # keys "003:layer/...": the layer counter varies
        assert len(a.files) == len(b.files) and str(a["__config__"]) == str(b["__config__"])
        for k, j in zip(sorted(a.files), sorted(b.files)):
            assert k.split(":")[0] == j.split(":")[0] and np.array_equal(a[k], b[j]), \
                f"{k} differs: re-run tools/convert_checkpoint.py {name} on the shipped PyTorch checkpoint"
    torch_cls, tf_cls = tool.twins(name)
    pt = torch_load(torch_cls, llmbook.checkpoint_path(f"ladder_{rung}_torch.npz"), device="cpu").eval()
    rng = np.random.default_rng(0)
    src, tgt = rng.integers(4, 4000, (2, 17)), rng.integers(4, 4000, (2, 9))        # (B, S), (B, T)
    with torch.no_grad():
        want = pt(torch.as_tensor(src), torch.as_tensor(tgt)).numpy()              # (B, T, V)
    got = tf_load(tf_cls, shipped)(src, tgt).numpy()                               # (B, T, V)
    # as for the GPT (tests/test_gpt.py): float32 rounding grows with the trained logits' scale
    assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max()


def test_the_shipped_summary_holds_every_committed_run(monkeypatch):
    """llmbook/checkpoints/ladder.json (what the pages print) pools exactly the runs in benchmarks/results/ladder/."""
    results = ROOT / "benchmarks" / "results" / "ladder"
    runs = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(results.glob("*.json"))]
    committed = {(r["rung"], r["framework"]): [] for r in runs}
    for r in sorted(runs, key=lambda r: r["seed"]):
        committed[r["rung"], r["framework"]].append(r["seed"])
    summary = json.loads((ROOT / "llmbook" / "checkpoints" / "ladder.json").read_text(encoding="utf-8"))
    shipped = {(r["rung"], r["framework"]): r["seeds"] for r in summary["rows"]}
    assert shipped == committed, (f"the shipped summary pools {shipped}, the results hold {committed}: run "
                                  "python benchmarks/ladder.py report --write and re-run the ladder's pages")
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    quality = json.loads((ROOT / "benchmarks" / "results" / "ladder.json").read_text(encoding="utf-8"))
    assert quality == load_script("benchmarks/ladder.py").quality_rows(summary), \
        "benchmarks/results/ladder.json is not the shipped summary's rows: run python benchmarks/ladder.py report --write"
    sys.modules.pop("seq2seq_common", None)


def test_speed_times_every_rung_on_the_same_pairs(ladder):
    """`ladder.py speed`: each rung's fastest round, scaled from the sampled pairs to the training split."""
    out = ladder.speed(("b", "d"), n_pairs=32, rounds=2, write=False)
    assert out["n_pairs"] == 32 and out["train_pairs"] == 64 and out["rounds"] == 2
    for rung in ("b", "d"):
        assert len(out["rounds_s"][rung]) == 2 and all(t > 0 for t in out["rounds_s"][rung])
        assert out["epoch_s"][rung] == pytest.approx(min(out["rounds_s"][rung]) * 64 / 32)


def test_time_matched_reads_rung_e_off_d_runs(ladder):
    """Rung e: d's best validation loss within b's mean time to its best epoch, in d's epochs."""
    def run(rung, seed, val):
        return dict(rung=rung, framework="torch", seed=seed, best_epoch=int(np.argmin(val)) + 1,
                    best_val_loss=min(val), history=[dict(val_loss=v) for v in val])
    runs = [run("b", 0, [3.0, 2.0, 1.5, 1.6]),                      # best epoch 3
            run("b", 1, [3.0, 2.0, 1.9, 1.8, 1.7, 1.75]),           # best epoch 5: the mean is 4
            run("d", 0, [3.0, 1.8, 1.7, 1.6, 1.5, 1.4, 1.45]),      # still improving at the budget
            run("d", 1, [2.0, 1.9, 2.0])]                           # stopped before it: e is d
    tm = ladder.time_matched(runs, {"a": 1.0, "b": 10.0, "d": 12.5})  # an epoch of d costs 1.25 of b's
    assert tm["ratio"] == pytest.approx(1.25) and tm["budget_epochs"] == pytest.approx(4 / 1.25)
    assert tm["base_best_epochs"] == [3, 5] and tm["base_best_val"] == [1.5, 1.7]
    assert [(x["seed"], x["best_epoch"], x["epoch_within"], x["val_within"]) for x in tm["seeds"]] == \
        [(0, 6, 3, 1.7), (1, 2, 2, 1.9)]


def test_rung_e_is_d_stopped_at_the_budget(ladder, monkeypatch):
    """e trains exactly as d does, seed for seed, and stops at its budget (b's training time in epochs of d)."""
    with pytest.raises(FileNotFoundError, match="ladder.py speed"):
        ladder.e_budget()                                        # no speed measurement yet: says what to run
    monkeypatch.setattr(ladder, "e_budget", lambda: 2)
    d = ladder.train("d", "torch", 0, stop_after=2)
    e = ladder.train("e", "torch", 0)
    assert e["finished"] and len(e["history"]) == 2
    assert [h["val_loss"] for h in e["history"]] == [h["val_loss"] for h in d["history"]]


def test_rung_e_is_d_where_d_stopped_within_the_budget(ladder, monkeypatch):
    """A seed of d that stopped on its own within e's budget is e's run: its results are copied, not retrained."""
    monkeypatch.setattr(ladder, "e_budget", lambda: 5)
    ladder.RESULTS.mkdir(parents=True)
    for seed, epochs, finished in ((0, 4, True), (1, 6, True), (2, 3, False)):
        d = dict(rung="d", framework="torch", seed=seed, what="tiny d", epochs=epochs, finished=finished,
                 decodings={"greedy": dict(bleu=20.0 + seed)})
        ladder.paths("d", "torch", seed)[2].write_text(json.dumps(d), encoding="utf-8")
    e = ladder.e_from_d("torch", 0)
    written = json.loads(ladder.paths("e", "torch", 0)[2].read_text(encoding="utf-8"))
    assert e == written and e["rung"] == "e" and e["what"] == "tiny e" and e["same_run_as"] == "d seed 0"
    assert e["decodings"] == {"greedy": dict(bleu=20.0)} and e["epochs"] == 4
    for seed in (1, 2, 3):                            # past the budget, unfinished, never run: e must train
        assert ladder.e_from_d("torch", seed) is None
        assert not ladder.paths("e", "torch", seed)[2].exists()
