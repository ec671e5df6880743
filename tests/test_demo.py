"""The main job: ``python -m semirad`` prints backprop vs trace and a best path that checks out."""

import re
import subprocess
import sys


def test_python_m_semirad_runs_and_its_path_multiplies_out():
    out = subprocess.run([sys.executable, "-m", "semirad", "--batch", "4", "--hidden", "3"],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert "|grad| max" in out and "|trace| max" in out
    value = float(re.search(r"path of value (\S+)", out).group(1))
    weights = [float(w) for w in re.findall(r"-> x (\S+)", out)]
    product = 1.0
    for w in weights:
        product *= w
    assert abs(product - value) <= 1e-4 * abs(value)
    for name in ("W1", "b1", "W2", "b2"):
        assert re.search(rf"^{name}\s", out, re.M)
