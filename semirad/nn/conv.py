"""``Conv2d`` (unfold + matmul), ``MaxPool2d`` and ``AvgPool2d`` (reductions over unfolded windows)."""

from __future__ import annotations

import math

import numpy as np

from ..tensor import Tensor
from . import functional as F
from . import init
from .module import Module
from .parameter import Parameter


class Conv2d(Module):
    """2-D convolution over ``(N, C, H, W)`` (or unbatched ``(C, H, W)``) input, PyTorch's layout:
    ``weight`` is ``(out_channels, in_channels // groups, kH, kW)``, ``bias`` is ``(out_channels,)``.

    Computed as an unfold (one integer-array gather, padding taps read an appended zero) followed
    by a matmul, so its scalar graph has exactly one edge per weight-input product.

    >>> import semirad as sr
    >>> conv = sr.nn.Conv2d(1, 4, kernel_size=3, padding=1)
    >>> conv.weight.shape, conv(np.zeros((2, 1, 8, 8))).shape
    ((4, 1, 3, 3), (2, 4, 8, 8))
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, dtype=np.float64, generator=None):  # fmt: skip
        super().__init__()
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
        return self._functional(F.conv2d, x, self.weight, self.bias, self.stride, self.padding, self.dilation,
                            self.groups)  # fmt: skip

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s


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
