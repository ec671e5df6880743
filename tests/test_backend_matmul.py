"""The fast paths for large numpy arrays: the backend's blocked ``matmul`` and tiled bias ``add``,
and the in-place ``scale_temporary`` of elementwise backward rules. Each must give what the plain
expression gives: ``add`` and ``scale_temporary`` the same bits, ``matmul`` the same up to the
rounding of a BLAS call of another size (blocks of rows) or of partial sums added in order (blocks
of the reduction)."""

from __future__ import annotations

import numpy as np
import pytest

import semirad as sr
from semirad import fast
from semirad.semirings import Count, Entropy, KBest, LogMaxAbs, MaxAbsProduct, SumAbs, SumProduct


def close(a, b, k):
    """Equal up to BLAS rounding: k products summed per element."""
    assert a.shape == b.shape and a.dtype == b.dtype
    eps = np.finfo(a.dtype).eps
    np.testing.assert_allclose(a, b, rtol=0, atol=4 * k * eps * max(1.0, float(np.abs(b).max(initial=0.0))))


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocking thresholds small enough that small test shapes take the blocked paths: blocks of at
    most 600 products, at least 4 rows or reduction steps each."""
    monkeypatch.setattr(fast, "_DIRECT_GEMM", 600)
    monkeypatch.setattr(fast, "_MIN_BLOCK", 4)
    monkeypatch.setattr(fast, "_MIN_ELEMENTS", 1)
    monkeypatch.setattr(fast, "_COPY_ROWS", 1)


# -- matmul -----------------------------------------------------------------------------------------

SHAPES = [  # (m, k, n)
    (97, 5, 7),  # tall, rows not a multiple of the block
    (100, 6, 5),  # tall, even blocks
    (3, 301, 4),  # a long reduction
    (2, 700, 1),  # reduction to a column
    (1, 1000, 1),  # a dot product
    (40, 30, 20),  # neither: one call
    (5, 4, 3),  # small: one call
    (0, 5, 3),
    (5, 0, 3),
    (5, 3, 0),
]


@pytest.mark.parametrize("m,k,n", SHAPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("layout", ["CC", "CF", "FC", "FF"])
def test_blocked_matmul_is_matmul(small_blocks, m, k, n, dtype, layout):
    rng = np.random.default_rng([m, k, n])
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    a = np.asfortranarray(a) if layout[0] == "F" else a
    b = np.asfortranarray(b) if layout[1] == "F" else b
    out = fast.matmul(a, b)
    close(out, a @ b, k)
    assert out.flags.c_contiguous


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_blocked_matmul_of_views(small_blocks, dtype):
    rng = np.random.default_rng(0)
    W = rng.standard_normal((6, 5)).astype(dtype)
    x = rng.standard_normal((200, 6)).astype(dtype)
    g = rng.standard_normal((200, 5)).astype(dtype)
    close(fast.matmul(g, W.T), g @ W.T, 5)  # a transposed weight (copied)
    close(fast.matmul(x[::2], W), x[::2] @ W, 6)  # strided rows
    close(fast.matmul(x[:, 1:], W[1:]), x[:, 1:] @ W[1:], 5)  # column slices
    close(fast.matmul(g.T, x), g.T @ x, 200)  # the weight gradient: a long reduction
    close(fast.matmul(x.T[:, ::3], g[::3]), x.T[:, ::3] @ g[::3], 67)
    row = np.broadcast_to(x[:1], (200, 6))  # a stride-0 operand
    close(fast.matmul(row, W), row @ W, 6)
    col = np.broadcast_to(W[:, :1], (6, 5))
    close(fast.matmul(x, col), x @ col, 6)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_reduction_blocks_capped_by_bytes(small_blocks, monkeypatch, dtype):
    monkeypatch.setattr(fast, "_DIRECT_GEMM", 10**6)
    monkeypatch.setattr(fast, "_REDUCTION_BLOCK_BYTES", 2000)  # 2000 // (7 * itemsize) steps
    rng = np.random.default_rng(12)
    a, b = rng.standard_normal((3, 5000)).astype(dtype), rng.standard_normal((5000, 4)).astype(dtype)
    close(fast.matmul(a, b), a @ b, 5000)
    close(fast.matmul(np.asfortranarray(a), b), a @ b, 5000)


def test_matmul_leaves_other_cases_to_at(small_blocks):
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((50, 6)), rng.standard_normal((6, 4))
    ints = np.arange(300).reshape(50, 6)
    np.testing.assert_array_equal(fast.matmul(ints, ints.T[:, :4] % 7), ints @ (ints.T[:, :4] % 7))
    np.testing.assert_array_equal(fast.matmul(a.astype(np.float32), b), a.astype(np.float32) @ b)  # mixed
    batched = rng.standard_normal((3, 6, 50)).swapaxes(1, 2)  # a stack that is not C-contiguous
    np.testing.assert_array_equal(fast.matmul(batched, b), batched @ b)
    np.testing.assert_array_equal(fast.matmul(np.ascontiguousarray(batched), b.astype(np.float32)),
                                  np.ascontiguousarray(batched) @ b.astype(np.float32))  # mixed dtypes
    np.testing.assert_array_equal(fast.matmul(batched, batched.swapaxes(1, 2)), batched @ batched.swapaxes(1, 2))
    np.testing.assert_array_equal(fast.matmul(a, b[:, 0]), a @ b[:, 0])
    np.testing.assert_array_equal(fast.matmul(a[0], b), a[0] @ b)
    complex_a = a + 1j
    np.testing.assert_array_equal(fast.matmul(complex_a, b.astype(complex)), complex_a @ b.astype(complex))
    class Sub(np.ndarray):
        pass

    sub = a.view(Sub)  # a subclass keeps its own @
    assert type(fast.matmul(sub, b)) is Sub


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("lead,m,k,n", [((200,), 16, 32, 256), ((4, 3), 7, 33, 65), ((5,), 1, 20, 3), ((0,), 4, 3, 2),
                                        ((2,), 0, 3, 2), ((2,), 4, 0, 2), ((2, 3), 4, 3, 0)])
def test_stack_times_matrix_is_one_product_of_its_rows(lead, m, k, n, dtype):
    """A C-contiguous stack of matrices times one matrix: the bits of one product of the stack's rows
    (as PyTorch's ``matmul``), close to numpy's product matrix by matrix, for a weight and its
    transpose, and empty stacks of every kind with their shapes."""
    rng = np.random.default_rng(3)
    a = rng.standard_normal(lead + (m, k)).astype(dtype)
    w = rng.standard_normal((n, k)).astype(dtype)
    for b in (w.T, np.ascontiguousarray(w.T)):
        out = fast.matmul(a, b)
        assert out.shape == lead + (m, n) and out.dtype == dtype
        rows = a.reshape(int(np.prod(lead)) * m, k) @ b
        np.testing.assert_array_equal(out, rows.reshape(out.shape))
        close(out, a @ b, max(k, 1))


@pytest.mark.parametrize("m,k,n", [(16384, 20, 20), (20, 16384, 20), (3001, 20, 10), (16384, 10, 1)])
def test_matmul_at_real_thresholds(m, k, n):
    """The shapes of the batch benchmark, with the thresholds as they are."""
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((m, k)), rng.standard_normal((k, n))
    close(fast.matmul(a, b), a @ b, k)
    if m > k:
        bt = np.ascontiguousarray(b.T).T  # a transposed weight, as in g @ W.T
        close(fast.matmul(a, bt), a @ bt, k)
    # a row block gives the same bits as the product of that block alone
    rows = fast._DIRECT_GEMM // (k * n)
    if m > rows >= fast._MIN_BLOCK:
        blocks = -(-m // rows)
        rows = -(-m // blocks)
        np.testing.assert_array_equal(fast.matmul(a, b)[:rows], a[:rows] @ b)


# -- add --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shape,n",
    [((200, 20), 20), ((203, 20), 20), ((7, 11, 3), 3), ((5, 2), 2), ((100, 64), 64), ((50, 65), 65), ((9, 1), 1)],
)
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64])
def test_tiled_add_is_add(monkeypatch, shape, n, dtype):
    monkeypatch.setattr(fast, "_TILE_MIN_ELEMENTS", 1)
    monkeypatch.setattr(fast, "_TILE_WIDTH", 40)
    rng = np.random.default_rng(3)
    a = (rng.standard_normal(shape) * 100).astype(dtype)
    v = (rng.standard_normal(n) * 100).astype(dtype)
    for x, y in ((a, v), (v, a)):
        out = fast.add(np, x, y)
        expected = x + y
        assert out.dtype == expected.dtype and out.shape == expected.shape
        np.testing.assert_array_equal(out, expected)


def test_add_leaves_other_cases_to_plus(monkeypatch):
    monkeypatch.setattr(fast, "_TILE_MIN_ELEMENTS", 1)
    rng = np.random.default_rng(4)
    a, v = rng.standard_normal((30, 4)), rng.standard_normal(4)
    cases = [
        (a, 2.0), (2.0, a), (a, a), (a.T, v[:1]), (a[:, ::2], v[:2]), (np.asfortranarray(a), v),
        (a, v.astype(np.float32)), (a[:, :0], v[:0]), (a, v[:1]), (a[:, :1], v),
    ]
    for x, y in cases:
        expected = x + y
        out = fast.add(np, x, y)
        assert out.dtype == expected.dtype and out.shape == expected.shape
        np.testing.assert_array_equal(out, expected)
    nan = np.array([np.nan, 1.0, np.inf, -np.inf])
    np.testing.assert_array_equal(fast.add(np, np.tile(nan, (50, 1)), nan), np.tile(nan, (50, 1)) + nan)


def test_add_at_real_thresholds():
    rng = np.random.default_rng(5)
    for rows in (16384, 16383, 7000):
        a, v = rng.standard_normal((rows, 20)), rng.standard_normal(20)
        np.testing.assert_array_equal(fast.add(np, a, v), a + v)
        np.testing.assert_array_equal(fast.add(np, v, a), v + a)
    x = sr.tensor(a, requires_grad=True)
    np.testing.assert_array_equal((x + v).numpy(), a + v)  # the add op goes through it


# -- scale_temporary --------------------------------------------------------------------------------


def test_sum_product_scales_a_temporary_in_place():
    S = SumProduct()
    rng = np.random.default_rng(6)
    g = rng.standard_normal((300, 20))
    g_before = g.copy()
    w = rng.standard_normal((300, 20))
    expected = g * w
    out = S.scale_temporary(g, w)
    assert out is w  # written into the temporary
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(g, g_before)  # never into the gradient


@pytest.mark.parametrize(
    "make",
    [
        lambda g, w: w.astype(np.float32),  # another dtype: the product is float64
        lambda g, w: w[:1],  # broadcasting against g
        lambda g, w: np.broadcast_to(w[:1], w.shape),  # read-only
        lambda g, w: 3.0,  # a number
        lambda g, w: w[:10],  # small: not worth the checks
    ],
)
def test_sum_product_scale_temporary_falls_back(make):
    S = SumProduct()
    rng = np.random.default_rng(7)
    g = rng.standard_normal((300, 20))
    w = make(g, rng.standard_normal((300, 20)))
    gg = g[: np.shape(w)[0]] if np.ndim(w) and np.shape(w)[0] == 10 else g
    expected = gg * w
    out = S.scale_temporary(gg, w)
    assert out is not w
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("S", [SumProduct(), SumAbs(), Count(), MaxAbsProduct(), LogMaxAbs(), KBest(2), Entropy()])
def test_scale_temporary_is_scale(S):
    rng = np.random.default_rng(8)
    x = sr.tensor(rng.standard_normal((80, 60)), requires_grad=True)
    w = rng.standard_normal((80, 60))
    g = S.seed(rng.standard_normal((80, 60)))
    expected = S.scale(g, w)
    out = S.scale_temporary(g, w.copy())
    for a, b in zip(*(v if isinstance(v, tuple) else (v,) for v in (out, expected)), strict=True):
        np.testing.assert_array_equal(a, b)
    # and through an op: tanh's partial is the temporary
    y = x.tanh()
    seed = rng.standard_normal((80, 60))
    seed_before, y_before = seed.copy(), y.data.copy()
    r = sr.backward(y, [x], semiring=S, seed=seed)
    np.testing.assert_array_equal(seed, seed_before)
    np.testing.assert_array_equal(y.data, y_before)
    if isinstance(S, SumProduct) and type(S) is SumProduct:
        np.testing.assert_array_equal(r[x], seed * (1.0 - y_before * y_before))


def test_tanh_backward_never_writes_into_a_value_it_shares():
    """The output's gradient reaches ``tanh`` through ``+`` (one array for both inputs) and the seed
    is the user's: the in-place product must write into neither."""
    rng = np.random.default_rng(9)
    x = sr.tensor(rng.standard_normal((200, 30)), requires_grad=True)
    a, b = x.tanh(), (x * 2.0).tanh()
    out = a + b
    seed = rng.standard_normal((200, 30))
    keep = seed.copy()
    gx = sr.backward(out, [x], seed=seed)[x]
    np.testing.assert_array_equal(seed, keep)
    expected = seed * (1.0 - a.data * a.data) + seed * (1.0 - b.data * b.data) * 2.0
    np.testing.assert_allclose(gx, expected, rtol=1e-14)


UNARY = {  # op: (input in its domain, the partial from x and y)
    "log": (lambda x: np.abs(x) + 0.5, lambda x, y: 1.0 / x),
    "tanh": (lambda x: x, lambda x, y: 1.0 - y * y),
    "sigmoid": (lambda x: x, lambda x, y: fast.sigmoid_partial_reference(np, x, y)),
    "relu": (lambda x: x, lambda x, y: (x > 0).astype(y.dtype)),
    "abs": (lambda x: x, lambda x, y: np.sign(x)),
    "sqrt": (lambda x: np.abs(x) + 0.5, lambda x, y: 0.5 / y),
    "sin": (lambda x: x, lambda x, y: np.cos(x)),
    "cos": (lambda x: x, lambda x, y: -np.sin(x)),
    "exp": (lambda x: x, lambda x, y: y),
}


@pytest.mark.parametrize("name", sorted(UNARY))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_unary_backward_in_place_is_seed_times_partial(name, dtype):
    """Large enough for the in-place product: the same bits as ``seed * partial``, and neither the
    input, the output nor the seed written."""
    domain, partial = UNARY[name]
    rng = np.random.default_rng(11)
    x0 = domain(rng.standard_normal((100, 70))).astype(dtype)
    x = sr.tensor(x0.copy(), requires_grad=True)
    y = getattr(x, name)()
    seed = rng.standard_normal((100, 70)).astype(dtype)
    keep_seed, keep_y = seed.copy(), y.data.copy()
    got = sr.backward(y, [x], seed=seed)[x]
    np.testing.assert_array_equal(got, seed * partial(x0, keep_y))
    np.testing.assert_array_equal(x.data, x0)
    np.testing.assert_array_equal(y.data, keep_y)
    np.testing.assert_array_equal(seed, keep_seed)
    for p, q in ((2.0, lambda x: 2.0 * x), (0.0, np.zeros_like)):
        got = sr.backward(x**p, [x], seed=seed)[x]
        np.testing.assert_array_equal(got, seed * q(x0).astype(dtype))
    np.testing.assert_array_equal(x.data, x0)


# -- end to end -------------------------------------------------------------------------------------


def numpy_mlp_grads(x, params):
    """The batch benchmark's network (matmul, bias, tanh; loss mean(y**2)) by hand, with plain @."""
    hs, zs = [x], []
    for i in range(0, len(params), 2):
        z = hs[-1] @ params[i] + params[i + 1]
        zs.append(z)
        hs.append(np.tanh(z) if i + 2 < len(params) else z)
    y = hs[-1]
    g = 2.0 * y / y.size
    grads = [None] * len(params)
    for i in range(len(params) - 2, -1, -2):
        if i + 2 < len(params):
            g = g * (1.0 - hs[i // 2 + 1] ** 2)
        grads[i + 1] = g.sum(axis=0)
        grads[i] = hs[i // 2].T @ g
        g = g @ params[i].T
    return grads


@pytest.mark.parametrize("batch", [5000, 64])
def test_mlp_gradient_through_the_fast_paths(batch):
    rng = np.random.default_rng(10)
    dims = [10, 20, 20, 20, 10]
    params = []
    for i in range(len(dims) - 1):
        params.append(rng.standard_normal((dims[i], dims[i + 1])) / np.sqrt(dims[i]))
        params.append(0.1 * rng.standard_normal(dims[i + 1]))
    x = rng.standard_normal((batch, dims[0]))
    ts = [sr.tensor(p, requires_grad=True) for p in params]
    h = sr.tensor(x)
    for i in range(0, len(ts), 2):
        h = h @ ts[i] + ts[i + 1]
        if i + 2 < len(ts):
            h = h.tanh()
    loss = (h * h).mean()
    got = sr.grad(loss, ts)
    for a, b in zip(got, numpy_mlp_grads(x, params), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-15)


# -- small products go through np.dot: the same bits as @, and @'s rules where dot's differ ----------
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64])
def test_small_products_are_ats_bits_for_every_layout(dtype):
    rng = np.random.default_rng(11)
    for _ in range(200):
        m, k, n = (int(d) for d in rng.integers(1, 40, 3))
        a = (rng.standard_normal((m, k)) * 8).astype(dtype)
        b = (rng.standard_normal((k, n)) * 8).astype(dtype)
        v = (rng.standard_normal(k) * 8).astype(dtype)
        layouts = [
            (a, b),
            (np.asfortranarray(a), b),
            (a, np.asfortranarray(b)),
            (np.ascontiguousarray(a.T).T, np.ascontiguousarray(b.T).T),  # transposed views
            (np.repeat(a, 2, axis=1)[:, ::2], b),  # strided views: @ itself runs
            (a, np.repeat(b, 2, axis=0)[::2]),
            (np.repeat(v, 2)[::2], b),
            (a, v[:, None] * np.ones(n, dtype)),
            (a, v),  # matrix-vector
            (v, b),  # vector-matrix
            (v, v),  # inner product
        ]
        for x, y in layouts:
            got = fast.matmul(x, y)
            want = x @ y
            assert type(got) is type(want) and np.asarray(got).dtype == np.asarray(want).dtype
            assert np.array_equal(got, want)


def test_products_dot_would_read_otherwise_keep_ats_meaning():
    rng = np.random.default_rng(12)
    a, b = rng.standard_normal((3, 4, 5)), rng.standard_normal((3, 5, 2))
    assert np.array_equal(fast.matmul(a, b), a @ b)  # batched, where np.dot would pair every batch
    assert np.array_equal(fast.matmul(a, b[0]), a @ b[0])
    with pytest.raises(ValueError):
        fast.matmul(np.float64(2.0) * np.ones(()), np.ones(3))  # @ refuses 0-d operands, dot would scale
