"""Collection settings for the doctests of ``semirad/`` (the tests' own settings are in tests/conftest.py)."""

import importlib.util

# the numba kernels module compiles on import; without numba (an optional extra) it is not collected
collect_ignore = [] if importlib.util.find_spec("numba") else ["semirad/kernels/max_abs.py"]
