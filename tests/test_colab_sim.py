"""tools/colab_sim.py, the Colab simulation: a notebook that needs the repository fails, one that needs only
the wheel passes, and the verdict holds the PENDING list to the truth."""
import sys
from pathlib import Path

import nbformat
import pytest
from conftest import load_script

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def sim():
    return load_script("tools/colab_sim.py")


@pytest.fixture(scope="module")
def site(sim, tmp_path_factory):
    """The wheel of this working tree, installed alone."""
    tmp = tmp_path_factory.mktemp("wheel")
    wheel = sim.build_wheel(tmp / "dist")
    sim.install(wheel, tmp / "site")
    return tmp / "site"


def _notebook(path: Path, *sources: str) -> Path:
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources]), path)
    return path


def test_the_wheel_holds_the_package_data(site):
    assert (site / "llmbook" / "checkpoints" / "nnlm_torch.npz").is_file()
    assert (site / "llmbook" / "grading" / "checks" / "ch01.py").is_file()
    assert not (site / "benchmarks").exists() and not (site / "tests").exists()


@pytest.mark.parametrize("jobs", [1, 2])
def test_only_what_the_wheel_holds_is_there(sim, site, tmp_path, jobs):
    """Package data loads; a results file next to the repository and a repository import do not (one
    notebook at a time or two: the rows come back in the notebooks' order either way)."""
    ok = _notebook(tmp_path / "ok.ipynb", "import os, llmbook",
                   "assert os.path.isfile(llmbook.checkpoint_path('nnlm_torch.npz'))")
    repo_file = _notebook(tmp_path / "repo_file.ipynb", "import json, pathlib, llmbook",
                          "root = pathlib.Path(llmbook.__file__).parents[1]\n"
                          "json.loads((root / 'benchmarks/results/ch1_quality.json').read_text())")
    repo_import = _notebook(tmp_path / "repo_import.ipynb", "import seq2seq_common")
    other = _notebook(tmp_path / "other.ipynb", "import importlib.util",
                      "assert importlib.util.find_spec('torch') is None", "import torch.nn")
    ran = sim.simulate([ok, repo_file, repo_import, other], site, cell_timeout=120, blocked=("torch",), jobs=jobs)
    assert [Path(r["notebook"]).stem for r in ran] == ["ok", "repo_file", "repo_import", "other"]
    rows = {Path(r["notebook"]).stem: r for r in ran}
    assert rows["ok"]["error"] is None
    assert "FileNotFoundError" in rows["repo_file"]["error"]
    assert "ModuleNotFoundError" in rows["repo_import"]["error"]
    assert "ModuleNotFoundError: No module named 'torch'" in rows["other"]["error"]    # as if not installed
    assert sim.BLOCKED == {"pytorch": ("tensorflow", "keras"), "tensorflow": ("torch",)}
    assert all("\x1b" not in (r["error"] or "") for r in rows.values())


def test_the_guard_refuses_a_run_inside_the_repository(sim, site, tmp_path, monkeypatch):
    """Were llmbook imported from the repository (the editable install), the first cell would stop the notebook."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        sim.GUARD.format(site=str(site.resolve()), repo=str(ROOT)))])
    monkeypatch.delenv("PYTHONPATH", raising=False)
    seconds, error = sim.run_notebook(nb, tmp_path, cell_timeout=120)
    assert error is not None and "AssertionError" in error and "llmbook from" in error


def test_the_verdict_keeps_pending_true(sim, monkeypatch):
    monkeypatch.setattr(sim, "PENDING", {"colab/pytorch/x/01_a.ipynb": "reads a file next to the repository"})
    rows = [dict(notebook="colab/pytorch/x/01_a.ipynb", seconds=1.0, error=None),
            dict(notebook="colab/pytorch/x/02_b.ipynb", seconds=1.0, error="NameError: name 'tf' is not defined")]
    problems = sim.verdict(rows)
    assert len(problems) == 2
    assert "delete its PENDING entry" in problems[0] and "NameError" in problems[1]
    assert sim.verdict([dict(rows[0], error="FileNotFoundError: x")]) == []


def test_a_notebook_of_the_other_framework_is_refused(sim):
    with pytest.raises(SystemExit, match="not tensorflow variants"):
        sim.main(["--framework", "tensorflow", "colab/pytorch/01_language_models/01_ngram.ipynb"])


def test_every_pending_entry_names_a_variant_and_a_reason(sim):
    for name, reason in sim.PENDING.items():
        assert (ROOT / name).is_file(), f"PENDING names {name}, which is not a notebook"
        assert len(reason) > 10, f"PENDING entry {name} needs its reason"
