"""The reverse sweep: deep chains, reuse, diamonds, freeing, retain_graph, no_grad, ties, errors."""

import tracemalloc

import numpy as np
import pytest

import semirad as sr
from semirad.ops.core import Op, apply

MaxAbs = sr.semirings.MaxAbsProduct


def test_chain_of_100000_ops_runs_without_recursion():
    x = sr.tensor([1.0, -2.0], requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y * 1.0
    loss = y.sum()
    (g,) = sr.grad(loss, [x])
    np.testing.assert_array_equal(g, [1.0, 1.0])
    tr = sr.trace(loss, [x])
    np.testing.assert_array_equal(tr[x], [1.0, 1.0])
    assert len(tr.path(x, 1).steps) == 100_002


def test_tensor_used_twice_gives_parallel_edges():
    x = sr.tensor([3.0, -0.5], requires_grad=True)
    loss = (x * x).sum()
    np.testing.assert_allclose(sr.grad(loss, [x])[0], 2 * x.data)  # both edges add up
    np.testing.assert_allclose(sr.trace(loss, [x])[x], x.data)  # the best single edge carries x
    path = sr.trace(loss, [x]).path(x, 0)
    assert path.weights == [3.0, 1.0]


def test_diamond_sums_both_branches_and_trace_takes_the_stronger():
    x = sr.tensor([0.7], requires_grad=True)
    a = x * 2.0
    b = x * 3.0
    loss = (a * b).sum()  # 6 x^2
    np.testing.assert_allclose(sr.grad(loss, [x])[0], 12 * x.data)
    # paths: x -2-> a -(b=2.1)-> loss = 4.2 ; x -3-> b -(a=1.4)-> loss = 4.2 : a tie, first created (a) wins
    tr = sr.trace(loss, [x])
    np.testing.assert_allclose(tr[x], [4.2])
    assert tr.path(x, 0).weights[0] == 2.0


def test_inputs_may_be_intermediate_tensors():
    x = sr.tensor([1.0, 2.0], requires_grad=True)
    h = x * 3.0
    loss = (h.tanh()).sum()
    g_h, g_x = sr.grad(loss, [h, x])
    np.testing.assert_allclose(g_h, 1 - np.tanh(h.data) ** 2)
    np.testing.assert_allclose(g_x, 3 * g_h)
    tr = sr.trace(loss, [h])
    assert tr.path(h, 1).steps[0].op == "mul"


def test_backward_accumulates_and_refuses_a_second_pass_without_retain_graph():
    w = sr.tensor([1.0, 2.0], requires_grad=True)
    loss = (w * w).sum()
    loss.backward(retain_graph=True)
    loss.backward()
    np.testing.assert_allclose(w.grad, 4 * w.data)
    with pytest.raises(RuntimeError, match="retain_graph"):
        loss.backward()
    # the functional forms do not mutate and still work on the graph
    np.testing.assert_allclose(sr.grad(loss, [w])[0], 2 * w.data)


def test_no_grad_records_nothing():
    w = sr.tensor([1.0], requires_grad=True)
    with sr.no_grad():
        y = w * 2.0
    assert not y.requires_grad and y.is_leaf
    with pytest.raises(RuntimeError, match="not part of a recorded graph"):
        y.backward()
    assert (w * 2.0).requires_grad  # recording resumes after the block


def test_gradient_buffers_are_freed_as_the_sweep_goes():
    n, depth = 250_000, 40  # 2 MB per buffer
    x = sr.tensor(np.ones(n), requires_grad=True)
    y = x
    for _ in range(depth):
        y = y.tanh()
    loss = y.sum()
    tracemalloc.start()
    sr.grad(loss, [x])
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 8 * n * 8  # a handful of live buffers, not one per node (40 would be 80 MB)


def test_dtype_is_kept():
    w = sr.tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    loss = (w * 2.0).sum()
    assert loss.dtype == np.float32
    assert sr.grad(loss, [w])[0].dtype == np.float32
    assert sr.trace(loss, [w])[w].dtype == np.float32


def test_non_scalar_output_needs_a_seed_of_its_shape():
    w = sr.tensor(np.ones((2, 3)), requires_grad=True)
    y = w * 2.0
    with pytest.raises(ValueError, match=r"non-scalar output of shape \(2, 3\)"):
        sr.grad(y, [w])
    with pytest.raises(ValueError, match=r"\(3,\).*\(2, 3\)"):
        sr.grad(y, [w], seed=np.ones(3))
    seed = np.arange(6.0).reshape(2, 3)
    np.testing.assert_allclose(sr.grad(y, [w], seed=seed)[0], 2 * seed)


def test_tensor_not_in_the_graph_is_a_clear_error():
    w = sr.tensor([1.0], requires_grad=True, name="w")
    other = sr.tensor([1.0], requires_grad=True, name="other")
    constant = sr.tensor([1.0], name="c")
    loss = (w * 2.0).sum()
    with pytest.raises(ValueError, match="'other'.*does not depend on it"):
        sr.trace(loss, [w, other])
    with pytest.raises(ValueError, match="does not require grad"):
        sr.grad(loss, [constant])
    with pytest.raises(KeyError, match="not an input"):
        sr.trace(loss, [w])[other]


def test_non_finite_values_reaching_a_trace_name_the_place():
    x = sr.tensor([1.0, 0.0], requires_grad=True, name="x")
    loss = sr.log(x).sum()  # edge weight 1/x is inf at x[1]
    with pytest.raises(FloatingPointError, match=r"element \(1,\) of leaf 'x' of shape \(2,\)"):
        sr.trace(loss, [x])
    h = sr.sqrt(x - 2.0)  # NaN forward values
    h.name = "h"
    with pytest.raises(FloatingPointError, match=r"element \(0,\) of sub of shape \(2,\)"):
        sr.trace((h * 1.0).sum(), [x])


def test_op_without_a_rule_is_a_clear_error():
    class Square(Op):
        name = "square_without_rule"

        def forward(self, ctx, x):
            return x * x

    w = sr.tensor([1.0], requires_grad=True)
    loss = apply(Square(), w).sum()
    with pytest.raises(NotImplementedError, match="square_without_rule"):
        sr.grad(loss, [w])


def test_shape_errors_name_the_op_and_both_shapes():
    a = sr.tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(sr.OpError, match=r"add.*\(2, 3\).*\(4,\)"):
        a + sr.tensor(np.ones(4))
    with pytest.raises(sr.OpError, match=r"matmul.*\(2, 3\).*\(2, 3\)"):
        a @ a
    with pytest.raises(sr.OpError, match=r"reshape.*\(2, 3\)"):
        a.reshape(4)
    with pytest.raises(sr.OpError, match=r"sum: (axis|dimension) 2 .*\(2, 3\)"):
        a.sum(axis=2)
    with pytest.raises(sr.OpError, match=r"getitem.*\(2, 3\)"):
        a[5]


def test_only_floating_tensors_require_grad():
    with pytest.raises(TypeError, match="int64"):
        sr.tensor([1, 2], requires_grad=True)


# -- ties in MaxAbsProduct: the successor vertex created first (earliest op, then lowest flat index)


@pytest.mark.parametrize("positive_first", [True, False])
def test_tie_between_consumers_goes_to_the_op_created_first(positive_first):
    x = sr.tensor([1.5], requires_grad=True)
    if positive_first:
        a, b = x * 2.0, x * -2.0
    else:
        b, a = x * -2.0, x * 2.0
    loss = (a + b).sum()
    expected = 2.0 if positive_first else -2.0
    tr = sr.trace(loss, [x])
    assert tr[x][0] == expected
    assert tr.path(x, 0).weights[0] == expected


def test_tie_within_a_contraction_goes_to_the_lowest_index():
    X = sr.tensor([[2.0]], requires_grad=True)
    W = sr.tensor([[1.0, -1.0, 1.0]])
    loss = (X @ W).abs().sum()  # three equal-magnitude paths X[0,0] -> out[0, i]
    tr = sr.trace(loss, [X])
    assert tr.path(X, (0, 0)).steps[1].index == (0, 0)


def test_tie_in_a_broadcast_reduction_goes_to_the_lowest_index():
    b = sr.tensor([0.5, -0.5], requires_grad=True)
    x = sr.tensor(np.ones((3, 2)))
    loss = (x + b).sum()
    tr = sr.trace(loss, [b])
    assert [tr.path(b, j).steps[1].index for j in range(2)] == [(0, 0), (0, 1)]


def test_tie_in_a_repeated_gather_goes_to_the_lowest_index():
    x = sr.tensor([1.0, 2.0], requires_grad=True)
    picked = x[[1, 0, 1]]
    loss = (picked * sr.tensor([3.0, 1.0, -3.0])).sum()  # x[1] reaches picked[0] (+3) and picked[2] (-3)
    tr = sr.trace(loss, [x])
    assert tr[x][1] == 3.0
    assert tr.path(x, 1).steps[1].index == (0,)
    np.testing.assert_allclose(sr.grad(loss, [x])[0], [1.0, 0.0])


def test_a_zero_weight_edge_is_still_a_path():
    x = sr.tensor([-1.0, 2.0], requires_grad=True)
    tr = sr.trace(x.relu().sum(), [x])
    np.testing.assert_array_equal(tr[x], [0.0, 1.0])
    assert tr.path(x, 0).weights == [0.0, 1.0]


def test_path_value_equals_the_trace_and_ends_at_the_output():
    rng = np.random.default_rng(1)
    x = sr.tensor(rng.standard_normal((5, 4)))
    W = sr.tensor(rng.standard_normal((4, 3)), requires_grad=True, name="W")
    b = sr.tensor(np.zeros(3), requires_grad=True, name="b")
    loss = ((x @ W + b).tanh() ** 2).mean()
    tr = sr.trace(loss, [W, b])
    for index in np.ndindex(W.shape):
        path = tr.path(W, index)
        assert path.steps[0] == sr.Step("leaf", "W", (4, 3), index)
        assert path.steps[-1].op == "mean" and path.steps[-1].shape == ()
        assert len(path.weights) == len(path.steps) - 1
        np.testing.assert_allclose(path.value, tr[W][index], rtol=1e-12)
    assert "leaf 'W'" in str(tr.path(W, (1, 2)))


def test_user_semiring_needs_every_primitive():
    class Incomplete(sr.semirings.Semiring):
        name = "incomplete"

    w = sr.tensor([1.0], requires_grad=True)
    with pytest.raises(NotImplementedError, match="'incomplete' does not implement seed"):
        sr.backward((w * 2.0).sum(), [w], semiring=Incomplete())


def test_clip_bounds_that_broadcast_the_input_record_a_broadcast():
    x = sr.tensor(np.linspace(-1, 1, 4), requires_grad=True)
    lo = np.array([[-2.0], [0.0]])  # (2, 1): every x element feeds two outputs
    y = sr.clip(x, lo, 0.5)
    assert y.shape == (2, 4)
    inside = ((x.data >= lo) & (x.data <= 0.5)).astype(float)
    np.testing.assert_allclose(sr.grad(y.sum(), [x])[0], inside.sum(axis=0))
    np.testing.assert_allclose(sr.trace(y.sum(), [x])[x], inside.max(axis=0))


def test_components_tag_nodes_and_path_steps():
    w = sr.tensor([1.0, 2.0], requires_grad=True, name="w")
    with sr.component("encoder"):
        h = w * 3.0
        with sr.component("layer1"):
            h = h.tanh()
    loss = h.sum()
    steps = sr.trace(loss, [w]).path(w, 0).steps
    assert [s.component for s in steps] == [None, "encoder", "encoder/layer1", None]
    assert "in encoder/layer1" in str(sr.trace(loss, [w]).path(w, 0))
    with pytest.raises(ValueError, match="'a/b'"):
        sr.component("a/b")
