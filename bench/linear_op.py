"""``python -m bench.linear_op [repeats]``: ``nn.Linear`` as the one ``linear`` op against the
composite it replaced (``x @ W.T + b``: transpose, matmul, add), on the 101 tiny tanh layers of
bench/targets.py (batch 1), float64 and float32.

In one process, every runner interleaved (:func:`bench.harness.interleaved`, medians):
forward + ``sr.grad`` and forward + ``sr.trace``, eager and replayed (``sr.compile``), with
``nn.Linear.forward`` switched between the op and the composite, and PyTorch's forward +
``torch.autograd.grad`` where torch is installed. Prints milliseconds and the ratios of issues 20 and 25.
"""

from __future__ import annotations

import os
import sys

import numpy as np

from . import harness
from .replay import torch_grad_runner


def composite_forward(self, x):
    """``nn.Linear.forward`` as it was: three recorded ops."""
    import semirad as sr
    from semirad.ops import contraction, elementwise, index
    from semirad.ops.core import apply

    x = x if isinstance(x, sr.Tensor) else sr.tensor(x)
    out = apply(contraction.MATMUL, x, apply(index.TRANSPOSE, self.weight, axes=(1, 0)))
    return out if self.bias is None else apply(elementwise.ADD, out, self.bias)


def rows(dtype, repeats: int) -> dict:
    import semirad as sr

    from .targets import tiny_net

    fused_forward = sr.nn.Linear.forward
    model, x = tiny_net(dtype)
    params = list(model.parameters())

    def fn(x):
        y = model(x)
        return (y * y).mean()

    def under(forward, run):
        def call():
            sr.nn.Linear.forward = forward
            try:
                return run()
            finally:
                sr.nn.Linear.forward = fused_forward

        return call

    replay_fused = sr.compile(fn, x)
    replay_composite = under(composite_forward, lambda: sr.compile(fn, x))()
    runners = {}
    for name, forward, replay in (("linear", fused_forward, replay_fused),
                                  ("composite", composite_forward, replay_composite)):  # fmt: skip
        runners[f"eager grad, {name}"] = under(forward, lambda: sr.grad(fn(sr.tensor(x)), params))
        runners[f"replay grad, {name}"] = lambda replay=replay: sr.grad(replay(x), params)
        runners[f"eager trace, {name}"] = under(forward, lambda: sr.trace(fn(sr.tensor(x)), params))
        runners[f"replay trace, {name}"] = lambda replay=replay: sr.trace(replay(x), params)
    torch_grad = torch_grad_runner(model, x)
    if torch_grad is not None:
        runners["torch grad"] = torch_grad
    got = harness.interleaved(runners, repeats=repeats, min_seconds=0.5)
    return {name: r["median_s"] for name, r in got.items() if "median_s" in r}


def main(argv=None) -> None:
    import semirad.kernels

    semirad.kernels.load()
    argv = sys.argv[1:] if argv is None else argv
    repeats = int(argv[0]) if argv else 9
    m = harness.machine()
    print(f"{m['cpu']}, {m['cores']} cores, python {m['python']}, load {os.getloadavg()[0]:.1f}")
    for dtype in (np.float64, np.float32):
        r = rows(dtype, repeats)
        print(np.dtype(dtype).name + ", ms:")
        for name, seconds in r.items():
            print(f"  {name:26s} {seconds * 1e3:8.3f}")
        torch_s = r.get("torch grad")
        for kind in ("linear", "composite"):
            line = f"  {kind}: replay/eager {r[f'replay grad, {kind}'] / r[f'eager grad, {kind}']:.3f}"
            line += f", replay trace/eager trace {r[f'replay trace, {kind}'] / r[f'eager trace, {kind}']:.3f}"
            if torch_s:
                line += f", eager/torch {r[f'eager grad, {kind}'] / torch_s:.3f}"
                line += f", replay/torch {r[f'replay grad, {kind}'] / torch_s:.3f}"
            print(line)


if __name__ == "__main__":
    main()
