"""The TDCN separator of the two-step method, in Asteroid's masker style.

A masker maps the encoded mixture ``[batch, n_filters, frames]`` to masks
``[batch, n_src, n_filters, frames]`` (see :class:`asteroid.masknn.TDConvNet`).
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


class GlobalLayerNorm(_AffineNorm):
    """Global layer norm (gLN), numerically Asteroid's :class:`~asteroid.masknn.norms.GlobLN`.

    gLN normalises each example over channels and frames, then applies a per-channel gain and bias:
    exactly ``GroupNorm`` with one group. ``F.group_norm`` runs it as one fused kernel (forward and
    backward) and saves only the input and two scalars per example, where ``GlobLN`` composes
    mean/var/sub/div and a transposed affine (non-contiguous output, about five saved full-size
    tensors). Same parameters (``gamma``, ``beta``) and state-dict keys as ``GlobLN``.

    Args:
        channel_size (int): Number of channels.
        eps (float): Added to the variance (Asteroid's default, ``1e-8``).
    """

    def forward(self, x):
        if x.device.type == "cpu":
            return F.group_norm(x, 1, self.gamma, self.beta, self.eps)
        # On CUDA, group_norm with a single group over channels x frames is very slow (H200, 60 s
        # mixture at paper size: 1279 ms against 51 ms for these elementwise ops), so the plain maths.
        return self.elementwise(x, self.gamma, self.beta, self.eps)

    @staticmethod
    def elementwise(x, gamma, beta, eps):
        """gLN as elementwise ops (the path used off CPU); equal to ``F.group_norm(x, 1, ...)``."""
        dims = tuple(range(1, x.ndim))
        mean = x.mean(dim=dims, keepdim=True)
        var = (x - mean).square().mean(dim=dims, keepdim=True)
        shape = (1, -1) + (1,) * (x.ndim - 2)
        return (x - mean) / (var + eps).sqrt() * gamma.reshape(shape) + beta.reshape(shape)


class PReLU(nn.PReLU):
    """``nn.PReLU`` (same parameter and state-dict key) with a faster CPU training path.

    On CPU, ``F.prelu``'s backward is one of the slowest kernels of a TDCN step: 33 calls took
    36 ms of a 177 ms step at the default recipe size (1 thread, ``torch.profiler``). Written as
    ``relu(x) + weight * (x - relu(x))``, autograd runs a few elementwise kernels instead, which made
    the whole step 5-9 % faster there (bench/README.md, speed-up #8); the gradient at ``x = 0`` is PReLU's (``weight``). Off CPU,
    and without grad, ``F.prelu`` is kept.
    """

    def forward(self, x):
        if x.device.type != "cpu" or not torch.is_grad_enabled():
            return super().forward(x)
        weight = self.weight
        if weight.numel() > 1:
            weight = weight.reshape((-1,) + (1,) * (x.ndim - 2))
        positive = F.relu(x)
        return positive + weight * (x - positive)


class ChannelLayerNorm(_AffineNorm):
    """Per-frame channel layer norm (Asteroid's ``cLN``), numerically :class:`~asteroid.masknn.norms.ChanLN`.

    Each frame is normalised over its channels, then scaled and shifted per channel: ``F.layer_norm``
    over the channel axis, one fused kernel, where ``ChanLN`` composes mean, var, and a transposed
    affine (most of a streaming step's norm time; bench/README.md, "Streaming").
    Same parameters (``gamma``, ``beta``) and state-dict keys as ``ChanLN``.

    Args:
        channel_size (int): Number of channels.
        eps (float): Added to the variance (Asteroid's default, ``1e-8``).
    """

    def forward(self, x):
        out = F.layer_norm(x.transpose(1, -1), (self.channel_size,), self.gamma, self.beta, self.eps)
        return out.transpose(1, -1)


def make_norm(norm_type, channels):
    """``"gLN"`` -> :class:`GlobalLayerNorm`, ``"cLN"`` -> :class:`ChannelLayerNorm` (fused); any
    other Asteroid norm name -> ``norms.get``."""
    if norm_type in ("gLN", "GlobLN"):
        return GlobalLayerNorm(channels)
    if norm_type in ("cLN", "ChanLN"):
        return ChannelLayerNorm(channels)
    return norms.get(norm_type)(channels)


def _linear(conv, x):
    """A 1x1 ``nn.Conv1d`` on time-major ``[batch, frames, in]`` frames: ``F.linear``, one call
    (``conv1d`` has a fixed cost of over 100 us a call on the few frames of a streaming step)."""
    return F.linear(x, conv.weight.squeeze(-1), conv.bias)


def _layer_norm_last(norm, x):
    """A :class:`ChannelLayerNorm` on time-major frames (channels last)."""
    return F.layer_norm(x, (norm.channel_size,), norm.gamma, norm.beta, norm.eps)


#: Norms a causal TDCN accepts. Asteroid's names: ``cLN`` is :class:`~asteroid.masknn.norms.ChanLN`,
#: a layer norm over the channels of each frame (no statistics across time, so no state to carry in
#: a stream); ``cgLN`` is :class:`~asteroid.masknn.norms.CumLN`, the cumulative layer norm that the
#: Conv-TasNet paper calls "cLN" (statistics of all frames up to now).
CAUSAL_NORMS = ("cLN", "ChanLN", "cgLN", "CumLN")


class DilatedDepthwiseConv1d(nn.Module):
    """Depthwise ``Conv1d`` with "same" (non-causal) padding and a fast CPU path.

    On CPU, PyTorch's dilated depthwise ``conv1d`` backward runs as many small OpenMP parallel
    regions: with 2 threads on 2 busy cores one call at ``[4, 512, 3200]`` took from 0.16 s to
    16 s (0.1 s with one thread). The same maths as a sum of ``kernel_size`` shifted, channel-scaled
    slices uses a few large elementwise kernels and stays at ~0.4 s. ``conv1d`` still wins at
    dilation 1 (mkldnn path; 0.19 vs 0.37 s) and in inference at every dilation (2-3x). ``"auto"``
    therefore takes the slices only on CPU, with grad enabled and dilation > 1, and ``F.conv1d``
    everywhere else (GPU, inference, export). Evidence: ``bench/README.md``.

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
        return (x.device.type == "cpu" and self.dilation > 1 and torch.is_grad_enabled()
                and not torch.jit.is_scripting() and not torch.jit.is_tracing()
                and not torch.onnx.is_in_onnx_export())

    def forward(self, x):
        if not self._use_shift(x):
            if not self.causal:
                return F.conv1d(x, self.weight, self.bias, padding=self.padding, dilation=self.dilation,
                                groups=self.channels)
            return F.conv1d(F.pad(x, self.pads), self.weight, self.bias, dilation=self.dilation,
                            groups=self.channels)
        frames = x.shape[-1]
        padded = F.pad(x, self.pads)
        weight = self.weight.squeeze(1)  # [channels, P]
        out = self.bias.unsqueeze(-1) + weight[:, 0:1] * padded[..., :frames]
        for k in range(1, self.kernel_size):
            start = k * self.dilation
            out = out + weight[:, k : k + 1] * padded[..., start : start + frames]
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


class TDCNBlock(nn.Module):
    """One residual TDCN block: 1x1 B->H, PReLU, norm, depthwise conv, PReLU, norm, 1x1 H->B.

    Args:
        bn_chan (int): Bottleneck channels B (input and output).
        hid_chan (int): Hidden channels H.
        kernel_size (int): Depthwise kernel size P.
        dilation (int): Dilation of the depthwise conv.
        norm_type (str): Asteroid norm name (``"gLN"``, ``"cLN"``, ``"BN"``...).
        conv_impl (str): See :class:`DilatedDepthwiseConv1d`.
        skip_chan (int): Skip-connection channels; 0 (default) for none.
        causal (bool): Left-padded depthwise conv (the norm must be causal too, see :class:`TDCN`).
    """

    def __init__(self, bn_chan, hid_chan, kernel_size, dilation, norm_type="gLN", conv_impl="auto",
                 skip_chan=0, causal=False):
        super().__init__()
        self.in_conv = nn.Conv1d(bn_chan, hid_chan, 1)
        self.in_act = PReLU()
        self.in_norm = make_norm(norm_type, hid_chan)
        self.depthwise = DilatedDepthwiseConv1d(hid_chan, kernel_size, dilation, impl=conv_impl,
                                                causal=causal)
        self.dw_act = PReLU()
        self.dw_norm = make_norm(norm_type, hid_chan)
        self.out_conv = nn.Conv1d(hid_chan, bn_chan, 1)
        self.skip_conv = nn.Conv1d(hid_chan, skip_chan, 1) if skip_chan else None

    def forward(self, x):
        """``[batch, B, frames]`` -> the residual output, or ``(residual, skip)`` with skip_chan."""
        y = self.in_norm(self.in_act(self.in_conv(x)))
        y = self.dw_norm(self.dw_act(self.depthwise(y)))
        if self.skip_conv is None:
            return x + self.out_conv(y)
        return x + self.out_conv(y), self.skip_conv(y)

    def step(self, x, history):
        """:meth:`forward` on a chunk of frames of a stream, time-major ``[batch, K, B]`` (causal
        block with the per-frame :class:`ChannelLayerNorm`; see :meth:`DilatedDepthwiseConv1d.step`).

        Returns:
            tuple: ``(residual output, skip output or None, depthwise history for the next chunk)``.
        """
        y = _layer_norm_last(self.in_norm, self.in_act(_linear(self.in_conv, x)))
        y, history = self.depthwise.step(y, history)
        y = _layer_norm_last(self.dw_norm, self.dw_act(y))
        skip = None if self.skip_conv is None else _linear(self.skip_conv, y)
        return x + _linear(self.out_conv, y), skip, history


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


class TDCN(nn.Module):
    """Two-step TDCN masker (Conv-TasNet-style dilated depthwise blocks, residual only).

    R repeats of X blocks with dilations ``1, 2, ..., 2**(X-1)`` inside each repeat: the paper's
    order. (Asteroid's port loops the other way and gets X stacks of R dilations, a receptive field
    about 8x smaller at the paper size.)

    Args:
        in_chan (int): Number of bases N of the front end.
        n_src (int): Number of masks.
        out_chan (int, optional): Size of each mask; defaults to ``in_chan``.
        n_blocks (int): Blocks per repeat X.
        n_repeats (int): Repeats R.
        bn_chan (int): Bottleneck channels B.
        hid_chan (int): Hidden channels H.
        conv_kernel_size (int): Depthwise kernel size P.
        norm_type (str): Norm of the blocks and of the input (``"gLN"`` by default).
        mask_act (str): ``"softmax"`` over sources (paper) or any asteroid activation name.
        mask_head (str): ``"toeplitz"`` (paper: 1x1 B->N, then a banded kernel over the bases per
            source, see :class:`ToeplitzMaskHead`) or ``"dense"`` (Conv-TasNet's 1x1 B->C*N).
        conv_impl (str): See :class:`DilatedDepthwiseConv1d`.
        skip_chan (int): 0 (default, the paper's TDCN: residual paths only) or the channels of
            Conv-TasNet-style skip connections, whose sum feeds the mask head.
        feature_norm (bool): Normalise each basis of the encoded mixture over time (instance
            norm with a learned affine) before the input norm. Off in the paper; see the README
            ("Step 2") for what it changes. Refused with ``causal=True``: its statistics span the
            whole signal.
        causal (bool): Causal masker: left-padded depthwise convolutions (no look-ahead) and a
            causal ``norm_type``, one of :data:`CAUSAL_NORMS`. Use ``"cLN"`` (Asteroid's
            ``ChanLN``, per frame): it has no state, so :meth:`step` streams it exactly and it
            behaves the same at the first second and after an hour of a stream. ``"cgLN"``
            (``CumLN``, cumulative over all past frames, Conv-TasNet's "cLN") is causal too and
            trains, but its statistics average over the whole past, so that late in a long stream
            it no longer follows level changes; :meth:`step` does not support it.

    References
        Tzinis et al., ICASSP 2020 (arXiv:1910.09804); Luo & Mesgarani, "Conv-TasNet", TASLP 2019.
    """

    def __init__(self, in_chan, n_src, out_chan=None, n_blocks=8, n_repeats=4, bn_chan=256,
                 hid_chan=512, conv_kernel_size=3, norm_type="gLN", mask_act="softmax",
                 mask_head="toeplitz", conv_impl="auto", skip_chan=0, feature_norm=False, causal=False):
        super().__init__()
        if mask_head not in ("toeplitz", "dense"):
            raise ValueError(f"mask_head must be 'toeplitz' or 'dense', got {mask_head!r}")
        if causal and norm_type not in CAUSAL_NORMS:
            raise ValueError(f"A causal TDCN needs a causal norm_type ('cLN', per frame, or 'cgLN', "
                             f"cumulative), got {norm_type!r}: it normalises over future frames.")
        if causal and feature_norm:
            raise ValueError("feature_norm normalises each basis over the whole signal (future frames "
                             "included); set feature_norm=False for a causal TDCN.")
        self.in_chan = in_chan
        self.n_src = n_src
        self.out_chan = out_chan if out_chan else in_chan
        self.n_blocks = n_blocks
        self.n_repeats = n_repeats
        self.bn_chan = bn_chan
        self.hid_chan = hid_chan
        self.conv_kernel_size = conv_kernel_size
        self.norm_type = norm_type
        self.mask_act = mask_act
        self.mask_head = mask_head
        self.conv_impl = conv_impl
        self.skip_chan = skip_chan
        self.feature_norm = feature_norm
        self.causal = causal

        # A frozen step-1 encoder gives each basis its own floor (bias, then ReLU) and scale, which a
        # global norm keeps; normalising each basis over time first made step 2 learn faster.
        self.basis_norm = nn.InstanceNorm1d(in_chan, affine=True) if feature_norm else None
        self.input_norm = make_norm(norm_type, in_chan)
        self.bottleneck = nn.Conv1d(in_chan, bn_chan, 1)
        self.blocks = nn.ModuleList(
            TDCNBlock(bn_chan, hid_chan, conv_kernel_size, 2**x, norm_type, conv_impl, skip_chan, causal)
            for _ in range(n_repeats)
            for x in range(n_blocks)
        )
        self.output_act = PReLU()
        head_in = skip_chan if skip_chan else bn_chan
        if mask_head == "toeplitz":
            self.head = nn.Sequential(nn.Conv1d(head_in, self.out_chan, 1),
                                      ToeplitzMaskHead(self.out_chan, n_src))
        else:
            self.head = nn.Conv1d(head_in, n_src * self.out_chan, 1)

    @property
    def dilations(self):
        return [block.depthwise.dilation for block in self.blocks]

    @property
    def receptive_field(self):
        """Receptive field of the masker, in frames."""
        return 1 + sum((self.conv_kernel_size - 1) * d for d in self.dilations)

    def forward(self, mixture_w):
        """
        Args:
            mixture_w (torch.Tensor): Encoded mixture ``[batch, in_chan, frames]``.

        Returns:
            torch.Tensor: Masks ``[batch, n_src, out_chan, frames]``.
        """
        if self.basis_norm is not None:
            mixture_w = self.basis_norm(mixture_w)
        x = self.bottleneck(self.input_norm(mixture_w))
        skip_sum = 0.0
        for block in self.blocks:
            if self.skip_chan:
                x, skip = block(x)
                skip_sum = skip_sum + skip
            else:
                x = block(x)
        if self.skip_chan:
            x = skip_sum
        return self._masks(x)

    def _masks(self, x):
        """Head and mask activation (per frame): ``[batch, B or skip, frames]`` -> masks."""
        scores = self.head(self.output_act(x))
        scores = scores.reshape(x.shape[0], self.n_src, self.out_chan, x.shape[-1])
        if self.mask_act == "softmax":
            return torch.softmax(scores, dim=1)
        from asteroid.masknn import activations

        return activations.get(self.mask_act)()(scores)

    def _masks_time_major(self, x):
        """:meth:`_masks` on ``[batch, K, B or skip]`` frames -> masks ``[batch, n_src, out_chan, K]``."""
        scores = self.output_act(x)
        if isinstance(self.head, nn.Sequential):
            scores = self.head[1].time_major(_linear(self.head[0], scores))
        else:
            scores = _linear(self.head, scores)
        scores = scores.reshape(x.shape[0], x.shape[1], self.n_src, self.out_chan).permute(0, 2, 3, 1)
        if self.mask_act == "softmax":
            return torch.softmax(scores, dim=1)
        from asteroid.masknn import activations

        return activations.get(self.mask_act)()(scores)

    # -- streaming ------------------------------------------------------------------------------
    @property
    def state_frames(self):
        """Frames of history the depthwise convolutions keep in a stream (all blocks together)."""
        return sum(block.depthwise.history for block in self.blocks)

    def initial_state(self, batch=1, device=None, dtype=torch.float32):
        """Zero stream state ``[batch, state_frames, hid_chan]``: the causal model's left padding."""
        return torch.zeros(batch, self.state_frames, self.hid_chan, device=device, dtype=dtype)

    def step(self, mixture_w, state):
        """Masks of the next chunk of frames of a stream, equal to :meth:`forward` on the whole stream.

        Only the depthwise convolutions look back in time (every other layer, ``cLN`` included,
        works frame by frame), so the state is the last input frames of each depthwise
        convolution, concatenated along time in block order. Inside, the frames are time-major
        (see :meth:`DilatedDepthwiseConv1d.step`).

        Args:
            mixture_w (torch.Tensor): Encoded mixture of the new frames ``[batch, in_chan, K]``.
            state (torch.Tensor): ``[batch, state_frames, hid_chan]``, from :meth:`initial_state`
                or the previous call.

        Returns:
            tuple: ``(masks [batch, n_src, out_chan, K], next state)``.
        """
        if not self.causal or self.norm_type not in ("cLN", "ChanLN"):
            raise RuntimeError(f"step() streams a causal TDCN with norm_type 'cLN' (causal={self.causal}, "
                               f"norm_type={self.norm_type!r})")
        x = _linear(self.bottleneck, _layer_norm_last(self.input_norm, mixture_w.transpose(1, 2)))
        skip_sum = 0.0
        states, start = [], 0
        for block in self.blocks:
            stop = start + block.depthwise.history
            x, skip, history = block.step(x, state[:, start:stop])
            states.append(history)
            start = stop
            if skip is not None:
                skip_sum = skip_sum + skip
        if self.skip_chan:
            x = skip_sum
        return self._masks_time_major(x), torch.cat(states, dim=1)

    def get_config(self):
        return {
            "in_chan": self.in_chan,
            "n_src": self.n_src,
            "out_chan": self.out_chan,
            "n_blocks": self.n_blocks,
            "n_repeats": self.n_repeats,
            "bn_chan": self.bn_chan,
            "hid_chan": self.hid_chan,
            "conv_kernel_size": self.conv_kernel_size,
            "norm_type": self.norm_type,
            "mask_act": self.mask_act,
            "mask_head": self.mask_head,
            "conv_impl": self.conv_impl,
            "skip_chan": self.skip_chan,
            "feature_norm": self.feature_norm,
            "causal": self.causal,
        }
