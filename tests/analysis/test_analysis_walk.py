"""``Trace.walk`` (the public path walker) against ``Trace.path``; the demo's walker on top of it;
where the split modules' names are importable from."""

from __future__ import annotations

import numpy as np
import pytest

import semirad as sr
from semirad.analysis.groups import label
from semirad.semirings import KBest, LogMaxAbs


def graph(seed=0):
    rng = np.random.default_rng(seed)
    w = sr.tensor(rng.standard_normal((3, 4)), requires_grad=True, name="w")
    x = sr.tensor(rng.standard_normal((2, 3)))
    with sr.component("layer"):
        h = (x @ w).tanh()
    with sr.component("loss"):
        loss = (h * h).sum() + (w * 0.0).sum()  # parallel edges (h * h), and partials that are exactly 0
    return loss, w, h


RESULTS = {
    "trace": lambda loss, inputs: sr.trace(loss, inputs),
    "k-best": lambda loss, inputs: sr.backward(loss, inputs, semiring=KBest(3)),
    "log-max-abs": lambda loss, inputs: sr.backward(loss, inputs, semiring=LogMaxAbs()),
}


@pytest.mark.parametrize("name", list(RESULTS))
def test_walk_visits_the_vertices_of_every_path(name):
    loss, w, h = graph()
    result = RESULTS[name](loss, [w, h])
    walked_some = False
    for tensor in (w, h):
        for index in np.ndindex(tensor.shape):
            for rank in range(getattr(result.semiring, "k", 1)):
                vertices = list(result.walk(tensor, index, rank))
                try:
                    path = result.path(tensor, index, rank) if rank else result.path(tensor, index)
                except ValueError:  # no path of that rank: nothing to walk
                    assert vertices == []
                    continue
                walked_some = True
                assert [node.seq for node, _, _ in vertices] == path.node_seqs
                assert [node.shape for node, _, _ in vertices] == [step.shape for step in path.steps]
                positions = [int(np.ravel_multi_index(s.index, s.shape)) if s.shape else 0 for s in path.steps]
                assert [flat for _, flat, _ in vertices] == positions
                assert vertices[0][2] == rank and vertices[-1][0] is result.sweep.root
    assert walked_some


def test_walk_starts_anywhere_and_checks_its_arguments():
    loss, w, h = graph()
    tr = sr.trace(loss, [w])
    node = tr.node_of(w)
    assert list(tr.walk(node, (1, 2))) == list(tr.walk(w, (1, 2)))
    root = list(tr.walk(tr.sweep.root, ()))
    assert root == [(tr.sweep.root, 0, 0)]  # the output element: a path of no edges
    with pytest.raises(IndexError):
        tr.walk(w, (0, 0), rank=1)
    with pytest.raises(IndexError):
        tr.walk(w, (3, 0))
    with pytest.raises(KeyError):
        tr.walk(sr.tensor([1.0], requires_grad=True), 0)


def test_walk_components_is_the_components_of_the_path():
    from semirad.analysis.demo import walk_components

    loss, w, _ = graph(seed=2)
    tr = sr.backward(loss, [w], semiring=KBest(2))
    node = tr.node_of(w)
    for flat in range(w.numel()):
        index = np.unravel_index(flat, w.shape)
        for rank, path in enumerate(tr.paths(w, index)):
            assert walk_components(tr, node, flat, rank) == [label(step.component) for step in path.steps[1:]]
    log_tr = sr.backward(loss, [w], semiring=LogMaxAbs())
    assert walk_components(log_tr, log_tr.node_of(w), 0) is not None


def test_split_modules_keep_their_names_importable():
    from semirad import analysis
    from semirad.analysis import demo, importance, tables
    from semirad.analysis.demo import cli, config, report, run, task
    from semirad.semirings.component_flow import ComponentFlow

    assert analysis.ComponentFlow is importance.ComponentFlow is ComponentFlow
    assert analysis.side_by_side is importance.side_by_side is tables.side_by_side
    assert demo.run_demo is run.run_demo and demo.DemoConfig is config.DemoConfig
    assert (demo.dyck_batch, demo.BracketLM, demo.lm_loss, demo.closing_accuracy) == (
        task.dyck_batch,
        task.BracketLM,
        task.lm_loss,
        task.closing_accuracy,
    )
    assert demo.add_arguments is cli.add_arguments and demo.config_from_args is cli.config_from_args
    assert callable(report.write_report)
    assert demo.__doc__.split("\n\n")[0].startswith("``semirad demo``")  # what `semirad demo --help` shows


def test_a_trace_whose_backpointers_are_not_vertex_ids_is_refused():
    from semirad.analysis import component_importance
    from semirad.paths import Trace

    loss, w, _ = graph()
    tr = sr.trace(loss, [w])

    class PairedTrace(Trace):  # keeps two ids per element: not a layout component_importance can read
        pass

    odd = PairedTrace(tr.sweep)
    odd.sweep.kept = {node: np.stack([ids, ids]) for node, ids in tr.sweep.kept.items()}
    with pytest.raises(TypeError, match="backpointers of shape"):
        component_importance(odd, [w])
