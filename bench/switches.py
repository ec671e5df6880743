"""Before/after of one optimization in one process: ``python -m bench.switches NAME [--repeats R]``.

Each switch turns one optimization of the fourth round off ("before") or on ("after") around every
call, so both columns (and PyTorch, where the switch concerns backprop) are timed interleaved in
one run, with the allocator setting and thread limits of ``python -m bench``:

* ``proof``: a max-abs contraction's result proven finite from its operands
  (``semirings.max_abs.dispatch.products_finite``) against the trace's pass over it;
* ``threshold``: the elementwise numba kernels from 2^11 elements against 2^14;
* ``one_row``: the vector-matrix kernel (``kernels.max_abs._one_row``) against the general kernel;
* ``small``: the eighth round's small products and sums: one compiled call for a max-abs product
  of two matrices below 2^17 products (2^20 on one numba thread) and for MaxAbsProduct's sum
  (``kernels.max_abs._small``, ``max_abs_sum_rows``), against the general kernel's dispatch and
  numpy's argmax;
* ``add``: the ninth round's MaxAbsProduct ``⊕`` in one compiled pass (``semirings.max_abs.dispatch.add``)
  against numpy's eight steps, on random diamond graphs (whose branches meet) and on the demo's
  LSTM (whose time steps are slices of one input projection).

Prints a markdown table of ratios of medians and writes it to ``bench/results/switch_NAME.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import os

from . import harness, models


@contextlib.contextmanager
def _patched(obj, name: str, value):
    old = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, old)


def _originals() -> dict:
    from semirad.kernels import max_abs
    from semirad.semirings.max_abs import dispatch

    return {"products_finite": dispatch.products_finite, "_one_row": max_abs._one_row}


_ORIGINAL = _originals()


def _switch_proof(on: bool):
    from semirad.semirings.max_abs import dispatch

    return _patched(dispatch, "products_finite", _ORIGINAL["products_finite"] if on else (lambda *args: False))


def _switch_threshold(on: bool):
    from semirad import fast

    return _patched(fast, "_FUSED_MIN_ELEMENTS", 1 << 11 if on else 1 << 14)


def _switch_one_row(on: bool):
    from semirad.kernels import max_abs

    def general_kernel(values, ids, weights):  # what m == 1 ran before: the general kernel's dispatch
        dtype, zero = values.dtype, max_abs._ZERO
        if weights.T.flags.c_contiguous and not weights.flags.c_contiguous:
            out = max_abs._run(weights.T, values.T, ids.T, dtype, (), 1, zero, zero, ids_of_w=1)
            return None if out is None else (out[0].T, out[1].T, None)
        return max_abs._run(values, weights, ids, dtype, (), 1, zero, zero)

    return _patched(max_abs, "_one_row", _ORIGINAL["_one_row"] if on else general_kernel)


@contextlib.contextmanager
def _switch_small(on: bool):
    from semirad.kernels import max_abs
    from semirad.semirings.max_abs import dispatch, reference

    with contextlib.ExitStack() as stack:
        if not on:
            stack.enter_context(_patched(max_abs, "SMALL_MAX_WORK", 0))
            stack.enter_context(_patched(max_abs, "get_num_threads", lambda: 2))  # the parallel kernel, as before
            stack.enter_context(_patched(dispatch, "sum_rows", reference.sum_rows))
        yield


def _switch_add(on: bool):
    from semirad.semirings.max_abs import dispatch

    return contextlib.nullcontext() if on else _patched(dispatch, "_common_layout", lambda *arrays: None)


def _lstm(batch: int, length: int, hidden: int):
    """The demo's model (Embedding -> LSTM -> Linear) and loss on Dyck strings."""
    import numpy as np

    import semirad as sr
    from semirad.analysis.demo import BracketLM, dyck_batch, lm_loss

    sr.manual_seed(0)
    model = BracketLM(hidden=hidden)
    seqs = dyck_batch(np.random.default_rng(0), batch, length)
    params = list(model.parameters())
    return {
        "backprop": lambda: sr.grad(lm_loss(model, seqs), params),
        "trace": lambda: sr.trace(lm_loss(model, seqs), params),
    }


def _matvec(n: int):
    return {"backprop": models.matvec_semirad(n, "grad"), "trace": models.matvec_semirad(n, "trace")}


def _vector_times_transposed(n: int):
    """``(x @ W).sum()`` with a 1-D ``x``: the vector's gradient ``g @ W.T`` meets a transposed weight."""
    import semirad as sr

    W0, x0 = models.matvec_arrays(n)
    W, x = sr.tensor(W0, requires_grad=True), sr.tensor(x0, requires_grad=True)
    return {
        "backprop": lambda: sr.grad((x @ W).sum(), [W, x]),
        "trace": lambda: sr.trace((x @ W).sum(), [W, x]),
    }


def _program(prog, torch: bool):
    out = {"backprop": models.semirad_runner(prog, "grad"), "trace": models.semirad_runner(prog, "trace")}
    if torch:
        out["PyTorch"] = models.torch_runner(prog)
    return out


def _mlp_cases(*cases, torch: bool):
    """``(name, (layers, width, batch))`` pairs -> a builder of ``{name: runners}`` for :func:`models.mlp`."""
    return lambda: {name: _program(models.mlp(*shape), torch) for name, shape in cases}


#: name -> (switch, {case: runners}, whether PyTorch is a column)
SWITCHES = {
    "proof": (
        _switch_proof,
        lambda: {f"matvec N={n}": _matvec(n) for n in (500, 1000, 2000, 4000, 8000)}
        | {f"width {n}, batch 64": _program(models.mlp(20, n, 64), False) for n in (500, 1000)},
        False,
    ),
    "threshold": (
        _switch_threshold,
        _mlp_cases(
            ("width 100, batch 64", (20, 100, 64)), ("width 200, batch 64", (20, 200, 64)),
            ("width 500, batch 64", (20, 500, 64)), ("batch 256", (20, 20, 256)), ("batch 1024", (20, 20, 1024)),
            ("layers 100", (100, 20, 32)), torch=True,
        ),
        True,
    ),
    "small": (
        _switch_small,
        _mlp_cases(
            ("layers 20, width 20, batch 32", (20, 20, 32)), ("layers 200, width 20, batch 32", (200, 20, 32)),
            ("layers 20, width 20, batch 1", (20, 20, 1)), ("layers 20, width 20, batch 256", (20, 20, 256)),
            ("layers 20, width 50, batch 64", (20, 50, 64)), ("layers 20, width 100, batch 64", (20, 100, 64)),
            torch=False,
        ),
        False,
    ),
    "add": (
        _switch_add,
        lambda: {f"random graph, seed {k}": _program(models.random_graph(k, batch=16), False) for k in (3, 7, 11)}
        | {f"LSTM, batch {b}, length {n}, hidden {h}": _lstm(b, n, h) for b, n, h in ((32, 24, 48), (32, 64, 48))},
        False,
    ),
    "one_row": (
        _switch_one_row,
        lambda: {f"matvec N={n}": _matvec(n) for n in (100, 200, 300)}
        | {"x @ W (1-D x), N=100": _vector_times_transposed(100)},
        False,
    ),
}


def _switched(fn, switch, on: bool):
    def run():
        with switch(on):
            return fn()

    return run


def run(name: str, repeats: int) -> str:
    """Time one switch's cases; returns the markdown table."""
    switch, make_cases, torch = SWITCHES[name]
    head = "| case | backprop before | backprop after | trace before | trace after | trace/bp before | trace/bp after |"
    if torch:
        head += " bp/torch before | bp/torch after |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for case, runners in make_cases().items():
        timed = {}
        for column, fn in runners.items():
            if column == "PyTorch":
                timed[column] = fn
                continue
            timed[f"{column} before"] = _switched(fn, switch, False)
            timed[f"{column} after"] = _switched(fn, switch, True)
        result = harness.interleaved(timed, repeats, min_seconds=1.0)
        ms = {k: v["median_s"] * 1e3 for k, v in result.items()}
        row = [case] + [f"{ms[k]:.3g}" for k in ("backprop before", "backprop after", "trace before", "trace after")]
        row += [f"{ms[f'trace {w}'] / ms[f'backprop {w}']:.2f}" for w in ("before", "after")]
        if torch:
            row += [f"{ms[f'backprop {w}'] / ms['PyTorch']:.2f}" for w in ("before", "after")]
        lines.append("| " + " | ".join(row) + " |")
        print(lines[-1], flush=True)
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="+", choices=sorted(SWITCHES))
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    args = parser.parse_args(argv)
    harness.set_threads(1)
    allocator = harness.set_allocator("keep")
    import semirad.kernels as kernels

    kernels.load()
    for name in args.names:
        print(f"{name} (1 thread, allocator {allocator}, at least {args.repeats} interleaved repeats):", flush=True)
        table = run(name, args.repeats)
        path = os.path.join(args.out, f"switch_{name}.md")
        with open(path, "w") as f:
            f.write(f"# `python -m bench.switches {name}`: {SWITCHES[name][0].__name__}, off = before, on = after\n\n")
            f.write(table + "\n")
        print(f"wrote {path}", flush=True)


if __name__ == "__main__":
    main()
