"""Element ids: what a backpointer holds besides the global id of a vertex (lowest layer: the
compiled kernels use them too), and the compact int32 form in which a sweep keeps them.

A sweep keeps one backpointer per element of every vertex it visits (MaxAbsProduct: the global id
of the next vertex; LogMaxAbs/KBest: the code ``gid * k + rank``). Where every id the sweep
can hold lies below :data:`COMPACT_BELOW` (it knows: each kept id names an element of a vertex
entered before), :func:`compact` stores them as int32, half the memory of the int64 ids the
kernels propagate. Readers never look at that form: ``semiring.backpointers(kept)``
(:func:`widen`) gives int64 ids with the real sentinels back (and ``result.raw(t)`` a leaf's
ids, which MaxAbsProduct holds compact where the one vertex that reads the leaf made them so).
"""

from __future__ import annotations

import numpy as np

#: backpointer of an element that has no path to the output (sorts after every real id)
NO_PATH = np.iinfo(np.int64).max
#: backpointer stored at the output itself: the path ends here
END = -1

#: kept backpointers are compacted to int32 where every real id lies below this (2**31: an id
#: truncated to 32 bits is itself; tests lower it to exercise the int64 fallback)
COMPACT_BELOW = 2**31
#: kept backpointers of fewer elements stay int64: compacting them (an ``astype`` and a lookup per
#: vertex, about 1.5 µs) costs more than the at most 256 bytes it saves (docs/design.md, "Compact
#: backpointers"; tests set it to 0 to compact every array)
COMPACT_MIN_ELEMENTS = 64
#: ``NO_PATH`` in compact backpointers (what ``astype(int32)`` makes of it: its low 32 bits)
NO_PATH32 = -1

_INT64, _INT32 = np.dtype(np.int64), np.dtype(np.int32)


def compact(xp, ids, bound: int):
    """The int64 backpointers ``ids`` in the form a sweep keeps them: int32 where ``bound`` (one
    past every real id that ``ids`` may hold; 0 or less: not known) is at most
    :data:`COMPACT_BELOW` and ``ids`` has :data:`COMPACT_MIN_ELEMENTS` elements or more, else ``ids``
    itself.

    One ``astype`` (the layout kept: a transposed array stays F-contiguous; a broadcast view stays
    a view of the compacted elements it repeats). Real ids are unchanged and ``NO_PATH`` becomes
    :data:`NO_PATH32`; ``END`` would become ``NO_PATH32`` too, so ``ids`` must not hold it: only
    the output's backpointers do (the seed's), and a sweep enters the output first, with ``bound``
    0. :func:`widen` reverses it.

    >>> ids = np.arange(100)
    >>> ids[1] = NO_PATH
    >>> kept = compact(np, ids, 100)
    >>> kept.dtype.name, kept[:3].tolist(), bool((widen(kept) == ids).all())
    ('int32', [0, -1, 2], True)
    >>> compact(np, np.array([3, NO_PATH]), 4).dtype.name   # a few elements: as they are
    'int64'
    >>> compact(np, ids, COMPACT_BELOW + 1).dtype.name   # ids past int32: as they are
    'int64'
    """
    if bound <= 0 or bound > COMPACT_BELOW or ids.dtype is not _INT64 or ids.size < COMPACT_MIN_ELEMENTS:
        return ids  # (``is``: 0.1 µs less a vertex)
    if ids.size > 1 and 0 in ids.strides:  # a broadcast view: compact the elements it repeats
        core = ids[tuple([slice(0, 1) if s == 0 else slice(None) for s in ids.strides])]
        return xp.broadcast_to(core.astype(_INT32), ids.shape)
    return ids.astype(_INT32)


def widen(kept):
    """Kept backpointers (or any selection of them: it works elementwise) as int64 ids with the
    sentinels ``NO_PATH`` and ``END``: a :func:`compact` array widened, an int64 one as it is.

    >>> widen(np.array([5, NO_PATH32], dtype=np.int32)).tolist() == [5, NO_PATH]
    True
    >>> int(widen(np.array([2, -1], dtype=np.int32)[1])) == NO_PATH, int(widen(np.array([END]))[0]) == END
    (True, True)
    """
    if kept.dtype != np.int32:
        return kept
    if isinstance(kept, np.generic):  # one element read out of a kept numpy array
        one = int(kept)
        return np.int64(NO_PATH if one == NO_PATH32 else one)
    wide = kept.astype(np.int64)  # (an array of any shape, 0-d included: it stays one, on its device)
    wide[kept == NO_PATH32] = NO_PATH
    return wide
