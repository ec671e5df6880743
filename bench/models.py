"""The benchmarked computations, written once as a tiny program and run by every framework.

A :class:`Program` is a feed-forward graph of weight matrices, biases, ``tanh`` and sums over an
input batch ``x``; the loss is ``mean(y**2)`` of its last value. Every framework interprets the
same program with its own ops, so all columns do the same arithmetic in the same order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Program:
    """``steps``: ``("mm", src, param)``, ``("bias", src, param)``, ``("tanh", src)``, ``("add", a, b)``;
    each appends one value to the list that starts with the input ``x``."""

    x: np.ndarray
    params: list
    steps: list = field(default_factory=list)

    def scalar_graph(self) -> dict:
        """Size of the equivalent scalar graph: vertices (elements) and edges (partial derivatives)."""
        shapes = [self.x.shape]
        vertices = self.x.size + sum(p.size for p in self.params)
        edges = 0
        for step in self.steps:
            kind = step[0]
            if kind == "mm":
                b, a = shapes[step[1]]
                n = self.params[step[2]].shape[1]
                shape, e = (b, n), 2 * b * a * n
            elif kind == "bias":
                shape = shapes[step[1]]
                e = 2 * shape[0] * shape[1]
            elif kind == "tanh":
                shape = shapes[step[1]]
                e = shape[0] * shape[1]
            else:  # add
                shape = shapes[step[1]]
                e = 2 * shape[0] * shape[1]
            shapes.append(shape)
            vertices += shape[0] * shape[1]
            edges += e
        out = shapes[-1][0] * shapes[-1][1]
        return {"vertices": vertices + 2 * out + 1, "edges": edges + 3 * out}


def mlp(layers: int, width: int, batch: int, d_in: int = 10, d_out: int = 10, seed: int = 0) -> Program:
    """``layers`` weight layers ``d_in -> width -> ... -> width -> d_out``; tanh after all but the last."""
    rng = np.random.default_rng(seed)
    dims = [d_in] + [width] * (layers - 1) + [d_out]
    prog = Program(rng.standard_normal((batch, d_in)), [])
    h = 0
    for i in range(layers):
        prog.params.append(rng.standard_normal((dims[i], dims[i + 1])) / np.sqrt(dims[i]))
        prog.steps.append(("mm", h, len(prog.params) - 1))
        prog.params.append(0.1 * rng.standard_normal(dims[i + 1]))
        prog.steps.append(("bias", len(prog.steps), len(prog.params) - 1))
        h = len(prog.steps)
        if i < layers - 1:
            prog.steps.append(("tanh", h))
            h = len(prog.steps)
    return prog


def random_graph(seed: int, batch: int = 16, p0: float = 0.99, sizes=(10, 500), d_in: int = 10, d_out: int = 10):
    """A random feed-forward graph grown by a vertex-replacement grammar with diamonds.

    A *square* vertex ``S(a -> b)`` (a sub-network from a tensor of width ``a`` to one of width
    ``b``) becomes, with probability ``p``, a diamond: ``h = tanh(x @ W)`` of a width ``c`` drawn
    from ``sizes``, then two squares ``S(c -> b)`` side by side whose outputs are summed; each of
    them expands with probability ``p / 2`` (``p`` divided by the number of squares on the rule's
    right side), which keeps the graph finite. Otherwise it becomes the terminal
    ``tanh(x @ W)`` (``a -> b``). The root is ``S(d_in -> d_out)`` with ``p = p0``; the program
    is built only of weight matrices, tanh and sums.
    """
    rng = np.random.default_rng(seed)
    prog = Program(rng.standard_normal((batch, d_in)), [])

    def weight(a, b):
        prog.params.append(rng.standard_normal((a, b)) / np.sqrt(a))
        return len(prog.params) - 1

    def emit(*step):
        prog.steps.append(step)
        return len(prog.steps)

    # recursion depth stays small: p halves at every level
    def expand(src, a, b, p):
        if rng.random() < p:
            c = int(rng.integers(sizes[0], sizes[1] + 1))
            h = emit("tanh", emit("mm", src, weight(a, c)))
            left = expand(h, c, b, p / 2)
            right = expand(h, c, b, p / 2)
            return emit("add", left, right)
        return emit("tanh", emit("mm", src, weight(a, b)))

    expand(0, d_in, d_out, p0)
    return prog


# -- frameworks ---------------------------------------------------------------------------------
def run_program(ops, prog: Program, params, x):
    vals = [x]
    for step in prog.steps:
        kind = step[0]
        if kind == "mm":
            vals.append(ops.matmul(vals[step[1]], params[step[2]]))
        elif kind == "bias":
            vals.append(vals[step[1]] + params[step[2]])
        elif kind == "tanh":
            vals.append(ops.tanh(vals[step[1]]))
        else:
            vals.append(vals[step[1]] + vals[step[2]])
    y = vals[-1]
    return ops.mean(y * y)


class _SemiradOps:
    def __init__(self):
        import semirad as sr

        self.sr = sr

    def matmul(self, a, b):
        return a @ b

    def tanh(self, a):
        return a.tanh()

    def mean(self, a):
        return a.mean()


class _TorchOps:
    def __init__(self):
        import torch

        self.torch = torch

    def matmul(self, a, b):
        return a @ b

    def tanh(self, a):
        return self.torch.tanh(a)

    def mean(self, a):
        return a.mean()


class _AutogradOps:
    def __init__(self):
        import autograd.numpy as anp

        self.anp = anp

    def matmul(self, a, b):
        return self.anp.dot(a, b)

    def tanh(self, a):
        return self.anp.tanh(a)

    def mean(self, a):
        return self.anp.mean(a)


def semirad_runner(prog: Program, mode: str, device: str = "cpu"):
    """fwd + sweep with semirad: ``mode`` "grad" (SumProduct) or "trace" (MaxAbsProduct)."""
    import semirad as sr

    xp = np
    if device == "cuda":
        import cupy as xp
    params = [sr.tensor(xp.asarray(p), requires_grad=True) for p in prog.params]
    x = sr.tensor(xp.asarray(prog.x))
    ops = _SemiradOps()
    sweep = sr.grad if mode == "grad" else sr.trace

    def run():
        return sweep(run_program(ops, prog, params, x), params)

    def build():
        return run_program(ops, prog, params, x)

    run.build, run.sweep, run.params = build, (lambda loss: sweep(loss, params)), params
    return run


def torch_runner(prog: Program, device: str = "cpu"):
    import torch

    params = [torch.tensor(p, requires_grad=True, device=device) for p in prog.params]
    x = torch.tensor(prog.x, device=device)
    ops = _TorchOps()

    def run():
        return torch.autograd.grad(run_program(ops, prog, params, x), params)

    return run


def autograd_runner(prog: Program):
    from autograd import grad

    ops = _AutogradOps()
    params = [np.array(p) for p in prog.params]
    g = grad(lambda ps: run_program(ops, prog, ps, prog.x))

    def run():
        return g(params)

    return run


# -- matrix-vector product ----------------------------------------------------------------------
def matvec_arrays(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, n)) / np.sqrt(n), rng.standard_normal(n)


def matvec_semirad(n: int, mode: str, device: str = "cpu"):
    import semirad as sr

    xp = np
    if device == "cuda":
        import cupy as xp
    W0, x0 = matvec_arrays(n)
    W = sr.tensor(xp.asarray(W0), requires_grad=True)
    x = sr.tensor(xp.asarray(x0), requires_grad=True)
    sweep = sr.grad if mode == "grad" else sr.trace

    def run():
        return sweep((W @ x).sum(), [W, x])

    run.build, run.sweep = (lambda: (W @ x).sum()), (lambda loss: sweep(loss, [W, x]))
    return run


def matvec_torch(n: int, device: str = "cpu"):
    import torch

    W0, x0 = matvec_arrays(n)
    W = torch.tensor(W0, requires_grad=True, device=device)
    x = torch.tensor(x0, requires_grad=True, device=device)

    def run():
        return torch.autograd.grad((W @ x).sum(), [W, x])

    return run


def matvec_autograd(n: int):
    import autograd.numpy as anp
    from autograd import grad

    W0, x0 = matvec_arrays(n)
    g = grad(lambda ps: anp.sum(anp.dot(ps[0], ps[1])))

    def run():
        return g([W0, x0])

    return run
