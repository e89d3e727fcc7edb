"""The explorers' switching on both ipywidgets lines: jslinked Stack (8.x) and a Python-switched Box (7.x).

The 7.x path is tested here on any ipywidgets by setting `widgets.HAS_STACK = False`; tools/test_colab.sh
runs this file again under ipywidgets 7 (Colab's), where it is the only path.
"""
import ipywidgets
import numpy as np
from ipywidgets.widgets.widget_link import Link
import pytest

from llmbook import widgets as lw

FRAMES = {"a": "<p>frame a</p>", "b": "<p>frame b</p>", "c": "<p>frame c</p>"}
EXPLORERS = [lw.frame_slider, lw.frame_picker]


def _links():
    """Every live widgets.Link (what jslink makes)."""
    live = getattr(ipywidgets.widgets.widget, "_instances", None)        # 8.x
    live = ipywidgets.Widget.widgets if live is None else live            # 7.x
    return [w for w in live.values() if isinstance(w, Link)]


def linked(selector, stack) -> bool:
    return any(l.source == (selector, "index") and l.target == (stack, "selected_index") for l in _links())


def shown(w):
    """The innermost widget on show: follow Stack.selected_index (8.x) or the one displayed Box child (7.x)."""
    while isinstance(w, ipywidgets.Box) or (lw.HAS_STACK and isinstance(w, ipywidgets.Stack)):
        if lw.HAS_STACK and isinstance(w, ipywidgets.Stack):
            w = w.children[w.selected_index]
            continue
        visible = [c for c in w.children if c.layout.display != "none"]
        assert len(visible) == 1, f"{len(visible)} children of a {type(w).__name__} are on show, want exactly 1"
        w = visible[0]
    return w


@pytest.fixture
def v7(monkeypatch):
    """Simulate ipywidgets 7 (no widgets.Stack): linked_stack takes its Box fallback."""
    monkeypatch.setattr(lw, "HAS_STACK", False)


def test_has_stack_follows_the_installed_ipywidgets():
    assert lw.HAS_STACK == (int(ipywidgets.__version__.split(".")[0]) >= 8)


@pytest.mark.parametrize("make", EXPLORERS)
def test_v7_box_shows_the_chosen_frame_and_follows_the_control(v7, make):
    box = make(FRAMES, description="x", value="b")
    control, frames = box.children
    assert isinstance(frames, ipywidgets.Box) and not type(frames).__name__ == "Stack"
    assert shown(frames).value == FRAMES["b"]
    for label in ("c", "a", "b"):
        control.value = label                         # the kernel-side observer switches the frame
        assert shown(frames).value == FRAMES[label], f"after choosing {label!r} the box shows the wrong frame"


def test_v7_frame_selector_shows_every_combination(v7):
    frames = {(s, h): f"<p>{s}/{h}</p>" for s in ("s1", "s2") for h in ("h1", "h2", "h3")}
    del frames[("s2", "h3")]
    box = lw.frame_selector(frames, ["sentence", "head"], missing="none here")
    pickers = box.children[0].children
    for s in ("s1", "s2"):
        for h in ("h1", "h2", "h3"):
            pickers[0].value, pickers[1].value = s, h
            want = frames.get((s, h), "<p><i>none here</i></p>")
            assert shown(box.children[1]).value == want, f"({s}, {h}) shows the wrong frame"


def test_v7_does_not_share_layouts_between_switched_children(v7):
    shared = ipywidgets.Layout(width="300px")
    kids = [ipywidgets.HTML("x", layout=shared), ipywidgets.HTML("y", layout=shared)]
    pick = ipywidgets.Dropdown(options=["x", "y"])
    lw.linked_stack(pick, kids)
    assert kids[0].layout is not kids[1].layout and shared.display is None
    assert [k.layout.width for k in kids] == ["300px", "300px"]
    assert [k.layout.display for k in kids] == ["", "none"]


@pytest.mark.skipif(not lw.HAS_STACK, reason="widgets.Stack needs ipywidgets 8")
@pytest.mark.parametrize("make", EXPLORERS)
def test_v8_stack_is_jslinked_to_the_control(make):
    box = make(FRAMES, description="x", value="c")
    control, stack = box.children
    assert isinstance(stack, ipywidgets.Stack) and stack.selected_index == 2
    assert shown(stack).value == FRAMES["c"]
    assert linked(control, stack), "the Stack is not jslinked to the control: the static book could not switch"


@pytest.mark.skipif(not lw.HAS_STACK, reason="widgets.Stack needs ipywidgets 8")
def test_v8_frame_selector_links_every_stack():
    frames = {(s, h): f"<p>{s}/{h}</p>" for s in ("s1", "s2") for h in ("h1", "h2")}
    box = lw.frame_selector(frames, ["sentence", "head"])
    pickers, top = box.children[0].children, box.children[1]
    assert isinstance(top, ipywidgets.Stack) and linked(pickers[0], top)
    assert all(isinstance(s, ipywidgets.Stack) and linked(pickers[1], s) for s in top.children)


@pytest.mark.parametrize("stackless", [False, True], ids=["installed", "7.x path"])
def test_linked_stack_errors(monkeypatch, stackless):
    if stackless:
        monkeypatch.setattr(lw, "HAS_STACK", False)
    pick = ipywidgets.Dropdown(options=["a", "b"])
    with pytest.raises(ValueError, match="one child per option"):
        lw.linked_stack(pick, [ipywidgets.HTML("only one")])
    with pytest.raises(TypeError, match="needs a selection control"):
        lw.linked_stack(ipywidgets.HTML("not a control"), [ipywidgets.HTML("a")])


class _Tok:
    """A toy tokenizer: one id per character, pieces are the characters."""

    def encode(self, text):
        return [ord(c) for c in text]

    def pieces(self, ids):
        return [chr(i) for i in ids]

    def decode(self, ids):
        return "".join(chr(i) for i in ids)


def test_transformer_explorer_holds_every_layer_and_head():
    """2 sentences x (2 encoder + 1 decoder + 1 cross layers) x 3 heads frames; inputs reach the callbacks."""
    import numpy as np
    from llmbook.data.seq2seq import BOS_ID
    seen = []

    def decode(src):
        assert src.shape[0] == 1
        return [ord("x"), ord("y")]

    def maps_of(src, tgt_in):
        seen.append(tgt_in.tolist())
        S, T = src.shape[1], tgt_in.shape[1]
        return {"encoder": [np.full((1, 3, S, S), 1 / S)] * 2, "decoder": [np.tril(np.ones((1, 3, T, T)))],
                "cross": [np.full((1, 3, T, S), 1 / S)]}

    box = lw.transformer_explorer(["ab", "cde"], _Tok(), _Tok(), decode, maps_of)
    assert seen == [[[BOS_ID, ord("x"), ord("y")]]] * 2
    dropdowns = box.children[0].children
    assert [d.description for d in dropdowns] == ["sentence", "attention", "layer", "head"]
    assert list(dropdowns[0].options) == ["ab", "cde"] and list(dropdowns[3].options) == ["head 1", "head 2", "head 3"]
    html = shown(box.children[1]).value                                  # the first frame: encoder, layer 1, head 1
    assert "encoder self-attention, layer 1, head 1 — output: xy" in html
    def frame(*index):                                                     # follow the nested stacks by position
        w = box.children[1]
        for i in index:
            w = w.children[i]
        return w.value

    assert "cross-attention, layer 1, head 3" in frame(1, 2, 0, 2) and "<td" in frame(1, 2, 0, 2)
    assert "fewer layers" in frame(0, 1, 1, 0)                             # decoder self-attention has no layer 2


def test_beam_explorer_precomputes_every_sentence_and_width():
    """Real beam searches on a tiny model: one frame per (sentence, width), each the trace of that search."""
    import torch
    import llmbook
    from llmbook.data.seq2seq import BOS_ID, EOS_ID
    from llmbook.torch.decoding import beam_search
    from llmbook.torch.seq2seq import Seq2Seq

    class Tok(_Tok):
        def encode(self, text):
            return [4 + (ord(c) % 5) for c in text]

        def decode(self, ids):
            return " ".join(f"w{i}" for i in ids)

    llmbook.seed(0)
    model = Seq2Seq(src_vocab_size=9, tgt_vocab_size=7, embed_dim=4, hidden_dim=6).eval()
    calls = []

    def search(src, **kw):
        calls.append((src.shape, kw["k"]))
        with torch.no_grad():
            return beam_search(model, src, **kw)

    box = lw.beam_explorer(search, [("abc", "ref one"), ("de" * 40, "ref two")], Tok(), Tok(), widths=(1, 3),
                           default=3, bos_id=BOS_ID, eos_id=EOS_ID, max_len=4)
    assert calls == [((1, 3), 1), ((1, 3), 3), ((1, 80), 1), ((1, 80), 3)]
    pick = box.children[0]
    assert list(pick.options) == ["1. abc", "2. " + ("de" * 40)[:57] + "..."]
    sentence = box.children[1].children[0]                                # the first sentence's slider box
    slider, stack = sentence.children
    assert list(slider.options) == ["1", "3"] and slider.value == "3"
    k3 = stack.children[1].value
    want = beam_search(model, np.array([Tok().encode("abc")]), k=3, bos_id=BOS_ID, eos_id=EOS_ID, max_len=4)
    assert "beam 3" in k3 and "ref one" in k3 and f"{Tok().decode(want.sequences[0])}</p>" in k3
    assert "beam 2" not in stack.children[0].value                       # width 1: one beam column


def test_state_steps_html_shades_the_steps_read_so_far():
    """Chapter 2's hidden-state frames: one column per character, shaded up to the current step only."""
    import numpy as np
    values = np.array([[-1.0, 0.0, 1.0, 0.5], [0.2, -0.2, 0.0, 1.0]])   # (2 units, 4 characters)
    html = lw.state_steps_html(values, "a b\n", ["h[0]", "h[1]"], current=2)
    assert html.count("<tr>") == 3                                        # the characters, then 2 units
    assert "<th class='now'>b</th>" in html and "␣" in html and "⏎" in html
    assert "<td class=c0><td class=c5><td class=c10><td></tr>" in html   # -1, 0, 1 shaded; step 4 not yet
    with pytest.raises(ValueError, match="2 rows and 3 characters"):
        lw.state_steps_html(values, "abc", ["h[0]", "h[1]"], current=0)


def test_gate_text_html_shades_every_character_by_each_gate():
    """Chapter 3's gate viewer: each line of the text three times (f, i, o), one span per character."""
    import numpy as np
    text = "ab\nc"
    gates = {"f": np.full((4, 2), 0.9), "i": np.zeros((4, 2)), "o": np.ones((4, 2))}
    gates["f"][:, 1] = 0.3
    html = lw.gate_text_html(text, gates, unit=1)
    assert "unit 1" in html and "mean forget gate 0.30" in html
    assert html.count("class='f3'") == 4 and html.count("class='i0'") == 4 and html.count("class='o10'") == 4
    assert html.count(">forget</span>") == 2                              # two lines of text
    with pytest.raises(ValueError, match="one row per character"):
        lw.gate_text_html("abc", gates, unit=0)


def test_ladder_table_formats_seeds_and_marks_runs_still_training():
    from llmbook.widgets import ladder_table
    ms = lambda m, s=None: dict(mean=m, std=s, n=1 if s is None else 3)     # noqa: E731
    row = dict(rung="b", framework="torch", what="attention", params=1234720, seeds=[0, 1, 2], best_epochs=[62, 60, 58],
               finished=False, greedy=dict(bleu=ms(24.12, 0.31), repeated_4gram_rate=ms(0.0123)), train_min=ms(291.4))
    row["beam k=4"] = dict(bleu=ms(26.08), chrf=ms(48.66))
    done = dict(row, rung="a", what="fixed", finished=True, seeds=[0], best_epochs=[40])
    out = ladder_table(dict(rows=[done, row]), rungs="b", caption="ladder")
    assert "24.1 ± 0.3" in out and "26.1<" in out and "1,234,720" in out and "PyTorch" in out and "1.2 %" in out
    assert "62, 60, 58 *" in out and "still training" in out and ">a<" not in out
    assert "still training" not in ladder_table(dict(rows=[done, row]), rungs=["a"])
    with pytest.raises(ValueError, match="unknown ladder columns"):
        ladder_table(dict(rows=[row]), columns=["BLEU"])
    with pytest.raises(ValueError, match="no rung"):
        ladder_table(dict(rows=[row]), rungs=["e"])


def test_paired_table_keeps_the_steps_asked_for():
    from llmbook.widgets import paired_table
    tests = [dict(framework="torch", decoding="greedy", base="a", system="b", seed=0, base_bleu=5.46,
                  system_bleu=24.12, p_value=0.000999),
             dict(framework="tf", decoding="beam k=4", base="b", system="d", seed=2, base_bleu=26.08,
                  system_bleu=24.88, p_value=0.0799)]
    both = paired_table(dict(paired=tests))
    assert "a → b" in both and "5.5 → 24.1" in both and "0.001" in both and "TensorFlow" in both
    assert ">seed</th>" in both and ">2</td>" in both
    only = paired_table(dict(paired=tests), [("a", "b")])
    assert "a → b" in only and "b → d" not in only


class _Listed:
    def first(self):
        return 1

    def second(self):
        return 2


def test_show_source_lists_each_object_dedented():
    from llmbook.widgets import show_source
    both = show_source(_Listed.first, _Listed.second).data
    assert both.startswith("def first(self):") and "\ndef second(self):" in both
    assert both.index("def first") < both.index("def second") and "    return 2" in both
    assert show_source(show_source).data.startswith("def show_source(*objs):")
    with pytest.raises(ValueError, match="at least one"):
        show_source()


def test_a_line_plot_series_may_bring_its_own_x():
    """llmbook.plots.line_plot: series on the shared x, and an (x, y) pair of another length on its own."""
    import matplotlib
    matplotlib.use("Agg")
    from llmbook.plots import line_plot
    ax = line_plot([1, 2, 3], {"shared": [3.0, 2.0, 1.0], "own": ([1, 2, 3, 4], [4.0, 3.0, 2.5, 2.0])},
                   "step", "loss")
    lines = {l.get_label(): l for l in ax.get_lines()}
    assert list(lines["shared"].get_xdata()) == [1, 2, 3] and list(lines["own"].get_xdata()) == [1, 2, 3, 4]
    assert list(lines["own"].get_ydata()) == [4.0, 3.0, 2.5, 2.0]
