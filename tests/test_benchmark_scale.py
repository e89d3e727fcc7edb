"""benchmarks/ch7_scale.py: the power-law fit, and a tiny end-to-end run of two sizes."""
import json
import math
import sys

import numpy as np
import pytest

from conftest import REPO, load_script


@pytest.fixture
def scale(monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    module = load_script("benchmarks/ch7_scale.py")
    monkeypatch.setattr(module, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(module, "RUNS", tmp_path / "runs")
    monkeypatch.setattr(module, "SIZES", {"a": dict(d_model=8, num_heads=2, num_layers=1, d_ff=16),
                                          "b": dict(d_model=16, num_heads=2, num_layers=2, d_ff=32)})
    monkeypatch.setattr(module, "TRAIN", dict(module.TRAIN, context=32, batch_size=4, steps=30, eval_every=10,
                                              warmup=5))
    quality = module.ch7_quality
    real = quality.eval_batches
    monkeypatch.setattr(quality, "eval_batches", lambda ids, limit=None: real(ids, 8))   # 8 windows: fast
    yield module
    sys.modules.pop("ch7_quality", None)


def test_the_fit_recovers_a_known_exponent():
    n = np.array([1e4, 1e5, 1e6, 1e7])
    fit = load_script("benchmarks/ch7_scale.py").fit_power_law(n, 3.0 * n ** -0.1)
    assert fit["alpha"] == pytest.approx(0.1) and fit["a"] == pytest.approx(3.0) and fit["alpha_se"] < 1e-9


def test_the_fit_says_when_it_has_too_few_sizes():
    with pytest.raises(ValueError, match="at least 2 sizes"):
        load_script("benchmarks/ch7_scale.py").fit_power_law([1e4], [2.0])


def test_two_tiny_sizes_train_and_report(scale, capsys):
    runs = [scale.train(s) for s in ("a", "b")]
    for r in runs:
        assert r["tokens"] == 30 * 4 * 32 and r["flops"] == 6 * r["non_embedding_params"] * r["tokens"]
        assert r["non_embedding_params"] < r["params"] and math.isfinite(r["val_loss"])
    assert runs[0]["non_embedding_params"] < runs[1]["non_embedding_params"]
    other = scale.train("a", lr=1e-4, tokens=20 * 4 * 32)                  # one change each: rate, tokens
    assert other["train"]["lr"] == 1e-4 and other["tokens"] == 20 * 4 * 32
    assert (scale.RESULTS / "a_lr0.0001_0.00256M_pos1.json").exists()
    pos = scale.train("a", pos_std=0.02)                                 # one change: the position scale
    assert pos["model"]["pos_std"] == 0.02 and runs[0]["model"]["pos_std"] == scale.COMMON["pos_std"] == 1.0
    assert (scale.RESULTS / "a_lr0.006_0.00384M.json").exists()          # 0.02: the name of the first runs
    out = scale.report()
    assert out["fit"]["points"] == 2 and math.isfinite(out["fit"]["alpha"])
    printed = capsys.readouterr().out
    assert "over 2 sizes" in printed and "other recipe (not fitted): a_lr0.0001_0.00256M_pos1" in printed
    assert "other recipe (not fitted): a_lr0.006_0.00384M:" in printed


def test_a_run_shorter_than_one_evaluation_is_refused(scale):
    with pytest.raises(ValueError, match="less than one evaluation interval"):
        scale.recipe(tokens=100)


def page_row(r: dict) -> list[str]:
    """A run as 03_scale.md prints it: validation, seconds, last train and validation loss, fall over 489 steps."""
    last = r["history"][-1]
    return [f"{r['val_loss']:.4f}", f"{r['train_s']:.0f}", f"{last['train_loss']:.3f}", f"{last['val_loss']:.3f}",
            f"{r['history'][-4]['val_loss'] - last['val_loss']:.3f}"]


def test_the_scale_page_shows_the_measured_runs(monkeypatch):
    """chapters/07_llm/03_scale.md's sizes are the benchmark's, its MEASURED rows are exactly the
    finished runs of the current recipe in benchmarks/results/ch7_scale/, and its EARLIER rows the
    other runs on as many characters (position table at 0.02), with their numbers."""
    import re
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    module = load_script("benchmarks/ch7_scale.py")
    page = (REPO / "chapters" / "07_llm" / "03_scale.md").read_text()
    for size, cfg in module.SIZES.items():
        assert (f'"{size}": dict(d_model={cfg["d_model"]}, num_heads={cfg["num_heads"]}, '
                f'num_layers={cfg["num_layers"]}, d_ff={cfg["d_ff"]})') in page, f"size {size} differs on the page"
    block = page[page.index("MEASURED = {"):page.index("}", page.index("MEASURED = {"))]
    shown = {s: nums for s, *nums in
             re.findall(r'"(\w+)": \(([\d.]+), (\d+), ([\d.]+), ([\d.]+), ([\d.]+)\)', block)}
    runs = [json.loads(p.read_text()) for p in sorted(module.RESULTS.glob("*.json"))]
    runs = {r["size"]: r for r in runs if "val_loss" in r and module.same_recipe(r)}
    assert len(runs) >= 3 and set(shown) == set(runs), \
        f"the page shows {sorted(shown)}, the results hold {sorted(runs)}: update MEASURED in 03_scale.md"
    for size, r in runs.items():
        assert shown[size] == page_row(r), f"{size}: the page's numbers differ from its result file"
        last = r["history"][-1]
        assert r["history"][-4]["step"] == r["history"][-1]["step"] - 489       # "the last 489 steps"
        assert f"TOKENS = {r['tokens']:_}" in page
    others = [json.loads(p.read_text()) for p in sorted(module.RESULTS.glob("*.json"))]
    others = {(r["size"], r["train"]["lr"]): r for r in others
              if "val_loss" in r and not module.same_recipe(r) and r["tokens"] == module.TOKENS // 4096 * 4096}
    assert all(module.pos_std_of(r) == 0.02 for r in others.values()), "EARLIER: table at 0.02"
    block = page[page.index("EARLIER = {"):page.index("}", page.index("EARLIER = {"))]
    shown = {(s, float(lr)): nums for s, lr, *nums in
             re.findall(r'\("(\w+)", ([\d.]+)\): \(([\d.]+), (\d+), ([\d.]+), ([\d.]+), ([\d.]+)\)', block)}
    assert set(shown) == set(others), f"EARLIER shows {sorted(shown)}, the results hold {sorted(others)}"
    for key, r in others.items():
        assert shown[key] == page_row(r), f"{key}: the page's numbers differ from its result file"
    sys.modules.pop("ch7_quality", None)
