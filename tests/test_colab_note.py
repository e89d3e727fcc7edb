"""The restart advice printed on Colab by the set-up cell (every page's first cell imports llmbook)."""
import importlib
import sys
import types

import llmbook


def test_nothing_is_printed_outside_colab(capsys):
    assert "google.colab" not in sys.modules
    importlib.reload(llmbook)
    assert capsys.readouterr().out == ""


def test_colab_prints_the_restart_advice(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    importlib.reload(llmbook)
    out = capsys.readouterr().out
    assert "Runtime > Restart session" in out and "from the top" in out
    assert all(len(line) <= 80 for line in out.splitlines()), "the advice must fit 80 columns"


def test_a_package_replaced_after_import_is_named(monkeypatch):
    import tqdm                                    # a requirement of llmbook
    old = types.ModuleType("tqdm")
    old.__version__ = "0.0.1"                      # as if pip installed a newer tqdm after this import
    monkeypatch.setitem(sys.modules, "tqdm", old)
    assert f"tqdm 0.0.1 -> {tqdm.__version__}" in llmbook.stale_imports()
    note = llmbook.colab_note()
    assert "tqdm 0.0.1" in note and "Restart session" in note
    assert all(len(line) <= 80 for line in note.splitlines()), "the advice must fit 80 columns"
    monkeypatch.setitem(sys.modules, "tqdm", tqdm)
    assert not [s for s in llmbook.stale_imports() if s.startswith("tqdm ")]
