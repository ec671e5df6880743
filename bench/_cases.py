"""The cases of ``python -m bench.before_after``, run in a subprocess against one source tree.

Run as a script (``python bench/_cases.py JSON_ARGS``) with ``PYTHONPATH`` naming the tree whose
``semirad`` is measured; prints one JSON object: case name -> median seconds.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time

# bench.models comes from this checkout, semirad from PYTHONPATH (which precedes this entry)
sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _median(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def cases() -> dict:
    """name -> zero-argument callable building and sweeping one graph."""
    import semirad as sr
    from bench import models

    out = {}
    for label, prog in (
        ("layers L=100", models.mlp(100, 20, 32)),
        ("layers L=1000", models.mlp(1000, 20, 32)),
        ("batch B=1024", models.mlp(20, 20, 1024)),
        ("batch B=16384", models.mlp(20, 20, 16384)),
        ("width N=500 (batch 64)", models.mlp(20, 500, 64)),
        ("width N=1000 (batch 64)", models.mlp(20, 1000, 64)),
        ("random graph seed 1", models.random_graph(1)),
    ):
        out[f"{label} backprop"] = models.semirad_runner(prog, "grad")
        out[f"{label} trace"] = models.semirad_runner(prog, "trace")
        if label.startswith("layers L=1000"):
            run = models.semirad_runner(prog, "grad")
            loss = run.build()
            out[f"{label} sweep only, backprop"] = lambda loss=loss, run=run: run.sweep(loss)
            out[f"{label} sweep only, trace"] = lambda loss=loss, run=run: sr.trace(loss, run.params)
            out[f"{label} forward only"] = run.build
    out["matvec N=2000 backprop"] = models.matvec_semirad(2000, "grad")
    out["matvec N=2000 trace"] = models.matvec_semirad(2000, "trace")

    import numpy as np

    for label, (model, x) in (
        ("cnn 2 conv + pool (batch 64)", _cnn()),
        ("embedding 1000x64 (64 x 32 tokens)", _embedding()),
    ):
        params = list(model.parameters())
        out[f"{label} backprop"] = lambda m=model, x=x, p=params: sr.grad((m(x) ** 2).mean(), p)
        out[f"{label} trace"] = lambda m=model, x=x, p=params: sr.trace((m(x) ** 2).mean(), p)

    from bench.targets import dense_net, semirad_backprop, semirad_trace

    for dtype in (np.float32, np.float64):  # the dense net of bench.targets (4 x 512, batch 128)
        model, x = dense_net(dtype)
        name = np.dtype(dtype).name
        out[f"dense 4x512 (batch 128) {name} backprop"] = semirad_backprop(model, x)
        out[f"dense 4x512 (batch 128) {name} trace"] = semirad_trace(model, x)

    a = sr.tensor(np.ones((32, 20)), requires_grad=True)
    b = sr.tensor(np.ones(20), requires_grad=True)

    def many_ops():
        h = a
        for _ in range(1000):
            h = (h + b).tanh()
        return h

    out["1000 x (add + tanh) forward"] = many_ops
    return out


def _cnn(batch: int = 64):
    """Conv2d(1, 8, 3), ReLU, MaxPool2d(2), Conv2d(8, 16, 3), ReLU, MaxPool2d(2), Flatten, Linear on
    (batch, 1, 28, 28): each unfold is a gather with repeated indices (a scatter in the sweep).

    >>> model, x = _cnn(2); model(x).shape
    (2, 10)
    """
    import numpy as np

    import semirad as sr

    sr.manual_seed(0)
    nn = sr.nn
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(16 * 5 * 5, 10),
    )  # fmt: skip
    return model, np.random.default_rng(1).standard_normal((batch, 1, 28, 28))


def _embedding(vocab: int = 1000, dim: int = 64, shape: tuple = (64, 32)):
    """Embedding(vocab, dim) then Linear(dim, 10) on random tokens: every row is picked many times.

    >>> model, tokens = _embedding(10, 4, (2, 3)); model(tokens).shape
    (2, 3, 10)
    """
    import numpy as np

    import semirad as sr

    sr.manual_seed(0)
    model = sr.nn.Sequential(sr.nn.Embedding(vocab, dim), sr.nn.Linear(dim, 10))
    return model, np.random.default_rng(1).integers(0, vocab, shape)


def main() -> None:
    args = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    try:
        import numba

        numba.set_num_threads(1)
    except ImportError:
        pass
    only = args.get("only")
    result = {}
    for name, fn in cases().items():
        if only and not any(o in name for o in only):
            continue
        result[name] = _median(fn, args.get("repeats", 5))
    import semirad

    result["_semirad"] = semirad.__file__
    print(json.dumps(result))


if __name__ == "__main__":
    main()
