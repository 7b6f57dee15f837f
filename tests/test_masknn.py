import pytest
import torch
from torch import nn

from twostep_asteroid.masknn import TDCN, DilatedDepthwiseConv1d, ToeplitzMaskHead


def test_paper_receptive_field_and_dilation_order():
    masker = TDCN(in_chan=16, n_src=2, n_blocks=8, n_repeats=4, bn_chan=8, hid_chan=8, conv_kernel_size=3)
    assert masker.receptive_field == 2041
    assert 2041 * 10 / 8000 == pytest.approx(2.55, abs=0.01)
    # R repeats of dilations 1..2^(X-1): the paper's order, not the port's (X stacks of R dilations).
    assert masker.dilations == [2**x for x in range(8)] * 4


@pytest.mark.parametrize("dilation", [1, 4, 64])
def test_shifted_depthwise_matches_conv1d(dilation):
    torch.manual_seed(dilation)
    conv = DilatedDepthwiseConv1d(6, 3, dilation, impl="conv")
    shift = DilatedDepthwiseConv1d(6, 3, dilation, impl="shift")
    shift.load_state_dict(conv.state_dict())
    x = torch.randn(2, 6, 150, requires_grad=True)
    y_conv, y_shift = conv(x), shift(x)
    torch.testing.assert_close(y_shift, y_conv, rtol=1e-5, atol=1e-5)
    g_conv = torch.autograd.grad(y_conv.square().sum(), [x, conv.weight, conv.bias])
    g_shift = torch.autograd.grad(y_shift.square().sum(), [x, shift.weight, shift.bias])
    for a, b in zip(g_shift, g_conv):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


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


def test_unknown_options_are_refused():
    with pytest.raises(ValueError, match="mask_head"):
        TDCN(16, 2, mask_head="conv2d")
    with pytest.raises(ValueError, match="impl"):
        DilatedDepthwiseConv1d(4, 3, impl="fast")
