"""The seedable random source of semirad (parameter init, dropout): ``sr.manual_seed``.

>>> import semirad as sr
>>> _ = sr.manual_seed(0)
>>> a = default_generator().random()
>>> _ = sr.manual_seed(0)
>>> a == default_generator().random()
True
"""

from __future__ import annotations

import numpy as np

_generator = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed the default generator that ``nn.init`` and dropout use; returns it (as PyTorch)."""
    global _generator
    _generator = np.random.default_rng(seed)
    return _generator


def default_generator() -> np.random.Generator:
    """The generator used when no explicit ``generator=`` is passed."""
    return _generator


def get_generator(generator=None) -> np.random.Generator:
    """``generator`` itself (a ``np.random.Generator``, or an int seed), or the default one."""
    if generator is None:
        return _generator
    if isinstance(generator, np.random.Generator):
        return generator
    if isinstance(generator, (int, np.integer)):
        return np.random.default_rng(int(generator))
    raise TypeError(f"generator must be a numpy.random.Generator or an int seed, got {type(generator).__name__}")
