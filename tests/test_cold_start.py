"""Cold start (issue 20, item 6): ``import semirad`` imports neither numba nor the subpackages a model
or an analysis needs; the kernels load in a background thread, and what runs before they are loaded
gives the same bits as what runs after."""

import os
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import semirad as sr
from semirad import kernels

ROOT = pathlib.Path(__file__).resolve().parents[1]

needs_numba = pytest.mark.skipif(not kernels.AVAILABLE, reason="numba not installed")


def _python(code: str, watch: bool = False, **env: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a new process (after :data:`_WATCH_NUMBA` where ``watch``); it must succeed."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SEMIRAD_")}
    environ.update(PYTHONPATH=str(ROOT), **env)
    code = (_WATCH_NUMBA if watch else "") + textwrap.dedent(code)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environ, cwd=ROOT,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    return out


#: a finder that records which thread imports numba, and can hold that import (in the module's
#: execution: a finder runs under the global import lock) until ``release`` is set
_WATCH_NUMBA = """
import importlib.machinery, sys, threading
imported_by, release = [], threading.Event()
release.set()


class Held:
    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        release.wait()
        self.loader.exec_module(module)


class Watch:
    def find_spec(self, name, path=None, target=None):
        if name != "numba" or sys._getframe(2).f_code.co_name != "_find_and_load_unlocked":
            return None  # (not an import: importlib.util.find_spec's look)
        imported_by.append(threading.current_thread().name)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        spec.loader = Held(spec.loader)
        return spec


sys.meta_path.insert(0, Watch())
"""


def test_import_semirad_leaves_numba_to_the_loader_thread_and_the_subpackages_to_their_first_use():
    out = _python(watch=True, code="""
        import semirad
        lazy = ("semirad.nn", "semirad.optim", "semirad.analysis", "semirad.data")
        loaded = sorted(m for m in lazy if m in sys.modules)
        semirad.kernels.wait()
        print(loaded, imported_by)
        """)
    assert out.stdout.split("\n")[0] == "[] ['semirad-kernels-loader']"


def test_the_numpy_mode_never_imports_numba():
    out = _python("""
        import sys
        import semirad as sr
        w = sr.tensor([[1.0, -2.0], [0.5, 3.0]], requires_grad=True)
        y = sr.tanh(w @ w).sum()
        sr.trace(y, [w]), sr.grad(y, [w])
        print("numba" in sys.modules, sr.kernels.enabled(), sr.kernels.on())
        """, SEMIRAD_KERNELS="numpy")
    assert out.stdout.split() == ["False", "False", "False"]


def test_subpackages_are_attributes_of_the_package():
    assert sr.nn.Linear is sr.nn.layers.Linear
    assert sr.optim.SGD is not None and sr.analysis.__name__ == "semirad.analysis"
    assert {"nn", "optim", "analysis", "data", "set_num_threads"} <= set(dir(sr))
    from semirad import nn

    assert nn is sr.nn
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        sr.nope  # noqa: B018


@needs_numba
def test_results_while_the_kernels_load_are_the_bits_of_the_loaded_kernels():
    # the loader is held at its import of numba: everything before the release runs on the numpy
    # references (and semirad's tanh in numpy), everything after on the kernels
    out = _python(watch=True, code="""
        release.clear()
        import numpy as np
        import semirad as sr

        rng = np.random.default_rng(3)
        x = sr.tensor(rng.standard_normal((64, 48)), requires_grad=True)
        w1 = sr.tensor(rng.standard_normal((48, 96)) / 7, requires_grad=True)
        x32 = sr.tensor(rng.standard_normal((64, 96)).astype(np.float32), requires_grad=True)
        w2 = sr.tensor(rng.standard_normal((96, 32)).astype(np.float32), requires_grad=True)

        def run():
            out = []
            for y, inputs in (((sr.tanh(x @ w1) @ sr.tanh(w1.T @ x.T)).sum(), [x, w1]),
                              ((sr.sigmoid(x32 @ w2) ** 2).sum(), [x32, w2])):
                tr = sr.trace(y, inputs)
                out += [a for t in inputs for a in tr.raw(t)] + list(sr.grad(y, inputs))
            return out

        before = run()
        state = (sr.kernels.enabled(), sr.kernels.on())
        release.set()
        sr.kernels.wait()
        after = run()
        same = all(a.dtype == b.dtype and np.array_equal(a, b) for a, b in zip(before, after))
        print(state, sr.kernels.enabled(), same)
        """)
    assert out.stdout.split("\n")[0] == "(False, True) True True"


@needs_numba
def test_a_large_contraction_waits_for_the_kernels_while_they_load():
    out = _python(watch=True, code="""
        release.clear()
        import numpy as np
        import semirad.kernels as K
        from semirad.semirings.max_abs import dispatch, reference

        rng = np.random.default_rng(4)
        m, n, p = 128, 256, 128
        assert m * n * p >= K.WAIT_MIN_WORK
        v, w = rng.standard_normal((m, n)), rng.standard_normal((n, p))
        ids = np.arange(m * n).reshape(m, n)
        small = dispatch.matmul(np, v[:4, :8], ids[:4, :8], w[:8, :4])  # runs the reference at once
        threading.Timer(0.3, release.set).start()
        got = dispatch.matmul(np, v, ids, w)  # waits for the loader, then runs the kernel
        want = reference.matmul(np, v, ids, w)
        print(K.enabled(), all(np.array_equal(a, b) for a, b in zip(got, want)), len(small))
        """)
    assert out.stdout.split("\n")[0] == "True True 2"


def test_a_process_that_exits_while_the_kernels_load_exits_cleanly():
    out = _python("import semirad; print(semirad.kernels.enabled())")
    assert out.stdout.split() == ["False"] and out.stderr == ""


@needs_numba
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_fork_while_the_kernels_load_leaves_the_child_with_working_kernels():
    out = _python("""
        import os, warnings
        warnings.simplefilter("ignore", DeprecationWarning)  # (Python 3.12+: fork of a threaded process)
        import numpy as np
        import semirad as sr

        pid = os.fork()  # the loader finishes first (os.register_at_fork)
        if pid == 0:
            w = sr.tensor(np.linspace(-1, 1, 4096).reshape(64, 64), requires_grad=True)
            tr = sr.trace(sr.tanh(w @ w).sum(), [w])
            os._exit(0 if sr.kernels.wait() and sr.kernels.enabled() and np.isfinite(tr[w]).all() else 3)
        print(os.waitpid(pid, 0)[1])
        """)
    assert out.stdout.split() == ["0"]


@needs_numba
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_child_forked_after_parallel_kernels_ran_traces_without_them():
    """GNU OpenMP is not fork-safe (numba ends such a child at its first parallel call): the child
    runs the serial kernels and the reference, with the parent's bits."""
    out = _python("""
        import os, warnings
        warnings.simplefilter("ignore", DeprecationWarning)
        import numpy as np
        import semirad as sr

        w = sr.tensor(np.linspace(-1, 1, 4096).reshape(64, 64), requires_grad=True)
        before = sr.trace(sr.tanh(w @ w).sum(), [w])  # a parallel contraction in the parent
        pid = os.fork()
        if pid == 0:
            again = sr.trace(sr.tanh(w @ w).sum(), [w])
            same = np.array_equal(again[w], before[w]) and again.path(w, (3, 5)).steps == before.path(w, (3, 5)).steps
            os._exit(0 if same else 3)
        print(os.waitpid(pid, 0)[1])
        """)
    assert out.stdout.split() == ["0"]


@needs_numba
def test_the_loader_leaves_kernels_loaded_for_the_calls_of_a_trace_and_a_backprop():
    # (each kernel a first call would otherwise load from numba's cache: about 6 ms each)
    kernels.wait()
    elementwise = kernels.compiled("elementwise")
    before = {name: len(getattr(elementwise, name).signatures)
              for name in ("add_vector_to_rows", "one_minus_square", "tanh", "non_finite_sum")}
    rng = np.random.default_rng(5)
    x = sr.tensor(rng.standard_normal((64, 64)))
    layer = sr.nn.Linear(64, 64)
    y = (sr.tanh(layer(x)) ** 2).sum()
    sr.trace(y, list(layer.parameters()))
    y.backward()
    after = {name: len(getattr(elementwise, name).signatures) for name in before}
    assert after == before and all(before.values())
