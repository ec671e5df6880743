"""The per-op oracle: an op's dense Jacobian, contracted in any semiring (:func:`check_op`).

For one op ``y = op(x_1, ..., x_k)`` the dense Jacobian ``J_k[j, i] = ∂y[j]/∂x_k[i]`` of each input is
read off SumProduct VJPs with one-hot seeds, and which entries are edges of the scalar graph off the
same rule run in :class:`Reach` (every edge counts, whatever its weight). For *any* semiring ``S`` and
output seed ``g`` the sweep must then give

    value(x[i]) = ⊕ over the edges x[i] -> y[j]   J[j, i] ⊗ g[j]

computed element by element with ``S``'s own primitives on 0-d values. An edge whose partial is
exactly 0 is where semirings differ (the *zero-partial convention*): ``"edge"`` counts it as an edge
of weight 0 (SumProduct, MaxAbsProduct: a real path of product 0), ``"none"`` as no edge (the
path-counting semirings Boolean, Count, LogMaxAbs, KBest, Entropy).
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from .. import api, backend
from ..semirings import Boolean, Count, Entropy, KBest, LogMaxAbs, MaxAbsProduct, SumAbs, SumProduct
from ..semirings.base import Semiring
from ..semirings.component_flow import ComponentFlow
from ..tensor import Tensor, tensor


def builtin_semirings() -> list:
    """One instance of every built-in semiring (``KBest(3)``; ``ComponentFlow`` with one empty group).

    >>> from semirad.testing import builtin_semirings
    >>> [type(S).__name__ for S in builtin_semirings()][:3]
    ['SumProduct', 'MaxAbsProduct', 'LogMaxAbs']
    """
    return [SumProduct(), MaxAbsProduct(), LogMaxAbs(), KBest(3), Boolean(), Count(), SumAbs(), Entropy(),
            ComponentFlow({}, 1)]  # fmt: skip


#: semirings for which an exactly-0 partial is no edge (they count or rank paths through non-zero partials)
_NO_EDGE = (Boolean, Count, LogMaxAbs, KBest, Entropy)


def zero_partial_convention(S: Semiring, zero_partials=None) -> str:
    """``"edge"`` or ``"none"``: how the oracle treats an exactly-0 partial for ``S``.

    ``zero_partials`` overrides: a string for every semiring, or a dict keyed by semiring class (or
    class name). Otherwise a semiring's own ``zero_partials`` attribute, else ``"none"`` for the
    path-counting built-ins and ``"edge"`` (the scalar-graph semantics) for every other one.

    >>> from semirad.testing import zero_partial_convention
    >>> from semirad.semirings import Count, MaxAbsProduct
    >>> zero_partial_convention(MaxAbsProduct()), zero_partial_convention(Count())
    ('edge', 'none')
    """
    if isinstance(zero_partials, str):
        choice = zero_partials
    elif isinstance(zero_partials, dict) and (type(S) in zero_partials or type(S).__name__ in zero_partials):
        choice = zero_partials.get(type(S), zero_partials.get(type(S).__name__))
    elif getattr(S, "zero_partials", None) is not None:
        choice = S.zero_partials
    else:
        choice = "none" if isinstance(S, _NO_EDGE) else "edge"
    if choice not in ("edge", "none"):
        raise ValueError(f"zero-partial convention must be 'edge' or 'none', got {choice!r}")
    return choice


class Reach(Semiring):
    """Reachability in which *every* edge counts, whatever its weight (0 included): the edge
    structure of a rule, as :class:`~semirad.semirings.Boolean` would see it if no partial were 0.
    The oracle runs it beside SumProduct to tell an edge of weight 0 from no edge.

    >>> import semirad as sr
    >>> x = sr.tensor([-1.0, 2.0, 3.0], requires_grad=True)
    >>> sr.backward(x[:2].relu().sum(), [x], semiring=Reach())[x].tolist()   # x[0]: an edge of weight 0
    [True, True, False]
    """

    name = "reach"

    def zeros(self, xp, shape, dtype):
        return xp.zeros(shape, dtype=bool)

    def seed(self, array):
        return backend.namespace(array).asarray(array) != 0

    def shape(self, g):
        return tuple(g.shape)

    def to_array(self, g, dtype):
        return g

    def one(self, xp, shape):
        return xp.ones(shape, dtype=bool)

    def times(self, a, b):
        return a & b

    def add(self, a, b):
        return a | b

    def scale(self, g, weights):
        xp = backend.namespace(g)
        return g & xp.ones(np.shape(weights), dtype=bool)

    def sum(self, g, axes, keepdims=False):
        return g.any(axis=tuple(axes), keepdims=keepdims)

    def matmul(self, g, weights):
        xp = backend.namespace(g, weights)
        return (g.astype(np.float32) @ xp.ones(np.shape(weights), dtype=np.float32)) > 0

    def scatter(self, g, index, shape, unique):
        xp = backend.namespace(g)
        out = xp.zeros(shape, dtype=bool)
        positions = backend.flat_positions(xp, shape, index)
        out.reshape(-1)[positions[xp.broadcast_to(g, positions.shape)]] = True
        return out

    def map(self, g, fn):
        return fn(g)


def dense_jacobians(y: Tensor, xs: Sequence[Tensor]) -> list:
    """``J_k[j, i] = ∂y[j]/∂x_k[i]`` (float64, shape ``(y.numel(), x_k.numel())``) for every input,
    from SumProduct VJPs with one-hot seeds.

    >>> import semirad as sr
    >>> from semirad.testing import dense_jacobians
    >>> x = sr.tensor([1.0, 2.0], requires_grad=True)
    >>> dense_jacobians(x * 3.0, [x])[0].tolist()
    [[3.0, 0.0], [0.0, 3.0]]
    """
    return _one_hot_sweeps(y, xs, SumProduct(), np.float64)


def edge_structure(y: Tensor, xs: Sequence[Tensor]) -> list:
    """``E_k[j, i]``: whether the scalar graph has an edge (of any weight, 0 included) from
    ``x_k[i]`` to ``y[j]``, read off :class:`Reach` sweeps with one-hot seeds.

    >>> import semirad as sr
    >>> from semirad.testing import edge_structure
    >>> x = sr.tensor([-1.0, 2.0], requires_grad=True)
    >>> edge_structure(x.relu(), [x])[0].tolist()
    [[True, False], [False, True]]
    """
    return _one_hot_sweeps(y, xs, Reach(), bool)


def _one_hot_sweeps(y, xs, S, dtype) -> list:
    out = [np.zeros((y.numel(), x.numel()), dtype=dtype) for x in xs]
    for j in range(y.numel()):
        seed = np.zeros(y.shape, dtype=y.dtype)
        seed.reshape(-1)[j] = 1
        result = api.backward(y, xs, semiring=S, seed=seed)
        for J, x in zip(out, xs, strict=True):
            J[j] = np.asarray(backend.to_numpy(S.to_array(result.raw(x), x.dtype))).reshape(-1)
    return out


def semiring_contraction(S: Semiring, J, g, dtype, edges=None, zero_partials: str = "edge") -> np.ndarray:
    """``out[i] = ⊕_j J[j, i] ⊗ g[j]`` over the edges ``j -> i``, element by element with ``S``'s
    primitives on 0-d values, as ``to_array`` shows it (flattened; ``(k, n)`` flattened for a value
    with leading axes such as KBest's slots).

    ``edges`` (bool, like ``J``) says which entries are edges: by default the non-zero ones. An edge
    whose ``J`` is exactly 0 counts as an edge of weight 0 with ``zero_partials="edge"`` and is left
    out with ``"none"``.

    >>> from semirad.testing import semiring_contraction
    >>> from semirad.semirings import MaxAbsProduct
    >>> J = np.array([[2.0, 0.0], [-3.0, 1.0]])       # y[0] = 2 x[0]; y[1] = -3 x[0] + x[1]
    >>> semiring_contraction(MaxAbsProduct(), J, np.array([1.0, 1.0]), np.float64).tolist()
    [-3.0, 1.0]
    """
    g = np.asarray(g, dtype=dtype).reshape(-1)
    J = np.asarray(J)
    edges = J != 0 if edges is None else (np.asarray(edges, dtype=bool) | (J != 0))
    if zero_partials == "none":
        edges = edges & (J != 0)
    out = []  # per element: a 0-d array, or (k,) for a value with leading axes
    for i in range(J.shape[1]):
        acc = S.zeros(np, (), dtype)
        for j in np.flatnonzero(edges[:, i]):
            term = S.scale(S.seed(np.array(g[j], dtype=dtype)), np.array(J[j, i], dtype=dtype))
            acc = S.add(acc, term)
        out.append(np.asarray(backend.to_numpy(S.to_array(acc, dtype)), dtype=np.float64))
    return np.moveaxis(np.array(out), 0, -1).reshape(-1) if out else np.zeros(0)


def _leaves(inputs) -> list:
    out = []
    for k, a in enumerate(inputs):
        if isinstance(a, Tensor):
            a = backend.to_numpy(a.data)
        out.append(tensor(np.array(a), requires_grad=True, name=f"x{k}"))
    return out


def check_op(
    fn: Callable,
    inputs: Sequence,
    semirings: Sequence[Semiring] | None = None,
    *,
    seed=None,
    zero_partials=None,
    rtol: float | None = None,
    atol: float | None = None,
    paths: bool = True,
) -> None:
    """The dense-Jacobian oracle for one op (or a small function): every semiring's sweep against
    the semiring contraction of the op's Jacobian with a random output seed.

    ``inputs`` are arrays (or tensors, whose values are taken); each becomes a leaf ``x0, x1, ...``.
    ``fn`` must be one op, or a function in which each input element reaches each output element by
    one path at most (its Jacobian entries are then single edges); for composites, compare with
    :func:`~semirad.testing.brute_force`. ``semirings``: default :func:`builtin_semirings`.
    ``seed``: an int or a numpy Generator for the output seed (standard normal). ``zero_partials``:
    see :func:`zero_partial_convention`. Tolerances: ``rtol=1e-12, atol=1e-14`` in float64,
    ``2e-5, 1e-6`` where float32 is involved. With ``paths`` (and a MaxAbsProduct among the
    semirings) every backpointer names the output element of its best edge and every one-edge path
    has that edge's weight. Raises ``AssertionError`` naming the semiring, the input and the
    convention used.

    >>> import semirad as sr
    >>> from semirad.testing import check_op
    >>> check_op(lambda a, b: a * b, [np.array([1.0, -2.0]), np.array([0.5, 0.0])], seed=0)
    >>> from semirad.ops.core import Op, apply
    >>> class DoubledExp(Op):             # a backward written for SumProduct only: 2 g e^x as g e^x ⊕ g e^x
    ...     name = "doubled_exp"
    ...     def forward(self, ctx, a):
    ...         ctx.saved = np.exp(a)
    ...         return 2 * ctx.saved
    ...     def backward(self, ctx, g, S, needs):
    ...         edge = S.scale(g, ctx.saved)
    ...         return (S.add(edge, edge),)
    >>> check_op(lambda a: apply(DoubledExp(), a), [np.array([0.0, 1.0])], seed=0)
    Traceback (most recent call last):
    ...
    AssertionError: ...
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    xs = _leaves(inputs)
    y = fn(*xs)
    assert isinstance(y, Tensor) and y.requires_grad, "check_op: the op's output is not part of the graph"
    jac = dense_jacobians(y, xs)
    structure = edge_structure(y, xs)
    g = np.asarray(rng.standard_normal(y.shape) + 0.0, dtype=y.dtype)  # + 0.0: a 0-d draw as an array
    exact = all(t.dtype == np.float64 for t in [y, *xs])
    rtol = (1e-12 if exact else 2e-5) if rtol is None else rtol
    atol = (1e-14 if exact else 1e-6) if atol is None else atol
    for S in builtin_semirings() if semirings is None else semirings:
        convention = zero_partial_convention(S, zero_partials)
        result = api.backward(y, xs, semiring=S, seed=g)
        for k, (x, J, E) in enumerate(zip(xs, jac, structure, strict=True)):
            expected = semiring_contraction(S, J, g, y.dtype, E, convention)
            got = np.asarray(backend.to_numpy(S.to_array(result.raw(x), x.dtype)), dtype=np.float64).reshape(-1)
            said = (
                "an exactly-0 partial counts as an edge of weight 0" if convention == "edge"
                else "an exactly-0 partial counts as no edge"
            )
            msg = (
                f"check_op: {S!r}, input {k} (shape {x.shape}): the sweep differs from the semiring contraction of "
                f"the op's Jacobian (zero-partial convention {convention!r}: {said}; pass zero_partials="
                f"{{{type(S).__name__!r}: {'none' if convention == 'edge' else 'edge'!r}}} to change it)"
            )
            np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol, err_msg=msg)
        if paths and isinstance(S, MaxAbsProduct):
            check_backpointers(result, y, xs, jac, g, max(rtol, 1e-12))


def check_backpointers(result, y: Tensor, xs: Sequence[Tensor], jac: list, g, rtol: float = 1e-12) -> None:
    """For a MaxAbsProduct result of one op: each element with a non-zero value points at the output
    element of its best edge, and its path is that one edge, of the Jacobian's weight.

    >>> import semirad as sr
    >>> from semirad.testing import check_backpointers, dense_jacobians
    >>> x = sr.tensor([1.0, 2.0], requires_grad=True, name="x0")
    >>> y = x * np.array([[1.0, -3.0], [2.0, 0.5]])
    >>> g = np.ones((2, 2))
    >>> check_backpointers(sr.trace(y, [x], seed=g), y, [x], dense_jacobians(y, [x]), g)
    """
    g = np.asarray(g, dtype=np.float64).reshape(-1)
    for k, (x, J) in enumerate(zip(xs, jac, strict=True)):
        value = np.asarray(backend.to_numpy(result[x]), dtype=np.float64).reshape(-1)
        kept = np.asarray(backend.to_numpy(result.semiring.backpointers(result.sweep.kept[x._node]))).reshape(-1)
        for i in np.flatnonzero(value):
            node, flat = result.sweep.locate(int(kept[i]))
            assert node is y._node, f"input {k} element {i}: backpointer names {node!r}, not the op's output"
            contrib = np.abs(J[:, i] * g)
            best = int(np.argmax(contrib))
            assert flat == best, f"input {k} element {i}: backpointer to output element {flat}, best is {best}"
            index = np.unravel_index(i, x.shape) if x.shape else ()
            path = result.path(x, tuple(int(t) for t in index))
            assert len(path.steps) == 2 and len(path.weights) == 1, f"input {k} element {i}: {path}"
            assert path.steps[0].name == x.name and path.steps[0].op == "leaf"
            assert path.steps[-1].shape == y.shape
            assert (np.ravel_multi_index(path.steps[-1].index, y.shape) == best) if y.shape else best == 0
            np.testing.assert_allclose(path.weights[0], J[best, i], rtol=rtol)
