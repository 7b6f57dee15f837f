"""A rebuild of the architecture of Asteroid's public two-step recipe (``egs/wham/TwoStep``).

Benchmark-only: it lives in ``bench/`` and is not part of the package. It is written from the
description in the project notes (``shared/reference/method.md``), to time the port's design
against :class:`twostep_asteroid.TwoStepTDCN` in the same process:

* encoder ``ReLU(Conv1d(1, N, L, stride=L // 2, padding=L // 2))`` with a bias;
* decoder ``ConvTranspose1d(C * N, C, L, stride=L // 2, padding=L // 2, groups=C)``;
* separator: ``BatchNorm1d(N)`` input norm, ``Conv1d(N, B, 1)``, then blocks in the port's loop
  order ``for _ in range(n_blocks) for d in range(n_repeats)`` with dilation ``2 ** d`` (8 stacks
  of dilations {1, 2, 4, 8} at the paper size), each block
  ``1x1 B->H, PReLU, gLN, depthwise (P, dilation), PReLU, gLN, 1x1 H->B`` plus the residual, where
  gLN is ``GroupNorm(1, H, eps=1e-8)``;
* mask head: ``BatchNorm1d(N)``, ReLU, then ``Conv2d(1, C, (N + 1, 1), padding=(N - N // 2, 0))``
  over the ``[batch, 1, N, frames]`` tensor and a softmax over sources.

At N = B = 256, H = 512, P = 3, 8 x 4 blocks it has 8,611,652 trainable parameters (the separator;
the front end is frozen in step 2), the count the anchor benchmark reports for the recipe.
"""
import torch
from torch import nn
from torch.nn import functional as F

from asteroid.losses import PITLossWrapper, PairwiseNegSDR, multisrc_neg_sisdr


class PortEncoder(nn.Module):
    def __init__(self, n_filters, kernel_size):
        super().__init__()
        self.conv = nn.Conv1d(1, n_filters, kernel_size, stride=kernel_size // 2,
                              padding=kernel_size // 2)

    def forward(self, wav):  # [batch, 1, time] -> [batch, N, frames]
        return F.relu(self.conv(wav))


class PortDecoder(nn.Module):
    def __init__(self, n_filters, kernel_size, n_src):
        super().__init__()
        self.deconv = nn.ConvTranspose1d(n_src * n_filters, n_src, kernel_size,
                                         stride=kernel_size // 2, padding=kernel_size // 2,
                                         groups=n_src, output_padding=kernel_size // 2 - 1)

    def forward(self, latents):  # [batch, C * N, frames] -> [batch, C, time']
        return self.deconv(latents)


class PortFrontEnd(nn.Module):
    """Step 1 of the port: encoder, decoder and ideal latent targets."""

    def __init__(self, n_filters=256, kernel_size=21, n_src=2):
        super().__init__()
        self.n_src = n_src
        self.mix_encoder = PortEncoder(n_filters, kernel_size)
        self.decoder = PortDecoder(n_filters, kernel_size, n_src)

    def ideal_latents(self, mixture, sources):
        enc_mix = self.mix_encoder(mixture.unsqueeze(1))
        enc_src = torch.stack([self.mix_encoder(sources[:, i : i + 1]) for i in range(self.n_src)], 1)
        return torch.softmax(enc_src, dim=1) * enc_mix.unsqueeze(1)

    def forward(self, mixture, sources):
        targets = self.ideal_latents(mixture, sources)
        wavs = self.decoder(targets.reshape(targets.shape[0], -1, targets.shape[-1]))
        return wavs[..., : mixture.shape[-1]]


class PortBlock(nn.Module):
    def __init__(self, bn_chan, hid_chan, kernel_size, dilation):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv1d(bn_chan, hid_chan, 1),
            nn.PReLU(),
            nn.GroupNorm(1, hid_chan, eps=1e-8),
            nn.Conv1d(hid_chan, hid_chan, kernel_size, padding=dilation * (kernel_size - 1) // 2,
                      dilation=dilation, groups=hid_chan),
            nn.PReLU(),
            nn.GroupNorm(1, hid_chan, eps=1e-8),
            nn.Conv1d(hid_chan, bn_chan, 1),
        )

    def forward(self, x):
        return x + self.net(x.clone())  # the port clones the block input


class PortSeparator(nn.Module):
    def __init__(self, n_filters=256, n_src=2, bn_chan=256, hid_chan=512, kernel_size=3,
                 n_blocks=8, n_repeats=4):
        super().__init__()
        self.in_norm = nn.BatchNorm1d(n_filters)
        self.bottleneck = nn.Conv1d(n_filters, bn_chan, 1)
        # The port's loop order: n_blocks stacks of n_repeats dilations.
        self.blocks = nn.Sequential(*[PortBlock(bn_chan, hid_chan, kernel_size, 2**d)
                                      for _ in range(n_blocks) for d in range(n_repeats)])
        self.out_reshape = nn.Conv1d(bn_chan, n_filters, 1) if bn_chan != n_filters else nn.Identity()
        self.mask_norm = nn.BatchNorm1d(n_filters)
        self.mask_layer = nn.Conv2d(1, n_src, (n_filters + 1, 1),
                                    padding=(n_filters - n_filters // 2, 0))

    @property
    def dilations(self):
        return [blk.net[3].dilation[0] for blk in self.blocks]

    def forward(self, encoded):  # [batch, N, frames] -> masks [batch, C, N, frames]
        x = self.blocks(self.bottleneck(self.in_norm(encoded)))
        x = F.relu(self.mask_norm(self.out_reshape(x)))
        return torch.softmax(self.mask_layer(x.unsqueeze(1)), dim=1)


class PortTwoStepTDCN(nn.Module):
    """Step 2 of the port: frozen front end around :class:`PortSeparator`."""

    def __init__(self, n_src=2, n_filters=256, kernel_size=21, bn_chan=256, hid_chan=512,
                 conv_kernel_size=3, n_blocks=8, n_repeats=4):
        super().__init__()
        self.front_end = PortFrontEnd(n_filters, kernel_size, n_src)
        self.separator = PortSeparator(n_filters, n_src, bn_chan, hid_chan, conv_kernel_size,
                                       n_blocks, n_repeats)
        self.front_end.requires_grad_(False)

    def estimate_latents(self, mixture):
        encoded = self.front_end.mix_encoder(mixture.unsqueeze(1))
        return self.separator(encoded) * encoded.unsqueeze(1)

    def forward(self, mixture):  # [batch, time] -> [batch, C, time]
        latents = self.estimate_latents(mixture)
        wavs = self.front_end.decoder(latents.reshape(latents.shape[0], -1, latents.shape[-1]))
        return wavs[..., : mixture.shape[-1]]


_latent_pit = PITLossWrapper(PairwiseNegSDR("sisdr", zero_mean=False), pit_from="pw_mtx")


def port_step2_loss(model, mixture, sources):
    """The port's step-2 loss: PIT SI-SDR on latents flattened over bases x frames, zero_mean off."""
    with torch.no_grad():
        targets = model.front_end.ideal_latents(mixture, sources)
    est = model.estimate_latents(mixture)
    return _latent_pit(est.flatten(2), targets.flatten(2))


def port_step1_loss(front_end, mixture, sources):
    """Step-1 loss: SI-SDR of the decoded ideal targets, in the targets' order (no PIT)."""
    return multisrc_neg_sisdr(front_end(mixture, sources), sources).mean()
