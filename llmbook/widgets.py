"""Explorable widgets that also work in the static HTML book.

Python callbacks need a kernel, which the HTML book does not have. So each explorer precomputes
its frames (HTML snippets) and shows them in a `widgets.Stack`, whose visible child is linked to a
slider with `widgets.jslink`: the link runs in the browser, so the control works live in Jupyter
or Colab and in the book, from the widget state saved in the notebook.
"""
from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

import ipywidgets as widgets


def frame_slider(frames: Mapping[str, str], description: str, value: str | None = None) -> widgets.VBox:
    """A slider over the labels of `frames` that shows the matching precomputed HTML frame."""
    if not frames:
        raise ValueError("frame_slider needs at least one frame")
    labels = list(frames)
    slider = widgets.SelectionSlider(options=labels, value=value if value is not None else labels[0],
                                     description=description, continuous_update=True,
                                     style={"description_width": "initial"},
                                     layout=widgets.Layout(width="420px"))
    stack = widgets.Stack([widgets.HTML(frames[k]) for k in labels], selected_index=labels.index(slider.value))
    widgets.jslink((slider, "index"), (stack, "selected_index"))
    return widgets.VBox([slider, stack])


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
