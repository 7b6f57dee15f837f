"""The learned front end of the two-step method as an ``asteroid_filterbanks`` filterbank.

The encoder of Tzinis et al. is ``ReLU(Conv1d(1 -> N, kernel L, stride L // 2))`` and the decoder a
``ConvTranspose1d`` with one group per source. :class:`TwoStepFB` expresses both as an Asteroid
:class:`~asteroid_filterbanks.Filterbank`, so that ``asteroid_filterbanks.get("TwoStepFB")`` and
``make_enc_dec("TwoStepFB", ...)`` work like for any other Asteroid filterbank.

The analysis has a bias, as the authors' ``Conv1d``: with the ReLU it lets each basis fire only above
a learned threshold, which makes the ideal softmax masks sharp and the front end's oracle much higher
(the measurement: bench/README.md, "Measurements moved from docstrings"). Its cost is a constant
pedestal under the latents where the bias is positive, which a latent loss without zero-mean has to
fit too.
"""
import torch
import torch.nn.functional as F
from torch import nn

from asteroid_filterbanks import Filterbank, register_filterbank


class TwoStepFB(Filterbank):
    """Free (learned) filterbank with a ReLU analysis and optionally per-source synthesis filters.

    Args:
        n_filters (int): Number of bases N.
        kernel_size (int): Length of the filters L.
        stride (int, optional): Hop between frames. Defaults to ``kernel_size // 2``.
        sample_rate (float): Sample rate of the expected audio.
        n_groups (int): Number of independent filter sets. ``1`` (default) is an ordinary
            filterbank, usable as encoder or decoder; every source is decoded with the same filters.
            ``n_groups = n_src > 1`` gives the paper's decoder, one group of N filters per source
            (a grouped ``ConvTranspose1d``). A grouped filterbank is synthesis-only.
        relu (bool): Apply a ReLU after analysis, as in the paper's encoder.
        bias (bool): Add a learned per-basis bias before the ReLU (analysis only).

    Shapes (when used through :class:`asteroid_filterbanks.Decoder` with ``n_groups = C > 1``):
        ``[batch, C, N, frames] -> [batch, C, time]``.

    References
        Tzinis, E., Venkataramani, S., Wang, Z., Subakan, C., Smaragdis, P. "Two-Step Sound Source
        Separation: Training on Learned Latent Targets". ICASSP 2020. arXiv:1910.09804.
    """

    def __init__(self, n_filters, kernel_size, stride=None, sample_rate=8000.0, n_groups=1, relu=True,
                 bias=False, **kwargs):
        super().__init__(n_filters, kernel_size, stride=stride, sample_rate=sample_rate)
        if n_groups < 1:
            raise ValueError(f"n_groups must be >= 1, got {n_groups}")
        self.n_groups = n_groups
        self.relu = relu
        self._filters = nn.Parameter(torch.empty(n_groups, n_filters, kernel_size))
        # PyTorch's Conv1d initialisation (what the authors' encoder had), one group at a time. The
        # ideal masks are a softmax of raw encoder outputs, so the filters' norm sets how sharp they
        # start: asteroid's xavier init (FreeFB) is ~5x smaller and leaves them near 0.5 for longer.
        for group in self._filters.data:
            reference = nn.Conv1d(1, n_filters, kernel_size, bias=bias)
            group.copy_(reference.weight.detach()[:, 0])
        self.bias = nn.Parameter(reference.bias.detach().clone()) if bias else None

    def filters(self):
        if self.n_groups == 1:
            return self._filters[0].unsqueeze(1)  # [N, 1, L]
        # A grouped transposed conv written as a block-diagonal dense one ([C*N, C, L]), so that the
        # stock asteroid Decoder (a plain conv_transpose1d) applies it without knowing about groups.
        eye = torch.eye(self.n_groups, dtype=self._filters.dtype, device=self._filters.device)
        block = torch.einsum("cnl,cd->cndl", self._filters, eye)
        return block.reshape(self.n_groups * self.n_filters, self.n_groups, self.kernel_size)

    def pre_analysis(self, wav):
        if self.n_groups > 1:
            raise RuntimeError(
                "A TwoStepFB with n_groups > 1 is a per-source decoder (synthesis only); "
                "build the encoder with n_groups=1."
            )
        return wav

    def post_analysis(self, spec):
        if self.bias is not None:
            spec = spec + self.bias.unsqueeze(-1)
        return F.relu(spec) if self.relu else spec

    def pre_synthesis(self, spec):
        if self.n_groups == 1:
            return spec
        if spec.ndim < 3 or spec.shape[-3] != self.n_groups:
            raise ValueError(
                f"A TwoStepFB decoder with n_groups={self.n_groups} expects latents shaped "
                f"[batch, {self.n_groups}, {self.n_filters}, frames], got {tuple(spec.shape)}"
            )
        return spec.reshape(*spec.shape[:-3], self.n_groups * self.n_filters, spec.shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(n_groups=self.n_groups, relu=self.relu, bias=self.bias is not None)
        return config


register_filterbank(TwoStepFB)
