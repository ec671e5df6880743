"""The interface every semiring implements, and the generic result of a sweep."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .. import backend


class Result:
    """What a sweep computed for its inputs, indexable by the input tensors.

    >>> import semirad as sr
    >>> x = sr.tensor([1.0, 2.0], requires_grad=True)
    >>> sr.backward((x * x).sum(), [x])[x].tolist()
    [2.0, 4.0]
    """

    def __init__(self, sweep):
        self.sweep = sweep
        self.semiring = sweep.semiring

    def node_of(self, tensor):
        node = getattr(tensor, "_node", None)
        if node is None or node not in self.sweep.values:
            name = getattr(tensor, "name", None)
            shape = getattr(tensor, "shape", None)
            raise KeyError(f"tensor {name or ''} of shape {shape} was not an input of this sweep")
        return node

    def raw(self, tensor):
        """The semiring value (``V``) computed for an input tensor; its backpointer component (the
        path protocol's ``path_component``) as int64 ids, decoded by ``semiring.backpointers``
        where the sweep holds them compact (a leaf's, :mod:`semirad.ids`).

        >>> import semirad as sr
        >>> w = sr.tensor([[1.0, -2.0]], requires_grad=True)
        >>> tr = sr.trace(w.T.sum(), [w])
        >>> tr.sweep.values[w._node][1].dtype.name, tr.raw(w)[1].dtype.name
        ('int32', 'int64')
        """
        value = self.sweep.values[self.node_of(tensor)]
        c = getattr(self.semiring, "path_component", None)
        if c is not None and type(value) is tuple and getattr(value[c], "dtype", None) == np.int32:
            value = value[:c] + (self.semiring.backpointers(value[c]),) + value[c + 1 :]
        return value

    def __getitem__(self, tensor):
        return self._array(self.node_of(tensor))

    def _array(self, node):
        """The value computed for the input ``node`` as an array of its dtype that the caller owns (a
        read-only one copied); ``node`` known to be an input (:func:`semirad.grad` calls this)."""
        out = self.semiring.to_array(self.sweep.values[node], node.dtype)
        if isinstance(out, np.ndarray) and not out.flags.writeable:
            out = out.copy()
        return out

    def __contains__(self, tensor) -> bool:
        return getattr(tensor, "_node", None) in self.sweep.values

    def __getattr__(self, name: str):
        # only reached for a missing attribute: say why a result has no paths, not just that it has none
        if name in ("path", "paths", "walk"):
            semiring = self.__dict__.get("semiring")
            problem = path_protocol_problem(semiring) if semiring is not None else None
            if problem is None and name == "paths" and semiring is not None:
                problem = f"{semiring!r} keeps one path per element (k = 1): use .path(t, index)"
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}: {problem}")
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.semiring!r}, {len(self.sweep.values)} inputs)"

    def __reduce_ex__(self, protocol):
        raise TypeError(
            f"a {type(self).__name__} holds the recorded graph it was computed on and can't be pickled or "
            "deep-copied; save what you need instead: its arrays (r[t], which are numpy or cupy arrays), "
            "paths (r.path(t, index) gives a Path, which pickles) or an importance's to_dict()"
        )


class Semiring:
    """A semiring for the reverse sweep.

    A semiring owns its *value type* ``V``: one array, or a small tuple of arrays such as
    ``(value, backpointer)``. Backward rules never do arithmetic on ``V`` themselves; they hand
    real edge-weight arrays to the primitives below, so one rule serves every semiring.

    To write your own, subclass and implement every method that raises ``NotImplementedError``
    (``zeros``, ``seed``, ``shape``, ``add``, ``scale``, ``sum``, ``matmul``, ``scatter``,
    ``map``, ``to_array``, and ``one``/``times`` for the laws); ``enter``, ``result`` and
    ``for_sweep`` have working defaults, ``zero``/``plus`` are ``zeros``/``add`` by their algebraic names.

    >>> import semirad as sr
    >>> S = sr.semirings.SumProduct()
    >>> S.add(S.scale(np.ones(2), np.array([2.0, 3.0])), np.ones(2)).tolist()
    [3.0, 4.0]
    """

    name = "semiring"
    #: what :meth:`result` makes of a sweep; :mod:`semirad.paths` registers its path-following
    #: results for the path-capable semirings (the semirings never import it), and a semiring that
    #: follows the path protocol without naming a class of its own gets one of them (:data:`PATH_RESULTS`)
    result_class: type = Result
    #: the path protocol (docs/semirings.md, "Paths for your own semiring"): the index, in the value
    #: tuple, of the component that holds the backpointer ids (``NO_PATH`` where no path, ``END`` in
    #: the seed). Set, the default :meth:`enter` keeps that component per vertex and re-seeds it with
    #: the vertex's own element ids; the semiring also defines ``backpointers(kept)``, which decodes
    #: what was kept (its presence is what makes a semiring path-capable), and ``k`` where it keeps
    #: ``k`` ranked paths per element (codes ``gid * k + rank``, components of shape ``(k,) + shape``)
    path_component: int | None = None
    #: axes that every component of a value has before the element axes (KBest's ``k`` slots,
    #: ComponentFlow's channels)
    lead_axes = 0

    #: whether the class overrides :meth:`enter` (set for every subclass; the sweep skips the call if not)
    has_enter = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.has_enter = cls.enter is not Semiring.enter or cls.path_component is not None

    # -- values -------------------------------------------------------------------------------
    def zeros(self, xp, shape: tuple, dtype) -> Any:
        """The ⊕-identity ("no path") for every element of ``shape``."""
        raise self._missing("zeros")

    def seed(self, array) -> Any:
        """Lift a real seed array at the output (``one`` where the user seeds 1) into ``V``."""
        raise self._missing("seed")

    def shape(self, g) -> tuple:
        """The element shape of a value."""
        raise self._missing("shape")

    def to_array(self, g, dtype) -> Any:
        """The user-facing array of a value (e.g. its value component), cast to ``dtype``."""
        raise self._missing("to_array")

    def one(self, xp, shape: tuple) -> Any:
        """The ⊗-identity for every element of ``shape`` (a path of product 1 that ends here)."""
        raise self._missing("one")

    def zero(self, xp, shape: tuple, dtype=np.float64) -> Any:
        """The ⊕-identity and ⊗-annihilator: :meth:`zeros`, by its algebraic name."""
        return self.zeros(xp, shape, dtype)

    def times(self, a, b) -> Any:
        """``a ⊗ b`` of two values, elementwise (the sweep itself only ⊗-multiplies by real edge
        weights: ``scale(g, w) == times(seed(w), g)``; this is for the laws and for users)."""
        raise self._missing("times")

    def plus(self, a, b) -> Any:
        """``a ⊕ b``: :meth:`add`, by its algebraic name."""
        return self.add(a, b)

    # -- the primitives backward rules use --------------------------------------------------
    def add(self, a, b) -> Any:
        """⊕ of two values of the same shape (accumulation of parallel contributions)."""
        raise self._missing("add")

    def scale(self, g, weights) -> Any:
        """⊗ every element of ``g`` by an edge weight (array broadcasting against ``g``, or scalar)."""
        raise self._missing("scale")

    def scale_temporary(self, g, weights) -> Any:
        """:meth:`scale` where ``weights`` is a fresh array that the caller drops afterwards (a
        partial computed for this one call, never a saved forward value or a user's array): the
        semiring may write its result into it. The default calls :meth:`scale`."""
        return self.scale(g, weights)

    def sum(self, g, axes: tuple, keepdims: bool = False) -> Any:
        """⊕-reduce over ``axes``."""
        raise self._missing("sum")

    def matmul(self, g, weights) -> Any:
        """Contraction ``out[..., i, k] = ⊕_j g[..., i, j] ⊗ weights[..., j, k]`` (batch dims broadcast)."""
        raise self._missing("matmul")

    def scatter(self, g, index, shape: tuple, unique: bool) -> Any:
        """``out = zeros(shape); out[index] ⊕= g``; ``unique`` promises no repeated targets."""
        raise self._missing("scatter")

    def scatter_unique(self, g, index, shape: tuple, lead: int = 0) -> Any:
        """:meth:`scatter` where no target repeats: ``zeros(shape)`` with ``g`` written at ``index``,
        every component alike (nothing meets, so no ⊕). ``lead`` axes of every component come before
        the element axes (KBest's ``k`` slots, ComponentFlow's channels) and are written whole. The
        one definition the semirings share.

        >>> import semirad as sr
        >>> S = sr.semirings.MaxAbsProduct()
        >>> value, ids = S.scatter_unique((np.array([2.0]), np.array([7])), (np.array([1]),), (3,))
        >>> value.tolist(), ids.tolist() == [backend.NO_PATH, 7, backend.NO_PATH]
        ([0.0, 2.0, 0.0], True)
        """
        first = g[0] if isinstance(g, tuple) else g
        out = self.zeros(backend.namespace(first), shape, first.dtype)
        where = (slice(None),) * lead + (index if isinstance(index, tuple) else (index,))
        for target, part in zip(out, g) if isinstance(out, tuple) else [(out, g)]:
            target[where] = part
        return out

    def add_at(self, buffer, index, g) -> Any:
        """``buffer[index] ⊕= g``, where ``index`` picks each element of ``buffer`` at most once: the
        sweep's accumulation of a contribution to a slice of an input (:class:`semirad.engine.Slice`)
        into a buffer the sweep owns, which may be written in place. Returns the result (``buffer``
        itself here). Equal to ``add(buffer, scatter(g, index, shape, True))`` in cost of the slice
        alone; the default reads the slice, ⊕-adds with :meth:`add` and writes it back, every
        component alike (``lead_axes`` of each written whole).

        >>> import semirad as sr
        >>> S = sr.semirings.MaxAbsProduct()
        >>> buffer = (np.array([1.0, 4.0]), np.array([3, 5]))
        >>> value, ids = S.add_at(buffer, slice(0, 2), (np.array([-2.0, 3.0]), np.array([9, 8])))
        >>> value.tolist(), ids.tolist()
        ([-2.0, 4.0], [9, 5])
        """
        where = (slice(None),) * self.lead_axes + (index if isinstance(index, tuple) else (index,))
        whole = isinstance(buffer, tuple)
        new = self.add(tuple([part[where] for part in buffer]) if whole else buffer[where], g)
        targets, parts = (buffer, new) if whole else ((buffer,), (new,))
        if any(part.dtype != target.dtype for target, part in zip(targets, parts, strict=True)):
            # g promotes the dtype (a float64 contribution to a float32 buffer): out of place, as ``add`` does
            return self.add(buffer, self.scatter(g, index, self.shape(buffer), True))
        for target, part in zip(targets, parts, strict=True):
            target[where] = part
        return buffer

    def map(self, g, fn: Callable) -> Any:
        """Apply an index map ``fn`` (reshape, transpose, slice, broadcast...) to every component."""
        raise self._missing("map")

    # -- hooks of the sweep -------------------------------------------------------------------
    def for_sweep(self) -> Semiring:
        """The instance one sweep works with: ``self`` unless the semiring keeps state during a
        sweep, which then lives in a copy, so one instance may serve sweeps in several threads."""
        return self

    def enter(self, g, node, base: int) -> tuple[Any, Any]:
        """Called once per vertex tensor when its value is complete, before its op's backward.

        Returns ``(g_to_propagate, kept)``; ``kept`` (if not None) is stored per node for the
        result (e.g. backpointers). ``base`` is the global id of the node's first element.

        With :attr:`path_component` set (the path protocol) it keeps that component, the ids of
        where each element's path goes next, and replaces it by the vertex's own ids, ``base +
        flat index`` (times ``k``, plus the rank, where the semiring keeps ``k`` paths per element),
        ``NO_PATH`` staying where there is no path; a leaf propagates nothing and keeps its ids.
        Otherwise it keeps nothing.
        """
        c = self.path_component
        if c is None:
            return g, None
        parts = list(g)
        kept = parts[c]
        if node.op is None:
            return g, kept
        xp = backend.namespace(kept)
        own = backend.element_ids(xp, base, self.shape(g))
        k = int(getattr(self, "k", 1))
        if kept.ndim > own.ndim:  # the rank axis leads
            own = own[None] * k + xp.arange(kept.shape[0], dtype=np.int64).reshape((-1,) + (1,) * own.ndim)
        parts[c] = xp.where(kept == backend.NO_PATH, backend.NO_PATH, own)
        return tuple(parts), kept

    def rank_edges(self, weights: list) -> list:
        """The path protocol: the weights of the parallel edges between two vertices (one per input
        slot of an op that takes the same tensor twice, ``x * x``, in slot order) in the order paths
        take them, best first, leaving out any that is no edge. A path from one vertex to the other
        takes the first; with ``k`` paths per element, the ``j``-th of an element's paths to name
        the same successor (code) takes the ``j``-th. Default, MaxAbsProduct's rule: the largest
        ``|w|`` first, ties in slot order, weight-0 edges kept.

        >>> Semiring().rank_edges([1.0, -3.0, 0.0, 3.0])
        [-3.0, 3.0, 1.0, 0.0]
        """
        return sorted(weights, key=lambda w: -abs(w))

    @property
    def path_kind(self) -> str:
        """The path protocol: what ``component_importance`` and ``path_shares`` report as the kind of
        paths they counted (``ComponentImportance.kind``): the name, with ``k`` where it is above 1."""
        k = int(getattr(self, "k", 1))
        return self.name if k == 1 else f"{self.name}({k})"

    def result(self, sweep) -> Result:
        """Wrap a finished sweep into the object ``sr.backward`` returns: a :attr:`result_class`, or
        for a semiring that follows the path protocol (:func:`path_protocol_problem`) and names no
        class of its own, the path-following result :mod:`semirad.paths` registered
        (:data:`PATH_RESULTS`: ``.path``, ``.walk``, and ``.paths`` where ``k > 1``)."""
        cls = self.result_class
        if cls is Result and hasattr(self, "backpointers") and PATH_RESULTS and path_protocol_problem(self) is None:
            cls = PATH_RESULTS["ranked" if int(getattr(self, "k", 1)) > 1 else "single"]
        return cls(sweep)

    def _missing(self, what: str) -> NotImplementedError:
        return NotImplementedError(f"semiring {self.name!r} does not implement {what}()")

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


#: the path-following results of :mod:`semirad.paths`, registered there (the semirings never import
#: it): ``"single"`` for one path per element, ``"ranked"`` for ``k > 1``
PATH_RESULTS: dict = {}


def path_protocol_problem(semiring) -> str | None:
    """``None`` if ``semiring`` follows the path protocol (docs/semirings.md, "Paths for your own
    semiring"), else what it lacks, in words: a ``backpointers(kept)`` method, a positive int ``k``
    (where it is set), and something that keeps backpointers per vertex (:attr:`Semiring.path_component`
    or an :meth:`Semiring.enter` of its own).

    >>> import semirad as sr
    >>> path_protocol_problem(sr.semirings.KBest(2)) is None
    True
    >>> print(path_protocol_problem(sr.semirings.SumProduct()))   # doctest: +ELLIPSIS
    SumProduct() keeps no paths: it has no backpointers(kept) method...
    """
    who = repr(semiring)
    if not callable(getattr(semiring, "backpointers", None)):
        return (
            f"{who} keeps no paths: it has no backpointers(kept) method (the path protocol, docs/semirings.md "
            '"Paths for your own semiring": name the value component holding backpointer ids in path_component, '
            "and decode what a vertex kept in backpointers(kept))"
        )
    k = getattr(semiring, "k", 1)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        return f"{who} has k = {k!r}: the number of paths it keeps per element must be a positive int"
    if getattr(semiring, "path_component", None) is None and not getattr(semiring, "has_enter", False):
        return (
            f"{who} has backpointers() but keeps nothing per vertex: set path_component to the index of the value "
            "component holding the backpointer ids (the default enter keeps it), or override enter"
        )
    return None


def check_finite(xp, values, node) -> None:
    """Raise ``FloatingPointError`` naming the node if ``values`` holds NaN or inf."""
    bad = ~xp.isfinite(values)
    if bool(bad.any()):
        first = tuple(int(i) for i in np.unravel_index(int(backend.to_numpy(bad.ravel()).argmax()), values.shape))
        raise FloatingPointError(
            f"non-finite value {backend.to_numpy(values[first])} reaches the sweep at element {first} "
            f"of {node.describe()}: check the forward values and edge weights of the ops around it"
        )
