"""Chapter 3's learning-rate grid: every cell keeps its best grid point on validation, never on test."""
import json
from pathlib import Path

import pytest
from conftest import load_script

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ch3():
    return load_script("benchmarks/ch3_quality.py")


def grid_point(ch3, folder: Path, lr: float, losses: dict, **recipe_change) -> Path:
    """A trial folder as `--lr` leaves it: one checkpoint per (cell, framework) and ch3_quality_partial.json."""
    folder.mkdir(parents=True)
    rows = []
    for (cell, fw), (val, test) in losses.items():
        (folder / ch3.checkpoint_name(cell, fw)).write_text(f"{cell} {fw} lr={lr}")   # stands in for the .npz
        rows.append(dict(cell=cell, framework="PyTorch" if fw == "torch" else "TensorFlow", val_loss=val,
                         test_loss=test, history=[], train_s=1.0))
    train = dict(ch3.TRAIN, lr=lr, **recipe_change)
    (folder / "ch3_quality_partial.json").write_text(json.dumps(
        dict(hidden=ch3.HIDDEN, model=ch3.MODEL, init=ch3.INIT, train=train, eval=ch3.EVAL, rows=rows)))
    return folder


def test_select_keeps_lowest_validation_loss_not_test(ch3, tmp_path):
    low, high = ch3.LR_GRID
    a = grid_point(ch3, tmp_path / "a", low, {("rnn", "torch"): (1.40, 1.60), ("lstm", "torch"): (1.50, 1.40)})
    b = grid_point(ch3, tmp_path / "b", high, {("rnn", "torch"): (1.45, 1.30), ("lstm", "torch"): (1.45, 1.50)})
    out = tmp_path / "chosen"
    out.mkdir()
    chosen = ch3.select([a, b], ["rnn", "lstm"], ["torch"], out)
    assert chosen["rnn", "torch"]["lr"] == low                 # lower validation, although its test loss is higher
    assert chosen["lstm", "torch"]["lr"] == high
    assert (out / "char_rnn_torch.npz").read_text() == f"rnn torch lr={low}"
    assert (out / "char_lstm_torch.npz").read_text() == f"lstm torch lr={high}"
    assert [g["lr"] for g in chosen["rnn", "torch"]["grid"]] == [low, high]
    assert [g["val_loss"] for g in chosen["lstm", "torch"]["grid"]] == [1.50, 1.45]


def test_select_refuses_points_trained_with_different_recipes(ch3, tmp_path):
    low, high = ch3.LR_GRID
    a = grid_point(ch3, tmp_path / "a", low, {("gru", "tf"): (1.4, 1.5)})
    b = grid_point(ch3, tmp_path / "b", high, {("gru", "tf"): (1.3, 1.4)}, epochs=5)
    with pytest.raises(ValueError, match="different recipes"):
        ch3.select([a, b], ["gru"], ["tf"], tmp_path)


def test_select_refuses_an_incomplete_grid(ch3, tmp_path):
    a = grid_point(ch3, tmp_path / "a", ch3.LR_GRID[0], {("gru", "tf"): (1.4, 1.5)})
    with pytest.raises(ValueError, match="the grid is"):
        ch3.select([a], ["gru"], ["tf"], tmp_path)
    with pytest.raises(FileNotFoundError, match="--lr RATE"):
        ch3.select([tmp_path / "missing"], ["gru"], ["tf"], tmp_path)
