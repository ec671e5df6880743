"""``einsum``: a composite of index maps, ⊕-sums, elementwise products and batched ``matmul``.

Nothing here has a backward of its own; every step is an op whose rule is already exact in every
semiring, so ``einsum``'s scalar graph is that of the steps:

1. per operand, a label repeated in it (``'ii->i'``) takes the diagonal: an integer-array ``getitem``;
2. per operand, a label found nowhere else (not in another operand, not in the output) is summed out:
   ``sum`` (an edge of weight 1 from each element to its sum);
3. operands are combined left to right (numpy's order without ``optimize``): labels shared by the two
   and needed later (by the output or a later operand) are batch axes, shared labels needed no more
   are contracted, the others are kept; after a ``transpose`` and ``reshape`` of each operand this is
   one ``matmul`` of ``(..., left, contracted) @ (..., contracted, right)`` (edges weighted by the
   other operand, backward through the semiring's contraction), or, with nothing to contract, one
   broadcasting ``mul`` (an outer or elementwise product);
4. a ``transpose`` to the output's order.

Sizes broadcast where one operand has length 1 (as numpy and PyTorch), through ``broadcast_to`` where a
contracted axis needs it. With three or more operands the intermediate products are vertices of the
graph (a different factorization of the same multiset of path products).
"""

from __future__ import annotations

import math
import string

from .. import backend
from ..readonly import freeze
from . import contraction as C
from . import elementwise as E
from . import index as I
from .core import OpError, apply, tensor_type

_LETTERS = frozenset(string.ascii_letters)


def _t(x):
    Tensor = tensor_type()
    return x if isinstance(x, Tensor) else Tensor(x)


def parse_subscripts(subscripts: str, ndims: list) -> tuple:
    """``(input labels, output labels)`` of an einsum: one tuple of labels per operand and one for the
    output. A label is a letter, or ``'...0'``, ``'...1'``... for the axes an ellipsis stands for
    (aligned from the right across operands, as broadcasting aligns them). Without ``->`` the output
    is the ellipsis axes, then the letters used once, in alphabetical order (uppercase first).

    >>> parse_subscripts("...ij,jk", [3, 2])
    ((('...0', 'i', 'j'), ('j', 'k')), ('...0', 'i', 'k'))
    >>> parse_subscripts("ii", [2])
    ((('i', 'i'),), ())
    """
    if not isinstance(subscripts, str):
        raise OpError(
            f"einsum: the subscripts must be a string such as 'ij,jk->ik', got {type(subscripts).__name__} "
            "(numpy's interleaved form einsum(a, [0, 1], b, [1, 2]) is not supported)"
        )
    spec = "".join(subscripts.split())
    lhs, arrow, rhs = spec.partition("->")
    if "->" in rhs or ("-" in lhs or ">" in lhs):
        raise OpError(f"einsum: subscripts {subscripts!r} have a stray or repeated '->'")
    terms = lhs.split(",")
    if len(terms) != len(ndims):
        raise OpError(f"einsum: subscripts {subscripts!r} name {len(terms)} operands, {len(ndims)} were given")
    letters, spans = [], []
    for k, (term, ndim) in enumerate(zip(terms, ndims)):
        named = _letters_of(term, subscripts, f"operand {k}")
        if "..." in term:
            span = ndim - len(named)
            if span < 0:
                raise OpError(
                    f"einsum: operand {k} has {ndim} dimensions, fewer than the {len(named)} subscripts of {term!r}"
                )
        elif len(named) != ndim:
            raise OpError(
                f"einsum: operand {k} has {ndim} dimensions but {len(named)} subscripts in {term!r} (no '...')"
            )
        else:
            span = 0
        letters.append(named)
        spans.append(span)
    width = max(spans, default=0)
    ellipsis = tuple(f"...{d}" for d in range(width))
    inputs = []
    for term, named, span in zip(terms, letters, spans):
        if "..." in term:
            before = _letters_of(term.split("...")[0], subscripts, "")
            inputs.append(tuple(before) + ellipsis[width - span :] + tuple(named[len(before) :]))
        else:
            inputs.append(tuple(named))
    if arrow:
        named = _letters_of(rhs, subscripts, "the output")
        if len(set(named)) != len(named):
            twice = next(c for c in named if named.count(c) > 1)
            raise OpError(f"einsum: the output subscript {twice!r} appears more than once in {subscripts!r}")
        missing = [c for c in named if not any(c in labels for labels in letters)]
        if missing:
            raise OpError(f"einsum: the output subscript {missing[0]!r} appears in no operand of {subscripts!r}")
        if "..." in rhs:
            before = _letters_of(rhs.split("...")[0], subscripts, "")
            output = tuple(before) + ellipsis + tuple(named[len(before) :])
        else:
            output = tuple(named)  # (ellipsis axes, if any, are summed, as PyTorch; numpy refuses)
    else:
        counts = {}
        for labels in letters:
            for c in labels:
                counts[c] = counts.get(c, 0) + 1
        output = ellipsis + tuple(sorted(c for c, n in counts.items() if n == 1))
    return tuple(inputs), output


def _letters_of(term: str, subscripts: str, where: str) -> list:
    """The letters of one term (``'...'`` at most once), checked."""
    if term.count("...") > 1 or "." in term.replace("...", ""):
        raise OpError(f"einsum: {where} of {subscripts!r} has a '.' that is not one '...'")
    named = list(term.replace("...", ""))
    bad = [c for c in named if c not in _LETTERS]
    if bad:
        raise OpError(f"einsum: subscripts {subscripts!r} hold {bad[0]!r}; subscripts are letters a-z, A-Z")
    return named


def einsum(subscripts: str, *operands):
    """Einstein summation, as numpy's ``einsum`` (and PyTorch's: ``'...'``, implicit output, operands
    also as one list): ``einsum('ij,jk->ik', a, b)`` is ``a @ b``. A composite of index maps, sums,
    products and ``matmul`` (see the module docstring), so exact in every semiring. Where numpy
    refuses an output without ``'...'`` for operands with ellipsis axes, those axes are summed, as in
    PyTorch.

    >>> import numpy as np
    >>> import semirad as sr
    >>> a = sr.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    >>> b = sr.tensor(np.ones((3, 2)))
    >>> sr.einsum("ij,jk->ik", a, b).tolist()
    [[3.0, 3.0], [12.0, 12.0]]
    >>> sr.einsum("ii", sr.tensor(np.eye(3))).item(), sr.einsum("ij->ji", a).shape
    (3.0, (3, 2))
    """
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    tensors = [_t(x) for x in operands]
    if not tensors:
        raise OpError("einsum: needs at least one operand")
    inputs, output = parse_subscripts(subscripts, [t.ndim for t in tensors])
    sizes = _label_sizes(tensors, inputs, subscripts)
    terms = [_diagonal(t, labels) for t, labels in zip(tensors, inputs)]
    for k in range(len(terms)):
        others = set(output).union(*(set(labels) for j, (_, labels) in enumerate(terms) if j != k))
        terms[k] = _sum_out(*terms[k], keep=others)
    x, labels = terms[0]
    for k in range(1, len(terms)):
        later = set(output).union(*(set(labels) for _, labels in terms[k + 1 :]))
        x, labels = _combine((x, labels), terms[k], later, sizes)
    x, labels = _sum_out(x, labels, keep=set(output))
    if labels != output:
        x = apply(I.TRANSPOSE, x, axes=tuple(labels.index(c) for c in output))
    if x.shape != tuple(sizes[c] for c in output):  # a label of length 1 here, longer elsewhere
        x = apply(I.BROADCAST_TO, x, shape=tuple(sizes[c] for c in output))
    return x


def _label_sizes(tensors, inputs, subscripts: str) -> dict:
    """Each label's length: equal across operands, or 1 where it broadcasts; equal where one operand
    repeats it (a diagonal)."""
    sizes = {}
    for k, (t, labels) in enumerate(zip(tensors, inputs)):
        own = {}
        for c, n in zip(labels, t.shape):
            if own.setdefault(c, n) != n:
                raise OpError(
                    f"einsum: subscript {c!r} is repeated in operand {k} of shape {t.shape} ({subscripts!r}) with "
                    f"lengths {own[c]} and {n}: a diagonal needs them equal"
                )
        for c, n in zip(labels, t.shape):
            known = sizes.get(c, 1)
            if n != known and 1 not in (n, known):
                name = "an ellipsis axis" if c.startswith("...") else f"subscript {c!r}"
                raise OpError(
                    f"einsum: {name} has length {known} in one operand and {n} in operand {k} of shape "
                    f"{t.shape} ({subscripts!r}); lengths must agree or be 1"
                )
            sizes[c] = n if known == 1 else known
    return sizes


def _diagonal(x, labels: tuple) -> tuple:
    """``(x, labels)`` with every repeated label of one operand reduced to its diagonal (``getitem`` with
    integer arrays: element ``[i, i]`` to element ``[i]``); the lengths are checked by :func:`_label_sizes`."""
    unique = tuple(dict.fromkeys(labels))
    if len(unique) == len(labels):
        return x, labels
    shape = dict(zip(labels, x.shape))
    xp = backend.namespace(x.data)
    grids = {
        c: freeze(xp.arange(shape[c]).reshape([shape[c] if d == i else 1 for d in range(len(unique))]))
        for i, c in enumerate(unique)
    }
    return apply(I.GETITEM, x, index=tuple(grids[c] for c in labels)), unique


def _sum_out(x, labels: tuple, keep: set) -> tuple:
    """``(x, labels)`` with the labels not in ``keep`` summed out."""
    axes = tuple(d for d, c in enumerate(labels) if c not in keep)
    if not axes:
        return x, labels
    return apply(I.SUM, x, axes=axes, keepdims=False), tuple(c for c in labels if c in keep)


def _arrange(x, labels: tuple, order: list, shape: tuple):
    """``x`` with its axes in the order of the labels ``order``, reshaped to ``shape`` (skipping no-ops)."""
    perm = tuple(labels.index(c) for c in order)
    if perm != tuple(range(len(perm))):
        x = apply(I.TRANSPOSE, x, axes=perm)
    return x if x.shape == shape else apply(I.RESHAPE, x, shape=shape)


def _combine(first: tuple, second: tuple, later: set, sizes: dict) -> tuple:
    """The product of two operands, summed over the shared labels not in ``later``."""
    (a, la), (b, lb) = first, second
    shared = [c for c in la if c in lb]
    batch = [c for c in shared if c in later]
    contracted = [c for c in shared if c not in later]
    left = [c for c in la if c not in lb]
    right = [c for c in lb if c not in la]
    a_size = dict(zip(la, a.shape))
    b_size = dict(zip(lb, b.shape))
    if not contracted:  # an outer or elementwise product: one broadcasting mul
        a = _arrange(a, la, batch + left, tuple(a_size[c] for c in batch + left) + (1,) * len(right))
        b = _arrange(b, lb, batch + right, tuple(b_size[c] for c in batch) + (1,) * len(left)
                     + tuple(b_size[c] for c in right))  # fmt: skip
        return apply(E.MUL, a, b), tuple(batch + left + right)
    # a contracted label of length 1 in one operand meets the other's full length: broadcast it
    for x_size, x_labels, name in ((a_size, la, "a"), (b_size, lb, "b")):
        stretched = [c for c in contracted if x_size[c] != sizes[c]]
        if stretched:
            full = tuple(sizes[c] if c in contracted else x_size[c] for c in x_labels)
            if name == "a":
                a = apply(I.BROADCAST_TO, a, shape=full)
            else:
                b = apply(I.BROADCAST_TO, b, shape=full)
            for c in stretched:
                x_size[c] = sizes[c]
    m = math.prod(a_size[c] for c in left)
    n = math.prod(sizes[c] for c in contracted)
    p = math.prod(b_size[c] for c in right)
    a = _arrange(a, la, batch + left + contracted, tuple(a_size[c] for c in batch) + (m, n))
    b = _arrange(b, lb, batch + contracted + right, tuple(b_size[c] for c in batch) + (n, p))
    y = apply(C.MATMUL, a, b)
    shape = y.shape[: len(batch)] + tuple(a_size[c] for c in left) + tuple(b_size[c] for c in right)
    return (y if y.shape == shape else apply(I.RESHAPE, y, shape=shape)), tuple(batch + left + right)
