"""Local response normalization across channels (Krizhevsky et al. 2012), with a hand-written backward.

    b_c = a_c / (k + alpha/size * sum_{c' in window(c)} a_c'^2) ^ beta

PyTorch's (and Caffe's) convention: alpha is divided by the window size. Krizhevsky's paper writes the
formula without that division and uses alpha = 1e-4, k = 2, beta = 0.75, size 5, so the same layer in
this convention has alpha = 5e-4. The window of channel c runs from c - size//2 to c + (size-1)//2,
zero padded at the ends, as in `torch.nn.LocalResponseNorm`.

`LocalResponseNorm` subclasses `torch.nn.LocalResponseNorm` (same constructor, same attributes, same
values) and only replaces the computation: a cumulative sum over channels instead of an `avg_pool3d`,
and a backward pass written out instead of autograd's, which together train 2-3x faster on the CPU,
in either memory format.

Under `torch.compile` the layer traces whole (no graph break: Dynamo traces the autograd.Function's
forward and backward), but a cumulative sum is a scan that Inductor leaves as a separate kernel (on
the CPU an ATen call) between fused ones. So while compiling, the window is summed as `size` shifted
slices instead: pure pointwise work that Inductor fuses, with the powers and products around it, into
one kernel each way (measured on 2 CPU cores, fwd+bwd at 32x96x55x55: 2.2x faster than the compiled
cumulative sum, 6.7x faster than eager). Eager keeps the cumulative sum, so eager results do not change.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def channel_window_sum(x: Tensor, size: int) -> Tensor:
    """For each channel c of (N, C, H, W) `x`: the sum over channels c - size//2 .. c + (size-1)//2."""
    channels = x.shape[1]
    before, after = size // 2, (size - 1) // 2
    if torch.compiler.is_compiling():
        padded = F.pad(x, (0, 0, 0, 0, before, after))
        return sum((padded[:, d:d + channels] for d in range(1, size)), padded[:, :channels])
    # One more zero in front, so that cumsum[c + size] - cumsum[c] is the window of channel c.
    running = F.pad(x, (0, 0, 0, 0, before + 1, after)).cumsum(dim=1)
    return running[:, size:size + channels] - running[:, :channels]


def lrn_denominator(x: Tensor, size: int, alpha: float, k: float) -> Tensor:
    """k + alpha/size * (windowed sum of squares): what the input is divided by, before the power beta."""
    return channel_window_sum(x * x, size).mul_(alpha / size).add_(k)


class _LocalResponseNorm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, size: int, alpha: float, beta: float, k: float) -> Tensor:
        denominator = lrn_denominator(x, size, alpha, k)
        y = x * denominator.pow(-beta)
        ctx.save_for_backward(x, y, denominator)
        ctx.constants = size, alpha, beta
        return y

    @staticmethod
    def backward(ctx, grad: Tensor):
        # dL/dx_j = g_j d_j^-beta - (2 alpha beta / size) x_j * sum_{i in window(j)} g_i y_i / d_i
        # (the window is symmetric in the sense that j is in window(i) iff i is in window(j), up to
        # the mirrored split for even sizes, which the reversed window below accounts for).
        x, y, denominator = ctx.saved_tensors
        size, alpha, beta = ctx.constants
        through = grad * y / denominator
        if size % 2 == 0:  # window(c) = c-size/2 .. c+size/2-1, so i with j in window(i) is the mirror
            spread = channel_window_sum(through.flip(1), size).flip(1)
        else:
            spread = channel_window_sum(through, size)
        grad_x = grad * denominator.pow(-beta) - (2 * alpha * beta / size) * x * spread
        return grad_x, None, None, None, None


class LocalResponseNorm(nn.LocalResponseNorm):
    """`torch.nn.LocalResponseNorm` with the same arguments and results, computed faster."""

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4:
            return super().forward(x)
        if x.dtype in (torch.float16, torch.bfloat16):
            # The windowed sum is a difference of running sums: in 16-bit floats it loses most of its
            # digits, so compute in float32 (as torch's own LRN pools in float32 under autocast).
            return _LocalResponseNorm.apply(x.float(), self.size, self.alpha, self.beta, self.k).to(x.dtype)
        return _LocalResponseNorm.apply(x, self.size, self.alpha, self.beta, self.k)
