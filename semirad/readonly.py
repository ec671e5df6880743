"""Read-only arrays: what keeps a recorded graph equal to the forward it recorded.

Every array a tensor holds, and every array an op keeps for its backward, is read-only (numpy's
``writeable`` flag), so an in-place write to it raises at once instead of changing a gradient
later. Tensors change only by getting a new array (``t.data = ...``, an optimizer step, an
``nn.init`` function): graphs recorded before keep the old one. A caller's writable array that
an op keeps is copied first. cupy arrays have no such flag: on the GPU only the copies apply
(docs/design.md, "Threads and in-place edits").
"""

from __future__ import annotations

import numpy as np

from . import backend


def is_frozen(array) -> bool:
    """True when no one can write to ``array``'s memory through numpy: it and every array it is a
    view of are read-only (a view of ``bytes`` counts as read-only too).

    >>> a = np.zeros(3)
    >>> is_frozen(a), is_frozen(freeze(a))
    (False, True)
    """
    while isinstance(array, np.ndarray):
        if array.flags.writeable:
            return False
        array = array.base
    return array is None or isinstance(array, bytes)


def freeze(array):
    """Make ``array`` read-only in place and return it; a view of writable memory is replaced by a
    read-only copy (its owner could still write through it). Non-numpy arrays come back as they are.

    >>> a = freeze(np.arange(3.0))
    >>> a.flags.writeable
    False
    >>> view = np.arange(4.0)[1:]
    >>> frozen = freeze(view)
    >>> frozen is view, frozen.flags.writeable, view.flags.writeable
    (False, False, True)
    """
    if type(array) is not np.ndarray:
        return array
    base = array.base
    if base is None:
        array.setflags(write=False)
        return array
    if is_frozen(base):
        if array.flags.writeable:
            array.setflags(write=False)
        return array
    return freeze(array.copy())


def protected(value):
    """``value`` itself where no one can change it later (a number, a read-only array, a tensor),
    else a read-only copy: what an op keeps from a caller's array.

    >>> a = np.ones(2)
    >>> kept = protected(a)
    >>> a[0] = 5.0
    >>> kept.tolist(), kept is protected(kept)
    ([1.0, 1.0], True)
    """
    if type(value) is np.ndarray:
        return value if is_frozen(value) else freeze(value.copy())
    if backend.is_array(value):  # cupy: no read-only flag, so a copy, on the array's GPU (cupy's copy()
        with backend.device_scope(value):  # makes it on the current one)
            return value.copy()
    return value
