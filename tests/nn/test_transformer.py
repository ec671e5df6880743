"""GELU, scaled dot-product attention, MultiheadAttention, TransformerEncoderLayer/Encoder: parity with
PyTorch in float64 (forward, attention weights, every parameter and input gradient), state dicts
loaded from PyTorch, finite differences, and traces whose paths name the components."""

from __future__ import annotations

import copy
import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pytest
from test_nn_gradcheck import check_gradients

import semirad as sr
import semirad.nn.functional as F
from semirad import nn

RTOL, ATOL = 1e-9, 1e-12
# masks of mixed types (a bool key_padding_mask with a float attn_mask) are part of what is compared
pytestmark = pytest.mark.filterwarnings("ignore:Support for mismatched:UserWarning")
E, H = 8, 2  # embed_dim, num_heads of most cases
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def close(ours, theirs, what):
    theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else np.asarray(theirs)
    np.testing.assert_allclose(np.asarray(ours), theirs, rtol=RTOL, atol=ATOL, err_msg=what)


def to_torch(torch, value):
    """A numpy mask or input as a torch tensor (bool and float64 kept)."""
    return None if value is None else torch.tensor(value)


def compare(torch, ours, theirs, arrays: dict, call, seed: int = 0):
    """Load ``theirs``' state dict into ``ours`` unchanged, run ``call(module, tensors, to_mask)`` in
    both (``tensors[name]`` is one tensor per name: self-attention passes one tensor three times), and
    compare every output, every parameter gradient and every input gradient."""
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict(theirs.state_dict())
    theirs.zero_grad()
    ours_in = {k: sr.tensor(a, requires_grad=True, name=k) for k, a in arrays.items()}
    theirs_in = {k: torch.tensor(a, requires_grad=True) for k, a in arrays.items()}
    ours_out = [o for o in _flat(call(ours, ours_in, lambda m: m)) if o is not None]
    theirs_out = [o for o in _flat(call(theirs, theirs_in, lambda m: to_torch(torch, m))) if o is not None]
    assert len(ours_out) == len(theirs_out)
    rng = np.random.default_rng(seed)
    weights = [rng.standard_normal(o.shape) for o in ours_out]
    for i, (o, t) in enumerate(zip(ours_out, theirs_out)):
        assert o.shape == tuple(t.shape), f"output {i}: {o.shape} vs {tuple(t.shape)}"
        close(o.numpy(), t, f"output {i}")
    loss = sum((o * w).sum() for o, w in zip(ours_out, weights))
    sum((t * torch.tensor(w)).sum() for t, w in zip(theirs_out, weights)).backward()
    named = list(ours.named_parameters())
    leaves = [p for _, p in named] + list(ours_in.values())
    grads = sr.grad(loss, leaves)
    theirs_params = dict(theirs.named_parameters())
    for (name, _), g in zip(named, grads):
        close(g, theirs_params[name].grad, f"gradient of {name}")
    for (name, t), g in zip(theirs_in.items(), grads[len(named) :]):
        close(g, t.grad, f"gradient of input {name}")
    return ours_out


def _flat(out):
    if isinstance(out, (tuple, list)):
        return [x for o in out for x in _flat(o)]
    return [out]


# -- GELU -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_matches_torch(torch, approximate):
    x = np.concatenate([np.linspace(-5, 5, 41), [-1e-8, 0.0, 1e-8, 30.0]])
    ours = sr.tensor(x, requires_grad=True)
    theirs = torch.tensor(x, requires_grad=True)
    y = nn.GELU(approximate)(ours)
    t = torch.nn.GELU(approximate)(theirs)
    close(y.numpy(), t, "forward")
    w = np.random.default_rng(0).standard_normal(x.shape)
    (t * torch.tensor(w)).sum().backward()
    (g,) = sr.grad((y * w).sum(), [ours])
    close(g, theirs.grad, "gradient")
    close(F.gelu(x, approximate=approximate).numpy(), t, "F.gelu")


def test_gelu_tanh_form_has_no_cancellation():
    # 0.5 x (1 + tanh(u)) is 0 in float64 from x ~ -6.5 on; x sigmoid(2u) keeps the exact value's size
    x = -10.0
    u = np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)
    assert F.gelu(sr.tensor([x]), approximate="tanh").item() == pytest.approx(x / (1 + np.exp(-2 * u)), rel=1e-12)
    assert F.gelu(sr.tensor([x]), approximate="tanh").item() < 0


def test_gelu_rejects_unknown_approximation():
    with pytest.raises(ValueError, match="approximate must be 'none' or 'tanh', got 'fast'"):
        nn.GELU("fast")
    with pytest.raises(ValueError, match="gelu: approximate"):
        F.gelu(sr.tensor([1.0]), approximate="sigmoid")


# -- scaled_dot_product_attention -------------------------------------------------------------------


@pytest.mark.parametrize("mask", ["none", "bool", "float", "causal"])
def test_scaled_dot_product_attention_matches_torch(torch, mask):
    rng = np.random.default_rng(3)
    q, k, v = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 5, 4)), rng.standard_normal((2, 5, 6))
    attn_mask = {"none": None, "bool": rng.random((3, 5)) < 0.7, "float": rng.standard_normal((2, 3, 5)),
                 "causal": None}[mask]  # fmt: skip
    if mask == "bool":
        attn_mask[:, 0] = True  # (True keeps a key here) every query keeps one
    ours = [sr.tensor(a, requires_grad=True) for a in (q, k, v)]
    theirs = [torch.tensor(a, requires_grad=True) for a in (q, k, v)]
    kw = {"is_causal": mask == "causal", "scale": 0.3 if mask == "float" else None}
    y = F.scaled_dot_product_attention(*ours, attn_mask=attn_mask, **kw)
    t = torch.nn.functional.scaled_dot_product_attention(*theirs, attn_mask=to_torch(torch, attn_mask), **kw)
    close(y.numpy(), t, "forward")
    w = rng.standard_normal(y.shape)
    (t * torch.tensor(w)).sum().backward()
    for g, tt in zip(sr.grad((y * w).sum(), ours), theirs):
        close(g, tt.grad, "gradient")


def test_scaled_dot_product_attention_errors():
    q = sr.tensor(np.ones((2, 3, 4)))
    with pytest.raises(ValueError, match=r"scaled_dot_product_attention: expected query .* \(2, 3, 4\), \(2, 3, 5\)"):
        F.scaled_dot_product_attention(q, sr.tensor(np.ones((2, 3, 5))), q)
    with pytest.raises(ValueError, match="not be given together with is_causal"):
        F.scaled_dot_product_attention(q, q, q, attn_mask=np.ones((3, 3), bool), is_causal=True)
    with pytest.raises(ValueError, match=r"does not broadcast to the scores' shape \(2, 3, 3\)"):
        F.scaled_dot_product_attention(q, q, q, attn_mask=np.ones((4, 3), bool))
    keep = np.ones((3, 3), bool)
    keep[1] = False  # (True keeps a key here) query 1 keeps none
    with pytest.raises(ValueError, match=r"every key is masked for the query at scores index \(0, 1\)"):
        F.scaled_dot_product_attention(q, q, q, attn_mask=keep)
    with pytest.raises(TypeError, match="attn_mask must be a bool or floating-point array, got dtype int64"):
        F.scaled_dot_product_attention(q, q, q, attn_mask=np.ones((3, 3), dtype=np.int64))


# -- MultiheadAttention ---------------------------------------------------------------------------


def _mha_case(name):
    """(constructor kwargs, input arrays, forward call) of a named case; masks are numpy arrays."""
    rng = np.random.default_rng(sum(map(ord, name)))
    L, S, N = 4, 5, 3
    causal = np.triu(np.ones((L, L), bool), 1)
    padding = np.zeros((N, S), bool)
    padding[0, -2:] = True
    padding[2, 0] = True
    late_padding = np.zeros((N, L), bool)  # with the causal mask, every query keeps its first key
    late_padding[0, 3] = True
    late_padding[1, 2:] = True

    def x(*shape):
        return rng.standard_normal(shape)

    def float_mask(*shape):  # some -inf, never a whole row
        mask = np.where(rng.random(shape) < 0.3, -np.inf, x(*shape))
        mask[..., 0] = 0.0
        return mask

    def self_attention(**kw):
        return lambda m, t, mask: m(t["x"], t["x"], t["x"], **{k: mask(v) if isinstance(v, np.ndarray) else v
                                                                   for k, v in kw.items()})  # fmt: skip

    def cross(**kw):
        return lambda m, t, mask: m(t["q"], t["k"], t["v"], **{k: mask(v) if isinstance(v, np.ndarray) else v
                                                                 for k, v in kw.items()})  # fmt: skip

    cases = {
        "self": ({}, {"x": x(L, N, E)}, self_attention()),
        "self_batch_first": ({"batch_first": True}, {"x": x(N, L, E)}, self_attention()),
        "cross": ({}, {"q": x(L, N, E), "k": x(S, N, E), "v": x(S, N, E)}, cross()),
        "cross_batch_first_kdim_vdim": ({"batch_first": True, "kdim": 3, "vdim": 5},
                                        {"q": x(N, L, E), "k": x(N, S, 3), "v": x(N, S, 5)}, cross()),
        "kdim_no_bias": ({"kdim": 6, "bias": False}, {"q": x(L, N, E), "k": x(S, N, 6), "v": x(S, N, E)}, cross()),
        "bool_mask_2d": ({}, {"x": x(L, N, E)}, self_attention(attn_mask=causal)),
        "float_mask_2d": ({}, {"x": x(L, N, E)}, self_attention(attn_mask=x(L, L))),
        "bool_mask_3d": ({}, {"x": x(L, N, E)}, self_attention(attn_mask=causal | (rng.random((N * H, L, L)) < 0.3)
                                                               & ~np.eye(L, dtype=bool))),
        "float_mask_3d": ({}, {"q": x(L, N, E), "k": x(S, N, E), "v": x(S, N, E)},
                          cross(attn_mask=float_mask(N * H, L, S))),
        "key_padding_mask": ({}, {"q": x(L, N, E), "k": x(S, N, E), "v": x(S, N, E)},
                             cross(key_padding_mask=padding)),
        "float_key_padding_mask": ({}, {"q": x(L, N, E), "k": x(S, N, E), "v": x(S, N, E)},
                                   cross(key_padding_mask=x(N, S))),
        "both_masks": ({"batch_first": True}, {"x": x(N, L, E)},
                       self_attention(attn_mask=causal, key_padding_mask=late_padding)),
        "is_causal_sdpa_path": ({}, {"x": x(L, N, E)},
                                self_attention(attn_mask=causal, is_causal=True, need_weights=False)),
        "is_causal_weights": ({}, {"x": x(L, N, E)}, self_attention(attn_mask=causal, is_causal=True)),
        "no_weights": ({}, {"q": x(L, N, E), "k": x(S, N, E), "v": x(S, N, E)},
                       cross(need_weights=False, key_padding_mask=padding)),
        "per_head_weights": ({}, {"x": x(L, N, E)}, self_attention(average_attn_weights=False, attn_mask=causal)),
        "unbatched": ({}, {"q": x(L, E), "k": x(S, E), "v": x(S, E)},
                      cross(key_padding_mask=np.r_[False, True, False, False, True],
                            attn_mask=rng.standard_normal((H, L, S)))),
        "unbatched_batch_first": ({"batch_first": True}, {"x": x(L, E)}, self_attention(attn_mask=causal)),
        "bias_kv_zero_attn": ({"add_bias_kv": True, "add_zero_attn": True}, {"x": x(L, N, E)},
                              self_attention(attn_mask=causal, key_padding_mask=padding[:, :L])),
    }  # fmt: skip
    return cases[name]


MHA_CASES = [
    "self", "self_batch_first", "cross", "cross_batch_first_kdim_vdim", "kdim_no_bias", "bool_mask_2d",
    "float_mask_2d", "bool_mask_3d", "float_mask_3d", "key_padding_mask", "float_key_padding_mask", "both_masks",
    "is_causal_sdpa_path", "is_causal_weights", "no_weights", "per_head_weights", "unbatched",
    "unbatched_batch_first", "bias_kv_zero_attn",
]  # fmt: skip


@pytest.mark.parametrize("case", MHA_CASES)
def test_multihead_attention_matches_torch(torch, case):
    kwargs, arrays, call = _mha_case(case)
    torch.manual_seed(0)
    theirs = torch.nn.MultiheadAttention(E, H, **kwargs).double()
    if kwargs.get("add_bias_kv"):
        assert list(theirs.state_dict())[2:4] == ["bias_k", "bias_v"]
    ours = nn.MultiheadAttention(E, H, **kwargs)
    outputs = compare(torch, ours, theirs, arrays, call)
    want_weights = "no_weights" not in case and "sdpa" not in case
    assert len(outputs) == 1 + want_weights


def test_multihead_attention_returns_none_weights_and_shapes():
    sr.manual_seed(0)
    mha = nn.MultiheadAttention(E, H, batch_first=True)
    x = np.random.default_rng(0).standard_normal((3, 4, E))
    out, weights = mha(x, x, x, need_weights=False)
    assert out.shape == (3, 4, E) and weights is None
    _, weights = mha(x, x, x, average_attn_weights=False)
    assert weights.shape == (3, H, 4, 4)
    np.testing.assert_allclose(weights.numpy().sum(-1), 1.0)


def test_multihead_attention_init_is_torchs():
    sr.manual_seed(0)
    mha = nn.MultiheadAttention(16, 4)
    assert not mha.in_proj_bias.numpy().any() and not mha.out_proj.bias.numpy().any()
    bound = np.sqrt(6 / (16 + 48))  # xavier_uniform_ on the (3E, E) packed weight
    w = mha.in_proj_weight.numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.8 * bound
    assert np.abs(mha.out_proj.weight.numpy()).max() <= 1 / 4  # Linear's kaiming bound 1/sqrt(16)
    assert type(mha.out_proj).__name__ == "NonDynamicallyQuantizableLinear"
    separate = nn.MultiheadAttention(16, 4, kdim=5, vdim=7)
    assert [n for n, _ in separate.named_parameters()] == [
        "q_proj_weight",
        "k_proj_weight",
        "v_proj_weight",
        "in_proj_bias",
        "out_proj.weight",
        "out_proj.bias",
    ]
    assert separate.k_proj_weight.shape == (16, 5) and separate.v_proj_weight.shape == (16, 7)


def test_multihead_attention_errors():
    with pytest.raises(ValueError, match="embed_dim 6 must be divisible by num_heads 4"):
        nn.MultiheadAttention(6, 4)
    mha = nn.MultiheadAttention(E, H)
    x = np.zeros((4, 2, E))
    with pytest.raises(ValueError, match=r"feature sizes .* got query \(4, 2, 8\), key \(4, 2, 3\)"):
        mha(x, np.zeros((4, 2, 3)), x)
    with pytest.raises(ValueError, match="all 3-D .* or all 2-D"):
        mha(x, np.zeros((4, E)), x)
    with pytest.raises(ValueError, match=r"key_padding_mask must have shape \(2, 4\)"):
        mha(x, x, x, key_padding_mask=np.zeros((4, 2), bool))
    with pytest.raises(ValueError, match=r"attn_mask must have shape \(4, 4\) or \(4, 4, 4\)"):
        mha(x, x, x, attn_mask=np.zeros((2, 4, 4), bool))
    with pytest.raises(ValueError, match="is_causal=True .* needs attn_mask"):
        mha(x, x, x, is_causal=True)
    padding = np.zeros((2, 4), bool)
    padding[1] = True
    with pytest.raises(ValueError, match=r"every key is masked for the query at scores index \(2, 0\)"):
        mha(x, x, x, key_padding_mask=padding)
    with pytest.raises(TypeError, match="key_padding_mask must be a bool or floating-point array"):
        mha(x, x, x, key_padding_mask=np.zeros((2, 4), np.int32))


def _components(output) -> set:
    """The component of every op recorded on the way to ``output``."""
    seen, stack, names = set(), [output._node], set()
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if node.op is not None:
            names.add(node.component)
        stack.extend(node.parents)
    return names


def test_multihead_attention_tags_its_components():
    sr.manual_seed(0)
    mha = nn.MultiheadAttention(E, H, batch_first=True)
    x = sr.tensor(np.random.default_rng(0).standard_normal((2, 3, E)), requires_grad=True)
    out, weights = mha(x, x, x, attn_mask=np.triu(np.ones((3, 3), bool), 1))
    assert _components(out) == {"query", "key", "value", "scores", "softmax", "mix", "out"}
    assert _components(weights) == {"query", "key", "scores", "softmax"}


# -- TransformerEncoderLayer and TransformerEncoder -------------------------------------------------


def _activations(torch, kind):
    """(ours, theirs) activation arguments of a kind: a name, a function, or a module."""
    if kind in ("relu", "gelu"):
        return kind, kind
    if kind == "callable":
        return (lambda x: F.gelu(x, approximate="tanh")), (lambda x: torch.nn.functional.gelu(x, approximate="tanh"))
    return nn.GELU("tanh"), torch.nn.GELU("tanh")


@pytest.mark.parametrize("norm_first", [False, True], ids=["post_norm", "pre_norm"])
@pytest.mark.parametrize("activation", ["relu", "gelu", "callable", "module"])
def test_encoder_layer_matches_torch(torch, norm_first, activation):
    ours_act, theirs_act = _activations(torch, activation)
    kwargs = {"dim_feedforward": 12, "dropout": 0.0, "norm_first": norm_first, "batch_first": norm_first}
    torch.manual_seed(1)
    theirs = torch.nn.TransformerEncoderLayer(E, H, activation=theirs_act, **kwargs).double()
    ours = nn.TransformerEncoderLayer(E, H, activation=ours_act, **kwargs)
    rng = np.random.default_rng(2)
    shape = (3, 4, E) if norm_first else (4, 3, E)
    padding = np.zeros((3, 4), bool)
    padding[1, 2:] = True
    with torch.no_grad():  # make the layer norms' affine parameters matter
        for p in theirs.parameters():
            p.add_(0.1 * torch.randn(p.shape, dtype=p.dtype))

    def call(m, t, mask):
        return m(t["x"], src_key_padding_mask=mask(padding))

    compare(torch, ours, theirs, {"x": rng.standard_normal(shape)}, call)


@pytest.mark.parametrize("norm_first", [False, True], ids=["post_norm", "pre_norm"])
def test_encoder_matches_torch(torch, norm_first):
    torch.manual_seed(2)
    kwargs = {"dim_feedforward": 10, "dropout": 0.0, "norm_first": norm_first, "activation": "gelu"}
    theirs = torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(E, H, **kwargs), 2,
                                         norm=torch.nn.LayerNorm(E), enable_nested_tensor=False).double()  # fmt: skip
    ours = nn.TransformerEncoder(nn.TransformerEncoderLayer(E, H, **kwargs), 2, norm=nn.LayerNorm(E))
    with torch.no_grad():
        for p in theirs.parameters():
            p.add_(0.1 * torch.randn(p.shape, dtype=p.dtype))
    rng = np.random.default_rng(3)
    L, N = 5, 2
    causal = nn.transformer.generate_square_subsequent_mask(L)
    padding = np.zeros((N, L), bool)
    padding[0, -1] = True

    def call(m, t, mask):
        return m(t["x"], mask=mask(causal), src_key_padding_mask=mask(padding))

    compare(torch, ours, theirs, {"x": rng.standard_normal((L, N, E))}, call)

    def unmasked(m, t, mask):
        return m(t["x"])

    compare(torch, ours, theirs, {"x": rng.standard_normal((L, N, E))}, unmasked)

    def causal_only(m, t, mask):  # the mask is detected as causal (is_causal=None), as PyTorch does
        return m(t["x"], mask=mask(causal))

    compare(torch, ours, theirs, {"x": rng.standard_normal((L, N, E))}, causal_only)


def test_encoder_in_eval_mode_with_dropout_matches_torch(torch):
    torch.manual_seed(4)
    theirs = torch.nn.TransformerEncoderLayer(E, H, dim_feedforward=6, dropout=0.3).double().eval()
    ours = nn.TransformerEncoderLayer(E, H, dim_feedforward=6, dropout=0.3).eval()
    compare(torch, ours, theirs, {"x": np.random.default_rng(5).standard_normal((3, 2, E))},
            lambda m, t, mask: m(t["x"]))  # fmt: skip


@pytest.mark.parametrize("norm_first", [False, True])
def test_state_dict_from_torch_loads_unchanged(torch, norm_first):
    theirs = torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(E, H, 16, norm_first=norm_first), 2,
                                         norm=torch.nn.LayerNorm(E), enable_nested_tensor=False)  # fmt: skip
    ours = nn.TransformerEncoder(nn.TransformerEncoderLayer(E, H, 16, norm_first=norm_first), 2, norm=nn.LayerNorm(E))
    state = theirs.state_dict()
    assert list(ours.state_dict()) == list(state)
    with warnings.catch_warnings():  # (float32 into float64 parameters may be reported)
        warnings.simplefilter("ignore")
        ours.load_state_dict(state)  # keys and order unchanged
    for name, value in ours.state_dict().items():
        np.testing.assert_array_equal(value, state[name].numpy(), err_msg=name)
    mha = torch.nn.MultiheadAttention(E, H, kdim=3, vdim=5, bias=False, add_bias_kv=True)
    assert list(nn.MultiheadAttention(E, H, kdim=3, vdim=5, bias=False, add_bias_kv=True).state_dict()) == list(
        mha.state_dict()
    )


def test_encoder_layers_are_independent_copies():
    sr.manual_seed(0)
    layer = nn.TransformerEncoderLayer(E, H, 12)
    encoder = nn.TransformerEncoder(layer, 3)
    params = list(encoder.parameters())
    assert len(params) == 3 * len(list(layer.parameters()))
    assert len({id(p) for p in params}) == len(params)
    assert {id(p) for p in params}.isdisjoint(id(p) for p in layer.parameters())
    first = encoder.layers[0].linear1.weight
    np.testing.assert_array_equal(first.numpy(), layer.linear1.weight.numpy())
    assert first.name == "layers.0.linear1.weight"
    assert encoder.layers[2].self_attn.in_proj_weight.name == "layers.2.self_attn.in_proj_weight"


def test_encoder_layer_errors():
    with pytest.raises(ValueError, match="activation should be 'relu' or 'gelu', not 'tanh'"):
        nn.TransformerEncoderLayer(E, H, activation="tanh")
    layer = nn.TransformerEncoderLayer(E, H, 12)
    with pytest.raises(ValueError, match="is_causal=True"):
        layer(np.zeros((3, 1, E)), is_causal=True)
    with pytest.raises(
        ValueError, match=r"feature sizes \(embed_dim, kdim, vdim\) = \(8, 8, 8\), got query \(3, 1, 5\)"
    ):
        layer(np.zeros((3, 1, 5)))


def test_encoder_layer_residuals_are_tagged():
    sr.manual_seed(0)
    encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(E, H, 12), 2)
    out = encoder(np.random.default_rng(0).standard_normal((3, 2, E)))
    names = _components(out)
    for layer in ("layers/0", "layers/1"):
        for part in ("residual_attn", "residual_ffn", "norm1", "norm2", "linear1", "activation", "linear2",
                     "self_attn/query", "self_attn/key", "self_attn/value", "self_attn/scores",
                     "self_attn/softmax", "self_attn/mix", "self_attn/out"):  # fmt: skip
            assert f"{layer}/{part}" in names, f"{layer}/{part} not in {sorted(n for n in names if n)}"
    add = out._node.parents[0]  # norm2's input ... walk back to the residual add of the last layer
    while add.component != "layers/1/residual_ffn":
        add = next(p for p in add.parents if p is not None)
    assert add.op_name == "add"
    assert add.parents[0].component == "layers/1/norm1"  # the residual stream: input 0
    assert add.parents[1].component == "layers/1/dropout2"  # the feed-forward block's output: input 1


# -- finite differences ---------------------------------------------------------------------------


def test_multihead_attention_gradients_match_finite_differences():
    sr.manual_seed(0)
    mha = nn.MultiheadAttention(4, 2, kdim=3, batch_first=True)
    rng = np.random.default_rng(0)
    q = sr.tensor(rng.standard_normal((2, 3, 4)), requires_grad=True, name="q")
    k = sr.tensor(rng.standard_normal((2, 4, 3)), requires_grad=True, name="k")
    v = sr.tensor(rng.standard_normal((2, 4, 4)), requires_grad=True, name="v")
    padding = np.array([[False, False, False, True], [True, False, False, False]])
    mask = np.triu(np.ones((3, 4), bool), 2)
    w1, w2 = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 3, 4))

    def loss():
        out, weights = mha(q, k, v, key_padding_mask=padding, attn_mask=mask)
        return (out * w1).sum() + (weights * w2[..., :4]).sum()

    check_gradients(loss, list(mha.parameters()) + [q, k, v], rng, "MultiheadAttention")


@pytest.mark.parametrize("activation", ["gelu", "relu"])
def test_encoder_gradients_match_finite_differences(activation):
    sr.manual_seed(1)
    layer = nn.TransformerEncoderLayer(4, 2, 6, dropout=0.0, activation=activation, norm_first=activation == "gelu")
    encoder = nn.TransformerEncoder(layer, 1, norm=nn.LayerNorm(4) if activation == "gelu" else None)
    rng = np.random.default_rng(1)
    x = sr.tensor(rng.standard_normal((3, 2, 4)), requires_grad=True, name="x")
    w = rng.standard_normal((3, 2, 4))
    causal = nn.transformer.generate_square_subsequent_mask(3)

    def loss():
        return (encoder(x, mask=causal) * w).sum()

    check_gradients(loss, list(encoder.parameters()) + [x], rng, "TransformerEncoder")


# -- traces ---------------------------------------------------------------------------------------


def _tiny_encoder(seed=0):
    sr.manual_seed(seed)
    layer = nn.TransformerEncoderLayer(E, H, 12, dropout=0.0, activation="gelu", batch_first=True)
    return nn.TransformerEncoder(layer, 2, norm=nn.LayerNorm(E))


def test_trace_through_encoder_names_the_components():
    encoder = _tiny_encoder()
    head = nn.Linear(E, 3)
    rng = np.random.default_rng(0)
    x = sr.tensor(rng.standard_normal((2, 4, E)), requires_grad=True, name="x")
    loss = F.cross_entropy(head(encoder(x)[:, 0]), np.array([0, 2]))
    params = list(encoder.parameters())
    tr = sr.trace(loss, params + [x])
    for p in params + [x]:
        assert np.all(np.isfinite(tr[p])), p.name
    grads = sr.grad(loss, params)
    for p, g in zip(params, grads):
        assert np.all((tr[p] != 0) | (g == 0)), f"{p.name} has a gradient but no best path"

    def components(t, index):
        path = tr.path(t, index)
        assert path.value == pytest.approx(float(tr[t][index]), rel=1e-9)
        return [s.component for s in path.steps[1:]]

    attn = encoder.layers[1].self_attn
    for block, name in enumerate(("query", "key", "value")):
        index = np.unravel_index(int(np.abs(tr[attn.in_proj_weight][block * E : (block + 1) * E]).argmax()), (E, E))
        steps = components(attn.in_proj_weight, (index[0] + block * E, index[1]))
        assert steps[0] == f"layers/1/self_attn/{name}"
        if name == "value":
            assert "layers/1/self_attn/scores" not in steps and "layers/1/self_attn/mix" in steps
        else:  # queries and keys act through the scores and their softmax only
            assert (
                steps.index("layers/1/self_attn/scores")
                < steps.index("layers/1/self_attn/softmax")
                < steps.index("layers/1/self_attn/mix")
            )
        assert "layers/1/self_attn/out" in steps and "layers/1/residual_attn" in steps
    steps = components(encoder.layers[0].linear1.weight, (0, 0))
    assert "layers/0/activation" in steps and "layers/0/residual_ffn" in steps
    # the input's best paths in layer 0: along the residual stream only, or through one whole branch
    branches = {frozenset(), frozenset({"query", "scores", "softmax", "mix", "out"}),
                frozenset({"key", "scores", "softmax", "mix", "out"}), frozenset({"value", "mix", "out"})}  # fmt: skip
    seen = set()
    for index in np.ndindex(*x.shape):
        steps = components(x, index)
        layer0 = frozenset(s.split("/")[3] for s in steps if s and s.startswith("layers/0/self_attn/"))
        assert layer0 in branches, f"x{index}: {sorted(layer0)}"
        seen.add(layer0)
        assert "layers/0/residual_attn" in steps and "layers/1/residual_ffn" in steps
    assert frozenset() in seen and len(seen) >= 2  # both the skip and an attention branch win somewhere


def test_trace_never_passes_a_masked_key():
    encoder = _tiny_encoder(seed=3)
    rng = np.random.default_rng(1)
    x = sr.tensor(rng.standard_normal((2, 4, E)), requires_grad=True, name="x")
    padding = np.array([[False, False, True, True], [False, False, False, True]])
    causal = nn.transformer.generate_square_subsequent_mask(4)
    out = encoder(x, mask=causal, src_key_padding_mask=padding)
    loss = (out * rng.standard_normal(out.shape)).sum()
    params = list(encoder.parameters())
    tr = sr.trace(loss, params + [x])
    blocked = np.isinf(causal)[None] | np.repeat(padding, H, axis=0)[:, None, :]  # (N*H, L, S)
    checked = 0
    for t in params + [x]:
        assert np.all(np.isfinite(tr[t])), t.name
        for index in list(np.ndindex(*t.shape))[:: max(1, int(np.prod(t.shape)) // 12)]:
            path = tr.path(t, index)
            for step in path.steps:
                if step.component and step.component.endswith("self_attn/scores") and step.shape == blocked.shape:
                    if step.op == "add":  # the scores after the mask
                        checked += 1
                        assert not blocked[step.index] or tr[t][index] == 0, f"{t.name}{index} passes a masked key"
    assert checked > 20


def test_padded_keys_get_no_gradient_and_no_path():
    sr.manual_seed(0)
    mha = nn.MultiheadAttention(4, 2)
    rng = np.random.default_rng(0)
    q = sr.tensor(rng.standard_normal((3, 2, 4)), requires_grad=True, name="q")
    k = sr.tensor(rng.standard_normal((5, 2, 4)), requires_grad=True, name="k")
    padding = np.array([[False, True, False, False, True], [False, False, False, True, False]])
    out, _ = mha(q, k, k * 1.0, key_padding_mask=padding)  # k * 1.0: values from k as a separate branch
    loss = (out * rng.standard_normal(out.shape)).sum()
    (g,) = sr.grad(loss, [k])
    tr = sr.trace(loss, [k])
    padded = padding.T[:, :, None] & np.ones(4, bool)  # (S, N, E)
    assert np.all(np.isfinite(tr[k])) and np.all(g[~padded] != 0) and np.all(tr[k][~padded] != 0)
    for s, n in zip(*np.nonzero(padding.T)):  # only the value branch, whose weight is 0, leaves a padded key
        for e in range(4):
            steps = tr.path(k, (s, n, e)).steps
            assert not any(step.component == "key" for step in steps[1:]) or tr[k][s, n, e] == 0
    np.testing.assert_array_equal(mha(q, k, k, key_padding_mask=padding)[1].numpy()[..., [1, 4]][0], 0.0)


@pytest.mark.parametrize("semiring", ["SumProduct", "MaxAbsProduct", "LogMaxAbs", "KBest", "Boolean", "Count",
                                      "SumAbs", "Entropy"])  # fmt: skip
def test_every_semiring_sweeps_through_masked_attention(semiring):
    cls = getattr(sr.semirings, semiring)
    S = cls(2) if semiring == "KBest" else cls()
    sr.manual_seed(0)
    mha = nn.MultiheadAttention(4, 2)
    x = sr.tensor(np.random.default_rng(0).standard_normal((3, 2, 4)), requires_grad=True, name="x")
    padding = np.array([[False, True, False], [False, False, True]])
    out, weights = mha(x, x, x, key_padding_mask=padding, attn_mask=np.triu(np.ones((3, 3), bool), 1))
    loss = (out * 2.0).sum() + (weights * 3.0).sum()
    params = list(mha.parameters()) + [x]
    result = sr.backward(loss, params, semiring=S)
    for p in params:
        value = np.asarray(result[p])
        if value.dtype.kind == "f":  # (LogMaxAbs: -inf = log 0 where no path carries weight)
            assert not np.isnan(value).any() and not np.isposinf(value).any(), f"{semiring}: {p.name}"


# -- the example -------------------------------------------------------------------------------------


def test_transformer_example_runs():
    spec = importlib.util.spec_from_file_location("example_transformer", EXAMPLES / "transformer.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    result = example.main(steps=80, verbose=False, n_test=300)
    assert result["final_loss"] < 0.75 * result["first_loss"]  # ~0.73 -> ~0.41
    assert result["test_accuracy"] > 0.8  # ~0.95
    shares = result["shares"]
    assert set(shares) == {"query", "key", "value", "residual"} and sum(shares.values()) == pytest.approx(1.0)


def test_deepcopy_keeps_values_and_dtype():
    layer = nn.TransformerEncoderLayer(4, 2, 6).float()
    clone = copy.deepcopy(layer)
    assert clone.linear1.weight.dtype == np.float32
    np.testing.assert_array_equal(clone.norm1.weight.numpy(), layer.norm1.weight.numpy())


def test_models_doc_transformer_example_runs():
    import contextlib
    import io
    import re

    text = (Path(__file__).resolve().parents[2] / "docs" / "models.md").read_text()
    code = re.search(r"## Transformers.*?```python\n(.*?)```", text, re.S).group(1)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "docs/models.md", "exec"), {})
    printed = out.getvalue().strip()
    assert printed.startswith("self_attn/key -> self_attn/scores -> self_attn/softmax -> self_attn/mix")
    assert printed == re.search(r"\n# (self_attn/key -> .*)\n", code).group(1)  # the comment shows the output
