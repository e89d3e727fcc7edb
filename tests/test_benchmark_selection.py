"""Chapter 3's learning-rate grid: it grows until its best rate is interior, keeps the best on validation
(never on test), and reports the seeds of the kept rate."""
import json
from pathlib import Path

import pytest
from conftest import load_script

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ch3():
    return load_script("benchmarks/ch3_quality.py")


def record(ch3, trials: Path, scratch: Path, cell: str, fw: str, lr: float, seed: int, val: float, test: float,
           epochs: int = 3) -> None:
    """A trial as `--lr R --seed S` leaves it: a checkpoint in its scratch folder and a record in `trials`."""
    folder = scratch / f"{cell}_{fw}_{lr:g}_{seed}"
    folder.mkdir(parents=True)
    (folder / ch3.checkpoint_name(cell, fw)).write_text(f"{cell} {fw} lr={lr:g} seed={seed}")  # stands in for the .npz
    row = dict(cell=cell, lr=lr, val_loss=val, test_loss=test, params=1, train_s=1.0, history=[])
    ch3.write_trial(row, fw, seed, epochs, folder, trials)


def test_grid_grows_past_its_edge_then_asks_for_seeds(ch3, tmp_path):
    trials, scratch = tmp_path / "trials", tmp_path / "runs"
    assert ch3.todo(["gru"], ["tf"], 3, trials) == [("gru", "tf", lr, 0) for lr in ch3.START_GRID]
    low, high = ch3.START_GRID
    record(ch3, trials, scratch, "gru", "tf", low, 0, 1.42, 1.50)
    record(ch3, trials, scratch, "gru", "tf", high, 0, 1.41, 1.50)
    assert ch3.todo(["gru"], ["tf"], 3, trials) == [("gru", "tf", 2 * high, 0)]      # best at the top edge
    record(ch3, trials, scratch, "gru", "tf", 2 * high, 0, 1.40, 1.50)
    assert ch3.todo(["gru"], ["tf"], 3, trials) == [("gru", "tf", 4 * high, 0)]      # still at the edge
    record(ch3, trials, scratch, "gru", "tf", 4 * high, 0, 1.45, 1.50)
    assert ch3.todo(["gru"], ["tf"], 3, trials) == [("gru", "tf", 2 * high, s) for s in ch3.SEEDS if s]
    with pytest.raises(ValueError, match="incomplete"):
        ch3.select(["gru"], ["tf"], 3, tmp_path, trials)


def test_select_keeps_lowest_validation_loss_not_test_and_pools_seeds(ch3, tmp_path):
    trials, scratch, out = tmp_path / "trials", tmp_path / "runs", tmp_path / "shipped"
    out.mkdir()
    low, high = ch3.START_GRID
    for lr, val, test in [(low / 2, 1.50, 1.30), (low, 1.40, 1.60), (high, 1.45, 1.20)]:
        record(ch3, trials, scratch, "rnn", "torch", lr, 0, val, test)
    for seed, val in zip(ch3.SEEDS[1:], (1.42, 1.44)):
        record(ch3, trials, scratch, "rnn", "torch", low, seed, val, 1.6)
    assert ch3.todo(["rnn"], ["torch"], 3, trials) == []
    chosen = ch3.select(["rnn"], ["torch"], 3, out, trials)["rnn", "torch"]
    assert chosen["lr"] == low                  # lowest validation loss, although its test loss is the highest
    assert (out / "char_rnn_torch.npz").read_text() == f"rnn torch lr={low:g} seed=0"   # seed 0's checkpoint shipped
    assert [g["lr"] for g in chosen["grid"]] == [low / 2, low, high]
    assert [s["val_loss"] for s in chosen["seeds"]] == [1.40, 1.42, 1.44]
    assert chosen["val_mean"] == pytest.approx(1.42) and chosen["val_std"] == pytest.approx(0.02)


def test_select_refuses_other_recipes_and_missing_checkpoints(ch3, tmp_path):
    trials, scratch = tmp_path / "trials", tmp_path / "runs"
    low, high = ch3.START_GRID
    record(ch3, trials, scratch, "lstm", "tf", low, 0, 1.4, 1.5, epochs=5)
    with pytest.raises(ValueError, match="another recipe"):
        ch3.todo(["lstm"], ["tf"], 3, trials)
    trials2 = tmp_path / "trials2"
    for lr, val in [(low / 2, 1.5), (low, 1.4), (high, 1.45)]:
        record(ch3, trials2, scratch / "2", "lstm", "tf", lr, 0, val, 1.5)
    for seed in ch3.SEEDS[1:]:
        record(ch3, trials2, scratch / "2", "lstm", "tf", low, seed, 1.4, 1.5)
    (scratch / "2" / f"lstm_tf_{low:g}_0" / "char_lstm_tf.npz").write_text("changed since it was recorded")
    with pytest.raises(FileNotFoundError, match="retrain it"):
        ch3.select(["lstm"], ["tf"], 3, tmp_path, trials2)


def test_shipped_records_match_the_shipped_checkpoints(ch3):
    """Every (cell, framework) of ch3_quality.json names a seed-0 record whose checkpoint hash is the shipped file's."""
    rows = json.loads(ch3.RESULTS.read_text())["rows"]
    for row in rows:
        fw = "torch" if row["framework"] == "PyTorch" else "tf"
        rec = json.loads(ch3.trial_path(row["cell"], fw, row["lr"], 0).read_text())
        assert rec["checkpoint_sha256"] == ch3.sha256(ch3.CKPT / ch3.checkpoint_name(row["cell"], fw))
        assert rec["val_loss"] == pytest.approx(row["val_loss"], abs=1e-6)
