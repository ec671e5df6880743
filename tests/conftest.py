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
