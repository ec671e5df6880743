"""``plots.path_figure``: a best path drawn as a strip of boxes, without Graphviz; ``shares_figure``."""

from __future__ import annotations

import numpy as np
import pytest

import semirad as sr

pytest.importorskip("matplotlib")

from matplotlib.colors import to_hex  # noqa: E402

from semirad.analysis.groups import depth  # noqa: E402
from semirad.analysis.plots import UNTAGGED_COLOR, component_colors, path_figure, shares_figure  # noqa: E402


def _paths():
    """Two best paths of a small graph with nested components and an untagged tail."""
    x = sr.tensor(np.array([[0.5, -1.0], [2.0, 0.25]]), requires_grad=True, name="x")
    with sr.component("enc"):
        with sr.component("proj"):
            y = x @ np.array([[1.0, -2.0], [0.5, 3.0]])
        with sr.component("act"):
            y = y.tanh()
    loss = (y * y).sum()
    tr = sr.trace(loss, [x])
    return tr.path(x, (0, 1)), tr.path(x, (1, 0))


def _boxes(ax):
    return [p for p in ax.patches if (p.get_gid() or "").startswith("step:")]


def _texts(ax, kind):
    return [t for t in ax.texts if (t.get_gid() or "").startswith(kind + ":")]


def test_one_box_per_vertex_with_op_shape_index_and_component():
    path, _ = _paths()
    fig = path_figure(path)
    (ax,) = fig.axes
    boxes = _boxes(ax)
    assert len(boxes) == len(path.steps)
    assert [b.get_gid() for b in boxes] == [f"step:0:{k}" for k in range(len(path.steps))]
    texts = _texts(ax, "step")
    assert len(texts) == len(path.steps)
    for step, text in zip(path.steps, texts):
        content = text.get_text()
        assert step.op in content
        assert str(list(step.shape)) in content
        assert "[" + ", ".join(str(i) for i in step.index) + "]" in content
        if step.component is not None:
            assert step.component in content
    assert texts[0].get_text().startswith("leaf 'x' [2, 2]")
    # one weight label per edge, with the edge's weight
    weights = _texts(ax, "weight")
    assert len(weights) == len(path.weights)
    for w, text in zip(path.weights, weights):
        assert text.get_text() == f"× {w:.3g}"
    assert f"{path.value:.4g}" in ax.get_title()


def test_colours_follow_the_components():
    path, _ = _paths()
    fig = path_figure(path)
    boxes = _boxes(fig.axes[0])
    colour_of: dict = {}
    for step, box in zip(path.steps, boxes):
        colour = to_hex(box.get_facecolor())
        colour_of.setdefault(step.component, set()).add(colour)
    assert all(len(c) == 1 for c in colour_of.values())  # one colour per component
    distinct = [next(iter(c)) for c in colour_of.values()]
    assert len(set(distinct)) == len(distinct)  # different components, different colours
    assert colour_of[None] == {UNTAGGED_COLOR}
    assert {"enc/proj", "enc/act", None} <= set(colour_of)
    # the legend names every component once
    legend = fig.legends[0]
    assert sorted(t.get_text() for t in legend.get_texts()) == sorted(
        "(untagged)" if c is None else c for c in colour_of
    )


def test_several_paths_side_by_side_share_the_colours(tmp_path):
    first, second = _paths()
    fig = path_figure({"first": first, "second": second}, tmp_path / "paths.png", title="two paths")
    assert (tmp_path / "paths.png").stat().st_size > 0
    assert len(fig.axes) == 2
    assert fig.axes[0].get_title().startswith("first") and fig.axes[1].get_title().startswith("second")
    assert fig._suptitle.get_text() == "two paths"
    colours = {}
    for column, (ax, path) in enumerate(zip(fig.axes, (first, second))):
        boxes = _boxes(ax)
        assert len(boxes) == len(path.steps)
        assert all(b.get_gid().startswith(f"step:{column}:") for b in boxes)
        for step, box in zip(path.steps, boxes):
            colours.setdefault(step.component, set()).add(to_hex(box.get_facecolor()))
    assert all(len(c) == 1 for c in colours.values())
    # a list works too, and draws the same number of boxes
    fig = path_figure([first, second, first])
    assert [len(_boxes(ax)) for ax in fig.axes] == [len(first.steps), len(second.steps), len(first.steps)]


def test_group_colours_by_a_grouping_and_seed_is_shown():
    path, _ = _paths()
    fig = path_figure(path, group=depth(1))
    colours = {step.component: to_hex(box.get_facecolor()) for step, box in zip(path.steps, _boxes(fig.axes[0]))}
    assert colours["enc/proj"] == colours["enc/act"]  # both in "enc"
    assert colours[None] == UNTAGGED_COLOR
    assert sorted(t.get_text() for t in fig.legends[0].get_texts()) == ["(untagged)", "enc"]

    x = sr.tensor([1.0, -2.0], requires_grad=True, name="x")
    seeded = sr.trace(x * 3.0, [x], seed=np.array([5.0, 7.0])).path(x, 1)
    fig = path_figure(seeded)
    assert any(t.get_text() == "seed × 7" for t in fig.axes[0].texts)


def test_no_path_is_an_error_and_colours_are_stable():
    with pytest.raises(ValueError):
        path_figure([])
    colours = component_colors(["a", None, "b", "a", "c"])
    assert list(colours) == ["a", None, "b", "c"]
    assert colours[None] == UNTAGGED_COLOR and len(set(colours.values())) == 4


def test_shares_figure_one_panel_per_group_one_bar_per_method_and_label():
    columns = {
        "trace": {"layer 0": {"query": 0.1, "key": 0.2, "residual": 0.7}, "layer 1": {"key": 0.5, "residual": 0.5}},
        "backprop": {"layer 0": {"query": 0.3, "key": 0.3, "residual": 0.4}},
    }
    errors = {"trace": {"layer 0": {"key": 0.05}}}
    fig = shares_figure(columns, errors=errors, title="shares")
    assert [ax.get_title() for ax in fig.axes] == ["layer 0", "layer 1"]
    ax0, ax1 = fig.axes
    assert [t.get_text() for t in ax0.get_yticklabels()] == ["query", "key", "residual"]
    widths = sorted(round(p.get_width(), 6) for p in ax0.patches)
    assert len(ax0.patches) == 2 * 3 and widths == sorted([10.0, 20.0, 70.0, 30.0, 30.0, 40.0])
    # a method without the group draws zero-length bars there
    assert sorted(round(p.get_width(), 6) for p in ax1.patches) == [0.0, 0.0, 0.0, 0.0, 50.0, 50.0]
    with pytest.raises(ValueError):
        shares_figure({})
