"""The CUDA kernels of MaxAbsProduct (:mod:`semirad.kernels.cuda`), checked with and without a GPU.

Four layers, from the cheapest to the real thing:

1. **compile** — every source (float32, float64) compiles with ``nvcc --ptx -arch=sm_90`` and
   with NVRTC (what cupy uses) where a ``libnvrtc`` can be found; skipped where neither exists.
2. **scheme** — a numpy emulation of each kernel's algorithm (tiled running max + checkpoint +
   rescan, split matrix-vector partials merged in order, three-pass atomic scatter) against the
   backend's numpy reference: the tie rules and the rescan argument, on the CPU.
3. **emulated device** — the *actual CUDA source* compiled as C++ with ``g++`` against a small
   shim (one OS thread per CUDA thread, ``std::barrier`` for ``__syncthreads``, a mutex for
   atomics, per-warp barriers for shuffles), loaded with ctypes behind a fake ``cupy`` module
   (numpy arrays, ``RawModule`` compiling the code it is given): the cupy wrappers and the
   kernels run end to end and must give the reference's bits. Skipped without ``g++``.
4. **GPU** — the same numerical cases on real cupy arrays; skipped without cupy or a device.

Every comparison is bit for bit (``assert_array_equal``) against
:func:`semirad.max_abs_reference.matmul` / :func:`semirad.max_abs_dispatch.scatter` on numpy.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import hashlib
import os
import re
import shutil
import subprocess
import sys
import types
from contextlib import contextmanager

import numpy as np
import pytest

from semirad import backend
from semirad.kernels import cuda
from semirad.kernels import cuda_sources as S
from semirad.semirings.max_abs import dispatch as max_abs_dispatch
from semirad.semirings.max_abs import reference as max_abs_reference

DTYPES = [np.float32, np.float64]
NVCC = shutil.which("nvcc")
GXX = shutil.which("g++")


# == 1. compilation ================================================================================
@pytest.mark.skipif(NVCC is None, reason="nvcc not installed")
@pytest.mark.parametrize("dtype", DTYPES)
def test_nvcc_compiles_every_kernel(dtype, tmp_path):
    src = tmp_path / "kernels.cu"
    src.write_text(S.source(dtype))
    ptx = tmp_path / "kernels.ptx"
    res = subprocess.run(
        [NVCC, "--ptx", "-arch=sm_90", *S.OPTIONS, "-o", str(ptx), str(src)], capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr
    assert "warning" not in res.stderr.lower(), res.stderr
    text = ptx.read_text()
    for name in S.KERNELS:
        assert re.search(rf"\.entry\s+{S.kernel_name(name, dtype)}\s*\(", text), name
    # the tiled inner loop: one max per product, |A| and |B| read from shared memory 4 at a time
    tiled = text[text.index(f".entry {S.kernel_name(S.TILED, dtype)}") :]
    tiled = tiled[: tiled.index("\n}\n")]
    suffix = "f32" if dtype == np.float32 else "f64"
    assert tiled.count(f"max.{suffix}") == S.TILE_K * S.THREAD_M * S.THREAD_N
    assert "ld.shared.v" in tiled


def _find_nvrtc():
    candidates = [os.environ.get("SEMIRAD_NVRTC"), ctypes.util.find_library("nvrtc")]
    for base in [os.path.dirname(NVCC or "") + "/../lib64", "/usr/local/cuda/lib64", *sys.path]:
        candidates += sorted(glob.glob(os.path.join(base, "libnvrtc.so*")))
        candidates += sorted(glob.glob(os.path.join(base, "nvidia", "cu*", "lib", "libnvrtc.so*")))
        candidates += sorted(glob.glob(os.path.join(base, "nvidia", "cuda_nvrtc", "lib", "libnvrtc.so*")))
    for c in candidates:
        if c and "builtins" not in c and ".alt." not in c:
            try:
                return ctypes.CDLL(c)
            except OSError:
                continue
    return None


@pytest.mark.parametrize("dtype", DTYPES)
def test_nvrtc_compiles_every_kernel(dtype):
    """What cupy's RawModule does: NVRTC, no headers, the module's options."""
    lib = _find_nvrtc()
    if lib is None:
        pytest.skip("libnvrtc not found (set SEMIRAD_NVRTC to its path)")
    prog = ctypes.c_void_p()
    assert lib.nvrtcCreateProgram(ctypes.byref(prog), S.source(dtype).encode(), b"k.cu", 0, None, None) == 0
    opts = [b"--gpu-architecture=compute_90", *[o.encode() for o in S.OPTIONS]]
    rc = lib.nvrtcCompileProgram(prog, len(opts), (ctypes.c_char_p * len(opts))(*opts))
    size = ctypes.c_size_t()
    lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
    log = ctypes.create_string_buffer(size.value + 1)
    lib.nvrtcGetProgramLog(prog, log)
    lib.nvrtcDestroyProgram(ctypes.byref(prog))
    assert rc == 0, log.value.decode()
    assert "warning" not in log.value.decode().lower(), log.value.decode()


def test_module_imports_without_cupy_and_leaves_numpy_arrays_to_the_reference():
    assert callable(cuda.max_abs_matmul) and callable(cuda.scatter_max_abs)
    assert cuda.NO_PATH == backend.NO_PATH
    # numpy arrays: None, and the dispatch runs the reference (no cupy needed)
    v, w, ids = np.array([[1.0, -3.0]]), np.array([[2.0], [1.0]]), np.array([[10, 11]])
    assert cuda.max_abs_matmul(np, v, ids, w) is None
    got = max_abs_dispatch.matmul(np, v, ids, w)
    assert got[0].tolist() == [[-3.0]] and got[1].tolist() == [[11]]
    pos, val, ids = np.array([2, 0, 2]), np.array([1.0, 5.0, -1.0]), np.array([4, 3, 2])
    assert cuda.scatter_max_abs(np, pos, val, ids, 4) is None
    pairs = zip(max_abs_dispatch.scatter(np, pos, val, ids, 4), max_abs_reference.scatter(np, pos, val, ids, 4))
    for got, want in pairs:
        np.testing.assert_array_equal(got, want)


# == 2. the schemes, emulated in numpy =============================================================
def _better(pv, pj, bv, bj):
    """The kernels' ``better``: NaN beats numbers (first NaN wins), then larger, then smaller j."""
    pn, bn = np.isnan(pv), np.isnan(bv)
    nan_case = pn & (~bn | (pj < bj))
    num_case = (pv > bv) | ((pv == bv) & (pj < bj))
    return np.where(pn | bn, nan_case, num_case)


def _exact_scan(av, aw):
    """The NaN-aware sequential scan over j of every output (the tiled kernel's fallback)."""
    m, n = av.shape
    p = aw.shape[1]
    best = np.full((m, p), -1.0, dtype=av.dtype)
    bj = np.full((m, p), np.iinfo(np.int32).max, dtype=np.int64)
    for j in range(n):
        q = av[:, j, None] * aw[None, j, :]
        take = _better(q, j, best, bj)
        best = np.where(take, q, best)
        bj = np.where(take, j, bj)
    return bj


def emulate_tiled(v, ids, w):
    """The tiled kernel's algorithm on one 2-D problem: returns ``(out_v, out_i)``."""
    m, n = v.shape
    p = w.shape[1]
    bk = S.TILE_K
    with np.errstate(invalid="ignore", over="ignore"):
        av, aw = np.abs(v), np.abs(w)
        run = np.full((m, p), -1, dtype=v.dtype)
        prev = run.copy()
        bt = np.zeros((m, p), dtype=np.int64)
        for s in range(-(-n // bk)):
            j0, j1 = s * bk, min(n, s * bk + bk)
            tile = (av[:, j0:j1, None] * aw[None, j0:j1, :]).max(axis=1)
            if j1 - j0 < bk:  # the zero padding of the last slice takes part in the max
                tile = np.maximum(tile, 0)
            run = np.fmax(run, tile)
            grew = run > prev
            prev = np.where(grew, run, prev)
            bt = np.where(grew, s, bt)
        # rescan the winning slice: first j whose product equals the running max
        jw = bt * bk
        found = np.zeros((m, p), dtype=bool)
        rows = np.arange(m)[:, None]
        cols = np.arange(p)[None, :]
        for q in range(bk):
            j = bt * bk + q
            ok = j < n
            jc = np.minimum(j, n - 1)
            hit = ok & ~found & (av[rows, jc] * aw[jc, cols] == run)
            jw = np.where(hit, j, jw)
            found |= hit
        # blocks (TILE_M x TILE_N) that loaded a non-finite value take the exact scan
        exact = _exact_scan(av, aw)
        for i0 in range(0, m, S.TILE_M):
            for k0 in range(0, p, S.TILE_N):
                a_blk, w_blk = v[i0 : i0 + S.TILE_M], w[:, k0 : k0 + S.TILE_N]
                if not (np.isfinite(a_blk).all() and np.isfinite(w_blk).all()):
                    jw[i0 : i0 + S.TILE_M, k0 : k0 + S.TILE_N] = exact[i0 : i0 + S.TILE_M, k0 : k0 + S.TILE_N]
        out_v = v[rows, jw] * w[jw, cols]
    return out_v, np.broadcast_to(ids, v.shape)[rows, jw]


def emulate_mv(a, x, ids_of, lanes, chunk):
    """The matrix-vector kernels: rows ``a[r]`` against ``x``; ``lanes`` interleaved lanes per chunk.

    Each lane scans its ``j`` upwards with ``better``; lanes merge with ``better`` (j decides ties);
    chunks are merged in order by ``finalize``. Returns ``(out_v, out_i)``; ``ids_of(r, j)`` gives ids.
    """
    r_count, n = a.shape
    with np.errstate(invalid="ignore", over="ignore"):
        q_all = np.abs(a) * np.abs(x)[None, :]
        parts = []
        for j0 in range(0, n, chunk):
            lane_best = []
            for lane in range(lanes):
                best = np.full(r_count, -1, dtype=a.dtype)
                bj = np.full(r_count, np.iinfo(np.int32).max, dtype=np.int64)
                for j in range(j0 + lane, min(n, j0 + chunk), lanes):
                    take = _better(q_all[:, j], j, best, bj)
                    best, bj = np.where(take, q_all[:, j], best), np.where(take, j, bj)
                lane_best.append((best, bj))
            best, bj = lane_best[0]
            for ov, oj in lane_best[1:]:  # any merge order: j breaks ties
                take = _better(ov, oj, best, bj)
                best, bj = np.where(take, ov, best), np.where(take, oj, bj)
            parts.append((best, bj))
        best, bj = parts[0]
        for ov, oj in parts[1:]:
            take = _better(ov, oj, best, bj)
            best, bj = np.where(take, ov, best), np.where(take, oj, bj)
        r = np.arange(r_count)
        return a[r, bj] * x[bj], ids_of(r, bj)


def _key(values):
    bits = np.abs(values).view(np.uint32 if values.dtype == np.float32 else np.uint64)
    return np.where(np.isnan(values), 0, bits.astype(np.uint64) + 1)


def emulate_scatter(positions, values, ids, size, order):
    """The three atomic passes and the write, with the entries visited in ``order`` (any order)."""
    positions, values, ids = positions.ravel()[order], values.ravel()[order], ids.ravel()[order]
    entry = np.arange(positions.size)[order]
    keys = np.zeros(size, dtype=np.uint64)
    np.maximum.at(keys, positions, _key(values))
    out_i = np.full(size, backend.NO_PATH, dtype=np.int64)
    match = _key(values) == keys[positions]
    np.minimum.at(out_i, positions[match], ids[match])
    win = np.full(size, backend.NO_PATH, dtype=np.int64)
    match &= ids == out_i[positions]
    np.minimum.at(win, positions[match], entry[match])
    out_v = np.zeros(size, dtype=values.dtype)
    hit = win != backend.NO_PATH
    out_v[hit] = values[np.argsort(entry)][win[hit]]
    return out_v, out_i


def _values(rng, shape, dtype, kind):
    if kind == "ties":  # few magnitudes: many equal |products| (exact in floating point), zeros included
        return rng.choice(np.array([-2, -1, -0.5, 0, 0.5, 1, 2]), size=shape).astype(dtype)
    if kind == "special":  # a sprinkle of inf and NaN on top of ties
        out = rng.choice(np.array([-2, -1, 0, 1, 2]), size=shape).astype(dtype)
        flat = out.reshape(-1)
        if flat.size:
            k = max(1, flat.size // 50)
            flat[rng.integers(0, flat.size, k)] = rng.choice(np.array([np.inf, -np.inf, np.nan]), size=k)
        return out
    return rng.standard_normal(shape).astype(dtype)


def _ids(rng, shape):
    return (rng.permutation(int(np.prod(shape))).reshape(shape) + 100).astype(np.int64)


def _assert_same(got, want):
    for g, w in zip(got, want):
        g = np.asarray(g)
        assert g.shape == w.shape and g.dtype == w.dtype, (g.shape, w.shape, g.dtype, w.dtype)
        np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["normal", "ties", "special"])
@pytest.mark.parametrize("m,n,p", [(5, 3, 7), (70, 50, 66), (64, 16, 64), (33, 17, 130), (3, 200, 2), (1, 1, 1)])
def test_tiled_scheme_matches_reference(dtype, kind, m, n, p):
    rng = np.random.default_rng(m * 1000 + n * 10 + p)
    v, w = _values(rng, (m, n), dtype, kind), _values(rng, (n, p), dtype, kind)
    ids = _ids(rng, (m, n))
    with np.errstate(invalid="ignore", over="ignore"):
        want = max_abs_reference.matmul(np, v, ids, w)
    _assert_same(emulate_tiled(v, ids, w), want)


def test_tiled_scheme_ties_across_slices():
    """The same largest |product| in several slices (and twice in one): the first j wins."""
    n = 5 * S.TILE_K
    v = np.zeros((2, n))
    w = np.ones((n, 3))
    for j in (S.TILE_K + 3, S.TILE_K + 9, 3 * S.TILE_K, n - 1):
        v[0, j] = -4.0
    v[1, [2, S.TILE_K + 2]] = [2.0, -2.0]
    w[S.TILE_K + 3, 1] = 0.0  # column 1: the first max is at TILE_K + 9
    ids = _ids(np.random.default_rng(0), (2, n))
    want = max_abs_reference.matmul(np, v, ids, w)
    _assert_same(emulate_tiled(v, ids, w), want)
    assert want[1][0].tolist() == [ids[0, S.TILE_K + 3], ids[0, S.TILE_K + 9], ids[0, S.TILE_K + 3]]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["normal", "ties", "special"])
@pytest.mark.parametrize("lanes,chunk", [(32, 64), (8, 40), (32, 1000)])
def test_matvec_scheme_matches_reference(dtype, kind, lanes, chunk):
    rng = np.random.default_rng(lanes + chunk)
    m, n = 9, 150
    a = _values(rng, (m, n), dtype, kind)
    x = _values(rng, (n,), dtype, kind)
    ids = _ids(rng, (m, n))
    with np.errstate(invalid="ignore", over="ignore"):
        want = max_abs_reference.matmul(np, a, ids, x[:, None])
    got = emulate_mv(a, x, lambda r, j: ids[r, j], lanes, chunk)
    _assert_same((got[0][:, None], got[1][:, None]), want)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["normal", "ties", "special"])
def test_scatter_scheme_matches_reference(dtype, kind):
    rng = np.random.default_rng(7)
    count, size = 400, 37
    positions = rng.integers(0, size - 5, count)  # the last targets stay untouched
    values = _values(rng, (count,), dtype, kind)
    ids = rng.integers(0, 60, count).astype(np.int64)  # repeated ids too
    values[:4], ids[:4], positions[:4] = [3, -3, 3, -3], [5, 5, 4, 4], 1  # same |v| and id, opposite signs
    want = max_abs_dispatch.scatter(np, positions, values, ids, size)
    for order in (np.arange(count), rng.permutation(count), np.arange(count)[::-1]):
        _assert_same(emulate_scatter(positions, values, ids, size, order), want)


# == 3. the real sources on an emulated device (g++) ===============================================
_SHIM = r"""
#include <algorithm>
#include <atomic>
#include <barrier>
#include <cmath>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>
using std::max;
using std::min;
struct dim3 { unsigned x = 1, y = 1, z = 1; };
static thread_local dim3 threadIdx, blockIdx;
static dim3 blockDim, gridDim;
static std::barrier<>* emu_block_barrier;
static std::vector<std::barrier<>*> emu_warp_barriers;
static std::mutex emu_atomic_mutex;
static std::atomic<int> emu_or;
static unsigned char emu_shfl[1024][8];
#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static
#define __align__(n) __attribute__((aligned(n)))
static inline unsigned emu_tid() { return threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z); }
static inline void __syncthreads() { emu_block_barrier->arrive_and_wait(); }
static inline int __syncthreads_or(int v) {
    if (v) emu_or.fetch_or(1);
    __syncthreads();
    const int r = emu_or.load();
    __syncthreads();
    if (emu_tid() == 0) emu_or.store(0);
    __syncthreads();
    return r;
}
template <class T> static inline T __shfl_down_sync(unsigned, T v, int off) {
    const unsigned t = emu_tid(), lane = t % 32;
    std::memcpy(emu_shfl[t], &v, sizeof(T));
    emu_warp_barriers[t / 32]->arrive_and_wait();
    T r = v;
    if (lane + off < 32) std::memcpy(&r, emu_shfl[t + off], sizeof(T));
    emu_warp_barriers[t / 32]->arrive_and_wait();
    return r;
}
static inline unsigned __float_as_uint(float f) { unsigned u; std::memcpy(&u, &f, 4); return u; }
static inline long long __double_as_longlong(double d) { long long u; std::memcpy(&u, &d, 8); return u; }
template <class T> static inline T atomicMax(T* a, T v) {
    std::lock_guard<std::mutex> g(emu_atomic_mutex); T o = *a; if (v > o) *a = v; return o;
}
template <class T> static inline T atomicMin(T* a, T v) {
    std::lock_guard<std::mutex> g(emu_atomic_mutex); T o = *a; if (v < o) *a = v; return o;
}
template <class F> static void emu_launch(dim3 g, dim3 b, F f) {
    gridDim = g;
    blockDim = b;
    const unsigned nt = b.x * b.y * b.z;
    for (unsigned z = 0; z < g.z; ++z) for (unsigned y = 0; y < g.y; ++y) for (unsigned x = 0; x < g.x; ++x) {
        std::barrier<> bar(nt);
        emu_block_barrier = &bar;
        std::vector<std::barrier<>*> warps;
        for (unsigned w = 0; w < (nt + 31) / 32; ++w) warps.push_back(new std::barrier<>(std::min(32u, nt - 32 * w)));
        emu_warp_barriers = warps;
        std::vector<std::thread> threads;
        for (unsigned t = 0; t < nt; ++t)
            threads.emplace_back([&, t] {
                blockIdx = dim3{x, y, z};
                threadIdx = dim3{t % b.x, (t / b.x) % b.y, t / (b.x * b.y)};
                f();
                emu_warp_barriers[t / 32]->arrive_and_drop();
                bar.arrive_and_drop();
            });
        for (auto& th : threads) th.join();
        for (auto* w : warps) delete w;
    }
}
"""

_KERNEL_RE = re.compile(r'extern "C" __global__ void(?:\s+__launch_bounds__\([^)]*\))?\s+(\w+)\s*\(([^)]*)\)')


def _emulation_source(code: str) -> str:
    """``code`` plus, per kernel, ``launch_<name>(gx, gy, gz, bx, by, bz, <kernel params>)``."""
    out = [_SHIM, code]
    for name, params in _KERNEL_RE.findall(code):
        names = [re.findall(r"\w+", p)[-1] for p in params.split(",")]
        out.append(
            f'extern "C" void launch_{name}(unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, '
            f"unsigned bz, {params}) {{ emu_launch(dim3{{gx, gy, gz}}, dim3{{bx, by, bz}}, [&] {{ {name}("
            f"{', '.join(names)}); }}); }}"
        )
    return "\n".join(out)


class _EmuFunction:
    """A compiled kernel of the emulation, called like a cupy RawKernel: ``f(grid, block, args)``."""

    _SCALARS = {np.int64: ctypes.c_int64, np.int32: ctypes.c_int32, np.float32: ctypes.c_float,
                np.float64: ctypes.c_double, np.uint64: ctypes.c_uint64, np.uint32: ctypes.c_uint32}

    def __init__(self, lib, name, launches):
        self.fn = getattr(lib, "launch_" + name)
        self.launches = launches

    def __call__(self, grid, block, args, shared_mem=0):
        grid, block = tuple(grid) + (1,) * (3 - len(grid)), tuple(block) + (1,) * (3 - len(block))
        assert all(isinstance(g, (int, np.integer)) and g >= 1 for g in grid + block), (grid, block)
        assert np.prod(block) <= 1024 and grid[1] <= 65535 and grid[2] <= 65535
        cargs = []
        for a in args:
            if isinstance(a, np.ndarray):
                cargs.append(ctypes.c_void_p(a.ctypes.data))
            elif type(a) in self._SCALARS:  # a Python int would be ambiguous on a real device
                cargs.append(self._SCALARS[type(a)](a))
            else:
                raise TypeError(f"kernel argument of type {type(a).__name__}")
        self.launches.append(self.fn.__name__)
        self.fn(*[ctypes.c_uint(int(x)) for x in grid + block], *cargs)


class _EmuModule:
    def __init__(self, code, options, cache_dir, launches):
        digest = hashlib.sha256((code + _SHIM + " ".join(options)).encode()).hexdigest()[:16]
        lib = os.path.join(cache_dir, f"emu_{digest}.so")
        if not os.path.exists(lib):
            src = os.path.join(cache_dir, f"emu_{digest}.cpp")
            with open(src, "w") as f:
                f.write(_emulation_source(code))
            res = subprocess.run(
                [GXX, "-std=c++20", "-O1", "-ffp-contract=off", "-fPIC", "-shared", "-pthread",
                 "-Wno-unknown-pragmas", "-o", lib + ".tmp", src], capture_output=True, text=True,
            )
            assert res.returncode == 0, res.stderr[-4000:]
            os.replace(lib + ".tmp", lib)
        self.lib = ctypes.CDLL(lib)
        self.launches = launches

    def get_function(self, name):
        return _EmuFunction(self.lib, name, self.launches)


class _EmuCupy(types.ModuleType):
    """numpy dressed as cupy: the attributes the wrappers use, and RawModule compiling with g++."""

    def __init__(self, cache_dir):
        super().__init__("emucupy")
        self.launches = []
        outer = self

        class Device:
            def __init__(self, device=0):
                self.attributes = {"MultiProcessorCount": 2}

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return False

        self.cuda = types.SimpleNamespace(Device=Device, runtime=types.SimpleNamespace(getDevice=lambda: 0))
        self.RawModule = lambda code, options=(): _EmuModule(code, options, cache_dir, outer.launches)
        self.asnumpy = np.asarray

    def __getattr__(self, name):
        return getattr(np, name)


@contextmanager
def _fresh_caches(monkeypatch):
    monkeypatch.setattr(cuda, "_MODULES", {})
    cuda._offsets.cache_clear()
    cuda._sm_count.cache_clear()
    try:
        yield
    finally:
        cuda._offsets.cache_clear()
        cuda._sm_count.cache_clear()


def _real_cupy():
    try:
        import cupy

        if cupy.cuda.runtime.getDeviceCount() < 1:
            return None
        return cupy
    except Exception:
        return None


@pytest.fixture(params=["emulated", "gpu"])
def xp(request, monkeypatch):
    """The array module the wrappers run on: the g++ emulation, or real cupy on a device."""
    if request.param == "emulated":
        if GXX is None:
            pytest.skip("g++ not installed")
        emu = _EmuCupy(request.getfixturevalue("emulation_dir"))
        with _fresh_caches(monkeypatch):
            monkeypatch.setattr(cuda, "_cupy", lambda: emu)
            yield emu
    else:
        cp = _real_cupy()
        if cp is None:
            pytest.skip("cupy or a CUDA device missing")
        with _fresh_caches(monkeypatch):
            yield cp


def _matmul_case(xp, v, ids, w, view=None):
    """Compare the wrapper on ``xp`` with the numpy reference; ``view(mod, v, ids, w)`` makes the
    operands' layout (transposes, slices, broadcasts) on each side, so the device sees real views."""
    view = view or (lambda mod, v, i, w: (v, i, w))
    with np.errstate(invalid="ignore", over="ignore"):
        want = max_abs_reference.matmul(np, *view(np, v, ids, w))
    operands = view(xp, xp.asarray(v), xp.asarray(ids), xp.asarray(w))
    got = cuda.max_abs_matmul(xp, *operands)
    if got is None:  # not for the kernels (integers, say): the dispatch runs the reference on the device
        got = max_abs_reference.matmul(xp, *operands)
    _assert_same([xp.asnumpy(g) for g in got], want)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["normal", "ties", "special"])
@pytest.mark.parametrize(
    "vshape,wshape",
    [
        ((70, 33), (33, 66)),  # two tiles each way, partial tiles, a partial slice of j
        ((2, 9, 20), (20, 5)),  # weights shared by the batch: folded into rows
        ((3, 1, 5, 17), (2, 17, 4)),  # both batched, broadcast both ways
        ((5, 17), (3, 17, 4)),  # only weights batched
        ((1, 40), (40, 70)),  # vector-matrix, row-major weights
        ((33, 40), (40, 1)),  # matrix-vector
        ((1, 300), (300, 1)),  # a dot product, split over j
        ((2, 1, 40), (2, 40, 3)),  # batched vector-matrix: the tiled kernel
    ],
)
def test_matmul_kernels(xp, dtype, kind, vshape, wshape):
    rng = np.random.default_rng(len(vshape) * 100 + vshape[-1])
    v, w = _values(rng, vshape, dtype, kind), _values(rng, wshape, dtype, kind)
    _matmul_case(xp, v, _ids(rng, vshape), w)


@pytest.mark.parametrize("dtype", DTYPES)
def test_matmul_layouts(xp, dtype):
    """Transposed and strided operands, broadcast ids, mixed dtypes, trivial and empty shapes."""
    rng = np.random.default_rng(3)
    a = _values(rng, (40, 70), dtype, "ties")
    b = _values(rng, (70, 50), dtype, "ties")
    ids = _ids(rng, (40, 70))
    cases = [
        lambda mod, a, i, b: (a, i, b.T.copy().T),  # weights column-major (copied for the tiled kernel)
        lambda mod, a, i, b: (a.T.copy().T, i, b),  # values column-major
        lambda mod, a, i, b: (a[:, ::2], i[:, ::2], b[::2]),  # strided rows of values
        lambda mod, a, i, b: (a[:1], i[:1], b),  # vector-matrix
        lambda mod, a, i, b: (a[:1], i[:1], b.T.copy().T),  # vector @ W.T: a warp per column, W in place
        lambda mod, a, i, b: (a[:1, ::-1], i[:1, ::-1], b[::-1]),  # negative strides
        lambda mod, a, i, b: (a[3:4, ::3], i[3:4, ::3], b[::3, 1::2]),  # strided everything
        lambda mod, a, i, b: (a, i, b[:, :1]),  # matrix-vector, row-major
        lambda mod, a, i, b: (a.T.copy().T, i, b[:, :1]),  # matrix-vector, column-major values
        lambda mod, a, i, b: (a[::2], i[::2], b[:, 3:4]),  # matrix-vector, strided
        lambda mod, a, i, b: (a, i[:1], b),  # ids broadcast over rows
        lambda mod, a, i, b: (a, mod.broadcast_to(i[:1], a.shape), b),  # the same as a broadcast view
        lambda mod, a, i, b: (a[None], i, mod.broadcast_to(b, (3,) + b.shape)),  # broadcast batch
        lambda mod, a, i, b: (a.astype(np.float32), i, b.astype(np.float64)),  # promotion to float64
        lambda mod, a, i, b: (a[:, :1], i[:, :1], b[:1]),  # n == 1: no comparison
        lambda mod, a, i, b: (a[:, :0], i[:, :0], b[:0]),  # n == 0: no path
        lambda mod, a, i, b: (a[:0], i[:0], b),  # m == 0
        lambda mod, a, i, b: (a, i, b[:, :0]),  # p == 0
        lambda mod, a, i, b: (a.astype(np.int64), i, b.astype(np.int64)),  # integers: the reference
        lambda mod, a, i, b: (a.astype(np.float16), i, b.astype(np.float16)),  # float16: the reference
    ]
    for view in cases:
        _matmul_case(xp, a, ids, b, view)


def test_matmul_many_slices_and_ties(xp):
    """Long j with the maximum repeated across slices, and a row of all zeros."""
    n = 7 * S.TILE_K + 3
    v = np.zeros((66, n), dtype=np.float32)
    v[:, S.TILE_K + 1] = v[:, 4 * S.TILE_K] = v[:, n - 1] = -8
    v[1:, 5] = 8
    v[65] = 0
    w = np.ones((n, 65), dtype=np.float32)
    w[5, 7] = 0.5
    _matmul_case(xp, v, _ids(np.random.default_rng(1), v.shape), w)


@pytest.mark.parametrize("dtype", DTYPES)
def test_matvec_long_rows(xp, dtype):
    """Long ``j``, split into chunks: each row's winner sits in a different chunk, with later ties."""
    m, n = 8, 2000
    v = np.ones((m, n), dtype=dtype)
    for r in range(m):
        first = (r * 251 + 7 * r) % n
        v[r, first] = -3
        v[r, (first + 300 + 5 * r) % n] = 3  # a tie: before or after the first, by row
        v[r, (first + 1) % n] = 2.5
    ids = _ids(np.random.default_rng(2), (m, n))
    x = np.ones((n, 1), dtype=dtype)
    _matmul_case(xp, v, ids, x)  # one warp per row
    _matmul_case(xp, v, ids, x, lambda mod, v, i, x: (v.T.copy().T, i, x))  # 32 rows per block, column-major
    # vector-matrix with the rows of v as columns of the matrix: row-major (32 columns per block) and
    # column-major (w = v.T read in place, one warp per column)
    _matmul_case(xp, x.T.copy(), ids[:1], v.T.copy())
    _matmul_case(xp, x.T.copy(), ids[:1], v, lambda mod, x, i, w: (x, i, w.T))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["normal", "ties", "special"])
def test_scatter_kernel(xp, dtype, kind):
    rng = np.random.default_rng(11)
    count, size = 700, 53
    positions = rng.integers(0, size - 3, count)
    values = _values(rng, (count,), dtype, kind)
    ids = rng.integers(0, 90, count).astype(np.int64)
    values[:4], ids[:4], positions[:4] = [3, -3, 3, -3], [5, 5, 4, 4], 1
    want = max_abs_dispatch.scatter(np, positions, values, ids, size)
    got = cuda.scatter_max_abs(xp, xp.asarray(positions), xp.asarray(values), xp.asarray(ids), size)
    _assert_same([xp.asnumpy(g) for g in got], want)


def test_scatter_shapes_and_fallbacks(xp):
    rng = np.random.default_rng(5)
    positions = rng.integers(0, 6, (4, 5))
    values = rng.choice([-1.0, 1.0, 2.0], (4, 5))
    ids = np.broadcast_to(np.arange(5, dtype=np.int64), (4, 5))  # broadcast ids, repeated
    for pos, val, i, size in [
        (positions, values, ids, 8),
        (positions, values.astype(np.float32), ids, 6),
        (positions, values.astype(np.float16), ids, 6),  # float16: the reference
        (positions[:0], values[:0], ids[:0], 5),  # nothing to scatter
    ]:
        want = max_abs_dispatch.scatter(np, pos, val, np.ascontiguousarray(i), size)
        got = max_abs_dispatch.scatter(xp, xp.asarray(pos), xp.asarray(val), xp.asarray(i), size)
        _assert_same([xp.asnumpy(g) for g in got], want)


def test_routing(xp):
    """Which kernel runs for which shape (the emulation records its launches)."""
    if not isinstance(xp, _EmuCupy):
        pytest.skip("launch records exist in the emulation only")
    rng = np.random.default_rng(0)

    def launched(vshape, wshape, view=lambda w: w):
        xp.launches.clear()
        v, w = rng.standard_normal(vshape), view(rng.standard_normal(wshape))
        cuda.max_abs_matmul(xp, v, _ids(rng, vshape), w)
        return [name.replace("launch_", "").rsplit("_", 1)[0] for name in xp.launches]

    assert launched((5, 7), (7, 6)) == [S.TILED]
    assert launched((4, 5, 7), (7, 6)) == [S.TILED]
    assert launched((1, 7), (7, 6)) == [S.MV_COLS, S.MV_FINALIZE]
    assert launched((1, 7), (6, 7), lambda w: w.T) == [S.MV_ROWS, S.MV_FINALIZE]
    assert launched((5, 7), (7, 1)) == [S.MV_ROWS, S.MV_FINALIZE]
    assert launched((2, 5, 7), (2, 7, 6)) == [S.TILED]
    assert launched((5, 1), (1, 6)) == []
