"""Explorable widgets that also work in the static HTML book.

Python callbacks need a kernel, which the HTML book does not have. So each explorer precomputes
its frames (HTML snippets) and shows them in a `widgets.Stack`, whose visible child is linked to a
slider with `widgets.jslink`: the link runs in the browser, so the control works live in Jupyter
or Colab and in the book, from the widget state saved in the notebook.

`widgets.Stack` exists from ipywidgets 8 on; Colab ships ipywidgets 7. There `linked_stack` falls
back to a Box whose children are shown or hidden (`layout.display`) by a Python observer of the
control: it needs the live kernel, which Colab has.
"""
from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence

import ipywidgets as widgets
import numpy as np

from llmbook.data.seq2seq import BOS_ID

HAS_STACK = hasattr(widgets, "Stack")   # ipywidgets >= 8


def _own_layout(child: widgets.Widget, display: str) -> None:
    """Give child a Layout of its own (layouts may be shared between frames) with `display` set."""
    old = child.layout
    kept = {k: getattr(old, k) for k in old.keys if not k.startswith("_") and getattr(old, k) is not None}
    kept["display"] = display
    child.layout = widgets.Layout(**kept)


def linked_stack(selector: widgets.Widget, children: Sequence[widgets.Widget],
                 layout: widgets.Layout | None = None) -> widgets.Widget:
    """Show children[selector.index] only: a jslinked `widgets.Stack` (8.x), else a Box switched by Python (7.x)."""
    if not hasattr(selector, "index"):
        raise TypeError(f"linked_stack needs a selection control with an `index` (Dropdown, SelectionSlider, ...), "
                        f"got {type(selector).__name__}")
    children = list(children)
    if len(children) != len(selector.options):
        raise ValueError(f"linked_stack got {len(children)} children for {len(selector.options)} options of "
                         f"the {type(selector).__name__}: give one child per option")
    extra = {} if layout is None else {"layout": layout}
    if HAS_STACK:
        stack = widgets.Stack(children, selected_index=selector.index, **extra)
        widgets.jslink((selector, "index"), (stack, "selected_index"))
        return stack
    for i, child in enumerate(children):
        _own_layout(child, "" if i == selector.index else "none")
    box = widgets.Box(children, **extra)

    def show(change) -> None:
        for i, child in enumerate(children):
            child.layout.display = "" if i == change["new"] else "none"

    selector.observe(show, names="index")
    return box


def frame_slider(frames: Mapping[str, str], description: str, value: str | None = None) -> widgets.VBox:
    """A slider over the labels of `frames` that shows the matching precomputed HTML frame."""
    if not frames:
        raise ValueError("frame_slider needs at least one frame")
    labels = list(frames)
    slider = widgets.SelectionSlider(options=labels, value=value if value is not None else labels[0],
                                     description=description, continuous_update=True,
                                     style={"description_width": "initial"},
                                     layout=widgets.Layout(width="420px"))
    return widgets.VBox([slider, linked_stack(slider, [widgets.HTML(frames[k]) for k in labels])])


def bars_html(labels: Sequence[str], values: Sequence[float], title: str = "", width_px: int = 320,
              fmt: str = "{:.3f}") -> str:
    """A horizontal bar chart as self-contained HTML (no JavaScript, no images)."""
    if len(labels) != len(values):
        raise ValueError(f"bars_html got {len(labels)} labels but {len(values)} values")
    top = max(max(values), 1e-12)
    rows = []
    for label, v in zip(labels, values):
        w = int(round(width_px * v / top))
        rows.append(
            "<tr><td style='text-align:right;padding-right:6px;font-family:monospace'>"
            f"{html.escape(str(label))}</td><td><div style='background:#4c72b0;height:14px;width:{w}px'></div></td>"
            f"<td style='padding-left:6px;font-family:monospace'>{fmt.format(v)}</td></tr>")
    caption = f"<caption style='text-align:left;font-weight:bold'>{html.escape(title)}</caption>" if title else ""
    return f"<table style='border-collapse:collapse'>{caption}{''.join(rows)}</table>"


def text_html(text: str, label: str = "") -> str:
    """Preformatted text with an optional bold label, HTML-escaped."""
    head = f"<b>{html.escape(label)}</b><br>" if label else ""
    return f"<div style='margin-top:6px'>{head}<pre style='white-space:pre-wrap;margin:0'>{html.escape(text)}</pre></div>"


def frame_picker(frames: Mapping[str, str], description: str, value: str | None = None) -> widgets.VBox:
    """A drop-down over the labels of `frames` that shows the matching precomputed HTML frame (no kernel needed)."""
    if not frames:
        raise ValueError("frame_picker needs at least one frame")
    labels = list(frames)
    pick = widgets.Dropdown(options=labels, value=value if value is not None else labels[0], description=description,
                            style={"description_width": "initial"}, layout=widgets.Layout(width="620px"))
    return widgets.VBox([pick, linked_stack(pick, [widgets.HTML(frames[k]) for k in labels])])


def heatmap_html(weights, rows: Sequence[str], cols: Sequence[str], title: str = "", cell_px: int = 26) -> str:
    """Attention weights (rows x cols) as a self-contained HTML table: darker = more weight.

    Hovering a cell shows "row -> col: weight"; hovering a row label shows that row's weights over all cols.
    """
    w = np.asarray(weights, dtype=float)
    if w.shape != (len(rows), len(cols)):
        raise ValueError(f"heatmap_html got weights of shape {w.shape} for {len(rows)} rows and {len(cols)} cols")
    esc = html.escape
    head = "".join(f"<th style='writing-mode:vertical-rl;transform:rotate(180deg);font-weight:normal;"
                   f"font-family:monospace;padding:2px'>{esc(c)}</th>" for c in cols)
    body = []
    for r, row in zip(rows, w):
        summary = "; ".join(f"{c}: {v:.2f}" for c, v in zip(cols, row))
        cells = "".join(
            f"<td title='{esc(f'{r} -> {c}: {v:.3f}')}' style='width:{cell_px}px;height:{cell_px}px;padding:0;"
            f"background:rgba(49,99,160,{v:.3f});border:1px solid #eee'></td>" for c, v in zip(cols, row))
        body.append(f"<tr><th title='{esc(summary)}' style='text-align:right;font-weight:normal;font-family:monospace;"
                    f"padding-right:6px;cursor:help'>{esc(r)}</th>{cells}</tr>")
    caption = f"<caption style='text-align:left;font-weight:bold'>{esc(title)}</caption>" if title else ""
    return (f"<table style='border-collapse:collapse'>{caption}<tr><th></th>{head}</tr>{''.join(body)}</table>"
            "<div style='font-size:small;color:#555'>rows: output tokens; columns: source tokens; "
            "hover a cell or an output token for the weights</div>")


def frame_selector(frames: Mapping[tuple, str], names: Sequence[str], missing: str = "(no such frame)") -> widgets.VBox:
    """One dropdown per axis of `frames` (keyed by tuples of labels, one per name) over precomputed HTML frames.

    The frames sit in nested `widgets.Stack`s, one level per axis; every stack of a level is linked to that
    level's dropdown with `widgets.jslink`, so any combination shows without a kernel (static book too);
    on ipywidgets 7 the stacks are `linked_stack`'s Python-switched boxes.
    Combinations absent from `frames` show `missing`.
    """
    if not frames:
        raise ValueError("frame_selector needs at least one frame")
    if any(len(key) != len(names) for key in frames):
        raise ValueError(f"every key of frames needs {len(names)} labels, one per name in {list(names)}")
    axes = [list(dict.fromkeys(key[i] for key in frames)) for i in range(len(names))]
    first = next(iter(frames))
    pickers = [widgets.Dropdown(options=[str(o) for o in opts], index=opts.index(first[i]), description=str(name),
                                style={"description_width": "initial"}, layout=widgets.Layout(width="auto"))
               for i, (name, opts) in enumerate(zip(names, axes))]

    layout = widgets.Layout()                                  # shared: one model, not one per frame
    style = widgets.HTML().style                               # likewise one HTMLStyle model

    def level(prefix: tuple) -> widgets.Widget:
        depth = len(prefix)
        if depth == len(names):
            return widgets.HTML(frames.get(prefix, f"<p><i>{html.escape(missing)}</i></p>"), layout=layout, style=style)
        return linked_stack(pickers[depth], [level(prefix + (o,)) for o in axes[depth]], layout=layout)

    return widgets.VBox([widgets.HBox(pickers), level(())])


def shaded_heatmap_html(weights, rows: Sequence[str], cols: Sequence[str], title: str = "", cell_px: int = 18) -> str:
    """A compact `heatmap_html` for explorers with hundreds of frames: 11 shading classes, no hover text."""
    if len(weights) != len(rows) or any(len(r) != len(cols) for r in weights):
        raise ValueError(f"shaded_heatmap_html: weights must be {len(rows)} x {len(cols)} to match the labels")
    shades = "".join(f".llmbook-hm .w{i}{{background:rgba(31,80,160,{i / 10:.1f})}}" for i in range(11))
    style = (f"<style>.llmbook-hm td{{width:{cell_px}px;height:{cell_px}px;padding:0;border:1px solid #eee}}"
             ".llmbook-hm th{font-weight:normal;font-family:monospace;font-size:11px;padding:1px 3px}"
             f"{shades}</style>")
    head = "".join(f"<th style='writing-mode:vertical-rl'>{html.escape(str(c))}</th>" for c in cols)
    body = []
    for label, row in zip(rows, weights):
        tds = "".join(f"<td class=w{int(round(10 * min(max(float(v), 0.0), 1.0)))}>" for v in row)   # </td> is optional
        body.append(f"<tr><th style='text-align:right'>{html.escape(str(label))}</th>{tds}</tr>")
    caption = f"<caption style='text-align:left;font-weight:bold'>{html.escape(title)}</caption>" if title else ""
    return f"{style}<table class='llmbook-hm' style='border-collapse:collapse'>{caption}<tr><th></th>{head}</tr>{''.join(body)}</table>"


def _char(ch: str) -> str:
    """A character as a label: space and line break made visible."""
    return {" ": "\u2423", "\n": "\u23ce"}.get(ch, ch)


def _signed_rgb(k: int) -> str:
    """Colour of level k in -5..5: blue for negative, white for 0, red for positive."""
    a = 255 - 51 * abs(k)
    return f"rgb(255,{a},{a})" if k >= 0 else f"rgb({a},{a},255)"


def state_steps_html(values, text: str, rows: Sequence[str], current: int) -> str:
    """Hidden states while reading `text`: values (R, T) in [-1, 1], one column per character.

    Columns 0..current are shaded (red positive, blue negative, 11 levels); later ones stay empty,
    and the character at `current` is highlighted: one frame of a step-by-step explorer.
    """
    v = np.asarray(values, dtype=float)
    if v.shape != (len(rows), len(text)):
        raise ValueError(f"state_steps_html got values of shape {v.shape} for {len(rows)} rows and "
                         f"{len(text)} characters")
    shades = "".join(f".llmbook-hs .c{k + 5}{{background:{_signed_rgb(k)}}}" for k in range(-5, 6))
    style = ("<style>.llmbook-hs td{width:13px;height:11px;padding:0}"
             ".llmbook-hs th{font:11px monospace;padding:0 1px}"
             f".llmbook-hs .now{{background:#ffd54f}}{shades}</style>")
    head = "".join(f"<th class='{'now' if j == current else ''}'>{html.escape(_char(c))}</th>"
                   for j, c in enumerate(text))
    body = ""
    for label, row in zip(rows, v):
        levels = np.clip(np.round(row * 5), -5, 5).astype(int) + 5                  # 0..10
        cells = "".join(f"<td class=c{k}>" if j <= current else "<td>"              # </td> is optional
                        for j, k in enumerate(levels))
        body += (f"<tr><td style='font:10px monospace;padding-right:4px;width:auto'>"
                 f"{html.escape(str(label))}</td>{cells}</tr>")
    return (f"{style}<table class='llmbook-hs' style='border-collapse:collapse'>"
            f"<tr><th></th>{head}</tr>{body}</table>")


GATE_COLOURS = {"f": (76, 114, 176), "i": (85, 168, 104), "o": (196, 78, 82)}
GATE_NAMES = {"f": "forget", "i": "input", "o": "output"}


def gate_text_html(text: str, gates: Mapping[str, np.ndarray], unit: int) -> str:
    """Each line of `text` three times, every character shaded by one LSTM unit's forget, input and
    output gate (`gates[g]` of shape (T, H), activations in 0..1) after reading it: darker = more open."""
    if any(np.shape(gates[g])[0] != len(text) for g in GATE_NAMES):
        raise ValueError(f"gate_text_html: every gate needs one row per character ({len(text)})")
    shades = "".join(f".llmbook-gv .{g}{k}{{background:rgba({r},{gr},{b},{k / 10:.1f})}}"
                     for g, (r, gr, b) in GATE_COLOURS.items() for k in range(11))
    style = f"<style>.llmbook-gv span{{font:13px monospace;padding:1px 0}}{shades}</style>"
    shown = {" ": "\u00b7", "\n": "\u23ce"}
    blocks, start = [], 0
    for part in text.splitlines(keepends=True):
        stop = start + len(part)
        lines = []
        for g, name in GATE_NAMES.items():
            spans = "".join(f"<span class='{g}{int(round(float(a) * 10))}'>"
                            f"{html.escape(shown.get(ch, ch))}</span>"
                            for ch, a in zip(part, np.asarray(gates[g])[start:stop, unit]))
            lines.append("<div style='white-space:nowrap'><span style='display:inline-block;"
                         f"width:56px'>{name}</span>{spans}</div>")
        blocks.append("".join(lines))
        start = stop
    mean_f = float(np.mean(np.asarray(gates["f"])[:, unit]))
    return (f"{style}<div class='llmbook-gv'><b>unit {unit}</b> (mean forget gate {mean_f:.2f})"
            + "<div style='height:8px'></div>".join(blocks) + "</div>")


# A table cell that is a number, right-aligned: 1,234  -0.5  +0.050  3e-3  17.8 %  99.8%
NUMBER = re.compile(r"[+\-−]?(\d[\d,]*(\.\d*)?|\.\d+)([eE][+\-]?\d+)? ?%?")


def table_html(header: Sequence[str], rows: Sequence[Sequence], caption: str = "") -> str:
    """A plain HTML table (header row, then one row per sequence of cells, numbers right-aligned)."""
    if any(len(r) != len(header) for r in rows):
        raise ValueError(f"every row needs {len(header)} cells, one per header: {list(header)}")

    def cell(v, tag):
        s = str(v)
        align = "right" if NUMBER.fullmatch(s.strip()) else "left"
        return f"<{tag} style='text-align:{align};padding:2px 8px'>{html.escape(s)}</{tag}>"

    cap = f"<caption style='text-align:left;font-weight:bold'>{html.escape(caption)}</caption>" if caption else ""
    head = "".join(cell(h, "th") for h in header)
    body = "".join("<tr>" + "".join(cell(v, "td") for v in r) + "</tr>" for r in rows)
    return f"<table style='border-collapse:collapse'>{cap}<tr>{head}</tr>{body}</table>"


def show_source(*objs):
    """The source code of one or more functions, classes or methods, syntax-highlighted (IPython's Code
    display): one output for the cell, each listing dedented (a method starts at `def`), one after another.
    `show_source(MultiHeadAttention.split, MultiHeadAttention.forward)` shows the two methods."""
    import inspect
    import textwrap

    from IPython.display import Code
    if not objs:
        raise ValueError("show_source needs at least one function, class or method")
    return Code("\n".join(textwrap.dedent(inspect.getsource(o)) for o in objs), language="python")


def _mean_sd(d: dict) -> str:
    """mean ± standard deviation over seeds, one decimal (the mean alone for one seed)."""
    return f"{d['mean']:.1f}" + (f" ± {d['std']:.1f}" if d["std"] is not None else "")


LADDER_COLUMNS = {
    "rung": lambda r: r["rung"],
    "framework": lambda r: {"torch": "PyTorch", "tf": "TensorFlow"}.get(r["framework"], r["framework"]),
    "model": lambda r: r["what"],
    "parameters": lambda r: f"{r['params']:,}",
    "seeds": lambda r: len(r["seeds"]),
    "best epoch": lambda r: ", ".join(map(str, r["best_epochs"])) + ("" if r.get("finished", True) else " *"),
    "BLEU greedy": lambda r: _mean_sd(r["greedy"]["bleu"]),
    "BLEU beam 4": lambda r: _mean_sd(r["beam k=4"]["bleu"]),
    "chrF beam 4": lambda r: _mean_sd(r["beam k=4"]["chrf"]),
    "train min": lambda r: f"{r['train_min']['mean']:.0f}",
    "repeated 4-grams": lambda r: f"{100 * r['greedy']['repeated_4gram_rate']['mean']:.1f} %",
}


def ladder_table(summary: dict, rungs: Sequence[str] | None = None, columns: Sequence[str] = tuple(LADDER_COLUMNS),
                 caption: str = "") -> str:
    """The rows of benchmarks/ladder.py's summary for `rungs` (all by default) as an HTML table.

    Scores are mean ± standard deviation over seeds; a best epoch marked * belongs to a run still training.
    """
    unknown = [c for c in columns if c not in LADDER_COLUMNS]
    if unknown:
        raise ValueError(f"unknown ladder columns {unknown}; choose from {list(LADDER_COLUMNS)}")
    rows = [r for r in summary["rows"] if rungs is None or r["rung"] in rungs]
    if not rows:
        raise ValueError(f"no rung {list(rungs)} in the summary; it has {sorted({r['rung'] for r in summary['rows']})}")
    if not all(r.get("finished", True) for r in rows) and "best epoch" in columns:
        caption += " (* still training: the best epoch so far)"
    return table_html(list(columns), [[LADDER_COLUMNS[c](r) for c in columns] for r in rows], caption=caption.strip())


def paired_table(summary: dict, steps: Sequence[tuple[str, str]] | None = None, caption: str = "") -> str:
    """benchmarks/ladder.py's paired bootstrap tests between rungs (seed s against seed s) as an HTML table.

    `steps` keeps only these (lower rung, higher rung) pairs, e.g. [("a", "b")]; all by default.
    """
    rows = [[LADDER_COLUMNS["framework"](t), t["decoding"], f"{t['base']} → {t['system']}", t["seed"],
             f"{t['base_bleu']:.1f} → {t['system_bleu']:.1f}", f"{t['p_value']:.3f}"]
            for t in summary["paired"] if steps is None or (t["base"], t["system"]) in steps]
    return table_html(["framework", "decoding", "step", "seed", "BLEU", "p"], rows, caption=caption)


ATTENTION_KINDS = {"encoder self-attention": "encoder", "decoder self-attention": "decoder",
                   "cross-attention": "cross"}


def transformer_explorer(sentences: Sequence[str], src_tok, tgt_tok, decode, maps_of) -> widgets.VBox:
    """Precomputed heatmaps of every sentence, attention kind, layer and head of an encoder–decoder Transformer.

    `decode(src_ids (1, S)) -> output ids`, `maps_of(src_ids (1, S), tgt_in (1, T)) -> {"encoder": [...],
    "decoder": [...], "cross": [...]}`, one (1, h, rows, cols) NumPy array per layer: either framework.
    """
    frames = {}
    for sentence in sentences:
        src_ids = np.asarray(src_tok.encode(sentence))[None]                  # (1, S)
        out_ids = list(decode(src_ids))
        maps = maps_of(src_ids, np.array([[BOS_ID, *out_ids]]))              # tgt_in (1, T)
        src_p, tgt_p = src_tok.pieces(src_ids[0]), ["<bos>", *tgt_tok.pieces(out_ids)]
        axes = {"encoder": (src_p, src_p), "decoder": (tgt_p, tgt_p), "cross": (tgt_p, src_p)}
        for kind, key in ATTENTION_KINDS.items():
            for layer, w in enumerate(maps[key]):
                for head in range(w.shape[1]):
                    title = f"{kind}, layer {layer + 1}, head {head + 1} — output: {tgt_tok.decode(out_ids)}"
                    frames[(sentence, kind, f"layer {layer + 1}", f"head {head + 1}")] = shaded_heatmap_html(
                        np.round(w[0, head], 3), *axes[key], title=title)
    return frame_selector(frames, ["sentence", "attention", "layer", "head"],
                          missing="this model's decoder has fewer layers than its encoder")


def beam_table_html(trace: Sequence[dict], k: int, final, decode) -> str:
    """One beam-search trace as an HTML table: steps as rows, beams as columns, finished hypotheses at the right.

    `trace` is one source's `BeamResult.trace` entry, `final` its best hypothesis, `decode(ids) -> text`.
    """
    cell = "padding:2px 6px;border:1px solid #ddd;font-family:monospace;font-size:12px;vertical-align:top"
    text = lambda ids: html.escape(decode(ids)) or "∅"  # noqa: E731  (an empty prefix shows as ∅)
    head = "".join(f"<th style='{cell}'>beam {j + 1}</th>" for j in range(k))
    rows = []
    for s in trace:
        beams = [f"{text(t)}<br><span style='color:#666'>{lp:.2f}</span>" for t, lp in s["beams"]]
        beams += [""] * (k - len(beams))
        done = "<br>".join(f"{text(t)} <span style='color:#a33'>{sc:.2f}</span>" for t, _, sc in s["finished"])
        rows.append(f"<tr><td style='{cell}'>{s['step']}</td>" + "".join(f"<td style='{cell}'>{b}</td>" for b in beams)
                    + f"<td style='{cell}'>{done}</td></tr>")
    return (f"<div style='overflow-x:auto;max-width:100%'><table style='border-collapse:collapse'><tr>"
            f"<th style='{cell}'>t</th>{head}<th style='{cell}'>finished: score</th></tr>{''.join(rows)}</table>"
            f"<p><b>output</b> (best score {final.score:.3f}): {html.escape(decode(final.tokens))}</p></div>")


def beam_explorer(search, sentences: Sequence[tuple[str, str]], src_tok, tgt_tok, widths: Sequence[int],
                  default: int, **search_kw) -> widgets.VBox:
    """A sentence picker over beam-width sliders, every frame a precomputed `beam_table_html` (static book too).

    `search(src_ids (1, S), k=..., trace=True, **search_kw) -> BeamResult` runs one framework's beam search;
    `sentences` are (source, reference) pairs.
    """
    per_sentence, labels = [], []
    for source, reference in sentences:
        src = np.asarray(src_tok.encode(source))[None]                         # (1, S)
        frames = {}
        for k in widths:
            res = search(src, k=k, trace=True, **search_kw)
            frames[str(k)] = (f"<p><b>EN</b> {html.escape(source)}<br><b>REF</b> {html.escape(reference)}</p>"
                              + beam_table_html(res.trace[0], k, res.hypotheses[0][0], tgt_tok.decode))
        per_sentence.append(frame_slider(frames, description="beam width k", value=str(default)))
        short = source if len(source) <= 60 else source[:57] + "..."
        labels.append(f"{len(labels) + 1}. {short}")                          # unique even if two are cut alike
    pick = widgets.Dropdown(options=labels, description="sentence", style={"description_width": "initial"},
                            layout=widgets.Layout(width="auto", max_width="100%"))
    return widgets.VBox([pick, linked_stack(pick, per_sentence)])
