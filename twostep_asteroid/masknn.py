"""The TDCN separator of the two-step method, in Asteroid's masker style.

A masker maps the encoded mixture ``[batch, n_filters, frames]`` to masks
``[batch, n_src, n_filters, frames]`` (see :class:`asteroid.masknn.TDConvNet`). The layers it is
built of (fused norms, PReLU, depthwise convolution, Toeplitz mask head) are in
:mod:`twostep_asteroid.layers`.
"""
import torch
from torch import nn

from .layers import (DilatedDepthwiseConv1d, FastPReLU, ToeplitzMaskHead, frame_aligned, make_norm,
                     pointwise_time_major)

#: Norms a causal TDCN accepts. Asteroid's names: ``cLN`` is :class:`~asteroid.masknn.norms.ChanLN`,
#: a layer norm over the channels of each frame (no statistics across time, so no state to carry in
#: a stream); ``cgLN`` is :class:`~asteroid.masknn.norms.CumLN`, the cumulative layer norm that the
#: Conv-TasNet paper calls "cLN" (statistics of all frames up to now).
CAUSAL_NORMS = ("cLN", "ChanLN", "cgLN", "CumLN")


class TDCNBlock(nn.Module):
    """One residual TDCN block: 1x1 B->H, PReLU, norm, depthwise conv, PReLU, norm, 1x1 H->B.

    Args:
        bn_chan (int): Bottleneck channels B (input and output).
        hid_chan (int): Hidden channels H.
        kernel_size (int): Depthwise kernel size P.
        dilation (int): Dilation of the depthwise conv.
        norm_type (str): Asteroid norm name (``"gLN"``, ``"cLN"``, ``"BN"``...).
        conv_impl (str): See :class:`~twostep_asteroid.layers.DilatedDepthwiseConv1d`.
        skip_chan (int): Skip-connection channels; 0 (default) for none.
        causal (bool): Left-padded depthwise conv (the norm must be causal too, see :class:`TDCN`).
    """

    def __init__(self, bn_chan, hid_chan, kernel_size, dilation, norm_type="gLN", conv_impl="auto",
                 skip_chan=0, causal=False):
        super().__init__()
        self.in_conv = nn.Conv1d(bn_chan, hid_chan, 1)
        self.in_act = FastPReLU()
        self.in_norm = make_norm(norm_type, hid_chan)
        self.depthwise = DilatedDepthwiseConv1d(hid_chan, kernel_size, dilation, impl=conv_impl,
                                                causal=causal)
        self.dw_act = FastPReLU()
        self.dw_norm = make_norm(norm_type, hid_chan)
        self.out_conv = nn.Conv1d(hid_chan, bn_chan, 1)
        self.skip_conv = nn.Conv1d(hid_chan, skip_chan, 1) if skip_chan else None

    def forward(self, x):
        """``[batch, B, frames]`` -> the residual output, or ``(residual, skip)`` with skip_chan."""
        y = self.in_norm(self.in_act(frame_aligned(self.in_conv, x)))
        y = self.dw_norm(self.dw_act(self.depthwise(y)))
        if self.skip_conv is None:
            return x + frame_aligned(self.out_conv, y)
        return x + frame_aligned(self.out_conv, y), frame_aligned(self.skip_conv, y)

    def step(self, x, history):
        """:meth:`forward` on a chunk of frames of a stream, time-major ``[batch, K, B]`` (causal
        block with the per-frame :class:`~twostep_asteroid.layers.FusedChanLN`; see
        :meth:`~twostep_asteroid.layers.DilatedDepthwiseConv1d.step`).

        Returns:
            tuple: ``(residual output, skip output or None, depthwise history for the next chunk)``.
        """
        y = self.in_norm.time_major(self.in_act(pointwise_time_major(self.in_conv, x)))
        y, history = self.depthwise.step(y, history)
        y = self.dw_norm.time_major(self.dw_act(y))
        skip = None if self.skip_conv is None else pointwise_time_major(self.skip_conv, y)
        return x + pointwise_time_major(self.out_conv, y), skip, history


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
            source, see :class:`~twostep_asteroid.layers.ToeplitzMaskHead`) or ``"dense"``
            (Conv-TasNet's 1x1 B->C*N).
        conv_impl (str): See :class:`~twostep_asteroid.layers.DilatedDepthwiseConv1d`.
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
        self.output_act = FastPReLU()
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
        x = frame_aligned(self.bottleneck, self.input_norm(mixture_w))
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
        scores = frame_aligned(self.head, self.output_act(x))
        return self._activate(scores.reshape(x.shape[0], self.n_src, self.out_chan, x.shape[-1]))

    def _masks_time_major(self, x):
        """:meth:`_masks` on ``[batch, K, B or skip]`` frames -> masks ``[batch, n_src, out_chan, K]``."""
        scores = self.output_act(x)
        if isinstance(self.head, nn.Sequential):
            scores = self.head[1].time_major(pointwise_time_major(self.head[0], scores))
        else:
            scores = pointwise_time_major(self.head, scores)
        scores = scores.reshape(x.shape[0], x.shape[1], self.n_src, self.out_chan).permute(0, 2, 3, 1)
        return self._activate(scores)

    def _activate(self, scores):
        """The mask activation on ``[batch, n_src, out_chan, frames]`` scores (softmax: over sources)."""
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
        (see :meth:`~twostep_asteroid.layers.DilatedDepthwiseConv1d.step`).

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
        x = pointwise_time_major(self.bottleneck, self.input_norm.time_major(mixture_w.transpose(1, 2)))
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
