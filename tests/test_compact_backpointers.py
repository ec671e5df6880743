"""Compact backpointers (:func:`semirad.ids.compact`): a sweep keeps its backpointers as int32
where every id fits, int64 otherwise, and every reader gets the same int64 ids either way
(``semiring.backpointers``): paths, walks and component importance are identical."""

from __future__ import annotations

import numpy as np
import pytest

import semirad as sr
from semirad import ids
from semirad.analysis import component_importance
from semirad.semirings import KBest, LogMaxAbs

SEMIRINGS = {
    "trace": None,
    "k-best": lambda: KBest(3),
    "log-max-abs": LogMaxAbs,
}


@pytest.fixture(autouse=True)
def compact_every_array(monkeypatch):
    """The model is small: every kept array is compacted here, whatever its size (the size threshold
    has its own test below)."""
    monkeypatch.setattr(ids, "COMPACT_MIN_ELEMENTS", 0)


def model(seed=0):
    """A small LSTM and a dense head, in components: ``(loss, inputs)`` (the parameters and a
    tensor with dead ends). Its kept backpointers include C- and F-contiguous arrays (a transposed
    weight), broadcast views (a sum's) and dead ends."""
    rng = np.random.default_rng(seed)
    sr.manual_seed(seed)
    lstm = sr.nn.LSTM(3, 4)
    head = sr.nn.Linear(4, 2)
    x = sr.tensor(rng.standard_normal((5, 2, 3)))
    with sr.component("lstm"):
        out = lstm(x)
        out = out[0] if isinstance(out, tuple) else out
    with sr.component("head"):
        y = head(out).tanh()
        doubled = out * 2.0  # only its first time step reaches the loss: the later ones are dead ends
    with sr.component("loss"):
        loss = (y * y).mean() + (y[0] * 0.0).sum() + doubled[0].sum()  # parallel edges, partials exactly 0
    return loss, list(lstm.parameters()) + list(head.parameters()) + [doubled]


def sweep(name, limit=None, monkeypatch=None):
    before = ids.COMPACT_BELOW
    if limit is not None:
        monkeypatch.setattr(ids, "COMPACT_BELOW", limit)
    loss, params = model()
    result = sr.trace(loss, params) if SEMIRINGS[name] is None else sr.backward(loss, params, SEMIRINGS[name]())
    if limit is not None:
        monkeypatch.setattr(ids, "COMPACT_BELOW", before)
    return result, params


def dtypes(result) -> set:
    """The dtypes of the backpointers kept at op vertices other than the output (the output keeps the
    seed's ``END``s as int64, leaves the array of their value)."""
    return {str(kept.dtype) for node, kept in result.sweep.kept.items()
            if node.op is not None and node is not result.sweep.root}  # fmt: skip


def paths_of(result, params) -> list:
    out = []
    ranks = getattr(result.semiring, "k", 1)
    for p in params:
        for index in np.ndindex(p.shape):
            for rank in range(ranks):
                try:
                    path = result.path(p, index, rank) if ranks > 1 else result.path(p, index)
                except ValueError as e:  # no path (of that rank)
                    out.append(str(e))
                    continue
                out.append(([tuple(s) for s in path.steps], path.weights, path.value))
                walked = [(node.op_name, node.shape, flat, r) for node, flat, r in result.walk(p, index, rank)]
                out.append(walked)
    return out


def importance_of(result, params) -> list:
    found = [component_importance(result, params), component_importance(result, params, group="across_time")]
    if getattr(result.semiring, "k", 1) > 1:
        found.append(component_importance(result, params, ranks=[1]))
    return [(imp.counts, imp.paths, imp.elements) for imp in found]


@pytest.mark.parametrize("name", list(SEMIRINGS))
def test_paths_and_importance_are_the_same_with_int32_and_int64_backpointers(name, monkeypatch):
    compact, params = sweep(name)
    wide, wide_params = sweep(name, 0, monkeypatch)  # nothing fits: int64 throughout
    assert dtypes(compact) == {"int32"}
    assert dtypes(wide) == {"int64"}
    # every kept array reads back to the very ids of the int64 sweep
    assert len(compact.sweep.order) == len(wide.sweep.order) == len(compact.sweep.kept)
    for node, twin in zip(compact.sweep.order, wide.sweep.order, strict=True):
        read = compact.semiring.backpointers(compact.sweep.kept[node])
        assert read.dtype == np.int64
        np.testing.assert_array_equal(read, wide.semiring.backpointers(wide.sweep.kept[twin]))
    assert paths_of(compact, params) == paths_of(wide, wide_params)
    assert importance_of(compact, params) == importance_of(wide, wide_params)


def test_the_model_keeps_every_layout_compact():
    """What the test above covers: transposed (F-contiguous) and broadcast backpointers, compacted
    in their own layout (a broadcast view stays a view of its int32 elements)."""
    result, _ = sweep("trace")
    kept = [k for n, k in result.sweep.kept.items() if n.op is not None and n is not result.sweep.root]
    assert any(k.ndim == 2 and k.flags.f_contiguous and not k.flags.c_contiguous for k in kept)
    broadcast = [k for k in kept if k.size > 1 and 0 in k.strides]
    assert broadcast and all(k.dtype == np.int32 and k.base is not None and k.base.size < k.size for k in broadcast)
    assert all(k.dtype == np.int32 for k in kept)


@pytest.mark.parametrize("name", list(SEMIRINGS))
def test_ids_past_the_int32_range_stay_int64(name, monkeypatch):
    """The sweep's largest id decides: with the limit at the number of element ids (times ``k`` for
    codes) every id fits, one less and none is compacted; the results are the same."""
    result, params = sweep(name)
    k = getattr(result.semiring, "k", 1)
    order = result.sweep.order
    n_ids = (result.sweep.base[order[-1]] + int(np.prod(order[-1].shape, dtype=np.int64))) * k
    at_limit, _ = sweep(name, n_ids, monkeypatch)
    past, past_params = sweep(name, n_ids - 1, monkeypatch)
    assert dtypes(at_limit) == {"int32"}
    assert dtypes(past) == {"int64"}
    assert paths_of(past, past_params) == paths_of(result, params)
    assert importance_of(past, past_params) == importance_of(result, params)


def test_compact_and_widen():
    big = 2**31 + 5  # past int32: left as it is
    far = np.array([3, big, ids.NO_PATH])
    assert ids.compact(np, far, big + 1) is far
    assert ids.compact(np, far, 0) is far  # bound not known (the output)
    near = np.array([[0, 2**31 - 1], [ids.NO_PATH, 7]])  # the largest id that fits, and a dead end
    kept = ids.compact(np, near.T, 2**31)
    assert kept.dtype == np.int32 and kept.flags.f_contiguous
    wide = ids.widen(kept)
    assert wide.dtype == np.int64 and wide.flags.f_contiguous
    np.testing.assert_array_equal(wide, near.T)
    assert [int(ids.widen(kept[i, j])) for i, j in np.ndindex(kept.shape)] == near.T.reshape(-1).tolist()
    assert ids.widen(near) is near  # int64: already the ids
    view = np.broadcast_to(np.array([[4], [ids.NO_PATH]]), (2, 3))
    kept = ids.compact(np, view, 5)
    assert kept.dtype == np.int32 and kept.strides[1] == 0 and kept.base.size == 2
    np.testing.assert_array_equal(ids.widen(kept), view)
    assert ids.widen(np.zeros((0, 2), dtype=np.int32)).shape == (0, 2)


@pytest.mark.parametrize("name", list(SEMIRINGS))
def test_small_arrays_stay_int64_and_read_the_same(name, monkeypatch):
    """Below ``COMPACT_MIN_ELEMENTS`` elements kept backpointers are not compacted (the astype costs
    more than it saves), above they are; either way they read back to the same ids and paths."""
    compact, params = sweep(name)
    monkeypatch.setattr(ids, "COMPACT_MIN_ELEMENTS", 7)
    mixed, mixed_params = sweep(name)
    sizes = {str(kept.dtype): set() for kept in mixed.sweep.kept.values()}
    for node, kept in mixed.sweep.kept.items():
        if node.op is not None and node is not mixed.sweep.root:
            sizes.setdefault(str(kept.dtype), set()).add(kept.size)
    assert sizes["int32"] and min(sizes["int32"]) >= 7
    assert sizes["int64"] and max(sizes["int64"]) < 7
    for node, twin in zip(compact.sweep.order, mixed.sweep.order, strict=True):
        np.testing.assert_array_equal(compact.semiring.backpointers(compact.sweep.kept[node]),
                                      mixed.semiring.backpointers(mixed.sweep.kept[twin]))  # fmt: skip
    assert paths_of(mixed, mixed_params) == paths_of(compact, params)
