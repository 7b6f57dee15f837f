import pytest
import torch
from torch import nn

from twostep_asteroid.layers import DilatedDepthwiseConv1d, ToeplitzMaskHead
from twostep_asteroid.masknn import TDCN


def test_paper_receptive_field_and_dilation_order():
    masker = TDCN(in_chan=16, n_src=2, n_blocks=8, n_repeats=4, bn_chan=8, hid_chan=8, conv_kernel_size=3)
    assert masker.receptive_field == 2041
    assert 2041 * 10 / 8000 == pytest.approx(2.55, abs=0.01)
    # R repeats of dilations 1..2^(X-1): the paper's order, not the port's (X stacks of R dilations).
    assert masker.dilations == [2**x for x in range(8)] * 4


def assert_same_function(ours, ref, x, param_names, loss_of, grad_atol):
    """Same outputs (1e-5), and same gradients (rtol 1e-4) w.r.t. the input and the named parameters."""
    y_ours, y_ref = ours(x), ref(x)
    torch.testing.assert_close(y_ours, y_ref, rtol=1e-5, atol=1e-5)
    g_ours = torch.autograd.grad(loss_of(y_ours).sum(), [x] + [getattr(ours, n) for n in param_names])
    g_ref = torch.autograd.grad(loss_of(y_ref).sum(), [x] + [getattr(ref, n) for n in param_names])
    for a, b in zip(g_ours, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=grad_atol)


@pytest.mark.parametrize("dilation", [1, 4, 64])
def test_shifted_depthwise_matches_conv1d(dilation):
    torch.manual_seed(dilation)
    conv = DilatedDepthwiseConv1d(6, 3, dilation, impl="conv")
    shift = DilatedDepthwiseConv1d(6, 3, dilation, impl="shift")
    shift.load_state_dict(conv.state_dict())
    x = torch.randn(2, 6, 150, requires_grad=True)
    assert_same_function(shift, conv, x, ["weight", "bias"], torch.square, grad_atol=1e-4)


def test_depthwise_matches_torch_reference_and_keeps_length():
    ref = nn.Conv1d(4, 4, 3, groups=4, dilation=8, padding=8)
    ours = DilatedDepthwiseConv1d(4, 3, 8, impl="shift")
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(1, 4, 50)
    torch.testing.assert_close(ours(x), ref(x), rtol=1e-5, atol=1e-6)
    assert ours(x).shape == x.shape


@pytest.mark.parametrize("n_feats", [8, 9])
def test_toeplitz_head_equals_the_ports_conv2d_head(n_feats):
    head = ToeplitzMaskHead(n_feats, 3)
    conv = nn.Conv2d(1, 3, (2 * (n_feats // 2) + 1, 1), padding=(n_feats // 2, 0))
    with torch.no_grad():
        conv.weight.copy_(head.weight.reshape(conv.weight.shape))
        conv.bias.copy_(head.bias)
    x = torch.randn(2, n_feats, 7)
    torch.testing.assert_close(head(x), conv(x.unsqueeze(1)), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mask_head", ["toeplitz", "dense"])
@pytest.mark.parametrize("n_src", [1, 2, 3])
def test_masks_shape_and_softmax(n_src, mask_head):
    masker = TDCN(16, n_src, n_blocks=3, n_repeats=2, bn_chan=8, hid_chan=12, mask_head=mask_head)
    masks = masker(torch.rand(2, 16, 30))
    assert masks.shape == (2, n_src, 16, 30)
    torch.testing.assert_close(masks.sum(1), torch.ones(2, 16, 30))


def test_get_config_rebuilds_the_same_masker():
    masker = TDCN(16, 2, n_blocks=3, n_repeats=2, bn_chan=8, hid_chan=12, norm_type="cLN", mask_head="dense")
    clone = TDCN(**masker.get_config())
    clone.load_state_dict(masker.state_dict())
    x = torch.rand(1, 16, 20)
    torch.testing.assert_close(clone(x), masker(x))


def test_skip_connections_feed_the_head_with_the_sum_of_block_skips():
    torch.manual_seed(0)
    masker = TDCN(16, 2, n_blocks=3, n_repeats=1, bn_chan=8, hid_chan=12, mask_head="dense", skip_chan=6)
    assert masker.head.in_channels == 6 and all(b.skip_conv.out_channels == 6 for b in masker.blocks)
    clone = TDCN(**masker.get_config())
    clone.load_state_dict(masker.state_dict())
    x = torch.rand(2, 16, 20)
    torch.testing.assert_close(clone(x), masker(x))
    # Reference: the sum of the skips, computed block by block.
    h = masker.bottleneck(masker.input_norm(x))
    skips = 0
    for block in masker.blocks:
        h, skip = block(h)
        skips = skips + skip
    scores = masker.head(masker.output_act(skips)).reshape(2, 2, 16, 20)
    torch.testing.assert_close(masker(x), torch.softmax(scores, 1))
    with torch.no_grad():
        masker.blocks[-1].skip_conv.weight.add_(1.0)
    assert not torch.allclose(masker(x), clone(x))


def test_feature_norm_makes_the_masks_blind_to_each_bases_floor_and_scale():
    torch.manual_seed(0)
    x = torch.rand(2, 16, 40)
    floor, scale = torch.rand(1, 16, 1), 0.5 + torch.rand(1, 16, 1)
    normed = TDCN(16, 2, n_blocks=2, n_repeats=1, bn_chan=8, hid_chan=12, feature_norm=True)
    plain = TDCN(16, 2, n_blocks=2, n_repeats=1, bn_chan=8, hid_chan=12)
    torch.testing.assert_close(normed(scale * x + floor), normed(x), rtol=1e-4, atol=1e-4)
    assert not torch.allclose(plain(scale * x + floor), plain(x), atol=1e-3)
    clone = TDCN(**normed.get_config())
    clone.load_state_dict(normed.state_dict())
    torch.testing.assert_close(clone(x), normed(x))


def test_unknown_options_are_refused():
    with pytest.raises(ValueError, match="mask_head"):
        TDCN(16, 2, mask_head="conv2d")
    with pytest.raises(ValueError, match="impl"):
        DilatedDepthwiseConv1d(4, 3, impl="fast")


@pytest.mark.parametrize("shape", [(2, 6, 40), (1, 5, 3, 7)])
def test_fused_gln_matches_asteroid_globln(shape):
    from asteroid.masknn.norms import GlobLN

    from twostep_asteroid.layers import FusedGlobLN

    ref = GlobLN(shape[1])
    ours = FusedGlobLN(shape[1])
    with torch.no_grad():  # non-trivial gain and bias
        ref.gamma.copy_(torch.randn(shape[1]))
        ref.beta.copy_(torch.randn(shape[1]))
    assert set(ours.state_dict()) == set(ref.state_dict()) == {"gamma", "beta"}
    ours.load_state_dict(ref.state_dict())
    x = (3 * torch.randn(*shape) + 1).requires_grad_(True)
    assert_same_function(ours, ref, x, ["gamma", "beta"], torch.sin, grad_atol=1e-5)


def test_tdcn_uses_fused_gln_only_for_gln():
    from asteroid.masknn.norms import CumLN

    from twostep_asteroid.layers import FusedGlobLN

    gln = TDCN(16, 2, n_blocks=2, n_repeats=1, bn_chan=8, hid_chan=12)
    assert isinstance(gln.input_norm, FusedGlobLN)
    assert isinstance(gln.blocks[0].dw_norm, FusedGlobLN)
    cum = TDCN(16, 2, n_blocks=2, n_repeats=1, bn_chan=8, hid_chan=12, norm_type="cgLN")
    assert isinstance(cum.blocks[0].in_norm, CumLN)


def test_tdcn_state_dict_keys_are_those_of_the_asteroid_norm_layout():
    """Checkpoints written before the fused gLN (asteroid GlobLN, same keys) still load."""
    from asteroid.masknn.norms import GlobLN

    masker = TDCN(16, 2, n_blocks=2, n_repeats=2, bn_chan=8, hid_chan=12)
    old = TDCN(16, 2, n_blocks=2, n_repeats=2, bn_chan=8, hid_chan=12)
    old.input_norm = GlobLN(16)
    for block in old.blocks:
        block.in_norm, block.dw_norm = GlobLN(12), GlobLN(12)
    assert list(masker.state_dict()) == list(old.state_dict())
    with torch.no_grad():
        for p in old.parameters():
            p.add_(0.1 * torch.randn_like(p))
    masker.load_state_dict(old.state_dict())
    x = torch.rand(2, 16, 40)
    torch.testing.assert_close(masker(x), old(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("training", [True, False])
def test_auto_depthwise_equals_conv_reference_in_full_masker(training):
    """The default masker (auto depthwise impl, fused gLN, Toeplitz head) against the
    straightforward reference (F.conv1d everywhere) on random inputs, outputs and gradients."""
    fast = TDCN(16, 2, n_blocks=4, n_repeats=2, bn_chan=8, hid_chan=12, conv_impl="auto")
    ref = TDCN(16, 2, n_blocks=4, n_repeats=2, bn_chan=8, hid_chan=12, conv_impl="conv")
    ref.load_state_dict(fast.state_dict())
    x = torch.rand(2, 16, 50)
    if training:
        y_fast, y_ref = fast(x), ref(x)
        torch.testing.assert_close(y_fast, y_ref, rtol=1e-5, atol=1e-6)
        g_fast = torch.autograd.grad((y_fast * x.unsqueeze(1)).sum(), list(fast.parameters()))
        g_ref = torch.autograd.grad((y_ref * x.unsqueeze(1)).sum(), list(ref.parameters()))
        for a, b in zip(g_fast, g_ref):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    else:
        with torch.inference_mode():
            torch.testing.assert_close(fast(x), ref(x), rtol=1e-5, atol=1e-6)


def test_auto_rule():
    """CPU: the slices, except for dilation 1 with grad (oneDNN's backward is as fast there);
    never while tracing (export)."""
    conv = DilatedDepthwiseConv1d(4, 3, 1)
    dil = DilatedDepthwiseConv1d(4, 3, 4)
    x = torch.randn(1, 4, 10)
    assert not conv._use_shift(x)
    assert dil._use_shift(x)
    with torch.no_grad():
        assert dil._use_shift(x)
        assert conv._use_shift(x)
    seen = []

    def record(x):
        seen.append(dil._use_shift(x))
        return x

    torch.jit.trace(record, x, check_trace=False)
    assert seen == [False]


@pytest.mark.parametrize("kernel_size,dilation,causal,frames",
                         [(3, 2, True, 40), (2, 3, False, 40), (4, 5, False, 40), (4, 5, True, 40),
                          (3, 64, False, 50), (3, 64, True, 50), (5, 1, False, 7)])
def test_shifted_taps_match_conv1d_every_padding(kernel_size, dilation, causal, frames):
    """In-place taps against F.conv1d: odd and even kernels (no unshifted tap), causal padding, and a
    dilation longer than the signal (taps that read only padding)."""
    torch.manual_seed(kernel_size * 100 + dilation)
    conv = DilatedDepthwiseConv1d(6, kernel_size, dilation, impl="conv", causal=causal)
    shift = DilatedDepthwiseConv1d(6, kernel_size, dilation, impl="shift", causal=causal)
    shift.load_state_dict(conv.state_dict())
    x = torch.randn(3, 6, frames, requires_grad=True)
    assert_same_function(shift, conv, x, ["weight", "bias"], torch.square, grad_atol=1e-4)
    with torch.inference_mode():
        torch.testing.assert_close(shift(x), conv(x), rtol=1e-5, atol=1e-6)


class _RecordFrames(nn.Conv1d):
    def forward(self, x):
        self.frames = x.shape[-1]
        return super().forward(x)


@pytest.mark.parametrize("frames", [1, 7, 50, 64])
def test_frame_aligned_pads_in_cpu_inference_only_and_keeps_values(frames):
    from twostep_asteroid.layers import FRAME_ALIGN, frame_aligned

    conv = _RecordFrames(5, 3, 1)
    x = torch.randn(2, 5, frames)
    with torch.inference_mode():
        y = frame_aligned(conv, x)
        assert conv.frames % FRAME_ALIGN == 0 and conv.frames - frames < FRAME_ALIGN
        torch.testing.assert_close(y, conv(x), rtol=1e-5, atol=1e-6)
    assert y.shape == (2, 3, frames)
    frame_aligned(conv, x)  # with grad (training): the layer sees the signal as it is
    assert conv.frames == frames


def test_gln_elementwise_path_equals_group_norm():
    from twostep_asteroid.layers import FusedGlobLN

    x = torch.randn(3, 6, 50) * 4 + 1
    gamma, beta = torch.rand(6) + 0.5, torch.randn(6)
    torch.testing.assert_close(FusedGlobLN.elementwise(x, gamma, beta, 1e-8),
                               torch.nn.functional.group_norm(x, 1, gamma, beta, 1e-8), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("num_parameters", [1, 6])
def test_fast_prelu_matches_torch_prelu(num_parameters):
    """The CPU training path (relu form) against nn.PReLU: outputs and gradients, with a loss linear
    in the output so that the gradient at x = 0 (PReLU takes the slope ``weight`` there) shows."""
    from twostep_asteroid.layers import FastPReLU

    torch.manual_seed(num_parameters)
    ref = nn.PReLU(num_parameters)
    ours = FastPReLU(num_parameters)
    with torch.no_grad():
        ref.weight.uniform_(-0.5, 0.5)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(3, 6, 40)
    x[0, 0, :5] = 0.0
    x.requires_grad_(True)
    coef = torch.randn(3, 6, 40)
    assert_same_function(ours, ref, x, ["weight"], lambda y: coef * y, grad_atol=1e-5)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x))
