"""Shared test settings: hypothesis profiles sized for CI (2 cores, ~10 minutes for the suite), and
the ``impl`` fixture that runs a test under each CPU kernel implementation."""

import os

import pytest
from hypothesis import HealthCheck, settings

from semirad import kernels

settings.register_profile(
    "default", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("thorough", max_examples=400, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


_NUMBA = pytest.param("numba", marks=pytest.mark.skipif(not kernels.AVAILABLE, reason="numba not installed"))


@pytest.fixture(params=["numpy", _NUMBA])
def impl(request):
    """The test runs once per implementation: the numpy fallback, and the numba kernels where installed."""
    with kernels.using(request.param):
        yield request.param


@pytest.fixture(scope="session")
def emulation_dir(request, tmp_path_factory):
    """Where the emulation's shared libraries go: pytest's cache (kept between runs) or a tmp dir."""
    cache = getattr(request.config, "cache", None)
    if cache is not None:
        return str(cache.mkdir("semirad_cuda_emulation"))
    return str(tmp_path_factory.mktemp("semirad_cuda_emulation"))
