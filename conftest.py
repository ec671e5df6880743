"""Collection settings for the doctests of ``semirad/`` (the tests' own settings are in tests/conftest.py)."""

import importlib.util

# the numba kernels module compiles on import; without numba (an optional extra) it is not collected
_NUMBA_MODULES = ["semirad/kernels/max_abs.py", "semirad/kernels/elementwise.py"]
collect_ignore = [] if importlib.util.find_spec("numba") else _NUMBA_MODULES
