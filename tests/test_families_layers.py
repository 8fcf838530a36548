"""Shared generation layers against hand-computed values: equalised LR, pixel norm, minibatch stddev, modulated
convolution, noise inputs, self-attention, residual blocks, orthogonal regularisation."""

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from ganforge.nn.attention import SelfAttention
from ganforge.nn.resblocks import (ConditionalBatchNorm2d, DiscriminatorBlock, GeneratorBlock, ProjectionHead,
                                   orthogonal_regularization)
from ganforge.nn.style import (EqualConv2d, EqualLinear, MappingNetwork, MinibatchStd, ModulatedConv2d,
                               NoiseInjection, PixelNorm)


def test_equalised_layers_scale_weights_at_run_time():
    torch.manual_seed(0)
    linear = EqualLinear(8, 4, lr_mul=0.01, bias_init=0.5)
    x = torch.randn(3, 8)
    expected = x @ (linear.weight * 0.01 / math.sqrt(8)).t() + 0.5 * 0.01
    assert torch.allclose(linear(x), expected, atol=1e-6)
    conv = EqualConv2d(3, 5, 3)
    image = torch.randn(2, 3, 6, 6)
    assert torch.allclose(conv(image), F.conv2d(image, conv.weight / math.sqrt(27), conv.bias, padding=1), atol=1e-6)


def test_pixel_norm_gives_unit_mean_square_per_pixel():
    out = PixelNorm()(torch.randn(2, 7, 3, 3) * 5)
    assert torch.allclose(out.square().mean(1), torch.ones(2, 3, 3), atol=1e-4)


def test_minibatch_stddev_appends_the_group_std():
    x = torch.randn(4, 3, 2, 2)
    out = MinibatchStd(group_size=4)(x)
    assert out.shape == (4, 4, 2, 2)
    expected = x.std(0, unbiased=False).mean()
    assert torch.allclose(out[:, 3], expected.expand(4, 2, 2), atol=1e-4)
    assert torch.equal(out[:, :3], x)


def test_modulated_conv_matches_a_plain_conv_for_unit_styles_and_demodulates():
    torch.manual_seed(0)
    conv = ModulatedConv2d(3, 4, 3, style_dim=5, demodulate=False)
    nn.init.zeros_(conv.affine.weight)  # styles = bias = 1: an ordinary convolution
    x, w = torch.randn(2, 3, 6, 6), torch.randn(2, 5)
    expected = F.conv2d(x, conv.weight[0] * conv.scale, padding=1)
    assert torch.allclose(conv(x, w), expected, atol=1e-5)
    demod = ModulatedConv2d(16, 8, 3, style_dim=5)
    out = demod(torch.randn(64, 16, 8, 8), torch.randn(64, 5))
    assert out[..., 1:-1, 1:-1].std().item() == pytest.approx(1.0, abs=0.15)  # unit-variance in, unit out
    up = ModulatedConv2d(3, 4, 3, style_dim=5, upsample=True)
    assert up(x, w).shape == (2, 4, 12, 12)


def test_noise_is_random_in_training_and_fixed_in_eval():
    layer = NoiseInjection(2, 4, seed=0)
    with torch.no_grad():
        layer.strength.fill_(1.0)
    x = torch.zeros(1, 2, 4, 4)
    assert not torch.equal(layer(x), layer(x))
    layer.eval()
    assert torch.equal(layer(x), layer(x))
    assert torch.equal(layer(x)[0, 0], layer.const[0, 0])


def test_mapping_network_normalises_z():
    mapping = MappingNetwork(8, 6, n_layers=2)
    z = torch.randn(3, 8)
    assert torch.allclose(mapping(z), mapping(z * 7.0), atol=1e-5)  # pixel norm first: the scale of z is ignored


def test_self_attention_starts_as_identity_and_mixes_positions():
    torch.manual_seed(0)
    attention = SelfAttention(16)
    x = torch.randn(2, 16, 4, 4)
    assert torch.equal(attention(x), x)
    with torch.no_grad():
        attention.gamma.fill_(1.0)
    changed = x.clone()
    changed[:, :, 0, 0] += 5
    delta = (attention(changed) - attention(x))[:, :, 3, 3]
    assert delta.abs().max() > 1e-4  # a change at one corner reaches the opposite corner


def test_residual_blocks_and_projection_head():
    g = GeneratorBlock(8, 4, cond_dim=6, norm="spectral")
    assert g(torch.randn(3, 8, 4, 4), torch.randn(3, 6)).shape == (3, 4, 8, 8)
    d = DiscriminatorBlock(1, 8, first=True)
    assert d(torch.randn(3, 1, 8, 8)).shape == (3, 8, 4, 4)
    head = ProjectionHead(8, n_classes=3, norm="none")
    h, labels = torch.randn(5, 8), torch.tensor([0, 1, 2, 0, 1])
    expected = head.linear(h).flatten() + (head.embed.weight[labels] * h).sum(1)
    assert torch.allclose(head(h, labels), expected, atol=1e-6)


def test_conditional_batch_norm_uses_the_condition():
    cbn = ConditionalBatchNorm2d(4, cond_dim=3, norm="none")
    x = torch.randn(6, 4, 2, 2)
    a, b = torch.zeros(6, 3), torch.ones(6, 3)
    assert torch.allclose(cbn(x, a), F.batch_norm(x, None, None, training=True), atol=1e-5)
    assert not torch.allclose(cbn(x, a), cbn(x, b))


def test_orthogonal_regularisation_by_hand():
    layer = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
    # W W^T = [[5, 11], [11, 25]]: off-diagonal squares 2 * 121
    assert orthogonal_regularization(layer).item() == pytest.approx(242.0)
    with torch.no_grad():
        layer.weight.copy_(torch.eye(2))
    assert orthogonal_regularization(layer).item() == 0.0


def test_self_attention_fused_kernel_matches_sagans_formula_and_penalties_keep_double_backward():
    torch.manual_seed(0)
    fused, explicit = SelfAttention(16).eval(), SelfAttention(16, twice_differentiable=True).eval()
    with torch.no_grad():
        fused.gamma.fill_(0.7)
    explicit.load_state_dict(fused.state_dict())
    x = torch.randn(3, 16, 6, 6, requires_grad=True)
    # SAGAN by hand: beta = softmax(q^T k) over the pooled positions, o = v beta^T, no 1/sqrt(d) scale
    q = fused.query(x).flatten(2)
    k = F.max_pool2d(fused.key(x), 2).flatten(2)
    v = F.max_pool2d(fused.value(x), 2).flatten(2)
    beta = torch.softmax(q.transpose(1, 2) @ k, dim=-1)
    reference = x + 0.7 * fused.out((v @ beta.transpose(1, 2)).view(3, 8, 6, 6))
    for layer in (fused, explicit):
        out = layer(x)
        assert torch.allclose(out, reference, atol=1e-5)
        grad, = torch.autograd.grad(out.square().sum(), x)
        ref_grad, = torch.autograd.grad(reference.square().sum(), x, retain_graph=True)
        assert torch.allclose(grad, ref_grad, atol=1e-4)
    # an R1-style penalty differentiates the layer twice: the explicit path must give a gradient to the weights
    grad, = torch.autograd.grad(explicit(x).sum(), x, create_graph=True)
    grad.square().sum().backward()
    assert explicit.query.parametrizations.weight.original.grad.abs().sum() > 0


def test_biggan_discriminator_attention_is_twice_differentiable_only_under_a_penalty():
    from ganforge.api import resolve_config
    from ganforge.families import DataInfo, create

    def attentions(penalty):
        config = resolve_config(overrides={"model.name": "biggan", "model.width": 8, "model.latent_dim": 16,
                                           "model.penalty": penalty, "data.resolution": 16})
        family = create(config, DataInfo(3, 16, 2))
        return ([m.twice_differentiable for m in family.discriminator.modules() if isinstance(m, SelfAttention)],
                [m.twice_differentiable for m in family.generator.modules() if isinstance(m, SelfAttention)])
    assert attentions("none") == ([False], [False])
    assert attentions("r1") == ([True], [False])
