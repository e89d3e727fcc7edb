"""benchmarks/ch7_quality.py: the TensorFlow run replays the PyTorch run (weights, windows, rates)."""
import json
import math
import pickle
import sys

import numpy as np
import pytest

from conftest import REPO, load_script
from llmbook.data import tokenized_shakespeare

TINY = dict(d_model=16, num_heads=2, num_layers=2, d_ff=32, max_len=256, dropout=0.0)


@pytest.fixture
def quality(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    module = load_script("benchmarks/ch7_quality.py")
    real = module.eval_batches
    monkeypatch.setattr(module, "eval_batches", lambda ids, limit=None: real(ids, 8))   # 8 windows: fast
    yield module
    sys.modules.pop("ch7_quality", None)


def test_the_replayed_rates_are_the_logged_schedule(quality):
    """A run whose cosine followed its clock (time ahead of steps) is replayed step by step."""
    tr = dict(quality.TRAIN, steps=1000, warmup=20, eval_every=50)
    clock = lambda step: 1.25 * (step - tr["warmup"]) / (tr["steps"] - tr["warmup"])   # noqa: E731
    history = [dict(step=s, lr=quality.lr_at(s - 1, tr, clock(s - 1))) for s in range(50, 701, 50)]
    lr = quality.replayed_lr(dict(train=tr, history=history))
    for step in [0, 7, 19, 20, 49, 73, 333, 699, 720, 790]:       # warm-up, logged, between, past the log
        assert lr(step) == pytest.approx(quality.lr_at(step, tr, clock(step)), rel=1e-9), step
    assert lr(10 ** 6) == pytest.approx(tr["lr"] * tr["min_lr_ratio"])       # the decay ends at its floor


def test_tensorflow_replays_a_pytorch_run(quality, tmp_path):
    """Same initial weights, windows and rates: the two runs' validation curves agree to float noise."""
    corpus = tokenized_shakespeare("char")
    tr = dict(quality.TRAIN, context=32, batch_size=4, steps=40, eval_every=10, warmup=5, budget_min=None)
    ref = quality.train(corpus, TINY, tr, tmp_path / "pt.npz", tmp_path / "pt.json", None, 8)
    got = quality.train_tf(corpus, TINY, tr, ref, tmp_path / "tf.npz", tmp_path / "tf.json", 8)
    want = [h["val_loss"] for h in ref["history"]]
    seen = [h["val_loss"] for h in got["history"]]
    assert len(seen) == len(want) == 4 and want[-1] < want[0] - 0.3           # it learned something
    # measured: curves agree to 3e-6 nats/char after 40 steps; 1e-4 leaves room for other CPUs' rounding
    assert np.abs(np.array(seen) - np.array(want)).max() < 1e-4, (seen, want)
    assert [h["lr"] for h in got["history"]] == pytest.approx([h["lr"] for h in ref["history"]], rel=1e-9)
    assert json.loads((tmp_path / "tf.json").read_text())["best_step"] == ref["best_step"]
    assert (tmp_path / "tf.npz").exists() and math.isfinite(got["best_val_loss"])


def test_a_paused_replay_resumes_as_if_never_stopped(quality, tmp_path):
    """Paused after its first evaluation and resumed, the replay takes exactly the uninterrupted steps."""
    corpus = tokenized_shakespeare("char")
    tr = dict(quality.TRAIN, context=32, batch_size=4, steps=30, eval_every=10, warmup=5, budget_min=None)
    ref = quality.train(corpus, TINY, tr, tmp_path / "pt.npz", tmp_path / "pt.json", None, 8)
    whole = quality.train_tf(corpus, TINY, tr, ref, tmp_path / "a.npz", tmp_path / "a.json", 8)
    state = tmp_path / "b.state"
    first = quality.train_tf(corpus, TINY, tr, ref, tmp_path / "b.npz", tmp_path / "b.json", 8,
                             state=state, pause_s=0.0)
    assert first["paused"] and len(first["history"]) == 1 and state.exists()
    kept = pickle.loads(state.read_bytes())["state"]
    assert kept["checkpoint"] == (tmp_path / "b.npz").read_bytes()             # a fresh clone gets it back
    (tmp_path / "b.npz").unlink()
    (tmp_path / "b.json").unlink()
    rest = quality.train_tf(corpus, TINY, tr, ref, tmp_path / "b.npz", tmp_path / "b.json", 8, state=state)
    assert "paused" not in rest and not state.exists()                         # finished: the state is gone
    for key in ("val_loss", "train_loss", "lr", "step"):
        assert [h[key] for h in rest["history"]] == [h[key] for h in whole["history"]], key
    a, b = np.load(tmp_path / "a.npz"), np.load(tmp_path / "b.npz")
    assert len(a.files) == len(b.files)              # the same kept weights (Keras numbers its layers' names)
    assert all(np.array_equal(a[i], b[j]) for i, j in zip(a.files, b.files))
    with pytest.raises(SystemExit, match="another model or recipe"):          # a stale state is refused
        state.write_bytes(pickle.dumps(dict(state=dict(model_cfg=TINY, train=dict(tr, lr=1.0)))))
        quality.train_tf(corpus, TINY, tr, ref, tmp_path / "c.npz", tmp_path / "c.json", 8, state=state)


def test_a_replay_takes_no_step_the_pytorch_run_did_not(quality, tmp_path):
    """A PyTorch run cut short (by its clock, say) is replayed up to its last step, evaluated there."""
    corpus = tokenized_shakespeare("char")
    tr = dict(quality.TRAIN, context=32, batch_size=4, steps=40, eval_every=10, warmup=5, budget_min=None)
    ref = quality.train(corpus, TINY, tr, tmp_path / "pt.npz", tmp_path / "pt.json", None, 8)
    cut = dict(ref, history=ref["history"][:1] + [dict(ref["history"][1], step=15)])   # stopped at step 15
    got = quality.train_tf(corpus, TINY, tr, cut, tmp_path / "tf.npz", tmp_path / "tf.json", 8)
    assert [h["step"] for h in got["history"]] == [10, 15] and got["train"]["steps"] == 15


def test_the_tensorflow_run_refuses_another_model(quality, tmp_path):
    corpus = tokenized_shakespeare("char")
    ref = dict(model=dict(TINY, d_model=32), train=dict(quality.TRAIN), history=[])
    with pytest.raises(SystemExit, match="same model and seed"):
        quality.train_tf(corpus, TINY, dict(quality.TRAIN), ref, tmp_path / "tf.npz", tmp_path / "tf.json", 8)


def test_the_position_init_comparison_on_the_page_is_the_measured_runs():
    """01_gpt.md's POS_INIT holds the four runs of results/ch7_pos_init/, which differ in pos_std only."""
    import re
    page = (REPO / "chapters" / "07_llm" / "01_gpt.md").read_text()
    block = page[page.index("POS_INIT = {"):page.index("}", page.index("POS_INIT = {"))]
    shown = {(float(s), int(k)): float(v) for s, k, v in re.findall(r"\(([\d.]+), (\d)\): ([\d.]+)", block)}
    runs = [json.loads(p.read_text()) for p in sorted((REPO / "benchmarks" / "results" / "ch7_pos_init").glob("*.json"))]
    assert len(runs) == len(shown) == 4
    for r in runs:
        key = (r["model"]["pos_std"], r["train"]["seed"])
        assert shown[key] == round(r["val_loss"], 4), f"{key}: the page's number differs from its result file"
        assert r["train"]["steps"] == 1500 and r["history"][-1]["step"] == 1500
    strip = lambda r: ({k: v for k, v in r["model"].items() if k != "pos_std"},   # noqa: E731
                       {k: v for k, v in r["train"].items() if k != "seed"})
    assert all(strip(r) == strip(runs[0]) for r in runs), "the runs differ in more than pos_std and the seed"


def test_the_larger_run_on_the_page_is_its_result_file(quality):
    """01_gpt.md's LARGE rows are `--large`'s result files: the PyTorch run and its TensorFlow replay."""
    import re
    page = (REPO / "chapters" / "07_llm" / "01_gpt.md").read_text()
    last = json.loads((REPO / "benchmarks" / "results" / "ch7_quality_large.json").read_text())["history"][-1]["step"]
    for fw, name in (("PyTorch", "ch7_quality_large.json"), ("TensorFlow", "ch7_quality_large_tf.json")):
        run = json.loads((REPO / "benchmarks" / "results" / name).read_text())
        assert run["model"] == quality.LARGE and run["threads"] == quality.LARGE_THREADS
        train = {k: v for k, v in run["train"].items() if k != "schedule"}
        want = dict(quality.LARGE_TRAIN, **({} if fw == "PyTorch" else dict(budget_min=None, steps=last)))
        assert train == json.loads(json.dumps(want)), f"{name} is not `--large`'s recipe"
        assert run["best_val_loss"] <= min(h["val_loss"] for h in run["history"]) + 1e-4   # the best is kept
        assert run["history"][-1]["step"] == last                         # the replay: no step PyTorch did not take
        row = re.search(rf'"{fw}": \(([\d_]+), ([\d.]+), ([\d.]+), (\d+)\)', page)
        assert row, f"01_gpt.md has no LARGE row \"{fw}\": (params, val, test, seconds)"
        assert (int(row[1].replace("_", "")), float(row[2]), float(row[3]), int(row[4])) == (
            run["params"], round(run["val_loss"], 4), round(run["test_loss"], 4), round(run["train_s"])), \
            f"the page's {fw} numbers differ from {name}"


def test_large_writes_files_of_its_own(quality):
    files = {quality.outputs(fw, large) for fw in ("torch", "tf") for large in (False, True)}
    assert len({p for pair in files for p in pair}) == 8                 # no run overwrites another's
    assert quality.outputs("torch", False) == (quality.CKPT, quality.RESULTS)
