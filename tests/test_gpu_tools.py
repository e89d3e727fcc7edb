"""benchmarks/gpu_throughput.py and tools/gpu_check.py: the FLOPs formula, the peak table, and smoke runs on a CPU."""
import json
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from llmbook.torch.train import cross_entropy
from llmbook.torch.transformer import Transformer
from conftest import load_script

ROOT = Path(__file__).resolve().parents[1]


_load = load_script


@pytest.fixture(scope="module")
def gt():
    return _load("benchmarks/gpu_throughput.py")


@pytest.mark.parametrize("layers, S, T", [((1, 1), 7, 5), ((2, 1), 6, 6), ((1, 3), 4, 9)])
def test_flops_formula_equals_torch_flop_counter(gt, layers, S, T):
    """The docstring's 6 N + attention count is every matmul FLOP of a forward + backward pass, no more, no less."""
    torch.manual_seed(0)
    model = Transformer(50, 60, d_model=32, num_heads=4, num_encoder_layers=layers[0],
                        num_decoder_layers=layers[1], d_ff=64, dropout=0.0)
    src, tgt = torch.randint(4, 50, (3, S)), torch.randint(4, 60, (3, T))
    with FlopCounterMode(display=False) as counter:
        cross_entropy(model(src, tgt), tgt).backward()          # from-scratch attention: every matmul visible
    assert gt.flops_per_step(model, 3, S, T) == counter.get_total_flops()


@pytest.mark.parametrize("layers, T", [(1, 5), (3, 8)])
def test_gpt_flops_formula_equals_torch_flop_counter(gt, layers, T):
    """The GPT's 6 N + 12 L D T^2 count is every matmul FLOP of its forward + backward pass."""
    from llmbook.torch.gpt import GPT
    torch.manual_seed(0)
    model = GPT(40, d_model=32, num_heads=4, num_layers=layers, d_ff=64, max_len=16, dropout=0.0)
    ids = torch.randint(0, 40, (3, T))
    with FlopCounterMode(display=False) as counter:
        cross_entropy(model(ids), ids).backward()
    assert gt.gpt_flops_per_step(model, 3, T) == counter.get_total_flops()


def test_peak_table_lookup(gt):
    assert gt.peak_tflops("NVIDIA H100 80GB HBM3", "bf16") == 989.0
    assert gt.peak_tflops("NVIDIA H100 PCIe", "bf16") == 756.0          # not the SXM number
    assert gt.peak_tflops("NVIDIA H200", "fp32") == 494.5               # fp32 rows run on TF32 tensor cores
    assert gt.peak_tflops("NVIDIA A100-SXM4-80GB", "bf16") == 312.0
    assert gt.peak_tflops("NVIDIA A10G", "bf16") == 70.0                # not the A10's
    assert gt.peak_tflops("NVIDIA L4", "bf16") == 121.0
    assert gt.peak_tflops("Tesla T4", "bf16") is None                   # no bf16 on a T4: no MFU claimed
    assert gt.peak_tflops("Some Future GPU", "bf16") is None


def test_throughput_smoke_runs_on_any_machine(gt, tmp_path, capsys):
    out = tmp_path / "t.json"
    assert gt.main(["--smoke", "--out", str(out)]) == 0
    table = capsys.readouterr().out
    assert table.count("| 32 x 1 |") == 4
    rows = json.loads(out.read_text())["rows"]
    assert [(r["precision"], r["attention"]) for r in rows] == [
        ("fp32", "from scratch"), ("fp32", "fused"), ("bf16", "from scratch"), ("bf16", "fused")]
    for r in rows:
        assert r["tokens_per_s"] > 0 and r["tflops"] > 0 and r["loss"] == pytest.approx(r["loss"])
        if not torch.cuda.is_available():
            assert r["mfu"] is None                                        # no peak for a CPU


def test_gpt_throughput_smoke(gt, tmp_path):
    out = tmp_path / "g.json"
    assert gt.main(["--smoke", "--model", "gpt", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [(r["model"], r["precision"], r["attention"]) for r in rows] == [
        ("gpt", "fp32", "from scratch"), ("gpt", "fp32", "fused"), ("gpt", "bf16", "from scratch"),
        ("gpt", "bf16", "fused")]
    assert all(r["tokens_per_s"] > 0 and r["tflops"] > 0 for r in rows)


def test_throughput_rejects_bad_sizes(gt):
    with pytest.raises(SystemExit):
        gt.main(["--sizes", "512by6"])


def test_gpu_check_smoke_on_cpu(tmp_path):
    check = _load("tools/gpu_check.py")
    out = tmp_path / "check.json"
    assert check.main(["--smoke", "--out", str(out), "--notebooks", "colab/pytorch/06_transformer/01_attention.ipynb",
                       "--skip-throughput", "--cell-timeout", "300"]) == 0
    result = json.loads(out.read_text())
    assert result["device"]["type"] == ("cuda" if torch.cuda.is_available() else "cpu")
    assert {r["precision"] for r in result["training"]} == {"fp32", "bf16"}
    assert all(r["ok"] for r in result["training"]), result["training"]
    assert all(c["ok"] for c in result["checks"]), result["checks"]
    (nb,) = result["notebooks"]
    assert nb["notebook"] == "colab/pytorch/06_transformer/01_attention.ipynb" and nb["error"] is None, nb
