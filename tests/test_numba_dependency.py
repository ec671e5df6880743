"""numba is a runtime dependency: it imports on a clean install, and where it does not, semirad
says so once and runs its numpy fallback."""

import pathlib
import subprocess
import sys
import textwrap

import semirad.kernels as K

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_numba_is_installed_with_semirad_and_the_kernels_are_on_by_default():
    assert K.AVAILABLE, "numba is a runtime dependency (pyproject.toml): it must import"


def _import_semirad_with_numba_broken(env_mode: str) -> subprocess.CompletedProcess:
    code = textwrap.dedent(
        """
        import sys, warnings
        sys.modules["numba"] = None  # import numba raises ImportError
        warnings.simplefilter("always")
        import semirad as sr, numpy as np
        on_at_import = sr.kernels.on()  # known at once: no kernel-mode result before the fallback
        w = sr.tensor([1.0, -2.0], requires_grad=True)
        print(sr.trace((w * w).sum(), [w])[w].tolist(), sr.kernels.AVAILABLE, on_at_import)
        """
    )
    env = {"SEMIRAD_KERNELS": env_mode, "PATH": "", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=120)


def test_without_numba_a_warning_and_the_numpy_fallback():
    out = _import_semirad_with_numba_broken("auto")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["[1.0,", "-2.0]", "False", "False"]  # each of x*x's two edges carries x
    assert out.stderr.count("numba did not import") == 1 and "numpy fallback" in out.stderr


def test_the_warning_is_silenced_when_the_numpy_kernels_are_asked_for():
    out = _import_semirad_with_numba_broken("numpy")
    assert out.returncode == 0, out.stderr
    assert "numba did not import" not in out.stderr
