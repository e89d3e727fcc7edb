"""The course's quality table, generated from benchmarks/results/*.json into appendix/quality_table.md.

Every results file that holds a list of `rows`, each with a `framework`, is a quality table: one
section of the page per file, one table line per row (model, framework, dataset, metric, value,
parameters, training time, sacreBLEU signature). Other result files (speed, corpus statistics,
training logs) are listed as not quality tables. A new file that follows the same shape appears on
the page with no change here; tests/test_quality_table.py fails when the page and the JSON disagree.

    python benchmarks/quality_table.py           # rewrite appendix/quality_table.md
    python benchmarks/quality_table.py --check   # exit 1 if the page is out of date
"""
from __future__ import annotations

import argparse
import html
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PAGE = ROOT / "appendix" / "quality_table.md"

FRAMEWORKS = {"torch": "PyTorch", "pytorch": "PyTorch", "tf": "TensorFlow", "tensorflow": "TensorFlow"}
# What a file's rows measure when the rows do not say (keys: file stem). Rows may carry "dataset"
# and "model" themselves, and new files should: they then need no entry here.
DATASETS = {
    "ch1_quality": "Shakespeare, words (held-out plays)",
    "ch3_quality": "Shakespeare, characters (held-out plays)",
}
MODELS = {"ch4_quality": "GRU Seq2Seq"}
# Metrics recognised in rows without "metric"/"value", in order of preference: key -> name shown.
METRIC_KEYS = {
    "test_ppl": "test perplexity", "test_bleu": "test BLEU", "test_accuracy": "test accuracy",
    "test_acc": "test accuracy", "test_exact_match": "test exact match", "test_elbo": "test ELBO",
    "test_loss": "test loss (nats)", "val_ppl": "validation perplexity",
}
COLUMNS = ["model", "framework", "dataset", "metric", "value", "parameters", "training time",
           "sacreBLEU signature"]


def _metric(row: dict, where: str) -> tuple[str, float]:
    """The (metric name, value) a row reports."""
    if "metric" in row and "value" in row:
        return str(row["metric"]), row["value"]
    for key, name in METRIC_KEYS.items():
        if isinstance(row.get(key), (int, float)):
            return name, row[key]
    for key, value in row.items():
        if key.startswith("test_") and isinstance(value, (int, float)):
            return key.replace("_", " "), value
    raise ValueError(f"{where} has no metric: give it 'metric' and 'value' (or a numeric 'test_...' "
                     f"key such as 'test_ppl'); its keys are {sorted(row)}")


def quality_rows(results: Path = RESULTS) -> dict[str, list[dict]]:
    """Normalised rows of every quality-table file in `results`, keyed by file name (sorted)."""
    tables = {}
    for path in sorted(results.glob("*.json")):
        data = json.loads(path.read_text())
        rows = data.get("rows") if isinstance(data, dict) else None
        if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) and "framework" in r
                                                             for r in rows):
            continue
        table = []
        for i, row in enumerate(rows):
            where = f"{path.name} row {i}"
            metric, value = _metric(row, where)
            model = row.get("model") or (str(row["cell"]).upper() if row.get("cell") else None) \
                or MODELS.get(path.stem) or path.stem
            if row.get("decoding"):
                model = f"{model}, {row['decoding']}"
            table.append(dict(
                model=str(model),
                framework=FRAMEWORKS.get(str(row["framework"]).lower(), str(row["framework"])),
                dataset=str(row.get("dataset") or row.get("task") or data.get("dataset")
                            or DATASETS.get(path.stem) or path.stem),
                metric=metric, value=value, params=row.get("params"), train_s=row.get("train_s"),
                signature=row.get("signature") or ""))
        tables[path.name] = table
    return tables


def other_files(results: Path = RESULTS) -> list[str]:
    """Result files that are not quality tables."""
    tables = quality_rows(results)
    return [p.name for p in sorted(results.glob("*.json")) if p.name not in tables]


def fmt_value(value) -> str:
    """A metric value as shown: two decimals."""
    return "—" if value is None else f"{value:.2f}"


def fmt_params(params) -> str:
    """A parameter count with thousands separators."""
    return "—" if params is None else f"{int(params):,}"


def fmt_time(seconds) -> str:
    """A training time: seconds (one decimal under ten) under two minutes, else minutes."""
    if seconds is None:
        return "—"
    if seconds < 10:
        return f"{seconds:.1f} s"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def cells(row: dict) -> list[str]:
    """The table cells of one normalised row, in COLUMNS order."""
    return [row["model"], row["framework"], row["dataset"], row["metric"], fmt_value(row["value"]),
            fmt_params(row["params"]), fmt_time(row["train_s"]), row["signature"] or "—"]


def html_table(rows: list[dict]) -> str:
    """One HTML table of normalised rows."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS)
    body = "\n".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells(r)) + "</tr>"
                     for r in rows)
    return f'<table class="quality-table">\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>'


def render(results: Path = RESULTS) -> str:
    """The whole page."""
    tables = quality_rows(results)
    parts = [
        "# The course's quality table",
        "",
        "Every finished benchmark run of the course, in every framework and on every dataset, with the",
        "number its benchmark measured (a run still training appears when it finishes, or marked as",
        "still training). This page is generated: `python benchmarks/quality_table.py` reads",
        "`benchmarks/results/*.json` (written by the benchmark scripts, `benchmarks/chN_quality.py`,",
        "`benchmarks/ladder.py` and others, which train the checkpoints the chapters load) and rewrites",
        "it; a test fails when the page and the JSON files",
        "disagree. *Parameters* of an n-gram model are its stored n-gram counts. *Training time* is the",
        "benchmark's wall-clock time on a 2-core CPU shared with other jobs (most runs on one thread; a",
        "row of several seeds gives their mean; — where a row reuses another's checkpoint or trains",
        "nothing). BLEU is sacreBLEU's corpus BLEU, reported with its signature (Post, 2018).",
        "",
    ]
    for name, rows in tables.items():
        parts += [f"## `{name}`", "", html_table(rows), ""]
    others = other_files(results)
    if others:
        parts += ["Result files that are not quality tables (speed, corpus statistics, training logs): "
                  + ", ".join(f"`{n}`" for n in others) + ".", ""]
    return "\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 if the page is out of date")
    args = parser.parse_args()
    page = render()
    if args.check:
        if not PAGE.exists() or PAGE.read_text() != page:
            sys.exit(f"{PAGE.relative_to(ROOT)} is out of date: run `python benchmarks/quality_table.py`")
        print(f"{PAGE.relative_to(ROOT)} is up to date")
        return
    PAGE.write_text(page)
    n = sum(map(len, quality_rows().values()))
    print(f"written {PAGE.relative_to(ROOT)}: {n} rows from {len(quality_rows())} results files")


if __name__ == "__main__":
    main()
