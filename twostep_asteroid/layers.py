"""Fast building blocks of the TDCN masker: norms, activation, depthwise convolution, mask head.

Each layer computes what an Asteroid or PyTorch layer computes, with the same parameters and
state-dict keys (old checkpoints load), only faster where the TDCN spends its time: fused norm
kernels, an autograd-friendlier PReLU on CPU, a depthwise convolution without the slow dilated
CPU backward, and the paper's mask head as one matrix product. :mod:`twostep_asteroid.masknn`
assembles them into :class:`~twostep_asteroid.masknn.TDCN`.

The ``time_major`` methods and :func:`pointwise_time_major` run a layer on ``[batch, frames,
channels]`` frames, the layout a streaming step uses (:meth:`~twostep_asteroid.masknn.TDCN.step`).
"""
import torch
import torch.nn.functional as F
from torch import nn

from asteroid.masknn import norms


class _AffineNorm(nn.Module):
    """A norm with Asteroid's per-channel gain ``gamma`` and bias ``beta`` (its state-dict keys).

    Args:
        channel_size (int): Number of channels.
        eps (float): Added to the variance (Asteroid's default, ``1e-8``).
    """

    def __init__(self, channel_size, eps=1e-8):
        super().__init__()
        self.channel_size = channel_size
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(channel_size))
        self.beta = nn.Parameter(torch.zeros(channel_size))


class FusedGlobLN(_AffineNorm):
    """Global layer norm (gLN): Asteroid's :class:`~asteroid.masknn.norms.GlobLN`, fused.

    gLN normalises each example over channels and frames, then applies a per-channel gain and bias:
    exactly ``GroupNorm`` with one group. How it differs from ``GlobLN``: only in how it computes.
    On CPU ``F.group_norm`` runs it as one fused kernel (forward and backward) and saves only the
    input and two scalars per example, where ``GlobLN`` composes mean/var/sub/div and a transposed
    affine (non-contiguous output, about five saved full-size tensors); off CPU it is the plain
    elementwise maths (:meth:`elementwise`). Same parameters (``gamma``, ``beta``) and state-dict
    keys as ``GlobLN``, so checkpoints are interchangeable.

    Args:
        channel_size (int): Number of channels.
        eps (float): Added to the variance (Asteroid's default, ``1e-8``).
    """

    def forward(self, x):
        if x.device.type == "cpu":
            return F.group_norm(x, 1, self.gamma, self.beta, self.eps)
        # On CUDA, group_norm with a single group over channels x frames is many times slower than
        # these elementwise ops (bench/README.md, "Measurements moved from docstrings").
        return self.elementwise(x, self.gamma, self.beta, self.eps)

    @staticmethod
    def elementwise(x, gamma, beta, eps):
        """gLN as elementwise ops (the path used off CPU); equal to ``F.group_norm(x, 1, ...)``."""
        dims = tuple(range(1, x.ndim))
        mean = x.mean(dim=dims, keepdim=True)
        var = (x - mean).square().mean(dim=dims, keepdim=True)
        shape = (1, -1) + (1,) * (x.ndim - 2)
        return (x - mean) / (var + eps).sqrt() * gamma.reshape(shape) + beta.reshape(shape)


class FusedChanLN(_AffineNorm):
    """Per-frame channel layer norm (Asteroid's ``cLN``): :class:`~asteroid.masknn.norms.ChanLN`, fused.

    Each frame is normalised over its channels, then scaled and shifted per channel. How it differs
    from ``ChanLN``: only in how it computes, ``F.layer_norm`` over the channel axis, one fused
    kernel, where ``ChanLN`` composes mean, var, and a transposed affine (most of a streaming
    step's norm time; bench/README.md, "Streaming"). Same parameters (``gamma``, ``beta``) and
    state-dict keys as ``ChanLN``.

    Args:
        channel_size (int): Number of channels.
        eps (float): Added to the variance (Asteroid's default, ``1e-8``).
    """

    def forward(self, x):
        out = F.layer_norm(x.transpose(1, -1), (self.channel_size,), self.gamma, self.beta, self.eps)
        return out.transpose(1, -1)

    def time_major(self, x):
        """The same norm on time-major frames ``[batch, frames, channels]`` (channels last), for
        streaming: one ``F.layer_norm`` without the transposes."""
        return F.layer_norm(x, (self.channel_size,), self.gamma, self.beta, self.eps)


def make_norm(norm_type, channels):
    """``"gLN"`` -> :class:`FusedGlobLN`, ``"cLN"`` -> :class:`FusedChanLN`; any other Asteroid norm
    name -> ``norms.get`` (Asteroid's own class)."""
    if norm_type in ("gLN", "GlobLN"):
        return FusedGlobLN(channels)
    if norm_type in ("cLN", "ChanLN"):
        return FusedChanLN(channels)
    return norms.get(norm_type)(channels)


class FastPReLU(nn.PReLU):
    """``nn.PReLU`` (same parameter and state-dict key) with a faster CPU training path.

    How it differs from ``torch.nn.PReLU``: on CPU with grad enabled it computes
    ``relu(x) + weight * (x - relu(x))``, because ``F.prelu``'s CPU backward is one of the slowest
    kernels of a TDCN training step and autograd runs these few elementwise kernels faster
    (bench/README.md, speed-up #8). The gradient at ``x = 0`` is PReLU's (``weight``). Off CPU, and
    without grad, ``F.prelu`` is kept.
    """

    def forward(self, x):
        if x.device.type != "cpu" or not torch.is_grad_enabled():
            return super().forward(x)
        weight = self.weight
        if weight.numel() > 1:
            weight = weight.reshape((-1,) + (1,) * (x.ndim - 2))
        positive = F.relu(x)
        return positive + weight * (x - positive)


#: CPU inference pads the frames of per-frame matrix products to a multiple of this (8 fp32 lanes of
#: AVX2): with a ragged tail the GEMM runs slower (bench/README.md, "Frame alignment").
FRAME_ALIGN = 8


def _pads_frames(x):
    """Frames to add to ``x`` before a per-frame matrix product, 0 where the padding is not used:
    off CPU, with grad (training), and while tracing, exporting or compiling, whose graphs must not
    bake one signal's length in."""
    if (x.device.type != "cpu" or torch.is_grad_enabled() or torch.jit.is_scripting()
            or torch.jit.is_tracing() or torch.onnx.is_in_onnx_export() or torch.compiler.is_compiling()):
        return 0
    return -x.shape[-1] % FRAME_ALIGN


def frame_aligned(layer, x):
    """Apply a per-frame ``layer`` (a 1x1 ``Conv1d``, a mask head: frame t of the output depends on
    frame t of the input only) to ``x`` ``[..., frames]``, on CPU in inference with the frames padded
    to a multiple of :data:`FRAME_ALIGN` and cropped back. The values are ``layer(x)``'s up to float
    rounding (the GEMM may sum in another order); padded frames never reach a real one.

    Returns:
        torch.Tensor: ``layer(x)``, possibly a cropped (non-contiguous) view.
    """
    pad = _pads_frames(x)
    if not pad:
        return layer(x)
    frames = x.shape[-1]
    return layer(F.pad(x, (0, pad)))[..., :frames]


def pointwise_time_major(conv, x):
    """A 1x1 ``nn.Conv1d`` on time-major ``[batch, frames, in]`` frames: ``F.linear``, one call,
    because ``conv1d``'s fixed cost per call dominates on the few frames of a streaming step."""
    return F.linear(x, conv.weight.squeeze(-1), conv.bias)


class DilatedDepthwiseConv1d(nn.Module):
    """Depthwise ``Conv1d`` with "same" (non-causal) padding and a fast CPU path.

    On CPU, PyTorch's depthwise ``conv1d`` (oneDNN) is slow and erratic for this memory-bound
    operation, and its dilated backward runs as many small OpenMP parallel regions, whose time
    explodes on busy cores. The same maths as ``kernel_size`` channel-scaled slices accumulated in
    place into one output (``addcmul_``, no padded copy) is a few large elementwise passes. ``"auto"``
    takes the slices on CPU in eager mode, except for dilation 1 in training, where oneDNN's backward
    is as fast; ``F.conv1d`` everywhere else (GPU, TorchScript, tracing, ONNX export). The timings:
    bench/README.md ("Depthwise conv", and "Measurements moved from docstrings").

    With ``causal=True`` all the padding, ``(P - 1) * dilation`` frames, goes on the left: output
    frame t sees input frames ``t - (P - 1) * dilation .. t`` only. :meth:`step` runs the same causal
    convolution on a chunk of frames with the last ``history`` input frames passed in and returned,
    so that a stream cut anywhere gives the output of one pass over the whole signal.

    Args:
        channels (int): Number of channels (one filter each).
        kernel_size (int): Kernel size P.
        dilation (int): Dilation of the kernel.
        impl (str): ``"auto"`` (shifted slices on CPU in eager mode, ``conv1d`` otherwise),
            ``"shift"`` or ``"conv"``.
        causal (bool): Left padding only (no look-ahead).
    """

    def __init__(self, channels, kernel_size, dilation=1, impl="auto", causal=False):
        super().__init__()
        if impl not in ("auto", "shift", "conv"):
            raise ValueError(f"impl must be 'auto', 'shift' or 'conv', got {impl!r}")
        self.channels = channels
        self.kernel_size = kernel_size
        self.dilation = dilation
        self.causal = causal
        self.history = (kernel_size - 1) * dilation
        self.padding = (kernel_size - 1) * dilation // 2
        # (left, right) zero padding of the time axis.
        self.pads = (self.history, 0) if causal else (self.padding, self.history - self.padding)
        self.impl = impl
        # Same parameter layout as nn.Conv1d(groups=channels), so state dicts stay interchangeable.
        self.weight = nn.Parameter(torch.empty(channels, 1, kernel_size))
        self.bias = nn.Parameter(torch.empty(channels))
        reference = nn.Conv1d(channels, channels, kernel_size, groups=channels)
        with torch.no_grad():
            self.weight.copy_(reference.weight)
            self.bias.copy_(reference.bias)

    def _use_shift(self, x):
        if self.impl == "shift":
            return True
        if self.impl == "conv":
            return False
        return (x.device.type == "cpu" and (self.dilation > 1 or not torch.is_grad_enabled())
                and not torch.jit.is_scripting() and not torch.jit.is_tracing()
                and not torch.onnx.is_in_onnx_export())

    def forward(self, x):
        if not self._use_shift(x):
            if self.pads[0] == self.pads[1]:
                return F.conv1d(x, self.weight, self.bias, padding=self.padding, dilation=self.dilation,
                                groups=self.channels)
            return F.conv1d(F.pad(x, self.pads), self.weight, self.bias, dilation=self.dilation,
                            groups=self.channels)
        return self._shifted_taps(x)

    def _shifted_taps(self, x):
        """The convolution as in-place sums of shifted slices: tap k reads input frame
        ``t + k * dilation - left_pad`` for output frame t; frames outside the input are the zero
        padding of :meth:`forward`, so they are simply not added."""
        frames = x.shape[-1]
        weight = self.weight.squeeze(1).unsqueeze(-1)  # [channels, P, 1]
        offsets = [k * self.dilation - self.pads[0] for k in range(self.kernel_size)]
        if 0 in offsets:  # start from the unshifted tap: one pass fewer
            first = offsets.index(0)
            out = torch.addcmul(self.bias.unsqueeze(-1), x, weight[:, first])
        else:
            first = None
            out = self.bias.unsqueeze(-1).expand(x.shape).clone()
        for k, offset in enumerate(offsets):
            if k == first or abs(offset) >= frames:
                continue
            if offset > 0:
                out[..., : frames - offset].addcmul_(x[..., offset:], weight[:, k])
            elif offset < 0:
                out[..., -offset:].addcmul_(x[..., : frames + offset], weight[:, k])
            else:
                out.addcmul_(x, weight[:, k])
        return out

    def step(self, x, history):
        """Causal convolution of a chunk of frames, given the frames before it, time-major.

        A stream's frames are few per call, so the step works on ``[batch, frames, channels]``
        (channels last): the 1x1 convolutions become ``F.linear`` and the norms ``F.layer_norm``
        without transposes. The P taps are shifted, channel-scaled slices (``addcmul``), cheaper than
        a grouped ``conv1d`` call on a few frames.

        Args:
            x (torch.Tensor): New input frames ``[batch, K, channels]`` (K >= 1).
            history (torch.Tensor): The ``self.history`` input frames before ``x``,
                ``[batch, history, channels]`` (zeros at the start of a stream: the left padding
                of :meth:`forward`).

        Returns:
            tuple: ``(output [batch, K, channels], history for the next chunk)``.
        """
        if not self.causal:
            raise RuntimeError("step() needs a causal convolution (causal=True)")
        padded = torch.cat([history, x], dim=1)
        weight = self.weight.squeeze(1).t()  # [P, channels]
        out = torch.addcmul(self.bias, weight[-1], x)
        # Tap k reads padded[k * d : k * d + K], which ends (P - 1 - k) * d frames before the end:
        # constant slice bounds, so that a traced or exported step takes any K.
        for k in range(self.kernel_size - 1):
            out = torch.addcmul(out, weight[k], padded[:, k * self.dilation : k * self.dilation - self.history])
        return out, (padded[:, -self.history :] if self.history else padded[:, :0])


class ToeplitzMaskHead(nn.Module):
    """The paper's mask head, as a matrix product.

    The authors' code (and Asteroid's port) compute the masks with ``Conv2d(1, C, (N + 1, 1))``
    sliding along the basis axis of a ``[batch, 1, N, frames]`` tensor: each source's mask mixes the
    N bases with one shared, banded kernel. That is a Toeplitz matrix per source. Building the
    ``[C * N, N]`` matrix once per forward and applying it as a single matmul gives the same
    function and parameter count without the slow 2-D convolution.

    Args:
        n_feats (int): Number of bases N.
        n_src (int): Number of masks C.
    """

    def __init__(self, n_feats, n_src):
        super().__init__()
        self.n_feats = n_feats
        self.n_src = n_src
        self.half_width = n_feats // 2
        width = 2 * self.half_width + 1
        reference = nn.Conv2d(1, n_src, (width, 1))
        self.weight = nn.Parameter(reference.weight.detach().reshape(n_src, width).clone())
        self.bias = nn.Parameter(reference.bias.detach().clone())
        rows = torch.arange(n_feats).unsqueeze(1)
        cols = torch.arange(n_feats).unsqueeze(0)
        offset = cols - rows + self.half_width
        valid = (offset >= 0) & (offset < width)
        # Out-of-band entries point at an extra zero column.
        self.register_buffer("_index", torch.where(valid, offset, torch.full_like(offset, width)),
                             persistent=False)

    def matrix(self):
        """Return the ``[n_src, N, N]`` Toeplitz matrices the head applies."""
        padded = F.pad(self.weight, (0, 1))
        return padded[:, self._index]

    def time_major(self, x):
        """``[batch, frames, N] -> [batch, frames, n_src * N]`` (pre-activation), for streaming."""
        mats = self.matrix().reshape(self.n_src * self.n_feats, self.n_feats)
        return F.linear(x, mats, self.bias.repeat_interleave(self.n_feats))

    def forward(self, x):
        """``[batch, N, frames] -> [batch, n_src, N, frames]`` (pre-activation)."""
        mats = self.matrix().reshape(self.n_src * self.n_feats, self.n_feats)
        out = torch.matmul(mats, x).reshape(x.shape[0], self.n_src, self.n_feats, x.shape[-1])
        return out + self.bias.reshape(1, -1, 1, 1)
