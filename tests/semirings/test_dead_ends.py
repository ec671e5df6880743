"""A dead end ``(0, NO_PATH)`` ties with a real path of value 0 and must lose it, in the contractions
and sums too, where first-occurrence argmax takes whichever comes first (found by
test_bruteforce's random graphs: ``(x0 @ x1)[[1]]`` with a zero in ``x0``'s second row)."""

import numpy as np
import pytest

import semirad as sr
from semirad import backend
from semirad.semirings.max_abs import dispatch as max_abs_dispatch
from semirad.semirings.max_abs import reference as max_abs_reference


@pytest.mark.parametrize("vector", [True, False])
def test_a_zero_valued_path_beats_an_earlier_dead_end_in_a_contraction(impl, vector):
    W = sr.tensor(np.array([[-1.5, -1.5, -1.5], [0.0, -1.5, -1.5]]), requires_grad=True, name="W")
    x = sr.tensor(np.full(3, -1.5) if vector else np.full((3, 2), -1.5), requires_grad=True, name="x")
    tr = sr.trace((W @ x)[[1]].sum(), [W, x])  # row 0 of W @ x is a dead end
    _, ids = tr.raw(x)
    assert (ids != backend.NO_PATH).all()
    index = (0,) if vector else (0, 1)
    path = tr.path(x, index)  # through W[1, 0] = 0: a real path of value 0
    assert path.value == 0.0 and float(tr[x][index]) == 0.0
    assert path.steps[1].index[0] == 1  # it runs through row 1 of W @ x, the one kept


def test_a_zero_valued_path_beats_an_earlier_dead_end_in_a_sum(impl):
    b = sr.tensor(np.array([1.0]), requires_grad=True, name="b")
    z = sr.tensor(np.array([2.0, 3.0])) + b  # b's gradient sums over z's two elements
    tr = sr.trace((z[[1]] * 0.0).sum(), [b])  # z[0] is a dead end, z[1] a real path of value 0
    assert tr.raw(b)[1][0] != backend.NO_PATH
    assert tr.path(b, (0,)).value == 0.0


def test_a_dead_end_still_wins_where_there_is_nothing_else():
    x = sr.tensor(np.array([1.0, 2.0]), requires_grad=True, name="x")
    y = sr.tensor(np.array([3.0]), requires_grad=True, name="y")
    tr = sr.trace((x * 2.0)[[1]].sum() + 0.0 * y.sum(), [x, y])
    assert tr.raw(x)[1][0] == backend.NO_PATH and tr.raw(x)[1][1] != backend.NO_PATH


@pytest.mark.parametrize("rows", [1, 3])  # the vector-matrix kernel, the small-matrix one
def test_first_real_path_and_the_contraction_rule_directly(impl, rows):
    values = np.array([[0.0, 0.0, 5.0]] * rows)
    ids = np.array([[backend.NO_PATH, 4, 9]] * rows)
    weights = np.array([[1.0, 7.0], [0.0, 7.0], [0.0, 0.0]])
    out_v, out_i = max_abs_dispatch.matmul(np, values, ids, weights)
    # column 0: products 0, 0, 0 (j = 0 a dead end, j = 1 the first real path); column 1: 0, 0, 0 too
    assert out_i.tolist() == [[4, 4]] * rows and out_v.tolist() == [[0.0, 0.0]] * rows
    first, found = max_abs_reference.first_real_path(np, np.array([[backend.NO_PATH, backend.NO_PATH], [3, 4]]))
    assert first.tolist() == [0, 0] and found.tolist() == [False, True]


def test_a_bias_broadcast_over_an_empty_batch_has_no_path_through_it():
    """Its sum over the batch reduces nothing: a dead end, where numpy's argmax would raise."""
    b = sr.tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True, name="b")
    y = sr.tensor(np.array([4.0, 5.0]), requires_grad=True, name="y")
    loss = (sr.tensor(np.ones((0, 3))) + b).sum() + (y * b[:2]).sum()
    tr = sr.trace(loss, [b])
    assert tr[b].tolist() == [4.0, 5.0, 0.0] == sr.grad(loss, [b])[0].tolist()
    assert tr.raw(b)[1][2] == backend.NO_PATH
    with pytest.raises(ValueError, match="no path"):
        tr.path(b, 2)
