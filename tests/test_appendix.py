"""The appendix's generated quality table agrees with benchmarks/results/*.json; its links point at real pages."""
from __future__ import annotations

import html
import json
import re
import shutil
from pathlib import Path

import pytest
from conftest import load_script

ROOT = Path(__file__).resolve().parents[1]
APPENDIX = ROOT / "appendix"


qt = load_script("benchmarks/quality_table.py")


def _page_rows(text: str) -> list[list[str]]:
    """The body rows of every HTML table of the page, as lists of unescaped cell texts."""
    rows = re.findall(r"<tr>((?:<td>.*?</td>)+)</tr>", text)
    return [[html.unescape(c) for c in re.findall(r"<td>(.*?)</td>", r)] for r in rows]


def test_quality_page_is_generated_from_the_results():
    page = (APPENDIX / "quality_table.md").read_text()
    assert page == qt.render(), ("appendix/quality_table.md disagrees with benchmarks/results/*.json: "
                                 "run `python benchmarks/quality_table.py` and commit the page")


def test_quality_page_shows_every_result_row_with_its_numbers():
    """Independent of render(): every row of every quality JSON is on the page, numbers included."""
    shown = _page_rows((APPENDIX / "quality_table.md").read_text())
    expected = 0
    for path in sorted((ROOT / "benchmarks" / "results").glob("*.json")):
        data = json.loads(path.read_text())
        rows = data.get("rows") if isinstance(data, dict) else None
        if not rows or not all(isinstance(r, dict) and "framework" in r for r in rows):
            continue
        for i, row in enumerate(rows):
            expected += 1
            value = row["value"] if "value" in row else row.get("test_ppl")
            want = {f"{value:.2f}"}
            if row.get("params") is not None:
                want.add(f"{row['params']:,}")
            if row.get("signature"):
                want.add(row["signature"])
            assert any(want <= set(r) for r in shown), \
                f"{path.name} row {i} ({want}) is not on appendix/quality_table.md: regenerate the page"
    assert expected == len(shown), f"the page has {len(shown)} table rows, the JSON files {expected}"


def test_quality_table_takes_new_result_files(tmp_path):
    """A new file of rows (another chapter's benchmark) appears with no change to the script."""
    results = tmp_path / "results"
    shutil.copytree(ROOT / "benchmarks" / "results", results)
    (results / "ch9_quality.json").write_text(json.dumps({"rows": [
        {"model": "decoder-only LM", "framework": "torch", "dataset": "Shakespeare, characters",
         "test_ppl": 4.321, "params": 123456, "train_s": 600.0},
        {"model": "decoder-only LM", "framework": "tf", "dataset": "Shakespeare, characters",
         "metric": "test perplexity", "value": 4.5, "params": 123456, "train_s": None}]}))
    (results / "ch9_speed.json").write_text(json.dumps({"rows": [{"n": 1, "torch_s": 0.1}]}))
    tables = qt.quality_rows(results)
    assert [r["framework"] for r in tables["ch9_quality.json"]] == ["PyTorch", "TensorFlow"]
    page = qt.render(results)
    cells = _page_rows(page)
    assert ["decoder-only LM", "PyTorch", "Shakespeare, characters", "test perplexity", "4.32", "123,456",
            "10 min", "—"] in cells
    assert "`ch9_speed.json`" in page, "a file without model rows must be listed as not a quality table"


def test_quality_table_rejects_a_row_without_a_metric(tmp_path):
    (tmp_path / "x.json").write_text(json.dumps({"rows": [{"framework": "torch", "params": 3}]}))
    with pytest.raises(ValueError, match="x.json row 0 has no metric"):
        qt.quality_rows(tmp_path)


def _doc_targets(md: Path) -> list[tuple[str, Path]]:
    """(text, resolved path) of every {doc}`text <target>` and relative markdown link in a page."""
    text = md.read_text()
    found = [(m.group(0), m.group(1)) for m in re.finditer(r"\{doc\}`[^`<]*<([^>]+)>`", text)]
    found += [(m.group(0), m.group(1)) for m in re.finditer(r"\]\(((?:\.\./)+[^)#\s]+)(?:#[^)]*)?\)", text)]
    return [(label, (md.parent / target).resolve()) for label, target in found]


@pytest.mark.parametrize("page", ["glossary.md", "index.md", "setup.md"])
def test_appendix_links_point_at_pages(page):
    targets = _doc_targets(APPENDIX / page)
    assert targets or page == "setup.md", f"appendix/{page} links to no page"
    for label, path in targets:
        candidates = [path, path.with_suffix(".ipynb"), path.with_suffix(".md")] if not path.suffix else [path]
        assert any(c.exists() for c in candidates), f"appendix/{page}: {label} points at {path}, which is missing"


def test_glossary_links_every_term_but_the_planned_ones():
    rows = [r for r in (APPENDIX / "glossary.md").read_text().splitlines()
            if r.startswith("| ") and not r.startswith("| 中文")]
    assert len(rows) >= 40
    for r in rows:
        cells = [c.strip() for c in r.strip("|").split("|")]
        assert "{doc}" in cells[2] or "planned" in cells[3], f"glossary term without a link: {r}"


def test_chapter_indexes_link_to_the_repairs():
    """Each chapter whose concepts a seed gets wrong links to the repair, and the target label exists."""
    labels = set(re.findall(r"^\((seed-\d{3})\)=$", (APPENDIX / "01_seed_code.md").read_text(), re.M))
    for chapter, label in [("01_language_models", "seed-002"), ("03_lstm_gru", "seed-003"),
                           ("04_seq2seq", "seed-001"), ("05_attention", "seed-003"),
                           ("06_transformer", "seed-003")]:
        text = (ROOT / "chapters" / chapter / "index.md").read_text()
        assert f"appendix/01_seed_code.ipynb#{label}" in text or f"<{label}>" in text, \
            f"chapters/{chapter}/index.md does not link to the appendix's {label}"
        assert label in labels, f"label {label} is missing from appendix/01_seed_code.md"
