"""Fuzz: random op sequences, then random in-place edits of every array a user can reach; each
result (gradients, trace values, every path's value and weights) either equals the edit-free one
bit for bit or the edit raises."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import semirad as sr

SHAPE = (2, 3)

# each op: (name, how many earlier tensors it takes, fn(tensors, raw arrays) -> tensor)
OPS = [
    ("tanh", 1, lambda t, r: t[0].tanh()),
    ("exp", 1, lambda t, r: (t[0] * 0.1).exp()),
    ("sigmoid", 1, lambda t, r: t[0].sigmoid()),
    ("relu", 1, lambda t, r: t[0].relu()),
    ("abs", 1, lambda t, r: t[0].abs()),
    ("mul", 2, lambda t, r: t[0] * t[1]),
    ("add", 2, lambda t, r: t[0] + t[1]),
    ("maximum", 2, lambda t, r: sr.maximum(t[0], t[1])),
    ("mul raw", 1, lambda t, r: t[0] * r["scale"]),
    ("raw sub", 1, lambda t, r: r["shift"] - t[0]),
    ("div raw", 1, lambda t, r: t[0] / r["divisor"]),
    ("matmul raw", 1, lambda t, r: (t[0] @ r["matrix"]).reshape(SHAPE)),
    ("gather", 1, lambda t, r: t[0][r["rows"]].reshape(SHAPE)),
    ("where", 2, lambda t, r: sr.where(r["mask"], t[0], t[1])),
    ("clip", 1, lambda t, r: sr.clip(t[0], r["low"], None)),
    ("max", 1, lambda t, r: t[0] - t[0].amax(axis=1, keepdims=True)),
    ("softmax", 1, lambda t, r: sr.softmax(t[0], axis=1)),
    ("transpose", 1, lambda t, r: t[0].transpose(0, 1).transpose(0, 1)),
]


def _raw_arrays(rng):
    return {
        "scale": rng.standard_normal(SHAPE),
        "shift": rng.standard_normal(SHAPE),
        "divisor": rng.uniform(1.0, 2.0, SHAPE),
        "matrix": rng.standard_normal((3, 3)),
        "rows": rng.integers(0, 2, size=2),
        "mask": rng.random(SHAPE) > 0.5,
        "low": rng.standard_normal(SHAPE),
    }


def _forward(program, seed):
    """Run ``program`` on fresh arrays drawn from ``seed``: the leaves, the raw arrays, every tensor and the loss."""
    rng = np.random.default_rng(seed)
    leaves = [sr.tensor(rng.standard_normal(SHAPE), requires_grad=True, name=f"w{i}") for i in range(2)]
    raw = _raw_arrays(rng)
    tensors = list(leaves)
    for op_index, picks in program:
        _, arity, fn = OPS[op_index]
        tensors.append(fn([tensors[p % len(tensors)] for p in picks[:arity]], raw))
    loss = sum((t * float(k + 1)).sum() for k, t in enumerate(tensors[2:])) + leaves[0].sum() + leaves[1].sum()
    return leaves, raw, tensors, loss


def _readings(leaves, loss):
    """Everything a user reads from the graph: gradients, trace values, every best path."""
    grads = [g.copy() for g in sr.grad(loss, leaves)]
    tr = sr.trace(loss, leaves)
    values = [tr[w].copy() for w in leaves]
    paths = [
        (p.value, tuple(p.weights), tuple(p.steps))
        for w in leaves
        for p in (tr.path(w, i) for i in np.ndindex(*SHAPE))
    ]
    return grads, values, paths


def _edit(kind, target, rng, leaves, raw, tensors):
    """One in-place edit as a careless user would write it; True when numpy refused it (read-only)."""
    try:
        if kind == "leaf data":
            leaves[target % 2].data[...] = rng.standard_normal(SHAPE)
        elif kind == "tensor data":
            tensors[target % len(tensors)].data[...] = 7.0
        elif kind == "numpy()":
            tensors[target % len(tensors)].numpy()[...] = -3.0
        elif kind == "raw array":
            name = sorted(raw)[target % len(raw)]
            array = raw[name]
            whole = array.dtype.kind in "ib"
            array[...] = rng.integers(0, 2, array.shape) if whole else rng.standard_normal(array.shape)
        elif kind == "replace data":
            leaves[target % 2].data = rng.standard_normal(SHAPE)
        elif kind == "optimizer step":
            leaves[target % 2].grad = np.ones(SHAPE)
            sr.optim.SGD([leaves[target % 2]], lr=0.5).step()
    except ValueError as error:
        assert "read-only" in str(error)
        return True
    return False


EDITS = ["leaf data", "tensor data", "numpy()", "raw array", "replace data", "optimizer step"]
programs = st.lists(
    st.tuples(st.integers(0, len(OPS) - 1), st.lists(st.integers(0, 50), min_size=2, max_size=2)),
    min_size=1,
    max_size=8,
)
edits = st.lists(st.tuples(st.sampled_from(EDITS), st.integers(0, 50)), min_size=1, max_size=6)


@settings(max_examples=60, deadline=None)
@given(program=programs, edit_list=edits, seed=st.integers(0, 2**16))
def test_edits_after_the_forward_never_change_a_result(program, edit_list, seed):
    leaves, _, _, loss = _forward(program, seed)
    expected = _readings(leaves, loss)

    leaves, raw, tensors, loss = _forward(program, seed)
    rng = np.random.default_rng(seed + 1)
    refused = [_edit(kind, target, rng, leaves, raw, tensors) for kind, target in edit_list]
    for (kind, _), was_refused in zip(edit_list, refused):
        assert was_refused == (kind in ("leaf data", "tensor data", "numpy()"))
    got = _readings(leaves, loss)
    for a, b in zip(got[0] + got[1], expected[0] + expected[1]):
        np.testing.assert_array_equal(a, b)
    assert got[2] == expected[2]
