"""``sr.data.batches``: mini-batches of arrays, in the place of PyTorch's ``DataLoader(TensorDataset(...))``.

>>> import numpy as np, semirad as sr
>>> x, y = np.arange(10.0).reshape(5, 2), np.arange(5)
>>> loader = sr.data.batches(x, y, batch_size=2)
>>> len(loader), [yb.tolist() for _, yb in loader]
(3, [[0, 1], [2, 3], [4]])
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from . import backend
from .rng import get_generator
from .tensor import Tensor

__all__ = ["Batches", "batches"]


class Batches:
    """Re-iterable mini-batches of the rows of equally long arrays; see :func:`batches`."""

    def __init__(self, arrays: tuple, batch_size: int, shuffle: bool, drop_last: bool, generator) -> None:
        self.arrays, self.batch_size, self.shuffle, self.drop_last = arrays, batch_size, shuffle, drop_last
        # an int seed becomes one generator here, so that every epoch draws a new order from it
        self._generator = generator if generator is None else get_generator(generator)
        self.num_samples = len(arrays[0])

    def __len__(self) -> int:
        full, rest = divmod(self.num_samples, self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def __iter__(self) -> Iterator[tuple]:
        n = self.num_samples
        order = get_generator(self._generator).permutation(n) if self.shuffle else None
        for i in range(len(self)):
            start = i * self.batch_size
            rows = slice(start, start + self.batch_size) if order is None else order[start : start + self.batch_size]
            yield tuple(_take(a, rows) for a in self.arrays)


def _take(array, rows):
    if isinstance(array, Tensor) and not isinstance(rows, slice):
        rows = backend.namespace(array.data).asarray(rows)
    elif backend.is_array(array) and not isinstance(rows, slice):
        rows = backend.namespace(array).asarray(rows)
    return array[rows]


def batches(*arrays, batch_size: int, shuffle: bool = False, drop_last: bool = False, generator=None) -> Batches:
    """Mini-batches of the rows of ``arrays`` (numpy arrays, lists or semirad tensors, equally long
    along the first axis): an iterable of tuples with one slice of each array, re-iterable once per
    epoch (and ``len()`` is the number of batches), as ``DataLoader(TensorDataset(*arrays), ...)``.

    ``shuffle`` draws a new order at every iteration from ``generator`` (a ``numpy.random.Generator``
    or an int seed) or else from the default generator that ``sr.manual_seed`` reseeds; ``drop_last``
    drops a last, shorter batch. Arrays come back as arrays of their kind, tensors as tensors (a
    ``getitem``: a gradient reaches the tensor). Every batch is a tuple, even of one array.

    >>> import numpy as np, semirad as sr
    >>> x = np.arange(6.0)
    >>> [xb.tolist() for (xb,) in sr.data.batches(x, batch_size=4, shuffle=True, generator=0, drop_last=True)]
    [[3.0, 2.0, 5.0, 4.0]]
    """
    if not arrays:
        raise TypeError("batches: needs at least one array")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batches: batch_size must be a positive integer, got {batch_size!r}")
    arrays = tuple(a if isinstance(a, Tensor) or backend.is_array(a) else np.asarray(a) for a in arrays)
    shapes = [tuple(a.shape) for a in arrays]
    if any(len(s) == 0 for s in shapes) or len({s[0] for s in shapes}) != 1:
        raise ValueError(f"batches: the arrays must have the same length along their first axis, got shapes {shapes}")
    return Batches(arrays, int(batch_size), bool(shuffle), bool(drop_last), generator)
