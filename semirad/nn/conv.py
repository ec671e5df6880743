"""``Conv1d`` and ``Conv2d`` (unfold + matmul), ``MaxPool2d`` and ``AvgPool2d`` (reductions over unfolded
windows)."""

from __future__ import annotations

import math

import numpy as np

from ..tensor import Tensor
from . import functional as F
from . import init
from .module import Module
from .parameter import Parameter

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _check_padding_mode(cls: str, padding_mode: str) -> str:
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"{cls}: padding_mode must be one of {PADDING_MODES}, got {padding_mode!r}")
    return padding_mode


def _explicit_pad(padding, kernel_size: tuple, dilation: tuple) -> tuple:
    """``F.pad``'s argument (last axis first) for a convolution's ``padding`` (ints, ``"valid"`` or ``"same"``)."""
    amounts = []
    for i in reversed(range(len(kernel_size))):
        if padding == "valid":
            amounts += [0, 0]
        elif padding == "same":
            total = dilation[i] * (kernel_size[i] - 1)
            amounts += [total // 2, total - total // 2]
        else:
            amounts += [padding[i], padding[i]]
    return tuple(amounts)


class Conv2d(Module):
    """2-D convolution over ``(N, C, H, W)`` (or unbatched ``(C, H, W)``) input, PyTorch's layout:
    ``weight`` is ``(out_channels, in_channels // groups, kH, kW)``, ``bias`` is ``(out_channels,)``.

    Computed as an unfold (one integer-array gather, padding taps read an appended zero) followed
    by a matmul, so its scalar graph has exactly one edge per weight-input product. A
    ``padding_mode`` other than ``"zeros"`` pads with :func:`semirad.nn.functional.pad` first.

    >>> import semirad as sr
    >>> conv = sr.nn.Conv2d(1, 4, kernel_size=3, padding=1)
    >>> conv.weight.shape, conv(np.zeros((2, 1, 8, 8))).shape
    ((4, 1, 3, 3), (2, 4, 8, 8))
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", dtype=np.float64,
                 generator=None):  # fmt: skip
        super().__init__()
        self.padding_mode = _check_padding_mode("Conv2d", padding_mode)
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"Conv2d: in_channels {in_channels} and out_channels {out_channels} must be divisible "
                             f"by groups {groups}")  # fmt: skip
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = F._pair(kernel_size, "kernel_size")
        self.stride, self.dilation = F._pair(stride, "stride"), F._pair(dilation, "dilation")
        self.padding = padding if isinstance(padding, str) else F._pair(padding, "padding")
        self.groups = int(groups)
        self.weight = Parameter(np.zeros((out_channels, in_channels // groups, *self.kernel_size), dtype=dtype))
        self.bias = Parameter(np.zeros(out_channels, dtype=dtype)) if bias else None
        self.reset_parameters(generator)

    def reset_parameters(self, generator=None) -> None:
        init.kaiming_uniform_(self.weight, a=math.sqrt(5), generator=generator)
        if self.bias is not None:
            fan_in, _ = init.calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound, generator=generator)

    def forward(self, input):
        x = input if isinstance(input, Tensor) else Tensor(input)
        if x.ndim not in (3, 4) or x.shape[-3] != self.in_channels:
            raise self._shape_error(
                f"input of shape (N, {self.in_channels}, H, W) or ({self.in_channels}, H, W)", x.shape
            )
        padding = self.padding
        if self.padding_mode != "zeros":
            x = self._functional(F.pad, x, _explicit_pad(padding, self.kernel_size, self.dilation),
                                 self.padding_mode)  # fmt: skip
            padding = 0
        return self._functional(F.conv2d, x, self.weight, self.bias, self.stride, padding, self.dilation,
                            self.groups)  # fmt: skip

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if isinstance(self.padding, str) or any(self.padding):
            s += f", padding={self.padding}"
        if any(d != 1 for d in self.dilation):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class Conv1d(Module):
    """1-D convolution over ``(N, C, L)`` (or unbatched ``(C, L)``) input, PyTorch's layout: ``weight``
    is ``(out_channels, in_channels // groups, kernel_size)``, ``bias`` is ``(out_channels,)``.

    Built as :class:`Conv2d` is (unfold + matmul, through :func:`semirad.nn.functional.conv1d`);
    ``padding`` is an int, ``"valid"`` or ``"same"``, ``padding_mode`` ``"zeros"``, ``"reflect"``,
    ``"replicate"`` or ``"circular"``; init as PyTorch.

    >>> import semirad as sr
    >>> conv = sr.nn.Conv1d(2, 4, kernel_size=3, stride=2, padding=1)
    >>> conv.weight.shape, conv(np.zeros((5, 2, 9))).shape
    ((4, 2, 3), (5, 4, 5))
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", dtype=np.float64,
                 generator=None):  # fmt: skip
        super().__init__()
        self.padding_mode = _check_padding_mode("Conv1d", padding_mode)
        if groups < 1 or in_channels % groups or out_channels % groups:
            raise ValueError(f"Conv1d: in_channels {in_channels} and out_channels {out_channels} must be divisible "
                             f"by groups {groups}")  # fmt: skip
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = (F._single(kernel_size, "kernel_size"),)
        self.stride, self.dilation = (F._single(stride, "stride"),), (F._single(dilation, "dilation"),)
        if isinstance(padding, str):
            if padding not in ("valid", "same"):
                raise ValueError(f"Conv1d: padding must be an int, 'valid' or 'same', got {padding!r}")
            if padding == "same" and self.stride != (1,):
                raise ValueError("Conv1d: padding='same' is not supported for strided convolutions")
            self.padding = padding
        else:
            self.padding = (F._single(padding, "padding"),)
        self.groups = int(groups)
        self.weight = Parameter(np.zeros((out_channels, in_channels // groups, *self.kernel_size), dtype=dtype))
        self.bias = Parameter(np.zeros(out_channels, dtype=dtype)) if bias else None
        self.reset_parameters(generator)

    reset_parameters = Conv2d.reset_parameters

    def forward(self, input):
        x = input if isinstance(input, Tensor) else Tensor(input)
        if x.ndim not in (2, 3) or x.shape[-2] != self.in_channels:
            raise self._shape_error(f"input of shape (N, {self.in_channels}, L) or ({self.in_channels}, L)", x.shape)
        padding = self.padding if isinstance(self.padding, str) else self.padding[0]
        if self.padding_mode != "zeros":
            x = self._functional(F.pad, x, _explicit_pad(self.padding, self.kernel_size, self.dilation),
                                 self.padding_mode)  # fmt: skip
            padding = 0
        return self._functional(F.conv1d, x, self.weight, self.bias, self.stride[0], padding, self.dilation[0],
                                self.groups)  # fmt: skip

    extra_repr = Conv2d.extra_repr


class MaxPool2d(Module):
    """Max over ``kernel_size`` windows (``stride`` defaults to the kernel size; padding reads -inf)."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1):
        super().__init__()
        self.kernel_size, self.padding, self.dilation = kernel_size, padding, dilation
        self.stride = kernel_size if stride is None else stride

    def forward(self, input):
        return self._functional(F.max_pool2d, input, self.kernel_size, self.stride, self.padding, self.dilation)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, dilation={self.dilation}"


class AvgPool2d(Module):
    """Mean over ``kernel_size`` windows (zero padding counted unless ``count_include_pad=False``)."""

    def __init__(self, kernel_size, stride=None, padding=0, count_include_pad: bool = True):
        super().__init__()
        self.kernel_size, self.padding, self.count_include_pad = kernel_size, padding, count_include_pad
        self.stride = kernel_size if stride is None else stride

    def forward(self, input):
        return self._functional(F.avg_pool2d, input, self.kernel_size, self.stride, self.padding,
                            self.count_include_pad)  # fmt: skip

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"
