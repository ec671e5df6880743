"""sr.compile: a replayed graph gives the eager graph's results bit for bit (every model, every
semiring, paths, training), refuses inputs of other shapes, and keeps older results unchanged."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from same_bits import arrays_of as _arrays
from same_bits import assert_same

import semirad as sr
from semirad.compile import CompileError
from semirad.testing import builtin_semirings

SEMIRINGS = builtin_semirings()


#: semirings whose ⊕ is a floating-point sum: merged subexpressions associate it differently
#: (equal up to rounding); the others (max, counts, reachability, best paths) are exact
_SUMS = ("SumProduct", "SumAbs", "Entropy", "ComponentFlow")


def assert_close(a, b):
    for x, y in zip(_arrays(a), _arrays(b)):
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_allclose(x, y, rtol=1e-9, atol=1e-12 * max(1.0, float(np.max(np.abs(x), initial=0))))


def _rng(seed=0):
    return np.random.default_rng(seed)


def mlp():
    sr.manual_seed(0)
    nn = sr.nn
    model = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))
    return model, (lambda x: (model(x) ** 2).mean()), [(3, 4)]


def cnn():
    sr.manual_seed(0)
    nn = sr.nn
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(3 * 3 * 3, 2))
    return model, (lambda x: model(x).tanh().sum()), [(2, 1, 8, 8)]


def lstm():
    sr.manual_seed(0)
    model = sr.nn.LSTM(3, 4)

    def fn(x):
        out, (h, c) = model(x)
        return (out * out).sum() + h.sum()

    return model, fn, [(5, 2, 3)]


def transformer():
    sr.manual_seed(0)
    model = sr.nn.TransformerEncoderLayer(d_model=8, nhead=2, dim_feedforward=16, dropout=0.0, batch_first=True)
    return model, (lambda x: (model(x) ** 2).mean()), [(2, 3, 8)]


MODELS = {"mlp": mlp, "cnn": cnn, "lstm": lstm, "transformer": transformer}


def _inputs(shapes, seed):
    rng = _rng(seed)
    return [rng.standard_normal(s) for s in shapes]


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("unique", [True, False])
def test_replay_equals_eager_in_every_semiring(name, unique):
    model, fn, shapes = MODELS[name]()
    g = sr.compile(fn, *_inputs(shapes, 0), unique=unique)
    assert unique or g.stats()["ops_merged"] == 0
    params = list(model.parameters())
    for seed in (1, 2):  # two calls: the second replays over the first's nodes (or into another instance)
        arrays = _inputs(shapes, seed)
        xe = [sr.tensor(a, requires_grad=True, name="x") for a in arrays]
        xc = [sr.tensor(a, requires_grad=True, name="x") for a in arrays]
        ye, yc = fn(*xe), g(*xc)
        assert_same(ye.data, yc.data)
        # bit for bit; where identical subexpressions were merged, ⊕-sums may associate differently
        sums = assert_close if g.stats()["ops_merged"] else assert_same
        for a, b in zip(sr.grad(ye, params + xe), sr.grad(yc, params + xc)):
            sums(a, b)
        for S in SEMIRINGS:
            re, rc = sr.backward(ye, params + xe, semiring=S), sr.backward(yc, params + xc, semiring=S)
            for te, tc in zip(params + xe, params + xc):
                (sums if type(S).__name__ in _SUMS else assert_same)(re[te], rc[tc])
        te, tc = sr.trace(ye, params + xe), sr.trace(yc, params + xc)
        for p in params[:2]:
            index = np.unravel_index(int(np.argmax(np.abs(te[p]))), p.shape)
            pe, pc = te.path(p, index), tc.path(p, index)
            assert pe.value == pc.value
            steps = [[(s.op, s.name, s.shape, s.index) for s in path.steps] for path in (pe, pc)]
            assert steps[0] == steps[1]
        del ye, yc, re, rc, te, tc


def test_stats_report_merged_and_dropped_nodes():
    def fn(x):
        unused = x.exp()  # noqa: F841 (dropped: the output does not depend on it)
        a, b = x + 1.0, x + 1.0  # merged
        return (a * b + x * (x + 1.0)).sum()

    g = sr.compile(fn, np.ones(3))
    s = g.stats()
    assert s["ops_traced"] == 8 and s["ops_merged"] == 2 and s["ops_dropped"] == 1
    assert s["nodes_before"] == 8 and s["nodes_after"] == 5 and s["ops"] == 5
    x = sr.tensor([1.0, 2.0, -3.0], requires_grad=True)
    np.testing.assert_allclose(sr.grad(g(x), [x])[0], sr.grad(fn(x), [x])[0])
    assert sr.compile(fn, np.ones(3), unique=False).stats()["ops_merged"] == 0


def test_other_shape_or_dtype_raises_naming_the_input():
    g = sr.compile(lambda x, mask: (x * mask).sum(), np.zeros((2, 3)), np.ones(3))
    with pytest.raises(ValueError, match=r"input 1 \('mask'\) has shape \(4,\).*compiled for shape \(3,\)"):
        g(np.zeros((2, 3)), np.ones(4))
    with pytest.raises(ValueError, match=r"input 0 \('x'\).*dtype float32.*dtype float64"):
        g(np.zeros((2, 3), np.float32), np.ones(3))
    with pytest.raises(TypeError, match="expected 2 inputs, got 1"):
        g(np.zeros((2, 3)))


def test_training_loop_equals_eager_training():
    def run(compiled: bool):
        model, fn, shapes = mlp()
        opt = sr.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        g = sr.compile(fn, np.zeros(shapes[0])) if compiled else fn
        losses = []
        for step in range(5):
            x = _inputs(shapes, 10 + step)[0]
            opt.zero_grad()
            loss = g(x) if compiled else fn(sr.tensor(x))
            loss.backward()
            opt.step()
            losses.append(loss.item())
        return losses, [p.data.copy() for p in model.parameters()]

    (le, pe), (lc, pc) = run(False), run(True)
    assert le == lc
    for a, b in zip(pe, pc):
        assert_same(a, b)


def test_an_older_result_does_not_change():
    w = sr.tensor([1.0, 2.0], requires_grad=True, name="w")
    g = sr.compile(lambda x: (x * w).tanh().sum(), np.zeros(2))
    y1 = g(np.array([0.1, 0.2]))
    tr1 = sr.trace(y1, [w])
    before = (y1.item(), tr1[w].copy(), tr1.path(w, 1).value)
    y2 = g(np.array([3.0, -1.0]))  # y1 is alive: replays into another instance
    assert y2._node is not y1._node
    assert (y1.item(), tr1.path(w, 1).value) == (before[0], before[2])
    assert_same(tr1[w], before[1])
    assert_same(sr.grad(y1, [w])[0], sr.grad((sr.tensor([0.1, 0.2]) * w).tanh().sum(), [w])[0])
    del y1
    y3 = g(np.array([0.5, 0.5]))  # y1 is gone, but tr1 still holds its graph: not reused
    assert (tr1.path(w, 1).value, tr1[w].tolist()) == (before[2], before[1].tolist())
    del tr1, y2
    y4 = g(np.array([0.5, 0.5]))
    assert g.stats()["instances"] == 3
    assert y4._node is not y3._node
    for _ in range(10):  # a loop that keeps one output at a time alternates between two instances
        y4 = g(np.array([0.5, 0.5]))
        sr.grad(y4, [w])
    assert g.stats()["instances"] == 3


def test_backward_twice_on_one_replay_raises_and_the_next_replay_is_fresh():
    w = sr.tensor([1.0, 2.0], requires_grad=True)
    g = sr.compile(lambda x: (x * w).sum(), np.zeros(2))
    y = g(np.ones(2))
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph"):
        y.backward()
    del y
    for _ in range(3):
        y = g(np.ones(2))
        y.backward()
    assert w.grad.tolist() == [4.0, 4.0]


def test_replays_from_threads_are_independent():
    w = sr.tensor(_rng(3).standard_normal((4, 4)), requires_grad=True)

    def fn(x):
        return ((x @ w).tanh() @ w).sum()

    g = sr.compile(fn, np.zeros((2, 4)))
    errors = []

    def work(seed):
        try:
            for i in range(30):
                x = _rng(seed * 100 + i).standard_normal((2, 4))
                y = g(x)
                expect = sr.grad(fn(sr.tensor(x)), [w])[0]
                assert_same(sr.grad(y, [w])[0], expect)
        except BaseException as error:  # noqa: BLE001 (reported below)
            errors.append(error)

    threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]


def test_integer_inputs_and_index_parameters_follow_the_call():
    sr.manual_seed(0)
    emb = sr.nn.Embedding(10, 3)
    g = sr.compile(lambda ids: (emb(ids) ** 2).sum(), np.array([1, 2, 3]))
    for ids in ([4, 5, 6], [9, 9, 0]):
        ids = np.array(ids)
        ye, yc = (emb(sr.tensor(ids)) ** 2).sum(), g(ids)
        assert_same(ye.data, yc.data)
        assert_same(sr.grad(ye, [emb.weight])[0], sr.grad(yc, [emb.weight])[0])


def test_a_detached_value_stays_a_constant():
    w = sr.tensor([1.0, 2.0], requires_grad=True)

    def fn(x):
        h = x * w
        return (h * h.detach()).sum()

    g = sr.compile(fn, np.zeros(2))
    x = np.array([0.3, -0.7])
    assert_same(sr.grad(g(x), [w])[0], sr.grad(fn(sr.tensor(x)), [w])[0])


def test_tuple_outputs_and_no_grad():
    w = sr.tensor([1.0, 2.0], requires_grad=True)
    g = sr.compile(lambda x: (x * w, (x * w).sum()), np.zeros(2))
    a, b = g(np.ones(2))
    assert a.tolist() == [1.0, 2.0] and b.item() == 3.0 and a._node is b._node.parents[0]
    with sr.no_grad():
        a, b = g(np.ones(2))
    assert not b.requires_grad and b.item() == 3.0


def test_a_result_not_made_by_ops_is_refused():
    w = sr.tensor([1.0], requires_grad=True)
    with pytest.raises(CompileError, match="not computed by the ops"):
        sr.compile(lambda x: w, np.zeros(1))
    with pytest.raises(CompileError, match="must return a tensor"):
        sr.compile(lambda x: 3.0, np.zeros(1))


def test_data_dependent_control_flow_is_frozen():
    """docs/compile.md: the branch taken while compiling is the one every replay takes."""

    def fn(x):
        return x.sum() * 2.0 if float(x.sum()) > 0 else x.sum() * -1.0

    g = sr.compile(fn, np.ones(2))
    assert g(-np.ones(2)).item() == -4.0  # eager: 2.0
    assert fn(sr.tensor(-np.ones(2))).item() == 2.0


def test_a_parameter_whose_leaf_is_replaced_is_followed():
    w = sr.tensor([1.0, 2.0], requires_grad=True, name="w")
    g = sr.compile(lambda x: (x * w).sum(), np.zeros(2))
    g(np.ones(2))
    w.requires_grad_(False).requires_grad_(True)  # a new leaf, younger than the graph's nodes
    y = g(np.array([3.0, 4.0]))
    assert sr.grad(y, [w])[0].tolist() == [3.0, 4.0]
    assert sr.trace(y, [w]).path(w, 1).value == 4.0


@pytest.mark.parametrize("name", ["lstm", "transformer"])
def test_analysis_on_a_replay_equals_eager(name):
    from semirad.analysis import backprop_importance, component_importance

    model, fn, shapes = MODELS[name]()
    g = sr.compile(fn, *_inputs(shapes, 0), unique=False)
    arrays = _inputs(shapes, 5)
    ye, yc = fn(*[sr.tensor(a) for a in arrays]), g(*arrays)
    params = list(model.parameters())
    te, tc = sr.trace(ye, params), sr.trace(yc, params)
    assert component_importance(te, model).to_dict() == component_importance(tc, model).to_dict()
    assert backprop_importance(ye, model).to_dict() == backprop_importance(yc, model).to_dict()
